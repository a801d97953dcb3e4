/* The STUN codec: parsing and building messages (RFC 8489 sections 5, 14;
 * RFC 5780 section 7). */
#include "stun/stun.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

const char *stun_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case STUN_E_SHORT: return "shorter than a header";
	case STUN_E_NOT_STUN: return "first two bits not zero";
	case STUN_E_COOKIE: return "wrong magic cookie";
	case STUN_E_LEN_ALIGN: return "length not a multiple of 4";
	case STUN_E_LEN_MISMATCH: return "length does not match the datagram";
	case STUN_E_ATTR_TRUNC: return "attribute past end";
	case STUN_E_ATTR_DUP: return "duplicated attribute";
	case STUN_E_TOO_MANY: return "too many attributes";
	case STUN_E_ATTR_LEN: return "bad attribute length";
	case STUN_E_ADDR_FAMILY: return "bad address family";
	case STUN_E_ERROR_CODE: return "bad error code";
	case STUN_E_FINGERPRINT: return "bad fingerprint";
	case STUN_E_FP_NOT_LAST: return "attribute after fingerprint";
	case STUN_E_AFTER_INTEGRITY: return "attribute after message-integrity";
	case STUN_E_INTEGRITY: return "bad message-integrity";
	case STUN_E_CLASS: return "error response without error-code";
	case STUN_E_NOBUFS: return "buffer too small";
	case STUN_E_TXN: return "not this transaction";
	}
	return err < 0 ? strerror(-err) : "unknown";
}

/* RFC 8489 14.7: FINGERPRINT is the ISO-HDLC CRC-32, zlib's own */
uint32_t stun_crc32(const uint8_t *p, size_t len)
{
	return (uint32_t)crc32_z(0, p, len);
}

struct hmac_part {
	const uint8_t *p;
	size_t len;
};

/* HMAC-SHA1 (RFC 2104) over the parts in order, into out[STUN_HMAC_LEN]:
 * 0, or -ENOMEM when libcrypto cannot set it up */
static int hmac_sha1(const uint8_t *key, size_t keylen, const struct hmac_part *parts,
		     int nparts, uint8_t out[STUN_HMAC_LEN])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	size_t outlen = 0;
	int rc = -ENOMEM;

	if (!(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) || !(ctx = EVP_MAC_CTX_new(mac)))
		goto out;
	/* to libcrypto a NULL key means "keep the last one"; an empty key is a key */
	if (!EVP_MAC_init(ctx, keylen ? key : (const uint8_t *)"", keylen, params))
		goto out;
	for (int i = 0; i < nparts; i++)
		if (!EVP_MAC_update(ctx, parts[i].p, parts[i].len))
			goto out;
	if (!EVP_MAC_final(ctx, out, &outlen, STUN_HMAC_LEN) || outlen != STUN_HMAC_LEN)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

/* --- parsing ------------------------------------------------------------ */

/* The attribute types this codec understands (comprehension-required ones
 * outside this list are reported in msg->unknown). */
static bool known_type(uint16_t t)
{
	switch (t) {
	case STUN_ATTR_MAPPED_ADDRESS:
	case STUN_ATTR_CHANGE_REQUEST:
	case STUN_ATTR_USERNAME:
	case STUN_ATTR_MESSAGE_INTEGRITY:
	case STUN_ATTR_ERROR_CODE:
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
	case STUN_ATTR_REALM:
	case STUN_ATTR_NONCE:
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
	case STUN_ATTR_PASSWORD_ALGORITHM:
	case STUN_ATTR_USERHASH:
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
	case STUN_ATTR_PRIORITY:
	case STUN_ATTR_USE_CANDIDATE:
	case STUN_ATTR_PADDING:
	case STUN_ATTR_RESPONSE_PORT:
		return true;
	}
	return false;
}

/* RFC 8489 14.1/14.2: family (1 or 2), port, 4 or 16 address bytes */
static int parse_addr(const struct stun_attr *a, const uint8_t *tid, bool xor,
		      union sockaddr_any *out)
{
	const uint8_t *v = a->value;
	uint8_t key[16];

