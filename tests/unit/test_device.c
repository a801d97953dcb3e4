/* Two devices wired back to back in one process: every datagram one emits is
 * handed to the other's wg_device_input_udp with the sender's address. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "agent/wg/crypto.h"
#include "agent/wg/device.h"
#include "agent/wg/uapi.h"

#define MAXQ 256
#define BUFSZ 2048

struct side {
	struct wg_device *dev;
	union sockaddr_any addr;	/* where its datagrams come from */
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	/* datagrams sent, not yet carried */
	uint8_t out[MAXQ][BUFSZ];
	size_t out_len[MAXQ];
	union sockaddr_any out_to[MAXQ];
	int n_out;
	/* IP packets delivered to its TUN */
	uint8_t tun[MAXQ][BUFSZ];
	size_t tun_len[MAXQ];
	int n_tun;
};

/* the owner's clock, fake: a microsecond passes with every call into a
 * device, as a real one would pass at least */
static uint64_t clock_ns;
static uint64_t tick(void)
{
	return clock_ns += 1000;
}
static struct side a, b, c;
static struct side *sides[] = { &a, &b, &c };

static void side_udp_send(void *arg, const struct netio_pkt *pkts, int n)
{
	struct side *s = arg;
	for (int i = 0; i < n; i++) {
		cr_assert_lt(s->n_out, MAXQ);
		cr_assert_leq(pkts[i].len, BUFSZ);
		memcpy(s->out[s->n_out], pkts[i].data, pkts[i].len);
		s->out_len[s->n_out] = pkts[i].len;
		s->out_to[s->n_out] = pkts[i].addr;
		s->n_out++;
	}
}

static void side_tun_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	struct side *s = arg;
	for (int i = 0; i < n; i++) {
		cr_assert_lt(s->n_tun, MAXQ);
		memcpy(s->tun[s->n_tun], pkts[i].data, pkts[i].len);
		s->tun_len[s->n_tun] = pkts[i].len;
		s->n_tun++;
	}
}

/* inner sources refused because another peer owns them (issue 17) */
static struct wg_peer *owned_from[4], *owned_owner[4];
static int n_owned;

static void side_owned_elsewhere(void *arg, struct wg_peer *from, struct wg_peer *owner)
{
	(void)arg;
	if (n_owned < 4) {
		owned_from[n_owned] = from;
		owned_owner[n_owned] = owner;
	}
	n_owned++;
}

static const struct wg_device_ops ops = { .udp_send = side_udp_send, .tun_deliver = side_tun_deliver,
					  .rx_owned_elsewhere = side_owned_elsewhere };

/* carries what from sent (as coming from from->addr) to the side whose
 * address it was sent to, a batch per destination; returns how many */
static int carry(struct side *from)
{
	static uint8_t bufs[MAXQ][BUFSZ];
	struct netio_pkt pkts[MAXQ];
	int n = from->n_out, total = 0;
	from->n_out = 0;
	for (size_t s = 0; s < sizeof(sides) / sizeof(sides[0]); s++) {
		struct side *to = sides[s];
		int m = 0;
		if (!to->dev)
			continue;
		for (int i = 0; i < n; i++) {
			if (!addr_equal(&from->out_to[i], &to->addr))
				continue;
			memcpy(bufs[m], from->out[i], from->out_len[i]);
			pkts[m] = (struct netio_pkt){ .data = bufs[m], .len = from->out_len[i], .cap = BUFSZ,
						      .addr = from->addr };
			m++;
		}
		if (m)
			wg_device_input_udp(to->dev, pkts, m, tick());
		total += m;
	}
	cr_expect_eq(total, n, "every datagram went to a known endpoint");
	return n;
}

static void pump(void)
{
	while (carry(&a) + carry(&b) + (c.dev ? carry(&c) : 0))
		;
}

