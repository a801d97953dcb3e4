/* pcp: RFC 6887 messages; see pcp.h for the layouts. */
#include <errno.h>
#include <string.h>

#include "pcp.h"

static const char *const result_names[] = {
	"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST",
	"UNSUPP_OPCODE", "UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE",
	"NO_RESOURCES", "UNSUPP_PROTOCOL", "USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL",
	"ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
};

const char *pcp_result_name(unsigned result)
{
	return result < sizeof(result_names) / sizeof(result_names[0]) ? result_names[result] : NULL;
}

const char *pcp_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case PCP_E_SHORT: return "truncated";
	case PCP_E_LONG: return "longer than 1100 bytes";
	case PCP_E_ALIGN: return "length not a multiple of 4";
	case PCP_E_NATPMP: return "version 0 (a NAT-PMP server)";
	case PCP_E_VERSION: return "unsupported version";
	case PCP_E_NOT_RESPONSE: return "not a response (R bit clear)";
	case PCP_E_OPCODE: return "opcode does not match the request";
	case PCP_E_NONCE: return "mapping nonce does not match the request";
	case PCP_E_MAP_MISMATCH: return "protocol or internal port does not match the request";
	case PCP_E_OPTION: return "option runs past the end";
	case PCP_E_NOBUFS: return "buffer too small";
	}
	return err < 0 ? strerror(-err) : "unknown";
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* RFC 6887 5: IPv4 addresses travel as IPv4-mapped IPv6 (::ffff:a.b.c.d) */
static int put_ip(uint8_t *p, const union sockaddr_any *a)
{
	memset(p, 0, 16);
	switch (a->sa.sa_family) {
	case AF_UNSPEC:
		return 0;
	case AF_INET:
		p[10] = p[11] = 0xff;
		memcpy(p + 12, &a->in.sin_addr, 4);
		return 0;
	case AF_INET6:
		memcpy(p, &a->in6.sin6_addr, 16);
		return 0;
	}
	return -EINVAL;
}

static void get_ip(const uint8_t *p, uint16_t port, union sockaddr_any *a)
{
	memset(a, 0, sizeof(*a));
	a->in6.sin6_family = AF_INET6;
	memcpy(&a->in6.sin6_addr, p, 16);
	a->in6.sin6_port = htons(port);
	addr_unmap_v4(a);
}

int pcp_build(const struct pcp_request *q, uint8_t *buf, size_t size)
{
	size_t len = PCP_HDR_LEN + (q->opcode == PCP_OP_MAP ? PCP_MAP_LEN : 0);
	uint8_t *m = buf + PCP_HDR_LEN;

	if (q->opcode != PCP_OP_MAP && q->opcode != PCP_OP_ANNOUNCE)
		return -EINVAL;
	if (size < len)
		return PCP_E_NOBUFS;
	memset(buf, 0, len);
	buf[0] = PCP_VERSION;
	buf[1] = (uint8_t)q->opcode;	/* R = 0: a request */
	put32(buf + 4, q->lifetime);
	if (put_ip(buf + 8, &q->client) != 0 || q->client.sa.sa_family == AF_UNSPEC)
		return -EINVAL;
	if (q->opcode != PCP_OP_MAP)
		return (int)len;
	memcpy(m, q->nonce, PCP_NONCE_LEN);
	m[12] = q->protocol;
	put16(m + 16, q->internal_port);
	if (q->suggested.sa.sa_family != AF_UNSPEC)
		put16(m + 18, addr_port(&q->suggested));
	if (put_ip(m + 20, &q->suggested) != 0)
		return -EINVAL;
	return (int)len;
}

/* RFC 6887 7.3: each option's header and padded data must lie inside */
static int check_options(const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t olen;

		if (len < 4)
			return PCP_E_OPTION;
		olen = 4 + (((size_t)get16(p + 2) + 3) & ~(size_t)3);
		if (olen > len)
			return PCP_E_OPTION;
		p += olen;
		len -= olen;
	}
	return 0;
}

static int parse_map(const uint8_t *m, size_t len, const struct pcp_request *q, struct pcp_response *r)
{
	if (len < PCP_MAP_LEN)
		return PCP_E_SHORT;
	if (memcmp(m, q->nonce, PCP_NONCE_LEN) != 0)
		return PCP_E_NONCE;
	r->has_map = 1;
	memcpy(r->nonce, m, PCP_NONCE_LEN);
	r->protocol = m[12];
	r->internal_port = get16(m + 16);
	if (r->protocol != q->protocol || r->internal_port != q->internal_port)
		return PCP_E_MAP_MISMATCH;
	get_ip(m + 20, get16(m + 18), &r->external);
	return check_options(m + PCP_MAP_LEN, len - PCP_MAP_LEN);
}

int pcp_parse(const uint8_t *buf, size_t len, const struct pcp_request *q, struct pcp_response *r)
{
	memset(r, 0, sizeof(*r));
	if (len > PCP_MAX_LEN)
		return PCP_E_LONG;
	if (len < 4)
		return PCP_E_SHORT;
	r->version = buf[0];
	/* RFC 6887 9: a NAT-PMP server answers version 2 with its version 0 and
	 * UNSUPP_VERSION, in NAT-PMP's 8-byte layout */
	if (buf[0] == 0)
		return PCP_E_NATPMP;
	if (buf[0] != PCP_VERSION)
		return PCP_E_VERSION;
	if (!(buf[1] & PCP_R_BIT))
		return PCP_E_NOT_RESPONSE;
	if (len % 4)
		return PCP_E_ALIGN;
	if (len < PCP_HDR_LEN)
		return PCP_E_SHORT;
	r->opcode = buf[1] & 0x7f;
	if (r->opcode != q->opcode)
		return PCP_E_OPCODE;
	r->result = buf[3];
	r->lifetime = get32(buf + 4);
	r->epoch = get32(buf + 8);
	if (r->opcode != PCP_OP_MAP)
		return check_options(buf + PCP_HDR_LEN, len - PCP_HDR_LEN);
	/* 7.2: an error answer to a request the server could not read may be a
	 * bare header */
	if (len == PCP_HDR_LEN && r->result != PCP_SUCCESS)
		return 0;
	return parse_map(buf + PCP_HDR_LEN, len - PCP_HDR_LEN, q, r);
}
