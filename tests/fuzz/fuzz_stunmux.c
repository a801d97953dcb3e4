/* libFuzzer target: meshd's STUN demultiplexer (stunmux_input) and the
 * owners it hands parsed messages to: disco_receive_msg, with a round out to
 * two STUN servers and liveness probes out to two relays (one of them also a
 * --stun server), and natdisc_receive_msg of an IPv4 and an IPv6 run (the
 * mapping, filtering and hairpinning tests meshd runs), on a fake clock. The
 * mux answers requests as a relay when the first input byte says so. The
 * input is then records:
 *
 *   0  raw datagram, from a chosen source, or the same with the transaction
 *      id of one of the requests sent so far written in (a trailing
 *      FINGERPRINT recomputed); into the mux, or (op bit 7) straight into
 *      disco_receive, the form for a caller that owns the bytes alone
 *   1  a well-formed message of any class and method made with lib/stun's
 *      builder (attributes chosen by bits: XOR-MAPPED-ADDRESS, CHANGE-REQUEST,
 *      RESPONSE-PORT, PADDING, an unknown comprehension-required one,
 *      SOFTWARE, FINGERPRINT), with a fresh or a sent transaction id
 *   2  the answer of the server the request went to (stun_server_answer),
 *      from that server
 *   3  the clock moves on (and a local address may change: disco_kick)
 *
 * Beyond not crashing: each datagram is parsed exactly once (mux.parsed
 * grows by one) and counted under exactly one owner, the one stunmux.h's
 * table names for it (computed here from disco_owns/natdisc_owns before the
 * call), so the counts always sum to the datagrams fed; a reply the answerer
 * builds parses, carries the request's transaction id, and is a success
 * telling the asker its address unless the request was one a server must
 * refuse (420 or 400); after each record's polls every deadline lies ahead
 * (disco's after at most one poll more at the same time). disco_receive
 * takes an answer only when it parses, is a response and disco waited for its
 * transaction id; a malformed one gets its stun_error, the rest STUN_E_TXN. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/meshd/disco.h"
#include "agent/meshd/stunmux.h"
#include "log.h"
#include "natdisc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { RECENT = 16, REPLY_CAP = 512 };	/* meshd's reply buffer (datapath.c) */

struct sent {
	union sockaddr_any dst;
	uint8_t buf[512];
	size_t len;
};

/* who sends to whom: two STUN servers (v4, v6), two relays (one at the
 * first STUN server's address), natdisc's servers of each family */
static const char *const stun_servers[] = { "203.0.113.1:3478", "[2001:db8:5::1]:3478" };
static const char *const relays[] = { "198.51.100.7:51820", "203.0.113.1:3478" };
static const char *const nd_ips[2][2] = { { "192.0.2.1", "192.0.2.2" }, { "2001:db8::1", "2001:db8::2" } };

struct rig {
	struct disco disco;
	struct natdisc *nd[STUNMUX_FAMILIES];
	struct stunmux mux;
	struct stun_server_cfg nd_srv[STUNMUX_FAMILIES];
	union sockaddr_any me[STUNMUX_FAMILIES];	/* the agent's mapping, per family */
	uint64_t now, fed;
	struct sent recent[RECENT];
	unsigned nsent;
};

static struct rig g;

static void keep(const union sockaddr_any *dst, const uint8_t *buf, size_t len)
{
	struct sent *s = &g.recent[g.nsent++ % RECENT];

	if (len > sizeof(s->buf))
		abort();
	s->dst = *dst;
	memcpy(s->buf, buf, len);
	s->len = len;
}

static void pump(void)
{
	struct disco_send out[DISCO_MAX_SERVERS];
	struct natdisc_send ns;
	int n;

	/* a deadline at now means "poll again now" (a kicked round that just
	 * ended starts at the next poll, as meshd's zero-delay timer does);
	 * more than one more would be a busy loop */
	for (int k = 0; k < 3; k++) {
		n = disco_poll(&g.disco, g.now, out, DISCO_MAX_SERVERS);
		for (int i = 0; i < n; i++)
			keep(&out[i].to, out[i].buf, out[i].len);
		if (disco_deadline(&g.disco) > g.now)
			break;
	}
	n = disco_poll_relays(&g.disco, g.now, out, DISCO_MAX_SERVERS);
	for (int i = 0; i < n; i++)
		keep(&out[i].to, out[i].buf, out[i].len);
	for (int f = 0; f < STUNMUX_FAMILIES; f++) {
		while (natdisc_poll(g.nd[f], g.now, &ns) == 1)
			keep(&ns.dst, ns.buf, ns.len);
		if (natdisc_done(g.nd[f]) ? natdisc_deadline(g.nd[f]) != UINT64_MAX
					  : natdisc_deadline(g.nd[f]) <= g.now)
			abort();
	}
	if (disco_deadline(&g.disco) <= g.now || disco_relays_deadline(&g.disco) <= g.now)
		abort();
}

