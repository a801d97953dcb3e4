/* The server's answer (RFC 8489 6.3, RFC 5780 6.1): mapped addresses, 420
 * for unknown comprehension-required attributes, the RFC 5780 table of
 * CHANGE-REQUEST sources, RESPONSE-PORT, PADDING, and what is dropped. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stun/stun.h"

static const uint8_t tid[12] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xaa, 0x55 };

/* [ip][port]: 203.0.113.1:3478 3479, 203.0.113.2:3478 3479 */
static void cfg_5780(struct stun_server_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->rfc5780 = true;
	c->software = "meshstun test";
	c->max_padding = 1024;
	cr_assert_eq(addr_parse("203.0.113.1:3478", &c->addrs[0][0]), 0);
	cr_assert_eq(addr_parse("203.0.113.1:3479", &c->addrs[0][1]), 0);
	cr_assert_eq(addr_parse("203.0.113.2:3478", &c->addrs[1][0]), 0);
	cr_assert_eq(addr_parse("203.0.113.2:3479", &c->addrs[1][1]), 0);
}

static void cfg_plain(struct stun_server_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->software = "meshstun test";
	cr_assert_eq(addr_parse("203.0.113.1:3478", &c->addrs[0][0]), 0);
}

static void expect_addr(const union sockaddr_any *a, const char *want)
{
	char buf[ADDR_STRLEN];
	cr_expect_str_eq(addr_format(a, buf, sizeof(buf)), want);
}

static int answer(const struct stun_server_cfg *c, int ip, int port, const char *from,
		  const struct stun_request_opts *o, struct stun_server_reply *r, struct stun_msg *m)
{
	uint8_t req[1500], out[1500];
	union sockaddr_any src;
	static uint8_t keep[1500];

	cr_assert_eq(addr_parse(from, &src), 0);
	int n = stun_build_binding_request(req, sizeof(req), tid, o);
	cr_assert_gt(n, 0);
	int rc = stun_server_answer(c, ip, port, &src, req, (size_t)n, out, sizeof(out), r);
	if (rc == 0 && r->verdict == STUN_SRV_REPLY) {
		memcpy(keep, out, r->len);
		cr_assert_eq(stun_parse(keep, r->len, m), 0);
		cr_expect_arr_eq(m->tid, tid, 12);
		cr_expect(m->has_fingerprint);
	}
	return rc;
}

Test(server, binding_ipv4_plain)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	struct stun_msg m;

	cfg_plain(&c);
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", NULL, &r, &m), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	cr_expect(!r.is_error);
	cr_expect_eq(r.ip, 0);
	cr_expect_eq(r.port, 0);
	expect_addr(&r.dst, "198.51.100.9:40001");
	cr_expect_eq(m.cls, STUN_CLASS_SUCCESS);
	cr_expect(m.has_xor_mapped && m.has_mapped);
	expect_addr(&m.xor_mapped, "198.51.100.9:40001");
	expect_addr(&m.mapped, "198.51.100.9:40001");
	cr_expect(m.has_software);
	cr_expect(!m.has_other_address && !m.has_response_origin);
}

Test(server, binding_ipv6_and_v4_mapped_source)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	struct stun_msg m;

	cfg_plain(&c);
	cr_assert_eq(answer(&c, 0, 0, "[2001:db8::77]:5555", NULL, &r, &m), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	expect_addr(&m.xor_mapped, "[2001:db8::77]:5555");
	/* a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d */
	cr_assert_eq(answer(&c, 0, 0, "[::ffff:192.0.2.5]:6000", NULL, &r, &m), 0);
	expect_addr(&m.xor_mapped, "192.0.2.5:6000");
	expect_addr(&r.dst, "[::ffff:192.0.2.5]:6000");
}

Test(server, unknown_comprehension_required_gets_420)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	struct stun_msg m;
	uint8_t req[128], out[512], keep[512];
	struct stun_builder b;
	union sockaddr_any src;

	cfg_plain(&c);
	cr_assert_eq(addr_parse("198.51.100.9:40001", &src), 0);
	stun_build_init(&b, req, sizeof(req), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	stun_build_attr(&b, 0xC0DE, "opt", 3);		/* optional: ignored */
	stun_build_attr(&b, 0x7F01, "req", 3);		/* required: 420 */
	int n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, req, (size_t)n, out, sizeof(out), &r), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	cr_expect(r.is_error);
	memcpy(keep, out, r.len);
	cr_assert_eq(stun_parse(keep, r.len, &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_ERROR);
	cr_expect_eq(m.error_code, 420);
	cr_expect_eq(m.nunknown_listed, 1);
	cr_expect_eq(m.unknown_listed[0], 0x7F01);

	/* only the optional one: a normal answer */
	stun_build_init(&b, req, sizeof(req), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	stun_build_attr(&b, 0xC0DE, "opt", 3);
	n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, req, (size_t)n, out, sizeof(out), &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_REPLY);
	cr_expect(!r.is_error);
}

