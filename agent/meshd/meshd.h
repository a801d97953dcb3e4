/* meshd: the state of the natmesh agent (struct meshd) and of each peer
 * (struct mpeer), shared by the files that each own one concern of it:
 *
 *   main.c        options, start and stop
 *   datapath.c    the packet path: WireGuard socket, TUN, the device's ops
 *   stunmux.c     STUN on the WireGuard socket: parsed once, handed to its
 *                 owner (disco, natdisc, the relay's answerer); sans-I/O
 *   lost.c        sessions a peer still uses that this side lost
 *   iface.c       the interface's address and route, and its UAPI socket
 *   report.c      local endpoints and the report to the service
 *   natd.c        NAT behaviour discovery per address family (natinfo.h)
 *   peerpath.c    a peer's direct path: candidates in, actions out (path.h)
 *   relays.c      relay peers: liveness (disco's probes), the VPC route
 *                 through the chosen one
 *   peers.c       peers from the service: added, updated, removed
 *   service.c     the service client's events (registration, peer lists)
 *   schedule.c    housekeeping on the loop timer
 *   status.c      the control socket's answers (status, peers, ping)
 *   phases.c      when each step of the start-up critical path was reached
 *   ping.c        meshctl ping: an ICMP echo through the data plane
 *   enforce.c     security groups: this device's in nftables, and, on a
 *                 relay, every forwarded packet (enforce.h)
 *   policy_nft.c  a group rendered into table inet natmesh (policy_nft.h):
 *                 the plan and its nft text; policy_nft_batch.c sends it,
 *                 policy_nft_ctr.c reads its counters back
 *
 * One thread runs the event loop; two helper threads (svc.c) talk to
 * meshsvc. Nothing here is locked: every function runs on the loop's thread. */
#ifndef NATMESH_MESHD_MESHD_H
#define NATMESH_MESHD_MESHD_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agent/wg/device.h"
#include "agent/wg/uapi.h"
#include "ctl.h"
#include "disco.h"
#include "enforce.h"
#include "iplimit.h"
#include "loop.h"
#include "natdisc.h"
#include "netio.h"
#include "path.h"
#include "phases.h"
#include "statedir.h"
#include "stun/stun.h"
#include "stunmux.h"
#include "svc.h"
#include "vec.h"

#define COMPONENT "meshd"
#define BUF_SIZE (WG_DEVICE_HEADROOM + 65535 + WG_DEVICE_TAILROOM)
#define MAX_STUN 8
#define MAX_LOCAL 16
#define MAX_LOST 8			/* lost-session sources noted per batch */
#define ND_SOCKS 5			/* natdisc sockets besides the WireGuard one */
#define MESHD_MAX_PEERS 4096		/* a VPC larger than this is refused peer by peer */
#define MESHD_PEER_SLOTS (2 * MESHD_MAX_PEERS)	/* peers by id (peers.c): at most half full */

enum {
	OBSERVE_MIN_MS = 50,		/* under load, the data plane is looked at this often */
	LOCAL_CHECK_MS = 2000,		/* local addresses looked at this often */
	LOCAL_WATCHED_MS = 30000,	/* ... when rtnetlink tells us of changes */
	LOCAL_SETTLE_MS = 50,		/* a change often comes as a burst (address, route) */
	PING_TIMEOUT_MS = 2000,
	SVC_START_MAX_MS = 4000,	/* register without reflexive endpoints after this */
	LOST_KICK_MS = 5000,		/* one lost-session handshake per peer per REKEY_TIMEOUT */
};

