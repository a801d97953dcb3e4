/* noise: the Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake of WireGuard
 * (whitepaper 5.4) and the transport sessions it yields (5.4.6).
 *
 * Sans-I/O: functions take messages, keys and the time; they never read a
 * clock or touch a socket. MACs are not handled here: the cookie module
 * checks mac1/mac2 of a received message before wg_noise_consume_*, and adds
 * them to a created message after wg_noise_create_*.
 *
 * Objects:
 *   wg_static_identity  the device's own key pair.
 *   wg_index_table      receiver index -> handshake or keypair (5.4.2 "I_i"),
 *                       random 32-bit indices; internally locked.
 *   wg_handshake        one per peer, embedded in the device's peer; an
 *                       explicit state enum; internally locked.
 *   wg_keypair          one session: send/recv keys, indices, 64-bit send
 *                       counter, replay window, birth time; reference counted.
 *   wg_keypairs         a peer's previous/current/next sessions (rotation as in
 *                       the kernel's noise.c); internally locked.
 *
 * Handshake flow (initiator I, responder R):
 *   I: wg_noise_create_initiation, wg_cookie_add_macs, send
 *   R: wg_msg_parse, wg_cookie_validate, wg_noise_consume_initiation,
 *      wg_noise_create_response, wg_cookie_add_macs, wg_noise_begin_session, send
 *   I: wg_msg_parse, wg_cookie_validate, wg_noise_consume_response,
 *      wg_noise_begin_session   (I may send at once; R's new keypair waits in
 *      "next" until the first data packet from I arrives with it)
 * Data:
 *   send: kp = wg_keypairs_current(); wg_noise_encrypt*(kp, ...); wg_keypair_put(kp)
 *   recv: kp = wg_index_lookup_keypair(); wg_noise_decrypt*(kp, ...);
 *         wg_keypairs_received_with(peer keypairs, kp); wg_keypair_put(kp)
 */
#ifndef NATMESH_WG_NOISE_H
#define NATMESH_WG_NOISE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"
#include "replay.h"
#include "wg_const.h"

/* ---- static identity ---------------------------------------------------- */

struct wg_static_identity {
	uint8_t priv[WG_KEY_LEN];
	uint8_t pub[WG_KEY_LEN];
	bool has_identity;
};

/* Set the private key (clamped here) and derive the public key; a NULL or
 * all-zero key clears the identity. 0 or -EINVAL. After a change, call
 * wg_handshake_precompute() for every peer and wg_cookie_checker_set_key(). */
int wg_static_identity_set(struct wg_static_identity *id, const uint8_t *priv);
/* wipes the private key */
void wg_static_identity_clear(struct wg_static_identity *id);

/* ---- index table -------------------------------------------------------- */

enum wg_index_type {
	WG_INDEX_HANDSHAKE = 1,
	WG_INDEX_KEYPAIR = 2,
};

/* embedded in wg_handshake and wg_keypair; the table links them by index */
struct wg_index_entry {
	struct wg_index_entry *next;	/* bucket chain, owned by the table */
	uint32_t index;			/* host order; on the wire as le32 */
	enum wg_index_type type;
	bool linked;
	void *peer;			/* the device's peer, opaque here */
};

struct wg_index_table;

struct wg_index_table *wg_index_table_new(void);
/* the table must be empty (every handshake and keypair gone); NULL is a no-op */
void wg_index_table_free(struct wg_index_table *t);
/* the handshake whose local index is index, or NULL */
struct wg_handshake *wg_index_lookup_handshake(struct wg_index_table *t, uint32_t index);
/* the keypair whose local index is index, with a reference taken (release it
 * with wg_keypair_put), or NULL */
struct wg_keypair *wg_index_lookup_keypair(struct wg_index_table *t, uint32_t index);
/* the peer of whatever holds index, of a type in type_mask (bits
 * 1 << WG_INDEX_HANDSHAKE | 1 << WG_INDEX_KEYPAIR): for cookie replies */
