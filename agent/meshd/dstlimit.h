/* dstlimit: handshake initiations per destination IP (issue 15 point 5).
 * The service tells the agent where its peers are; a device that lists
 * someone else's address as its endpoint (or thousands of devices that do)
 * must not make every agent a reflector aimed at it. Each destination IP
 * (an IPv6 one by its /64, as WireGuard's per-source limit) has a token
 * bucket: DSTLIMIT_PER_S initiations a second, bursts of DSTLIMIT_BURST,
 * which is room for a dozen peers behind one NAT spraying at once (path.c's
 * schedule: about 9 sprays in the first 3 s per peer).
 *
 * The table is fixed (DSTLIMIT_SLOTS): a new destination takes the slot with
 * the most tokens, so a destination being limited keeps its slot while
 * fewer than DSTLIMIT_SLOTS others are limited too. Sans-I/O: time (ms) comes
 * from the caller. */
#ifndef NATMESH_MESHD_DSTLIMIT_H
#define NATMESH_MESHD_DSTLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

enum {
	DSTLIMIT_PER_S = 50,
	DSTLIMIT_BURST = 100,
	DSTLIMIT_SLOTS = 256,
};

struct dstlimit {
	struct dstlimit_slot {
		uint8_t key[16];	/* IPv4, or an IPv6 /64, zero-padded */
		uint8_t family;		/* 0: free */
		uint32_t tokens_milli;	/* tokens x 1000 */
		uint64_t at;		/* ms of the last refill */
	} slot[DSTLIMIT_SLOTS];
	uint64_t limited;		/* initiations not sent */
};

/* a zeroed struct dstlimit is ready; takes a token for a's IP at now (ms): true when an initiation may go there */
bool dstlimit_allow(struct dstlimit *l, const union sockaddr_any *a, uint64_t now);

#endif
