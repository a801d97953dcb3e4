/* messages: the wire formats of WireGuard's four message types (whitepaper
 * 5.4.2 initiation, 5.4.3 response, 5.4.7 cookie reply, 5.4.6 transport data)
 * and the one parser that checks an incoming datagram's type, length and
 * reserved bytes before anything else looks at it. Multi-byte integers on the
 * wire are little-endian; use the wg_le32/wg_le64 helpers to read and write. */
#ifndef NATMESH_WG_MESSAGES_H
#define NATMESH_WG_MESSAGES_H

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wg_const.h"

enum wg_msg_type {
	WG_MSG_INITIATION = 1,
	WG_MSG_RESPONSE = 2,
	WG_MSG_COOKIE_REPLY = 3,
	WG_MSG_DATA = 4,
};

/* type (1 byte) and three reserved zero bytes: the wire's first le32 */
struct wg_msg_header {
	uint8_t type;
	uint8_t reserved[3];
} __attribute__((packed));

/* the trailing MACs of the two handshake messages (5.4.4) */
struct wg_msg_macs {
	uint8_t mac1[WG_COOKIE_LEN];
	uint8_t mac2[WG_COOKIE_LEN];
} __attribute__((packed));

/* 5.4.2, 148 bytes */
struct wg_msg_initiation {
	struct wg_msg_header header;
	uint32_t sender_index;			/* le32 */
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_static[WG_KEY_LEN + WG_AEAD_TAG_LEN];
	uint8_t encrypted_timestamp[WG_TIMESTAMP_LEN + WG_AEAD_TAG_LEN];
	struct wg_msg_macs macs;
} __attribute__((packed));

/* 5.4.3, 92 bytes */
struct wg_msg_response {
	struct wg_msg_header header;
	uint32_t sender_index;			/* le32 */
	uint32_t receiver_index;		/* le32 */
	uint8_t unencrypted_ephemeral[WG_KEY_LEN];
	uint8_t encrypted_nothing[WG_AEAD_TAG_LEN];
	struct wg_msg_macs macs;
} __attribute__((packed));

/* 5.4.7, 64 bytes */
struct wg_msg_cookie_reply {
	struct wg_msg_header header;
	uint32_t receiver_index;		/* le32 */
	uint8_t nonce[WG_COOKIE_NONCE_LEN];
	uint8_t encrypted_cookie[WG_COOKIE_LEN + WG_AEAD_TAG_LEN];
} __attribute__((packed));

/* 5.4.6, 16 bytes followed by the encrypted, padded packet and its tag */
struct wg_msg_data {
	struct wg_msg_header header;
	uint32_t receiver_index;		/* le32 */
	uint64_t counter;			/* le64 */
	uint8_t encrypted_data[];
} __attribute__((packed));

#define WG_MSG_INITIATION_LEN   148
#define WG_MSG_RESPONSE_LEN     92
#define WG_MSG_COOKIE_REPLY_LEN 64
#define WG_MSG_DATA_HEADER_LEN  16
/* a keepalive: header plus the tag of an empty plaintext */
#define WG_MSG_DATA_MIN_LEN     (WG_MSG_DATA_HEADER_LEN + WG_AEAD_TAG_LEN)
/* headroom in front of and tailroom behind a plaintext for in-place encryption:
 * 16 bytes of header, up to 15 bytes of padding and the 16-byte tag */
#define WG_DATA_HEADROOM WG_MSG_DATA_HEADER_LEN
#define WG_DATA_TAILROOM (WG_PADDING_MULTIPLE - 1 + WG_AEAD_TAG_LEN)

_Static_assert(sizeof(struct wg_msg_initiation) == WG_MSG_INITIATION_LEN, "initiation size");
_Static_assert(sizeof(struct wg_msg_response) == WG_MSG_RESPONSE_LEN, "response size");
_Static_assert(sizeof(struct wg_msg_cookie_reply) == WG_MSG_COOKIE_REPLY_LEN, "cookie size");
_Static_assert(sizeof(struct wg_msg_data) == WG_MSG_DATA_HEADER_LEN, "data header size");

/* why wg_msg_parse refused a datagram; each is a distinct negative errno */
enum wg_msg_error {
	WG_MSG_E_TRUNCATED = -ENODATA,		/* shorter than its type's minimum (or < 4 bytes) */
	WG_MSG_E_TYPE      = -EPROTONOSUPPORT,	/* type byte not 1..4 */
	WG_MSG_E_RESERVED  = -EBADMSG,		/* a reserved byte is not zero */
	WG_MSG_E_LENGTH    = -EMSGSIZE,		/* handshake message longer than its fixed size */
};

/* Classify a received datagram: returns its enum wg_msg_type (> 0), or one of
 * enum wg_msg_error. On success the buffer may be cast to the matching struct. */
int wg_msg_parse(const uint8_t *buf, size_t len);
/* "truncated", "unknown type", ... for logs; "ok" for values > 0 */
const char *wg_msg_strerror(int err);
/* the name of a message type for logs, "unknown" otherwise */
const char *wg_msg_type_name(int type);

/* index fields sit at offset 4 of a packed struct; read and write them with
 * these so alignment and byte order are right on every host */
static inline uint32_t wg_le32_get(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline void wg_le32_put(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint64_t wg_le64_get(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline void wg_le64_put(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
