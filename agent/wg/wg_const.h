/* wg_const: every WireGuard protocol constant in one place, each with the
 * section of the WireGuard whitepaper (Donenfeld, "WireGuard: Next Generation
 * Kernel Network Tunnel") or the reference implementation it comes from.
 * Times are in nanoseconds of a monotonic clock unless the name says otherwise. */
#ifndef NATMESH_WG_CONST_H
#define NATMESH_WG_CONST_H

#include <stdint.h>

#define WG_NSEC_PER_SEC  1000000000ULL
#define WG_NSEC_PER_MSEC 1000000ULL

/* 5.4: Noise_IKpsk2 primitives */
#define WG_KEY_LEN        32	/* Curve25519 keys, ChaCha20 keys */
#define WG_HASH_LEN       32	/* BLAKE2s-256 */
#define WG_AEAD_TAG_LEN   16	/* Poly1305 */
#define WG_TIMESTAMP_LEN  12	/* TAI64N */
#define WG_COOKIE_LEN     16	/* MAC output, BLAKE2s-128 */
#define WG_COOKIE_NONCE_LEN 24	/* XChaCha20-Poly1305 nonce */

/* 5.4.2: construction and identifier strings, 5.4.4 / 5.4.7: MAC labels */
#define WG_CONSTRUCTION "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
#define WG_IDENTIFIER   "WireGuard v1 zx2c4 Jason@zx2c4.com"
#define WG_LABEL_MAC1   "mac1----"
#define WG_LABEL_COOKIE "cookie--"

/* 5.4.6: transport data is zero-padded to a multiple of 16 */
#define WG_PADDING_MULTIPLE 16

/* 6.1: "Rekey-After-Messages" */
#define WG_REKEY_AFTER_MESSAGES  (1ULL << 60)
/* 6.1: "Reject-After-Messages", 2^64 - 2^13 - 1 */
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))
/* 6.1: "Rekey-After-Time" */
#define WG_REKEY_AFTER_TIME_NS   (120 * WG_NSEC_PER_SEC)
/* 6.1: "Reject-After-Time" */
#define WG_REJECT_AFTER_TIME_NS  (180 * WG_NSEC_PER_SEC)
/* 6.1: "Rekey-Attempt-Time" */
#define WG_REKEY_ATTEMPT_TIME_NS (90 * WG_NSEC_PER_SEC)
/* 6.1: "Rekey-Timeout" */
#define WG_REKEY_TIMEOUT_NS      (5 * WG_NSEC_PER_SEC)
/* 6.1: "Keepalive-Timeout" */
#define WG_KEEPALIVE_TIMEOUT_NS  (10 * WG_NSEC_PER_SEC)
/* 6.1: handshake retries before giving up, Rekey-Attempt-Time / Rekey-Timeout */
#define WG_MAX_TIMER_HANDSHAKES  (90 / 5)
/* 6.1 "jitter" on Rekey-Timeout: kernel timers.c and wireguard-go use up to 333 ms */
#define WG_REKEY_TIMEOUT_JITTER_MAX_NS (333 * WG_NSEC_PER_MSEC)
/* 6.2 / 6.5: the responder does not rekey; the initiator rekeys on receive
 * when the session is older than Reject-After-Time - Keepalive-Timeout - Rekey-Timeout
 * (kernel receive.c keep_key_fresh) */
#define WG_REKEY_ON_RECEIVE_AGE_NS \
	(WG_REJECT_AFTER_TIME_NS - WG_KEEPALIVE_TIMEOUT_NS - WG_REKEY_TIMEOUT_NS)
/* 6.3: a session with no handshake for 3 x Reject-After-Time has all its key
 * material wiped (kernel timers.c, "zero key material") */
#define WG_ZERO_KEYS_AFTER_NS    (3 * WG_REJECT_AFTER_TIME_NS)

/* 5.4.7: the cookie secret R_m "changes every two minutes" */
#define WG_COOKIE_SECRET_MAX_AGE_NS (120 * WG_NSEC_PER_SEC)
/* kernel cookie.c: a received cookie is used for mac2 only while younger than
 * COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, so it is still valid on arrival */
#define WG_COOKIE_SECRET_LATENCY_NS (5 * WG_NSEC_PER_SEC)

/* 5.1 / kernel noise.c: a peer's initiations are consumed at most this often
 * (flood protection on top of the TAI64N replay check) */
#define WG_INITIATIONS_PER_SECOND 50
/* kernel ratelimiter.c: per-source handshake token bucket under load */
#define WG_RATELIMIT_PACKETS_PER_SECOND 20
#define WG_RATELIMIT_PACKETS_BURSTABLE  5

/* RFC 6479-style anti-replay window (kernel noise.h COUNTER_BITS_TOTAL):
 * 8192 bits of bitmap, of which all but one word is usable window */
#define WG_REPLAY_BITS_TOTAL  8192
#define WG_REPLAY_WINDOW_SIZE (WG_REPLAY_BITS_TOTAL - 64)

/* implementation limits (kernel device.h / wireguard-go constants.go) */
#define WG_MAX_PEERS               (1U << 20)
#define WG_MAX_QUEUED_INCOMING_HANDSHAKES 4096
#define WG_MAX_STAGED_PACKETS      128
#define WG_MAX_QUEUED_PACKETS      1024
#define WG_DEFAULT_PORT            51820
#define WG_DEFAULT_MTU             1420

#endif
