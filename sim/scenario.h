/* scenario: a meshsim scenario file (JSON) parsed and checked into plain
 * structs. Every error names the file, the JSON path and the reason, e.g.
 * "lab.json: nodes[2].links[0].network: unknown network \"wan\"".
 *
 * Schema (keys not listed here are rejected):
 *
 * {
 *   "name": "pair-full-cone",            required, [A-Za-z0-9_.-], <= 48 chars
 *   "description": "why this outcome",   optional
 *   "timeout_s": 60,                     whole run, default 120
 *   "networks": [                        segments: a bridge in a namespace of its own
 *     { "name": "internet", "cidr": "203.0.113.0/24" }      cidr optional, IPv4
 *   ],                                   or IPv6 ("2001:db8:1::/64")
 *   "nodes": [
 *     { "name": "gw1",                   [A-Za-z0-9_-], <= 15 chars, unique among
 *                                        nodes and networks (each gets a namespace)
 *       "kind": "host" | "router" | "nat",     default "host"; router and nat
 *                                        forward (net.ipv4.ip_forward=1, and
 *                                        net.ipv6.conf.all.forwarding=1 in a lab
 *                                        with IPv6)
 *       "nat": "full-cone" | { model },  only on kind "nat": a preset name or a
 *                                        model object, as nat-models parses it;
 *                                        NAT44 or NAT66 in the WAN link's family:
 *                                        every link of a nat node has that family;
 *                                        a model with "port_mapping": ["pcp",
 *                                        "nat-pmp", "upnp"] (IPv4 only) adds the
 *                                        processes NODE/portmap-stun and
 *                                        NODE/miniupnpd (sim/portmapd.h)
 *       "wan": "wan",                    nat only: the interface the model masquerades
 *                                        out of; default: the node's first link
 *       "links": [                       one veth each, to a network's bridge
 *         { "network": "internet",
 *           "ifname": "wan",             default eth0, eth1, ... (<= 15 chars)
 *           "address": "203.0.113.2",    or with /prefix; default: the next free
 *                                        host of the network's cidr
 *           "loss_percent": 5,           random drop of that share of the packets
 *                                        entering the link from either side, 0..100
 *                                        (nftables numgen, not seeded); not with
 *                                        egress/ingress, which have their own
 *           "egress": { impairment },    frames leaving the node onto the network
 *           "ingress": { impairment } }  frames from the network to the node
 *       ],                               either puts a delay line in the link
 *                                        (sim/impair.h: mechanism and model)
 *       "routes": [ { "dst": "default" | "CIDR", "via": "IP" | "NODE" } ],
 *                                        via a node: its address on a shared network
 *                                        (of dst's family when several are shared);
 *                                        "default" is 0.0.0.0/0 or ::/0 after via
 *       "processes": [
 *         { "name": "stun",              default: basename of argv[0]; unique per node
 *           "argv": ["meshstun", "--listen", "${ip}:3478"],
 *                                        argv[0] without '/' is looked up in the build
 *                                        directory (meshsim's own), then in PATH
 *           "after": ["svc/meshsvc"],    NODE/NAME, or NAME when unique in the lab
 *           "oneshot": false,            true: runs to completion, ready when it
 *                                        exits 0; a non-zero exit fails the run
 *           "ready": { "udp": 3478 } | { "tcp": 8443 } | { "file": "PATH" } |
 *                    { "command": "sh text" | [argv] },
 *           "ready_timeout_ms": 5000 }
 *       ] }
 *   ],
 *   "expectations": [                    run in order; each may carry "name"
 *     { "ping": ["n1", "n2"],            n1 pings n2 over the lab: n2 is NODE,
 *       "count": 1, "within_ms": 5000,   NODE/IFNAME or an IP; retried until within_ms
 *       "reachable": true },             false: every attempt must stay unanswered
 *     { "ping": ["n1", "n2"], "path": "direct" | "relayed", "within_ms": 3000 },
 *                                        over the mesh: n1's `meshctl peers -o json`
 *                                        must list n2 (by name) with that path, and
 *                                        n2's tunnel IP must answer a ping from n1
 *     { "command": "sh text" | [argv], "node": "n1", "expect_exit": 0,
 *       "expect_output": "POSIX ERE", "within_ms": 0 },  retried until within_ms
 *     { "stop": "NODE/PROC" }, { "start": "NODE/PROC" }, { "restart": "NODE/PROC" },
 *                                        each may carry "if": "sh text" | [argv] and
 *                                        "node": the action happens only when that
 *                                        command exits 0 in node, else it is skipped
 *     { "sleep_ms": 500 },
 *     { "impair": "NODE" | "NODE/IFNAME", "delay_ms": 80,
 *       "egress": { impairment }, "ingress": { impairment } }
 *                                        changes a link's impairment during the run:
 *                                        keys at the top apply to both directions,
 *                                        only the keys given change; the link gets
 *                                        a delay line from the start
 *     { "reboot": "NODE" }               a NAT gateway whose model declares
 *                                        port_mapping: miniupnpd restarted (a new
 *                                        PCP/NAT-PMP epoch), the model's table
 *                                        reapplied, miniupnpd's chains and the
 *                                        conntrack table flushed: no mapping left
 *   ],
 *   "seed": 1                            0..2^63-1, default 1: every impaired link's
 *                                        decisions come from it, the link's name
 *                                        ("NODE/IFNAME") and the direction
 * }
 *
 * An impairment (every key optional; numbers may have fractions unless said):
 *   { "delay_ms": 50,                    one way, 0..60000
 *     "jitter_ms": 5,                    uniform in [-jitter, +jitter] around the
 *                                        delay, at most delay_ms; keeps the order
 *     "loss_percent": 1,                 0..100, seeded
 *     "duplicate_percent": 1,            0..100: a second copy right after
 *     "reorder_percent": 2,              0..50: that share of a steady stream leaves
 *                                        right after the packet that followed it
 *     "rate_kbit": 10000,                integer >= 1: serialised at that rate
 *                                        (Ethernet frames, header included)
 *     "queue_packets": 100 | "queue_kbytes": 64 }   the rate's tail-drop queue,
 *                                        integers, one of them, only with rate_kbit;
 *                                        default 100 ms at the rate, >= 4 KiB
 *
 * Strings in argv, ready and command take variables: ${run} (the run folder),
 * ${build}, ${lab}, ${node} (this node), ${ns} (this node's namespace),
 * ${ip} (this node's first address), ${ip:NODE} or ${ip:NODE/IFNAME},
 * ${ca} (a throwaway CA certificate made for the run), ${tls_cert} and
 * ${tls_key} (a certificate for this node's addresses signed by that CA).
 * ${ip...} is the bare address: an IPv6 endpoint is written [${ip}]:3478.
 *
 * In a lab with an IPv6 address, every namespace has duplicate address
 * detection, router advertisements and autoconfiguration off: addresses
 * are usable at once and only the scenario's addresses and routes exist.
 * A lab without one has IPv6 off. */
