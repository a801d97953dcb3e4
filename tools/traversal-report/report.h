/* traversal-report: what happened during a traversal, read from pcaps.
 *
 *   capture.c  reads captures into observations: one per STUN or WireGuard
 *              datagram seen in one capture, with the byte offset of its
 *              record. Classic pcap through lib/pcapread, which skips over a
 *              damaged record header to the next plausible record (each skip
 *              is kept: where, where reading resumed, why); pcapng through
 *              libpcap, which cannot, so there the damage ends the file.
 *              Read errors keep the file name and offset.
 *   analyze.c  groups observations of the same datagram across captures into
 *              flights, derives NAT translations from the addresses a flight
 *              has on either side of a gateway (and from STUN mapped
 *              addresses), resolves every address to the host endpoint behind
 *              it, pairs WireGuard handshakes and data into sessions, detects
 *              relays by their forwarding, and builds one timeline per pair.
 *   output.c   prints the result as text or JSON.
 */
#ifndef NATMESH_TRAVERSAL_REPORT_H
#define NATMESH_TRAVERSAL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "addr.h"
#include "agent/wg/cookie.h"
#include "pktdecode.h"

#define RP_INFER_NS (RP_INFER_NS_S * 1000000000ull)

/* Tuning of the analysis, with the reasoning for each value. */
enum {
	/* Two observations of identical bytes further apart than this are two
	 * datagrams (a STUN retransmission), not one datagram seen twice:
	 * crossing a gateway takes microseconds, the shortest STUN RTO a LAN
	 * would use is tens of milliseconds. */
	RP_FLIGHT_GAP_NS = 20 * 1000 * 1000,
	/* ... and one capture seeing the same bytes with the same addresses
	 * twice within this time saw one datagram on two interfaces */
	RP_TWIN_NS = 200 * 1000,
	/* A relay forwards a data message within this time of receiving it
	 * (links in a simulation may add delay, hence generous). */
	RP_FORWARD_WINDOW_NS = 100 * 1000 * 1000,
	/* forwarded messages needed before a node is called a relay unless
	 * --relay names it */
	RP_FORWARD_MIN = 2,
	/* an unanswered initiation to an address never seen as a host is
	 * put with the initiator's next attempt within this time (WireGuard
	 * retries after REKEY_TIMEOUT, 5 s, plus jitter) */
	RP_INFER_NS_S = 30,
	/* outgoing messages looked at per incoming one */
	RP_FORWARD_SCAN = 64,
	/* --key: WireGuard public keys whose mac1 is tried on every handshake
	 * message (each costs one BLAKE2s per message) */
	RP_KEYS_MAX = 64,
	/* records read errors on undecodable frames, first N offsets kept */
	RP_BAD_OFFSETS = 4,
	/* resynchronisations kept per capture with their offsets (all counted) */
	RP_RESYNCS_KEPT = 4,
};

/* A damaged record header skipped over: reading resumed at the next
 * plausible record. */
struct rp_resync {
	uint64_t corrupt_at;		/* byte offset of the damaged header */
	uint64_t resumed_at;		/* of the record reading resumed with */
	char why[96];			/* what was wrong with the header */
};

struct rp_capture {
	char *path;
	const char *name;		/* basename of path */
	int linktype;			/* DLT_* */
	uint64_t records;		/* pcap records read */
	uint64_t stun, wg;		/* of which STUN and WireGuard */
	uint64_t undecodable;		/* frames whose headers did not parse */
	uint64_t bad_offsets[RP_BAD_OFFSETS];
	const char *format;		/* "pcap", "pcapng" or "other" (static) */
	bool resynchronises;		/* read by lib/pcapread, not libpcap */
	uint64_t resyncs;		/* damaged headers skipped over */
	uint64_t skipped;		/* bytes skipped by them */
	struct rp_resync resync[RP_RESYNCS_KEPT];
	bool failed;			/* reading stopped early */
	uint64_t err_offset;		/* byte offset of the failing record */
	char err[384];
};

