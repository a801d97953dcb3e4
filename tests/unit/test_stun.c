/* STUN codec: the RFC 5769 test vectors (parse, FINGERPRINT, MESSAGE-INTEGRITY,
 * byte-exact re-encoding), round trips of every attribute we build, and a
 * table of malformed packets that must each be rejected with their own error. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "stun/stun.h"

static const uint8_t rfc_tid[12] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };
static const char rfc_password[] = "VOkJxbRl1RmTxUk/WvJxBt";

/* RFC 5769 2.1: sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
 * MESSAGE-INTEGRITY, FINGERPRINT); padding bytes are 0x20 */
static const uint8_t rfc_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
	0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
	0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
	0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
	0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 2.2: IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853 */
static const uint8_t rfc_response4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 2.3: IPv6 response, XOR-MAPPED-ADDRESS
 * [2001:db8:1234:5678:11:2233:4455:6677]:32853 */
static const uint8_t rfc_response6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
	0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
};

static void expect_addr(const union sockaddr_any *a, const char *want)
{
	char buf[ADDR_STRLEN];
	cr_expect_str_eq(addr_format(a, buf, sizeof(buf)), want);
}

Test(rfc5769, request_parses_and_verifies)
{
	struct stun_msg m;

	cr_assert(stun_is_stun(rfc_request, sizeof(rfc_request)));
	cr_assert_eq(stun_parse(rfc_request, sizeof(rfc_request), &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_REQUEST);
	cr_expect_eq(m.method, STUN_METHOD_BINDING);
	cr_expect_arr_eq(m.tid, rfc_tid, 12);
	cr_expect_eq(m.nattrs, 6);
	cr_expect(m.has_software && m.software_len == 16);
	cr_expect_eq(memcmp(m.software, "STUN test client", 16), 0);
	cr_expect(m.has_fingerprint);
	cr_expect(m.has_integrity);
	cr_expect_eq(m.nunknown, 0, "PRIORITY and USERNAME are known types");
	const struct stun_attr *u = stun_msg_attr(&m, STUN_ATTR_USERNAME);
	cr_assert_not_null(u);
	cr_expect_eq(u->len, 9);
	cr_expect_eq(memcmp(u->value, "evtj:h6vY", 9), 0);
	cr_expect_eq(stun_check_integrity(rfc_request, sizeof(rfc_request), &m,
					  (const uint8_t *)rfc_password, strlen(rfc_password)), 0);
	cr_expect_eq(stun_check_integrity(rfc_request, sizeof(rfc_request), &m,
					  (const uint8_t *)"wrong", 5), STUN_E_INTEGRITY);
}

Test(rfc5769, ipv4_response_parses_and_verifies)
{
	struct stun_msg m;

	cr_assert_eq(stun_parse(rfc_response4, sizeof(rfc_response4), &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_SUCCESS);
	cr_expect_eq(m.method, STUN_METHOD_BINDING);
	cr_expect(m.has_xor_mapped);
	expect_addr(&m.xor_mapped, "192.0.2.1:32853");
	cr_expect(m.has_software && m.software_len == 11);
	cr_expect_eq(memcmp(m.software, "test vector", 11), 0);
	cr_expect(m.has_fingerprint);
	cr_expect_eq(stun_check_integrity(rfc_response4, sizeof(rfc_response4), &m,
					  (const uint8_t *)rfc_password, strlen(rfc_password)), 0);
}

Test(rfc5769, ipv6_response_parses_and_verifies)
{
	struct stun_msg m;

	cr_assert_eq(stun_parse(rfc_response6, sizeof(rfc_response6), &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_SUCCESS);
	cr_expect(m.has_xor_mapped);
	expect_addr(&m.xor_mapped, "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
	cr_expect_eq(stun_check_integrity(rfc_response6, sizeof(rfc_response6), &m,
					  (const uint8_t *)rfc_password, strlen(rfc_password)), 0);
}

Test(rfc5769, fingerprint_crc)
{
	/* FINGERPRINT value = CRC-32 of what precedes it XOR 0x5354554e */
	size_t n = sizeof(rfc_request) - 8;
	uint32_t fp = stun_crc32(rfc_request, n) ^ STUN_FINGERPRINT_XOR;
	cr_expect_eq(fp, 0xe57a3bcfu);
	cr_expect_eq(stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
}

/* The encoder reproduces every byte of the three vectors, including
 * MESSAGE-INTEGRITY and FINGERPRINT, given the RFC's 0x20 padding. */
Test(rfc5769, encoder_reproduces_request)
{
	uint8_t buf[256];
	struct stun_builder b;
	static const uint8_t priority[] = { 0x6e, 0x00, 0x01, 0xff };
	static const uint8_t controlled[] = { 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36 };

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, rfc_tid);
	b.pad = 0x20;
	stun_build_software(&b, "STUN test client");
	stun_build_attr(&b, STUN_ATTR_PRIORITY, priority, sizeof(priority));
	stun_build_attr(&b, STUN_ATTR_ICE_CONTROLLED, controlled, sizeof(controlled));
	stun_build_attr(&b, STUN_ATTR_USERNAME, "evtj:h6vY", 9);
	stun_build_integrity(&b, (const uint8_t *)rfc_password, strlen(rfc_password));
	stun_build_fingerprint(&b);
	cr_assert_eq(stun_build_finish(&b), (int)sizeof(rfc_request));
	cr_expect_arr_eq(buf, rfc_request, sizeof(rfc_request));
}

static void build_response(const char *addr, uint8_t *buf, size_t cap, int *len)
{
	struct stun_builder b;
	union sockaddr_any a;

	cr_assert_eq(addr_parse(addr, &a), 0);
	stun_build_init(&b, buf, cap, STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, rfc_tid);
	b.pad = 0x20;
	stun_build_software(&b, "test vector");
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	stun_build_integrity(&b, (const uint8_t *)rfc_password, strlen(rfc_password));
	stun_build_fingerprint(&b);
	*len = stun_build_finish(&b);
}

Test(rfc5769, encoder_reproduces_responses)
{
	uint8_t buf[256];
	int n;

	build_response("192.0.2.1:32853", buf, sizeof(buf), &n);
	cr_assert_eq(n, (int)sizeof(rfc_response4));
	cr_expect_arr_eq(buf, rfc_response4, sizeof(rfc_response4));
	build_response("[2001:db8:1234:5678:11:2233:4455:6677]:32853", buf, sizeof(buf), &n);
	cr_assert_eq(n, (int)sizeof(rfc_response6));
	cr_expect_arr_eq(buf, rfc_response6, sizeof(rfc_response6));
}

Test(stun, is_stun_demultiplexes_wireguard)
{
	/* WireGuard handshake initiation: type 1, three reserved zero bytes */
	uint8_t wg[148] = { 0x01, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44 };
	uint8_t wg_data[32] = { 0x04, 0x00, 0x00, 0x00 };

	cr_expect(!stun_is_stun(wg, sizeof(wg)));
	cr_expect(!stun_is_stun(wg_data, sizeof(wg_data)));
	cr_expect(stun_is_stun(rfc_response4, sizeof(rfc_response4)));
	cr_expect(!stun_is_stun(rfc_response4, 19));
	uint8_t b[sizeof(rfc_response4)];
	memcpy(b, rfc_response4, sizeof(b));
	b[0] |= 0x80;
	cr_expect(!stun_is_stun(b, sizeof(b)));
}

Test(stun, binding_request_round_trip)
{
	static const uint8_t tid[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct stun_request_opts o = {
		.change_flags = STUN_CHANGE_IP | STUN_CHANGE_PORT,
		.response_port = 40000,
		.padding = 37,
		.software = "natmesh test",
		.fingerprint = true,
	};
	uint8_t buf[512];
	struct stun_msg m;

	int n = stun_build_binding_request(buf, sizeof(buf), tid, &o);
	cr_assert_gt(n, 0);
	cr_expect_eq(n % 4, 0);
	cr_assert_eq(stun_parse(buf, (size_t)n, &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_REQUEST);
	cr_expect_arr_eq(m.tid, tid, 12);
	cr_expect(m.has_change_request);
	cr_expect_eq(m.change_flags, STUN_CHANGE_IP | STUN_CHANGE_PORT);
	cr_expect(m.has_response_port);
	cr_expect_eq(m.response_port, 40000);
	cr_expect(m.has_padding);
	cr_expect_eq(m.padding_len, 37);
	cr_expect(m.has_software);
	cr_expect(m.has_fingerprint);
	cr_expect_eq(m.nunknown, 0);

	/* the minimal request is a bare header */
	n = stun_build_binding_request(buf, sizeof(buf), tid, NULL);
	cr_expect_eq(n, 20);
	cr_expect_eq(stun_build_binding_request(buf, 19, tid, NULL), STUN_E_NOBUFS);
	cr_expect_eq(stun_build_binding_request(buf, 24, tid, &o), STUN_E_NOBUFS);
}

Test(stun, addresses_round_trip_ipv4_and_ipv6)
{
	static const char *addrs[] = {
		"203.0.113.7:3478", "0.0.0.0:0", "255.255.255.255:65535",
		"[2001:db8::1]:3479", "[::1]:1", "[fe80::1:2:3:4]:65000",
	};
	static const uint16_t types[] = {
		STUN_ATTR_MAPPED_ADDRESS, STUN_ATTR_OTHER_ADDRESS, STUN_ATTR_RESPONSE_ORIGIN,
	};
	static const uint8_t tid[12] = { 0xff, 0, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		union sockaddr_any a;
		uint8_t buf[256];
		struct stun_builder b;
		struct stun_msg m;
		char s[ADDR_STRLEN];

		cr_assert_eq(addr_parse(addrs[i], &a), 0);
		stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
		stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
		for (size_t t = 0; t < 3; t++)
			stun_build_addr(&b, types[t], &a);
		stun_build_fingerprint(&b);
		int n = stun_build_finish(&b);
		cr_assert_gt(n, 0);
		cr_assert_eq(stun_parse(buf, (size_t)n, &m), 0, "%s", addrs[i]);
		cr_expect_str_eq(addr_format(&m.xor_mapped, s, sizeof(s)), addrs[i]);
		cr_expect_str_eq(addr_format(&m.mapped, s, sizeof(s)), addrs[i]);
		cr_expect_str_eq(addr_format(&m.other_address, s, sizeof(s)), addrs[i]);
		cr_expect_str_eq(addr_format(&m.response_origin, s, sizeof(s)), addrs[i]);
	}
}

Test(stun, error_response_round_trip)
{
	static const uint8_t tid[12] = { 0 };
	static const uint16_t unknown[] = { 0x7777, 0x0031 };
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_ERROR, STUN_METHOD_BINDING, tid);
	stun_build_error(&b, 420, NULL);
	stun_build_unknown_attributes(&b, unknown, 2);
	stun_build_fingerprint(&b);
	int n = stun_build_finish(&b);
	cr_assert_gt(n, 0);
	cr_assert_eq(stun_parse(buf, (size_t)n, &m), 0);
	cr_expect_eq(m.cls, STUN_CLASS_ERROR);
	cr_expect_eq(m.error_code, 420);
	cr_expect_eq(m.reason_len, strlen("Unknown Attribute"));
	cr_expect_eq(memcmp(m.reason, "Unknown Attribute", m.reason_len), 0);
	cr_expect(m.has_unknown_attributes);
	cr_expect_eq(m.nunknown_listed, 2);
	cr_expect_eq(m.unknown_listed[0], 0x7777);
	cr_expect_eq(m.unknown_listed[1], 0x0031);

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_ERROR, STUN_METHOD_BINDING, tid);
	cr_expect_eq(stun_build_error(&b, 299, "x"), -EINVAL);
	cr_expect_eq(stun_build_finish(&b), -EINVAL, "errors stick");
}

Test(stun, unknown_attributes_reported)
{
	static const uint8_t tid[12] = { 0 };
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;

	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	stun_build_attr(&b, 0x7777, "abc", 3);	/* comprehension-required, unknown */
	stun_build_attr(&b, 0xC001, "abc", 3);	/* comprehension-optional */
	stun_build_attr(&b, 0x0002, NULL, 0);	/* RFC 3489 RESPONSE-ADDRESS: not known */
	int n = stun_build_finish(&b);
	cr_assert_eq(stun_parse(buf, (size_t)n, &m), 0);
	cr_expect_eq(m.nunknown, 2);
	cr_expect_eq(m.unknown[0], 0x7777);
	cr_expect_eq(m.unknown[1], 0x0002);
	cr_expect_eq(m.nattrs, 3);
}

Test(stun, method_and_class_bits)
{
	/* RFC 8489 5: a method using all 12 bits, in each class */
	uint8_t tid[12] = { 0 }, buf[32];
	struct stun_builder b;
	struct stun_msg m;

	for (int cls = 0; cls < 4; cls++) {
		stun_build_init(&b, buf, sizeof(buf), (enum stun_class)cls, 0x0ABC, tid);
		if (cls == STUN_CLASS_ERROR)
			stun_build_error(&b, 400, "");
		int n = stun_build_finish(&b);
		cr_assert_eq(stun_parse(buf, (size_t)n, &m), 0);
		cr_expect_eq(m.cls, (enum stun_class)cls);
		cr_expect_eq(m.method, 0x0ABC);
	}
	stun_build_init(&b, buf, sizeof(buf), STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
	cr_expect_eq(buf[0], 0x01);
	cr_expect_eq(buf[1], 0x01);
}

/* --- malformed packets -------------------------------------------------- */

struct bad_case {
	const char *name;
	int (*make)(uint8_t *buf);	/* writes the packet, returns its length */
	int want;
};

static int hdr(uint8_t *buf, uint16_t type, uint16_t len)
{
	buf[0] = (uint8_t)(type >> 8);
	buf[1] = (uint8_t)type;
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
	buf[4] = 0x21; buf[5] = 0x12; buf[6] = 0xa4; buf[7] = 0x42;
	memcpy(buf + 8, rfc_tid, 12);
	return 20;
}

static int attr(uint8_t *p, uint16_t type, uint16_t len)
{
	p[0] = (uint8_t)(type >> 8);
	p[1] = (uint8_t)type;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	return 4;
}

static int mk_short(uint8_t *b) { hdr(b, 0x0001, 0); return 19; }
static int mk_not_stun(uint8_t *b) { hdr(b, 0x4001, 0); return 20; }
static int mk_cookie(uint8_t *b) { hdr(b, 0x0001, 0); b[7] = 0x43; return 20; }
static int mk_align(uint8_t *b)
{
	hdr(b, 0x0001, 6);
	attr(b + 20, 0x8022, 2);
	return 26;
}
static int mk_len_mismatch(uint8_t *b)
{
	/* the header promises 12 bytes of attributes, the datagram carries 8 */
	hdr(b, 0x0001, 12);
	attr(b + 20, 0x8022, 4);
	memcpy(b + 24, "abcd", 4);
	return 28;
}
static int mk_attr_past_end(uint8_t *b)
{
	hdr(b, 0x0001, 8);
	attr(b + 20, 0x8022, 8);	/* 8 value bytes, only 4 left */
	memcpy(b + 24, "abcd", 4);
	return 28;
}
static int mk_padding_past_end(uint8_t *b)
{
	hdr(b, 0x0001, 8);
	attr(b + 20, 0x8022, 5);	/* 5 bytes + 3 padding = 8 > 4 left */
	return 28;
}
static int mk_dup(uint8_t *b)
{
	hdr(b, 0x0001, 16);
	attr(b + 20, 0x8022, 4);
	memcpy(b + 24, "abcd", 4);
	attr(b + 28, 0x8022, 4);
	memcpy(b + 32, "efgh", 4);
	return 36;
}
static int mk_bad_fingerprint(uint8_t *b)
{
	memcpy(b, rfc_response4, sizeof(rfc_response4));
	b[24] ^= 0x01;	/* "test vector" -> "uest vector": CRC no longer matches */
	return (int)sizeof(rfc_response4);
}
static int mk_fp_not_last(uint8_t *b)
{
	struct stun_builder sb;
	stun_build_init(&sb, b, 256, STUN_CLASS_REQUEST, STUN_METHOD_BINDING, rfc_tid);
	stun_build_fingerprint(&sb);
	stun_build_software(&sb, "late");
	int n = stun_build_finish(&sb);
	/* a correct CRC for the final header, so only the order is wrong */
	uint32_t fp = stun_crc32(b, 20) ^ STUN_FINGERPRINT_XOR;
	b[24] = (uint8_t)(fp >> 24); b[25] = (uint8_t)(fp >> 16);
	b[26] = (uint8_t)(fp >> 8); b[27] = (uint8_t)fp;
	return n;
}
static int mk_after_integrity(uint8_t *b)
{
	struct stun_builder sb;
	stun_build_init(&sb, b, 256, STUN_CLASS_REQUEST, STUN_METHOD_BINDING, rfc_tid);
	stun_build_integrity(&sb, (const uint8_t *)"k", 1);
	stun_build_software(&sb, "late");
	return stun_build_finish(&sb);
}
static int mk_family(uint8_t *b)
{
	hdr(b, 0x0101, 12);
	attr(b + 20, STUN_ATTR_XOR_MAPPED_ADDRESS, 8);
	memcpy(b + 24, "\x00\x03\x12\x34\x01\x02\x03\x04", 8);
	return 32;
}
static int mk_addr_len(uint8_t *b)
{
	hdr(b, 0x0101, 16);
	attr(b + 20, STUN_ATTR_MAPPED_ADDRESS, 12);	/* IPv4 is 8 bytes */
	memcpy(b + 24, "\x00\x01\x12\x34\x01\x02\x03\x04\x00\x00\x00\x00", 12);
	return 36;
}
static int mk_change_len(uint8_t *b)
{
	hdr(b, 0x0001, 8);
	attr(b + 20, STUN_ATTR_CHANGE_REQUEST, 2);
	return 28;
}
static int mk_error_code(uint8_t *b)
{
	hdr(b, 0x0111, 8);
	attr(b + 20, STUN_ATTR_ERROR_CODE, 4);
	memcpy(b + 24, "\x00\x00\x07\x00", 4);	/* class 7 */
	return 28;
}
static int mk_error_no_code(uint8_t *b)
{
	return hdr(b, 0x0111, 0);	/* an error response needs ERROR-CODE */
}
static int mk_too_many(uint8_t *b)
{
	int n = 20;
	for (int i = 0; i <= STUN_MAX_ATTRS; i++)
		n += attr(b + n, (uint16_t)(0xC000 + i), 0);
	hdr(b, 0x0001, (uint16_t)(n - 20));
	return n;
}

static const struct bad_case bad_cases[] = {
	{ "truncated header", mk_short, STUN_E_SHORT },
	{ "first two bits set", mk_not_stun, STUN_E_NOT_STUN },
	{ "wrong magic cookie", mk_cookie, STUN_E_COOKIE },
	{ "length not a multiple of 4", mk_align, STUN_E_LEN_ALIGN },
	{ "length longer than the datagram", mk_len_mismatch, STUN_E_LEN_MISMATCH },
	{ "attribute past end", mk_attr_past_end, STUN_E_ATTR_TRUNC },
	{ "duplicated attribute", mk_dup, STUN_E_ATTR_DUP },
	{ "bad fingerprint", mk_bad_fingerprint, STUN_E_FINGERPRINT },
	{ "attribute after fingerprint", mk_fp_not_last, STUN_E_FP_NOT_LAST },
	{ "attribute after message-integrity", mk_after_integrity, STUN_E_AFTER_INTEGRITY },
	{ "address family 3", mk_family, STUN_E_ADDR_FAMILY },
	{ "IPv4 address of 12 bytes", mk_addr_len, STUN_E_ATTR_LEN },
	{ "error class 7", mk_error_code, STUN_E_ERROR_CODE },
	{ "error response without ERROR-CODE", mk_error_no_code, STUN_E_CLASS },
	{ "more attributes than kept", mk_too_many, STUN_E_TOO_MANY },
};

Test(malformed, each_rejected_with_its_own_error)
{
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);

	for (size_t i = 0; i < n; i++) {
		uint8_t buf[512] = { 0 };
		struct stun_msg m;
		int len = bad_cases[i].make(buf);
		cr_assert_gt(len, 0, "%s", bad_cases[i].name);
		int rc = stun_parse(buf, (size_t)len, &m);
		cr_expect_eq(rc, bad_cases[i].want, "%s: got %d (%s), want %d (%s)", bad_cases[i].name,
			     rc, stun_strerror(rc), bad_cases[i].want, stun_strerror(bad_cases[i].want));
		cr_expect_str_neq(stun_strerror(rc), "unknown");
		for (size_t j = 0; j < i; j++)
			cr_expect_neq(bad_cases[i].want, bad_cases[j].want, "%s and %s share an error",
				      bad_cases[i].name, bad_cases[j].name);
	}
}

/* the same attribute-framing error whether the value or its padding overruns */
Test(malformed, padding_past_end)
{
	uint8_t buf[64] = { 0 };
	struct stun_msg m;
	int len = mk_padding_past_end(buf);
	cr_expect_eq(stun_parse(buf, (size_t)len, &m), STUN_E_ATTR_TRUNC);
	len = mk_change_len(buf);
	cr_expect_eq(stun_parse(buf, (size_t)len, &m), STUN_E_ATTR_LEN);
}

/* Every prefix and every single-bit flip of the vectors is handled. A flip
 * is caught by FINGERPRINT unless it lands in an attribute's type or length
 * (which can turn FINGERPRINT into another attribute, or make one attribute
 * swallow the rest). */
Test(malformed, prefixes_and_bit_flips)
{
	const uint8_t *vecs[] = { rfc_request, rfc_response4, rfc_response6 };
	size_t lens[] = { sizeof(rfc_request), sizeof(rfc_response4), sizeof(rfc_response6) };
	struct stun_msg orig, m;

	for (int v = 0; v < 3; v++) {
		uint8_t buf[128];
		bool in_attr_header[128] = { false };
		cr_assert_eq(stun_parse(vecs[v], lens[v], &orig), 0);
		for (int i = 0; i < orig.nattrs; i++)
			for (int k = 0; k < 4; k++)
				in_attr_header[orig.attrs[i].offset + k] = true;
		for (size_t n = 0; n < lens[v]; n++)
			cr_expect_neq(stun_parse(vecs[v], n, &m), 0, "prefix %zu of vector %d", n, v);
		for (size_t bit = 0; bit < lens[v] * 8; bit++) {
			memcpy(buf, vecs[v], lens[v]);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			int rc = stun_parse(buf, lens[v], &m);
			if (rc == 0)
				cr_expect(in_attr_header[bit / 8], "flip %zu of vector %d accepted", bit, v);
		}
	}
}
