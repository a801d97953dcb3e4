/* spray's schedule on a fake clock: the rate, the budget, the stop, each
 * port once, the seed fixing the order, a late caller's bounded burst, the
 * refused configurations, and the birthday probabilities D. Anderson's
 * calculator publishes (256 open mappings: 256 probes ~64%, 1024 ~98%, 2048
 * ~99.9%). */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spray.h"

static struct spray_cfg cfg(uint32_t rate, uint32_t budget)
{
	return (struct spray_cfg){ .rate_pps = rate, .budget = budget, .port_min = 1024,
				   .port_max = 65535, .seed = 42 };
}

/* polls every ms from `from` to `to`; counts what was handed out */
static unsigned drain(struct spray *s, uint64_t from, uint64_t to, uint16_t *out, size_t max)
{
	unsigned n = 0;
	uint16_t port;

	for (uint64_t t = from; t < to; t++)
		while (spray_next(s, t, &port) == 1)
			if (n < max)
				out[n++] = port;
			else
				n++;
	return n;
}

Test(spray, rate_on_a_fake_clock)
{
	struct spray s;
	uint16_t ports[512];

	cr_assert_eq(spray_init(&s, &(struct spray_cfg){ .rate_pps = 200, .budget = 2048,
			.port_min = 1024, .port_max = 65535, .seed = 1 }, 1000, NULL), 0);
	cr_expect_eq(drain(&s, 1000, 2000, ports, 512), 200, "200 in the first second");
	cr_expect_eq(drain(&s, 2000, 2500, ports, 512), 100, "100 in the next half");
	cr_expect_eq(spray_deadline(&s), 2500, "the next is due 5 ms after the last");
}

Test(spray, budget_then_nospc)
{
	struct spray s;
	struct spray_cfg c = cfg(1000, 300);
	uint16_t port, ports[400];

	cr_assert_eq(spray_init(&s, &c, 0, NULL), 0);
	cr_expect_eq(drain(&s, 0, 10000, ports, 400), 300);
	cr_expect_eq(spray_next(&s, 20000, &port), -ENOSPC);
	cr_expect_eq(spray_deadline(&s), UINT64_MAX);
}

Test(spray, stop_ends_it_at_once)
{
	struct spray s;
	struct spray_cfg c = cfg(200, 2048);
	uint16_t port, ports[16];

	cr_assert_eq(spray_init(&s, &c, 0, NULL), 0);
	cr_expect_eq(drain(&s, 0, 50, ports, 16), 10);
	spray_stop(&s);
	cr_expect_eq(spray_next(&s, 100000, &port), -ECANCELED);
	cr_expect_eq(spray_deadline(&s), UINT64_MAX);
}

Test(spray, each_port_once_and_every_port_in_the_end)
{
	static uint8_t seen[65536];
	struct spray s;
	struct spray_cfg c = { .rate_pps = 10000, .budget = 65535, .port_min = 1024,
			       .port_max = 65535, .seed = 7 };
	uint16_t port;
	unsigned n = 0;
	int rc;

	memset(seen, 0, sizeof(seen));
	cr_assert_eq(spray_init(&s, &c, 0, NULL), 0);
	for (uint64_t t = 0; (rc = spray_next(&s, t, &port)) >= 0; t++)
		if (rc == 1) {
			cr_assert(port >= 1024, "port %u below the range", port);
			cr_assert_eq(seen[port]++, 0, "port %u twice", port);
			n++;
		}
	cr_expect_eq(rc, -ENOSPC);
	cr_expect_eq(n, 65535 - 1024 + 1, "the whole range, then the end (%u)", n);
}

Test(spray, the_seed_fixes_the_order)
{
	struct spray a, b, c;
	struct spray_cfg ca = cfg(1000, 64), cc = cfg(1000, 64);
	uint16_t pa[64], pb[64], pc[64];

	cc.seed = 43;
	cr_assert_eq(spray_init(&a, &ca, 0, NULL), 0);
	cr_assert_eq(spray_init(&b, &ca, 0, NULL), 0);
	cr_assert_eq(spray_init(&c, &cc, 0, NULL), 0);
	cr_assert_eq(drain(&a, 0, 1000, pa, 64), 64);
	cr_assert_eq(drain(&b, 0, 1000, pb, 64), 64);
	cr_assert_eq(drain(&c, 0, 1000, pc, 64), 64);
	cr_expect_eq(memcmp(pa, pb, sizeof(pa)), 0, "same seed, same ports");
	cr_expect_neq(memcmp(pa, pc, sizeof(pa)), 0, "another seed, other ports");
}

Test(spray, a_late_caller_gets_a_bounded_burst)
{
	struct spray s;
	struct spray_cfg c = cfg(200, 2048);
	uint16_t port;
	unsigned burst = 0;

	cr_assert_eq(spray_init(&s, &c, 0, NULL), 0);
	cr_assert_eq(spray_next(&s, 0, &port), 1);
	while (spray_next(&s, 5000, &port) == 1)
		burst++;
	cr_expect_leq(burst, 21, "at most 100 ms worth (+1) after a 5 s stall, got %u", burst);
	cr_expect_geq(burst, 20);
	cr_expect_eq(spray_deadline(&s), 5005, "then the rate again");
}

Test(spray, refused_configurations)
{
	struct spray s;
	const char *why;
	struct spray_cfg bad[] = {
		{ .rate_pps = 0, .budget = 10, .port_min = 1024, .port_max = 65535 },
		{ .rate_pps = 20000, .budget = 10, .port_min = 1024, .port_max = 65535 },
		{ .rate_pps = 10, .budget = 0, .port_min = 1024, .port_max = 65535 },
		{ .rate_pps = 10, .budget = 10, .port_min = 0, .port_max = 65535 },
		{ .rate_pps = 10, .budget = 10, .port_min = 5000, .port_max = 4000 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		cr_expect_eq(spray_init(&s, &bad[i], 0, &why), -EINVAL, "case %zu", i);
		cr_expect(why && strchr(why, ':'), "case %zu names the field", i);
	}
}

Test(spray, birthday_probabilities)
{
	const struct { uint32_t n, k, r; double p, tol; } t[] = {
		{ 256, 256, 65536, 0.632, 0.005 },
		{ 256, 1024, 65536, 0.982, 0.002 },
		{ 256, 2048, 65536, 0.9997, 0.0002 },
		{ 1, 1, 2, 0.5, 1e-9 },
		{ 0, 100, 65536, 0.0, 0 },
		{ 10, 0, 65536, 0.0, 0 },
		{ 100, 65436, 65536, 1.0, 0 },
		{ 100, 65437, 65536, 1.0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		double p = spray_success_probability(t[i].n, t[i].k, t[i].r);

		cr_expect(fabs(p - t[i].p) <= t[i].tol, "n=%u k=%u r=%u: %.5f, want %.5f", t[i].n,
			  t[i].k, t[i].r, p, t[i].p);
	}
}
