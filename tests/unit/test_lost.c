/* lost.c: data for a session this side lost. Which peers get a handshake to
 * the source (lost_wanted, table-driven: only to a known endpoint), sources
 * noted once and at most MAX_LOST per batch, and lost_answer() sending that
 * handshake to the source, once per LOST_KICK_MS, and nothing for a source
 * that is no peer's known endpoint (counted). */
#include <criterion/criterion.h>
#include <string.h>

#include "agent/meshd/meshd.h"
#include "agent/wg/crypto.h"

static union sockaddr_any sa(const char *s)
{
	union sockaddr_any a;

	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

Test(lost, wanted)
{
	static const struct {
		const char *name;
		const char *endpoint;	/* the data plane's, NULL: none */
		const char *reported;	/* an endpoint the service listed, NULL: none */
		const char *source;	/* its source, NULL: a STUN mapping */
		bool symmetric;		/* the service says the peer is behind a symmetric NAT */
		int64_t handshake_age_s;	/* < 0: never */
		uint64_t kicked_ms_ago;	/* 0: never */
		bool want;
	} cases[] = {
		{ "the data plane's endpoint, no session", "203.0.113.7:12345", NULL, NULL, false, -1, 0, true },
		{ "a reported endpoint, no session", NULL, "203.0.113.7:12345", NULL, false, -1, 0, true },
		{ "a reported local endpoint", NULL, "203.0.113.7:12345", "local", false, -1, 0, true },
		{ "a reported endpoint as IPv4-mapped", NULL, "[::ffff:203.0.113.7]:12345", NULL, false, -1, 0, true },
		/* issue 15 point 9: anyone can send from a peer's IP and another port */
		{ "the data plane's endpoint IP, another port", "203.0.113.7:40000", NULL, NULL, false, -1, 0, false },
		{ "a reported endpoint's IP, another port", NULL, "203.0.113.7:51820", NULL, false, -1, 0, false },
		{ "a relay-seen endpoint's IP, another port", NULL, "203.0.113.7:51820", "relay", false, -1, 0,
		  false },
		/* ... but a symmetric NAT's mapping towards us is in no list */
		{ "symmetric: a STUN mapping's IP, another port", NULL, "203.0.113.7:51820", NULL, true, -1, 0,
		  true },
		{ "symmetric: a relay-seen mapping's IP, another port", NULL, "203.0.113.7:51820", "relay", true,
		  -1, 0, true },
		{ "symmetric: a local endpoint's IP, another port", NULL, "203.0.113.7:51820", "local", true, -1, 0,
		  false },
		{ "symmetric: the data plane's endpoint IP alone", "203.0.113.7:40000", NULL, NULL, true, -1, 0,
		  false },
		{ "symmetric: another IP", NULL, "203.0.113.8:12345", NULL, true, -1, 0, false },
		{ "symmetric: a live session", NULL, "203.0.113.7:51820", NULL, true, 10, 0, false },
		{ "another IP", "203.0.113.8:12345", "198.51.100.1:12345", NULL, false, -1, 0, false },
		{ "no address known", NULL, NULL, NULL, false, -1, 0, false },
		{ "a live session: not the one lost", "203.0.113.7:12345", NULL, NULL, false, 10, 0, false },
		{ "a session past Reject-After-Time", "203.0.113.7:12345", NULL, NULL, false, 181, 0, true },
		{ "kicked a second ago", "203.0.113.7:12345", NULL, NULL, false, -1, 1000, false },
		{ "kicked longer ago than LOST_KICK_MS", "203.0.113.7:12345", NULL, NULL, false, -1,
		  LOST_KICK_MS + 1, true },
	};
	const union sockaddr_any src = sa("203.0.113.7:12345");
	const uint64_t now = 100000;
	const time_t wall = 1700000000;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mpeer p = { 0 };
		struct wg_peer_state ps = { 0 };

		ps.endpoint.sa.sa_family = AF_UNSPEC;
		if (cases[c].endpoint)
			ps.endpoint = sa(cases[c].endpoint);
		if (cases[c].reported) {
			p.ep[0].addr = sa(cases[c].reported);
			snprintf(p.ep[0].source, sizeof(p.ep[0].source), "%s",
				 cases[c].source ? cases[c].source : "stun:198.51.100.1:3478");
			p.nep = 1;
		}
		p.symmetric_nat = cases[c].symmetric;
		if (cases[c].handshake_age_s >= 0)
			ps.last_handshake.tv_sec = wall - cases[c].handshake_age_s;
		if (cases[c].kicked_ms_ago)
			p.lost_kick = now - cases[c].kicked_ms_ago;
		cr_expect_eq(lost_wanted(&p, &ps, &src, now, wall), cases[c].want, "%s", cases[c].name);
	}
}

static struct meshd m;
static union sockaddr_any sent_to[8];
static uint8_t sent_type[8];
static int nsent;

static void fake_send(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg;
	for (int i = 0; i < n && nsent < 8; i++, nsent++) {
		sent_to[nsent] = pkts[i].addr;
		sent_type[nsent] = pkts[i].data[0];
	}
}