/* One datagram seen in one capture. */
struct rp_obs {
	uint64_t ts_ns;			/* capture time, ns since the epoch */
	uint64_t offset;		/* of its record in the file */
	uint64_t hash;			/* of the UDP payload: same datagram elsewhere */
	union sockaddr_any src, dst;
	uint32_t cap;
	uint32_t len;			/* UDP payload bytes */
	int32_t stun;			/* index into rp.stuns, or -1 */
	uint8_t kind;			/* PKT_STUN or PKT_WG */
	int8_t key;			/* handshake: rp.keys index its mac1 matches; -1 */
	struct pkt_wg wg;
};

/* One datagram, with every capture that saw it. Addresses: as its sender
 * sent it (first observation) and as it arrived (last observation). */
struct rp_flight {
	uint32_t obs0, nobs;		/* range in rp.order, sorted by time */
	uint64_t t_first, t_last;
	union sockaddr_any src, dst;	/* sender's view */
	union sockaddr_any src_last, dst_last; /* receiver's view */
	int from, to;			/* node indices; -1 when not a node */
	uint8_t kind;
	uint32_t len;
	int32_t stun;
	int8_t key;			/* as rp_obs.key */
	struct pkt_wg wg;
};

struct rp_translation {
	union sockaddr_any inner, outer;
	const char *how;		/* "wireguard", "stun", "stun-mapped", "udp" */
	uint64_t t;			/* first seen */
	uint32_t cap_in, cap_out;	/* captures on either side (same for stun-mapped) */
};

struct rp_node {
	union sockaddr_any addr;	/* innermost address seen: the host's socket */
	bool unknown;			/* only ever a destination nobody answered from */
	bool relay;
	const char *label;		/* --name, or NULL */
};

/* A WireGuard session: an initiation, maybe its response, and the data that
 * used the indices they set up. */
struct rp_session {
	int init_flight, resp_flight, cookie_flight;
	uint32_t init_idx, resp_idx;
	int initiator, responder;	/* nodes */
	union sockaddr_any candidate;	/* where the initiator sent it */
	bool candidate_by_ip;		/* responder guessed from the IP alone */
	bool peer_inferred;		/* dead candidate: peer of the next attempt */
	bool peer_by_mac1;		/* dead candidate: the holder of the key its mac1 names */
	int peer_key;			/* rp.keys index the initiation's mac1 names; -1 */
	union sockaddr_any answered_from; /* response source at the initiator */
	uint64_t t_init, t_resp;
	int first_data;			/* flight of the first non-keepalive data */
	uint64_t data_i2r, data_r2i, keepalives;
	uint64_t t_last_data;
};

/* Data that no captured handshake explains (the capture started later). */
struct rp_orphan {
	int from, to;
	uint32_t receiver;
	int first_data;
	uint64_t count;
};

struct rp_stun_probe {
	int req_flight;			/* first transmission */
	int resp_flight;		/* -1: unanswered */
	uint32_t transmissions;
	int node;			/* by source IP; -1 if none */
	union sockaddr_any client;	/* request source as sent */
	union sockaddr_any server;	/* request destination */
};

/* Forwarding evidence: data in from a, out to b at relay r. */
struct rp_forward {
	int a, r, b;
	uint64_t count;
	int first_in;			/* flight */
	int first_out;
};

enum rp_pair_mode {
	RP_MODE_NONE,		/* attempts only, no data */
	RP_MODE_DIRECT,
	RP_MODE_RELAYED,
	RP_MODE_UPGRADED,	/* relayed first, then direct */
};

struct rp_pair {
	int a, b;			/* nodes, a < b */
	enum rp_pair_mode mode;
	int win_session;		/* direct session that carried data first; -1 */
	int relay;			/* node; -1 */
	int relay_fwd;			/* rp.fwds index of the earliest forwarding */
	uint64_t t_first_data;		/* of the path used first; 0: none */
	int first_data_flight;
	uint64_t t_direct, t_relay;	/* first data each way; 0: none */
	int direct_flight;
	char reason[512];		/* why the relay was used */
};

