/* stun: a sans-I/O STUN codec (RFC 8489) with the NAT behaviour discovery
 * attributes of RFC 5780, the server's answer to a Binding request, and a
 * client transaction with RFC 8489 retransmissions. Nothing here touches a
 * socket or a clock: callers pass bytes, addresses and now_ms, and get bytes to
 * send and the next deadline back. meshstun, natcheck and meshd build on it.
 *
 *   parse:   stun_parse(buf, len, &msg)         -> struct stun_msg (zero-copy)
 *   build:   stun_build_binding_request(...)     (CHANGE-REQUEST, RESPONSE-PORT,
 *            PADDING, SOFTWARE, FINGERPRINT)     or stun_build_* attribute by attribute
 *   serve:   stun_server_answer(...)             -> response bytes and which of
 *                                                   the server's 4 sockets sends them
 *   client:  stun_txn_start / stun_txn_poll / stun_txn_match
 *
 * A datagram is parsed once (STYLE.md 14): whoever reads it from the socket
 * calls stun_parse() and hands the struct stun_msg to its owner, found by
 * transaction id; stun_txn_match(), stun_server_answer_msg() and
 * natdisc_receive_msg() take the parsed message, never the bytes again.
 */
#ifndef NATMESH_STUN_H
#define NATMESH_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* RFC 8489 section 5 */
#define STUN_HEADER_LEN		20
#define STUN_MAGIC_COOKIE	0x2112A442u
#define STUN_TID_LEN		12
/* RFC 8489 section 14.7: FINGERPRINT is CRC-32 XOR 0x5354554e ("STUN") */
#define STUN_FINGERPRINT_XOR	0x5354554eu
/* RFC 8489 14.5: MESSAGE-INTEGRITY holds an HMAC-SHA1 */
#define STUN_HMAC_LEN		20
/* attributes kept per parsed message; more is rejected (STUN_E_TOO_MANY) */
#define STUN_MAX_ATTRS		32
/* unknown comprehension-required types remembered for a 420 answer */
#define STUN_MAX_UNKNOWN	8
/* RFC 8489 section 14.9: SOFTWARE is < 128 characters, at most 763 bytes */
#define STUN_SOFTWARE_MAX	763
/* RFC 8489 section 14.8: reason phrase < 128 characters, at most 763 bytes */
#define STUN_REASON_MAX		763

enum stun_class {
	STUN_CLASS_REQUEST = 0,
	STUN_CLASS_INDICATION = 1,
	STUN_CLASS_SUCCESS = 2,
	STUN_CLASS_ERROR = 3,
};

enum stun_method {
	STUN_METHOD_BINDING = 0x001,
};

/* Attribute types (IANA STUN registry). 0x0000-0x7FFF are
 * comprehension-required, 0x8000-0xFFFF comprehension-optional. */
enum stun_attr_type {
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,	/* RFC 8489 14.1 */
	STUN_ATTR_CHANGE_REQUEST = 0x0003,	/* RFC 5780 7.2 */
	STUN_ATTR_USERNAME = 0x0006,		/* RFC 8489 14.3 */
	STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,	/* RFC 8489 14.5 */
	STUN_ATTR_ERROR_CODE = 0x0009,		/* RFC 8489 14.8 */
	STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,	/* RFC 8489 14.13 */
	STUN_ATTR_REALM = 0x0014,		/* RFC 8489 14.9 */
	STUN_ATTR_NONCE = 0x0015,		/* RFC 8489 14.10 */
	STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C, /* RFC 8489 14.6 */
	STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,	/* RFC 8489 14.12 */
	STUN_ATTR_USERHASH = 0x001E,		/* RFC 8489 14.4 */
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,	/* RFC 8489 14.2 */
	STUN_ATTR_PRIORITY = 0x0024,		/* RFC 8445 7.1.1 (ICE) */
	STUN_ATTR_USE_CANDIDATE = 0x0025,	/* RFC 8445 7.1.2 (ICE) */
	STUN_ATTR_PADDING = 0x0026,		/* RFC 5780 7.6 */
	STUN_ATTR_RESPONSE_PORT = 0x0027,	/* RFC 5780 7.5 */
	STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002,	/* RFC 8489 14.11 */
	STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,	/* RFC 8489 14.16 */
	STUN_ATTR_SOFTWARE = 0x8022,		/* RFC 8489 14.14 */
	STUN_ATTR_ALTERNATE_SERVER = 0x8023,	/* RFC 8489 14.15 */
	STUN_ATTR_FINGERPRINT = 0x8028,		/* RFC 8489 14.7 */
	STUN_ATTR_ICE_CONTROLLED = 0x8029,	/* RFC 8445 7.1.3 (ICE) */
	STUN_ATTR_ICE_CONTROLLING = 0x802A,	/* RFC 8445 7.1.3 (ICE) */
	STUN_ATTR_RESPONSE_ORIGIN = 0x802B,	/* RFC 5780 7.3 */
	STUN_ATTR_OTHER_ADDRESS = 0x802C,	/* RFC 5780 7.4 */
};