/* an IPv4 ICMP-ish packet of len bytes from src to dst, payload byte fill */
static size_t ipv4(uint8_t *p, size_t len, const char *src, const char *dst, uint8_t fill)
{
	memset(p, fill, len);
	p[0] = 0x45;
	p[1] = 0;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[9] = 1;
	inet_pton(AF_INET, src, p + 12);
	inet_pton(AF_INET, dst, p + 16);
	return len;
}

/* sends one packet into s's TUN side */
static void tun_in(struct side *s, const uint8_t *ip, size_t len)
{
	static uint8_t buf[BUFSZ];
	struct netio_pkt p = { .data = buf + WG_DEVICE_HEADROOM, .len = len,
			       .cap = BUFSZ - WG_DEVICE_HEADROOM };
	memcpy(p.data, ip, len);
	wg_device_input_tun(s->dev, &p, 1, tick());
}

static void side_init(struct side *s, const char *addr)
{
	memset(s, 0, sizeof(*s));
	cr_assert_eq(addr_parse(addr, &s->addr), 0);
	wg_dh_generate(s->priv, s->pub);
	cr_assert_eq(wg_device_new(&ops, s, &s->dev), 0);
	cr_assert_eq(wg_device_set_private_key(s->dev, s->priv), 0);
}

static void connect_peers(const uint8_t *psk)
{
	struct { struct side *self, *other; const char *aip; } v[] = {
		{ &a, &b, "100.64.0.2/32" }, { &b, &a, "100.64.0.1/32" },
	};
	for (int i = 0; i < 2; i++) {
		struct wg_peer *p;
		struct cidr pfx;
		cr_assert_eq(wg_device_peer_add(v[i].self->dev, v[i].other->pub, &p), 0);
		wg_peer_set_endpoint(p, &v[i].other->addr);
		wg_peer_set_preshared_key(p, psk);
		cr_assert_eq(cidr_parse(v[i].aip, false, &pfx), 0);
		cr_assert_eq(wg_peer_allowed_ip_add(p, &pfx), 0);
	}
}

static void setup(void)
{
	cr_assert_eq(wg_crypto_init(), 0);
	clock_ns = 1000000000ull;
	side_init(&a, "192.0.2.1:51820");
	side_init(&b, "192.0.2.2:51820");
}

static void teardown(void)
{
	wg_device_free(a.dev);
	wg_device_free(b.dev);
	wg_device_free(c.dev);
	c.dev = NULL;
}

static struct wg_peer *peer_of(struct side *s, struct side *other)
{
	return wg_device_peer_find(s->dev, other->pub);
}

/* A's first packet starts the handshake, waits for it, and arrives intact */
static void handshake_and_data(const uint8_t *psk)
{
	uint8_t ip[1500];
	struct wg_device_stats st;
	struct wg_peer_state ps;

	connect_peers(psk);
	size_t n = ipv4(ip, 1000, "100.64.0.1", "100.64.0.2", 0xab);
	tun_in(&a, ip, n);
	cr_assert_eq(a.n_out, 1, "an initiation, the packet staged");
	cr_expect_eq(a.out_len[0], WG_MSG_INITIATION_LEN);
	pump();
	cr_assert_eq(b.n_tun, 1, "B got the staged packet after the handshake");
	cr_expect_eq(b.tun_len[0], n);
	cr_expect_eq(memcmp(b.tun[0], ip, n), 0);

	n = ipv4(ip, 1400, "100.64.0.2", "100.64.0.1", 0xcd);
	tun_in(&b, ip, n);
	pump();
	cr_assert_eq(a.n_tun, 1, "and the answer came back");
	cr_expect_eq(memcmp(a.tun[0], ip, n), 0);

	wg_device_get_stats(a.dev, &st);
	cr_expect_eq(st.handshake_initiations_tx, 1);
	cr_expect_eq(st.handshake_responses_rx, 1);
	cr_expect_eq(st.rx_data, 1);
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.handshake_responses_tx, 1);

	for (int i = 0; i < 2; i++) {
		struct side *s = i ? &b : &a, *o = i ? &a : &b;
		wg_peer_get_state(peer_of(s, o), &ps);
		cr_expect_neq(ps.last_handshake.tv_sec, 0, "side %d saw the handshake", i);
		cr_expect_gt(ps.rx_bytes, 1000);
		cr_expect_gt(ps.tx_bytes, 1000);
		cr_expect(addr_equal(&ps.endpoint, &o->addr));
		cr_expect_eq(ps.has_preshared_key, psk != NULL);
	}
}

