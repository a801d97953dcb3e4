/* token: the bearer tokens of the control plane. A token is a scope prefix and
 * 256 random bits in base64url; the service stores only its BLAKE2b-256 hash and
 * compares hashes in constant time. A device receives its token sealed to its
 * WireGuard public key (a WireGuard key pair is an X25519 key pair), so only the
 * holder of the private key can read it (libsodium crypto_box_seal). */
#ifndef NATMESH_SVC_TOKEN_H
#define NATMESH_SVC_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define TOKEN_RANDOM_BYTES 32	/* 256 bits */
#define TOKEN_HASH_BYTES 32	/* BLAKE2b-256 */
#define TOKEN_PREFIX_LEN 6	/* "nmadm_" */
#define TOKEN_STRLEN (TOKEN_PREFIX_LEN + 43 + 1)
/* a WireGuard public key, as the wire carries it (wire.h) */
#define WG_KEY_BYTES WIRE_KEY_BYTES
#define WG_KEY_B64LEN WIRE_KEY_B64LEN	/* 44 characters and a NUL */
/* base64 of crypto_box_SEALBYTES (48) + the token (49), and a NUL */
#define TOKEN_SEALED_B64LEN 133

enum token_scope { TOKEN_ADMIN, TOKEN_REGKEY, TOKEN_DEVICE };

/* a fresh random token of that scope into out (TOKEN_STRLEN bytes) */
void token_generate(enum token_scope scope, char out[TOKEN_STRLEN]);
/* the scope a well-formed token names by its prefix; -EINVAL if malformed */
int token_scope_of(const char *token, enum token_scope *out);
void token_hash(const char *token, uint8_t out[TOKEN_HASH_BYTES]);
/* whether token hashes to hash; the comparison takes constant time */
bool token_verify(const char *token, const uint8_t hash[TOKEN_HASH_BYTES]);
/* seals token to an X25519 public key, as base64; -EINVAL if the key is unusable */
int token_seal(const char *token, const uint8_t pub[WG_KEY_BYTES], char out[TOKEN_SEALED_B64LEN]);
/* opens a sealed token with the key pair; -EINVAL if it does not open */
int token_open(const char *sealed_b64, const uint8_t pub[WG_KEY_BYTES],
	       const uint8_t priv[WG_KEY_BYTES], char out[TOKEN_STRLEN]);
/* a WireGuard key in its canonical base64 form (44 characters); 0 or -EINVAL */
int wgkey_parse(const char *b64, uint8_t out[WG_KEY_BYTES]);
void wgkey_format(const uint8_t key[WG_KEY_BYTES], char out[WG_KEY_B64LEN]);

#endif
