#include "spray.h"

#include <errno.h>
#include <math.h>

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EINVAL;
}

int spray_init(struct spray *s, const struct spray_cfg *cfg, uint64_t now_ms, const char **why)
{
	if (cfg->rate_pps < 1 || cfg->rate_pps > SPRAY_RATE_MAX)
		return fail(why, "rate_pps: must be 1..10000 probes per second");
	if (cfg->budget < 1 || cfg->budget > SPRAY_BUDGET_MAX)
		return fail(why, "budget: must be 1..65535 probes");
	if (cfg->port_min < 1 || cfg->port_min > cfg->port_max)
		return fail(why, "port_min/port_max: the range is empty or holds port 0");
	*s = (struct spray){ .cfg = *cfg, .start_ms = now_ms };
	return 0;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* a keyed permutation of 0..65535: four Feistel rounds on two bytes */
static uint16_t permute16(uint16_t v, uint64_t key)
{
	uint8_t l = v >> 8, r = v & 0xff;

	for (int round = 0; round < 4; round++) {
		uint8_t f = (uint8_t)splitmix64(key ^ ((uint64_t)round << 8) ^ r);
		uint8_t t = r;

		r = l ^ f;
		l = t;
	}
	return (uint16_t)(l << 8 | r);
}

static uint32_t range_of(const struct spray *s)
{
	return (uint32_t)s->cfg.port_max - s->cfg.port_min + 1;
}

/* the next offset into the range, by cycle-walking the permutation: every
 * offset below the range comes exactly once in 65,536 inputs */
static int next_offset(struct spray *s, uint32_t *off)
{
	uint32_t r = range_of(s);

	while (s->index < 65536) {
		uint16_t v = permute16((uint16_t)s->index++, s->cfg.seed);

		if (v < r) {
			*off = v;
			return 0;
		}
	}
	return -ENOSPC;
}

static uint64_t due_ms(const struct spray *s, uint32_t i)
{
	return s->start_ms + (uint64_t)i * 1000 / s->cfg.rate_pps;
}

int spray_next(struct spray *s, uint64_t now_ms, uint16_t *port)
{
	uint32_t off;

	if (s->stopped)
		return -ECANCELED;
	if (s->sent >= s->cfg.budget || s->sent >= range_of(s))
		return -ENOSPC;
	if (due_ms(s, s->sent) > now_ms)
		return 0;
	/* late by more than the catch-up window: the schedule moves on so the
	 * burst is bounded, and the probes missed are not owed */
	if (now_ms - due_ms(s, s->sent) > SPRAY_CATCHUP_MS)
		s->start_ms = now_ms - SPRAY_CATCHUP_MS - (uint64_t)s->sent * 1000 / s->cfg.rate_pps;
	if (next_offset(s, &off))
		return -ENOSPC;
	s->sent++;
	*port = (uint16_t)(s->cfg.port_min + off);
	return 1;
}

uint64_t spray_deadline(const struct spray *s)
{
	if (s->stopped || s->sent >= s->cfg.budget || s->sent >= range_of(s))
		return UINT64_MAX;
	return due_ms(s, s->sent);
}

void spray_stop(struct spray *s)
{
	s->stopped = true;
}

double spray_success_probability(uint32_t n, uint32_t k, uint32_t r)
{
	double log_miss = 0.0;

	if (n == 0 || k == 0 || r == 0)
		return 0.0;
	if (n >= r || k > r - n)
		return 1.0;
	for (uint32_t i = 0; i < k; i++)
		log_miss += log((double)(r - n - i) / (double)(r - i));
	return 1.0 - exp(log_miss);
}
