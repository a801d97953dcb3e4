/* The STUN demultiplexer of meshd's WireGuard socket (agent/meshd/stunmux.c):
 * every kind of datagram reaches exactly its owner, parsed once; with the
 * real disco, natdisc and lib/stun server answer on a fake clock. Also the
 * relays' liveness probes that disco sends for relay.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/meshd/disco.h"
#include "agent/meshd/relay.h"
#include "agent/meshd/stunmux.h"
#include "natdisc.h"

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

static const char *S1 = "203.0.113.1:3478", *R1 = "198.51.100.7:51820",
		  *N1 = "192.0.2.1:3478", *ME = "192.0.2.200:40000";

/* the answer a STUN server gives to req when it sees it from `seen` */
static size_t answer(const uint8_t *req, size_t len, const char *seen, uint8_t *out, size_t cap)
{
	struct stun_server_cfg cfg = { 0 };
	struct stun_server_reply r;
	union sockaddr_any from = A(seen);

	cfg.addrs[0][0] = A(S1);
	cr_assert_eq(stun_server_answer(&cfg, 0, 0, &from, req, len, out, cap, &r), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	return r.len;
}

/* a bare message of a class with a fresh transaction id */
static size_t bare(enum stun_class cls, uint8_t *out, size_t cap)
{
	struct stun_builder b;
	uint8_t tid[STUN_TID_LEN];

	cr_assert_eq(stun_tid_random(tid), 0);
	stun_build_init(&b, out, cap, cls, STUN_METHOD_BINDING, tid);
	if (cls == STUN_CLASS_SUCCESS)
		stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, (union sockaddr_any[]){ A(ME) });
	stun_build_fingerprint(&b);
	int n = stun_build_finish(&b);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

/* disco with a STUN server and a relay, its round and the relay's probe out;
 * natdisc (IPv4, mapping test) with its first request out */
struct rig {
	struct disco disco;
	struct natdisc *nd;
	struct stunmux mux;
	uint8_t round_s1[256], round_r1[256], probe_r1[256], nd_req[256];
	size_t round_s1_len, round_r1_len, probe_r1_len, nd_req_len;
	uint64_t now;
};

static void keep(const struct disco_send *s, const char *to, uint8_t *buf, size_t *len)
{
	union sockaddr_any a = A(to);

	if (addr_equal(&s->to, &a)) {
		cr_assert_leq(s->len, 256);
		memcpy(buf, s->buf, s->len);
		*len = s->len;
	}
}

static void rig_up(struct rig *g, bool relay)
{
	struct natdisc_cfg cfg = { .server = A(N1), .tests = NATDISC_TEST_MAPPING };
	union sockaddr_any local = A("10.0.0.2:51820");
	struct disco_send out[8];
	struct natdisc_send ns;
	int n;

	memset(g, 0, sizeof(*g));
	g->now = 1000;
	disco_init(&g->disco, 0, g->now);
	cr_assert_eq(disco_add_server(&g->disco, (union sockaddr_any[]){ A(S1) }, "stun:s1", false), 0);
	cr_assert_eq(disco_set_relays(&g->disco, (union sockaddr_any[]){ A(R1) }, 1), 1);
	n = disco_poll(&g->disco, g->now, out, 8);
	cr_assert_eq(n, 2);
	for (int i = 0; i < n; i++) {
		keep(&out[i], S1, g->round_s1, &g->round_s1_len);
		keep(&out[i], R1, g->round_r1, &g->round_r1_len);
	}
	n = disco_poll_relays(&g->disco, g->now, out, 8);
	cr_assert_eq(n, 1, "a relay's first liveness probe is due at once");
	keep(&out[0], R1, g->probe_r1, &g->probe_r1_len);
	cr_assert(g->round_s1_len && g->round_r1_len && g->probe_r1_len);

	cr_assert_eq(natdisc_new(&cfg, &g->nd), 0);
	natdisc_set_local(g->nd, NATDISC_SOCK_MAP, &local);
	cr_assert_eq(natdisc_start(g->nd, g->now), 0);
	cr_assert_eq(natdisc_poll(g->nd, g->now, &ns), 1);
	memcpy(g->nd_req, ns.buf, ns.len);
	g->nd_req_len = ns.len;

	stunmux_init(&g->mux, &g->disco, relay, 51820, "natmesh meshd relay");
	g->mux.natdisc[0] = g->nd;
}

static void rig_down(struct rig *g)
{
	natdisc_free(g->nd);
}

/* one datagram through the mux: it is parsed once and counted once, under
 * the owner expected */
static struct stunmux_result feed(struct rig *g, const uint8_t *buf, size_t len, const char *from,
				  enum stunmux_owner want)
{
	uint64_t parsed = g->mux.parsed, before[STUNMUX_OWNERS];
	struct stunmux_result res;
	uint8_t reply[512];

	memcpy(before, g->mux.count, sizeof(before));
	cr_assert_eq(stunmux_input(&g->mux, buf, len, (union sockaddr_any[]){ A(from) }, g->now,
				   reply, sizeof(reply), &res), want,
		     "from %s: want %s, got %s", from, stunmux_owner_name(want),
		     stunmux_owner_name(res.owner));
	cr_assert_eq(g->mux.parsed, parsed + 1, "parsed once");
	for (int o = 0; o < STUNMUX_OWNERS; o++)
		cr_assert_eq(g->mux.count[o], before[o] + (o == (int)want), "owner %s",
			     stunmux_owner_name(o));
	if (want == STUNMUX_ANSWERER) {
		struct stun_msg m;
		cr_assert_gt(res.reply_len, 0);
		cr_assert_eq(stun_parse(reply, res.reply_len, &m), 0);
		cr_assert_eq(m.cls, STUN_CLASS_SUCCESS);
		cr_assert(m.has_xor_mapped && addr_equal(&m.xor_mapped, (union sockaddr_any[]){ A(from) }),
			  "the relay tells the asker its own address");
	} else {
		cr_assert_eq(res.reply_len, 0, "only the answerer replies");
	}
	return res;
}

Test(stunmux, each_kind_reaches_its_owner)
{
	struct rig g;
	uint8_t b[512];
	size_t n;

	rig_up(&g, true);
	g.now += 20;
	/* a round's answer from the STUN server: disco records the mapping */
	n = answer(g.round_s1, g.round_s1_len, ME, b, sizeof(b));
	feed(&g, b, n, S1, STUNMUX_DISCO);
	cr_assert(g.disco.srv[0].got, "disco took the round's answer");
	/* the relay's probe answered: its last_answer, nothing for the round */
	n = answer(g.probe_r1, g.probe_r1_len, ME, b, sizeof(b));
	feed(&g, b, n, R1, STUNMUX_DISCO);
	const struct disco_server *r = disco_server_find(&g.disco, (union sockaddr_any[]){ A(R1) });
	cr_assert_not_null(r);
	cr_assert_eq(r->last_answer, g.now);
	cr_assert_not(r->got, "a probe's answer is not the round's");
	/* natdisc's answer: natdisc's, disco's state untouched */
	n = answer(g.nd_req, g.nd_req_len, ME, b, sizeof(b));
	feed(&g, b, n, N1, STUNMUX_NATDISC);
	cr_assert_eq(g.mux.count[STUNMUX_DISCO], 2);
	/* natdisc's own request come back (a hairpinning NAT): natdisc's, not
	 * answered although this agent is a relay */
	struct stunmux_result res = feed(&g, g.nd_req, g.nd_req_len, "10.0.0.2:51820", STUNMUX_NATDISC);
	cr_assert_eq(res.family, 0);
	/* someone's Binding request: the relay answers it */
	n = bare(STUN_CLASS_REQUEST, b, sizeof(b));
	feed(&g, b, n, "198.18.0.9:7000", STUNMUX_ANSWERER);
	/* a stray answer, an indication: nobody's */
	n = bare(STUN_CLASS_SUCCESS, b, sizeof(b));
	feed(&g, b, n, S1, STUNMUX_DROPPED);
	n = bare(STUN_CLASS_INDICATION, b, sizeof(b));
	feed(&g, b, n, S1, STUNMUX_DROPPED);
	/* the relay answers the round too: now the round is over, and a
	 * repeated answer to it is nobody's */
	n = answer(g.round_r1, g.round_r1_len, ME, b, sizeof(b));
	feed(&g, b, n, R1, STUNMUX_DISCO);
	cr_assert_eq(g.disco.state, DISCO_IDLE);
	feed(&g, b, n, R1, STUNMUX_DROPPED);
	/* bytes that pass stun_is_stun but do not parse */
	memcpy(b, g.round_s1, 20);
	b[3] = 4;	/* a length with no attribute behind it */
	feed(&g, b, 20, S1, STUNMUX_MALFORMED);
	cr_assert_eq(g.mux.parsed, 10);
	rig_down(&g);
}

Test(stunmux, a_non_relay_answers_no_request)
{
	struct rig g;
	uint8_t b[512];
	size_t n;

	rig_up(&g, false);
	n = bare(STUN_CLASS_REQUEST, b, sizeof(b));
	feed(&g, b, n, "198.18.0.9:7000", STUNMUX_DROPPED);
	/* without a running natdisc its answers are nobody's */
	n = answer(g.nd_req, g.nd_req_len, ME, b, sizeof(b));
	g.mux.natdisc[0] = NULL;
	feed(&g, b, n, N1, STUNMUX_DROPPED);
	rig_down(&g);
}

/* an answer from the right transaction but another address is not the
 * server's (disco matches by address and transaction id) */
/* issue 15 point 9: a relay answers each source IP at meshstun's rate, so a
 * spoofed source cannot aim it (3.8x amplification) at a victim; another
 * source is answered meanwhile, and the limited one again after a second */
Test(stunmux, answers_limited_per_source)
{
	struct rig g;
	uint8_t b[512];
	size_t n;

	rig_up(&g, true);
	n = bare(STUN_CLASS_REQUEST, b, sizeof(b));
	for (int i = 0; i < IPLIMIT_BURST; i++)
		feed(&g, b, n, "198.18.0.9:7000", STUNMUX_ANSWERER);
	feed(&g, b, n, "198.18.0.9:7000", STUNMUX_LIMITED);
	feed(&g, b, n, "198.18.0.9:7001", STUNMUX_LIMITED);
	feed(&g, b, n, "198.18.0.10:7000", STUNMUX_ANSWERER);
	g.now += 1000;
	for (int i = 0; i < IPLIMIT_PER_S; i++)
		feed(&g, b, n, "198.18.0.9:7000", STUNMUX_ANSWERER);
	feed(&g, b, n, "198.18.0.9:7000", STUNMUX_LIMITED);
	rig_down(&g);
}

Test(stunmux, answer_from_another_address_is_not_taken)
{
	struct rig g;
	uint8_t b[512];
	size_t n;

	rig_up(&g, false);
	n = answer(g.round_s1, g.round_s1_len, ME, b, sizeof(b));
	feed(&g, b, n, "203.0.113.99:3478", STUNMUX_DISCO);
	cr_assert_not(g.disco.srv[0].got);
	rig_down(&g);
}

Test(disco, relay_probes_every_interval)
{
	struct disco d;
	struct disco_send out[8];

	disco_init(&d, 0, 1000);
	cr_assert_eq(disco_relays_deadline(&d), UINT64_MAX, "no relay, no probe");
	cr_assert_eq(disco_add_server(&d, (union sockaddr_any[]){ A(S1) }, "stun:s1", false), 0);
	cr_assert_eq(disco_relays_deadline(&d), UINT64_MAX, "a STUN server gets no liveness probe");
	cr_assert_eq(disco_set_relays(&d, (union sockaddr_any[]){ A(R1) }, 1), 1);
	cr_assert_eq(disco_relays_deadline(&d), 0, "due at once");
	cr_assert_eq(disco_poll_relays(&d, 1000, out, 8), 1);
	cr_assert(addr_equal(&out[0].to, (union sockaddr_any[]){ A(R1) }));
	cr_assert_eq(disco_relays_deadline(&d), 1000 + RELAY_PROBE_MS);
	cr_assert_eq(disco_poll_relays(&d, 1000 + RELAY_PROBE_MS - 1, out, 8), 0, "not before its time");
	cr_assert_eq(disco_poll_relays(&d, 1000 + RELAY_PROBE_MS, out, 8), 1);
	/* a second relay is probed at once, the first on its own schedule */
	const union sockaddr_any two[2] = { A(R1), A("198.51.100.8:51820") };
	cr_assert_eq(disco_set_relays(&d, two, 2), 1);
	cr_assert_eq(disco_poll_relays(&d, 1000 + RELAY_PROBE_MS + 5, out, 8), 1);
	cr_assert(addr_equal(&out[0].to, &two[1]));
	/* a probe unanswered leaves last_answer at 0 */
	cr_assert_eq(disco_server_find(&d, &two[0])->last_answer, 0);
}

/* a relay whose address is also a --stun server is probed all the same */
Test(disco, relay_at_a_stun_servers_address_is_probed)
{
	struct disco d;
	struct disco_send out[8];
	const union sockaddr_any r = A(R1);

	disco_init(&d, 0, 1000);
	cr_assert_eq(disco_add_server(&d, &r, "stun:r1", false), 0);
	cr_assert_eq(disco_relays_deadline(&d), UINT64_MAX);
	cr_assert_eq(disco_set_relays(&d, &r, 1), 0, "no new server");
	cr_assert_eq(disco_poll_relays(&d, 1000, out, 8), 1);
	cr_assert(addr_equal(&out[0].to, &r));
	cr_assert_eq(disco_set_relays(&d, NULL, 0), 0, "the --stun entry stays");
	cr_assert_eq(d.nsrv, 1);
	cr_assert_eq(disco_relays_deadline(&d), UINT64_MAX, "but is no longer probed");
}
