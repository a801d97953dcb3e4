/* NAT-PMP codec (RFC 6886): requests built byte for byte as sections 3.2 and
 * 3.3 lay them out, responses parsed field by field, every result code named,
 * and a table of datagrams that must each be refused with their own reason. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "natpmp.h"

static const struct natpmp_request addr_req = { .opcode = NATPMP_OP_ADDRESS };
static const struct natpmp_request map_req = {
	.opcode = NATPMP_OP_MAP_UDP, .internal_port = 51820, .suggested_port = 40000, .lifetime = 7200,
};

/* 3.2: version 0, opcode 128, result 0, epoch 300, 198.51.100.9 */
static const uint8_t addr_resp[12] = {
	0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, 198, 51, 100, 9,
};
/* 3.3: version 0, opcode 129, result 0, epoch 300, internal 51820,
 * mapped 40001, lifetime 3600 */
static const uint8_t map_resp[16] = {
	0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c,
	0xca, 0x6c, 0x9c, 0x41, 0x00, 0x00, 0x0e, 0x10,
};

Test(natpmp, requests_bytes)
{
	static const uint8_t want_map[12] = {
		0x00, 0x01, 0x00, 0x00, 0xca, 0x6c, 0x9c, 0x40, 0x00, 0x00, 0x1c, 0x20,
	};
	struct natpmp_request tcp = map_req;
	uint8_t b[16];

	cr_assert_eq(natpmp_build(&addr_req, b, sizeof(b)), 2);
	cr_expect_eq(b[0], 0);
	cr_expect_eq(b[1], 0);
	cr_assert_eq(natpmp_build(&map_req, b, sizeof(b)), 12);
	cr_expect_arr_eq(b, want_map, 12);
	tcp.opcode = NATPMP_OP_MAP_TCP;
	tcp.lifetime = 0;	/* 3.4: a deletion */
	cr_assert_eq(natpmp_build(&tcp, b, sizeof(b)), 12);
	cr_expect_eq(b[1], 2);
	cr_expect_eq(b[8] | b[9] | b[10] | b[11], 0);
	cr_expect_eq(natpmp_build(&map_req, b, 11), NATPMP_E_NOBUFS);
	tcp.opcode = 3;
	cr_expect_eq(natpmp_build(&tcp, b, sizeof(b)), -EINVAL);
}

Test(natpmp, address_response)
{
	struct natpmp_response r;
	char s[ADDR_STRLEN];

	cr_assert_eq(natpmp_parse(addr_resp, 12, &addr_req, &r), 0);
	cr_expect_eq(r.result, 0);
	cr_expect_eq(r.epoch, 300);
	cr_expect(r.has_body);
	cr_expect_str_eq(addr_format_ip(&r.external, s, sizeof(s)), "198.51.100.9");
}

Test(natpmp, map_response)
{
	struct natpmp_response r;

	cr_assert_eq(natpmp_parse(map_resp, 16, &map_req, &r), 0);
	cr_expect_eq(r.opcode, NATPMP_OP_MAP_UDP);
	cr_expect_eq(r.epoch, 300);
	cr_expect_eq(r.internal_port, 51820);
	cr_expect_eq(r.external_port, 40001);
	cr_expect_eq(r.lifetime, 3600);
}

Test(natpmp, every_result_code)
{
	static const char *const names[] = {
		"Success", "Unsupported Version", "Not Authorized/Refused", "Network Failure",
		"Out of resources", "Unsupported opcode",
	};
	struct natpmp_response r;
	uint8_t b[16];

	for (unsigned i = 0; i <= 5; i++) {
		cr_expect_str_eq(natpmp_result_name(i), names[i]);
		memcpy(b, map_resp, 16);
		b[3] = (uint8_t)i;
		cr_expect_eq(natpmp_parse(b, 16, &map_req, &r), 0);
		cr_expect_eq(r.result, i);
		/* 3.5: an 8-byte answer is enough for an error, not for success */
		cr_expect_eq(natpmp_parse(b, 8, &map_req, &r), i ? 0 : NATPMP_E_SHORT, "result %u", i);
		cr_expect_eq(r.has_body, 0);
	}
	cr_expect_null(natpmp_result_name(6));
}

struct bad {
	const char *name;
	size_t len;
	int at, val;
	int want;
};

Test(natpmp, refused_with_reason)
{
	static const struct bad cases[] = {
		{ "empty", 0, -1, 0, NATPMP_E_SHORT },
		{ "one byte", 1, -1, 0, NATPMP_E_SHORT },
		{ "header cut", 7, -1, 0, NATPMP_E_SHORT },
		{ "body cut", 15, -1, 0, NATPMP_E_SHORT },
		{ "oversized", 1101, -1, 0, NATPMP_E_LONG },
		{ "version 2", 16, 0, 2, NATPMP_E_PCP },
		{ "version 1", 16, 0, 1, NATPMP_E_VERSION },
		{ "a request", 16, 1, 1, NATPMP_E_NOT_RESPONSE },
		{ "TCP answer", 16, 1, 130, NATPMP_E_OPCODE },
		{ "address answer", 16, 1, 128, NATPMP_E_OPCODE },
		{ "internal port", 16, 9, 0x6d, NATPMP_E_PORT },
	};
	static uint8_t b[1200];
	struct natpmp_response r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad *c = &cases[i];
		int got;

		memset(b, 0, sizeof(b));
		memcpy(b, map_resp, 16);
		if (c->at >= 0)
			b[c->at] = (uint8_t)c->val;
		got = natpmp_parse(b, c->len, &map_req, &r);
		cr_expect_eq(got, c->want, "%s: %s", c->name, natpmp_strerror(got));
		cr_expect_str_neq(natpmp_strerror(c->want), "unknown");
	}
	cr_expect_eq(natpmp_parse(addr_resp, 11, &addr_req, &r), NATPMP_E_SHORT);
	/* 1100 bytes: longer than the layout, still inside the limit */
	cr_expect_eq(natpmp_parse(b, 1100, &addr_req, &r), NATPMP_E_OPCODE);
}
