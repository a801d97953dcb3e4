/* disco: discovery of the agent's reflexive endpoints on its WireGuard socket,
 * sans-I/O. A round sends one STUN Binding request (a lib/stun client
 * transaction) to each server, --stun servers and relays alike, from the
 * agent's one UDP socket; the caller hands every datagram that passes
 * stun_is_stun() to disco_receive() before WireGuard would see it. When the
 * round ends (every transaction answered or timed out) the reflexive mappings
 * are compared: different mappings for different destinations of one address
 * family mean an endpoint-dependent ("symmetric") NAT (a dual-stack agent's
 * IPv4 and IPv6 mappings always differ). Rounds run at start, every
 * DISCO_INTERVAL_MS, and at once when the caller says a local address changed
 * (disco_kick). The result carries a generation that grows only when what
 * would be reported (the mappings or symmetric_nat) changed.
 *
 * Relays are disco's servers too, and disco is the one STUN client that asks
 * them: besides the rounds, each relay gets a liveness probe every
 * RELAY_PROBE_MS (relay.h), one transmission each (disco_poll_relays); any
 * answer from a relay, to a probe or to a round's request, is its
 * last_answer, which relay.c's choice reads.
 *
 * The caller parses each datagram once and hands the message to
 * disco_receive_msg() when disco_owns() its transaction id (stunmux.h).
 *
 *   IDLE ──start/kick/interval──> PROBING ──all answered or timed out──> IDLE
 */
#ifndef NATMESH_MESHD_DISCO_H
#define NATMESH_MESHD_DISCO_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "stun/stun.h"

#define DISCO_MAX_SERVERS 16
#define DISCO_LABEL_MAX 96

enum {
	DISCO_INTERVAL_MS = 20000,	/* issue 5: every 20 s */
	/* a transaction: sends at 0, 250, 750, 1750 ms, gives up at 3750 ms,
	 * well inside the interval (RFC 8489's defaults would take 39.5 s) */
	DISCO_RTO_MS = 250,
	DISCO_RC = 4,
	DISCO_RM = 8,
};

enum disco_state {
	DISCO_IDLE,	/* between rounds */
	DISCO_PROBING,	/* a round's transactions are out */
};

struct disco_server {
	union sockaddr_any addr;
	char label[DISCO_LABEL_MAX];	/* endpoint source: "stun:HOST:PORT" or "relay" */
	bool relay;
	struct stun_txn txn;
	/* this round's answer */
	bool got;
	union sockaddr_any got_mapped;
	/* the last complete round's answer (what is reported) */
	bool answered;
	union sockaddr_any mapped;
	uint64_t rtt_ms;
	uint32_t timeouts;		/* rounds in a row without an answer */
	/* liveness, for a relay (its own entry, or a --stun entry at a
	 * relay's address) */
	bool probed;
	struct stun_txn probe;
	uint64_t next_probe;		/* when the next probe goes */
	uint64_t last_answer;		/* ms of its last answer, 0: never */
	uint64_t probe_rtt_ms;		/* of the last answered probe */
	uint64_t probe_srtt_us;		/* the probes' smoothed round trip (relay_srtt), 0: none */
};

/* what the last complete round found */
struct disco_result {
	uint32_t generation;		/* grows when mappings or symmetric change */
	int nanswered;			/* servers that answered */
	bool symmetric_nat;		/* two servers of one family saw different mappings */
	union sockaddr_any mapped[DISCO_MAX_SERVERS];	/* distinct mappings */
	int nmapped;
};

struct disco {
	enum disco_state state;
	uint32_t interval_ms;
	struct disco_server srv[DISCO_MAX_SERVERS];
	int nsrv;
	uint64_t next_round;		/* IDLE: when the next round starts */
	bool kicked;			/* PROBING: another round right after */
	uint32_t rounds;
	struct disco_result res;
};

/* one datagram to send from the WireGuard socket */
struct disco_send {
	union sockaddr_any to;
	const uint8_t *buf;		/* valid until the next disco_* call */
	size_t len;
};

void disco_init(struct disco *d, uint32_t interval_ms, uint64_t now);
/* -ENOSPC when full, -EEXIST when that address is there already; the label
 * is cut to DISCO_LABEL_MAX - 1 */
int disco_add_server(struct disco *d, const union sockaddr_any *addr, const char *label,
		     bool relay);
/* replaces the relay servers by this set (the --stun ones stay); returns
 * how many differ from before */
int disco_set_relays(struct disco *d, const union sockaddr_any *addrs, int n);
/* a local address changed: a new round now (or at the end of this one) */
void disco_kick(struct disco *d, uint64_t now);
/* Runs due work: starts a round when it is time, retransmits, ends the round.
 * Writes up to max datagrams to send; returns their count. */
int disco_poll(struct disco *d, uint64_t now, struct disco_send *out, int max);
uint64_t disco_deadline(const struct disco *d);
/* the relays' liveness probes that are due (up to max); returns their count */
int disco_poll_relays(struct disco *d, uint64_t now, struct disco_send *out, int max);
/* when disco_poll_relays wants to be called next; UINT64_MAX without relays */
uint64_t disco_relays_deadline(const struct disco *d);
/* the server at that address, or NULL */
const struct disco_server *disco_server_find(const struct disco *d, const union sockaddr_any *addr);
/* whether tid is one of disco's waiting transactions (round or probe) */
bool disco_owns(const struct disco *d, const uint8_t tid[STUN_TID_LEN]);
/* A parsed STUN message from `from`: 0 when it answered one of our
 * transactions (the last answer of a round ends it), STUN_E_TXN when it is
 * someone else's (a request to a relay, a stray answer). */
int disco_receive_msg(struct disco *d, const struct stun_msg *msg,
		      const union sockaddr_any *from, uint64_t now);
/* the same from bytes: another stun_error when they are malformed. Never
 * crashes on any bytes. */
int disco_receive(struct disco *d, const uint8_t *buf, size_t len,
		  const union sockaddr_any *from, uint64_t now);

#endif