	if (a->len < 4)
		return STUN_E_ATTR_LEN;
	put32(key, STUN_MAGIC_COOKIE);
	memcpy(key + 4, tid, STUN_TID_LEN);
	memset(out, 0, sizeof(*out));
	uint16_t port = get16(v + 2);
	if (xor)
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	switch (v[1]) {
	case 0x01:
		if (a->len != 8)
			return STUN_E_ATTR_LEN;
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons(port);
		memcpy(&out->in.sin_addr, v + 4, 4);
		if (xor)
			for (int i = 0; i < 4; i++)
				((uint8_t *)&out->in.sin_addr)[i] ^= key[i];
		return 0;
	case 0x02:
		if (a->len != 20)
			return STUN_E_ATTR_LEN;
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(port);
		memcpy(&out->in6.sin6_addr, v + 4, 16);
		if (xor)
			for (int i = 0; i < 16; i++)
				out->in6.sin6_addr.s6_addr[i] ^= key[i];
		return 0;
	}
	return STUN_E_ADDR_FAMILY;
}

static int decode_attr(struct stun_msg *m, const struct stun_attr *a)
{
	switch (a->type) {
	case STUN_ATTR_MAPPED_ADDRESS:
		m->has_mapped = true;
		return parse_addr(a, m->tid, false, &m->mapped);
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
		m->has_xor_mapped = true;
		return parse_addr(a, m->tid, true, &m->xor_mapped);
	case STUN_ATTR_OTHER_ADDRESS:
		m->has_other_address = true;
		return parse_addr(a, m->tid, false, &m->other_address);
	case STUN_ATTR_RESPONSE_ORIGIN:
		m->has_response_origin = true;
		return parse_addr(a, m->tid, false, &m->response_origin);
	case STUN_ATTR_CHANGE_REQUEST:
		if (a->len != 4)
			return STUN_E_ATTR_LEN;
		m->has_change_request = true;
		m->change_flags = get32(a->value) & (STUN_CHANGE_IP | STUN_CHANGE_PORT);
		return 0;
	case STUN_ATTR_RESPONSE_PORT:
		/* RFC 5780 7.5: the port, then 2 bytes of padding (some encode length 2) */
		if (a->len != 4 && a->len != 2)
			return STUN_E_ATTR_LEN;
		m->has_response_port = true;
		m->response_port = get16(a->value);
		return 0;
	case STUN_ATTR_PADDING:
		m->has_padding = true;
		m->padding_len = a->len;
		return 0;
	case STUN_ATTR_SOFTWARE:
		if (a->len > STUN_SOFTWARE_MAX)
			return STUN_E_ATTR_LEN;
		m->has_software = true;
		m->software = (const char *)a->value;
		m->software_len = a->len;
		return 0;
	case STUN_ATTR_ERROR_CODE: {
		if (a->len < 4 || a->len > 4 + STUN_REASON_MAX)
			return STUN_E_ATTR_LEN;
		int cls = a->value[2] & 0x07, num = a->value[3];
		if (cls < 3 || cls > 6 || num > 99)
			return STUN_E_ERROR_CODE;
		m->has_error = true;
		m->error_code = cls * 100 + num;
		m->reason = (const char *)a->value + 4;
		m->reason_len = (uint16_t)(a->len - 4);
		return 0;
	}
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
		if (a->len % 2)
			return STUN_E_ATTR_LEN;
		m->has_unknown_attributes = true;
		for (int i = 0; i < a->len / 2 && m->nunknown_listed < STUN_MAX_UNKNOWN; i++)
			m->unknown_listed[m->nunknown_listed++] = get16(a->value + 2 * i);
		return 0;
	case STUN_ATTR_MESSAGE_INTEGRITY:
		if (a->len != STUN_HMAC_LEN)
			return STUN_E_ATTR_LEN;
		m->has_integrity = true;
		m->integrity_offset = a->offset;
		return 0;
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
		if (a->len < 16 || a->len > 32 || a->len % 4)
			return STUN_E_ATTR_LEN;
		return 0;
	case STUN_ATTR_FINGERPRINT:
		if (a->len != 4)
			return STUN_E_ATTR_LEN;
		m->has_fingerprint = true;
		return 0;
	case STUN_ATTR_PRIORITY:
		return a->len == 4 ? 0 : STUN_E_ATTR_LEN;
	case STUN_ATTR_USE_CANDIDATE:
		return a->len == 0 ? 0 : STUN_E_ATTR_LEN;
	case STUN_ATTR_ICE_CONTROLLED:
	case STUN_ATTR_ICE_CONTROLLING:
		return a->len == 8 ? 0 : STUN_E_ATTR_LEN;
	case STUN_ATTR_USERNAME:
		return a->len <= 513 ? 0 : STUN_E_ATTR_LEN;
	case STUN_ATTR_USERHASH:
		return a->len == 32 ? 0 : STUN_E_ATTR_LEN;
	}
	if (a->type < 0x8000 && !known_type(a->type) && m->nunknown < STUN_MAX_UNKNOWN)
		m->unknown[m->nunknown++] = a->type;
	return 0;
}

