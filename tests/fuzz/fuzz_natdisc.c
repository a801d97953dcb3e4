/* libFuzzer target: natdisc_receive (and through it natdisc_receive_msg), a
 * run with its requests out, fed arbitrary datagrams from arbitrary sources
 * and polled on a fake clock. The input is a config byte, then records:
 *
 *   0  raw datagram to a socket, from a chosen source
 *   1  the same with the transaction id of one of natdisc's requests written
 *      in (and a FINGERPRINT at the end recomputed), so mutations reach the
 *      answer handling instead of dying at the tid lookup
 *   2  a real server's answer (stun_server_answer, RFC 5780) to one request,
 *      seen through an optional NAT, from the socket CHANGE-REQUEST picked
 *   3  one request delivered to another of natdisc's sockets (hairpinned)
 *   4  the clock moves on
 *
 * After each record natdisc is polled until it has nothing due. Beyond not
 * crashing: every datagram it sends is a Binding request from one of its
 * sockets to an address of the server's family; its deadline lies after now
 * and within ten minutes while it runs, and is UINT64_MAX once done; left to
 * its timers it finishes; its result names only selected tests. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "natdisc.h"
#include "stun/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { RECENT = 16, DEADLINE_MAX_MS = 600000 };

struct sent {
	int sock;
	union sockaddr_any dst;
	uint8_t buf[512];
	size_t len;
};

struct run {
	struct natdisc *d;
	int nsocks;
	bool v6, nat;
	uint64_t now;
	struct stun_server_cfg srv;
	union sockaddr_any local[NATDISC_MAX_SOCKS];
	struct sent recent[RECENT];	/* ring of the requests it sent */
	unsigned nsent;
};

static void mapped_of(const struct run *r, int sock, union sockaddr_any *out)
{
	*out = r->local[sock];
	if (r->nat) {
		addr_parse_ip(r->v6 ? "2001:db8:ff::7" : "203.0.113.7", 0, out);
		addr_set_port(out, (uint16_t)(40000 + sock * 7));
	}
}

/* polls until nothing is due; checks each datagram and the deadline */
static void pump(struct run *r)
{
	struct natdisc_send out;
	struct stun_msg m;
	uint64_t dl;
	int n = 0;

	while (natdisc_poll(r->d, r->now, &out) == 1) {
		struct sent *s = &r->recent[r->nsent++ % RECENT];

		if (out.sock < 0 || out.sock >= r->nsocks || out.len > sizeof(s->buf) ||
		    stun_parse(out.buf, out.len, &m) != 0 || m.cls != STUN_CLASS_REQUEST ||
		    out.dst.sa.sa_family != (r->v6 ? AF_INET6 : AF_INET) || ++n > 1000)
			abort();
		s->sock = out.sock;
		s->dst = out.dst;
		memcpy(s->buf, out.buf, out.len);
		s->len = out.len;
	}
	dl = natdisc_deadline(r->d);
	if (natdisc_done(r->d) ? dl != UINT64_MAX : (dl <= r->now || dl - r->now > DEADLINE_MAX_MS))
		abort();
}

static const struct sent *pick(const struct run *r, uint8_t k)
{
	unsigned have = r->nsent < RECENT ? r->nsent : RECENT;

	return have ? &r->recent[(r->nsent - 1 - k % have) % RECENT] : NULL;
}

static void source(const struct run *r, uint8_t sel, const uint8_t *p, size_t n, union sockaddr_any *src)
{
	switch (sel & 3) {
	case 0:
		*src = r->srv.addrs[0][0];
		break;
	case 1:
		*src = r->srv.addrs[(sel >> 2) & 1][(sel >> 3) & 1];
		break;
	case 2:
		/* any IPv4 address and port */
		memset(src, 0, sizeof(*src));
		src->in.sin_family = AF_INET;
		if (n >= 6) {
			memcpy(&src->in.sin_addr, p, 4);
			memcpy(&src->in.sin_port, p + 4, 2);
		}
		break;
	default:
		/* the primary's IPv4 address, v4-mapped, or an IPv6 one */
		addr_parse(r->v6 ? "[2001:db8::1]:3479" : "[::ffff:192.0.2.1]:3478", src);
		break;
	}
}

/* the tid of a sent request into a copy of the datagram, and a trailing
 * FINGERPRINT made right again */
