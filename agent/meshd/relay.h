/* relay: which relay carries the VPC CIDR for this agent, sans-I/O. Relays
 * are probed with STUN Binding requests on the WireGuard socket every
 * RELAY_PROBE_MS; one that has not answered for RELAY_DEAD_MS is dead.
 *
 * Issue 5: agents use the relay with the lowest round trip and move relayed
 * peers to another within 10 s when it dies. Issue 17: the round trip is that
 * of the liveness probes (one transmission each, so never ambiguous),
 * smoothed (relay_srtt), refreshed every RELAY_PROBE_MS rather than once per
 * handshake (every 2 minutes); so when relays' delays change order the agent
 * follows within 10 s. With weight 1/RELAY_SRTT_DIV per sample, a swap of two
 * relays at RTTs a < b (a <= 0.8 b) crosses the 20% hysteresis after k
 * probes where (1 - 1/3)^k <= (0.8 b - a) / (1.8 (b - a)): k = 3 for 40 and
 * 160 ms (20 and 80 ms one way), 6 s plus one probe interval of phase; a
 * single late answer moves the estimate by a third of its excess, which the
 * hysteresis absorbs. Agents may therefore use different relays: while
 * one is in use, every other relay peer accepts the VPC CIDR as inner sources
 * (wg_peer_rx_source_add), so a packet that another agent sent through
 * another relay is not dropped; the data plane still refuses from any relay
 * the address of a peer this agent reaches directly (issue 15 point 1).
 *
 * The rule: among the alive relays, the lowest RTT (relays without a measured
 * RTT rank after measured ones; ties and unmeasured ones by lowest device id).
 * Hysteresis: an alive current relay is kept unless the best one is lower by
 * RELAY_SWITCH_PCT percent and by RELAY_SWITCH_MIN_US, so two relays at
 * about the same distance do not flap. When none is alive the current one
 * stays (or, at start, the lowest id). */
#ifndef NATMESH_MESHD_RELAY_H
#define NATMESH_MESHD_RELAY_H

#include <stdbool.h>
#include <stdint.h>

enum {
	RELAY_PROBE_MS = 2000,
	RELAY_DEAD_MS = 6500,	/* three probes unanswered: moved within 10 s */
	RELAY_SWITCH_PCT = 20,	/* an alive current relay gives way to one this much faster */
	RELAY_SWITCH_MIN_US = 1000,	/* ... and at least this much faster */
	RELAY_SRTT_DIV = 3,	/* each probe's round trip weighs 1/3 (TCP's SRTT: 1/8) */
};

struct relay_cand {
	const char *id;		/* device id */
	uint64_t last_answer;	/* ms of the last probe answer, 0: never */
	uint64_t rtt_us;	/* smoothed probe round trip, 0: not measured */
};

/* the smoothed round trip after one more sample (both in us; srtt 0: none
 * yet, the sample is taken as it is); never 0 */
uint64_t relay_srtt(uint64_t srtt_us, uint64_t sample_us);

bool relay_alive(const struct relay_cand *r, uint64_t now);
/* the index to use among n candidates, current the index in use (-1: none);
 * -1 when n is 0 */
int relay_pick(const struct relay_cand *c, int n, int current, uint64_t now);

#endif
