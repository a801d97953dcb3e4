/* crypto: the primitives of WireGuard's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s
 * (whitepaper 5.4): HASH, MAC, HMAC and the HKDF-style KDF_n on BLAKE2s from
 * libb2; DH (X25519), AEAD (ChaCha20-Poly1305 with a 64-bit counter nonce)
 * and XAEAD (XChaCha20-Poly1305) from libsodium; constant-time comparison and
 * the TAI64N timestamp. Pure functions of their arguments; no clock is read. */
#ifndef NATMESH_WG_CRYPTO_H
#define NATMESH_WG_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wg_const.h"

/* sodium_init(); safe to call many times and from several threads.
 * 0 or -EIO. Every wg_* entry point that needs libsodium assumes it ran. */
int wg_crypto_init(void);

/* HASH(in): BLAKE2s-256 */
void wg_hash(uint8_t out[WG_HASH_LEN], const void *in, size_t len);
/* HASH(a || b) */
void wg_hash2(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen);
/* MAC(key, in): keyed BLAKE2s-128; keylen 1..32 */
void wg_mac(uint8_t out[WG_COOKIE_LEN], const uint8_t *key, size_t keylen,
	    const void *in, size_t len);
/* HMAC(key, in): RFC 2104 HMAC over BLAKE2s-256 (block 64 bytes) */
void wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t *key, size_t keylen,
	     const void *in, size_t len);
/* KDF_n(key, in) of whitepaper 5.4: t0 = HMAC(key, in), t1 = HMAC(t0, 0x1),
 * t_i = HMAC(t0, t_{i-1} || i). Writes t1, t2, t3 where not NULL; out pointers
 * may alias key. */
void wg_kdf(uint8_t t1[WG_HASH_LEN], uint8_t t2[WG_HASH_LEN], uint8_t t3[WG_HASH_LEN],
	    const uint8_t key[WG_HASH_LEN], const void *in, size_t len);

/* DH-GENERATE: a random clamped private key and its public key */
void wg_dh_generate(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN]);
/* DH-PUBKEY: the public key of priv (clamping applied by X25519) */
int wg_dh_pubkey(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
/* DH(priv, pub): X25519; -EINVAL when the result is all zero (low-order pub) */
int wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);
/* clamp a private key in place as Curve25519 does (wg genkey output form) */
void wg_key_clamp(uint8_t key[WG_KEY_LEN]);

/* AEAD(key, counter, plain, ad): ChaCha20-Poly1305 (RFC 8439), nonce = 32 zero
 * bits || little-endian 64-bit counter. out gets len + 16 bytes; out may equal in. */
void wg_aead_encrypt(uint8_t *out, const uint8_t *in, size_t len,
		     const uint8_t *ad, size_t adlen, uint64_t counter,
		     const uint8_t key[WG_KEY_LEN]);
/* inverse; len includes the 16-byte tag, out gets len - 16 bytes.
 * 0 or -EBADMSG (authentication failed, out is zeroed). out may equal in. */
int wg_aead_decrypt(uint8_t *out, const uint8_t *in, size_t len,
		    const uint8_t *ad, size_t adlen, uint64_t counter,
		    const uint8_t key[WG_KEY_LEN]);
/* XAEAD(key, nonce, plain, ad): XChaCha20-Poly1305 with a 24-byte nonce */
void wg_xaead_encrypt(uint8_t *out, const uint8_t *in, size_t len,
		      const uint8_t *ad, size_t adlen,
		      const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN]);
int wg_xaead_decrypt(uint8_t *out, const uint8_t *in, size_t len,
		     const uint8_t *ad, size_t adlen,
		     const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN]);

/* constant-time equality of two buffers of len bytes */
bool wg_ct_eq(const void *a, const void *b, size_t len);
/* constant-time "all zero" */
bool wg_is_zero(const void *a, size_t len);
/* sodium_memzero */
void wg_wipe(void *p, size_t len);
/* random bytes from libsodium's CSPRNG */
void wg_random(void *p, size_t len);

/* TAI64N(): 8 bytes big-endian 2^62 + 10 + seconds, 4 bytes big-endian
 * nanoseconds, of wall_ns (nanoseconds since the Unix epoch). The nanoseconds
 * are rounded down to a multiple of 2^24 as the kernel and wireguard-go do, so
 * the timestamp does not leak precise time. */
void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t wall_ns);

/* keys as `wg` prints them: 44 chars of base64 (plus NUL), and as UAPI
 * carries them: 64 hex chars (plus NUL). Parsing returns 0 or -EINVAL. */
#define WG_KEY_B64_LEN 45
#define WG_KEY_HEX_LEN 65
int wg_key_from_base64(uint8_t key[WG_KEY_LEN], const char *s);
void wg_key_to_base64(char out[WG_KEY_B64_LEN], const uint8_t key[WG_KEY_LEN]);
int wg_key_from_hex(uint8_t key[WG_KEY_LEN], const char *s);
void wg_key_to_hex(char out[WG_KEY_HEX_LEN], const uint8_t key[WG_KEY_LEN]);

#endif