TestSuite(wg_device, .init = setup, .fini = teardown);

Test(wg_device, handshake_and_data)
{
	handshake_and_data(NULL);
}

Test(wg_device, handshake_and_data_with_psk)
{
	uint8_t psk[WG_KEY_LEN];
	wg_random(psk, sizeof(psk));
	handshake_and_data(psk);
}

Test(wg_device, mismatched_psk_fails)
{
	uint8_t ip[100], psk[WG_KEY_LEN];
	struct wg_device_stats st;
	wg_random(psk, sizeof(psk));
	connect_peers(psk);
	psk[0] ^= 1;
	wg_peer_set_preshared_key(peer_of(&b, &a), psk);
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.1", "100.64.0.2", 1));
	pump();
	cr_expect_eq(b.n_tun, 0);
	wg_device_get_stats(a.dev, &st);
	cr_expect_eq(st.rx_bad_handshake, 1, "A refuses the response made with another psk");
}

Test(wg_device, replay_and_forgery_dropped)
{
	uint8_t ip[200], saved[BUFSZ];
	struct wg_device_stats st;
	size_t len;
	handshake_and_data(NULL);

	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.1", "100.64.0.2", 7));
	cr_assert_eq(a.n_out, 1);
	len = a.out_len[0];
	memcpy(saved, a.out[0], len);
	pump();
	cr_assert_eq(b.n_tun, 2);

	/* the same datagram again: a replay */
	memcpy(a.out[0], saved, len);
	a.out_len[0] = len;
	a.out_to[0] = b.addr;
	a.n_out = 1;
	pump();
	/* a flipped bit: fails authentication */
	memcpy(a.out[0], saved, len);
	a.out[0][len - 1] ^= 1;
	a.n_out = 1;
	pump();
	/* truncated */
	a.out_len[0] = WG_MSG_DATA_MIN_LEN - 1;
	a.n_out = 1;
	pump();
	cr_expect_eq(b.n_tun, 2, "nothing more delivered");
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.rx_replay, 2, "the replay, and the forgery with a seen counter");
	cr_expect_eq(st.rx_bad_length, 1);
}

Test(wg_device, inner_source_must_be_allowed)
{
	uint8_t ip[200];
	struct wg_device_stats st;
	handshake_and_data(NULL);
	/* B has 100.64.0.1/32 for A; A routes 100.64.0.2 to B but spoofs its source */
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.9", "100.64.0.2", 1));
	pump();
	cr_expect_eq(b.n_tun, 1);
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.rx_bad_src, 1);

	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.1", "100.64.0.77", 1));
	cr_expect_eq(a.n_out, 0);
	wg_device_get_stats(a.dev, &st);
	cr_expect_eq(st.tx_no_route, 1);
}

Test(wg_device, roaming)
{
	uint8_t ip[200];
	struct wg_peer_state ps;
	handshake_and_data(NULL);
	cr_assert_eq(addr_parse("198.51.100.7:40000", &a.addr), 0);	/* A moves */
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.1", "100.64.0.2", 1));
	carry(&a);
	wg_peer_get_state(peer_of(&b, &a), &ps);
	cr_expect(addr_equal(&ps.endpoint, &a.addr), "B follows A to its new address");
	tun_in(&b, ip, ipv4(ip, sizeof(ip), "100.64.0.2", "100.64.0.1", 1));
	cr_assert_eq(b.n_out, 1);
	cr_expect(addr_equal(&b.out_to[0], &a.addr));
	pump();
	cr_expect_eq(a.n_tun, 2);
}