void *wg_index_lookup_peer(struct wg_index_table *t, uint32_t index, unsigned type_mask);
/* number of linked entries (for tests and stats) */
size_t wg_index_table_count(struct wg_index_table *t);

/* ---- handshake ---------------------------------------------------------- */

/* whitepaper 5.4.2-5.4.5, one transition function per arrow */
enum wg_handshake_state {
	WG_HS_ZEROED,			/* nothing in flight */
	WG_HS_CREATED_INITIATION,	/* I: initiation sent, awaiting response */
	WG_HS_CONSUMED_INITIATION,	/* R: initiation accepted */
	WG_HS_CREATED_RESPONSE,		/* R: response made, ready to derive keys */
	WG_HS_CONSUMED_RESPONSE,	/* I: response accepted, ready to derive keys */
};

struct wg_handshake {
	struct wg_index_entry entry;	/* local index while a handshake is in flight */
	pthread_mutex_t lock;
	enum wg_handshake_state state;
	const struct wg_static_identity *local;
	struct wg_index_table *table;

	uint8_t remote_static[WG_KEY_LEN];
	uint8_t precomputed_static_static[WG_KEY_LEN];	/* DH(S_priv_local, S_pub_remote) */
	uint8_t preshared_key[WG_KEY_LEN];		/* Q, zero when none */
	uint8_t ephemeral_private[WG_KEY_LEN];
	uint8_t remote_ephemeral[WG_KEY_LEN];
	uint8_t hash[WG_HASH_LEN];			/* H */
	uint8_t chaining_key[WG_HASH_LEN];		/* C */
	uint8_t latest_timestamp[WG_TIMESTAMP_LEN];	/* greatest TAI64N accepted */
	uint64_t last_initiation_consumption_ns;
	bool has_consumed_initiation;
	uint32_t remote_index;
};

/* Set up the embedded handshake of a peer with static key remote_static and
 * optional preshared key psk (NULL: none). local and table must outlive hs.
 * peer is the device's opaque peer, returned by index lookups. 0 or -EINVAL. */
int wg_handshake_init(struct wg_handshake *hs, const struct wg_static_identity *local,
		      struct wg_index_table *table, const uint8_t remote_static[WG_KEY_LEN],
		      const uint8_t *psk, void *peer);
/* unlinks the index and wipes every secret */
void wg_handshake_deinit(struct wg_handshake *hs);
/* NULL or all-zero: no preshared key */
void wg_handshake_set_psk(struct wg_handshake *hs, const uint8_t *psk);
/* recompute DH(S_priv_local, S_pub_remote) after the local identity changed;
 * also abandons any handshake in flight */
void wg_handshake_precompute(struct wg_handshake *hs);
/* abandon a handshake in flight: back to ZEROED, ephemeral secrets wiped,
 * index unlinked; static configuration and the latest timestamp stay */
void wg_handshake_clear(struct wg_handshake *hs);
enum wg_handshake_state wg_handshake_get_state(struct wg_handshake *hs);
/* the 32-bit index the peer put in its last initiation/response (host order) */
uint32_t wg_handshake_remote_index(struct wg_handshake *hs);

/* 5.4.2, initiator: fill dst except its MACs; the timestamp is TAI64N(wall_ns)
 * (wall clock, ns since the Unix epoch). ZEROED or CREATED_INITIATION (a retry)
 * or any other state (restarts) -> CREATED_INITIATION.
 * 0 or -ENOKEY (no local identity, or DH with the peer's key is zero). */
int wg_noise_create_initiation(struct wg_handshake *hs, struct wg_msg_initiation *dst,
			       uint64_t wall_ns);

/* maps a decrypted initiator static key to that peer's handshake, or NULL */
typedef struct wg_handshake *(*wg_noise_peer_lookup_fn)(void *ctx,
		const uint8_t remote_static[WG_KEY_LEN]);

/* 5.4.2, responder: decrypt src (MACs already checked), find the peer by its
 * static key through lookup, refuse replays and floods, and move that peer's
 * handshake to CONSUMED_INITIATION. *out is the handshake, or NULL on error.
 * 0, -ENOKEY (no local identity), -EBADMSG (decryption failed), -ENOENT
 * (unknown static key), -EALREADY (timestamp not newer than the latest one:
 * a replay), -EBUSY (less than 1/INITIATIONS_PER_SECOND since the last one). */