void stun_type_decode(uint16_t type, enum stun_class *cls, uint16_t *method)
{
	uint16_t t = type & 0x3FFF;

	/* RFC 8489 5: class bits C1 (bit 8) and C0 (bit 4) between the method bits */
	*cls = (enum stun_class)(((t >> 4) & 1) | ((t >> 7) & 2));
	*method = (uint16_t)((t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80));
}

int stun_parse(const uint8_t *buf, size_t len, struct stun_msg *m)
{
	size_t pos;
	bool after_fp = false, after_mi = false;
	int rc;

	if (len < STUN_HEADER_LEN)
		return STUN_E_SHORT;
	if (buf[0] & 0xC0)
		return STUN_E_NOT_STUN;
	if (get32(buf + 4) != STUN_MAGIC_COOKIE)
		return STUN_E_COOKIE;
	uint16_t mlen = get16(buf + 2);
	if (mlen % 4)
		return STUN_E_LEN_ALIGN;
	if ((size_t)mlen + STUN_HEADER_LEN != len)
		return STUN_E_LEN_MISMATCH;

	/* only the fields before the attribute table need clearing */
	memset(m, 0, offsetof(struct stun_msg, attrs));
	memset(&m->nunknown, 0, sizeof(*m) - offsetof(struct stun_msg, nunknown));
	stun_type_decode(get16(buf), &m->cls, &m->method);
	memcpy(m->tid, buf + 8, STUN_TID_LEN);
	m->length = mlen;

	for (pos = STUN_HEADER_LEN; pos < len;) {
		struct stun_attr a;

		/* pos and len are multiples of 4, so a 4-byte header always fits */
		a.type = get16(buf + pos);
		a.len = get16(buf + pos + 2);
		a.offset = (uint16_t)pos;
		a.value = buf + pos + 4;
		if (a.len > len - pos - 4)
			return STUN_E_ATTR_TRUNC;
		size_t padded = ((size_t)a.len + 3) & ~(size_t)3;
		if (padded > len - pos - 4)
			return STUN_E_ATTR_TRUNC;
		if (after_fp)
			return STUN_E_FP_NOT_LAST;
		if (after_mi && a.type != STUN_ATTR_FINGERPRINT &&
		    a.type != STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			return STUN_E_AFTER_INTEGRITY;
		for (int i = 0; i < m->nattrs; i++)
			if (m->attrs[i].type == a.type)
				return STUN_E_ATTR_DUP;
		if (m->nattrs == STUN_MAX_ATTRS)
			return STUN_E_TOO_MANY;
		rc = decode_attr(m, &a);
		if (rc < 0)
			return rc;
		if (a.type == STUN_ATTR_FINGERPRINT) {
			/* RFC 8489 14.7: CRC over everything before the attribute,
			 * with the header length covering FINGERPRINT (it is last) */
			uint32_t want = stun_crc32(buf, pos) ^ STUN_FINGERPRINT_XOR;
			if (get32(a.value) != want)
				return STUN_E_FINGERPRINT;
			after_fp = true;
		}
		if (a.type == STUN_ATTR_MESSAGE_INTEGRITY)
			after_mi = true;
		m->attrs[m->nattrs++] = a;
		pos += 4 + padded;
	}
	if (m->cls == STUN_CLASS_ERROR && !m->has_error)
		return STUN_E_CLASS;
	return 0;
}

const struct stun_attr *stun_msg_attr(const struct stun_msg *m, uint16_t type)
{
	for (int i = 0; i < m->nattrs; i++)
		if (m->attrs[i].type == type)
			return &m->attrs[i];
	return NULL;
}

int stun_check_integrity(const uint8_t *buf, size_t len, const struct stun_msg *m,
			 const uint8_t *key, size_t keylen)
{
	uint8_t copy[4], mac[STUN_HMAC_LEN];
	size_t off = m->integrity_offset;
	uint8_t diff = 0;

	if (!m->has_integrity || off + 4 + STUN_HMAC_LEN > len)
		return STUN_E_INTEGRITY;
	/* RFC 8489 14.5: the length field counts up to the end of
	 * MESSAGE-INTEGRITY, ignoring a FINGERPRINT that follows */
	memcpy(copy, buf, 4);
	put16(copy + 2, (uint16_t)(off + 4 + STUN_HMAC_LEN - STUN_HEADER_LEN));
	/* HMAC over the patched header and the rest, without copying the message */
	const struct hmac_part parts[] = { { copy, 4 }, { buf + 4, off - 4 } };
	if (hmac_sha1(key, keylen, parts, 2, mac) < 0)
		return STUN_E_INTEGRITY;
	/* not secret-dependent timing that matters here: a STUN server
	 * without credentials; still compare every byte */
	for (int i = 0; i < STUN_HMAC_LEN; i++)
		diff |= (uint8_t)(mac[i] ^ buf[off + 4 + i]);
	return diff ? STUN_E_INTEGRITY : 0;
}

/* --- building ------------------------------------------------------------ */

static void set_length(struct stun_builder *b)
{
	put16(b->buf + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
}

int stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap,
		    enum stun_class cls, uint16_t method, const uint8_t tid[STUN_TID_LEN])
{
	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->pad = 0;
	b->err = 0;
	if (cap < STUN_HEADER_LEN || method > 0x0FFF) {
		b->err = cap < STUN_HEADER_LEN ? STUN_E_NOBUFS : -EINVAL;
		return b->err;
	}
	unsigned c = (unsigned)cls;
	uint16_t t = (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) |
				((method & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7));
	put16(buf, t);
	put16(buf + 2, 0);
	put32(buf + 4, STUN_MAGIC_COOKIE);
	memcpy(buf + 8, tid, STUN_TID_LEN);
	b->len = STUN_HEADER_LEN;
	return 0;
}

/* reserve an attribute of len value bytes; returns a pointer to the value */
static uint8_t *attr_begin(struct stun_builder *b, uint16_t type, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	if (b->err)
		return NULL;
	if (len > 0xFFFF || b->len + 4 + padded > b->cap || b->len + 4 + padded - STUN_HEADER_LEN > 0xFFFF) {
		b->err = STUN_E_NOBUFS;
		return NULL;
	}
	uint8_t *p = b->buf + b->len;
	put16(p, type);
	put16(p + 2, (uint16_t)len);
	memset(p + 4 + len, b->pad, padded - len);
	b->len += 4 + padded;
	set_length(b);
	return p + 4;
}

int stun_build_attr(struct stun_builder *b, uint16_t type, const void *value, size_t len)
{
	uint8_t *p = attr_begin(b, type, len);
	if (!p)
		return b->err;
	if (len)
		memcpy(p, value, len);
	return 0;
}

static int build_addr(struct stun_builder *b, uint16_t type, const union sockaddr_any *a, bool xor)
{
	size_t n;
	const uint8_t *ip = addr_ip_bytes(a, &n);
	uint8_t key[16];

	if (!ip) {
		if (!b->err)
			b->err = -EAFNOSUPPORT;
		return b->err;
	}
	uint8_t *p = attr_begin(b, type, 4 + n);
	if (!p)
		return b->err;
	uint16_t port = addr_port(a);
	put32(key, STUN_MAGIC_COOKIE);
	memcpy(key + 4, b->buf + 8, STUN_TID_LEN);
	p[0] = 0;
	p[1] = n == 4 ? 0x01 : 0x02;
	put16(p + 2, xor ? (uint16_t)(port ^ (STUN_MAGIC_COOKIE >> 16)) : port);
	for (size_t i = 0; i < n; i++)
		p[4 + i] = xor ? (uint8_t)(ip[i] ^ key[i]) : ip[i];
	return 0;
}

int stun_build_addr(struct stun_builder *b, uint16_t type, const union sockaddr_any *a)
{
	return build_addr(b, type, a, false);
}

int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const union sockaddr_any *a)
{
	return build_addr(b, type, a, true);
}