Test(wg_device, uapi_apply_and_dump)
{
	static const char body[] = "replace_peers=true\n"
				   "public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n"
				   "endpoint=192.0.2.9:1234\npersistent_keepalive_interval=25\n"
				   "allowed_ip=100.64.1.0/24\nallowed_ip=fd00::/64\n"
				   "public_key=e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a\n"
				   "update_only=true\n";
	struct wg_uapi_config in, out;
	char hex[WG_KEY_HEX_LEN];

	connect_peers(NULL);
	cr_assert_eq(wg_uapi_parse_set(body, strlen(body), &in, NULL), 0);
	cr_assert_eq(wg_device_apply(a.dev, &in, tick()), 0);
	wg_uapi_config_clear(&in);
	cr_expect_eq(wg_device_peer_count(a.dev), 1, "replaced, and update_only created nothing");
	cr_assert_eq(wg_device_dump(a.dev, &out), 0);
	cr_expect(out.has_private_key);
	cr_expect_eq(memcmp(out.private_key, a.priv, WG_KEY_LEN), 0);
	cr_assert_eq(out.n_peers, 1);
	wg_key_to_hex(hex, out.peers[0].public_key);
	cr_expect_str_eq(hex, "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376");
	cr_expect_eq(out.peers[0].persistent_keepalive, 25);
	cr_expect_eq(out.peers[0].n_allowed_ips, 2);
	cr_expect_eq(addr_port(&out.peers[0].endpoint), 1234);
	wg_uapi_config_clear(&out);

	/* turning the keepalive on sent one at once; with no session, that is an initiation */
	cr_expect_eq(a.n_out, 1);
	cr_expect_eq(a.out_len[0], WG_MSG_INITIATION_LEN);
}

Test(wg_device, own_key_as_peer_refused)
{
	struct wg_peer *p;
	cr_expect_eq(wg_device_peer_add(a.dev, a.pub, &p), -EINVAL);
	cr_expect_eq(wg_device_peer_add(a.dev, b.pub, &p), 0);
	cr_expect_eq(wg_device_peer_add(a.dev, b.pub, &p), -EEXIST);
	/* taking B's key as our own drops the peer B */
	cr_expect_eq(wg_device_set_private_key(a.dev, b.priv), 0);
	cr_expect_eq(wg_device_peer_count(a.dev), 0);
}

/* A routes one batch, interleaved, to two peers by allowed IPs; more packets
 * than one netio batch; each side gets exactly its own, in order */
Test(wg_device, two_peers_one_batch)
{
	static uint8_t bufs[150][BUFSZ];
	struct netio_pkt pkts[150];
	struct wg_peer *p;
	struct cidr cb, cc;

	handshake_and_data(NULL);
	side_init(&c, "192.0.2.3:51820");
	cr_assert_eq(cidr_parse("100.64.2.0/24", false, &cc), 0);
	cr_assert_eq(wg_device_peer_add(a.dev, c.pub, &p), 0);
	wg_peer_set_endpoint(p, &c.addr);
	cr_assert_eq(wg_peer_allowed_ip_add(p, &cc), 0);
	cr_assert_eq(cidr_parse("100.64.0.1/32", false, &cb), 0);
	cr_assert_eq(wg_device_peer_add(c.dev, a.pub, &p), 0);
	wg_peer_set_endpoint(p, &a.addr);
	cr_assert_eq(wg_peer_allowed_ip_add(p, &cb), 0);
	/* B's prefix grows to a /16 that contains C's /24: longest match wins */
	cr_assert_eq(cidr_parse("100.64.0.0/16", false, &cb), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(peer_of(&a, &b), &cb), 0);

	int n = 0, to_b = 0, to_c = 0;
	for (int i = 0; i < 150; i++) {
		bool for_c = i % 3 == 0 || (i > 60 && i < 90);
		pkts[n] = (struct netio_pkt){ .data = bufs[n] + WG_DEVICE_HEADROOM, .cap = BUFSZ - WG_DEVICE_HEADROOM };
		pkts[n].len = ipv4(pkts[n].data, 100 + (size_t)i, "100.64.0.1", for_c ? "100.64.2.9" : "100.64.7.7",
				   (uint8_t)i);
		n++;
		for_c ? to_c++ : to_b++;
	}
	int before_b = b.n_tun;
	wg_device_input_tun(a.dev, pkts, n, tick());
	pump();
	cr_expect_eq(b.n_tun - before_b, to_b);
	cr_expect_eq(c.n_tun, to_c);
	/* in order, each with its own size */
	for (int i = 0, jb = before_b, jc = 0; i < 150; i++) {
		bool for_c = i % 3 == 0 || (i > 60 && i < 90);
		struct side *s = for_c ? &c : &b;
		int j = for_c ? jc++ : jb++;
		if (j < s->n_tun)
			cr_expect_eq(s->tun_len[j], 100 + (size_t)i, "packet %d", i);
	}
}

