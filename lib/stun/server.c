/* The answer of a STUN server to one datagram (RFC 8489 section 6.3, RFC 5780
 * section 6.1), without I/O: meshstun receives, calls stun_server_answer(),
 * and sends what it says from the socket it names. */
#include "stun/stun.h"

#include <errno.h>
#include <string.h>

static int error_reply(const struct stun_server_cfg *cfg, const struct stun_msg *req,
		       int code, const uint16_t *unknown, int nunknown,
		       uint8_t *out, size_t cap, struct stun_server_reply *r)
{
	struct stun_builder b;

	stun_build_init(&b, out, cap, STUN_CLASS_ERROR, req->method, req->tid);
	stun_build_error(&b, code, NULL);
	if (code == STUN_ERROR_UNKNOWN_ATTRIBUTE)
		stun_build_unknown_attributes(&b, unknown, nunknown);
	if (cfg->software)
		stun_build_software(&b, cfg->software);
	stun_build_fingerprint(&b);
	int n = stun_build_finish(&b);
	if (n < 0) {
		r->err = n;
		return 0;
	}
	r->verdict = STUN_SRV_REPLY;
	r->is_error = true;
	r->len = (size_t)n;
	return 0;
}

/* r says DROP until an answer is built; -EINVAL for a bad cfg or index */
static int drop_init(const struct stun_server_cfg *cfg, int ip, int port, struct stun_server_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = STUN_SRV_DROP;
	if (ip < 0 || ip >= STUN_SRV_IPS || port < 0 || port >= STUN_SRV_PORTS ||
	    (!cfg->rfc5780 && (ip || port)))
		return -EINVAL;
	return 0;
}

int stun_server_answer(const struct stun_server_cfg *cfg, int ip, int port,
		       const union sockaddr_any *src, const uint8_t *req, size_t req_len,
		       uint8_t *out, size_t cap, struct stun_server_reply *r)
{
	struct stun_msg m;
	int rc = stun_parse(req, req_len, &m);

	if (rc == 0)
		return stun_server_answer_msg(cfg, ip, port, src, &m, out, cap, r);
	if (drop_init(cfg, ip, port, r) < 0)
		return -EINVAL;
	r->err = rc;
	return 0;
}

int stun_server_answer_msg(const struct stun_server_cfg *cfg, int ip, int port,
			   const union sockaddr_any *src, const struct stun_msg *m,
			   uint8_t *out, size_t cap, struct stun_server_reply *r)
{
	struct stun_builder b;
	union sockaddr_any mapped;
	int rc;

	if (drop_init(cfg, ip, port, r) < 0)
		return -EINVAL;
	/* RFC 8489 6.3: indications and responses get no answer */
	if (m->cls != STUN_CLASS_REQUEST)
		return 0;
	r->ip = ip;
	r->port = port;
	r->dst = *src;

	if (m->method != STUN_METHOD_BINDING)
		return error_reply(cfg, m, STUN_ERROR_BAD_REQUEST, NULL, 0, out, cap, r);

	/* RFC 8489 6.3.1.1: unknown comprehension-required attributes -> 420.
	 * RFC 5780 6: a server without the alternate address answers 420 to
	 * CHANGE-REQUEST; likewise it does not understand RESPONSE-PORT. */
	uint16_t unknown[STUN_MAX_UNKNOWN + 2];
	int nunknown = m->nunknown;
	memcpy(unknown, m->unknown, sizeof(m->unknown[0]) * (size_t)m->nunknown);
	if (!cfg->rfc5780 && m->has_change_request)
		unknown[nunknown++] = STUN_ATTR_CHANGE_REQUEST;
	if (!cfg->rfc5780 && m->has_response_port)
		unknown[nunknown++] = STUN_ATTR_RESPONSE_PORT;
	if (nunknown)
		return error_reply(cfg, m, STUN_ERROR_UNKNOWN_ATTRIBUTE, unknown, nunknown, out, cap, r);

	/* RFC 5780 6.1: PADDING together with RESPONSE-PORT is a 400 */
	if (m->has_padding && m->has_response_port)
		return error_reply(cfg, m, STUN_ERROR_BAD_REQUEST, NULL, 0, out, cap, r);
	if (m->has_response_port && m->response_port == 0)
		return error_reply(cfg, m, STUN_ERROR_BAD_REQUEST, NULL, 0, out, cap, r);

	/* RFC 5780 6.1 table 1: the source of the response */
	int sip = ip, sport = port;
	if (m->change_flags & STUN_CHANGE_IP)
		sip ^= 1;
	if (m->change_flags & STUN_CHANGE_PORT)
		sport ^= 1;

	mapped = *src;
	addr_unmap_v4(&mapped);
	stun_build_init(&b, out, cap, STUN_CLASS_SUCCESS, m->method, m->tid);
	stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &mapped);
	/* RFC 5780 6.1: both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS (RFC 3489 clients) */
	stun_build_addr(&b, STUN_ATTR_MAPPED_ADDRESS, &mapped);
	if (cfg->rfc5780) {
		stun_build_addr(&b, STUN_ATTR_RESPONSE_ORIGIN, &cfg->addrs[sip][sport]);
		stun_build_addr(&b, STUN_ATTR_OTHER_ADDRESS, &cfg->addrs[ip ^ 1][port ^ 1]);
	}
	if (cfg->software)
		stun_build_software(&b, cfg->software);
	/* RFC 5780 6.1 asks for PADDING up to the MTU; echoing the request's
	 * own length (capped) keeps the test of fragmentation without letting a
	 * small request buy a large answer. */
	if (m->has_padding && cfg->rfc5780) {
		size_t pad = m->padding_len;
		if (pad > cfg->max_padding)
			pad = cfg->max_padding;
		if (pad)
			stun_build_padding(&b, pad);
	}
	stun_build_fingerprint(&b);
	rc = stun_build_finish(&b);
	if (rc < 0) {
		r->err = rc;
		return 0;
	}
	r->verdict = STUN_SRV_REPLY;
	r->len = (size_t)rc;
	r->ip = sip;
	r->port = sport;
	if (m->has_response_port)
		addr_set_port(&r->dst, m->response_port);
	return 0;
}
