/* keyproof: proof that a device holds the private half of its WireGuard
 * (X25519) key, for reclaiming its identity without its device token.
 * meshsvc hands out a challenge (32 random bytes) with an ephemeral X25519
 * public key of its own; the device answers with
 *
 *   k   = BLAKE2b-256("natmesh key proof v1" || X25519(own private, other's public)
 *                     || device public || service public)
 *   mac = BLAKE2b-256, keyed with k, of (challenge || device public)
 *
 * Both sides compute the same shared point (Diffie-Hellman): the device with
 * its private key and the service's public one, the service with its
 * ephemeral private key and the device's public one. Nobody else can: the
 * device's public key is known to its whole VPC, its private key only to it.
 * Python: hashlib.blake2b(digest_size=32[, key=k]) and cryptography's
 * X25519PrivateKey.exchange compute the same (tests/netns/svc_reclaim.sh). */
#ifndef NATMESH_KEYPROOF_H
#define NATMESH_KEYPROOF_H

#include <stdint.h>

#define KEYPROOF_KEY_BYTES 32		/* X25519 keys */
#define KEYPROOF_CHALLENGE_BYTES 32
#define KEYPROOF_MAC_BYTES 32
#define KEYPROOF_LABEL "natmesh key proof v1"

/* the MAC over challenge and device_pub, from my_priv and their_pub (the
 * device: its private key and service_pub; the service: its ephemeral private
 * key and device_pub); -EINVAL when their_pub is a low-order point (the
 * shared point would be zero) */
int keyproof_mac(const uint8_t my_priv[KEYPROOF_KEY_BYTES], const uint8_t their_pub[KEYPROOF_KEY_BYTES],
		 const uint8_t device_pub[KEYPROOF_KEY_BYTES], const uint8_t service_pub[KEYPROOF_KEY_BYTES],
		 const uint8_t challenge[KEYPROOF_CHALLENGE_BYTES], uint8_t out[KEYPROOF_MAC_BYTES]);

#endif