/* drops what s sent to addresses no side has (candidates that lead nowhere);
 * returns how many were dropped */
static int drop_unreachable(struct side *s)
{
	int k = 0, dropped = 0;
	for (int i = 0; i < s->n_out; i++) {
		bool known = false;
		for (size_t j = 0; j < sizeof(sides) / sizeof(sides[0]); j++)
			known |= sides[j]->dev && addr_equal(&s->out_to[i], &sides[j]->addr);
		if (!known) {
			dropped++;
			continue;
		}
		if (k != i) {
			memcpy(s->out[k], s->out[i], s->out_len[i]);
			s->out_len[k] = s->out_len[i];
			s->out_to[k] = s->out_to[i];
		}
		k++;
	}
	s->n_out = k;
	return dropped;
}

Test(wg_device, spray_first_response_wins)
{
	union sockaddr_any eps[3], none = { 0 };
	struct wg_device_stats st;
	struct wg_peer_state ps;
	struct wg_peer *pa;
	uint8_t first[WG_MSG_INITIATION_LEN];

	connect_peers(NULL);
	pa = peer_of(&a, &b);
	wg_peer_set_endpoint(pa, &none);
	cr_assert_eq(addr_parse("198.51.100.1:1000", &eps[0]), 0);
	eps[1] = b.addr;
	cr_assert_eq(addr_parse("10.0.0.2:51820", &eps[2]), 0);

	cr_assert_eq(wg_peer_initiate_to(pa, eps, 3, tick()), 3);
	cr_assert_eq(a.n_out, 3);
	for (int i = 0; i < 3; i++) {
		cr_expect(addr_equal(&a.out_to[i], &eps[i]), "copy %d to candidate %d", i, i);
		cr_expect_eq(a.out_len[i], WG_MSG_INITIATION_LEN);
		cr_expect_eq(memcmp(a.out[i], a.out[0], WG_MSG_INITIATION_LEN), 0, "the same bytes");
	}
	memcpy(first, a.out[0], sizeof(first));
	/* a second spray at once (not held back by REKEY_TIMEOUT): the same
	 * initiation again, since it is unanswered */
	cr_assert_eq(wg_peer_initiate_to(pa, eps, 3, tick()), 3);
	cr_assert_eq(a.n_out, 6);
	cr_expect_eq(memcmp(a.out[4], first, sizeof(first)), 0, "resent, not remade");
	wg_peer_get_state(pa, &ps);
	cr_expect(addr_equal(&ps.endpoint, &eps[0]), "no endpoint before: the first candidate");

	cr_expect_eq(drop_unreachable(&a), 4);
	carry(&a);
	cr_assert_eq(b.n_out, 1, "B answers the first copy and refuses the replayed one");
	pump();
	wg_peer_get_state(pa, &ps);
	cr_expect_neq(ps.last_handshake.tv_sec, 0, "the handshake completed");
	cr_expect(addr_equal(&ps.endpoint, &b.addr), "the endpoint roamed to the one that answered");
	cr_expect_gt(ps.handshake_rtt_ns, 0);
	cr_expect_lt(ps.handshake_rtt_ns, 1000000000ull, "a round trip inside one process");
	wg_device_get_stats(a.dev, &st);
	cr_expect_eq(st.handshake_initiations_tx, 6);
	cr_expect_eq(st.handshake_responses_rx, 1);
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.handshake_responses_tx, 1);
	cr_expect_eq(st.rx_bad_handshake, 1, "the second copy is a replay");
	cr_expect_eq(st.handshake_initiations_rx, 2);

	/* answered: the next spray is a new initiation */
	cr_assert_eq(wg_peer_initiate_to(pa, eps, 3, tick()), 3);
	cr_expect_neq(memcmp(a.out[a.n_out - 1], first, sizeof(first)), 0);
	a.n_out = 0;

	cr_expect_eq(wg_peer_initiate_to(pa, eps, 0, tick()), -EINVAL);
	cr_expect_eq(wg_peer_initiate_to(pa, &none, 1, tick()), -EINVAL);
}

