/* relay: the relay choice (see relay.h). */
#include <string.h>

#include "relay.h"

bool relay_alive(const struct relay_cand *r, uint64_t now)
{
	return r->last_answer && now >= r->last_answer && now - r->last_answer < RELAY_DEAD_MS;
}

uint64_t relay_srtt(uint64_t srtt_us, uint64_t sample_us)
{
	if (!sample_us)
		sample_us = 1;
	if (!srtt_us)
		return sample_us;
	/* srtt + (sample - srtt) / DIV without a signed intermediate */
	srtt_us = (srtt_us * (RELAY_SRTT_DIV - 1) + sample_us) / RELAY_SRTT_DIV;
	return srtt_us ? srtt_us : 1;
}

/* a ranks before b: measured before unmeasured, lower RTT, lower id */
static bool better(const struct relay_cand *a, const struct relay_cand *b)
{
	if (!a->rtt_us != !b->rtt_us)
		return a->rtt_us != 0;
	if (a->rtt_us != b->rtt_us)
		return a->rtt_us < b->rtt_us;
	return strcmp(a->id, b->id) < 0;
}

/* best is enough faster than cur to move to it */
static bool worth_switching(const struct relay_cand *best, const struct relay_cand *cur)
{
	if (!best->rtt_us)
		return false;	/* nothing measured: no reason to leave */
	if (!cur->rtt_us)
		return true;
	return best->rtt_us + RELAY_SWITCH_MIN_US <= cur->rtt_us &&
	       best->rtt_us * 100 <= cur->rtt_us * (100 - RELAY_SWITCH_PCT);
}

int relay_pick(const struct relay_cand *c, int n, int current, uint64_t now)
{
	int best = -1, any = -1;

	if (current >= n)
		current = -1;
	for (int i = 0; i < n; i++) {
		if (any < 0 || strcmp(c[i].id, c[any].id) < 0)
			any = i;
		if (relay_alive(&c[i], now) && (best < 0 || better(&c[i], &c[best])))
			best = i;
	}
	if (best < 0)
		return current >= 0 ? current : any;
	if (current >= 0 && current != best && relay_alive(&c[current], now) &&
	    !worth_switching(&c[best], &c[current]))
		return current;
	return best;
}
