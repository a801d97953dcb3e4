/* sha1: SHA-1 and HMAC-SHA1 (FIPS 180-4, RFC 2104), only for STUN's
 * MESSAGE-INTEGRITY (RFC 8489 14.5). Internal to lib/stun. */
#ifndef NATMESH_STUN_SHA1_H
#define NATMESH_STUN_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA1_BLOCK 64

struct sha1_ctx {
	uint32_t h[5];
	uint64_t total;
	uint8_t block[SHA1_BLOCK];
	size_t fill;
};

void sha1_init(struct sha1_ctx *c);
void sha1_update(struct sha1_ctx *c, const void *data, size_t len);
void sha1_final(struct sha1_ctx *c, uint8_t out[SHA1_LEN]);
void hmac_sha1(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
	       uint8_t out[SHA1_LEN]);

#endif
