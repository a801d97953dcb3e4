/* The data plane with worker threads (issue 19): three devices in one
 * process, A with peers B and C, the sockets and TUNs faked by the ops.
 * Thousands of packets of assorted sizes cross both ways in batches that
 * mix the peers; every datagram and TUN packet is recorded. Checked: each
 * session's counters leave in order with no gap (what the receiver's replay
 * window expects), each sender's packets reach the TUN in the order they
 * were sent, nothing is refused as a replay, and with 1 thread and with 4
 * the bytes on the wire and on the TUNs are the same (the random numbers
 * come from a seeded generator, so both runs make the same keys). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "agent/wg/crypto.h"
#include "agent/wg/device.h"

#define NODES 3
#define NPKT 3000		/* per direction of each peer pair */
#define BUFSZ 2048
#define MAXREC (4 * NPKT + 64)

struct rec {
	uint8_t data[1600];
	size_t len;
	int from, to;		/* node indices */
};

struct node {
	struct wg_device *dev;
	union sockaddr_any addr;
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	int idx;
};

/* everything sent on the wire, and delivered to a TUN, in order */
struct run {
	struct rec *wire;
	size_t n_wire, carried;
	struct rec *tun;
	size_t n_tun;
	struct wg_device_stats stats[NODES];
	uint32_t sent[NODES][NODES];	/* packets into s's TUN for d */
};

static struct node nodes[NODES];
static struct run *cur;
static uint64_t clock_ns;

static uint64_t tick(void)
{
	return clock_ns += 1000;
}

/* ---- a seeded random source, so two runs make the same keys ------------- */

static uint64_t rng_state;

static uint64_t splitmix(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const char *rng_name(void)
{
	return "seeded-test";
}

static uint32_t rng_random(void)
{
	return (uint32_t)splitmix();
}

static void rng_buf(void *buf, size_t n)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)splitmix();
}

static randombytes_implementation seeded = {
	.implementation_name = rng_name,
	.random = rng_random,
	.buf = rng_buf,
};

/* ---- the fake socket and TUN -------------------------------------------- */

static int node_of(const union sockaddr_any *a)
{
	for (int i = 0; i < NODES; i++)
		if (addr_equal(a, &nodes[i].addr))
			return i;
	return -1;
}

static void udp_send(void *arg, const struct netio_pkt *pkts, int n)
{
	struct node *s = arg;
	for (int i = 0; i < n; i++) {
		cr_assert_lt(cur->n_wire, MAXREC);
		cr_assert_leq(pkts[i].len, sizeof(cur->wire[0].data));
		struct rec *r = &cur->wire[cur->n_wire++];
		memcpy(r->data, pkts[i].data, pkts[i].len);
		r->len = pkts[i].len;
		r->from = s->idx;
		r->to = node_of(&pkts[i].addr);
		cr_assert_geq(r->to, 0);
	}
}

static void tun_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	struct node *s = arg;
	for (int i = 0; i < n; i++) {
		cr_assert_lt(cur->n_tun, MAXREC);
		struct rec *r = &cur->tun[cur->n_tun++];
		memcpy(r->data, pkts[i].data, pkts[i].len);
		r->len = pkts[i].len;
		r->from = -1;
		r->to = s->idx;
	}
}

static const struct wg_device_ops ops = { .udp_send = udp_send, .tun_deliver = tun_deliver };

/* Carries what was sent since the last call: for each receiver, its
 * datagrams in the order sent, in batches of size up to 64 (so one batch
 * mixes B's and C's datagrams to A). */
static int carry(void)
{
	static uint8_t bufs[NETIO_BATCH_MAX][BUFSZ];
	struct netio_pkt pkts[NETIO_BATCH_MAX];
	size_t from = cur->carried, to = cur->n_wire;

	cur->carried = to;
	for (int d = 0; d < NODES; d++) {
		int m = 0;
		for (size_t i = from; i <= to; i++) {
			if (i < to && cur->wire[i].to == d) {
				memcpy(bufs[m], cur->wire[i].data, cur->wire[i].len);
				pkts[m] = (struct netio_pkt){ .data = bufs[m], .len = cur->wire[i].len, .cap = BUFSZ,
							      .addr = nodes[cur->wire[i].from].addr };
				m++;
			}
			if (m && (m == NETIO_BATCH_MAX || i == to)) {
				wg_device_input_udp(nodes[d].dev, pkts, m, tick());
				m = 0;
			}
		}
	}
	return (int)(to - from);
}

static void pump(void)
{
	while (carry())
		;
}

static const char *TIP[NODES] = { "100.64.0.1", "100.64.0.2", "100.64.0.3" };