#ifndef NATMESH_SIM_SCENARIO_H
#define NATMESH_SIM_SCENARIO_H

#include <jansson.h>
#include <net/if.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "impair.h"

#define SIM_NAME_MAX 15		/* IFNAMSIZ - 1: node names become port names */
#define SIM_SCENARIO_NAME_MAX 48
#define SIM_ERR_MAX 512

enum sim_node_kind { SIM_NODE_HOST, SIM_NODE_ROUTER, SIM_NODE_NAT };

enum sim_ready_kind {
	SIM_READY_NONE,		/* ready once started */
	SIM_READY_UDP,		/* a UDP socket bound to port in the node */
	SIM_READY_TCP,		/* a TCP socket listening on port in the node */
	SIM_READY_FILE,		/* path exists */
	SIM_READY_COMMAND,	/* argv exits 0 inside the node */
};

enum sim_expect_kind {
	SIM_EXPECT_PING,	/* lab ping between nodes */
	SIM_EXPECT_PATH,	/* mesh ping plus the path meshctl reports */
	SIM_EXPECT_COMMAND,
	SIM_EXPECT_STOP,
	SIM_EXPECT_START,
	SIM_EXPECT_RESTART,
	SIM_EXPECT_SLEEP,
	SIM_EXPECT_IMPAIR,	/* change a link's delay line */
	SIM_EXPECT_REBOOT,	/* a port mapping gateway loses its state (sim/portmapd.h) */
};

