/* path: the per-peer path selection of meshd, a sans-I/O state machine
 * (STYLE.md item 3). For every peer the agent keeps one struct path_peer; it
 * feeds it what happened (the peer's candidates were learned or changed, a
 * handshake with the peer completed from some endpoint, a packet from the
 * peer arrived, the relay came or went, time passed) and gets back actions to
 * carry out on the data plane and the time it wants to be called again.
 *
 *   NEW ──learn──> CONNECTING ──handshake──> DIRECT ──probe unanswered─┐
 *                     │ timeout                ^  ^                     │ (at once)
 *                     v                        │  └──handshake──┐       v
 *                 RELAYED | FAILED <──timeout── RETRYING <──────┴── retry due
 *
 * While a peer is not DIRECT its /32 is not a direct allowed IP, so its
 * traffic follows the relay peer's VPC CIDR (longest prefix wins); DIRECT
 * installs the /32 on the peer itself. FAILED is RELAYED without any relay in
 * the VPC: the peer is unreachable until a handshake completes or a relay
 * appears. A handshake with the peer itself is always a direct one (the relay
 * forwards inner packets, never the peer's own handshake), so a completed
 * handshake from any endpoint, a candidate or a peer-reflexive one, makes the
 * path DIRECT.
 *
 * Candidate order (path_order_candidates): when both sides share a
 * reflexive IP (same NAT) the peer's local endpoints come first, then its
 * reflexive ones, then the rest; direct is always tried, also when a side is
 * behind a symmetric NAT. */
#ifndef NATMESH_MESHD_PATH_H
#define NATMESH_MESHD_PATH_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

/* candidates kept per peer (local addresses, STUN and relay reflexive ones) */
#define PATH_MAX_CANDS 16

/* defaults; every one of them is a field of struct path_cfg */
enum {
	PATH_DIRECT_TIMEOUT_MS = 3000,	/* issue 5: Nexodus waits 30 s */
	PATH_RETRY_BASE_MS = 30000,	/* issue 5: relayed peers retried every 30 s */
	PATH_RETRY_MAX_MS = 240000,	/* backoff cap: 30, 60, 120, 240 s */
	/* Persistent keepalive when the NAT's mapping lifetime is not measured
	 * (issue 17, path_keepalive_s): carrier NATs forget an idle UDP mapping
	 * after as little as 15 s (RFC 4787 REQ-5 asks for 2 minutes, which
	 * many ignore), so 10 s: such a mapping sees a packet 5 s before it
	 * would expire, room for a keepalive delayed by a 300 ms path or a
	 * late timer, and both sides send them, so the mapping is refreshed
	 * from inside even when the peer's keepalive is lost. */
	PATH_KEEPALIVE_S = 10,
	PATH_KEEPALIVE_MIN_S = 5,	/* a measured lifetime never drives it lower */
	PATH_KEEPALIVE_MAX_S = 25,	/* nor higher (WireGuard's own advice behind NAT) */
	/* two of the slowest peer's keepalives missed: a probe (below), and
	 * the path is lost when it goes unanswered too */
	PATH_DIRECT_IDLE_MS = 2 * PATH_KEEPALIVE_MAX_S * 1000 + 5000,
	/* we sent and nothing came back for the slowest peer's keepalive
	 * interval plus REKEY_TIMEOUT: a probe, as above (a live peer may
	 * still be silent: its keepalive timer restarts on every packet we
	 * send it, see path.c check_deadline) */
	PATH_DIRECT_UNANSWERED_MS = PATH_KEEPALIVE_MAX_S * 1000 + 5000,
	/* Issue 17: data sent over a DIRECT path and nothing back for this
	 * long: one probe (a spray, sent again halfway through its timeout, so
	 * one lost initiation or response does not lose the path) while it
	 * stays DIRECT; no handshake or packet within the probe timeout after
	 * it, and the path is lost (a mapping expired), long before the 30 s
	 * check above. A live path answers a handshake within a round trip, so
	 * both waits are at least twice the peer's measured handshake round
	 * trip (path_rtt; 310 ms on the satellite scenario), and 500 ms on a
	 * short path: with the relay told at once (PATH_ACT_TELL), a ping sent
	 * a second after the first unanswered one is answered (mapping-lost). */
	PATH_PROBE_AFTER_MS = 500,
	PATH_PROBE_TIMEOUT_MS = 500,
	PATH_PROBE_WAIT_MAX_MS = 2000,	/* the round trip stretches them up to this */
	/* Data sent this soon after a packet from the peer is taken for a
	 * reply, which expects no answer (an echo reply, a TCP ack): the probe
	 * it drew on a busy machine, where the request and the reply fall into
	 * two looks at the data plane, used up the probe budget, and a path
	 * lost 3 s later went unnoticed for 8 s (mapping-lost's flake). */
	PATH_REPLY_MS = 250,
	/* at most PATH_PROBE_BURST probes per this: a one-way flow (whose
	 * receiver answers with a passive keepalive only after 10 s) costs two
	 * handshakes per 10 s, and one needless probe leaves one for a loss */
	PATH_PROBE_EVERY_MS = 10000,
	PATH_PROBE_BURST = 2,
	/* at most one PATH_ACT_TELL per peer per this */
	PATH_TELL_EVERY_MS = 5000,
	/* a relay forwarding the peer's packets to a DIRECT path means that
	 * the peer lost it; not in the first moments of DIRECT, while the peer
	 * may still route via the relay, nor right after a direct packet */
	PATH_OWNED_GRACE_MS = 3000,
	PATH_OWNED_RX_MS = 1000,
	PATH_SPRAY_AFTER_MS = 1000,	/* spray period after the fixed schedule */
	PATH_SPRAY_YIELD_MS = 200,	/* see path_cfg.spray_delay_ms */
	/* see path_initiated: long enough for our response to reach the peer
	 * and its first packet to come back over a 300 ms satellite path */
	PATH_YIELD_WAIT_MS = 1000,
};