int wg_noise_consume_initiation(const struct wg_msg_initiation *src,
				const struct wg_static_identity *local,
				wg_noise_peer_lookup_fn lookup, void *ctx,
				uint64_t now_ns, struct wg_handshake **out);

/* 5.4.3, responder: CONSUMED_INITIATION -> CREATED_RESPONSE, dst filled except
 * its MACs; a fresh local index is linked. 0, -EINVAL (wrong state), -EBADMSG
 * (the initiator's ephemeral key is a low-order point). */
int wg_noise_create_response(struct wg_handshake *hs, struct wg_msg_response *dst);

/* 5.4.3, initiator: the handshake is found by src's receiver index in table and
 * must be CREATED_INITIATION; -> CONSUMED_RESPONSE. *out is it, or NULL.
 * 0, -ENOKEY, -ENOENT (no such index or wrong state), -EBADMSG. */
int wg_noise_consume_response(const struct wg_msg_response *src,
			      const struct wg_static_identity *local,
			      struct wg_index_table *table, struct wg_handshake **out);

struct wg_keypairs;
struct wg_keypair;

/* 5.4.5: derive the transport keys from a handshake in CREATED_RESPONSE
 * (responder) or CONSUMED_RESPONSE (initiator), install the new keypair in
 * kps (it takes over the handshake's local index), and reset the handshake to
 * ZEROED. If out is not NULL it gets the new keypair with a reference taken.
 * 0, -EINVAL (wrong state), -ENOMEM. */
int wg_noise_begin_session(struct wg_handshake *hs, struct wg_keypairs *kps,
			   uint64_t now_ns, struct wg_keypair **out);

/* ---- transport sessions ------------------------------------------------- */

struct wg_keypair {
	struct wg_index_entry entry;	/* entry.index is our index: the receiver index of incoming data */
	uint32_t remote_index;		/* receiver index we put in outgoing data */
	uint8_t send_key[WG_KEY_LEN];
	uint8_t recv_key[WG_KEY_LEN];
	_Atomic uint64_t send_counter;	/* next nonce to use */
	_Atomic bool send_valid;	/* cleared by expiry or exhaustion */
	bool initiator;			/* we sent the initiation of this session */
	uint64_t created_ns;
	_Atomic unsigned refs;
	struct wg_index_table *table;
	pthread_mutex_t replay_lock;
	struct wg_replay replay;
};

/* take / release a reference; the last put wipes and frees. put(NULL) is a no-op */
struct wg_keypair *wg_keypair_get(struct wg_keypair *kp);
void wg_keypair_put(struct wg_keypair *kp);

/* 6.2 "after sending a packet": the initiator rekeys when the session is older
 * than REKEY_AFTER_TIME; anyone rekeys past REKEY_AFTER_MESSAGES */
bool wg_keypair_should_rekey_after_send(struct wg_keypair *kp, uint64_t now_ns);
/* 6.2, kernel keep_key_fresh on receive: the initiator rekeys when the session
 * is older than REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT */
bool wg_keypair_should_rekey_after_recv(struct wg_keypair *kp, uint64_t now_ns);
/* usable for sending: valid, younger than REJECT_AFTER_TIME, counter left */
bool wg_keypair_can_send(struct wg_keypair *kp, uint64_t now_ns);

struct wg_keypairs {
	pthread_mutex_t lock;
	struct wg_keypair *previous;
	struct wg_keypair *current;
	struct wg_keypair *next;	/* responder's new session, unconfirmed */
};

void wg_keypairs_init(struct wg_keypairs *kps);
/* unlink and release all three (peer removed, or 3 x REJECT_AFTER_TIME idle) */
void wg_keypairs_clear(struct wg_keypairs *kps);
/* the current keypair with a reference taken, or NULL */
struct wg_keypair *wg_keypairs_current(struct wg_keypairs *kps);
/* Data arrived with kp: if kp is the unconfirmed "next" session, it becomes
 * current (the responder's handshake is complete, 5.4.5). Returns true then. */
