/* phases: the start-up critical path of meshd (issue 19), from process
 * start to the first data through a tunnel: when each phase was first
 * reached, in ms since main() began. Each is marked once (the first time;
 * later calls do nothing), from any thread: a compare-and-swap on one
 * word, so the data plane may mark from its workers. Shown by `meshctl
 * status -o json` ("phases") and logged at debug level as it happens. */
#ifndef NATMESH_MESHD_PHASES_H
#define NATMESH_MESHD_PHASES_H

#include <jansson.h>
#include <stdint.h>

enum phase {
	PHASE_KEY,		/* private key loaded (or made) */
	PHASE_TUN,		/* TUN open, WireGuard socket bound */
	PHASE_TUNNEL,		/* the tunnel address set (restored, or registered) */
	PHASE_STUN,		/* first STUN answer on the WireGuard socket */
	PHASE_REGISTERED,	/* the service's answer to the registration */
	PHASE_PEERS,		/* first peer list */
	PHASE_INITIATION,	/* first handshake initiation sent */
	PHASE_HANDSHAKE,	/* first handshake complete */
	PHASE_DATA,		/* first data decrypted from a peer */
	PHASE_N,
};

struct phases {
	uint64_t start_ns;		/* CLOCK_MONOTONIC at main() */
	uint64_t at_us[PHASE_N];	/* since start_ns, +1 (0: not reached) */
};

void phases_init(struct phases *ph);
/* the first call per phase records the time; 1 when this call did */
int phases_mark(struct phases *ph, enum phase p);
const char *phases_name(enum phase p);
/* whether p was reached (any thread) */
static inline int phases_reached(const struct phases *ph, enum phase p)
{
	return __atomic_load_n(&ph->at_us[p], __ATOMIC_RELAXED) != 0;
}
/* {"key_ms": 1.2, ...}: the phases reached, in ms with 0.1 ms resolution */
json_t *phases_json(const struct phases *ph);

#endif