/* CHANGE-REQUEST flags, RFC 5780 7.2 */
enum {
	STUN_CHANGE_PORT = 0x02,
	STUN_CHANGE_IP = 0x04,
};

/* Error codes of ERROR-CODE, RFC 8489 14.8 and RFC 5780 6.1 */
enum {
	STUN_ERROR_BAD_REQUEST = 400,
	STUN_ERROR_UNKNOWN_ATTRIBUTE = 420,
	STUN_ERROR_SERVER_ERROR = 500,
};

/* Why stun_parse() (or stun_txn_receive()) rejected a message: each kind of
 * malformation has its own code, so tests and counters can tell them apart.
 * They are negative and below -4095, so they never collide with a -errno;
 * stun_strerror() names both. */
enum stun_error {
	STUN_E_SHORT = -5001,		/* fewer than 20 bytes: no full header */
	STUN_E_NOT_STUN = -5002,	/* first two bits are not 0 */
	STUN_E_COOKIE = -5003,		/* magic cookie is not 0x2112A442 */
	STUN_E_LEN_ALIGN = -5004,	/* message length not a multiple of 4 */
	STUN_E_LEN_MISMATCH = -5005,	/* message length != datagram length - 20 */
	STUN_E_ATTR_TRUNC = -5006,	/* an attribute (header or value) runs past the end */
	STUN_E_ATTR_DUP = -5007,	/* the same attribute type twice */
	STUN_E_TOO_MANY = -5008,	/* more than STUN_MAX_ATTRS attributes */
	STUN_E_ATTR_LEN = -5009,	/* a known attribute with a wrong value length */
	STUN_E_ADDR_FAMILY = -5010,	/* an address attribute with a family not 1 or 2 */
	STUN_E_ERROR_CODE = -5011,	/* ERROR-CODE class outside 3..6 or number > 99 */
	STUN_E_FINGERPRINT = -5012,	/* FINGERPRINT does not match the CRC */
	STUN_E_FP_NOT_LAST = -5013,	/* an attribute after FINGERPRINT */
	STUN_E_AFTER_INTEGRITY = -5014,	/* an attribute other than FINGERPRINT after MESSAGE-INTEGRITY */
	STUN_E_INTEGRITY = -5015,	/* MESSAGE-INTEGRITY absent or wrong (stun_check_integrity) */
	STUN_E_CLASS = -5016,		/* an error response without ERROR-CODE */
	STUN_E_NOBUFS = -5017,		/* the output buffer is too small (builders) */
	STUN_E_TXN = -5018,		/* not this transaction's response (stun_txn_receive) */
};

/* a short name ("attribute past end") for a stun_error or a -errno */
const char *stun_strerror(int err);

/* One attribute as it is on the wire; value points into the parsed buffer. */
struct stun_attr {
	uint16_t type;
	uint16_t len;		/* value length without padding */
	uint16_t offset;	/* of the attribute header from the message start */
	const uint8_t *value;
};

/* A parsed message. Pointers (attrs[].value, software, reason) point into the
 * buffer given to stun_parse() and live as long as it. The has_* flags say
 * which of the decoded fields are set. */
