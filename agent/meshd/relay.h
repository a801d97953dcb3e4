/* relay: which relay carries the VPC CIDR for this agent, sans-I/O. Relays
 * are probed with STUN Binding requests on the WireGuard socket every
 * RELAY_PROBE_MS; one that has not answered for RELAY_DEAD_MS is dead.
 *
 * Every agent must pick the same relay: a relayed packet is accepted only
 * from the peer that holds the VPC CIDR at the receiver (the data plane checks
 * the inner source against allowed IPs), so two agents on different relays
 * would drop each other's traffic. The rule is therefore one all agents agree
 * on: the alive relay with the lowest device id; when none is alive, the
 * current one stays (or, at start, the lowest id). Choosing by round-trip
 * time needs the data plane to accept the VPC CIDR from every relay. */
#ifndef NATMESH_MESHD_RELAY_H
#define NATMESH_MESHD_RELAY_H

#include <stdbool.h>
#include <stdint.h>

enum {
	RELAY_PROBE_MS = 2000,
	RELAY_DEAD_MS = 6500,	/* three probes unanswered: moved within 10 s */
};

struct relay_cand {
	const char *id;		/* device id */
	uint64_t last_answer;	/* ms of the last probe answer, 0: never */
};

bool relay_alive(const struct relay_cand *r, uint64_t now);
/* the index to use among n candidates, current the index in use (-1: none);
 * -1 when n is 0 */
int relay_pick(const struct relay_cand *c, int n, int current, uint64_t now);

#endif