Test(wg_device, spray_without_key_refused)
{
	union sockaddr_any ep;
	connect_peers(NULL);
	wg_device_set_private_key(a.dev, NULL);
	ep = b.addr;
	cr_expect_eq(wg_peer_initiate_to(peer_of(&a, &b), &ep, 1, tick()), -ENOKEY);
	cr_expect_eq(a.n_out, 0);
}

Test(wg_device, extra_rx_source)
{
	uint8_t ip[200];
	struct wg_device_stats st;
	struct cidr vpc, bad = { .family = AF_INET, .prefix = 33 };
	struct wg_peer *pb;

	handshake_and_data(NULL);
	pb = peer_of(&b, &a);
	cr_assert_eq(cidr_parse("100.64.0.0/24", false, &vpc), 0);
	cr_expect_eq(wg_peer_rx_source_add(pb, &bad), -EINVAL);
	cr_assert_eq(wg_peer_rx_source_add(pb, &vpc), 0);
	cr_expect_eq(wg_peer_rx_source_add(pb, &vpc), 0, "twice is once");
	/* accepted from A though B's allowed IPs give A only 100.64.0.1/32 */
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.9", "100.64.0.2", 1));
	pump();
	cr_expect_eq(b.n_tun, 2);
	/* outside it: still refused */
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.1.9", "100.64.0.2", 1));
	pump();
	cr_expect_eq(b.n_tun, 2);
	cr_assert_eq(wg_peer_rx_source_remove(pb, &vpc), 0);
	cr_expect_eq(wg_peer_rx_source_remove(pb, &vpc), -ENOENT);
	tun_in(&a, ip, ipv4(ip, sizeof(ip), "100.64.0.9", "100.64.0.2", 1));
	pump();
	cr_expect_eq(b.n_tun, 2);
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.rx_bad_src, 2);
	/* nothing is routed by it */
	tun_in(&b, ip, ipv4(ip, sizeof(ip), "100.64.0.2", "100.64.0.9", 1));
	cr_expect_eq(b.n_out, 0);
}

/* issue 15 point 1: a peer with the VPC as extra inner sources (a relay
 * forwarding for others) never speaks for an address that another peer owns
 * by a longer prefix (a peer reached directly holds its /32). It still speaks
 * for addresses routed through the relay in use (the VPC prefix, as long as
 * its own): agents on different relays reach each other. */
