/* iplimit: a token bucket per IP (issue 15 points 5 and 9). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "agent/meshd/iplimit.h"

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

static int burst(struct iplimit *l, const char *to, int n, uint64_t now)
{
	union sockaddr_any a = A(to);
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += iplimit_allow(l, &a, now);
	return ok;
}

Test(iplimit, bucket_per_ip)
{
	static struct iplimit l;

	memset(&l, 0, sizeof(l));
	cr_expect_eq(burst(&l, "192.0.2.1:1", 2 * IPLIMIT_BURST, 1000), IPLIMIT_BURST);
	cr_expect_eq(l.limited, IPLIMIT_BURST);
	/* the port does not matter: one victim, many ports */
	cr_expect_eq(burst(&l, "192.0.2.1:2", 5, 1000), 0);
	/* another IP has its own bucket */
	cr_expect_eq(burst(&l, "192.0.2.2:1", 5, 1000), 5);
	/* refilled at IPLIMIT_PER_S */
	cr_expect_eq(burst(&l, "192.0.2.1:1", 2 * IPLIMIT_PER_S, 2000), IPLIMIT_PER_S);
	/* an IPv6 destination by its /64; a mapped IPv4 one as itself */
	cr_expect_eq(burst(&l, "[2001:db8::1]:1", IPLIMIT_BURST, 3000), IPLIMIT_BURST);
	cr_expect_eq(burst(&l, "[2001:db8::2]:1", 1, 3000), 0);
	cr_expect_eq(burst(&l, "[2001:db8:0:1::1]:1", 1, 3000), 1);
	cr_expect_eq(burst(&l, "[::ffff:192.0.2.2]:1", IPLIMIT_BURST, 3000), IPLIMIT_BURST);
	cr_expect_eq(burst(&l, "192.0.2.2:7", 1, 3000), 0, "the same bucket");
}

/* a full table gives the slot with the most tokens away, so a limited
 * destination stays limited while others come and go */
Test(iplimit, table_bounded)
{
	static struct iplimit l;
	char buf[64];

	memset(&l, 0, sizeof(l));
	cr_expect_eq(burst(&l, "198.51.100.1:1", IPLIMIT_BURST + 1, 0), IPLIMIT_BURST);
	for (int i = 0; i < 4 * IPLIMIT_SLOTS; i++) {
		snprintf(buf, sizeof(buf), "10.%d.%d.1:1", i / 256, i % 256);
		cr_expect_eq(burst(&l, buf, 1, 10), 1);
	}
	cr_expect_eq(burst(&l, "198.51.100.1:1", 1, 10), 0, "still limited");
}