enum path_state {
	PATH_NEW,		/* created, candidates not learned yet */
	PATH_CONNECTING,	/* first direct attempt: spraying, traffic via relay */
	PATH_DIRECT,		/* a handshake completed; the /32 is on the peer */
	PATH_RELAYED,		/* direct failed; traffic via the relay; retry pending */
	PATH_RETRYING,		/* relayed (or failed), a direct retry in progress */
	PATH_FAILED,		/* direct failed and no relay exists; retry pending */
};

enum path_action_type {
	PATH_ACT_SPRAY,		/* send one handshake initiation to every candidate */
	PATH_ACT_DIRECT,	/* install the /32 on the peer, endpoint = ep */
	PATH_ACT_RELAY,		/* remove the /32 from the peer: traffic via the relay */
	/* Issue 17: this side lost the direct path by itself (no answer):
	 * send the peer one packet through the relay (after PATH_ACT_RELAY),
	 * which its data plane refuses as the source is DIRECT there, and
	 * which so tells it to punch again too (path_owned_elsewhere) before
	 * our next data would */
	PATH_ACT_TELL,
};

struct path_action {
	enum path_action_type type;
	union sockaddr_any ep;		/* PATH_ACT_DIRECT */
};

/* what one call asks of the caller; at most 3 actions per transition */
#define PATH_MAX_ACTIONS 4
struct path_out {
	int n;
	struct path_action act[PATH_MAX_ACTIONS];
};

struct path_cfg {
	uint32_t direct_timeout_ms;	/* 0: PATH_DIRECT_TIMEOUT_MS */
	uint32_t retry_base_ms;		/* 0: PATH_RETRY_BASE_MS */
	uint32_t retry_max_ms;		/* 0: PATH_RETRY_MAX_MS */
	uint32_t direct_idle_ms;	/* 0: PATH_DIRECT_IDLE_MS */
	uint32_t direct_unanswered_ms;	/* 0: PATH_DIRECT_UNANSWERED_MS */
	/* The first spray of an attempt waits this long (0: none; ignored when
	 * not below the direct timeout). One side of a pair (meshd: the one
	 * with the higher public key) waits PATH_SPRAY_YIELD_MS, so the two first
	 * initiations do not cross: crossed initiations each replace the
	 * other's handshake, both sides end up responders, and only WireGuard's
	 * retransmission 5 s later connects them. The first side's initiation
	 * is dropped by the other NAT; the second's passes the first NAT, which
	 * that initiation opened. */
	uint32_t spray_delay_ms;
};

struct path_peer {
	enum path_state state;
	struct path_cfg cfg;
	bool have_relay;		/* the VPC has a relay to fall back on */

	union sockaddr_any cands[PATH_MAX_CANDS];	/* in spray order */
	int ncands;

	uint64_t attempt_start;		/* CONNECTING/RETRYING: when spraying began */
	int spray_idx;			/* next step of the spray schedule */
	uint64_t next_spray;		/* CONNECTING/RETRYING */
	uint64_t retry_at;		/* RELAYED/FAILED */
	uint32_t backoff_ms;		/* delay after the next failed attempt */

	union sockaddr_any endpoint;	/* DIRECT: the endpoint that won */
	uint64_t last_alive;		/* DIRECT: last handshake or packet */
	uint64_t unanswered_since;	/* DIRECT: first send after the last receive, 0: none */
	uint64_t data_since;		/* DIRECT: first data sent after the last receive, 0: none */
	bool probing;			/* DIRECT: a probe went at probe_at, unanswered */
	bool probe_resent;		/* ... and went again halfway through its timeout */
	uint64_t probe_at;
	uint64_t probe_times[PATH_PROBE_BURST];	/* the last probes, oldest first */
	int nprobe_times;
	uint64_t last_tell;		/* when the last PATH_ACT_TELL went, 0: never */
	uint32_t rtt_ms;		/* the peer's handshake round trip, 0: unknown */
	uint64_t since;			/* when the current state began */

