#include "token.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

static const char *const prefixes[] = {
	[TOKEN_ADMIN] = "nmadm_",
	[TOKEN_REGKEY] = "nmreg_",
	[TOKEN_DEVICE] = "nmdev_",
};

#define TOKEN_BODY_LEN (TOKEN_STRLEN - 1 - TOKEN_PREFIX_LEN)

void token_generate(enum token_scope scope, char out[TOKEN_STRLEN])
{
	uint8_t raw[TOKEN_RANDOM_BYTES];
	randombytes_buf(raw, sizeof(raw));
	memcpy(out, prefixes[scope], TOKEN_PREFIX_LEN);
	sodium_bin2base64(out + TOKEN_PREFIX_LEN, TOKEN_STRLEN - TOKEN_PREFIX_LEN, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

int token_scope_of(const char *token, enum token_scope *out)
{
	if (strlen(token) != TOKEN_STRLEN - 1)
		return -EINVAL;
	for (size_t i = 0; i < TOKEN_BODY_LEN; i++) {
		char c = token[TOKEN_PREFIX_LEN + i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return -EINVAL;
	}
	for (size_t s = 0; s < sizeof(prefixes) / sizeof(prefixes[0]); s++) {
		if (!memcmp(token, prefixes[s], TOKEN_PREFIX_LEN)) {
			*out = (enum token_scope)s;
			return 0;
		}
	}
	return -EINVAL;
}

void token_hash(const char *token, uint8_t out[TOKEN_HASH_BYTES])
{
	/* tokens carry 256 random bits, so a fast unkeyed hash is enough: there is
	 * nothing to brute-force, only a stolen database to make useless */
	crypto_generichash(out, TOKEN_HASH_BYTES, (const unsigned char *)token, strlen(token), NULL, 0);
}

bool token_verify(const char *token, const uint8_t hash[TOKEN_HASH_BYTES])
{
	uint8_t h[TOKEN_HASH_BYTES];
	token_hash(token, h);
	return sodium_memcmp(h, hash, TOKEN_HASH_BYTES) == 0;
}

int token_seal(const char *token, const uint8_t pub[WG_KEY_BYTES], char out[TOKEN_SEALED_B64LEN])
{
	uint8_t sealed[crypto_box_SEALBYTES + TOKEN_STRLEN - 1];
	size_t n = strlen(token);
	if (n != TOKEN_STRLEN - 1)
		return -EINVAL;
	/* fails for low-order points, whose shared secret would be all zeros */
	if (crypto_box_seal(sealed, (const unsigned char *)token, n, pub) != 0)
		return -EINVAL;
	sodium_bin2base64(out, TOKEN_SEALED_B64LEN, sealed, sizeof(sealed), sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int token_open(const char *sealed_b64, const uint8_t pub[WG_KEY_BYTES],
	       const uint8_t priv[WG_KEY_BYTES], char out[TOKEN_STRLEN])
{
	uint8_t sealed[crypto_box_SEALBYTES + TOKEN_STRLEN - 1];
	size_t n;
	if (sodium_base642bin(sealed, sizeof(sealed), sealed_b64, strlen(sealed_b64), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof(sealed))
		return -EINVAL;
	if (crypto_box_seal_open((unsigned char *)out, sealed, n, pub, priv) != 0)
		return -EINVAL;
	out[TOKEN_STRLEN - 1] = 0;
	enum token_scope scope;
	if (token_scope_of(out, &scope) < 0) {
		sodium_memzero(out, TOKEN_STRLEN);
		return -EINVAL;
	}
	return 0;
}

int wgkey_parse(const char *b64, uint8_t out[WG_KEY_BYTES])
{
	char again[WG_KEY_B64LEN];
	size_t n;
	if (strlen(b64) != WG_KEY_B64LEN - 1)
		return -EINVAL;
	if (sodium_base642bin(out, WG_KEY_BYTES, b64, WG_KEY_B64LEN - 1, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != WG_KEY_BYTES)
		return -EINVAL;
	/* the last character carries 2 unused bits; only the canonical form is a key */
	wgkey_format(out, again);
	return strcmp(again, b64) ? -EINVAL : 0;
}

void wgkey_format(const uint8_t key[WG_KEY_BYTES], char out[WG_KEY_B64LEN])
{
	sodium_bin2base64(out, WG_KEY_B64LEN, key, WG_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
}
