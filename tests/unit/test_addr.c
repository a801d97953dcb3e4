#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "addr.h"

struct addr_case { const char *in; int ok; const char *out; };

Test(addr, parse_and_format)
{
	static const struct addr_case cases[] = {
		{ "1.2.3.4:5", 1, "1.2.3.4:5" },
		{ "[::1]:443", 1, "[::1]:443" },
		{ "[2001:db8::1]:65535", 1, "[2001:db8::1]:65535" },
		{ "203.0.113.1:0", 1, "203.0.113.1:0" },
		{ "1.2.3.4", 0, NULL },
		{ "1.2.3.4:65536", 0, NULL },
		{ "1.2.3.4:-1", 0, NULL },
		{ "1.2.3.4:x", 0, NULL },
		{ "::1:80", 0, NULL },
		{ "[1.2.3.4]:80", 0, NULL },
		{ "[::1]80", 0, NULL },
		{ ":80", 0, NULL },
		{ "1.2.3.256:80", 0, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		union sockaddr_any a;
		char buf[ADDR_STRLEN];
		int rc = addr_parse(cases[i].in, &a);
		cr_expect_eq(rc == 0, cases[i].ok, "addr_parse(%s) = %d", cases[i].in, rc);
		if (rc == 0)
			cr_expect_str_eq(addr_format(&a, buf, sizeof(buf)), cases[i].out);
	}
}

Test(addr, equal_and_unmap)
{
	union sockaddr_any a, b;
	cr_assert_eq(addr_parse("[::ffff:10.1.2.3]:99", &a), 0);
	addr_unmap_v4(&a);
	cr_assert_eq(addr_parse("10.1.2.3:99", &b), 0);
	cr_expect(addr_equal(&a, &b));
	addr_set_port(&b, 100);
	cr_expect(!addr_equal(&a, &b));
	cr_expect(addr_ip_equal(&a, &b));
}

Test(cidr, parse_contains_host)
{
	struct cidr c;
	union sockaddr_any a;
	char buf[CIDR_STRLEN];
	uint64_t idx;

	cr_assert_eq(cidr_parse("100.64.0.0/10", false, &c), 0);
	cr_expect_eq(cidr_size(&c), 1u << 22);
	cr_expect_eq(cidr_host(&c, 1, &a), 0);
	cr_expect_str_eq(addr_format_ip(&a, buf, sizeof(buf)), "100.64.0.1");
	cr_expect_eq(cidr_host(&c, 256 + 7, &a), 0);
	cr_expect_str_eq(addr_format_ip(&a, buf, sizeof(buf)), "100.64.1.7");
	cr_expect_eq(cidr_index(&c, &a, &idx), 0);
	cr_expect_eq(idx, 263);
	cr_expect_eq(cidr_host(&c, 1u << 22, &a), -ERANGE);
	cr_expect_eq(addr_parse_ip("100.128.0.1", 0, &a), 0);
	cr_expect(!cidr_contains(&c, &a));
	cr_expect_eq(cidr_index(&c, &a, &idx), -ERANGE);

	cr_expect_eq(cidr_parse("10.0.0.1/8", false, &c), -EINVAL);
	cr_expect_eq(cidr_parse("10.0.0.1/8", true, &c), 0);
	cr_expect_str_eq(cidr_format(&c, buf, sizeof(buf)), "10.0.0.0/8");
	cr_expect_eq(cidr_parse("10.0.0.0/33", false, &c), -EINVAL);
	cr_expect_eq(cidr_parse("10.0.0.0/", false, &c), -EINVAL);
	cr_expect_eq(cidr_parse("10.0.0.0", false, &c), -EINVAL);
	cr_expect_eq(cidr_parse("fd00::/129", false, &c), -EINVAL);

	cr_assert_eq(cidr_parse("fd00:1::/64", false, &c), 0);
	cr_expect_eq(cidr_host(&c, 0x1234, &a), 0);
	cr_expect_str_eq(addr_format_ip(&a, buf, sizeof(buf)), "fd00:1::1234");
	cr_expect(cidr_contains(&c, &a));
	cr_assert_eq(cidr_parse("0.0.0.0/0", false, &c), 0);
	cr_expect_eq(addr_parse_ip("8.8.8.8", 0, &a), 0);
	cr_expect(cidr_contains(&c, &a));
}
