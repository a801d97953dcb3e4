/* timers: the per-peer timer state machine of the WireGuard whitepaper (6.1 to
 * 6.5), in the shape of the kernel's timers.c. The device reports what
 * happened through the event hooks (wg_timers_handshake_initiated(), ...);
 * this file alone decides what is due when. It is pure: time comes in as
 * monotonic nanoseconds, and wg_timers_expire() hands back the actions that
 * are due, which the device carries out (send an initiation, a keepalive,
 * wipe keys). wg_timers_next() is the deadline at which to call it again.
 *
 * The five timers:
 *   retransmit_handshake  REKEY_TIMEOUT (+jitter) after an initiation without
 *                         a response; gives up after MAX_TIMER_HANDSHAKES
 *                         retries (REKEY_ATTEMPT_TIME)
 *   send_keepalive        KEEPALIVE_TIMEOUT after data was received and
 *                         nothing was sent back (passive keepalive)
 *   new_handshake         KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+jitter) after
 *                         data was sent and nothing authenticated came back
 *   zero_key_material     3 x REJECT_AFTER_TIME after the last session was
 *                         derived: wipe every key
 *   persistent_keepalive  every N seconds after the last authenticated packet
 *                         in either direction, when configured */
#ifndef NATMESH_WG_TIMERS_H
#define NATMESH_WG_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "wg_const.h"

/* what wg_timers_expire() asks the device to do */
enum wg_timer_action {
	WG_TIMER_SEND_INITIATION = 1u << 0,	/* a new handshake (retry or after silence) */
	WG_TIMER_SEND_KEEPALIVE = 1u << 1,	/* an empty data packet */
	WG_TIMER_GIVE_UP = 1u << 2,		/* drop staged packets: no handshake after REKEY_ATTEMPT_TIME */
	WG_TIMER_ZERO_KEYS = 1u << 3,		/* wipe every keypair and the handshake */
};

struct wg_timers {
	/* deadlines in ns, 0 when not armed */
	uint64_t retransmit_handshake;
	uint64_t send_keepalive;
	uint64_t new_handshake;
	uint64_t zero_key_material;
	uint64_t persistent_keepalive;

	unsigned handshake_attempts;
	bool need_another_keepalive;
	uint16_t persistent_keepalive_interval;	/* seconds, 0: off */
	uint32_t jitter_state;			/* xorshift state for the jitter */
};

/* all timers off; seed makes the jitter sequence (any value) */
void wg_timers_init(struct wg_timers *t, uint32_t seed);
/* all timers off (peer removed, device down); keeps the keepalive interval */
void wg_timers_stop(struct wg_timers *t);
/* sets the interval; a change from off to on returns true: the device then
 * sends a keepalive at once, as the kernel does on configuration */
bool wg_timers_set_persistent_keepalive(struct wg_timers *t, uint16_t seconds, uint64_t now);

/* event hooks, each named after what happened (kernel timers.c) */
void wg_timers_data_sent(struct wg_timers *t, uint64_t now);
void wg_timers_data_received(struct wg_timers *t, uint64_t now);
void wg_timers_any_authenticated_packet_sent(struct wg_timers *t, uint64_t now);
void wg_timers_any_authenticated_packet_received(struct wg_timers *t, uint64_t now);
void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now);
void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now);
void wg_timers_handshake_complete(struct wg_timers *t, uint64_t now);
void wg_timers_session_derived(struct wg_timers *t, uint64_t now);
/* a handshake initiation not caused by the retransmit timer restarts the count */
void wg_timers_handshake_attempts_reset(struct wg_timers *t);

/* Disarms every timer due at now and returns the union of their actions. */
uint32_t wg_timers_expire(struct wg_timers *t, uint64_t now);
/* the earliest armed deadline, 0 when none is armed */
uint64_t wg_timers_next(const struct wg_timers *t);

#endif
