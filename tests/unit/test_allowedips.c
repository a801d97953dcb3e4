#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/wg/allowedips.h"

static struct wg_allowedips *t;
static int P1, P2, P3;	/* their addresses are the opaque peers */

static void setup(void)
{
	t = wg_allowedips_new();
	cr_assert(t);
}

static void teardown(void)
{
	wg_allowedips_free(t);
}

TestSuite(wg_allowedips, .init = setup, .fini = teardown);

static int fam(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

static int ins(const char *ip, int cidr, void *peer)
{
	uint8_t a[16];

	cr_assert_eq(inet_pton(fam(ip), ip, a), 1, "%s", ip);
	return wg_allowedips_insert(t, fam(ip), a, (uint8_t)cidr, peer);
}

static int rem(const char *ip, int cidr, void *peer)
{
	uint8_t a[16];

	cr_assert_eq(inet_pton(fam(ip), ip, a), 1, "%s", ip);
	return wg_allowedips_remove(t, fam(ip), a, (uint8_t)cidr, peer);
}

static void *look(const char *ip)
{
	uint8_t a[16];

	cr_assert_eq(inet_pton(fam(ip), ip, a), 1, "%s", ip);
	return wg_allowedips_lookup(t, fam(ip), a);
}

struct lk { const char *ip; void *peer; };

static void expect_all(const struct lk *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(look(l[i].ip), l[i].peer, "lookup %s", l[i].ip);
}

Test(wg_allowedips, longest_match_v4)
{
	cr_assert_eq(ins("10.0.0.0", 8, &P1), 0);
	cr_assert_eq(ins("10.1.0.0", 16, &P2), 0);
	cr_assert_eq(ins("10.1.2.3", 32, &P3), 0);
	cr_assert_eq(ins("192.168.0.0", 24, &P3), 0);
	const struct lk l[] = {
		{ "10.0.0.1", &P1 }, { "10.255.255.255", &P1 }, { "10.1.0.1", &P2 },
		{ "10.1.2.3", &P3 }, { "10.1.2.4", &P2 }, { "11.0.0.0", NULL },
		{ "9.255.255.255", NULL }, { "192.168.0.77", &P3 }, { "192.168.1.1", NULL },
	};
	expect_all(l, sizeof(l) / sizeof(l[0]));
	cr_expect_eq(wg_allowedips_count(t, NULL), 4);
}

Test(wg_allowedips, insertion_order_does_not_matter)
{
	/* most specific first, then the covering prefixes */
	cr_assert_eq(ins("10.1.2.3", 32, &P3), 0);
	cr_assert_eq(ins("10.1.0.0", 16, &P2), 0);
	cr_assert_eq(ins("10.0.0.0", 8, &P1), 0);
	cr_assert_eq(ins("10.128.0.0", 9, &P2), 0);
	const struct lk l[] = {
		{ "10.0.0.1", &P1 }, { "10.1.9.9", &P2 }, { "10.1.2.3", &P3 },
		{ "10.200.0.1", &P2 }, { "10.127.0.1", &P1 },
	};
	expect_all(l, sizeof(l) / sizeof(l[0]));
}

Test(wg_allowedips, overlap_replaces_and_host_bits_masked)
{
	cr_assert_eq(ins("10.0.0.0", 8, &P1), 0);
	cr_assert_eq(ins("10.9.9.9", 8, &P2), 0);	/* same prefix, host bits ignored */
	cr_expect_eq(look("10.0.0.1"), &P2);
	cr_expect_eq(wg_allowedips_count(t, NULL), 1);
	cr_expect_eq(wg_allowedips_count(t, &P1), 0);
	cr_assert_eq(ins("0.0.0.0", 0, &P3), 0);
	cr_expect_eq(look("1.2.3.4"), &P3, "default route");
	cr_expect_eq(look("10.1.2.3"), &P2);
}

Test(wg_allowedips, remove_exact_prefix)
{
	cr_assert_eq(ins("10.0.0.0", 8, &P1), 0);
	cr_assert_eq(ins("10.1.0.0", 16, &P2), 0);
	cr_assert_eq(ins("10.2.0.0", 16, &P3), 0);
	cr_expect_eq(rem("10.1.0.0", 24, NULL), -ENOENT, "not that length");
	cr_expect_eq(rem("10.1.0.0", 16, &P3), -ENOENT, "not that peer");
	cr_expect_eq(rem("10.3.0.0", 16, NULL), -ENOENT);
	cr_expect_eq(rem("10.1.0.0", 16, &P2), 0);
	cr_expect_eq(look("10.1.0.1"), &P1, "falls back to the covering prefix");
	cr_expect_eq(look("10.2.0.1"), &P3);
	cr_expect_eq(rem("10.0.0.0", 8, NULL), 0);
	cr_expect_eq(look("10.1.0.1"), NULL);
	cr_expect_eq(look("10.2.0.1"), &P3);
	cr_expect_eq(rem("10.2.0.0", 16, NULL), 0);
	cr_expect_eq(wg_allowedips_count(t, NULL), 0);
	cr_expect_eq(rem("10.2.0.0", 16, NULL), -ENOENT);
}

Test(wg_allowedips, ipv6)
{
	cr_assert_eq(ins("fd00::", 8, &P1), 0);
	cr_assert_eq(ins("fd00:1234::", 32, &P2), 0);
	cr_assert_eq(ins("fd00:1234::1", 128, &P3), 0);
	cr_assert_eq(ins("2001:db8::", 64, &P3), 0);
	const struct lk l[] = {
		{ "fd00::1", &P1 }, { "fd00:1234::2", &P2 }, { "fd00:1234::1", &P3 },
		{ "fd00:1235::1", &P1 }, { "fe80::1", NULL }, { "2001:db8::ffff", &P3 },
		{ "2001:db8:0:1::1", NULL },
	};
	expect_all(l, sizeof(l) / sizeof(l[0]));
	/* families are separate: ::/0 does not catch IPv4 */
	cr_assert_eq(ins("::", 0, &P1), 0);
	cr_expect_eq(look("1.2.3.4"), NULL);
	cr_expect_eq(look("fe80::1"), &P1);
	cr_expect_eq(rem("fd00:1234::1", 128, NULL), 0);
	cr_expect_eq(look("fd00:1234::1"), &P2);
}

static int collect(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	char *out = ctx, ip[INET6_ADDRSTRLEN];

	(void)peer;
	inet_ntop(family, addr, ip, sizeof(ip));
	sprintf(out + strlen(out), "%s/%u ", ip, cidr);
	return 0;
}

Test(wg_allowedips, remove_peer_and_walk)
{
	char buf[512] = "";

	cr_assert_eq(ins("10.0.0.0", 8, &P1), 0);
	cr_assert_eq(ins("10.1.0.0", 16, &P2), 0);
	cr_assert_eq(ins("10.1.2.0", 24, &P1), 0);
	cr_assert_eq(ins("fd00::", 64, &P1), 0);
	cr_assert_eq(ins("172.16.0.1", 32, &P2), 0);
	cr_assert_eq(ins("0.0.0.0", 1, &P1), 0);

	cr_assert_eq(wg_allowedips_walk(t, &P1, collect, buf), 0);
	cr_expect_str_eq(buf, "0.0.0.0/1 10.0.0.0/8 10.1.2.0/24 fd00::/64 ");
	cr_expect_eq(wg_allowedips_count(t, &P2), 2);

	cr_expect_eq(wg_allowedips_remove_peer(t, &P1), 4);
	cr_expect_eq(look("10.1.2.3"), &P2);
	cr_expect_eq(look("10.2.0.0"), NULL);
	cr_expect_eq(look("fd00::1"), NULL);
	cr_expect_eq(look("172.16.0.1"), &P2);
	buf[0] = 0;
	cr_assert_eq(wg_allowedips_walk(t, NULL, collect, buf), 0);
	cr_expect_str_eq(buf, "10.1.0.0/16 172.16.0.1/32 ");
	cr_expect_eq(wg_allowedips_remove_peer(t, &P1), 0);
}

Test(wg_allowedips, packet_lookup_and_bad_input)
{
	uint8_t v4[20] = { 0x45 }, v6[40] = { 0x60 }, a[16] = { 0 };

	cr_assert_eq(ins("10.0.0.2", 32, &P1), 0);
	cr_assert_eq(ins("10.0.0.1", 32, &P2), 0);
	cr_assert_eq(ins("fd00::2", 128, &P3), 0);
	inet_pton(AF_INET, "10.0.0.1", v4 + 12);
	inet_pton(AF_INET, "10.0.0.2", v4 + 16);
	cr_expect_eq(wg_allowedips_lookup_dst(t, v4, sizeof(v4)), &P1);
	cr_expect_eq(wg_allowedips_lookup_src(t, v4, sizeof(v4)), &P2);
	cr_expect_eq(wg_allowedips_lookup_dst(t, v4, 19), NULL, "truncated");
	inet_pton(AF_INET6, "fd00::2", v6 + 24);
	cr_expect_eq(wg_allowedips_lookup_dst(t, v6, sizeof(v6)), &P3);
	cr_expect_eq(wg_allowedips_lookup_src(t, v6, sizeof(v6)), NULL);
	v6[0] = 0x50;
	cr_expect_eq(wg_allowedips_lookup_dst(t, v6, sizeof(v6)), NULL, "version 5");

	cr_expect_eq(wg_allowedips_insert(t, AF_INET, a, 33, &P1), -EINVAL);
	cr_expect_eq(wg_allowedips_insert(t, AF_INET6, a, 129, &P1), -EINVAL);
	cr_expect_eq(wg_allowedips_insert(t, AF_UNIX, a, 8, &P1), -EINVAL);
	cr_expect_eq(wg_allowedips_insert(t, AF_INET, a, 8, NULL), -EINVAL);
}

/* randomised against a linear scan of the inserted prefixes */
Test(wg_allowedips, against_linear_reference)
{
	enum { N = 400 };
	static struct { uint32_t net; uint8_t cidr; int *peer; } ref[N];
	static int peers[8];
	uint32_t x = 2463534242u;
	size_t n = 0;

	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		uint8_t cidr = (uint8_t)(x % 33);
		uint32_t net = (x * 2654435761u) & 0x0f0f0fffu;
		net = cidr ? net & ~((1ULL << (32 - cidr)) - 1) : 0;
		int *peer = &peers[x % 8];
		uint32_t be = htonl(net);
		cr_assert_eq(wg_allowedips_insert(t, AF_INET, (uint8_t *)&be, cidr, peer), 0);
		size_t j;
		for (j = 0; j < n; j++)
			if (ref[j].net == net && ref[j].cidr == cidr)
				break;
		if (j == n)
			n++;
		ref[j].net = net, ref[j].cidr = cidr, ref[j].peer = peer;
		/* every few inserts remove one */
		if (i % 7 == 6 && n) {
			size_t k = x % n;
			be = htonl(ref[k].net);
			cr_assert_eq(wg_allowedips_remove(t, AF_INET, (uint8_t *)&be, ref[k].cidr, NULL), 0);
			ref[k] = ref[--n];
		}
	}
	cr_expect_eq(wg_allowedips_count(t, NULL), n);
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		uint32_t addr = x & 0x0f0f0fffu, be = htonl(addr);
		int best = -1;
		for (size_t j = 0; j < n; j++) {
			uint32_t mask = ref[j].cidr ? (uint32_t)~((1ULL << (32 - ref[j].cidr)) - 1) : 0;
			if ((addr & mask) == ref[j].net && (best < 0 || ref[j].cidr > ref[best].cidr))
				best = (int)j;
		}
		cr_assert_eq(wg_allowedips_lookup(t, AF_INET, (uint8_t *)&be),
			     best < 0 ? NULL : ref[best].peer, "addr %08x", addr);
	}
}
