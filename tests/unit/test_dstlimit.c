/* dstlimit: handshake initiations per destination IP (issue 15 point 5). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "agent/meshd/dstlimit.h"

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

static int burst(struct dstlimit *l, const char *to, int n, uint64_t now)
{
	union sockaddr_any a = A(to);
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += dstlimit_allow(l, &a, now);
	return ok;
}

Test(dstlimit, bucket_per_ip)
{
	static struct dstlimit l;

	memset(&l, 0, sizeof(l));
	cr_expect_eq(burst(&l, "192.0.2.1:1", 2 * DSTLIMIT_BURST, 1000), DSTLIMIT_BURST);
	cr_expect_eq(l.limited, DSTLIMIT_BURST);
	/* the port does not matter: one victim, many ports */
	cr_expect_eq(burst(&l, "192.0.2.1:2", 5, 1000), 0);
	/* another IP has its own bucket */
	cr_expect_eq(burst(&l, "192.0.2.2:1", 5, 1000), 5);
	/* refilled at DSTLIMIT_PER_S */
	cr_expect_eq(burst(&l, "192.0.2.1:1", 2 * DSTLIMIT_PER_S, 2000), DSTLIMIT_PER_S);
	/* an IPv6 destination by its /64; a mapped IPv4 one as itself */
	cr_expect_eq(burst(&l, "[2001:db8::1]:1", DSTLIMIT_BURST, 3000), DSTLIMIT_BURST);
	cr_expect_eq(burst(&l, "[2001:db8::2]:1", 1, 3000), 0);
	cr_expect_eq(burst(&l, "[2001:db8:0:1::1]:1", 1, 3000), 1);
	cr_expect_eq(burst(&l, "[::ffff:192.0.2.2]:1", DSTLIMIT_BURST, 3000), DSTLIMIT_BURST);
	cr_expect_eq(burst(&l, "192.0.2.2:7", 1, 3000), 0, "the same bucket");
}

/* a full table gives the slot with the most tokens away, so a limited
 * destination stays limited while others come and go */
Test(dstlimit, table_bounded)
{
	static struct dstlimit l;
	char buf[64];

	memset(&l, 0, sizeof(l));
	cr_expect_eq(burst(&l, "198.51.100.1:1", DSTLIMIT_BURST + 1, 0), DSTLIMIT_BURST);
	for (int i = 0; i < 4 * DSTLIMIT_SLOTS; i++) {
		snprintf(buf, sizeof(buf), "10.%d.%d.1:1", i / 256, i % 256);
		cr_expect_eq(burst(&l, buf, 1, 10), 1);
	}
	cr_expect_eq(burst(&l, "198.51.100.1:1", 1, 10), 0, "still limited");
}
