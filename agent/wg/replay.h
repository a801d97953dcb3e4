/* replay: the receive-side anti-replay window of a WireGuard session
 * (whitepaper 5.4.6, "a sliding window ... RFC 6479"). A ring of 64-bit words
 * holds WG_REPLAY_BITS_TOTAL bits; counters up to WG_REPLAY_WINDOW_SIZE (8128)
 * behind the highest one seen are accepted once each. Not synchronised:
 * the owner serialises calls (struct wg_keypair does, with its own lock). */
#ifndef NATMESH_WG_REPLAY_H
#define NATMESH_WG_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "wg_const.h"

struct wg_replay {
	uint64_t next;		/* one past the highest counter accepted so far */
	uint64_t bitmap[WG_REPLAY_BITS_TOTAL / 64];
};

void wg_replay_init(struct wg_replay *r);
/* Would counter be accepted? No state changes: a cheap pre-check before
 * spending an AEAD decryption on a packet that is bound to be dropped. */
bool wg_replay_check(const struct wg_replay *r, uint64_t counter);
/* Accept counter (true) and mark it seen, or refuse it (false): a duplicate,
 * too old for the window, or >= WG_REJECT_AFTER_MESSAGES. Call only after the
 * packet authenticated, so forged counters cannot move the window. */
bool wg_replay_update(struct wg_replay *r, uint64_t counter);

#endif