static void setup(bool relay)
{
	union sockaddr_any a, r[2];

	memset(&g, 0, sizeof(g));
	g.now = 1000;
	disco_init(&g.disco, 0, g.now);
	for (int i = 0; i < 2; i++) {
		addr_parse(stun_servers[i], &a);
		if (disco_add_server(&g.disco, &a, stun_servers[i], false) != 0)
			abort();
		addr_parse(relays[i], &r[i]);
	}
	disco_set_relays(&g.disco, r, 2);
	for (int f = 0; f < STUNMUX_FAMILIES; f++) {
		struct natdisc_cfg cfg = { .tests = NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING |
						    NATDISC_TEST_HAIRPIN };
		struct stun_server_cfg *s = &g.nd_srv[f];

		s->rfc5780 = true;
		for (int ip = 0; ip < STUN_SRV_IPS; ip++)
			for (int port = 0; port < STUN_SRV_PORTS; port++)
				addr_parse_ip(nd_ips[f][ip], (uint16_t)(3478 + port), &s->addrs[ip][port]);
		cfg.server = s->addrs[0][0];
		if (natdisc_new(&cfg, &g.nd[f]) != 0)
			abort();
		for (int k = 0; k < natdisc_nsocks(g.nd[f]); k++) {
			addr_parse_ip(f ? "2001:db8:1::1" : "10.0.0.2", (uint16_t)(51820 + k), &a);
			natdisc_set_local(g.nd[f], k, &a);
		}
		if (natdisc_start(g.nd[f], g.now) != 0)
			abort();
		g.mux.natdisc[f] = g.nd[f];
	}
	addr_parse("198.51.100.200:40000", &g.me[0]);
	addr_parse("[2001:db8:ff::200]:40000", &g.me[1]);
	stunmux_init(&g.mux, &g.disco, relay, 51820, "natmesh meshd relay");
	for (int f = 0; f < STUNMUX_FAMILIES; f++)
		g.mux.natdisc[f] = g.nd[f];
	pump();
}

static void teardown(void)
{
	for (int f = 0; f < STUNMUX_FAMILIES; f++)
		natdisc_free(g.nd[f]);
}

/* stunmux.h's table, from the owners' own answers */
static enum stunmux_owner expected(const struct stun_msg *m, int *family)
{
	*family = -1;
	for (int f = 0; f < STUNMUX_FAMILIES && *family < 0; f++)
		if (natdisc_owns(g.nd[f], m->tid))
			*family = f;
	switch (m->cls) {
	case STUN_CLASS_REQUEST:
		if (*family >= 0)
			return STUNMUX_NATDISC;
		return g.mux.answer ? STUNMUX_ANSWERER : STUNMUX_DROPPED;
	case STUN_CLASS_SUCCESS:
	case STUN_CLASS_ERROR:
		if (disco_owns(&g.disco, m->tid))
			return STUNMUX_DISCO;
		return *family >= 0 ? STUNMUX_NATDISC : STUNMUX_DROPPED;
	default:
		return STUNMUX_DROPPED;
	}
}

/* a reply to m, asked from `from`, as the answerer must build it */
static void check_reply(const struct stun_msg *req, const union sockaddr_any *from, const uint8_t *reply,
			size_t len)
{
	union sockaddr_any want = *from;
	bool refuse = req->method != STUN_METHOD_BINDING || req->nunknown || req->has_change_request ||
		      req->has_response_port;
	struct stun_msg m;

	addr_unmap_v4(&want);
	if (!len)
		return;	/* did not fit the buffer: nothing is sent */
	if (stun_parse(reply, len, &m) != 0 || memcmp(m.tid, req->tid, STUN_TID_LEN) ||
	    m.method != req->method)
		abort();
	if (refuse) {
		if (m.cls != STUN_CLASS_ERROR || !m.has_error ||
		    (m.error_code != STUN_ERROR_BAD_REQUEST && m.error_code != STUN_ERROR_UNKNOWN_ATTRIBUTE))
			abort();
	} else if (m.cls != STUN_CLASS_SUCCESS || !m.has_xor_mapped || !addr_equal(&m.xor_mapped, &want)) {
		abort();
	}
}

