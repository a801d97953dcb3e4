/* cookie: WireGuard's DoS mitigation (whitepaper 5.3 and 5.4.4, 5.4.7).
 * Every handshake message carries mac1 = MAC(HASH("mac1----" || S_pub_receiver),
 * msg up to mac1), so only someone who knows the receiver's public key gets an
 * answer, and mac2 = MAC(cookie, msg up to mac2) once the sender holds a cookie.
 * A receiver under load answers a message without a valid mac2 by a cookie
 * reply: the cookie tau = MAC(R_m, source IP || port), R_m a random secret
 * renewed every two minutes, encrypted with XAEAD(HASH("cookie--" ||
 * S_pub_receiver), random nonce, tau, mac1 of the message it answers).
 *
 * The checker is the receiving side (one per device), the maker the sending
 * side (one per peer). Both lock internally and may be used from any thread.
 * Time is passed in (now_ns, monotonic); randomness comes from libsodium. */
#ifndef NATMESH_WG_COOKIE_H
#define NATMESH_WG_COOKIE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "messages.h"
#include "wg_const.h"

enum wg_cookie_mac_state {
	WG_COOKIE_INVALID_MAC,		/* mac1 wrong: drop silently */
	WG_COOKIE_VALID_MAC_NO_COOKIE,	/* mac1 good; mac2 absent, wrong or not checked */
	WG_COOKIE_VALID_MAC_WITH_COOKIE,/* mac1 good and mac2 made with a current cookie */
};

struct wg_cookie_checker {
	pthread_mutex_t lock;
	bool has_key;
	uint8_t mac1_key[WG_HASH_LEN];		/* HASH(LABEL_MAC1 || S_pub_local) */
	uint8_t cookie_key[WG_HASH_LEN];	/* HASH(LABEL_COOKIE || S_pub_local) */
	uint8_t secret[WG_HASH_LEN];		/* R_m */
	uint64_t secret_birth_ns;
	bool has_secret;
};

struct wg_cookie_maker {
	pthread_mutex_t lock;
	uint8_t mac1_key[WG_HASH_LEN];		/* HASH(LABEL_MAC1 || S_pub_remote) */
	uint8_t cookie_key[WG_HASH_LEN];	/* HASH(LABEL_COOKIE || S_pub_remote) */
	uint8_t cookie[WG_COOKIE_LEN];
	uint64_t cookie_birth_ns;
	bool has_cookie;
	uint8_t last_mac1_sent[WG_COOKIE_LEN];
	bool has_sent_mac1;
};

/* Checker of a device whose static public key is local_pub (NULL: no key yet;
 * every message is then INVALID_MAC). */
void wg_cookie_checker_init(struct wg_cookie_checker *c, const uint8_t *local_pub);
/* when the device's private key changes */
void wg_cookie_checker_set_key(struct wg_cookie_checker *c, const uint8_t *local_pub);
/* wipes keys and the secret */
void wg_cookie_checker_deinit(struct wg_cookie_checker *c);

/* Check the MACs of a handshake message (initiation or response; msg/len is
 * the whole message as received, already accepted by wg_msg_parse). mac2 is
 * checked only when check_cookie (the device is under load); src is the
 * datagram's source address and port, which the cookie is bound to. */
enum wg_cookie_mac_state wg_cookie_validate(struct wg_cookie_checker *c,
					    const uint8_t *msg, size_t len,
					    const union sockaddr_any *src,
					    bool check_cookie, uint64_t now_ns);
/* The cookie reply to handshake message msg/len from src: receiver_index is
 * msg's sender index, the AD is msg's mac1. 0, or -EINVAL (not a handshake
 * message, no key). */
int wg_cookie_create_reply(struct wg_cookie_checker *c, struct wg_msg_cookie_reply *out,
			   const uint8_t *msg, size_t len,
			   const union sockaddr_any *src, uint64_t now_ns);

/* Maker for sending to a peer whose static public key is remote_pub. */
void wg_cookie_maker_init(struct wg_cookie_maker *m, const uint8_t remote_pub[WG_KEY_LEN]);
/* wipes keys and any cookie */
void wg_cookie_maker_deinit(struct wg_cookie_maker *m);
/* Fill mac1 and mac2 of an outgoing handshake message (initiation or response,
 * len its full size). mac2 is zero unless a cookie younger than
 * COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY is held. Remembers mac1 for a
 * cookie reply. Call after the noise code filled the rest of the message. */
void wg_cookie_add_macs(struct wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now_ns);
/* A cookie reply addressed to one of this peer's indices (the device looks the
 * receiver index up): decrypt with our last mac1 as AD and keep the cookie.
 * 0, -ENOENT (no handshake message sent since the last reply), -EBADMSG
 * (authentication failed). A reply is accepted once per mac1. */
int wg_cookie_consume_reply(struct wg_cookie_maker *m, const struct wg_msg_cookie_reply *msg,
			    uint64_t now_ns);

#endif
