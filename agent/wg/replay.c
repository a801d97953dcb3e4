/* replay: RFC 6479-style anti-replay bitmap, as the kernel's noise.c
 * counter_validate: bit (c mod BITS_TOTAL) of a ring of words records counter c;
 * moving the top forward clears the words it passes over. */
#include "replay.h"

#include <string.h>

#define WORDS (WG_REPLAY_BITS_TOTAL / 64)

void wg_replay_init(struct wg_replay *r)
{
	memset(r, 0, sizeof(*r));
}

/* refuse on the counter alone: exhausted, or older than the window */
static bool out_of_window(const struct wg_replay *r, uint64_t counter)
{
	if (counter >= WG_REJECT_AFTER_MESSAGES)
		return true;
	return counter + WG_REPLAY_WINDOW_SIZE < r->next;
}

bool wg_replay_check(const struct wg_replay *r, uint64_t counter)
{
	if (out_of_window(r, counter))
		return false;
	if (counter >= r->next)
		return true;
	return !(r->bitmap[(counter / 64) % WORDS] & (1ULL << (counter % 64)));
}

bool wg_replay_update(struct wg_replay *r, uint64_t counter)
{
	uint64_t word = counter / 64, bit = 1ULL << (counter % 64);
	uint64_t *w;

	if (out_of_window(r, counter))
		return false;
	if (counter >= r->next) {
		/* slide: zero every word after the old top word up to the new one,
		 * at most the whole ring */
		if (r->next) {
			uint64_t top = (r->next - 1) / 64;
			uint64_t steps = word - top;

			if (steps > WORDS)
				steps = WORDS;
			for (uint64_t i = 1; i <= steps; i++)
				r->bitmap[(top + i) % WORDS] = 0;
		}
		r->next = counter + 1;
	}
	w = &r->bitmap[word % WORDS];
	if (*w & bit)
		return false;
	*w |= bit;
	return true;
}