int stun_build_software(struct stun_builder *b, const char *software)
{
	size_t n = strlen(software);
	return stun_build_attr(b, STUN_ATTR_SOFTWARE, software, n > STUN_SOFTWARE_MAX ? STUN_SOFTWARE_MAX : n);
}

static const char *error_phrase(int code)
{
	switch (code) {
	case 300: return "Try Alternate";
	case 400: return "Bad Request";
	case 401: return "Unauthenticated";
	case 420: return "Unknown Attribute";
	case 438: return "Stale Nonce";
	case 500: return "Server Error";
	}
	return "Error";
}

int stun_build_error(struct stun_builder *b, int code, const char *reason)
{
	if (code < 300 || code > 699) {
		if (!b->err)
			b->err = -EINVAL;
		return b->err;
	}
	if (!reason)
		reason = error_phrase(code);
	size_t n = strlen(reason);
	if (n > STUN_REASON_MAX)
		n = STUN_REASON_MAX;
	uint8_t *p = attr_begin(b, STUN_ATTR_ERROR_CODE, 4 + n);
	if (!p)
		return b->err;
	p[0] = p[1] = 0;
	p[2] = (uint8_t)(code / 100);
	p[3] = (uint8_t)(code % 100);
	memcpy(p + 4, reason, n);
	return 0;
}