struct sim_network {
	char name[SIM_NAME_MAX + 1];
	bool has_cidr;
	struct cidr cidr;
};

struct sim_link {
	size_t node, network;
	char ifname[IFNAMSIZ];
	struct cidr addr;	/* host address and prefix length */
	int loss_percent;
	bool impaired;		/* a delay line sits in the link */
	struct impair_conf impair[IMPAIR_NDIRS];
};

struct sim_route {
	struct cidr dst;
	union sockaddr_any via;
	char dev[IFNAMSIZ];	/* the node's interface on via's network */
};

/* argv strings are kept as written; ${...} is expanded when run */
struct sim_argv {
	char **v;		/* NULL-terminated */
	size_t n;
};

struct sim_ready {
	enum sim_ready_kind kind;
	int port;
	char *path;
	struct sim_argv argv;
	int timeout_ms;
};

struct sim_proc {
	size_t node;
	char name[32];
	struct sim_argv argv;
	size_t *after;		/* indexes into scenario->procs */
	size_t nafter;
	bool oneshot;
	struct sim_ready ready;
};

struct sim_node {
	char name[SIM_NAME_MAX + 1];
	enum sim_node_kind kind;
	json_t *nat;		/* kind nat: the model as written (string or object) */
	char wan[IFNAMSIZ];
	struct sim_route *routes;
	size_t nroutes;
};

struct sim_expect {
	enum sim_expect_kind kind;
	char label[96];		/* "name", or a summary made from the expectation */
	size_t from;		/* node: ping source, command node */
	char *to;		/* ping target as written: NODE, NODE/IFNAME or IP */
	size_t to_node;		/* PATH: the peer node */
	char path[16];		/* PATH: "direct" | "relayed" */
	int count;
	bool reachable;
	int within_ms;
	struct sim_argv argv;	/* COMMAND */
	int expect_exit;
	bool has_regex;
	bool has_cond;		/* STOP/START/RESTART: argv is an "if" command run in from */
	regex_t regex;
	size_t proc;		/* STOP/START/RESTART; REBOOT: the gateway's miniupnpd */
	int sleep_ms;
	size_t link;		/* IMPAIR: index into scenario->links */
	char *update;		/* IMPAIR: the update sent to the line (JSON text) */
};

struct sim_scenario {
	char *file;
	char *name;
	char *description;
	int timeout_ms;
	struct sim_network *nets;
	size_t nnets;
	struct sim_node *nodes;
	size_t nnodes;
	struct sim_link *links;	/* in node order, then link order */
	size_t nlinks;
	struct sim_proc *procs;	/* in node order, then process order */
	size_t nprocs;
	struct sim_expect *expects;
	size_t nexpects;
	uint64_t seed;		/* the impairments' decisions */
	bool uses_tls;		/* some string mentions ${ca}, ${tls_cert} or ${tls_key} */
};

/* Reads and checks file. On failure *out is NULL and err holds one line
 * "FILE: PATH: reason" (or "FILE:LINE:COL: reason" for bad JSON). */
int sim_scenario_load(const char *file, struct sim_scenario **out, char *err, size_t errlen);
/* the same from text already read; file names it in errors */
int sim_scenario_parse(const char *file, const char *text, struct sim_scenario **out,
		       char *err, size_t errlen);
void sim_scenario_free(struct sim_scenario *s);

/* the link of node with ifname, or its first link when ifname is NULL; NULL if none */
const struct sim_link *sim_scenario_link(const struct sim_scenario *s, size_t node,
					 const char *ifname);
/* "NODE" (its first link) or "NODE/IFNAME", len bytes of ref: 0 with *out
 * set, -ENOENT for an unknown node, -ENODEV when it has no such link */
int sim_scenario_ref(const struct sim_scenario *s, const char *ref, size_t len, const struct sim_link **out);
/* the link's host address as a socket address (port 0) */
void sim_link_ip(const struct sim_link *k, union sockaddr_any *out);
/* index of the node or network called name, or -ENOENT */
int sim_scenario_node(const struct sim_scenario *s, const char *name);

#endif
