/* challenge: the key challenges of meshsvc, in memory. A device that lost its
 * token but holds its WireGuard private key asks for one (POST
 * /api/devices/challenge with a registration key) and registers again with
 * its answer (keyproof.h). Each challenge has an X25519 key pair of its own,
 * made for it and wiped when it goes: no long-term service secret exists
 * that could forge a proof for any device (with a service private key and a
 * device's public key, anyone computes their shared point). A challenge is
 * bound to the public key and the registration key it was asked with, used
 * once (a wrong answer uses it too), and gone after its time to live. The
 * table holds at most `max`, in the order they were made: a full table
 * evicts the oldest (counted), and expired ones leave from the front. Not
 * thread-safe: the server thread owns it; time is the caller's (ms). */
#ifndef NATMESH_SVC_CHALLENGE_H
#define NATMESH_SVC_CHALLENGE_H

#include <stdbool.h>
#include <stdint.h>

#include "keyproof.h"
#include "validate.h"

#define CHALLENGE_MAX_DEFAULT 4096
#define CHALLENGE_TTL_S_DEFAULT 30
#define CHALLENGE_TTL_MAX_S 600	/* --challenge-ttl */

struct challenge_stats {
	uint64_t live;		/* issued, not used, not expired (as of the last call) */
	uint64_t issued, evicted, expired, accepted, refused;
};

struct challenge_table;

/* max entries (0: CHALLENGE_MAX_DEFAULT), each valid ttl_ms; 0 or -ENOMEM */
int challenge_table_new(unsigned max, int64_t ttl_ms, struct challenge_table **out);
/* wipes every key; NULL is a no-op */
void challenge_table_free(struct challenge_table *t);
/* a fresh challenge for device_pub asked with the key regkey_id: its nonce
 * and the service's public key for it */
void challenge_issue(struct challenge_table *t, const uint8_t device_pub[KEYPROOF_KEY_BYTES],
		     const char *regkey_id, int64_t now_ms, uint8_t nonce[KEYPROOF_CHALLENGE_BYTES],
		     uint8_t service_pub[KEYPROOF_KEY_BYTES]);
/* Checks and uses up the challenge nonce: 0 when mac answers it for
 * device_pub and regkey_id; -ENOENT unknown (never issued, used, evicted),
 * -ETIMEDOUT expired, -EXDEV issued for another public or registration key,
 * -EBADMSG a wrong MAC. Whatever the verdict, the nonce is no longer valid. */
int challenge_take(struct challenge_table *t, const uint8_t nonce[KEYPROOF_CHALLENGE_BYTES],
		   const uint8_t device_pub[KEYPROOF_KEY_BYTES], const char *regkey_id,
		   const uint8_t mac[KEYPROOF_MAC_BYTES], int64_t now_ms);
void challenge_stats(const struct challenge_table *t, struct challenge_stats *out);
int64_t challenge_ttl_ms(const struct challenge_table *t);

#endif