static void fake_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg, (void)pkts, (void)n;
}

static const struct wg_device_ops ops = { .udp_send = fake_send, .tun_deliver = fake_deliver };

static void setup(void)
{
	uint8_t priv[WG_KEY_LEN];

	memset(&m, 0, sizeof(m));
	nsent = 0;
	cr_assert_eq(wg_crypto_init(), 0);
	cr_assert_eq(loop_new(&m.loop), 0);
	cr_assert_eq(wg_device_new(&ops, &m, &m.dev), 0);
	wg_dh_generate(priv, m.st.pub);
	cr_assert_eq(wg_device_set_private_key(m.dev, priv), 0);
	vec_init(&m.peers, sizeof(struct mpeer *), MESHD_MAX_PEERS, "test peers");
}

static void teardown(void)
{
	peers_clear(&m);
	wg_device_free(m.dev);
	loop_free(m.loop);
}

Test(lost, noted_once_and_bounded, .init = setup, .fini = teardown)
{
	char a[32];

	/* MAX_LOST + 2 sources, each twice: the first MAX_LOST, once each */
	for (int i = 0; i < MAX_LOST + 2; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d:1000", 1 + i);
		union sockaddr_any s = sa(a);
		lost_note(&m, &s);
		lost_note(&m, &s);
	}
	cr_assert_eq(m.nlost, MAX_LOST);
	for (int i = 0; i < m.nlost; i++) {
		snprintf(a, sizeof(a), "203.0.113.%d:1000", 1 + i);
		union sockaddr_any s = sa(a);
		cr_expect(addr_equal(&m.lost[i], &s), "source %d kept in order", i);
	}
}

/* one peer without a session, reported at the source's IP */
static struct mpeer *add_peer(const char *reported)
{
	struct mpeer *p = calloc(1, sizeof(*p));
	uint8_t priv[WG_KEY_LEN];

	cr_assert_not_null(p);
	wg_dh_generate(priv, p->pub);
	cr_assert_eq(wg_device_peer_add(m.dev, p->pub, &p->wp), 0);
	snprintf(p->name, sizeof(p->name), "p");
	p->ep[0].addr = sa(reported);
	snprintf(p->ep[0].source, sizeof(p->ep[0].source), "stun:198.51.100.1:3478");
	p->nep = 1;
	cr_assert_eq(vec_append(&m.peers, &p), 0);
	return p;
}

Test(lost, answered_at_the_source, .init = setup, .fini = teardown)
{
	union sockaddr_any src = sa("203.0.113.7:40001");
	struct mpeer *p = add_peer("203.0.113.7:40001");

	add_peer("198.51.100.5:51820");
	lost_note(&m, &src);
	lost_answer(&m);
	cr_assert_eq(nsent, 1, "one handshake, from the peer known at that endpoint");
	cr_expect(addr_equal(&sent_to[0], &src), "to the source");
	cr_expect_eq(m.lost_refused, 0);
	cr_expect_eq(sent_type[0], WG_MSG_INITIATION);
	cr_expect_eq(m.lost_handshakes, 1);
	cr_expect_eq(m.nlost, 0, "the batch's sources are forgotten");
	cr_expect_eq(p->lost_kick, meshd_now(&m));

	/* the same source again at once: within LOST_KICK_MS, nothing */
	lost_note(&m, &src);
	lost_answer(&m);
	cr_expect_eq(nsent, 1);
	cr_expect_eq(m.lost_handshakes, 1);
}

/* issue 15 point 9: data with an unknown index forged from a peer's IP but
 * another port makes this side send nothing */
Test(lost, forged_port_refused, .init = setup, .fini = teardown)
{
	union sockaddr_any src = sa("203.0.113.7:40001");

	struct mpeer *p = add_peer("203.0.113.7:51820");

	lost_note(&m, &src);
	lost_answer(&m);
	cr_expect_eq(nsent, 0, "nothing to a port the peer is not known at");
	cr_expect_eq(m.lost_handshakes, 0);
	cr_expect_eq(m.lost_refused, 1, "counted");
	cr_expect_eq(p->lost_kick, 0, "and the peer's one handshake per LOST_KICK_MS is not spent");

	/* the peer's own endpoint still gets its handshake */
	src = sa("203.0.113.7:51820");
	lost_note(&m, &src);
	lost_answer(&m);
	cr_expect_eq(nsent, 1);
	cr_expect_eq(m.lost_refused, 1);
}

/* a peer behind a symmetric NAT: its mapping towards us is in no list, so
 * data from its NAT's address at any port is answered */
Test(lost, symmetric_peer_answered_at_its_mapping, .init = setup, .fini = teardown)
{
	union sockaddr_any src = sa("203.0.113.7:40001");
	struct mpeer *p = add_peer("203.0.113.7:51820");

	p->symmetric_nat = true;
	lost_note(&m, &src);
	lost_answer(&m);
	cr_assert_eq(nsent, 1);
	cr_expect(addr_equal(&sent_to[0], &src), "to the source, its mapping towards us");
	cr_expect_eq(m.lost_refused, 0);
}
