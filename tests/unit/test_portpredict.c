/* portpredict on recorded port sequences: what a sequential NAT (the lab's
 * `numgen inc` snat, a carrier NAT stepping by 2, one counting down, one
 * wrapping at the end of its range) handed a run of fresh sockets, the
 * sequences that are no sequence (random allocation, repeats, mixed
 * directions), and the window against a simulated NAT whose other hosts
 * take ports at a Poisson rate. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "portpredict.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct fit_case {
	const char *name;
	uint16_t lo, hi;
	struct portpredict_sample s[10];
	size_t n;
	int rc;
	int delta;
	double rate;		/* expected background per second (when rc == 0) */
};

static const struct fit_case fits[] = {
	{ "lab numgen inc, alone", 1024, 65535,
	  { { 0, 40000 }, { 10, 40001 }, { 20, 40002 }, { 30, 40003 }, { 40, 40004 },
	    { 50, 40005 }, { 60, 40006 }, { 70, 40007 } }, 8, 0, 1, 0.0 },
	{ "busy NAT: 6 others' mappings in 1 s", 1024, 65535,
	  { { 0, 5000 }, { 250, 5003 }, { 500, 5005 }, { 750, 5008 }, { 1000, 5010 } },
	  5, 0, 1, 6.0 },
	{ "steps of 2 (a carrier NAT keeping pairs)", 1024, 65535,
	  { { 0, 20000 }, { 100, 20002 }, { 200, 20006 }, { 300, 20008 } }, 4, 0, 2, 1000.0 / 300 },
	{ "counting down", 1024, 65535,
	  { { 0, 60000 }, { 100, 59999 }, { 200, 59998 }, { 300, 59996 } }, 4, 0, -1, 1000.0 / 300 },
	{ "wrapping at the top of the range", 1024, 65535,
	  { { 0, 65534 }, { 100, 65535 }, { 200, 1024 }, { 300, 1025 } }, 4, 0, 1, 0.0 },
	{ "random allocation (lab fully-random)", 1024, 65535,
	  { { 0, 31337 }, { 10, 50211 }, { 20, 2650 }, { 30, 44100 }, { 40, 17777 } }, 5, -EINVAL, 0, 0 },
	{ "random but rising by chance", 1024, 65535,
	  { { 0, 2000 }, { 10, 9000 }, { 20, 15000 }, { 30, 30001 } }, 4, -EINVAL, 0, 0 },
	{ "a port twice", 1024, 65535,
	  { { 0, 4000 }, { 10, 4001 }, { 20, 4001 } }, 3, -EINVAL, 0, 0 },
	{ "up and down", 1024, 65535,
	  { { 0, 4000 }, { 10, 4001 }, { 20, 3999 } }, 3, -EINVAL, 0, 0 },
	{ "two samples only", 1024, 65535, { { 0, 4000 }, { 10, 4001 } }, 2, -EINVAL, 0, 0 },
	{ "times going backwards", 1024, 65535,
	  { { 50, 4000 }, { 10, 4001 }, { 60, 4002 } }, 3, -EINVAL, 0, 0 },
	{ "a port outside the range", 2000, 3000,
	  { { 0, 2998 }, { 10, 2999 }, { 20, 3001 } }, 3, -EINVAL, 0, 0 },
	{ "a common step of 32", 1024, 65535,
	  { { 0, 4000 }, { 10, 4032 }, { 20, 4064 } }, 3, -EINVAL, 0, 0 },
};

Test(portpredict, fit_recorded_sequences)
{
	for (size_t i = 0; i < N(fits); i++) {
		const struct fit_case *c = &fits[i];
		struct portpredict p;
		const char *why = NULL;
		int rc = portpredict_fit(c->s, c->n, c->lo, c->hi, &p, &why);

		cr_expect_eq(rc, c->rc, "%s: rc %d, want %d (%s)", c->name, rc, c->rc, why ? why : "");
		if (rc) {
			cr_expect(why && *why, "%s: a refusal names its reason", c->name);
			continue;
		}
		cr_expect_eq(p.delta, c->delta, "%s: delta %d, want %d", c->name, p.delta, c->delta);
		cr_expect(fabs(p.rate_per_s - c->rate) < 0.01, "%s: rate %.3f, want %.3f", c->name,
			  p.rate_per_s, c->rate);
		cr_expect_eq(p.last_port, c->s[c->n - 1].port, "%s: last port", c->name);
	}
}