struct stun_msg {
	enum stun_class cls;
	uint16_t method;
	uint8_t tid[STUN_TID_LEN];
	uint16_t length;		/* header's message length: bytes after the header */

	int nattrs;
	struct stun_attr attrs[STUN_MAX_ATTRS];

	/* comprehension-required types this codec does not know, in order
	 * (a server answers 420 listing them; RFC 8489 7.3.1) */
	int nunknown;
	uint16_t unknown[STUN_MAX_UNKNOWN];

	bool has_mapped, has_xor_mapped, has_other_address, has_response_origin;
	bool has_change_request, has_response_port, has_padding;
	bool has_software, has_error, has_unknown_attributes;
	bool has_fingerprint, has_integrity;

	union sockaddr_any mapped;		/* MAPPED-ADDRESS */
	union sockaddr_any xor_mapped;		/* XOR-MAPPED-ADDRESS, un-XORed */
	union sockaddr_any other_address;	/* OTHER-ADDRESS (RFC 5780) */
	union sockaddr_any response_origin;	/* RESPONSE-ORIGIN (RFC 5780) */
	uint32_t change_flags;			/* STUN_CHANGE_IP | STUN_CHANGE_PORT */
	uint16_t response_port;			/* RESPONSE-PORT */
	uint16_t padding_len;			/* PADDING value length */

	const char *software;			/* SOFTWARE, not NUL-terminated */
	uint16_t software_len;

	int error_code;				/* ERROR-CODE: 300..699 */
	const char *reason;			/* its reason phrase, not NUL-terminated */
	uint16_t reason_len;

	/* UNKNOWN-ATTRIBUTES listed by the peer (in a 420 response) */
	int nunknown_listed;
	uint16_t unknown_listed[STUN_MAX_UNKNOWN];

	uint16_t integrity_offset;		/* MESSAGE-INTEGRITY attribute offset, if has_integrity */
};

/* Cheap demultiplexing test (RFC 8489 section 5, RFC 7983): at least a
 * header, the first two bits 0 and the magic cookie in place. WireGuard
 * messages (type 1..4, then three zero bytes) never carry the cookie there. */
static inline bool stun_is_stun(const uint8_t *buf, size_t len)
{
	return len >= STUN_HEADER_LEN && (buf[0] & 0xC0) == 0 &&
	       buf[4] == 0x21 && buf[5] == 0x12 && buf[6] == 0xA4 && buf[7] == 0x42;
}

/* Parse and validate a whole message (header, attribute framing, known
 * attribute values, duplicates, MESSAGE-INTEGRITY/FINGERPRINT order, the
 * FINGERPRINT CRC when present). 0, or a stun_error; *msg is then undefined.
 * Unknown attributes are not an error here: see msg->unknown. */
int stun_parse(const uint8_t *buf, size_t len, struct stun_msg *msg);

/* the class and method of a message type (RFC 8489 5: the class bits C1 and
 * C0 sit between the method bits); the one place that decodes them */
void stun_type_decode(uint16_t type, enum stun_class *cls, uint16_t *method);

/* the attribute of that type, or NULL */
const struct stun_attr *stun_msg_attr(const struct stun_msg *msg, uint16_t type);

/* RFC 8489 14.5 short-term credential check: HMAC-SHA1 keyed with key over
 * the message up to MESSAGE-INTEGRITY. 0 or STUN_E_INTEGRITY. buf and len are
 * those given to stun_parse(). */
int stun_check_integrity(const uint8_t *buf, size_t len, const struct stun_msg *msg,
			 const uint8_t *key, size_t keylen);

/* CRC-32 (ISO-HDLC, zlib's crc32) used by FINGERPRINT, before the XOR */
uint32_t stun_crc32(const uint8_t *buf, size_t len);

/* --- building ------------------------------------------------------------
 * A builder writes into a caller's buffer of cap bytes. Every stun_build_*
 * call returns 0 or STUN_E_NOBUFS (stun_build_integrity also -ENOMEM, when
 * libcrypto cannot set up the HMAC); the first error sticks in b->err and makes
 * the later calls no-ops, so a sequence can be checked once at finish.
 * Attributes go in call order; integrity and fingerprint must come last. */