static void feed(const uint8_t *buf, size_t len, const union sockaddr_any *from)
{
	uint64_t parsed = g.mux.parsed, before[STUNMUX_OWNERS], sum = 0;
	struct stunmux_result res;
	enum stunmux_owner want;
	uint8_t reply[REPLY_CAP];
	struct stun_msg m;
	int family = -1;

	memcpy(before, g.mux.count, sizeof(before));
	want = stun_parse(buf, len, &m) == 0 ? expected(&m, &family) : STUNMUX_MALFORMED;
	if (stunmux_input(&g.mux, buf, len, from, g.now, reply, sizeof(reply), &res) != want ||
	    res.owner != want || g.mux.parsed != parsed + 1 || !strcmp(stunmux_owner_name(want), "?"))
		abort();
	g.fed++;
	for (int o = 0; o < STUNMUX_OWNERS; o++) {
		if (g.mux.count[o] != before[o] + (o == (int)want))
			abort();
		sum += g.mux.count[o];
	}
	if (sum != g.fed || (want == STUNMUX_NATDISC && res.family != family) ||
	    (want != STUNMUX_ANSWERER && res.reply_len) || res.reply_len > sizeof(reply) ||
	    (want == STUNMUX_MALFORMED) != (res.err != 0))
		abort();
	if (want == STUNMUX_ANSWERER)
		check_reply(&m, from, reply, res.reply_len);
}

/* record 0, op bit 7: the bytes to disco alone */
static void direct(const uint8_t *buf, size_t len, const union sockaddr_any *from)
{
	struct stun_msg m;
	int perr = stun_parse(buf, len, &m);
	bool owned = perr == 0 && disco_owns(&g.disco, m.tid);
	int rc = disco_receive(&g.disco, buf, len, from, g.now);

	if (perr ? rc != perr : rc != 0 && rc != STUN_E_TXN)
		abort();
	if (rc == 0 && (!owned || (m.cls != STUN_CLASS_SUCCESS && m.cls != STUN_CLASS_ERROR)))
		abort();
}

static const struct sent *pick(uint8_t k)
{
	unsigned have = g.nsent < RECENT ? g.nsent : RECENT;

	return have ? &g.recent[(g.nsent - 1 - k % have) % RECENT] : NULL;
}

static void source(uint8_t sel, const uint8_t *p, size_t n, union sockaddr_any *src)
{
	const struct sent *s = pick(sel >> 3);

	switch (sel & 7) {
	case 0:
		addr_parse(stun_servers[(sel >> 3) & 1], src);
		break;
	case 1:
		addr_parse(relays[(sel >> 3) & 1], src);
		break;
	case 2:
		*src = g.nd_srv[(sel >> 3) & 1].addrs[(sel >> 4) & 1][(sel >> 5) & 1];
		break;
	case 3:
		/* where a request went: the source a real answer comes from */
		if (s)
			*src = s->dst;
		else
			addr_parse(relays[0], src);
		break;
	case 4:
		/* an IPv4 server's address as a dual-stack socket reports it */
		addr_parse(sel & 8 ? "[::ffff:203.0.113.1]:3478" : "[::ffff:198.51.100.7]:51820", src);
		break;
	default:
		memset(src, 0, sizeof(*src));
		src->in.sin_family = AF_INET;
		if (n >= 6) {
			memcpy(&src->in.sin_addr, p, 4);
			memcpy(&src->in.sin_port, p + 4, 2);
		}
		break;
	}
}

static void patch_tid(uint8_t *b, size_t len, const struct sent *s)
{
	if (len < STUN_HEADER_LEN || !s || s->len < STUN_HEADER_LEN)
		return;
	memcpy(b + 8, s->buf + 8, STUN_TID_LEN);
	if (len >= STUN_HEADER_LEN + 8 && b[len - 8] == 0x80 && b[len - 7] == 0x28) {
		uint32_t crc = stun_crc32(b, len - 8) ^ STUN_FINGERPRINT_XOR;
		b[len - 4] = (uint8_t)(crc >> 24);
		b[len - 3] = (uint8_t)(crc >> 16);
		b[len - 2] = (uint8_t)(crc >> 8);
		b[len - 1] = (uint8_t)crc;
	}
}

/* record 1: a well-formed message; op: class (bits 2-3), method Binding or
 * not (bit 4), a sent tid (bit 5, which one from a) or a fresh one; a and b:
 * the attributes */