struct opts {
	const char *service;
	const char *reg_key_file;
	const char *ca;
	const char *stun[MAX_STUN];
	int nstun;
	bool relay, relay_only;
	bool measure_lifetime;	/* --measure-lifetime: natd runs RFC 5780 4.6 too */
	bool no_offload;		/* --no-udp-offload */
	bool no_tun_offload;		/* --no-tun-offload */
	bool insecure_http;		/* --insecure-http: an http:// service */
	bool no_policy;			/* --no-policy: no nftables table, none at the relay */
	bool no_port_mapping;		/* --no-port-mapping */
	int port_mapping;		/* --port-mapping LIST: PORTMAP_* mask, 0: all */
	char ifname[IFNAMSIZ];
	char hostname[SVC_HOSTNAME_MAX + 1];
	int listen_port;		/* -1: saved or random */
	char state_dir[512];
	char ctl_path[108];
	uint32_t direct_timeout_ms;
	int threads;			/* --threads: AEAD threads, 0: one per CPU */
};

struct mpeer {
	char id[SVC_ID_MAX];
	char name[SVC_HOSTNAME_MAX + 1];
	uint8_t pub[SVC_KEY_LEN];
	union sockaddr_any tunnel_ip;
	bool relay, symmetric_nat;
	char group_id[SVC_ID_MAX];	/* its security group, as the service tells a relay */
	struct svc_endpoint ep[SVC_MAX_ENDPOINTS];
	int nep;
	bool seen;
	size_t idx;			/* in meshd.peers */

	struct wg_peer *wp;		/* NULL: not in the data plane (--relay-only) */
	bool use_path;
	struct path_peer path;
	uint64_t last_rx, last_tx;

	/* relays: where disco probes them (liveness: disco_server_find) */
	union sockaddr_any relay_addr;
	bool has_relay_addr;
	struct cidr rx_vpc;		/* the VPC CIDR accepted as inner sources */
	bool has_rx_vpc;

	bool hs_done;			/* the data plane said a handshake completed */
	bool owned_elsewhere;		/* a relay forwarded its packets to our DIRECT path */
	uint64_t last_keepalives;	/* wg_peer_state.tx_keepalives at the last look */
	uint64_t last_initiations;	/* wg_peer_state.rx_initiations at the last look */
	double ping_ms;			/* last answered ping, < 0: none */
	uint64_t lost_kick;		/* loop ms of the last lost-session handshake */
};

struct ping {
	struct ctl_conn *conn;
	struct mpeer *peer;
	uint16_t id, seq;
	uint64_t sent;			/* us, monotonic */
	uint64_t deadline;		/* loop ms */
};

struct meshd;

/* NAT behaviour (issue 7, natinfo.h): one natdisc run per address family,
 * against the first --stun server of that family */
struct natd {
	struct meshd *m;
	enum svc_family fam;
	struct natdisc *nd;
	struct nd_sock {	/* natdisc's sockets 1..ND_SOCKS (0 is the WireGuard one) */
		struct natd *d;
		int idx;
		struct netio_udp *u;
	} sock[ND_SOCKS];
	union sockaddr_any server;
	bool has_server;
	bool due;		/* a run is wanted (start, local address change) */
	unsigned seen;		/* tests_done already taken over */
	struct natdisc_result res;	/* the latest run's findings (while it runs, too) */
	bool has_res;
	uint32_t runs;
};

struct meshd {
	struct opts o;
	struct phases phases;	/* the start-up critical path (phases.h) */
	struct state st;
	struct loop *loop;
	struct netio *io;
	struct netio_tun *tun;
	struct netio_udp *udp;
	uint16_t port;
	int family;		/* the WireGuard socket's: AF_INET6 dual-stack, or AF_INET */
	struct wg_device *dev;
	struct wg_uapi_server *uapi;
	char uapi_path[108];
	struct ctl *ctl;
	struct svc *svc;		/* NULL until the first discovery round is over */
	uint64_t svc_due;		/* ... or until then */
	bool fatal;			/* the loop stopped on an error */
	char *reg_key;
	struct loop_timer timer;	/* the earliest deadline (schedule.c) */
	uint64_t timer_at;		/* loop ms it is armed for */
	uint64_t last_run;		/* loop ms of the last schedule_run() */
	bool hs_pending;		/* a handshake completed since then */
	int addr_watch;			/* rtnetlink notifications, -1 when none */
	struct loop_timer local_soon;	/* a change was notified: look soon */

