/* PCP codec (RFC 6887): requests built byte for byte as figures 2 and 9 lay
 * them out, responses parsed field by field, every result code named, and a
 * table of datagrams that must each be refused with their own reason. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "pcp.h"

static const uint8_t nonce[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static void map_request(struct pcp_request *q)
{
	memset(q, 0, sizeof(*q));
	q->opcode = PCP_OP_MAP;
	q->lifetime = 7200;
	addr_parse_ip("192.168.1.10", 0, &q->client);
	memcpy(q->nonce, nonce, 12);
	q->protocol = IPPROTO_UDP;
	q->internal_port = 51820;
	addr_parse_ip("203.0.113.5", 40000, &q->suggested);
}

/* figure 2 (header) + figure 9 (MAP opcode data) */
static const uint8_t map_req_bytes[60] = {
	0x02, 0x01, 0x00, 0x00,			/* version 2, R=0, MAP, reserved */
	0x00, 0x00, 0x1c, 0x20,			/* requested lifetime 7200 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 10,	/* client IP */
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,	/* mapping nonce */
	17, 0, 0, 0,				/* protocol UDP, reserved */
	0xca, 0x6c, 0x9c, 0x40,			/* internal 51820, suggested 40000 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 5,	/* suggested IP */
};

/* figure 3 (response header) + figure 9, SUCCESS, lifetime 3600, epoch 1234 */
static const uint8_t map_resp_bytes[60] = {
	0x02, 0x81, 0x00, 0x00,			/* version 2, R=1, MAP, reserved, SUCCESS */
	0x00, 0x00, 0x0e, 0x10,			/* lifetime 3600 */
	0x00, 0x00, 0x04, 0xd2,			/* epoch time 1234 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* reserved */
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	17, 0, 0, 0,
	0xca, 0x6c, 0x9c, 0x41,			/* internal 51820, assigned 40001 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 5,
};

Test(pcp, map_request_bytes)
{
	struct pcp_request q;
	uint8_t buf[PCP_MAX_LEN];

	map_request(&q);
	cr_assert_eq(pcp_build(&q, buf, sizeof(buf)), 60);
	cr_expect_arr_eq(buf, map_req_bytes, 60);
	cr_expect_eq(pcp_build(&q, buf, 59), PCP_E_NOBUFS);
}

Test(pcp, map_request_any_address)
{
	struct pcp_request q;
	uint8_t buf[64];

	map_request(&q);
	memset(&q.suggested, 0, sizeof(q.suggested));
	cr_assert_eq(pcp_build(&q, buf, sizeof(buf)), 60);
	for (int i = 42; i < 60; i++)
		cr_expect_eq(buf[i], 0, "byte %d", i);
}

Test(pcp, announce_request_bytes)
{
	struct pcp_request q = { .opcode = PCP_OP_ANNOUNCE };
	static const uint8_t want[24] = {
		0x02, 0x00, 0x00, 0x00, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2,
	};
	uint8_t buf[64];

	addr_parse_ip("10.0.0.2", 0, &q.client);
	cr_assert_eq(pcp_build(&q, buf, sizeof(buf)), 24);
	cr_expect_arr_eq(buf, want, 24);
}

Test(pcp, map_response_fields)
{
	struct pcp_request q;
	struct pcp_response r;
	char s[ADDR_STRLEN];

	map_request(&q);
	cr_assert_eq(pcp_parse(map_resp_bytes, 60, &q, &r), 0);
	cr_expect_eq(r.version, 2);
	cr_expect_eq(r.opcode, PCP_OP_MAP);
	cr_expect_eq(r.result, PCP_SUCCESS);
	cr_expect_eq(r.lifetime, 3600);
	cr_expect_eq(r.epoch, 1234);
	cr_expect(r.has_map);
	cr_expect_arr_eq(r.nonce, nonce, 12);
	cr_expect_eq(r.protocol, 17);
	cr_expect_eq(r.internal_port, 51820);
	cr_expect_str_eq(addr_format(&r.external, s, sizeof(s)), "203.0.113.5:40001");
}

Test(pcp, map_response_ipv6_and_option)
{
	struct pcp_request q;
	struct pcp_response r;
	uint8_t b[68];
	char s[ADDR_STRLEN];
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 7 };
	/* THIRD_PARTY-shaped option (code 1), 16 bytes of data, then 0 bytes */
	map_request(&q);
	memcpy(b, map_resp_bytes, 60);
	memcpy(b + 44, v6, 16);
	memcpy(b + 60, (uint8_t[]){ 0x80, 0, 0, 4, 9, 9, 9, 9 }, 8);
	cr_assert_eq(pcp_parse(b, 68, &q, &r), 0);
	cr_expect_str_eq(addr_format(&r.external, s, sizeof(s)), "[2001:db8::7]:40001");
}