	/* counters for status and tests */
	uint32_t sprays;		/* SPRAY actions emitted */
	uint32_t upgrades;		/* RELAYED/RETRYING/FAILED -> DIRECT */
	uint32_t fallbacks;		/* DIRECT -> RETRYING */
	uint32_t probes;		/* sprays of a DIRECT path whose data went unanswered */
};

/* "new", "connecting", "direct", "relayed", "retrying", "failed" */
const char *path_state_name(enum path_state s);
/* what meshctl shows: "direct", "relayed" (RELAYED and RETRYING),
 * "connecting", or "failed" */
const char *path_state_public(enum path_state s);

void path_init(struct path_peer *p, const struct path_cfg *cfg, bool have_relay, uint64_t now);

/* The peer's candidates were learned or changed (already ordered, see
 * path_order_candidates; more than PATH_MAX_CANDS are cut). NEW starts
 * CONNECTING; RELAYED/FAILED retry at once with the backoff reset; DIRECT and
 * the attempts spray the new candidates once. Unchanged candidates do nothing. */
void path_learn(struct path_peer *p, const union sockaddr_any *cands, int n, uint64_t now,
		struct path_out *out);
/* a handshake with the peer completed; ep is where its packets came from */
void path_handshake(struct path_peer *p, const union sockaddr_any *ep, uint64_t now,
		    struct path_out *out);
/* The peer's handshake initiation arrived (and was answered). Issue 17: on
 * the side that yields (spray_delay_ms), an attempt sends nothing for
 * PATH_YIELD_WAIT_MS: each initiation this side consumes replaces its own
 * pending one, so with a round trip longer than the spray steps the two
 * sides' sprays kept crossing and neither completed until one attempt timed
 * out (5.4 s to direct with 310 ms between the agents); once one side is
 * quiet, the other's initiation is answered and completes. */
void path_initiated(struct path_peer *p, uint64_t now);
/* an authenticated packet from the peer arrived (data or keepalive) */
void path_rx(struct path_peer *p, uint64_t now);
/* we sent the peer something over the direct session */
void path_tx(struct path_peer *p, uint64_t now);
/* ... and it was data (not only keepalives): it expects an answer soon,
 * unless it went within PATH_REPLY_MS of the peer's last packet */
void path_tx_data(struct path_peer *p, uint64_t now);
/* our last handshake initiation to the peer was answered after rtt_ms */
void path_rtt(struct path_peer *p, uint32_t rtt_ms);
/* a relay forwarded us a packet from this peer, which the data plane refused
 * as the peer's own address is DIRECT: the peer no longer reaches us directly
 * (its mapping or ours expired), so DIRECT is lost and both sides punch
 * again (issue 17) */
void path_owned_elsewhere(struct path_peer *p, uint64_t now, struct path_out *out);
/* the VPC gained or lost its last relay */
void path_relay(struct path_peer *p, bool have_relay, uint64_t now);
/* time passed: spray steps, the direct timeout, retries, the idle check */
void path_tick(struct path_peer *p, uint64_t now, struct path_out *out);
/* when path_tick wants to be called next (UINT64_MAX: only on events) */
uint64_t path_deadline(const struct path_peer *p);

/* The persistent keepalive (s) for a NAT whose mappings were measured to
 * survive lifetime_alive_ms of idleness (RFC 5780 4.6; 0: not measured):
 * half of it, so one lost keepalive still refreshes the mapping in time,
 * within PATH_KEEPALIVE_MIN_S..PATH_KEEPALIVE_MAX_S; PATH_KEEPALIVE_S when
 * not measured. */
uint32_t path_keepalive_s(uint32_t lifetime_alive_ms);

/* Orders a peer's candidates for spraying. mine/theirs carry each side's
 * endpoints with a flag saying which are reflexive (STUN or relay seen);
 * writes at most max distinct addresses to out and returns the count. */
struct path_cand {
	union sockaddr_any addr;
	bool reflexive;
	bool mapped;		/* issue 18: the gateway's port mapping, first of the reflexive ones */
};
int path_order_candidates(const struct path_cand *mine, int nmine,
			  const struct path_cand *theirs, int ntheirs,
			  union sockaddr_any *out, int max);
/* Issue 15 point 5: whether an endpoint from the service may be a
 * candidate: not unspecified, loopback, link-local, multicast or broadcast
 * (nor 0.0.0.0/8, 240.0.0.0/4; an IPv4-mapped IPv6 address as its IPv4
 * one), and a port that is not 0. false with *why (when why is not NULL)
 * naming the reason. */
bool path_addr_usable(const union sockaddr_any *a, const char **why);

#endif