	bool registered, iface_ready;
	char self_id[SVC_ID_MAX];
	struct cidr vpc;
	bool has_vpc;
	union sockaddr_any tip;		/* tunnel IP */

	struct vec peers;		/* struct mpeer *, at most MESHD_MAX_PEERS */
	struct mpeer *peer_slot[MESHD_PEER_SLOTS];	/* the same by id (peers.c) */
	struct mpeer *relay_in_use;
	uint32_t keepalive_s;	/* persistent keepalive behind NAT (peerpath_keepalive) */

	struct disco disco;
	uint32_t disco_gen;
	union sockaddr_any local[MAX_LOCAL];
	int nlocal;
	struct stunmux mux;
	uint64_t next_local_check;
	uint32_t local_check_ms;	/* LOCAL_CHECK_MS, or LOCAL_WATCHED_MS */
	struct svc_report report;
	bool service_reachable;

	struct ping ping;
	uint16_t ping_seq;

	struct netio_pkt udp_pkts[NETIO_BATCH_MAX];
	struct netio_pkt wg_pkts[NETIO_BATCH_MAX];
	struct netio_pkt tun_pkts[NETIO_BATCH_MAX];
	struct netio_pkt fwd_pkts[NETIO_BATCH_MAX];
	int nfwd;
	uint8_t *udp_bufs, *tun_bufs, *fwd_bufs;
	uint8_t ctl_buf[BUF_SIZE];
	uint64_t relay_forwarded;
	uint64_t relay_outside_vpc;	/* --relay: inner destinations outside the VPC, dropped */
	struct enforce pol;		/* security groups (enforce.c) */
	union sockaddr_any lost[MAX_LOST];	/* data for sessions we do not have, from */
	int nlost;
	uint64_t lost_handshakes;
	uint64_t lost_refused;		/* ... from no peer's known endpoint: nothing sent */
	struct iplimit initlimit;	/* sprays per destination IP (peerpath.c) */

	struct natd natd[SVC_FAMILIES];
	struct portmap_io *pmio;	/* port mapping (portmap_io.c), NULL: off */
};

static inline size_t meshd_npeers(const struct meshd *m)
{
	return m->peers.len;
}

static inline struct mpeer *meshd_peer(const struct meshd *m, size_t i)
{
	return VEC_PTR(&m->peers, struct mpeer *, i);
}

static inline uint64_t meshd_now(const struct meshd *m)
{
	return loop_now(m->loop);
}

/* the loop's clock in us, for the ping's round trip */
static inline uint64_t meshd_mono_us(void)
{
	return clock_now_ns() / 1000u;
}

/* "none" for no address */
const char *meshd_fmt_addr(const union sockaddr_any *a, char buf[ADDR_STRLEN]);

/* datapath.c */
extern const struct wg_device_ops datapath_dev_ops;
void datapath_udp_readable(struct loop *loop, int fd, uint32_t events, void *arg);
void datapath_tun_readable(struct loop *loop, int fd, uint32_t events, void *arg);
void datapath_send(struct meshd *m, const union sockaddr_any *to, const uint8_t *buf, size_t len);
/* --relay: where a decrypted packet is going (issue 15 point 9: a relay
 * writes to its TUN only what is for itself, and drops what is for outside
 * the VPC, IPv6 included, rather than route it into its host's networks) */
enum relay_dest {
	RELAY_DEST_SELF,
	RELAY_DEST_PEER,	/* forwarded */
	RELAY_DEST_OUTSIDE,	/* dropped, counted */
};
enum relay_dest datapath_relay_dest(const struct meshd *m, const uint8_t *ip, size_t len);


/* lost.c: sources noted during a batch, answered after it */
void lost_note(struct meshd *m, const union sockaddr_any *src);
void lost_answer(struct meshd *m);
/* p, whose data plane state is ps, gets a handshake to src: no live session
 * at wall time wall_s, src is an endpoint it is known at (port and all; for
 * a peer behind a symmetric NAT, the IP of a reflexive one), and no such
 * handshake went to it in the last LOST_KICK_MS (now, loop ms) */