Test(portpredict, window_alone_is_the_next_ports)
{
	const struct fit_case *c = &fits[0];
	struct portpredict p;
	uint16_t w[8];

	cr_assert_eq(portpredict_fit(c->s, c->n, c->lo, c->hi, &p, NULL), 0);
	cr_assert_eq(portpredict_window(&p, 70, 1, w, N(w)), 3, "centre and 2 steps on; none behind");
	cr_expect_eq(w[0], 40008);
	cr_expect_eq(w[1], 40009);
	cr_expect_eq(w[2], 40010);
	cr_assert_eq(portpredict_window(&p, 70, 3, w, N(w)), 3);
	cr_expect_eq(w[0], 40010, "our third socket from now, never sooner");
	cr_expect_eq(w[1], 40011);
	cr_expect_eq(w[2], 40012);
	cr_expect_eq(portpredict_window(&p, 70, 0, w, N(w)), 0, "k starts at 1");
	cr_expect_eq(portpredict_window(&p, 70, 1, w, 1), 1, "max is kept");
}

Test(portpredict, window_wraps_and_counts_down)
{
	struct portpredict p;
	uint16_t w[8];
	size_t n;

	cr_assert_eq(portpredict_fit(fits[4].s, fits[4].n, 1024, 65535, &p, NULL), 0);
	n = portpredict_window(&p, 300, 1, w, N(w));
	cr_assert_geq(n, 1);
	cr_expect_eq(w[0], 1026);
	cr_assert_eq(portpredict_fit(fits[3].s, fits[3].n, 1024, 65535, &p, NULL), 0);
	n = portpredict_window(&p, 300, 1, w, N(w));
	cr_assert_geq(n, 1);
	cr_expect_eq(w[0], 59995, "one below the last, and one more for 3.3 others/s in 0 s (rounded)");
	for (size_t i = 0; i < n; i++)
		cr_expect(w[i] <= 59995, "never behind our own next step: %u", w[i]);
}

/* xorshift for a reproducible background */
static uint64_t rng = 0x2545f4914f6cdd1dULL;
static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* Poisson arrivals of others' mappings at rate per second over dt ms */
static unsigned others(double rate, uint64_t dt_ms)
{
	double t = 0, span = (double)dt_ms / 1000.0;
	unsigned k = 0;

	while ((t += -log(1.0 - uniform()) / rate) < span)
		k++;
	return k;
}

Test(portpredict, window_holds_the_port_a_busy_nat_gives)
{
	const double rate = 40.0;	/* others' new mappings per second */
	int hits = 0, trials = 400;
	size_t wsum = 0;

	for (int t = 0; t < trials; t++) {
		struct portpredict_sample s[8];
		struct portpredict p;
		uint16_t w[PORTPREDICT_WINDOW_MAX];
		uint32_t port = 10000;
		uint64_t now = 0;
		size_t n;

		for (int i = 0; i < 8; i++) {
			uint64_t gap = i ? 50 : 0;

			port += (i ? 1 : 0) + others(rate, gap);
			now += gap;
			s[i] = (struct portpredict_sample){ now, (uint16_t)port };
		}
		cr_assert_eq(portpredict_fit(s, 8, 1024, 65535, &p, NULL), 0);
		/* the punch starts 500 ms later: our next socket's mapping */
		port += 1 + others(rate, 500);
		n = portpredict_window(&p, now + 500, 1, w, PORTPREDICT_WINDOW_MAX);
		wsum += n;
		for (size_t i = 0; i < n; i++)
			if (w[i] == port) {
				hits++;
				break;
			}
	}
	cr_expect_geq(hits, trials * 97 / 100, "%d of %d inside the window (mean %zu ports)", hits,
		      trials, wsum / trials);
	cr_expect_leq(wsum / trials, 64, "a window of 3 sd, not the whole range (%zu)", wsum / trials);
}
