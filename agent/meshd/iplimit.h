/* iplimit: a token bucket per IP (an IPv6 one by its /64, as WireGuard's
 * per-source limit): IPLIMIT_PER_S a second, bursts of IPLIMIT_BURST, the
 * numbers of meshstun's per-source limit (tools/meshstun). Issue 15:
 *
 *   point 5  handshake initiations per destination (peerpath.c): a device
 *            that lists someone else's address as its endpoint, or thousands
 *            of devices that do, must not make every agent a reflector aimed
 *            at it. A burst is room for a dozen peers behind one NAT spraying
 *            at once (path.c: about 9 sprays in the first 3 s per peer).
 *   point 9  a relay's STUN answers per source (stunmux.c), as meshstun's.
 *
 * The table is fixed (IPLIMIT_SLOTS): a new IP takes the slot with the most
 * tokens, so an IP being limited keeps its slot while fewer than
 * IPLIMIT_SLOTS others are limited too. Sans-I/O: time (ms) comes from the
 * caller. */
#ifndef NATMESH_MESHD_IPLIMIT_H
#define NATMESH_MESHD_IPLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

enum {
	IPLIMIT_PER_S = 50,
	IPLIMIT_BURST = 100,
	IPLIMIT_SLOTS = 256,
};

struct iplimit {
	struct iplimit_slot {
		uint8_t key[16];	/* IPv4, or an IPv6 /64, zero-padded */
		uint8_t family;		/* 0: free */
		uint32_t tokens_milli;	/* tokens x 1000 */
		uint64_t at;		/* ms of the last refill */
	} slot[IPLIMIT_SLOTS];
	uint64_t limited;		/* tokens refused */
};

/* a zeroed struct iplimit is ready; takes a token for a's IP at now (ms):
 * true when the packet may go */
bool iplimit_allow(struct iplimit *l, const union sockaddr_any *a, uint64_t now);

#endif