/* an IPv4 packet from node s to node d carrying seq, of a length that varies */
static size_t ipv4(uint8_t *p, int s, int d, uint32_t seq)
{
	size_t len = 28 + (seq * 131u) % 1392;

	memset(p, (int)(seq & 0xff), len);
	p[0] = 0x45;
	p[1] = 0;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[9] = 17;
	inet_pton(AF_INET, TIP[s], p + 12);
	inet_pton(AF_INET, TIP[d], p + 16);
	memcpy(p + 20, &seq, sizeof(seq));
	return len;
}

/* node s sends k packets to each destination in dests, the destinations
 * taking turns in runs of a few packets, as one TUN batch */
static void tun_batch(int s, const int *dests, int nd, uint32_t *seq, int k)
{
	static uint8_t bufs[NETIO_BATCH_MAX][BUFSZ];
	struct netio_pkt pkts[NETIO_BATCH_MAX];

	for (int i = 0; i < k; i++) {
		int d = dests[(i / 3) % nd];
		pkts[i].data = bufs[i] + WG_DEVICE_HEADROOM;
		pkts[i].cap = BUFSZ - WG_DEVICE_HEADROOM;
		pkts[i].len = ipv4(pkts[i].data, s, d, seq[d]++);
	}
	wg_device_input_tun(nodes[s].dev, pkts, k, tick());
}

static void node_init(int i, const char *addr, int threads)
{
	struct node *n = &nodes[i];

	memset(n, 0, sizeof(*n));
	n->idx = i;
	cr_assert_eq(addr_parse(addr, &n->addr), 0);
	wg_dh_generate(n->priv, n->pub);
	cr_assert_eq(wg_device_new(&ops, n, &n->dev), 0);
	cr_assert_eq(wg_device_set_private_key(n->dev, n->priv), 0);
	wg_device_set_wall_clock(n->dev, clock_ns, 1700000000ull * WG_NSEC_PER_SEC);
	cr_assert_eq(wg_device_set_threads(n->dev, threads), 0);
	cr_assert_eq(wg_device_get_threads(n->dev), threads);
}

static void link_peers(int s, int d)
{
	struct wg_peer *p;
	struct cidr pfx;
	char c[32];

	cr_assert_eq(wg_device_peer_add(nodes[s].dev, nodes[d].pub, &p), 0);
	wg_peer_set_endpoint(p, &nodes[d].addr);
	snprintf(c, sizeof(c), "%s/32", TIP[d]);
	cr_assert_eq(cidr_parse(c, false, &pfx), 0);
	cr_assert_eq(wg_peer_allowed_ip_add(p, &pfx), 0);
}

/* the whole exchange with every device on `threads` threads */
static void exchange(struct run *r, int threads)
{
	static const int to_bc[] = { 1, 2 }, to_a[] = { 0 };
	uint32_t (*seq)[NODES];

	memset(r, 0, sizeof(*r));
	r->wire = calloc(MAXREC, sizeof(*r->wire));
	r->tun = calloc(MAXREC, sizeof(*r->tun));
	cr_assert(r->wire && r->tun);
	cur = r;
	seq = r->sent;
	rng_state = 19;
	clock_ns = 1000000000ull;
	node_init(0, "192.0.2.1:51820", threads);
	node_init(1, "192.0.2.2:51820", threads);
	node_init(2, "192.0.2.3:51820", threads);
	link_peers(0, 1);
	link_peers(0, 2);
	link_peers(1, 0);
	link_peers(2, 0);

	/* A -> B and C, runs for each in every batch */
	for (int sent = 0, k = 1; sent < 2 * NPKT; sent += k, k = 1 + (k * 29 + 7) % NETIO_BATCH_MAX) {
		if (sent + k > 2 * NPKT)
			k = 2 * NPKT - sent;
		tun_batch(0, to_bc, 2, seq[0], k);
		pump();
	}
	/* B and C -> A, several batches of each before A reads, so A's
	 * batches hold both */
	for (int sent = 0, k = 5; sent < NPKT; sent += k, k = 1 + (k * 37 + 3) % NETIO_BATCH_MAX) {
		if (sent + k > NPKT)
			k = NPKT - sent;
		tun_batch(1, to_a, 1, seq[1], k);
		tun_batch(2, to_a, 1, seq[2], k);
		if ((sent / 64) % 4 == 3)
			pump();
	}
	pump();
	for (int i = 0; i < NODES; i++) {
		wg_device_get_stats(nodes[i].dev, &r->stats[i]);
		wg_device_free(nodes[i].dev);
	}
}

static void run_free(struct run *r)
{
	free(r->wire);
	free(r->tun);
}