int stun_build_unknown_attributes(struct stun_builder *b, const uint16_t *types, int n)
{
	if (n < 0)
		n = 0;
	uint8_t *p = attr_begin(b, STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * (size_t)n);
	if (!p)
		return b->err;
	for (int i = 0; i < n; i++)
		put16(p + 2 * i, types[i]);
	return 0;
}

int stun_build_change_request(struct stun_builder *b, uint32_t flags)
{
	uint8_t v[4];
	put32(v, flags & (STUN_CHANGE_IP | STUN_CHANGE_PORT));
	return stun_build_attr(b, STUN_ATTR_CHANGE_REQUEST, v, 4);
}

int stun_build_response_port(struct stun_builder *b, uint16_t port)
{
	uint8_t v[4] = { 0 };
	put16(v, port);
	return stun_build_attr(b, STUN_ATTR_RESPONSE_PORT, v, 4);
}

int stun_build_padding(struct stun_builder *b, size_t len)
{
	uint8_t *p = attr_begin(b, STUN_ATTR_PADDING, len);
	if (!p)
		return b->err;
	memset(p, 0, len);
	return 0;
}

int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	size_t start = b->len;
	uint8_t *p = attr_begin(b, STUN_ATTR_MESSAGE_INTEGRITY, STUN_HMAC_LEN);
	int rc;

	if (!p)
		return b->err;
	/* RFC 8489 14.5: the header length already covers this attribute */
	const struct hmac_part parts[] = { { b->buf, start } };
	if ((rc = hmac_sha1(key, keylen, parts, 1, p)) < 0)
		b->err = rc;
	return rc;
}

int stun_build_fingerprint(struct stun_builder *b)
{
	size_t start = b->len;
	uint8_t *p = attr_begin(b, STUN_ATTR_FINGERPRINT, 4);
	if (!p)
		return b->err;
	put32(p, stun_crc32(b->buf, start) ^ STUN_FINGERPRINT_XOR);
	return 0;
}

int stun_build_finish(struct stun_builder *b)
{
	return b->err ? b->err : (int)b->len;
}

int stun_build_binding_request(uint8_t *buf, size_t cap, const uint8_t tid[STUN_TID_LEN],
			       const struct stun_request_opts *o)
{
	struct stun_builder b;
	static const struct stun_request_opts none;

	if (!o)
		o = &none;
	stun_build_init(&b, buf, cap, STUN_CLASS_REQUEST, STUN_METHOD_BINDING, tid);
	if (o->change_flags)
		stun_build_change_request(&b, o->change_flags);
	if (o->response_port)
		stun_build_response_port(&b, o->response_port);
	if (o->software)
		stun_build_software(&b, o->software);
	if (o->padding)
		stun_build_padding(&b, o->padding);
	if (o->fingerprint)
		stun_build_fingerprint(&b);
	return stun_build_finish(&b);
}

int stun_tid_random(uint8_t tid[STUN_TID_LEN])
{
	ssize_t n = getrandom(tid, STUN_TID_LEN, 0);
	if (n < 0)
		return -errno;
	return n == STUN_TID_LEN ? 0 : -EIO;
}
