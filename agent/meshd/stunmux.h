/* stunmux: the one demultiplexer of STUN on the agent's WireGuard socket
 * (ARCHITECTURE.md "one socket per agent"; STYLE.md 14). Each datagram that
 * passes stun_is_stun() is parsed here, once, and handed by transaction id
 * to exactly one owner, which takes the parsed message and never the bytes:
 *
 *   a response to a disco transaction (a round, a relay's liveness probe) -> disco
 *   a response to a natdisc transaction, or natdisc's own request that a
 *     hairpinning NAT brought back                                          -> natdisc of its family
 *   any other request, when this agent is a relay (--relay)                 -> the answerer,
 *     while its source IP has tokens (iplimit.h, as meshstun; issue 15
 *     point 9), else                                                        -> limited, counted
 *   the rest (a stray or late answer, a request to a non-relay, an
 *     indication)                                                           -> dropped, counted
 *   bytes that do not parse                                                 -> malformed, counted
 *
 * Sans-I/O: the answerer's reply is written to the caller's buffer, and the
 * caller sends it from the WireGuard socket to the request's source. */
#ifndef NATMESH_MESHD_STUNMUX_H
#define NATMESH_MESHD_STUNMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "disco.h"
#include "iplimit.h"
#include "natdisc.h"
#include "stun/stun.h"

enum stunmux_owner {
	STUNMUX_DROPPED,
	STUNMUX_MALFORMED,
	STUNMUX_DISCO,
	STUNMUX_NATDISC,
	STUNMUX_ANSWERER,
	STUNMUX_LIMITED,	/* a request to answer, over its source's rate */
	STUNMUX_OWNERS
};

enum { STUNMUX_FAMILIES = 2 };	/* natdisc per address family, svc_family order */

struct stunmux {
	struct disco *disco;
	struct natdisc *natdisc[STUNMUX_FAMILIES];	/* NULL: not running */
	bool answer;			/* a relay: answer Binding requests */
	struct stun_server_cfg server;
	struct iplimit limit;		/* answers per source IP */
	uint64_t parsed;		/* stun_parse() calls: one per datagram */
	uint64_t count[STUNMUX_OWNERS];	/* datagrams per owner */
};

struct stunmux_result {
	enum stunmux_owner owner;
	int family;			/* NATDISC: which natdisc */
	int err;			/* MALFORMED: the stun_error */
	size_t reply_len;		/* ANSWERER: reply bytes to send back; 0: none */
};

/* answer: whether to answer Binding requests (a relay), as the server at
 * local port `port`, naming itself `software` */
void stunmux_init(struct stunmux *x, struct disco *disco, bool answer, uint16_t port,
		  const char *software);
/* One STUN datagram from `from`: parsed once, handed to its owner. reply
 * (cap bytes) receives the answerer's reply. Returns the owner. */
enum stunmux_owner stunmux_input(struct stunmux *x, const uint8_t *buf, size_t len,
				 const union sockaddr_any *from, uint64_t now,
				 uint8_t *reply, size_t cap, struct stunmux_result *res);
const char *stunmux_owner_name(enum stunmux_owner o);

#endif
