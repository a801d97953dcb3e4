#include <criterion/criterion.h>
#include <errno.h>

#include "service/ipam.h"

static struct ipam make(const char *cidr)
{
	struct cidr c;
	struct ipam ipam;
	cr_assert_eq(cidr_parse(cidr, false, &c), 0, "%s", cidr);
	cr_assert_eq(ipam_init(&ipam, &c), 0, "%s", cidr);
	return ipam;
}

static const char *alloc_ip(struct ipam *ipam, char *buf, size_t len)
{
	union sockaddr_any a;
	uint64_t index;
	int rc = ipam_alloc(ipam, &index, &a);
	if (rc < 0)
		return NULL;
	return addr_format_ip(&a, buf, len);
}

Test(ipam, first_is_lowest_host)
{
	struct ipam ipam = make("10.1.2.0/24");
	char buf[64];
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.1.2.1");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.1.2.2");
	ipam_fini(&ipam);
}

Test(ipam, gaps_are_filled_lowest_first)
{
	struct ipam ipam = make("10.0.0.0/24");
	char buf[64];
	uint64_t index;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(ipam_alloc(&ipam, &index, NULL), 0);
	cr_expect_eq(index, 10);
	cr_expect_eq(ipam_release(&ipam, 7), 0);
	cr_expect_eq(ipam_release(&ipam, 3), 0);
	cr_expect_eq(ipam_release(&ipam, 3), -ENOENT, "released twice");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.0.0.3");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.0.0.7");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.0.0.11");
	cr_expect_eq(ipam.used, 11);
	ipam_fini(&ipam);
}

Test(ipam, reserve_loads_and_skips)
{
	struct ipam ipam = make("10.0.0.0/24");
	char buf[64];
	cr_expect_eq(ipam_reserve(&ipam, 1), 0);
	cr_expect_eq(ipam_reserve(&ipam, 2), 0);
	cr_expect_eq(ipam_reserve(&ipam, 4), 0);
	cr_expect_eq(ipam_reserve(&ipam, 4), -EEXIST);
	cr_expect_eq(ipam_reserve(&ipam, 0), -ERANGE, "network address");
	cr_expect_eq(ipam_reserve(&ipam, 255), -ERANGE, "broadcast address");
	cr_expect_eq(ipam_reserve(&ipam, 256), -ERANGE, "outside");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.0.0.3");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "10.0.0.5");
	ipam_fini(&ipam);
}

Test(ipam, slash30_has_two_hosts_then_exhaustion)
{
	struct ipam ipam = make("192.168.7.4/30");
	char buf[64];
	uint64_t index;
	cr_expect_eq(ipam_capacity(&ipam), 2);
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "192.168.7.5");
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "192.168.7.6");
	cr_expect_eq(ipam_alloc(&ipam, &index, NULL), -ENOSPC, "never .7 (broadcast)");
	cr_expect_eq(ipam_release(&ipam, 1), 0);
	cr_expect_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "192.168.7.5");
	cr_expect_eq(ipam_alloc(&ipam, &index, NULL), -ENOSPC);
	ipam_fini(&ipam);
}

Test(ipam, slash24_exhaustion_never_network_or_broadcast)
{
	struct ipam ipam = make("10.9.9.0/24");
	union sockaddr_any a;
	uint64_t index, seen = 0;
	char buf[64];
	while (ipam_alloc(&ipam, &index, &a) == 0) {
		addr_format_ip(&a, buf, sizeof(buf));
		cr_assert_str_neq(buf, "10.9.9.0");
		cr_assert_str_neq(buf, "10.9.9.255");
		seen++;
	}
	cr_expect_eq(seen, 254);
	ipam_fini(&ipam);
}

Test(ipam, slash10_fills_completely, .timeout = 60)
{
	struct ipam ipam = make("100.64.0.0/10");
	union sockaddr_any a;
	uint64_t index, n = 0;
	char buf[64];
	cr_expect_eq(ipam_capacity(&ipam), (1u << 22) - 2);
	cr_assert_str_eq(alloc_ip(&ipam, buf, sizeof(buf)), "100.64.0.1");
	n = 1;
	while (ipam_alloc(&ipam, &index, NULL) == 0)
		n++;
	cr_expect_eq(n, (1u << 22) - 2);
	cr_expect_eq(ipam_alloc(&ipam, &index, NULL), -ENOSPC);
	/* the last host is .255.254; the broadcast .255.255 was never handed out */
	cr_expect_eq(ipam_release(&ipam, (1u << 22) - 2), 0);
	cr_assert_eq(ipam_alloc(&ipam, &index, &a), 0);
	cr_expect_str_eq(addr_format_ip(&a, buf, sizeof(buf)), "100.127.255.254");
	cr_expect_eq(ipam_release(&ipam, 70000), 0);
	cr_assert_eq(ipam_alloc(&ipam, &index, &a), 0);
	cr_expect_eq(index, 70000);
	ipam_fini(&ipam);
}

Test(ipam, refuses_ipv6_and_tiny_prefixes)
{
	struct cidr c;
	struct ipam ipam;
	cr_assert_eq(cidr_parse("fd00::/64", false, &c), 0);
	cr_expect_eq(ipam_init(&ipam, &c), -EINVAL);
	cr_assert_eq(cidr_parse("10.0.0.0/31", false, &c), 0);
	cr_expect_eq(ipam_init(&ipam, &c), -EINVAL);
	cr_assert_eq(cidr_parse("10.0.0.1/32", false, &c), 0);
	cr_expect_eq(ipam_init(&ipam, &c), -EINVAL);
}
