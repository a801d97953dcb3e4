#include <criterion/criterion.h>

#include "agent/wg/ratelimit.h"

#define MS WG_NSEC_PER_MSEC
#define T0 (5000 * WG_NSEC_PER_SEC)

static struct wg_ratelimit *r;

static void setup(void) { cr_assert_eq(wg_ratelimit_new(&r), 0); }
static void teardown(void) { wg_ratelimit_free(r); }
TestSuite(wg_ratelimit, .init = setup, .fini = teardown);

static union sockaddr_any src(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0);
	return a;
}

/* kernel ratelimiter.c: a burst of 5, then 20 per second */
Test(wg_ratelimit, burst_then_rate)
{
	union sockaddr_any a = src("192.0.2.1:1000"), b = src("192.0.2.2:1000");
	for (int i = 0; i < WG_RATELIMIT_PACKETS_BURSTABLE; i++)
		cr_expect(wg_ratelimit_allow(r, &a, T0), "burst packet %d", i);
	cr_expect(!wg_ratelimit_allow(r, &a, T0), "past the burst");
	cr_expect(wg_ratelimit_allow(r, &b, T0), "another source has its own bucket");
	cr_expect(!wg_ratelimit_allow(r, &a, T0 + 49 * MS));
	cr_expect(wg_ratelimit_allow(r, &a, T0 + 50 * MS), "one token per 1/20 s");
	cr_expect(!wg_ratelimit_allow(r, &a, T0 + 51 * MS));
	/* tokens do not pile up beyond the burst */
	for (int i = 0; i < WG_RATELIMIT_PACKETS_BURSTABLE; i++)
		cr_expect(wg_ratelimit_allow(r, &a, T0 + 60 * WG_NSEC_PER_SEC));
	cr_expect(!wg_ratelimit_allow(r, &a, T0 + 60 * WG_NSEC_PER_SEC));
}

Test(wg_ratelimit, port_and_ipv6_interface_id_do_not_matter)
{
	union sockaddr_any a = src("192.0.2.1:1"), a2 = src("192.0.2.1:2");
	union sockaddr_any v6 = src("[2001:db8:1:2::1]:1"), v6b = src("[2001:db8:1:2:ffff::9]:1");
	union sockaddr_any v6other = src("[2001:db8:1:3::1]:1");
	for (int i = 0; i < WG_RATELIMIT_PACKETS_BURSTABLE; i++) {
		cr_expect(wg_ratelimit_allow(r, i % 2 ? &a : &a2, T0));
		cr_expect(wg_ratelimit_allow(r, i % 2 ? &v6 : &v6b, T0));
	}
	cr_expect(!wg_ratelimit_allow(r, &a2, T0));
	cr_expect(!wg_ratelimit_allow(r, &v6b, T0), "one /64 is one source");
	cr_expect(wg_ratelimit_allow(r, &v6other, T0));
	cr_expect_eq(wg_ratelimit_entries(r), 3);
}

Test(wg_ratelimit, idle_entries_collected)
{
	union sockaddr_any a = src("192.0.2.1:1"), b = src("192.0.2.2:1");
	cr_expect(wg_ratelimit_allow(r, &a, T0));
	cr_expect_eq(wg_ratelimit_entries(r), 1);
	cr_expect(wg_ratelimit_allow(r, &b, T0 + 3 * WG_NSEC_PER_SEC));
	cr_expect_eq(wg_ratelimit_entries(r), 1, "the idle entry went");
}

/* under load past WG_LOAD_THRESHOLD handshakes in a window, and for a second after */
Test(wg_ratelimit, load_detection)
{
	uint64_t t = T0;
	for (int i = 0; i < WG_LOAD_THRESHOLD; i++)
		cr_expect(!wg_ratelimit_under_load(r, t), "message %d is below the threshold", i);
	cr_expect(wg_ratelimit_under_load(r, t));
	/* a quiet window later: still in force for WG_LOAD_HOLD_NS */
	t += WG_LOAD_WINDOW_NS;
	cr_expect(wg_ratelimit_under_load(r, t));
	cr_expect(wg_ratelimit_under_load(r, T0 + WG_LOAD_HOLD_NS - 1));
	cr_expect(!wg_ratelimit_under_load(r, T0 + WG_LOAD_HOLD_NS));
	/* a steady trickle below the rate never is */
	t = T0 + 10 * WG_NSEC_PER_SEC;
	for (int i = 0; i < 1000; i++, t += 10 * MS)
		cr_expect(!wg_ratelimit_under_load(r, t));
}