Test(server, change_request_without_rfc5780_gets_420)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	struct stun_msg m;
	struct stun_request_opts o = { .change_flags = STUN_CHANGE_IP };

	cfg_plain(&c);
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", &o, &r, &m), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	cr_expect_eq(m.error_code, 420);
	cr_expect_eq(m.unknown_listed[0], STUN_ATTR_CHANGE_REQUEST);
	cr_expect_eq(stun_server_answer(&c, 1, 0, &r.dst, NULL, 0, NULL, 0, &r), -EINVAL);
}

/* RFC 5780 6.1 table 1, from each of the four sockets */
Test(server, rfc5780_change_request_table)
{
	static const struct { uint32_t flags; int dip, dport; } rows[] = {
		{ 0, 0, 0 },
		{ STUN_CHANGE_IP, 1, 0 },
		{ STUN_CHANGE_PORT, 0, 1 },
		{ STUN_CHANGE_IP | STUN_CHANGE_PORT, 1, 1 },
	};
	struct stun_server_cfg c;

	cfg_5780(&c);
	for (int ip = 0; ip < 2; ip++)
		for (int port = 0; port < 2; port++)
			for (size_t i = 0; i < 4; i++) {
				struct stun_request_opts o = { .change_flags = rows[i].flags };
				struct stun_server_reply r;
				struct stun_msg m;
				int sip = ip ^ rows[i].dip, sport = port ^ rows[i].dport;

				cr_assert_eq(answer(&c, ip, port, "198.51.100.9:40001", &o, &r, &m), 0);
				cr_assert_eq(r.verdict, STUN_SRV_REPLY);
				cr_expect(!r.is_error);
				cr_expect_eq(r.ip, sip, "on [%d][%d] flags %u", ip, port, rows[i].flags);
				cr_expect_eq(r.port, sport, "on [%d][%d] flags %u", ip, port, rows[i].flags);
				cr_expect(m.has_response_origin && m.has_other_address);
				cr_expect(addr_equal(&m.response_origin, &c.addrs[sip][sport]));
				cr_expect(addr_equal(&m.other_address, &c.addrs[ip ^ 1][port ^ 1]));
				expect_addr(&m.xor_mapped, "198.51.100.9:40001");
				expect_addr(&r.dst, "198.51.100.9:40001");
			}
}

Test(server, rfc5780_response_port_and_padding)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	struct stun_msg m;

	cfg_5780(&c);
	struct stun_request_opts rp = { .response_port = 50000 };
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", &rp, &r, &m), 0);
	cr_assert_eq(r.verdict, STUN_SRV_REPLY);
	expect_addr(&r.dst, "198.51.100.9:50000");
	expect_addr(&m.xor_mapped, "198.51.100.9:40001");

	struct stun_request_opts pad = { .padding = 400 };
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", &pad, &r, &m), 0);
	cr_expect(m.has_padding);
	cr_expect_eq(m.padding_len, 400);
	pad.padding = 1400;
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", &pad, &r, &m), 0);
	cr_expect_eq(m.padding_len, c.max_padding, "capped");

	/* RFC 5780 6.1: PADDING with RESPONSE-PORT is a 400; port 0 too */
	struct stun_request_opts both = { .response_port = 50000, .padding = 8 };
	cr_assert_eq(answer(&c, 0, 0, "198.51.100.9:40001", &both, &r, &m), 0);
	cr_expect(r.is_error);
	cr_expect_eq(m.error_code, 400);
	expect_addr(&r.dst, "198.51.100.9:40001");
}

Test(server, drops_malformed_indications_and_responses)
{
	struct stun_server_cfg c;
	struct stun_server_reply r;
	uint8_t buf[64], out[256];
	struct stun_builder b;
	union sockaddr_any src;

	cfg_plain(&c);
	cr_assert_eq(addr_parse("198.51.100.9:40001", &src), 0);

	memset(buf, 0, sizeof(buf));
	buf[0] = 0x01;	/* WireGuard-like */
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, 32, out, sizeof(out), &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_DROP);
	cr_expect_eq(r.err, STUN_E_COOKIE);

	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, 3, out, sizeof(out), &r), 0);
	cr_expect_eq(r.err, STUN_E_SHORT);

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_INDICATION, STUN_METHOD_BINDING, tid);
	int n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, (size_t)n, out, sizeof(out), &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_DROP);
	cr_expect_eq(r.err, 0, "a valid indication is ignored, not malformed");

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
	n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, (size_t)n, out, sizeof(out), &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_DROP);

	/* another method: 400 */
	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_REQUEST, 0x003, tid);
	n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, (size_t)n, out, sizeof(out), &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_REPLY);
	cr_expect(r.is_error);

	/* an output buffer too small for the answer: dropped, not overrun */
	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	n = stun_build_finish(&b);
	cr_assert_eq(stun_server_answer(&c, 0, 0, &src, buf, (size_t)n, out, 40, &r), 0);
	cr_expect_eq(r.verdict, STUN_SRV_DROP);
	cr_expect_eq(r.err, STUN_E_NOBUFS);
}
