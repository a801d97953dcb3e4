/* natpmp: NAT Port Mapping Protocol messages (RFC 6886), encoded and
 * decoded. Pure functions, no I/O; the gateway's UDP port 5351 is shared with
 * PCP, and the version byte tells them apart (0 here, 2 for PCP).
 *
 *  public address request (3.2)     public address response (3.2)
 *  | vers=0 | op=0 |                 | vers=0 | op=128 | result (16)   |
 *                                    | seconds since start of epoch (32)|
 *                                    | external IPv4 address (32)       |
 *
 *  map request (3.3)                          map response (3.3)
 *  | vers=0 | op=1 UDP, 2 TCP | reserved (16) | | vers=0 | op=128+op | result (16) |
 *  | internal port (16) | suggested ext port  | | seconds since start of epoch (32)|
 *  | requested lifetime (32)                  | | internal port | mapped ext port  |
 *                                               | granted lifetime (32)            |
 * An error answer may be only its first 8 bytes (3.5). */
#ifndef NATMESH_NATPMP_H
#define NATMESH_NATPMP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum {
	NATPMP_PORT = 5351,		/* RFC 6886 3 */
	NATPMP_VERSION = 0,
	NATPMP_MAX_LEN = 1100,		/* PCP's limit on the shared port */
	NATPMP_ADDR_REQ_LEN = 2,
	NATPMP_ADDR_RESP_LEN = 12,
	NATPMP_MAP_REQ_LEN = 12,
	NATPMP_MAP_RESP_LEN = 16,
	NATPMP_ERR_LEN = 8,
	NATPMP_RESPONSE = 128,		/* opcode bit of a response */
};

enum natpmp_opcode {
	NATPMP_OP_ADDRESS = 0,
	NATPMP_OP_MAP_UDP = 1,
	NATPMP_OP_MAP_TCP = 2,
};

/* RFC 6886 3.5 */
enum natpmp_result {
	NATPMP_SUCCESS = 0,
	NATPMP_UNSUPP_VERSION = 1,
	NATPMP_NOT_AUTHORIZED = 2,	/* "Not Authorized/Refused" */
	NATPMP_NETWORK_FAILURE = 3,
	NATPMP_OUT_OF_RESOURCES = 4,
	NATPMP_UNSUPP_OPCODE = 5,
};

/* Why natpmp_parse() refused a datagram; apart from any -errno. */
enum natpmp_error {
	NATPMP_E_SHORT = -5201,		/* shorter than its layout */
	NATPMP_E_LONG = -5202,		/* longer than 1100 bytes */
	NATPMP_E_PCP = -5203,		/* version 2: a PCP server */
	NATPMP_E_VERSION = -5204,	/* another version */
	NATPMP_E_NOT_RESPONSE = -5205,	/* opcode below 128 */
	NATPMP_E_OPCODE = -5206,	/* not the answer to the request's opcode */
	NATPMP_E_PORT = -5207,		/* map: another internal port */
	NATPMP_E_NOBUFS = -5208,	/* natpmp_build: buffer too small */
};

/* "Success", "Unsupported Version", ... (RFC 6886 3.5); NULL past 5 */
const char *natpmp_result_name(unsigned result);
const char *natpmp_strerror(int err);

struct natpmp_request {
	enum natpmp_opcode opcode;
	/* map only */
	uint16_t internal_port;
	uint16_t suggested_port;
	uint32_t lifetime;		/* seconds; 0 deletes */
};

struct natpmp_response {
	enum natpmp_opcode opcode;	/* without the response bit */
	uint16_t result;
	uint32_t epoch;			/* seconds since start of epoch (3.6) */
	int has_body;			/* false for an 8-byte error answer */
	union sockaddr_any external;	/* address: AF_INET, port 0 */
	uint16_t internal_port, external_port;
	uint32_t lifetime;
};

/* the request into buf; its length, or NATPMP_E_NOBUFS / -EINVAL */
int natpmp_build(const struct natpmp_request *q, uint8_t *buf, size_t size);
/* checks a datagram from the gateway against the request q: 0 and *r, or a
 * natpmp_error. A non-zero result is a parsed answer: read r->result. */
int natpmp_parse(const uint8_t *buf, size_t len, const struct natpmp_request *q,
		 struct natpmp_response *r);

#endif