/* per session (receiver index), counters 0, 1, 2, ... in the order sent */
static void check_wire_order(const struct run *r)
{
	struct { uint32_t index; uint64_t next; } s[16];
	int ns = 0;
	size_t data = 0;

	for (size_t i = 0; i < r->n_wire; i++) {
		const struct rec *w = &r->wire[i];
		uint32_t index;
		uint64_t counter;
		int k;

		if (w->data[0] != WG_MSG_DATA)
			continue;
		data++;
		memcpy(&index, w->data + 4, 4);
		memcpy(&counter, w->data + 8, 8);
		index = le32toh(index);
		counter = le64toh(counter);
		for (k = 0; k < ns && s[k].index != index; k++)
			;
		if (k == ns) {
			cr_assert_lt(ns, 16);
			s[ns].index = index;
			s[ns++].next = 0;
		}
		cr_assert_eq(counter, s[k].next, "datagram %zu of session %08x: counter %lu, expected %lu", i,
			     index, (unsigned long)counter, (unsigned long)s[k].next);
		s[k].next++;
	}
	cr_expect_geq(data, 4 * NPKT);
	cr_expect_eq(ns, 4, "one session each way per peer pair");
}

/* each receiver sees each sender's packets in sequence, every one of them */
static void check_tun_order(const struct run *r)
{
	uint32_t next[NODES][NODES] = { { 0 } };

	for (size_t i = 0; i < r->n_tun; i++) {
		const struct rec *t = &r->tun[i];
		struct in_addr src;
		int s;
		uint32_t seq;

		memcpy(&src, t->data + 12, 4);
		for (s = 0; s < NODES; s++) {
			struct in_addr a;
			inet_pton(AF_INET, TIP[s], &a);
			if (a.s_addr == src.s_addr)
				break;
		}
		cr_assert_lt(s, NODES);
		memcpy(&seq, t->data + 20, 4);
		cr_assert_eq(seq, next[s][t->to], "TUN packet %zu, %d -> %d: seq %u, expected %u", i, s, t->to,
			     seq, next[s][t->to]);
		next[s][t->to]++;
	}
	for (int s = 0; s < NODES; s++)
		for (int d = 0; d < NODES; d++)
			cr_expect_eq(next[s][d], r->sent[s][d], "%d -> %d: %u of %u delivered", s, d,
				     next[s][d], r->sent[s][d]);
	cr_expect_eq(r->sent[0][1] + r->sent[0][2], 2 * NPKT);
	cr_expect_eq(r->sent[1][0], NPKT);
	for (int i = 0; i < NODES; i++) {
		cr_expect_eq(r->stats[i].rx_replay, 0, "node %d refused replays", i);
		cr_expect_eq(r->stats[i].rx_bad_auth, 0);
		cr_expect_eq(r->stats[i].tx_staged_dropped, 0);
	}
}

static void same_records(const struct rec *x, size_t nx, const struct rec *y, size_t ny, const char *what)
{
	cr_assert_eq(nx, ny, "%s: %zu and %zu", what, nx, ny);
	for (size_t i = 0; i < nx; i++) {
		cr_assert_eq(x[i].len, y[i].len, "%s %zu: length", what, i);
		cr_assert_eq(x[i].to, y[i].to, "%s %zu: destination", what, i);
		cr_assert_eq(memcmp(x[i].data, y[i].data, x[i].len), 0, "%s %zu: bytes", what, i);
	}
}

static void seed_random(void)
{
	cr_assert_eq(randombytes_set_implementation(&seeded), 0);
	cr_assert_eq(wg_crypto_init(), 0);
}

TestSuite(wg_device_threads, .init = seed_random, .timeout = 120);

Test(wg_device_threads, order_kept_on_four_threads)
{
	struct run r;

	exchange(&r, 4);
	check_wire_order(&r);
	check_tun_order(&r);
	run_free(&r);
}

Test(wg_device_threads, one_thread_and_four_give_the_same_bytes)
{
	struct run r1, r4;

	exchange(&r1, 1);
	check_wire_order(&r1);
	check_tun_order(&r1);
	exchange(&r4, 4);
	same_records(r1.wire, r1.n_wire, r4.wire, r4.n_wire, "datagram");
	same_records(r1.tun, r1.n_tun, r4.tun, r4.n_tun, "TUN packet");
	run_free(&r1);
	run_free(&r4);
}

Test(wg_device_threads, thread_count_bounds)
{
	struct wg_device *dev;

	cr_assert_eq(wg_device_new(&ops, NULL, &dev), 0);
	cr_expect_eq(wg_device_get_threads(dev), 1, "one thread unless asked");
	cr_expect_eq(wg_device_set_threads(dev, -1), -EINVAL);
	cr_expect_eq(wg_device_set_threads(dev, 65), -EINVAL);
	cr_expect_eq(wg_device_set_threads(dev, 3), 0);
	cr_expect_eq(wg_device_get_threads(dev), 3);
	cr_expect_eq(wg_device_set_threads(dev, 0), 0, "0: one per CPU");
	cr_expect_geq(wg_device_get_threads(dev), 1);
	cr_expect_eq(wg_device_set_threads(dev, 1), 0);
	cr_expect_eq(wg_device_get_threads(dev), 1);
	wg_device_free(dev);
}
