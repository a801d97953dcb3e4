/* pcp: the Port Control Protocol's messages (RFC 6887), ANNOUNCE and MAP,
 * encoded and decoded. Pure functions, no I/O: meshd's port mapping builds a
 * request here, sends it to the gateway's UDP port 5351, and hands back what
 * arrives, which pcp_parse() checks against that request (RFC 6887 8.3).
 *
 *  request header (7.1)                  response header (7.2)
 *  0       8       16              31    0       8       16      24      31
 *  +-------+-+-----+---------------+     +-------+-+-----+-------+-------+
 *  |vers=2 |R|opcod|   reserved    |     |vers=2 |R|opcod| resvd | result|
 *  +-------+-+-----+---------------+     +-------+-+-----+-------+-------+
 *  |   requested lifetime (32)     |     |           lifetime (32)       |
 *  +-------------------------------+     +-------------------------------+
 *  | client IP (128, v4-mapped)    |     |           epoch time (32)     |
 *  +-------------------------------+     +-------------------------------+
 *                                        |           reserved (96)       |
 *  MAP opcode data (11.1), both ways     +-------------------------------+
 *  | mapping nonce (96)                              |
 *  | protocol (8) | reserved (24)                    |
 *  | internal port (16) | suggested/assigned ext port (16)
 *  | suggested/assigned external IP (128, v4-mapped) |
 *  then options: code (8), reserved (8), length (16), data padded to 4. */
#ifndef NATMESH_PCP_H
#define NATMESH_PCP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum {
	PCP_PORT = 5351,		/* RFC 6887 19.1 */
	PCP_VERSION = 2,		/* RFC 6887 9 */
	PCP_MAX_LEN = 1100,		/* RFC 6887 7: no message is longer */
	PCP_HDR_LEN = 24,
	PCP_MAP_LEN = 36,		/* MAP opcode data */
	PCP_NONCE_LEN = 12,
	PCP_R_BIT = 0x80,
};

enum pcp_opcode {
	PCP_OP_ANNOUNCE = 0,		/* RFC 6887 14.1 */
	PCP_OP_MAP = 1,			/* RFC 6887 11 */
};

/* RFC 6887 7.4 */
enum pcp_result {
	PCP_SUCCESS = 0,
	PCP_UNSUPP_VERSION = 1,
	PCP_NOT_AUTHORIZED = 2,
	PCP_MALFORMED_REQUEST = 3,
	PCP_UNSUPP_OPCODE = 4,
	PCP_UNSUPP_OPTION = 5,
	PCP_MALFORMED_OPTION = 6,
	PCP_NETWORK_FAILURE = 7,
	PCP_NO_RESOURCES = 8,
	PCP_UNSUPP_PROTOCOL = 9,
	PCP_USER_EX_QUOTA = 10,
	PCP_CANNOT_PROVIDE_EXTERNAL = 11,
	PCP_ADDRESS_MISMATCH = 12,
	PCP_EXCESSIVE_REMOTE_PEERS = 13,
};

/* Why pcp_parse() refused a datagram; below -4095, apart from any -errno. */
enum pcp_error {
	PCP_E_SHORT = -5101,		/* shorter than its header or opcode data */
	PCP_E_LONG = -5102,		/* longer than 1100 bytes */
	PCP_E_ALIGN = -5103,		/* length not a multiple of 4 */
	PCP_E_NATPMP = -5104,		/* version 0: a NAT-PMP server (RFC 6887 9) */
	PCP_E_VERSION = -5105,		/* a version other than 2 or 0 */
	PCP_E_NOT_RESPONSE = -5106,	/* R bit clear */
	PCP_E_OPCODE = -5107,		/* not the opcode that was asked */
	PCP_E_NONCE = -5108,		/* MAP: not the nonce that was sent */
	PCP_E_MAP_MISMATCH = -5109,	/* MAP: another protocol or internal port */
	PCP_E_OPTION = -5110,		/* an option runs past the end */
	PCP_E_NOBUFS = -5111,		/* pcp_build: buffer too small */
};

/* "SUCCESS", "UNSUPP_VERSION", ... (RFC 6887 7.4); NULL past 13 */
const char *pcp_result_name(unsigned result);
/* a short reason for a pcp_error or a -errno */
const char *pcp_strerror(int err);

struct pcp_request {
	enum pcp_opcode opcode;
	uint32_t lifetime;		/* seconds; 0 deletes (MAP) */
	union sockaddr_any client;	/* the client's own IP (port unused) */
	/* MAP only */
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol;		/* IPPROTO_UDP, ... */
	uint16_t internal_port;
	union sockaddr_any suggested;	/* AF_UNSPEC: all zeros, any address and port */
};

struct pcp_response {
	uint8_t version;
	enum pcp_opcode opcode;
	uint8_t result;
	uint32_t lifetime;
	uint32_t epoch;			/* seconds since the server's state began (8.5) */
	/* MAP; has_map false for an error answer of only a header */
	int has_map;
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol;
	uint16_t internal_port;
	union sockaddr_any external;	/* assigned address and port; IPv4 unmapped */
};

/* the request into buf; its length, or PCP_E_NOBUFS / -EINVAL */
int pcp_build(const struct pcp_request *q, uint8_t *buf, size_t size);
/* checks a datagram from the server against the request q that was sent
 * (RFC 6887 8.3, 11.4): 0 and *r filled, or a pcp_error. A non-SUCCESS result
 * is a parsed answer (0): the caller reads r->result. */
int pcp_parse(const uint8_t *buf, size_t len, const struct pcp_request *q, struct pcp_response *r);

#endif