struct stun_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint8_t pad;	/* byte used for attribute padding (0; RFC 5769 uses 0x20) */
	int err;
};

int stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap,
		    enum stun_class cls, uint16_t method, const uint8_t tid[STUN_TID_LEN]);
int stun_build_attr(struct stun_builder *b, uint16_t type, const void *value, size_t len);
/* MAPPED-ADDRESS, OTHER-ADDRESS, RESPONSE-ORIGIN (plain address encoding) */
int stun_build_addr(struct stun_builder *b, uint16_t type, const union sockaddr_any *a);
/* XOR-MAPPED-ADDRESS (XORed with the cookie and, for IPv6, the tid) */
int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const union sockaddr_any *a);
int stun_build_software(struct stun_builder *b, const char *software);
/* ERROR-CODE with code 300..699 and reason (NULL: the standard phrase) */
int stun_build_error(struct stun_builder *b, int code, const char *reason);
int stun_build_unknown_attributes(struct stun_builder *b, const uint16_t *types, int n);
int stun_build_change_request(struct stun_builder *b, uint32_t flags);
int stun_build_response_port(struct stun_builder *b, uint16_t port);
/* PADDING of len bytes (rounded up to 4 on the wire) */
int stun_build_padding(struct stun_builder *b, size_t len);
/* MESSAGE-INTEGRITY (HMAC-SHA1, short-term key) over what is built so far */
int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen);
int stun_build_fingerprint(struct stun_builder *b);
/* the message length in bytes, or b->err */
int stun_build_finish(struct stun_builder *b);

/* A Binding request in one call. change_flags 0 and response_port 0 leave
 * those attributes out; padding 0 leaves PADDING out; software NULL leaves
 * SOFTWARE out. Returns the length or a stun_error. */
struct stun_request_opts {
	uint32_t change_flags;		/* STUN_CHANGE_IP | STUN_CHANGE_PORT */
	uint16_t response_port;		/* RESPONSE-PORT */
	uint16_t padding;		/* PADDING value length */
	const char *software;
	bool fingerprint;
};
int stun_build_binding_request(uint8_t *buf, size_t cap, const uint8_t tid[STUN_TID_LEN],
			       const struct stun_request_opts *opts);

/* 12 random bytes (getrandom); 0 or -errno */
int stun_tid_random(uint8_t tid[STUN_TID_LEN]);

/* --- serving (RFC 8489 section 6.3, RFC 5780 section 6.1) -----------------
 * A server listens on up to four addresses, indexed [ip][port]: [0][0] is the
 * primary, [1][*] the alternate IP, [*][1] the alternate port (port + 1).
 * Without RFC 5780 only [0][0] is used. */
enum { STUN_SRV_IPS = 2, STUN_SRV_PORTS = 2 };

struct stun_server_cfg {
	bool rfc5780;		/* serve OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST */
	union sockaddr_any addrs[STUN_SRV_IPS][STUN_SRV_PORTS];
	const char *software;	/* NULL: no SOFTWARE */
	uint16_t max_padding;	/* largest PADDING echoed in a response */
};

/* What the server does with one datagram. */
enum stun_server_verdict {
	STUN_SRV_DROP,		/* malformed or not a request: count it, send nothing */
	STUN_SRV_REPLY,		/* send out[0..len) from socket [ip][port] to dst */
};

struct stun_server_reply {
	enum stun_server_verdict verdict;
	int err;			/* DROP: the stun_error, or 0 for an ignored valid message */
	size_t len;
	int ip, port;			/* index of the sending socket */
	union sockaddr_any dst;
	bool is_error;			/* the reply is an error response (400, 420) */
};

/* Answer one message that arrived on socket [ip][port] from src (the _msg
 * form takes it parsed; stun_server_answer parses the datagram first). Binding
 * requests get XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, (RFC 5780) OTHER-ADDRESS
 * and RESPONSE-ORIGIN, SOFTWARE and FINGERPRINT; unknown comprehension-required
 * attributes get 420 with UNKNOWN-ATTRIBUTES. Returns 0 (see r->verdict) or
 * -EINVAL for a bad cfg/index. */
