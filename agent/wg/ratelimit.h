/* ratelimit: the two defences of the handshake path (whitepaper 5.3).
 *
 * Load detection: a device counts the handshake messages it receives; past
 * WG_LOAD_THRESHOLD in one WG_LOAD_WINDOW_NS it is "under load" until
 * WG_LOAD_HOLD_NS after the last busy window. Under load, a message without a
 * valid mac2 gets a cookie reply instead of the Diffie-Hellman work (cookie.h).
 *
 * Per-source token buckets (kernel ratelimiter.c): under load, a message with a
 * valid mac2 is still processed only while its source IP (an IPv6 source by
 * its /64) has tokens: WG_RATELIMIT_PACKETS_PER_SECOND, bursts of
 * WG_RATELIMIT_PACKETS_BURSTABLE. Entries idle for a second are collected.
 *
 * Pure state with time passed in; not synchronised (one owner thread). */
#ifndef NATMESH_WG_RATELIMIT_H
#define NATMESH_WG_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wg_const.h"

/* The kernel calls a device under load when 1/8 of its 4096-entry handshake
 * queue is waiting; an inline handshake path has no queue, so the same 512 is
 * taken as a rate: 512 handshake messages per second, counted in windows of
 * 1/8 s. A legitimate device sees a handful per second per hundred peers. */
#define WG_LOAD_WINDOW_NS (125 * WG_NSEC_PER_MSEC)
#define WG_LOAD_THRESHOLD (WG_MAX_QUEUED_INCOMING_HANDSHAKES / 8 / 8)
/* kernel receive.c: "last_under_load" stays in force for one second */
#define WG_LOAD_HOLD_NS WG_NSEC_PER_SEC

struct wg_ratelimit;

int wg_ratelimit_new(struct wg_ratelimit **out);
void wg_ratelimit_free(struct wg_ratelimit *r);

/* Counts one handshake message and says whether the device is under load. */
bool wg_ratelimit_under_load(struct wg_ratelimit *r, uint64_t now_ns);
/* Takes a token from src's bucket: true when the message may be processed. */
bool wg_ratelimit_allow(struct wg_ratelimit *r, const union sockaddr_any *src, uint64_t now_ns);
/* number of sources tracked (tests) */
size_t wg_ratelimit_entries(const struct wg_ratelimit *r);

#endif