Test(wg_device, extra_rx_source_never_a_direct_peers)
{
	static const struct {
		const char *src;
		bool delivered;
	} v[] = {
		{ "100.64.0.3", false },	/* C's: reached directly */
		{ "100.64.0.4", false },	/* R's own address */
		{ "100.64.0.9", true },		/* routed via R, the relay in use */
		{ "100.64.1.9", false },	/* outside the VPC */
	};
	uint8_t ip[200], key[WG_KEY_LEN], rpub[WG_KEY_LEN];
	struct wg_device_stats st;
	struct cidr vpc, c3, r4;
	struct wg_peer *pc, *pr;
	handshake_and_data(NULL);
	cr_assert_eq(cidr_parse("100.64.0.0/24", false, &vpc), 0);
	cr_assert_eq(cidr_parse("100.64.0.3/32", false, &c3), 0);
	cr_assert_eq(cidr_parse("100.64.0.4/32", false, &r4), 0);
	/* B: C direct, R the relay in use (the VPC routed to it), A another relay */
	side_init(&c, "192.0.2.3:51820");
	cr_assert_eq(wg_device_peer_add(b.dev, c.pub, &pc), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(pc, &c3), 0);
	wg_dh_generate(key, rpub);
	cr_assert_eq(wg_device_peer_add(b.dev, rpub, &pr), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(pr, &vpc), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(pr, &r4), 0);
	cr_assert_eq(wg_peer_rx_source_add(peer_of(&b, &a), &vpc), 0);
	n_owned = 0;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int before = b.n_tun;
		tun_in(&a, ip, ipv4(ip, sizeof(ip), v[i].src, "100.64.0.2", 1));
		pump();
		cr_expect_eq(b.n_tun - before, v[i].delivered, "source %s %s", v[i].src, v[i].delivered ? "delivered" : "dropped");
	}
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.rx_bad_src, 3);
	/* the owner is told of for C's and R's addresses, not for one nobody owns */
	cr_assert_eq(n_owned, 2);
	cr_expect_eq(owned_from[0], peer_of(&b, &a));
	cr_expect_eq(owned_owner[0], pc);
	cr_expect_eq(owned_from[1], peer_of(&b, &a));
	cr_expect_eq(owned_owner[1], pr);
}

/* a side that lost its sessions (restart) hears of a sender still using one */
static union sockaddr_any lost_src[4];
static int n_lost;

static void side_unknown_session(void *arg, const union sockaddr_any *src)
{
	(void)arg;
	if (n_lost < 4)
		lost_src[n_lost] = *src;
	n_lost++;
}

Test(wg_device, lost_session_reported_and_rebuilt)
{
	static const struct wg_device_ops ops_lost = { .udp_send = side_udp_send, .tun_deliver = side_tun_deliver,
						       .unknown_session = side_unknown_session };
	union sockaddr_any none = { 0 };
	struct wg_device_stats st;
	struct wg_peer *pb;
	struct cidr pfx;
	uint8_t ip[1500];
	size_t n;

	n_lost = 0;
	connect_peers(NULL);
	n = ipv4(ip, 200, "100.64.0.1", "100.64.0.2", 0x11);
	tun_in(&a, ip, n);
	pump();
	cr_assert_eq(b.n_tun, 1, "a session to start with");

	/* B restarts: same key, same peer, but no session and no endpoint for A
	 * (A is behind a NAT that B cannot reach unasked) */
	wg_device_free(b.dev);
	cr_assert_eq(wg_device_new(&ops_lost, &b, &b.dev), 0);
	cr_assert_eq(wg_device_set_private_key(b.dev, b.priv), 0);
	cr_assert_eq(wg_device_peer_add(b.dev, a.pub, &pb), 0);
	wg_peer_set_endpoint(pb, &none);
	cr_assert_eq(cidr_parse("100.64.0.1/32", false, &pfx), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(pb, &pfx), 0);
	b.n_tun = 0;

	tun_in(&a, ip, n);
	cr_assert_eq(a.n_out, 1, "A still has its session: data, no handshake");
	carry(&a);
	cr_expect_eq(b.n_tun, 0, "nothing to decrypt it with");
	cr_assert_eq(n_lost, 1, "B is told once");
	cr_expect(addr_equal(&lost_src[0], &a.addr), "with the sender's address");
	wg_device_get_stats(b.dev, &st);
	cr_expect_eq(st.rx_unknown_index, 1);

	/* what meshd does with it: a handshake to that address */
	cr_assert_eq(wg_peer_initiate_to(pb, &lost_src[0], 1, tick()), 1);
	pump();
	tun_in(&a, ip, n);
	pump();
	cr_expect_eq(b.n_tun, 1, "A's next packet arrives on the new session");
	cr_expect_eq(n_lost, 1, "and is not reported");
}