struct rp_name {
	union sockaddr_any addr;
	bool ip_only;
	const char *label;
};

/* --key PUBKEY[=LABEL]: a WireGuard static public key. A handshake message's
 * mac1 is keyed by its receiver's public key (whitepaper 5.4.4), so a match
 * names the receiver the sender meant, even where nobody answered. The node
 * that holds the key is learnt from answered handshakes: the responder of an
 * initiation with this mac1, the initiator of a response with it. */
struct rp_key {
	uint8_t pub[WG_KEY_LEN];
	const char *label;		/* LABEL, or the key's base64 */
	bool named;			/* LABEL given: it names the node too (unless --name does) */
	struct wg_cookie_checker mac1;	/* computes and compares mac1 */
	int node;			/* the node proven to hold it; -1 */
};

struct rp {
	struct rp_capture *caps;
	size_t ncaps, caps_cap;
	struct rp_obs *obs;
	size_t nobs, obs_cap;
	struct pkt_stun *stuns;
	size_t nstuns, stuns_cap;
	uint32_t *order;		/* obs indices grouped by flight */
	struct rp_flight *flights;
	size_t nflights;
	struct rp_translation *trans;
	size_t ntrans, trans_cap;
	uint64_t trans_conflicts;
	struct rp_node *nodes;
	size_t nnodes, nodes_cap;
	struct rp_session *sess;
	size_t nsess, sess_cap;
	struct rp_orphan *orphans;
	size_t norphans, orphans_cap;
	struct rp_stun_probe *probes;
	size_t nprobes, probes_cap;
	struct rp_forward *fwds;
	size_t nfwds, fwds_cap;
	struct rp_pair *pairs;
	size_t npairs, pairs_cap;
	/* options */
	struct rp_name *names;
	size_t nnames, names_cap;
	union sockaddr_any *relays;	/* --relay; port 0 = any port */
	size_t nrelays, relays_cap;
	struct rp_key *keys;		/* --key */
	size_t nkeys, keys_cap;
	uint64_t t0;			/* earliest observation */
	/* address interning for the analysis */
	struct rp_addrtab *tab;
};

/* grows *arr (of *cap elements of size sz) to hold n+1; 0 or -ENOMEM */
int rp_grow(void **arr, size_t *cap, size_t n, size_t sz);
#define RP_PUSH(arr, n, cap) \
	(rp_grow((void **)&(arr), &(cap), (n), sizeof(*(arr))) ? NULL : &(arr)[(n)++])

/* capture.c: appends the STUN and WireGuard datagrams of one file. Returns 0
 * even when the file is damaged (caps[].resyncs and caps[].failed say so);
 * -ENOMEM only. */
int rp_read_pcap(struct rp *rp, const char *path);

/* main.c's --key: "BASE64[=LABEL]" into a new rp.keys entry; 0, -EINVAL
 * (not a 32-byte base64 key, or an empty label), -E2BIG (RP_KEYS_MAX), -ENOMEM */
int rp_add_key(struct rp *rp, char *arg);

/* analyze.c */
int rp_analyze(struct rp *rp);
void rp_free(struct rp *rp);
/* the node behind an address (through its translations), or -1 */
int rp_addr_node(const struct rp *rp, const union sockaddr_any *a);
const char *rp_node_name(const struct rp *rp, int node, char *buf, size_t len);
/* true when a is in a private, shared or link-local range */
bool rp_addr_private(const union sockaddr_any *a);

/* output.c */
void rp_print_text(const struct rp *rp);
/* one line per resynchronisation of the capture (the first RP_RESYNCS_KEPT,
 * then one for the rest) */
void rp_print_warnings(const struct rp_capture *c, FILE *f);
int rp_print_json(const struct rp *rp);

#endif
