/* relay: the relay choice (see relay.h). */
#include <string.h>

#include "relay.h"

bool relay_alive(const struct relay_cand *r, uint64_t now)
{
	return r->last_answer && now >= r->last_answer && now - r->last_answer < RELAY_DEAD_MS;
}

int relay_pick(const struct relay_cand *c, int n, int current, uint64_t now)
{
	int best = -1, any = -1;

	for (int i = 0; i < n; i++) {
		if (any < 0 || strcmp(c[i].id, c[any].id) < 0)
			any = i;
		if (relay_alive(&c[i], now) && (best < 0 || strcmp(c[i].id, c[best].id) < 0))
			best = i;
	}
	if (best >= 0)
		return best;
	return current >= 0 && current < n ? current : any;
}