static void patch_tid(uint8_t *b, size_t len, const struct sent *s)
{
	if (len < STUN_HEADER_LEN || !s)
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

/* record 2: the server at the request's destination answers it */
static void server_answer(struct run *r, const struct sent *s)
{
	struct stun_server_reply rep;
	union sockaddr_any from;
	uint8_t out[1024];
	int sock = s->sock;

	for (int ip = 0; ip < STUN_SRV_IPS; ip++)
		for (int port = 0; port < STUN_SRV_PORTS; port++) {
			if (!addr_equal(&s->dst, &r->srv.addrs[ip][port]))
				continue;
			mapped_of(r, s->sock, &from);
			if (stun_server_answer(&r->srv, ip, port, &from, s->buf, s->len, out, sizeof(out),
					       &rep) != 0 || rep.verdict != STUN_SRV_REPLY)
				return;
			/* RESPONSE-PORT: the answer goes to whichever socket has that mapping */
			for (int k = 0; k < r->nsocks; k++) {
				union sockaddr_any mk;
				mapped_of(r, k, &mk);
				if (addr_equal(&mk, &rep.dst))
					sock = k;
			}
			natdisc_receive(r->d, sock, &r->srv.addrs[rep.ip][rep.port], out, rep.len, r->now);
			return;
		}
}

static void setup(struct run *r, uint8_t c0, uint8_t c1)
{
	struct natdisc_cfg cfg = { 0 };
	const char *p = c0 & 0x20 ? "2001:db8::1" : "192.0.2.1", *a = c0 & 0x20 ? "2001:db8::2" : "192.0.2.2";

	memset(r, 0, sizeof(*r));
	r->v6 = c0 & 0x20;
	r->nat = c1 & 0x80;
	r->now = 1000;
	r->srv.rfc5780 = true;
	r->srv.software = "fuzz";
	r->srv.max_padding = 64;
	addr_parse_ip(p, 3478, &r->srv.addrs[0][0]);
	addr_parse_ip(p, 3479, &r->srv.addrs[0][1]);
	addr_parse_ip(a, 3478, &r->srv.addrs[1][0]);
	addr_parse_ip(a, 3479, &r->srv.addrs[1][1]);
	cfg.server = r->srv.addrs[0][0];
	cfg.tests = c0 & NATDISC_TEST_ALL;
	cfg.port_samples = 2 + (c0 >> 6) * 3;
	cfg.lifetime_max_ms = 1000 + (c1 & 0x7f) * 500u;
	cfg.lifetime_res_ms = 250;
	if (natdisc_new(&cfg, &r->d) != 0)
		abort();
	r->nsocks = natdisc_nsocks(r->d);
	for (int i = 0; i < r->nsocks; i++) {
		addr_parse_ip(r->v6 ? "2001:db8:1::1" : "10.0.0.1", (uint16_t)(4000 + i), &r->local[i]);
		natdisc_set_local(r->d, i, &r->local[i]);
	}
	if (natdisc_start(r->d, r->now) != 0)
		abort();
	pump(r);
}

static void check_result(const struct run *r, unsigned tests)
{
	const struct natdisc_result *res = natdisc_result(r->d);

	if ((res->tests_done & ~tests) || res->nsamples > NATDISC_PORT_SAMPLES_MAX ||
	    strnlen(natdisc_step(r->d), 96) == 96 || !natdisc_strerror(res->error))
		abort();
	(void)natdisc_common_name(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[2048];
	struct run r;
	size_t i = 2;
	unsigned tests;

	if (size < 2)
		return 0;
	setup(&r, data[0], data[1]);
	tests = data[0] & NATDISC_TEST_ALL ? data[0] & NATDISC_TEST_ALL
					   : NATDISC_TEST_ALL & ~NATDISC_TEST_LIFETIME;
	while (i + 2 <= size && !natdisc_done(r.d)) {
		uint8_t op = data[i], arg = data[i + 1];
		int sock = (op >> 3) % r.nsocks;
		const struct sent *s = pick(&r, arg);
		union sockaddr_any src;
		size_t n;

		i += 2;
		switch (op & 7) {
		case 0:
		case 1:
			/* arg: the source; then a length byte and the datagram */
			if (i >= size)
				break;
			n = data[i++];
			n = n < size - i ? n : size - i;
			memcpy(buf, data + i, n);
			source(&r, arg, data + i, n, &src);
			if ((op & 7) == 1)
				patch_tid(buf, n, pick(&r, arg >> 4));
			natdisc_receive(r.d, sock, &src, buf, n, r.now);
			i += n;
			break;
		case 2:
			r.nat = op & 0x80;
			if (s)
				server_answer(&r, s);
			break;
		case 3:
			if (s) {
				mapped_of(&r, s->sock, &src);
				memcpy(buf, s->buf, s->len);
				natdisc_receive(r.d, sock, &src, buf, s->len, r.now);
			}
			break;
		default:
			r.now += (uint64_t)arg * (op & 0x80 ? 100 : 5);
			break;
		}
		pump(&r);
	}
	/* left alone, every run ends: each phase's transactions time out */
	for (int step = 0; !natdisc_done(r.d); step++) {
		if (step > 2000)
			abort();
		r.now = natdisc_deadline(r.d);
		pump(&r);
	}
	check_result(&r, tests);
	natdisc_free(r.d);
	return 0;
}
