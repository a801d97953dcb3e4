/* crypto: WireGuard's primitives on libb2 and libsodium (whitepaper 5.4). */
#include "crypto.h"

#include <blake2.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

#define BLAKE2S_BLOCK 64

int wg_crypto_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void wg_hash(uint8_t out[WG_HASH_LEN], const void *in, size_t len)
{
	blake2s(out, in, NULL, WG_HASH_LEN, len, 0);
}

void wg_hash2(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen)
{
	blake2s_state s;

	blake2s_init(&s, WG_HASH_LEN);
	blake2s_update(&s, a, alen);
	blake2s_update(&s, b, blen);
	blake2s_final(&s, out, WG_HASH_LEN);
	sodium_memzero(&s, sizeof(s));
}

void wg_mac(uint8_t out[WG_COOKIE_LEN], const uint8_t *key, size_t keylen,
	    const void *in, size_t len)
{
	blake2s(out, in, key, WG_COOKIE_LEN, len, keylen);
}

void wg_hmac(uint8_t out[WG_HASH_LEN], const uint8_t *key, size_t keylen,
	     const void *in, size_t len)
{
	uint8_t k[BLAKE2S_BLOCK] = { 0 };
	uint8_t inner[WG_HASH_LEN];
	blake2s_state s;

	/* RFC 2104: keys longer than a block are hashed first */
	if (keylen > BLAKE2S_BLOCK)
		wg_hash(k, key, keylen);
	else
		memcpy(k, key, keylen);

	for (size_t i = 0; i < sizeof(k); i++)
		k[i] ^= 0x36;
	blake2s_init(&s, WG_HASH_LEN);
	blake2s_update(&s, k, sizeof(k));
	blake2s_update(&s, in, len);
	blake2s_final(&s, inner, sizeof(inner));

	for (size_t i = 0; i < sizeof(k); i++)
		k[i] ^= 0x36 ^ 0x5c;
	blake2s_init(&s, WG_HASH_LEN);
	blake2s_update(&s, k, sizeof(k));
	blake2s_update(&s, inner, sizeof(inner));
	blake2s_final(&s, out, WG_HASH_LEN);

	sodium_memzero(k, sizeof(k));
	sodium_memzero(inner, sizeof(inner));
	sodium_memzero(&s, sizeof(s));
}

void wg_kdf(uint8_t t1[WG_HASH_LEN], uint8_t t2[WG_HASH_LEN], uint8_t t3[WG_HASH_LEN],
	    const uint8_t key[WG_HASH_LEN], const void *in, size_t len)
{
	uint8_t prk[WG_HASH_LEN];
	uint8_t buf[WG_HASH_LEN + 1];
	uint8_t out[WG_HASH_LEN];

	wg_hmac(prk, key, WG_HASH_LEN, in, len);	/* tau0 */

	buf[0] = 0x1;
	wg_hmac(out, prk, sizeof(prk), buf, 1);		/* tau1 */
	if (t1)
		memcpy(t1, out, WG_HASH_LEN);
	if (t2 || t3) {
		memcpy(buf, out, WG_HASH_LEN);
		buf[WG_HASH_LEN] = 0x2;
		wg_hmac(out, prk, sizeof(prk), buf, sizeof(buf));	/* tau2 */
		if (t2)
			memcpy(t2, out, WG_HASH_LEN);
	}
	if (t3) {
		memcpy(buf, out, WG_HASH_LEN);
		buf[WG_HASH_LEN] = 0x3;
		wg_hmac(out, prk, sizeof(prk), buf, sizeof(buf));	/* tau3 */
		memcpy(t3, out, WG_HASH_LEN);
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(out, sizeof(out));
}

void wg_key_clamp(uint8_t key[WG_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
}

void wg_dh_generate(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN])
{
	randombytes_buf(priv, WG_KEY_LEN);
	wg_key_clamp(priv);
	crypto_scalarmult_curve25519_base(pub, priv);
}

int wg_dh_pubkey(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN])
{
	return crypto_scalarmult_curve25519_base(pub, priv) == 0 ? 0 : -EINVAL;
}

int wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN])
{
	/* libsodium refuses an all-zero shared secret (a low-order point) */
	if (crypto_scalarmult_curve25519(out, priv, pub) != 0) {
		sodium_memzero(out, WG_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

static void nonce_from_counter(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES],
			       uint64_t counter)
{
	/* 5.4.6: 32 bits of zeros followed by the 64-bit little-endian counter */
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

void wg_aead_encrypt(uint8_t *out, const uint8_t *in, size_t len,
		     const uint8_t *ad, size_t adlen, uint64_t counter,
		     const uint8_t key[WG_KEY_LEN])
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

	nonce_from_counter(nonce, counter);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, in, len,
							   ad, adlen, NULL, nonce, key);
}

int wg_aead_decrypt(uint8_t *out, const uint8_t *in, size_t len,
		    const uint8_t *ad, size_t adlen, uint64_t counter,
		    const uint8_t key[WG_KEY_LEN])
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

	if (len < WG_AEAD_TAG_LEN)
		return -EBADMSG;
	nonce_from_counter(nonce, counter);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in, len - WG_AEAD_TAG_LEN,
							       in + len - WG_AEAD_TAG_LEN,
							       ad, adlen, nonce, key) != 0) {
		if (out)
			sodium_memzero(out, len - WG_AEAD_TAG_LEN);
		return -EBADMSG;
	}
	return 0;
}

void wg_xaead_encrypt(uint8_t *out, const uint8_t *in, size_t len,
		      const uint8_t *ad, size_t adlen,
		      const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, in, len,
							    ad, adlen, NULL, nonce, key);
}

int wg_xaead_decrypt(uint8_t *out, const uint8_t *in, size_t len,
		     const uint8_t *ad, size_t adlen,
		     const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN])
{
	if (len < WG_AEAD_TAG_LEN)
		return -EBADMSG;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, in, len - WG_AEAD_TAG_LEN,
								in + len - WG_AEAD_TAG_LEN,
								ad, adlen, nonce, key) != 0) {
		if (out)
			sodium_memzero(out, len - WG_AEAD_TAG_LEN);
		return -EBADMSG;
	}
	return 0;
}

bool wg_ct_eq(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

bool wg_is_zero(const void *a, size_t len)
{
	return sodium_is_zero(a, len) == 1;
}

void wg_wipe(void *p, size_t len)
{
	sodium_memzero(p, len);
}

void wg_random(void *p, size_t len)
{
	randombytes_buf(p, len);
}

void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t wall_ns)
{
	/* TAI64 label: 2^62 plus the seconds, plus 10 for TAI-UTC as in the kernel
	 * and wireguard-go; nanoseconds whitened to a multiple of 2^24 */
	uint64_t secs = 0x400000000000000aULL + wall_ns / WG_NSEC_PER_SEC;
	uint32_t nsec = (uint32_t)(wall_ns % WG_NSEC_PER_SEC) & ~(uint32_t)0xffffff;

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(secs >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(nsec >> (24 - 8 * i));
}

int wg_key_from_base64(uint8_t key[WG_KEY_LEN], const char *s)
{
	size_t n = 0;
	const char *end;

	if (strlen(s) != WG_KEY_B64_LEN - 1)
		return -EINVAL;
	if (sodium_base642bin(key, WG_KEY_LEN, s, WG_KEY_B64_LEN - 1, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != WG_KEY_LEN || *end) {
		sodium_memzero(key, WG_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

void wg_key_to_base64(char out[WG_KEY_B64_LEN], const uint8_t key[WG_KEY_LEN])
{
	sodium_bin2base64(out, WG_KEY_B64_LEN, key, WG_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

int wg_key_from_hex(uint8_t key[WG_KEY_LEN], const char *s)
{
	size_t n = 0;
	const char *end;

	if (strlen(s) != WG_KEY_HEX_LEN - 1)
		return -EINVAL;
	if (sodium_hex2bin(key, WG_KEY_LEN, s, WG_KEY_HEX_LEN - 1, NULL, &n, &end) != 0 ||
	    n != WG_KEY_LEN || *end) {
		sodium_memzero(key, WG_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

void wg_key_to_hex(char out[WG_KEY_HEX_LEN], const uint8_t key[WG_KEY_LEN])
{
	sodium_bin2hex(out, WG_KEY_HEX_LEN, key, WG_KEY_LEN);
}
