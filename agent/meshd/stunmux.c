/* stunmux: one parse per STUN datagram, one owner per transaction (stunmux.h) */
#include <string.h>

#include "stunmux.h"

void stunmux_init(struct stunmux *x, struct disco *disco, bool answer, uint16_t port,
		  const char *software)
{
	memset(x, 0, sizeof(*x));
	x->disco = disco;
	x->answer = answer;
	/* the answer's XOR-MAPPED-ADDRESS is the request's source; the
	 * server's own address only matters to RFC 5780, which a relay's
	 * single socket does not serve */
	addr_parse_ip("0.0.0.0", port, &x->server.addrs[0][0]);
	x->server.software = software;
}

/* the natdisc that owns tid, or -1 */
static int natdisc_of(const struct stunmux *x, const uint8_t *tid)
{
	for (int f = 0; f < STUNMUX_FAMILIES; f++)
		if (x->natdisc[f] && natdisc_owns(x->natdisc[f], tid))
			return f;
	return -1;
}

static enum stunmux_owner route(struct stunmux *x, const struct stun_msg *msg, int *family)
{
	*family = natdisc_of(x, msg->tid);
	switch (msg->cls) {
	case STUN_CLASS_REQUEST:
		/* natdisc's own request, hairpinned back, is natdisc's */
		if (*family >= 0)
			return STUNMUX_NATDISC;
		return x->answer ? STUNMUX_ANSWERER : STUNMUX_DROPPED;
	case STUN_CLASS_SUCCESS:
	case STUN_CLASS_ERROR:
		if (x->disco && disco_owns(x->disco, msg->tid))
			return STUNMUX_DISCO;
		return *family >= 0 ? STUNMUX_NATDISC : STUNMUX_DROPPED;
	default:
		return STUNMUX_DROPPED;	/* an indication: nobody here asked */
	}
}

enum stunmux_owner stunmux_input(struct stunmux *x, const uint8_t *buf, size_t len,
				 const union sockaddr_any *from, uint64_t now,
				 uint8_t *reply, size_t cap, struct stunmux_result *res)
{
	union sockaddr_any src = *from;
	struct stun_server_reply rep;
	struct stun_msg msg;
	int rc;

	memset(res, 0, sizeof(*res));
	res->family = -1;
	x->parsed++;
	if ((rc = stun_parse(buf, len, &msg)) < 0) {
		res->owner = STUNMUX_MALFORMED;
		res->err = rc;
		x->count[res->owner]++;
		return res->owner;
	}
	addr_unmap_v4(&src);
	res->owner = route(x, &msg, &res->family);
	/* issue 15 point 9: no amplifier for a spoofed source */
	if (res->owner == STUNMUX_ANSWERER && !iplimit_allow(&x->limit, &src, now))
		res->owner = STUNMUX_LIMITED;
	switch (res->owner) {
	case STUNMUX_DISCO:
		disco_receive_msg(x->disco, &msg, &src, now);
		break;
	case STUNMUX_NATDISC:
		/* the WireGuard socket is natdisc's socket 0 (NATDISC_SOCK_MAP) */
		natdisc_receive_msg(x->natdisc[res->family], NATDISC_SOCK_MAP, &src, &msg, now);
		break;
	case STUNMUX_ANSWERER:
		if (stun_server_answer_msg(&x->server, 0, 0, from, &msg, reply, cap, &rep) == 0 &&
		    rep.verdict == STUN_SRV_REPLY)
			res->reply_len = rep.len;
		break;
	default:
		break;
	}
	x->count[res->owner]++;
	return res->owner;
}

const char *stunmux_owner_name(enum stunmux_owner o)
{
	static const char *const names[STUNMUX_OWNERS] = {
		[STUNMUX_DROPPED] = "dropped", [STUNMUX_MALFORMED] = "malformed",
		[STUNMUX_DISCO] = "disco", [STUNMUX_NATDISC] = "natdisc",
		[STUNMUX_ANSWERER] = "answerer", [STUNMUX_LIMITED] = "limited",
	};
	return (unsigned)o < STUNMUX_OWNERS ? names[o] : "?";
}
