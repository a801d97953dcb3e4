#include "keyproof.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int keyproof_mac(const uint8_t my_priv[KEYPROOF_KEY_BYTES], const uint8_t their_pub[KEYPROOF_KEY_BYTES],
		 const uint8_t device_pub[KEYPROOF_KEY_BYTES], const uint8_t service_pub[KEYPROOF_KEY_BYTES],
		 const uint8_t challenge[KEYPROOF_CHALLENGE_BYTES], uint8_t out[KEYPROOF_MAC_BYTES])
{
	uint8_t shared[crypto_scalarmult_BYTES], k[32];
	crypto_generichash_state h;
	int rc = 0;

	/* fails for low-order points, whose shared point is all zeros */
	if (crypto_scalarmult(shared, my_priv, their_pub) != 0) {
		rc = -EINVAL;
		goto out;
	}
	/* the raw point is not uniform: hashed, with both public keys, into the key */
	crypto_generichash_init(&h, NULL, 0, sizeof(k));
	crypto_generichash_update(&h, (const uint8_t *)KEYPROOF_LABEL, strlen(KEYPROOF_LABEL));
	crypto_generichash_update(&h, shared, sizeof(shared));
	crypto_generichash_update(&h, device_pub, KEYPROOF_KEY_BYTES);
	crypto_generichash_update(&h, service_pub, KEYPROOF_KEY_BYTES);
	crypto_generichash_final(&h, k, sizeof(k));
	crypto_generichash_init(&h, k, sizeof(k), KEYPROOF_MAC_BYTES);
	crypto_generichash_update(&h, challenge, KEYPROOF_CHALLENGE_BYTES);
	crypto_generichash_update(&h, device_pub, KEYPROOF_KEY_BYTES);
	crypto_generichash_final(&h, out, KEYPROOF_MAC_BYTES);
out:
	sodium_memzero(&h, sizeof(h));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(k, sizeof(k));
	return rc;
}
