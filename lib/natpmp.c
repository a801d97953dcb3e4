/* natpmp: RFC 6886 messages; see natpmp.h for the layouts. */
#include <errno.h>
#include <string.h>

#include "natpmp.h"

static const char *const result_names[] = {
	"Success", "Unsupported Version", "Not Authorized/Refused", "Network Failure",
	"Out of resources", "Unsupported opcode",
};

const char *natpmp_result_name(unsigned result)
{
	return result < sizeof(result_names) / sizeof(result_names[0]) ? result_names[result] : NULL;
}

const char *natpmp_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case NATPMP_E_SHORT: return "truncated";
	case NATPMP_E_LONG: return "longer than 1100 bytes";
	case NATPMP_E_PCP: return "version 2 (a PCP server)";
	case NATPMP_E_VERSION: return "unsupported version";
	case NATPMP_E_NOT_RESPONSE: return "not a response (opcode below 128)";
	case NATPMP_E_OPCODE: return "opcode does not match the request";
	case NATPMP_E_PORT: return "internal port does not match the request";
	case NATPMP_E_NOBUFS: return "buffer too small";
	}
	return err < 0 ? strerror(-err) : "unknown";
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

int natpmp_build(const struct natpmp_request *q, uint8_t *buf, size_t size)
{
	size_t len = q->opcode == NATPMP_OP_ADDRESS ? NATPMP_ADDR_REQ_LEN : NATPMP_MAP_REQ_LEN;

	if (q->opcode > NATPMP_OP_MAP_TCP)
		return -EINVAL;
	if (size < len)
		return NATPMP_E_NOBUFS;
	memset(buf, 0, len);
	buf[0] = NATPMP_VERSION;
	buf[1] = (uint8_t)q->opcode;
	if (q->opcode == NATPMP_OP_ADDRESS)
		return (int)len;
	put16(buf + 4, q->internal_port);
	put16(buf + 6, q->suggested_port);
	put16(buf + 8, (uint16_t)(q->lifetime >> 16));
	put16(buf + 10, (uint16_t)q->lifetime);
	return (int)len;
}

static int parse_body(const uint8_t *buf, size_t len, const struct natpmp_request *q,
		      struct natpmp_response *r)
{
	if (q->opcode == NATPMP_OP_ADDRESS) {
		if (len < NATPMP_ADDR_RESP_LEN)
			return NATPMP_E_SHORT;
		r->external.in.sin_family = AF_INET;
		memcpy(&r->external.in.sin_addr, buf + 8, 4);
	} else {
		if (len < NATPMP_MAP_RESP_LEN)
			return NATPMP_E_SHORT;
		r->internal_port = get16(buf + 8);
		r->external_port = get16(buf + 10);
		r->lifetime = get32(buf + 12);
		if (r->internal_port != q->internal_port)
			return NATPMP_E_PORT;
	}
	r->has_body = 1;
	return 0;
}

int natpmp_parse(const uint8_t *buf, size_t len, const struct natpmp_request *q,
		 struct natpmp_response *r)
{
	memset(r, 0, sizeof(*r));
	if (len > NATPMP_MAX_LEN)
		return NATPMP_E_LONG;
	if (len < 2)
		return NATPMP_E_SHORT;
	if (buf[0] == 2)
		return NATPMP_E_PCP;
	if (buf[0] != NATPMP_VERSION)
		return NATPMP_E_VERSION;
	if (buf[1] < NATPMP_RESPONSE)
		return NATPMP_E_NOT_RESPONSE;
	if (buf[1] != (NATPMP_RESPONSE | q->opcode))
		return NATPMP_E_OPCODE;
	if (len < NATPMP_ERR_LEN)
		return NATPMP_E_SHORT;
	r->opcode = q->opcode;
	r->result = get16(buf + 2);
	r->epoch = get32(buf + 4);
	/* 3.5: an error answer need carry no more than this */
	if (r->result != NATPMP_SUCCESS && len < (q->opcode == NATPMP_OP_ADDRESS ? NATPMP_ADDR_RESP_LEN
										  : NATPMP_MAP_RESP_LEN))
		return 0;
	return parse_body(buf, len, q, r);
}