Test(pcp, announce_response)
{
	struct pcp_request q = { .opcode = PCP_OP_ANNOUNCE };
	struct pcp_response r;
	uint8_t b[24] = { 0x02, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x02 };

	cr_assert_eq(pcp_parse(b, 24, &q, &r), 0);
	cr_expect_eq(r.epoch, 65538);
	cr_expect_eq(r.lifetime, 0);
	cr_expect(!r.has_map);
}

Test(pcp, every_result_code)
{
	static const char *const names[] = {
		"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST",
		"UNSUPP_OPCODE", "UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE",
		"NO_RESOURCES", "UNSUPP_PROTOCOL", "USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL",
		"ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
	};
	struct pcp_request q;
	struct pcp_response r;
	uint8_t b[60];

	map_request(&q);
	for (unsigned i = 0; i <= 13; i++) {
		cr_expect_str_eq(pcp_result_name(i), names[i]);
		memcpy(b, map_resp_bytes, 60);
		b[3] = (uint8_t)i;
		cr_expect_eq(pcp_parse(b, 60, &q, &r), 0);
		cr_expect_eq(r.result, i);
		/* a bare header is an answer only when it is an error */
		cr_expect_eq(pcp_parse(b, 24, &q, &r), i ? 0 : PCP_E_SHORT, "result %u", i);
	}
	cr_expect_null(pcp_result_name(14));
}

struct bad {
	const char *name;
	size_t len;
	int at, val;		/* byte to change, or -1 */
	int want;
};

Test(pcp, refused_with_reason)
{
	static const struct bad cases[] = {
		{ "empty", 0, -1, 0, PCP_E_SHORT },
		{ "three bytes", 3, -1, 0, PCP_E_SHORT },
		{ "header cut", 20, -1, 0, PCP_E_SHORT },
		{ "opcode data cut", 56, -1, 0, PCP_E_SHORT },
		{ "not aligned", 59, -1, 0, PCP_E_ALIGN },
		{ "oversized", 1104, -1, 0, PCP_E_LONG },
		{ "version 0", 60, 0, 0, PCP_E_NATPMP },
		{ "version 1", 60, 0, 1, PCP_E_VERSION },
		{ "version 3", 60, 0, 3, PCP_E_VERSION },
		{ "R bit clear", 60, 1, 0x01, PCP_E_NOT_RESPONSE },
		{ "ANNOUNCE for MAP", 60, 1, 0x80, PCP_E_OPCODE },
		{ "PEER for MAP", 60, 1, 0x82, PCP_E_OPCODE },
		{ "nonce first byte", 60, 24, 0xee, PCP_E_NONCE },
		{ "nonce last byte", 60, 35, 0xee, PCP_E_NONCE },
		{ "protocol TCP", 60, 36, 6, PCP_E_MAP_MISMATCH },
		{ "internal port", 60, 41, 0x6d, PCP_E_MAP_MISMATCH },
		{ "option cut", 64, -1, 0, PCP_E_OPTION },
	};
	struct pcp_request q;
	struct pcp_response r;
	static uint8_t b[1200];

	map_request(&q);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad *c = &cases[i];

		memset(b, 0, sizeof(b));
		memcpy(b, map_resp_bytes, 60);
		if (c->len == 64)	/* option header claiming 8 bytes, none there */
			memcpy(b + 60, (uint8_t[]){ 1, 0, 0, 8 }, 4);
		if (c->at >= 0)
			b[c->at] = (uint8_t)c->val;
		cr_expect_eq(pcp_parse(b, c->len, &q, &r), c->want, "%s: %s", c->name,
			     pcp_strerror(pcp_parse(b, c->len, &q, &r)));
		cr_expect_str_neq(pcp_strerror(c->want), "unknown");
	}
	/* 1100 bytes of valid options still parse */
	memcpy(b + 60, (uint8_t[]){ 0x80, 0, 0x04, 0x04 }, 4);
	cr_expect_eq(pcp_parse(b, 1100, &q, &r), 0, "%s", pcp_strerror(pcp_parse(b, 1100, &q, &r)));
}

/* RFC 6887 9: what a NAT-PMP-only server sends back to a PCP request */
Test(pcp, natpmp_server_answer)
{
	struct pcp_request q = { .opcode = PCP_OP_ANNOUNCE };
	struct pcp_response r;
	static const uint8_t b[8] = { 0, 0x80, 0, 1, 0, 0, 0, 9 };

	cr_expect_eq(pcp_parse(b, 8, &q, &r), PCP_E_NATPMP);
	cr_expect_eq(r.version, 0);
}

Test(pcp, build_refuses_bad_request)
{
	struct pcp_request q;
	uint8_t b[64];

	map_request(&q);
	memset(&q.client, 0, sizeof(q.client));
	cr_expect_eq(pcp_build(&q, b, sizeof(b)), -EINVAL);
	map_request(&q);
	q.opcode = 2;
	cr_expect_eq(pcp_build(&q, b, sizeof(b)), -EINVAL);
}