static size_t build(uint8_t op, uint8_t a, uint8_t b, uint8_t *out, size_t cap)
{
	static const uint16_t unknown_attr = 0x0030;	/* comprehension-required, unassigned */
	const struct sent *s = op & 0x20 ? pick(a >> 4) : NULL;
	struct stun_builder bl;
	uint8_t tid[STUN_TID_LEN];
	int n;

	if (s)
		memcpy(tid, s->buf + 8, STUN_TID_LEN);
	else
		for (int k = 0; k < STUN_TID_LEN; k++)
			tid[k] = (uint8_t)(a * 31 + b * 7 + k);
	stun_build_init(&bl, out, cap, (enum stun_class)((op >> 2) & 3),
			op & 0x10 ? 0x002 : STUN_METHOD_BINDING, tid);
	if (b & 0x01)
		stun_build_xor_addr(&bl, STUN_ATTR_XOR_MAPPED_ADDRESS, &g.me[(b >> 7) & 1]);
	if (b & 0x02)
		stun_build_change_request(&bl, (uint32_t)(a & 6));
	if (b & 0x04)
		stun_build_response_port(&bl, (uint16_t)(a * 257));
	if (b & 0x08)
		stun_build_padding(&bl, (size_t)(a & 0x0f) * 37);
	if (b & 0x10)
		stun_build_attr(&bl, unknown_attr, "x", 1);
	if (b & 0x20)
		stun_build_error(&bl, 400 + (a & 0x1f), NULL);
	if (b & 0x40)
		stun_build_software(&bl, "fuzz");
	if (a & 0x01)
		stun_build_fingerprint(&bl);
	n = stun_build_finish(&bl);
	return n > 0 ? (size_t)n : 0;
}

/* the answer of whichever server s went to; an unknown destination (a
 * hairpin target) gets the request itself back, as the NAT would loop it */
static void server_answer(const struct sent *s)
{
	struct stun_server_cfg plain = { 0 };
	struct stun_server_reply rep;
	uint8_t out[1024];
	int f = s->dst.sa.sa_family == AF_INET6;

	for (int ip = 0; ip < STUN_SRV_IPS; ip++)
		for (int port = 0; port < STUN_SRV_PORTS; port++)
			if (addr_equal(&s->dst, &g.nd_srv[f].addrs[ip][port])) {
				if (stun_server_answer(&g.nd_srv[f], ip, port, &g.me[f], s->buf, s->len, out,
						       sizeof(out), &rep) == 0 && rep.verdict == STUN_SRV_REPLY)
					feed(out, rep.len, &g.nd_srv[f].addrs[rep.ip][rep.port]);
				return;
			}
	if (disco_server_find(&g.disco, &s->dst)) {
		plain.addrs[0][0] = s->dst;
		if (stun_server_answer(&plain, 0, 0, &g.me[f], s->buf, s->len, out, sizeof(out), &rep) == 0 &&
		    rep.verdict == STUN_SRV_REPLY)
			feed(out, rep.len, &s->dst);
		return;
	}
	feed(s->buf, s->len, &g.me[f]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2048];
	size_t i = 1;

	if (size < 1)
		return 0;
	/* disco's warnings (a server that does not answer) would flood the run */
	log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
	setup(data[0] & 1);
	while (i + 2 <= size) {
		uint8_t op = data[i], arg = data[i + 1];
		union sockaddr_any src;
		const struct sent *s;
		size_t n;

		i += 2;
		switch (op & 3) {
		case 0:
			if (i >= size)
				break;
			n = data[i++];
			n = n < size - i ? n : size - i;
			memcpy(buf, data + i, n);
			source(arg, data + i, n, &src);
			if (op & 4)
				patch_tid(buf, n, pick((op >> 3) & 0x0f));
			if (op & 0x80)
				direct(buf, n, &src);
			else
				feed(buf, n, &src);
			i += n;
			break;
		case 1:
			/* then two bytes of attribute bits */
			if (i + 2 > size)
				break;
			n = build(op, data[i], data[i + 1], buf, sizeof(buf));
			i += 2;
			source(arg, NULL, 0, &src);
			feed(buf, n, &src);
			break;
		case 2:
			if ((s = pick(arg)))
				server_answer(s);
			break;
		default:
			g.now += (uint64_t)arg * (op & 4 ? 100 : 5);
			if (op & 8)
				disco_kick(&g.disco, g.now);	/* a local address changed */
			break;
		}
		pump();
	}
	teardown();
	return 0;
}