bool wg_keypairs_received_with(struct wg_keypairs *kps, struct wg_keypair *kp);
/* stop sending with the current and next sessions (key change, peer down);
 * receiving on them still works until they are cleared */
void wg_keypairs_expire_current(struct wg_keypairs *kps);

/* One packet for the batch functions. Plaintext always lives at
 * data + WG_MSG_DATA_HEADER_LEN; the message starts at data. */
struct wg_pkt {
	uint8_t *data;
	size_t len;	/* encrypt: in plaintext length, out message length;
			 * decrypt: in message length, out plaintext length (with padding) */
	size_t cap;	/* bytes writable at data (encrypt: >= 16 + padded + 16) */
	int status;	/* out: 0 or the negative errno of the single-packet call */
	uint64_t counter;	/* encrypt: the nonce reserved for it */
};

/* 5.4.6: encrypt the plaintext at buf + 16 (plain_len bytes, 0 for a keepalive)
 * in place: header written at buf, zero padding to a multiple of 16 (not beyond
 * mtu when mtu > 0 and plain_len <= mtu), tag appended. *out_len = message
 * length. 0, -EKEYEXPIRED (session invalid, older than REJECT_AFTER_TIME, or
 * counter exhausted: start a handshake), -ENOBUFS (cap too small). */
int wg_noise_encrypt(struct wg_keypair *kp, uint8_t *buf, size_t plain_len, size_t cap,
		     size_t mtu, uint64_t now_ns, size_t *out_len);
/* 5.4.6: authenticate and decrypt the data message buf/len in place; the
 * plaintext (with its padding) is at buf + 16, *plain_len bytes. The counter is
 * checked against the replay window after authentication.
 * 0, -EINVAL (shorter than a keepalive), -EKEYEXPIRED (session older than
 * REJECT_AFTER_TIME or its counters exhausted), -EALREADY (replay or too old),
 * -EBADMSG (authentication failed). */
int wg_noise_decrypt(struct wg_keypair *kp, uint8_t *buf, size_t len, uint64_t now_ns,
		     size_t *plain_len);
/* The same over n packets sharing one keypair: counters reserved with one
 * atomic add, the replay lock taken once. Each pkts[i].status is set; returns
 * the number of packets that succeeded. */
size_t wg_noise_encrypt_batch(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
			      size_t mtu, uint64_t now_ns);
size_t wg_noise_decrypt_batch(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
			      uint64_t now_ns);

/* The batch calls in steps, for a caller that spreads the AEAD over threads
 * (device.c with workers): the steps that touch the session's counter or
 * replay window run on one thread in packet order, the seal/open between
 * them on any thread (they read only the session's keys, which never change
 * while a reference is held).
 *   encrypt: wg_noise_encrypt_reserve (counters, in order), then
 *            wg_noise_encrypt_seal per packet (any thread, any order);
 *            the message is wg_noise_data_len(plain, mtu) bytes
 *   decrypt: wg_noise_decrypt_check per packet (age, length, replay
 *            pre-check), wg_noise_decrypt_open (any thread), then
 *            wg_noise_decrypt_commit in arrival order (the window moves;
 *            len becomes the plaintext length). Each returns the status. */
size_t wg_noise_data_len(size_t plain_len, size_t mtu);
size_t wg_noise_encrypt_reserve(struct wg_keypair *kp, struct wg_pkt *pkts, size_t n,
				size_t mtu, uint64_t now_ns);
void wg_noise_encrypt_seal(const struct wg_keypair *kp, struct wg_pkt *pkt, size_t mtu);
int wg_noise_decrypt_check(struct wg_keypair *kp, struct wg_pkt *pkt, uint64_t now_ns);
void wg_noise_decrypt_open(const struct wg_keypair *kp, struct wg_pkt *pkt);
int wg_noise_decrypt_commit(struct wg_keypair *kp, struct wg_pkt *pkt);

#endif