bool lost_wanted(const struct mpeer *p, const struct wg_peer_state *ps, const union sockaddr_any *src,
		 uint64_t now, time_t wall_s);

/* iface.c */
int iface_configure(struct meshd *m);
void iface_uapi_open(struct meshd *m);
void iface_uapi_close(struct meshd *m);

/* report.c */
void report_build(const struct meshd *m, struct svc_report *r);
void report_if_changed(struct meshd *m);
void report_check_local(struct meshd *m);
void report_watch_start(struct meshd *m);
void report_watch_stop(struct meshd *m);

/* natd.c */
void natd_init(struct meshd *m);
void natd_start(struct natd *d, uint64_t now);
void natd_stop(struct natd *d);
void natd_pump(struct natd *d, uint64_t now);
/* a STUN datagram from the WireGuard socket to every running natdisc */

/* peerpath.c (and the device's handshake_complete op, in datapath.c) */
void peerpath_candidates(struct meshd *m, struct mpeer *p, uint64_t now);
void peerpath_observe(struct meshd *m, struct mpeer *p, uint64_t now);
/* "direct", "relayed", ... as meshctl shows it */
const char *peerpath_name(const struct mpeer *p);
/* the persistent keepalive for the NAT's measured mapping lifetime
 * (path_keepalive_s; 0: not measured), applied to every peer that has one */
void peerpath_keepalive(struct meshd *m, uint32_t lifetime_alive_ms);

/* relays.c */
void relays_choose(struct meshd *m, uint64_t now);
/* the ms of a relay's last answer to disco, 0: never; its probe's RTT */
uint64_t relays_last_answer(const struct meshd *m, const struct mpeer *r, uint64_t *rtt_ms, uint64_t *srtt_us);

/* peers.c */
void peers_sync(struct meshd *m, json_t *devices);
struct mpeer *peers_by_name(struct meshd *m, const char *name);
void peers_clear(struct meshd *m);

/* service.c */
int service_start(struct meshd *m);
void service_stop(struct meshd *m);

/* schedule.c: the one loop timer. Every event handler ends with
 * schedule_run() (the work due now, the timer re-armed), or, on the packet
 * path, schedule_poke() (the same at most every OBSERVE_MIN_MS, at once
 * after a handshake). */
void schedule_start(struct meshd *m);
void schedule_stop(struct meshd *m);
void schedule_run(struct meshd *m);
void schedule_poke(struct meshd *m);
/* the earliest deadline at now (loop ms) of everything schedule_run() does,
 * UINT64_MAX when nothing is armed */
uint64_t schedule_deadline(const struct meshd *m, uint64_t now);

/* status.c: the control socket's handler */
void status_ctl(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req);

/* portmap_io.c: the gateway's port mapping (portmap.h); start logs and
 * goes on without it on failure */
struct portmap_io;
int portmap_io_start(struct meshd *m);
void portmap_io_stop(struct meshd *m);
/* the mapped external address:port, false when there is none */
bool portmap_io_endpoint(const struct meshd *m, union sockaddr_any *out);
json_t *portmap_io_status(const struct meshd *m);

/* ping.c */
void ping_start(struct meshd *m, struct ctl_conn *c, struct mpeer *p);
/* an echo reply to our pending ping: consumed, answered on the control
 * socket; a peer's ping_tell (issue 17): consumed, no reply */
bool ping_take_reply(struct meshd *m, const uint8_t *ip, size_t len);
/* one echo to p through the data plane that tells it we lost the direct path */
void ping_tell(struct meshd *m, const struct mpeer *p);
void ping_expire(struct meshd *m, uint64_t now);
/* the pending ping, if any (or only the one to p), answered with an error */
void ping_cancel(struct meshd *m, const struct mpeer *p, const char *why);

#endif
