#include "portpredict.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* a difference of more than this many steps between two of our own
 * samples means others took hundreds of ports meanwhile: no longer a
 * sequence one can aim into */
enum { GAP_MAX_STEPS = 256, ELAPSED_FLOOR_MS = 100 };

static uint32_t range_of(uint16_t lo, uint16_t hi)
{
	return (uint32_t)hi - lo + 1;
}

/* from a to b in a ring of r ports, as a signed step in (-r/2, r/2] */
static int32_t ring_diff(uint16_t a, uint16_t b, uint16_t lo, uint32_t r)
{
	int64_t d = ((int64_t)(b - lo) - (int64_t)(a - lo)) % (int64_t)r;

	if (d < 0)
		d += r;
	if (d > (int64_t)r / 2)
		d -= r;
	return (int32_t)d;
}

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EINVAL;
}

static int check_samples(const struct portpredict_sample *s, size_t n, uint16_t lo,
			 uint16_t hi, const char **why)
{
	if (lo > hi)
		return fail(why, "port range is empty (port_min > port_max)");
	if (n < PORTPREDICT_SAMPLES_MIN)
		return fail(why, "too few samples (at least 3 needed)");
	if (n > PORTPREDICT_SAMPLES_MAX)
		return fail(why, "too many samples (at most 64)");
	for (size_t i = 0; i < n; i++) {
		if (s[i].port < lo || s[i].port > hi)
			return fail(why, "a sample's port is outside the NAT's range");
		if (i && s[i].t_ms < s[i - 1].t_ms)
			return fail(why, "sample times go backwards");
	}
	return 0;
}

static int32_t gcd32(int32_t a, int32_t b)
{
	while (b) {
		int32_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

int portpredict_fit(const struct portpredict_sample *s, size_t n, uint16_t port_min,
		    uint16_t port_max, struct portpredict *out, const char **why)
{
	uint32_t r = range_of(port_min, port_max);
	int32_t g = 0, sign = 0;
	uint64_t extra = 0, elapsed;
	int rc = check_samples(s, n, port_min, port_max, why);

	if (rc)
		return rc;
	/* the step is the greatest common divisor of the differences: others'
	 * mappings in between make a difference a multiple of it, not a
	 * different step */
	for (size_t i = 1; i < n; i++) {
		int32_t d = ring_diff(s[i - 1].port, s[i].port, port_min, r);

		if (d == 0)
			return fail(why, "a port was handed out twice (not sequential)");
		if (sign && (d > 0) != (sign > 0))
			return fail(why, "ports move both up and down (not sequential)");
		sign = d > 0 ? 1 : -1;
		g = gcd32(abs(d), g);
	}
	if (g > PORTPREDICT_DELTA_MAX)
		return fail(why, "the step is larger than 16 ports (not sequential)");
	for (size_t i = 1; i < n; i++) {
		int32_t steps = abs(ring_diff(s[i - 1].port, s[i].port, port_min, r)) / g;

		if (steps > GAP_MAX_STEPS)
			return fail(why, "a gap of more than 256 steps between samples (not sequential)");
		extra += (uint64_t)(steps - 1);
	}
	elapsed = s[n - 1].t_ms - s[0].t_ms;
	if (elapsed < ELAPSED_FLOOR_MS)
		elapsed = ELAPSED_FLOOR_MS;
	*out = (struct portpredict){
		.delta = sign * g,
		.rate_per_s = (double)extra * 1000.0 / (double)elapsed,
		.last_port = s[n - 1].port,
		.last_t_ms = s[n - 1].t_ms,
		.span_ms = elapsed,
		.port_min = port_min,
		.port_max = port_max,
	};
	return 0;
}

/* mappings others are expected to make between the last sample and at_ms */
static double background(const struct portpredict *p, uint64_t at_ms)
{
	uint64_t dt = at_ms > p->last_t_ms ? at_ms - p->last_t_ms : 0;

	return p->rate_per_s * (double)dt / 1000.0;
}

/* in steps: 3 standard deviations of the others' count, at least 2. The
 * count is Poisson (variance m) around a rate itself estimated from the
 * span the samples covered (variance of m's estimate: m * dt / span). */
static unsigned spread_steps(const struct portpredict *p, uint64_t at_ms)
{
	uint64_t dt = at_ms > p->last_t_ms ? at_ms - p->last_t_ms : 0;
	double m = background(p, at_ms);
	double sd3 = 3.0 * sqrt(m * (1.0 + (double)dt / (double)p->span_ms));
	unsigned h = sd3 < 2.0 ? 2 : (unsigned)ceil(sd3);

	return h > PORTPREDICT_WINDOW_MAX / 2 ? PORTPREDICT_WINDOW_MAX / 2 : h;
}

unsigned portpredict_spread(const struct portpredict *p, uint64_t at_ms)
{
	return spread_steps(p, at_ms) * (unsigned)abs(p->delta);
}

static uint16_t port_at(const struct portpredict *p, int64_t steps)
{
	uint32_t r = range_of(p->port_min, p->port_max);
	int64_t pos = ((int64_t)(p->last_port - p->port_min) + steps * p->delta) % (int64_t)r;

	if (pos < 0)
		pos += r;
	return (uint16_t)(p->port_min + pos);
}

size_t portpredict_window(const struct portpredict *p, uint64_t at_ms, unsigned k,
			  uint16_t *ports, size_t max)
{
	uint32_t r = range_of(p->port_min, p->port_max) / (uint32_t)abs(p->delta);
	int64_t centre = (int64_t)k + llround(background(p, at_ms));
	int64_t half = spread_steps(p, at_ms), lo = centre - half;
	size_t n = 0;

	/* our own k-th mapping is at least k steps on: others only add */
	if (k < 1 || !max)
		return 0;
	if (lo < (int64_t)k)
		lo = k;
	for (int64_t off = 0; off <= half && n < max && n < r; off++) {
		if (n < max && n < r)
			ports[n++] = port_at(p, centre + off);
		if (off && centre - off >= lo && n < max && n < r)
			ports[n++] = port_at(p, centre - off);
	}
	return n;
}