int stun_server_answer_msg(const struct stun_server_cfg *cfg, int ip, int port,
			   const union sockaddr_any *src, const struct stun_msg *msg,
			   uint8_t *out, size_t cap, struct stun_server_reply *r);
int stun_server_answer(const struct stun_server_cfg *cfg, int ip, int port,
		       const union sockaddr_any *src, const uint8_t *req, size_t req_len,
		       uint8_t *out, size_t cap, struct stun_server_reply *r);

/* --- client transaction (RFC 8489 section 6.2.1) --------------------------
 * Over UDP a request is sent at 0, RTO, 3 RTO, 7 RTO, ... (RTO doubling) up to
 * Rc transmissions; after the last one the client waits Rm * RTO before the
 * transaction times out. With the defaults (500 ms, Rc 7, Rm 16) that is sends
 * at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s and a timeout at 39.5 s. */
enum {
	STUN_RTO_DEFAULT_MS = 500,
	STUN_RC_DEFAULT = 7,
	STUN_RM_DEFAULT = 16,
	STUN_TXN_BUF = 2048,	/* largest request a transaction keeps */
};

enum stun_txn_state {
	STUN_TXN_IDLE,		/* nothing started */
	STUN_TXN_WAITING,	/* request sent (or due), waiting for the answer */
	STUN_TXN_DONE,		/* a success or error response arrived */
	STUN_TXN_TIMEOUT,	/* Rc transmissions and Rm * RTO without an answer */
};

struct stun_txn_cfg {
	uint32_t rto_ms;	/* initial RTO; 0: STUN_RTO_DEFAULT_MS */
	uint32_t rc;		/* transmissions; 0: STUN_RC_DEFAULT */
	uint32_t rm;		/* last wait, in RTOs; 0: STUN_RM_DEFAULT */
};

struct stun_txn {
	enum stun_txn_state state;
	struct stun_txn_cfg cfg;
	uint8_t tid[STUN_TID_LEN];
	uint16_t method;	/* of the request; the response must carry it */
	uint8_t req[STUN_TXN_BUF];
	size_t req_len;
	uint32_t sent;		/* transmissions so far */
	uint32_t rto;		/* the current RTO, doubled per retransmission */
	uint64_t start_ms;
	uint64_t deadline;	/* next send, or the timeout once sent == rc */
	uint64_t rtt_ms;	/* DONE: now - time of the first transmission */
};

void stun_txn_init(struct stun_txn *t, const struct stun_txn_cfg *cfg);
/* IDLE -> WAITING with a copy of the request (its tid is the transaction's);
 * the first transmission is due at now_ms. 0, -EINVAL, -EALREADY or STUN_E_NOBUFS. */
int stun_txn_start(struct stun_txn *t, const uint8_t *req, size_t len, uint64_t now_ms);
/* Call when now_ms >= the deadline (calling earlier is harmless). Returns 1
 * and sets *out and *out_len when the request is to be sent now, 0 when there is
 * nothing to send (state may have become TIMEOUT). */
int stun_txn_poll(struct stun_txn *t, uint64_t now_ms, const uint8_t **out, size_t *out_len);
/* when stun_txn_poll wants to be called next; UINT64_MAX when not WAITING */
uint64_t stun_txn_deadline(const struct stun_txn *t);
/* Offer a parsed message. 0 when it is this transaction's response (state
 * DONE, rtt_ms set); STUN_E_TXN when it is not (another transaction id, a
 * request or indication, another method, or the transaction is not WAITING). */
int stun_txn_match(struct stun_txn *t, const struct stun_msg *msg, uint64_t now_ms);
/* stun_parse() then stun_txn_match(), for a caller that owns the bytes alone:
 * another stun_error when they are malformed. */
int stun_txn_receive(struct stun_txn *t, const uint8_t *buf, size_t len, uint64_t now_ms,
		     struct stun_msg *msg);

#endif
