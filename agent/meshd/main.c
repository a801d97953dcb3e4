/* meshd: the natmesh agent. One thread runs the event loop with the
 * embedded WireGuard data plane (agent/wg/device.h), the one UDP socket that
 * WireGuard, STUN discovery, relay probes and (with --relay) the STUN server
 * share, the TUN interface, the control socket and the per-peer path
 * selection; two helper threads (svc.c) talk to meshsvc. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent/wg/device.h"
#include "agent/wg/uapi.h"
#include "ctl.h"
#include "disco.h"
#include "log.h"
#include "loop.h"
#include "natdisc.h"
#include "natinfo.h"
#include "netio.h"
#include "path.h"
#include "relay.h"
#include "rtnl.h"
#include "statedir.h"
#include "stun/stun.h"
#include "svc.h"

#define COMPONENT "meshd"
#define BUF_SIZE (WG_DEVICE_HEADROOM + 65535 + WG_DEVICE_TAILROOM)
#define BATCHES_PER_WAKE 8
#define MAX_STUN 8
#define MAX_LOCAL 16
#define MAX_LOST 8			/* lost-session sources noted per batch */
#define ND_SOCKS 3			/* natdisc sockets besides the WireGuard one */

enum {
	TICK_MS = 50,			/* housekeeping: peer state, paths, discovery */
	LOCAL_CHECK_MS = 2000,		/* local addresses looked at this often */
	LOCAL_WATCHED_MS = 30000,	/* ... when rtnetlink tells us of changes */
	LOCAL_SETTLE_MS = 50,		/* a change often comes as a burst (address, route) */
	PING_TIMEOUT_MS = 2000,
	SVC_START_MAX_MS = 4000,	/* register without reflexive endpoints after this */
	KEEPALIVE_S = PATH_KEEPALIVE_S,
	LOST_KICK_MS = 5000,		/* one lost-session handshake per peer per REKEY_TIMEOUT */
};

struct opts {
	const char *service;
	const char *reg_key_file;
	const char *ca;
	const char *stun[MAX_STUN];
	int nstun;
	bool relay, relay_only;
	bool no_offload;		/* --no-udp-offload */
	bool no_tun_offload;		/* --no-tun-offload */
	char ifname[IFNAMSIZ];
	char hostname[SVC_HOSTNAME_MAX + 1];
	int listen_port;		/* -1: saved or random */
	char state_dir[512];
	char ctl_path[108];
	uint32_t direct_timeout_ms;
};

struct mpeer {
	char id[SVC_ID_MAX];
	char name[SVC_HOSTNAME_MAX + 1];
	uint8_t pub[SVC_KEY_LEN];
	union sockaddr_any tunnel_ip;
	bool relay, symmetric_nat;
	struct svc_endpoint ep[SVC_MAX_ENDPOINTS];
	int nep;
	bool seen;

	struct wg_peer *wp;		/* NULL: not in the data plane (--relay-only) */
	bool use_path;
	struct path_peer path;
	struct timespec last_hs;
	uint64_t last_rx, last_tx;

	/* relays: health from STUN probes on the WireGuard socket */
	union sockaddr_any relay_addr;
	bool has_relay_addr;
	uint8_t probe_tid[STUN_TID_LEN];
	uint64_t probe_sent, last_answer;	/* loop ms */
	uint64_t probe_sent_us;
	double rtt_ms;			/* of the last probe answer */
	struct cidr rx_vpc;		/* the VPC CIDR accepted as inner sources */
	bool has_rx_vpc;

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

struct meshd {
	struct opts o;
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
	struct loop_timer tick;
	int addr_watch;			/* rtnetlink notifications, -1 when none */
	struct loop_timer local_soon;	/* a change was notified: look soon */

	bool registered, iface_ready;
	char self_id[SVC_ID_MAX];
	struct cidr vpc;
	bool has_vpc;
	union sockaddr_any tip;		/* tunnel IP */

	struct mpeer **peers;
	size_t npeers, cappeers;
	struct mpeer *relay_in_use;

	struct disco disco;
	uint32_t disco_gen;
	union sockaddr_any local[MAX_LOCAL];
	int nlocal;
	uint64_t next_local_check, next_relay_probe;
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
	union sockaddr_any lost[MAX_LOST];	/* data for sessions we do not have, from */
	int nlost;
	uint64_t lost_handshakes;

	/* NAT behaviour (issue 7, natinfo.h): one natdisc run per address
	 * family, against the first --stun server of that family */
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
	} natd[SVC_FAMILIES];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshd --service URL --reg-key-file F [options]\n"
		"\n"
		"The natmesh agent: a WireGuard interface (userspace data plane) whose peers\n"
		"come from meshsvc; direct tunnels through NATs, relay fallback and upgrade.\n"
		"\n"
		"  --service URL          meshsvc base URL (https://host:port)\n"
		"  --reg-key-file F       file holding the registration key\n"
		"  --ca F                 CA bundle to verify the service with\n"
		"  --stun HOST:PORT       a STUN server (repeat; relays are asked too)\n"
		"  --relay                act as a relay: register relay=true, forward between\n"
		"                         peers, answer STUN on the WireGuard port\n"
		"  --relay-only           never try direct tunnels; everything via the relay\n"
		"  --ifname NAME          interface name (default mesh0)\n"
		"  --hostname NAME        name to register (default: the host name)\n"
		"  --listen-port N        WireGuard/STUN UDP port (default: saved, else random)\n"
		"  --state-dir DIR        private key and saved state (default /var/lib/meshd/IFNAME)\n"
		"  --control PATH         control socket (default /run/meshd/IFNAME.sock)\n"
		"  --direct-timeout MS    direct attempt before the relay is used (default %d)\n"
		"  --no-udp-offload       no UDP GSO/GRO on the WireGuard socket (default: on\n"
		"                         where the kernel has it)\n"
		"  --no-tun-offload       a plain TUN: no TCP segmentation or checksum offload\n"
		"                         from the kernel (default: on where it has them)\n"
		"  --log-format text|json\n"
		"  --verbose              debug logs\n"
		"  --help\n"
		"\n"
		"SIGTERM/SIGINT remove the interface; the registration stays.\n",
		PATH_DIRECT_TIMEOUT_MS);
}

static uint64_t now_ms(struct meshd *m)
{
	return loop_now(m->loop);
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *fmt_addr(const union sockaddr_any *a, char *buf)
{
	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6)
		return "none";
	return addr_format(a, buf, ADDR_STRLEN);
}

static void natd_pump(struct natd *d, uint64_t now);

/* ---- packet path -------------------------------------------------------------- */

static void dev_udp_send(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshd *m = arg;
	(void)!netio_udp_send(m->io, m->udp, pkts, n);
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* an echo reply to our pending ping: consumed, answered on the control socket */
static bool take_ping_reply(struct meshd *m, const uint8_t *ip, size_t len)
{
	struct ping *pg = &m->ping;
	size_t ihl;

	if (!pg->conn || len < 20 || (ip[0] >> 4) != 4 || ip[9] != 1)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	if (len < ihl + 8 || ip[ihl] != 0)
		return false;
	if ((uint16_t)(ip[ihl + 4] << 8 | ip[ihl + 5]) != pg->id ||
	    (uint16_t)(ip[ihl + 6] << 8 | ip[ihl + 7]) != pg->seq)
		return false;
	pg->peer->ping_ms = (double)(mono_us() - pg->sent) / 1000.0;
	ctl_reply(pg->conn, json_pack("{s:s, s:f, s:s}", "peer", pg->peer->name, "rtt_ms",
				      pg->peer->ping_ms, "path",
				      pg->peer->use_path ? path_state_public(pg->peer->path.state)
							 : pg->peer->relay ? "direct" : "relayed"));
	pg->conn = NULL;
	return true;
}

/* --relay: a packet for another peer goes back into the data plane */
static bool relay_forward(struct meshd *m, const uint8_t *ip, size_t len)
{
	union sockaddr_any dst = { 0 };

	if (!m->o.relay || !m->has_vpc || len < 20 || (ip[0] >> 4) != 4)
		return false;
	dst.in.sin_family = AF_INET;
	memcpy(&dst.in.sin_addr, ip + 16, 4);
	if (addr_ip_equal(&dst, &m->tip) || !cidr_contains(&m->vpc, &dst))
		return false;
	if (m->nfwd >= NETIO_BATCH_MAX || len > BUF_SIZE - WG_DEVICE_HEADROOM - WG_DEVICE_TAILROOM)
		return true;	/* dropped: the batch is full */
	struct netio_pkt *p = &m->fwd_pkts[m->nfwd++];
	p->data = m->fwd_bufs + (size_t)(m->nfwd - 1) * BUF_SIZE + WG_DEVICE_HEADROOM;
	p->cap = BUF_SIZE - WG_DEVICE_HEADROOM;
	memcpy(p->data, ip, len);
	p->len = len;
	return true;
}

static void dev_tun_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshd *m = arg;
	struct netio_pkt out[NETIO_BATCH_MAX];
	int k = 0;

	for (int i = 0; i < n; i++) {
		if (take_ping_reply(m, pkts[i].data, pkts[i].len) ||
		    relay_forward(m, pkts[i].data, pkts[i].len))
			continue;
		out[k++] = pkts[i];
	}
	if (k)
		(void)!netio_tun_write(m->io, m->tun, out, k);
}

/* data for a session this side does not have (wg_device_ops): noted here,
 * answered by lost_sessions() once the batch is through */
static void dev_unknown_session(void *arg, const union sockaddr_any *src)
{
	struct meshd *m = arg;

	for (int i = 0; i < m->nlost; i++)
		if (addr_equal(&m->lost[i], src))
			return;
	if (m->nlost < MAX_LOST)
		m->lost[m->nlost++] = *src;
}

static const struct wg_device_ops dev_ops = {
	.udp_send = dev_udp_send,
	.tun_deliver = dev_tun_deliver,
	.unknown_session = dev_unknown_session,
};

static void send_udp(struct meshd *m, const union sockaddr_any *to, const uint8_t *buf, size_t len)
{
	struct netio_pkt p = { .data = (uint8_t *)buf, .len = len, .cap = len, .addr = *to };

	(void)!netio_udp_send(m->io, m->udp, &p, 1);
}

static struct mpeer *relay_by_probe(struct meshd *m, const uint8_t *buf, size_t len)
{
	if (len < STUN_HEADER_LEN)
		return NULL;
	for (size_t i = 0; i < m->npeers; i++) {
		struct mpeer *p = m->peers[i];
		if (p->relay && p->probe_sent && !memcmp(p->probe_tid, buf + 8, STUN_TID_LEN))
			return p;
	}
	return NULL;
}

/* STUN on the WireGuard socket: our discovery's answers, relay probe answers,
 * and (with --relay) Binding requests to answer */
static void handle_stun(struct meshd *m, const struct netio_pkt *pkt)
{
	union sockaddr_any from = pkt->addr;
	struct mpeer *r;
	int rc;

	addr_unmap_v4(&from);
	for (int f = 0; f < SVC_FAMILIES; f++) {
		struct natd *d = &m->natd[f];
		if (!d->nd)
			continue;
		/* it ignores what is not an answer to its own requests */
		natdisc_receive(d->nd, 0, &from, pkt->data, pkt->len, now_ms(m));
		natd_pump(d, now_ms(m));
	}
	rc = disco_receive(&m->disco, pkt->data, pkt->len, &from, now_ms(m));
	if (rc == 0)
		return;
	if (rc != STUN_E_TXN) {
		char a[ADDR_STRLEN];
		log_debug(COMPONENT, "bad STUN datagram dropped from=%s err=\"%s\"", fmt_addr(&from, a),
			  stun_strerror(rc));
		return;
	}
	if ((pkt->data[0] & 0x01) == 0 && (pkt->data[1] & 0x10) == 0) {
		/* a request */
		struct stun_server_cfg cfg = { 0 };
		struct stun_server_reply rep;
		uint8_t out[512];

		if (!m->o.relay)
			return;
		addr_parse_ip("0.0.0.0", m->port, &cfg.addrs[0][0]);
		cfg.software = "natmesh meshd relay";
		if (stun_server_answer(&cfg, 0, 0, &pkt->addr, pkt->data, pkt->len, out, sizeof(out), &rep) == 0 &&
		    rep.verdict == STUN_SRV_REPLY)
			send_udp(m, &pkt->addr, out, rep.len);
		return;
	}
	if ((r = relay_by_probe(m, pkt->data, pkt->len))) {
		struct stun_msg msg;
		if (stun_parse(pkt->data, pkt->len, &msg) == 0 && msg.cls == STUN_CLASS_SUCCESS) {
			r->last_answer = now_ms(m);
			r->rtt_ms = (double)(mono_us() - r->probe_sent_us) / 1000.0;
			r->probe_sent = 0;
		}
	}
}

/* Data for a session we lost (this side restarted; a relay, say): the
 * sender's WireGuard gives up on that session only after 15 s without an
 * answer, and a peer behind a symmetric NAT cannot be reached at any address
 * we know before it does. So every peer without a live session here whose
 * known addresses share the source's IP gets a handshake to that very source
 * address, which its NAT admits since the peer just sent from it; when several
 * peers share the IP, the wrong ones drop it (mac1 is keyed to the receiver).
 * One per peer per LOST_KICK_MS. */
static void lost_sessions(struct meshd *m)
{
	uint64_t now = now_ms(m);
	struct timespec rt;
	char a[ADDR_STRLEN];

	clock_gettime(CLOCK_REALTIME, &rt);
	for (int i = 0; i < m->nlost; i++) {
		const union sockaddr_any *src = &m->lost[i];

		for (size_t j = 0; j < m->npeers; j++) {
			struct mpeer *p = m->peers[j];
			struct wg_peer_state ps;
			bool known;

			if (!p->wp || (p->lost_kick && now < p->lost_kick + LOST_KICK_MS))
				continue;
			wg_peer_get_state(p->wp, &ps);
			if (ps.last_handshake.tv_sec &&
			    rt.tv_sec - ps.last_handshake.tv_sec < (time_t)(WG_REJECT_AFTER_TIME_NS / WG_NSEC_PER_SEC))
				continue;	/* a live session: not the one lost */
			known = ps.endpoint.sa.sa_family != AF_UNSPEC && addr_ip_equal(&ps.endpoint, src);
			for (int e = 0; !known && e < p->nep; e++)
				known = addr_ip_equal(&p->ep[e].addr, src);
			if (!known)
				continue;
			p->lost_kick = now;
			if (wg_peer_initiate_to(p->wp, src, 1) > 0) {
				m->lost_handshakes++;
				log_info(COMPONENT, "handshake to a peer still sending on a lost session peer=%s to=%s",
					 p->name, addr_format(src, a, sizeof(a)));
			}
		}
	}
	m->nlost = 0;
}

/* WireGuard's datagrams (m->wg_pkts) into the data plane, then what that
 * left to do: sessions we lost to answer, packets this relay forwards */
static void wg_input(struct meshd *m, int nwg)
{
	m->nfwd = 0;
	wg_device_input_udp(m->dev, m->wg_pkts, nwg);
	if (m->nlost)
		lost_sessions(m);
	if (m->nfwd) {
		int k = m->nfwd;
		m->relay_forwarded += (uint64_t)k;
		m->nfwd = 0;
		wg_device_input_tun(m->dev, m->fwd_pkts, k);
	}
}

static void udp_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	struct netio_pkt segs[NETIO_SEGS_MAX];
	(void)loop, (void)fd, (void)events;

	for (int b = 0; b < BATCHES_PER_WAKE; b++) {
		int n, nwg = 0;

		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			m->udp_pkts[i].data = m->udp_bufs + (size_t)i * BUF_SIZE;
			m->udp_pkts[i].cap = BUF_SIZE;
		}
		n = netio_udp_recv(m->io, m->udp, m->udp_pkts, NETIO_BATCH_MAX);
		if (n <= 0)
			return;
		/* each datagram (a GRO run is cut apart), STUN out before
		 * WireGuard sees the batch */
		for (int i = 0; i < n; i++) {
			int k = netio_pkt_split(&m->udp_pkts[i], segs, NETIO_SEGS_MAX);
			for (int j = 0; j < k; j++) {
				if (stun_is_stun(segs[j].data, segs[j].len)) {
					handle_stun(m, &segs[j]);
					continue;
				}
				m->wg_pkts[nwg++] = segs[j];
				if (nwg == NETIO_BATCH_MAX) {
					wg_input(m, nwg);
					nwg = 0;
				}
			}
		}
		if (nwg)
			wg_input(m, nwg);
		if (n < NETIO_BATCH_MAX)
			return;
	}
}

static void tun_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	(void)loop, (void)fd, (void)events;

	/* past the limit only for the packets of a super-packet already read,
	 * which the descriptor does not signal */
	for (int b = 0; b < BATCHES_PER_WAKE || netio_tun_pending(m->io, m->tun); b++) {
		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			m->tun_pkts[i].data = m->tun_bufs + (size_t)i * BUF_SIZE + WG_DEVICE_HEADROOM;
			m->tun_pkts[i].cap = BUF_SIZE - WG_DEVICE_HEADROOM - WG_DEVICE_TAILROOM;
		}
		int n = netio_tun_read(m->io, m->tun, m->tun_pkts, NETIO_BATCH_MAX);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++)
			m->tun_pkts[i].cap += WG_DEVICE_TAILROOM;
		wg_device_input_tun(m->dev, m->tun_pkts, n);
		if (n < NETIO_BATCH_MAX)
			return;
	}
}

/* ---- interface --------------------------------------------------------------------- */

static int iface_configure(struct meshd *m)
{
	struct cidr host = { .family = AF_INET, .prefix = 32 };
	char a[CIDR_STRLEN], b[CIDR_STRLEN];
	int rc;

	memcpy(host.addr, &m->tip.in.sin_addr, 4);
	rc = netio_addr_add(m->io, m->o.ifname, &host);
	if (rc < 0 && rc != -EEXIST) {
		log_error(COMPONENT, "cannot set tunnel address ifname=%s addr=%s err=\"%s\"", m->o.ifname,
			  cidr_format(&host, a, sizeof(a)), strerror(-rc));
		return rc;
	}
	rc = netio_link_up(m->io, m->o.ifname, WG_DEFAULT_MTU);
	if (rc < 0) {
		log_error(COMPONENT, "cannot bring up ifname=%s err=\"%s\"", m->o.ifname, strerror(-rc));
		return rc;
	}
	rc = netio_route_add(m->io, m->o.ifname, &m->vpc);
	if (rc < 0 && rc != -EEXIST) {
		log_error(COMPONENT, "cannot route the VPC ifname=%s cidr=%s err=\"%s\"", m->o.ifname,
			  cidr_format(&m->vpc, b, sizeof(b)), strerror(-rc));
		return rc;
	}
	m->iface_ready = true;
	log_info(COMPONENT, "interface up ifname=%s tunnel_ip=%s vpc=%s", m->o.ifname,
		 cidr_format(&host, a, sizeof(a)), cidr_format(&m->vpc, b, sizeof(b)));
	return 0;
}

/* ---- endpoints and the report ------------------------------------------------------ */

static bool usable_local(struct meshd *m, const union sockaddr_any *a)
{
	if (m->has_vpc && cidr_contains(&m->vpc, a))
		return false;	/* our own tunnel address, or another mesh's */
	/* an IPv4 socket cannot take what peers would send to these */
	return a->sa.sa_family == AF_INET || m->family == AF_INET6;
}

static void build_report(struct meshd *m, struct svc_report *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->hostname, sizeof(r->hostname), "%s", m->o.hostname);
	r->relay = m->o.relay;
	for (int i = 0; i < m->nlocal && r->nep < SVC_MAX_ENDPOINTS; i++) {
		strcpy(r->ep[r->nep].source, "local");
		r->ep[r->nep].addr = m->local[i];
		r->nep++;
	}
	for (int i = 0; i < m->disco.nsrv && r->nep < SVC_MAX_ENDPOINTS; i++) {
		const struct disco_server *s = &m->disco.srv[i];
		bool dup = false;
		if (!s->answered)
			continue;
		for (int j = 0; j < r->nep && !dup; j++)
			dup = addr_equal(&r->ep[j].addr, &s->mapped) && !strcmp(r->ep[j].source, s->label);
		if (dup)
			continue;
		snprintf(r->ep[r->nep].source, sizeof(r->ep[0].source), "%s", s->label);
		r->ep[r->nep].addr = s->mapped;
		r->nep++;
	}
	r->symmetric_nat = m->disco.res.symmetric_nat;
	for (int f = 0; f < SVC_FAMILIES; f++)
		if (m->natd[f].has_res)
			natinfo_from_result(&m->natd[f].res, &r->nat[f]);
}

static void peer_candidates(struct meshd *m, struct mpeer *p, uint64_t now);

static void report_if_changed(struct meshd *m)
{
	struct svc_report r;

	build_report(m, &r);
	if (!memcmp(&r, &m->report, sizeof(r)))
		return;
	m->report = r;
	log_info(COMPONENT, "endpoints changed count=%d symmetric_nat=%s", r.nep,
		 r.symmetric_nat ? "true" : "false");
	if (m->svc)
		svc_set_report(m->svc, &r);
	/* our side of the candidate order (same NAT or not) may have changed */
	for (size_t i = 0; i < m->npeers; i++)
		peer_candidates(m, m->peers[i], now_ms(m));
}

static void check_local(struct meshd *m)
{
	union sockaddr_any all[MAX_LOCAL], use[MAX_LOCAL];
	int n = netio_local_addrs(m->io, all, MAX_LOCAL), k = 0;

	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		addr_set_port(&all[i], m->port);
		if (usable_local(m, &all[i]))
			use[k++] = all[i];
	}
	if (k == m->nlocal && !memcmp(use, m->local, (size_t)k * sizeof(use[0])))
		return;
	memcpy(m->local, use, (size_t)k * sizeof(use[0]));
	if (m->nlocal)
		log_info(COMPONENT, "local addresses changed count=%d: discovery again", k);
	m->nlocal = k;
	disco_kick(&m->disco, now_ms(m));
	for (int f = 0; f < SVC_FAMILIES; f++)
		m->natd[f].due = m->natd[f].has_server;
	report_if_changed(m);
}

/* ---- NAT behaviour (natinfo.h) ------------------------------------------------ */

static void natd_stop(struct natd *d)
{
	struct meshd *m = d->m;

	for (int i = 0; i < ND_SOCKS; i++) {
		struct nd_sock *k = &d->sock[i];
		if (!k->u)
			continue;
		loop_del_fd(m->loop, netio_udp_fd(m->io, k->u));
		netio_udp_close(m->io, k->u);
		k->u = NULL;
	}
	natdisc_free(d->nd);
	d->nd = NULL;
}

/* a run per family that has a --stun server (they are all in disco now) */
static void natd_init(struct meshd *m)
{
	union sockaddr_any srv[DISCO_MAX_SERVERS];
	int idx[SVC_FAMILIES];

	for (int i = 0; i < m->disco.nsrv && i < DISCO_MAX_SERVERS; i++) {
		srv[i] = m->disco.srv[i].addr;
		addr_unmap_v4(&srv[i]);
	}
	natinfo_pick_servers(srv, m->disco.nsrv, m->family, idx);
	for (int f = 0; f < SVC_FAMILIES; f++) {
		struct natd *d = &m->natd[f];

		*d = (struct natd){ .m = m, .fam = (enum svc_family)f };
		if (idx[f] < 0)
			continue;
		d->server = srv[idx[f]];
		d->has_server = d->due = true;
	}
}

/* takes over verdicts as they come; the report follows on the next tick */
static void natd_take(struct natd *d)
{
	const struct natdisc_result *r = natdisc_result(d->nd);
	const char *fam = svcjson_family_name(d->fam);
	char line[192], srv[ADDR_STRLEN];

	if (r->tests_done == d->seen && !natdisc_done(d->nd))
		return;
	d->seen = r->tests_done;
	d->res = *r;
	d->has_res = true;
	if (!natdisc_done(d->nd))
		return;
	natinfo_describe(r, line, sizeof(line));
	if (r->error != NATDISC_OK)
		log_warn(COMPONENT, "NAT behaviour unknown family=%s server=%s reason=\"%s\"", fam,
			 fmt_addr(&d->server, srv), natdisc_strerror(r->error));
	else
		log_info(COMPONENT, "NAT behaviour family=%s mapping=%s filtering=%s behind_nat=%s summary=\"%s\"",
			 fam, natdisc_dep_name(r->mapping), natdisc_dep_name(r->filtering),
			 r->nat ? "true" : "false", line);
	natd_stop(d);
}

static void natd_pump(struct natd *d, uint64_t now)
{
	struct meshd *m = d->m;
	struct natdisc_send out;

	if (!d->nd)
		return;
	while (natdisc_poll(d->nd, now, &out) == 1) {
		struct netio_pkt p = { .data = (uint8_t *)out.buf, .len = out.len, .cap = out.len, .addr = out.dst };
		if (out.sock == 0)
			(void)!netio_udp_send(m->io, m->udp, &p, 1);
		else if (out.sock >= 1 && out.sock <= ND_SOCKS && d->sock[out.sock - 1].u)
			(void)!netio_udp_send(m->io, d->sock[out.sock - 1].u, &p, 1);
	}
	natd_take(d);
}

static void natd_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct nd_sock *k = arg;
	struct natd *d = k->d;
	struct meshd *m = d->m;
	uint8_t buf[1500];
	(void)loop, (void)fd, (void)events;

	for (int i = 0; i < NETIO_BATCH_MAX && d->nd && k->u; i++) {
		struct netio_pkt p = { .data = buf, .cap = sizeof(buf) };
		if (netio_udp_recv(m->io, k->u, &p, 1) != 1)
			break;
		addr_unmap_v4(&p.addr);
		natdisc_receive(d->nd, k->idx, &p.addr, p.data, p.len, now_ms(m));
	}
	natd_pump(d, now_ms(m));
}

/* A run in one family: the mapping test from the WireGuard socket, the
 * filtering test from a fresh socket on the same local address, the
 * hairpinning test from two more. Over IPv4 it finds the NAT; over IPv6 a
 * firewall's filtering (or NAT66). */
static void natd_start(struct natd *d, uint64_t now)
{
	struct meshd *m = d->m;
	struct natdisc_cfg cfg = { .server = d->server,
				   .tests = NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING | NATDISC_TEST_HAIRPIN };
	union sockaddr_any local = { 0 };
	int rc, i;

	d->due = false;
	natd_stop(d);
	if ((i = natinfo_pick_local(m->local, m->nlocal, d->fam)) < 0)
		return;	/* no address of that family yet; the next change starts a run */
	local = m->local[i];
	if ((rc = natdisc_new(&cfg, &d->nd)) < 0) {
		log_warn(COMPONENT, "NAT behaviour discovery not started family=%s err=\"%s\"",
			 svcjson_family_name(d->fam), strerror(-rc));
		return;
	}
	natdisc_set_local(d->nd, 0, &local);
	addr_set_port(&local, 0);
	for (int k = 1; k < natdisc_nsocks(d->nd) && k <= ND_SOCKS; k++) {
		struct nd_sock *ks = &d->sock[k - 1];
		union sockaddr_any l;

		*ks = (struct nd_sock){ .d = d, .idx = k };
		if ((rc = netio_udp_open(m->io, &local, &ks->u)) < 0 ||
		    (rc = netio_udp_local(m->io, ks->u, &l)) < 0 ||
		    (rc = loop_add_fd(m->loop, netio_udp_fd(m->io, ks->u), LOOP_READ, natd_readable, ks)) < 0) {
			log_warn(COMPONENT, "NAT behaviour discovery: no socket %d family=%s err=\"%s\"", k,
				 svcjson_family_name(d->fam), strerror(-rc));
			if (ks->u)
				netio_udp_close(m->io, ks->u);
			ks->u = NULL;
			natd_stop(d);
			return;
		}
		natdisc_set_local(d->nd, k, &l);
	}
	if (natdisc_start(d->nd, now) < 0) {
		natd_stop(d);
		return;
	}
	d->seen = 0;
	d->runs++;
	natd_pump(d, now);
}

/* ---- paths ----------------------------------------------------------------------------- */

/* issue 5: the same initiation to every candidate at once; whichever copy
 * is answered first wins and the data plane roams to where the answer came
 * from. The path schedule paces the sprays. */
static void spray(struct mpeer *p)
{
	int rc;

	if (!p->wp || p->path.ncands == 0)
		return;
	rc = wg_peer_initiate_to(p->wp, p->path.cands, p->path.ncands);
	if (rc < 0)
		log_warn(COMPONENT, "spray not sent peer=%s err=\"%s\"", p->name, strerror(-rc));
	else
		log_debug(COMPONENT, "handshake initiation peer=%s candidates=%d", p->name, rc);
}

static void apply(struct mpeer *p, const struct path_out *o, enum path_state before)
{
	struct cidr host = { .family = AF_INET, .prefix = 32 };
	char a[ADDR_STRLEN];

	memcpy(host.addr, &p->tunnel_ip.in.sin_addr, 4);
	for (int i = 0; i < o->n; i++) {
		switch (o->act[i].type) {
		case PATH_ACT_SPRAY:
			spray(p);
			break;
		case PATH_ACT_DIRECT:
			if (wg_peer_allowed_ip_add(p->wp, &host) < 0)
				log_warn(COMPONENT, "cannot install direct route peer=%s", p->name);
			wg_peer_set_persistent_keepalive(p->wp, KEEPALIVE_S);
			break;
		case PATH_ACT_RELAY:
			wg_peer_allowed_ip_remove(p->wp, &host);
			wg_peer_set_persistent_keepalive(p->wp, 0);
			break;
		}
	}
	if (p->path.state != before)
		log_info(COMPONENT, "path peer=%s from=%s to=%s endpoint=%s", p->name, path_state_name(before),
			 path_state_name(p->path.state), fmt_addr(&p->path.endpoint, a));
}

static void peer_candidates(struct meshd *m, struct mpeer *p, uint64_t now)
{
	struct path_cand mine[SVC_MAX_ENDPOINTS], theirs[SVC_MAX_ENDPOINTS];
	union sockaddr_any order[PATH_MAX_CANDS];
	struct path_out o = { 0 };
	enum path_state before = p->path.state;
	int n;

	if (!p->use_path)
		return;
	for (int i = 0; i < m->report.nep; i++) {
		mine[i].addr = m->report.ep[i].addr;
		mine[i].reflexive = strcmp(m->report.ep[i].source, "local") != 0;
	}
	for (int i = 0; i < p->nep; i++) {
		theirs[i].addr = p->ep[i].addr;
		theirs[i].reflexive = strcmp(p->ep[i].source, "local") != 0;
	}
	n = path_order_candidates(mine, m->report.nep, theirs, p->nep, order, PATH_MAX_CANDS);
	path_learn(&p->path, order, n, now, &o);
	apply(p, &o, before);
}

/* what the data plane did since the last look: handshakes, packets */
static void peer_observe(struct mpeer *p, uint64_t now)
{
	struct wg_peer_state s;
	struct path_out o = { 0 };
	enum path_state before = p->path.state;

	if (!p->wp)
		return;
	wg_peer_get_state(p->wp, &s);
	if (p->use_path) {
		if ((s.last_handshake.tv_sec || s.last_handshake.tv_nsec) &&
		    (s.last_handshake.tv_sec != p->last_hs.tv_sec || s.last_handshake.tv_nsec != p->last_hs.tv_nsec))
			path_handshake(&p->path, &s.endpoint, now, &o);
		if (s.rx_bytes != p->last_rx)
			path_rx(&p->path, now);
		else if (s.tx_bytes != p->last_tx)
			path_tx(&p->path, now);
		if (now >= path_deadline(&p->path))
			path_tick(&p->path, now, &o);
		apply(p, &o, before);
	}
	p->last_hs = s.last_handshake;
	p->last_rx = s.rx_bytes;
	p->last_tx = s.tx_bytes;
}

/* ---- relays -------------------------------------------------------------------------- */

/* every relay may forward to us from any peer of the VPC: agents choose
 * relays by their own round trips, and a peer may reach us through a relay
 * while we reach it directly (relay.h) */
static void relay_accept_vpc(struct meshd *m, struct mpeer *r)
{
	int rc;

	if (!m->has_vpc || !r->wp || (r->has_rx_vpc && !memcmp(&r->rx_vpc, &m->vpc, sizeof(m->vpc))))
		return;
	if (r->has_rx_vpc)
		wg_peer_rx_source_remove(r->wp, &r->rx_vpc);
	rc = wg_peer_rx_source_add(r->wp, &m->vpc);
	r->has_rx_vpc = rc == 0;
	if (rc < 0)
		log_warn(COMPONENT, "relay cannot forward to us relay=%s err=\"%s\"", r->name, strerror(-rc));
	else
		r->rx_vpc = m->vpc;
}

static uint64_t handshake_rtt_us(const struct mpeer *p)
{
	struct wg_peer_state s;

	if (!p->wp)
		return 0;
	wg_peer_get_state(p->wp, &s);
	return s.handshake_rtt_ns ? (s.handshake_rtt_ns + 999) / 1000 : 0;
}

/* the relay choice itself is relay.c's: alive, lowest handshake RTT */
static void relay_choose(struct meshd *m, uint64_t now)
{
	struct relay_cand c[DISCO_MAX_SERVERS];
	struct mpeer *who[DISCO_MAX_SERVERS], *best, *cur = m->relay_in_use;
	bool had = cur != NULL;
	int n = 0, icur = -1, pick;

	if (m->o.relay)
		return;
	for (size_t i = 0; i < m->npeers && n < DISCO_MAX_SERVERS; i++) {
		struct mpeer *r = m->peers[i];
		if (!r->relay || !r->wp)
			continue;
		relay_accept_vpc(m, r);
		if (r == cur)
			icur = n;
		c[n].id = r->id;
		c[n].last_answer = r->last_answer;
		c[n].rtt_us = handshake_rtt_us(r);
		who[n++] = r;
	}
	pick = relay_pick(c, n, icur, now);
	best = pick >= 0 ? who[pick] : NULL;
	if (best && best != cur) {
		if (m->has_vpc && wg_peer_allowed_ip_add(best->wp, &m->vpc) < 0)
			log_warn(COMPONENT, "cannot route the VPC via relay=%s", best->name);
		log_info(COMPONENT, "relay in use relay=%s handshake_rtt_us=%" PRIu64 " alive=%s previous=%s previous_rtt_us=%" PRIu64,
			 best->name, c[pick].rtt_us, relay_alive(&c[pick], now) ? "true" : "false",
			 cur ? cur->name : "none", icur >= 0 ? c[icur].rtt_us : 0);
		m->relay_in_use = best;
	}
	if (had != (m->relay_in_use != NULL))
		for (size_t i = 0; i < m->npeers; i++)
			if (m->peers[i]->use_path)
				path_relay(&m->peers[i]->path, m->relay_in_use != NULL, now);
}

static void relay_probe(struct meshd *m, uint64_t now)
{
	const struct stun_request_opts opts = { .fingerprint = true };

	for (size_t i = 0; i < m->npeers; i++) {
		struct mpeer *r = m->peers[i];
		uint8_t req[128];
		int len;

		if (!r->relay || !r->has_relay_addr)
			continue;
		if (stun_tid_random(r->probe_tid) < 0)
			continue;
		len = stun_build_binding_request(req, sizeof(req), r->probe_tid, &opts);
		if (len < 0)
			continue;
		r->probe_sent = now;
		r->probe_sent_us = mono_us();
		send_udp(m, &r->relay_addr, req, (size_t)len);
	}
}

/* ---- peers from the service ----------------------------------------------------------- */

static struct mpeer *peer_find(struct meshd *m, const char *id)
{
	for (size_t i = 0; i < m->npeers; i++)
		if (!strcmp(m->peers[i]->id, id))
			return m->peers[i];
	return NULL;
}

static void peer_drop(struct meshd *m, size_t i)
{
	struct mpeer *p = m->peers[i];

	log_info(COMPONENT, "peer removed peer=%s", p->name);
	if (m->ping.peer == p && m->ping.conn) {
		ctl_reply_error(m->ping.conn, "peer removed");
		m->ping.conn = NULL;
	}
	if (m->relay_in_use == p)
		m->relay_in_use = NULL;
	if (p->wp)
		wg_device_peer_remove(m->dev, p->wp);
	sodium_memzero(p, sizeof(*p));
	free(p);
	m->peers[i] = m->peers[--m->npeers];
}

static int peer_add(struct meshd *m, const struct svc_device *d, struct mpeer **out)
{
	struct mpeer *p;
	int rc;

	if (m->npeers == m->cappeers) {
		size_t cap = m->cappeers ? m->cappeers * 2 : 16;
		struct mpeer **v = realloc(m->peers, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->peers = v;
		m->cappeers = cap;
	}
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	snprintf(p->id, sizeof(p->id), "%s", d->id);
	memcpy(p->pub, d->public_key, SVC_KEY_LEN);
	p->tunnel_ip = d->tunnel_ip;
	p->relay = d->relay;
	p->ping_ms = -1;
	/* --relay-only keeps non-relay peers out of the data plane, so their
	 * direct attempts fail and both sides use the relay */
	if (!(m->o.relay_only && !d->relay && !m->o.relay)) {
		rc = wg_device_peer_add(m->dev, d->public_key, &p->wp);
		if (rc < 0) {
			free(p);
			return rc;
		}
	}
	p->use_path = p->wp && !m->o.relay && !d->relay;
	path_init(&p->path, &(struct path_cfg){
			  .direct_timeout_ms = m->o.direct_timeout_ms,
			  /* the side with the higher key yields: see path.h */
			  .spray_delay_ms = memcmp(m->st.pub, d->public_key, SVC_KEY_LEN) > 0 ? PATH_SPRAY_YIELD_MS : 0,
		  }, m->relay_in_use != NULL, now_ms(m));
	if (p->wp && (m->o.relay || d->relay)) {
		struct cidr host = { .family = AF_INET, .prefix = 32 };
		memcpy(host.addr, &d->tunnel_ip.in.sin_addr, 4);
		wg_peer_allowed_ip_add(p->wp, &host);
	}
	m->peers[m->npeers++] = p;
	*out = p;
	return 0;
}

/* --relay: agents reach relays, not the other way round, and a relay learns
 * an agent's endpoint when the agent sends (roaming). After a relay restart
 * an agent with nothing to send is silent for up to a keepalive (20 s), and
 * forwarding to it needs an address before that: its mapping as a relay or a
 * STUN server saw it, which an endpoint-independent NAT keeps open towards the
 * relay too, since the agent keeps sending there. (A symmetric NAT does not;
 * lost_sessions() answers those agents when they send.) An endpoint the data
 * plane already has is never replaced. */
static void relay_seed_endpoint(struct mpeer *p)
{
	struct wg_peer_state ps;

	wg_peer_get_state(p->wp, &ps);
	if (ps.endpoint.sa.sa_family != AF_UNSPEC)
		return;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < p->nep; i++)
			if (pass == 0 ? !strcmp(p->ep[i].source, "relay")
				      : !strncmp(p->ep[i].source, "stun:", 5)) {
				wg_peer_set_endpoint(p->wp, &p->ep[i].addr);
				return;
			}
}

static void peer_update(struct meshd *m, struct mpeer *p, const struct svc_device *d)
{
	snprintf(p->name, sizeof(p->name), "%s", d->hostname[0] ? d->hostname : d->id);
	p->symmetric_nat = d->symmetric_nat;
	memcpy(p->ep, d->ep, sizeof(d->ep));
	p->nep = d->nep;
	if (p->relay && p->wp) {
		/* a relay is publicly reachable: its local endpoint first */
		bool had = p->has_relay_addr;
		for (int i = 0; i < p->nep && !p->has_relay_addr; i++)
			if (!strcmp(p->ep[i].source, "local") && p->ep[i].addr.sa.sa_family == AF_INET) {
				p->relay_addr = p->ep[i].addr;
				p->has_relay_addr = true;
			}
		for (int i = 0; i < p->nep && !p->has_relay_addr; i++) {
			p->relay_addr = p->ep[i].addr;
			p->has_relay_addr = true;
		}
		if (p->has_relay_addr && !had && !m->o.relay) {
			wg_peer_set_endpoint(p->wp, &p->relay_addr);
			wg_peer_set_persistent_keepalive(p->wp, KEEPALIVE_S);
		}
	}
	if (m->o.relay && p->wp && !p->relay)
		relay_seed_endpoint(p);
	peer_candidates(m, p, now_ms(m));
}

static void sync_peers(struct meshd *m, json_t *devices)
{
	union sockaddr_any relays[DISCO_MAX_SERVERS];
	int nrelays = 0;
	size_t i;
	json_t *j;

	for (i = 0; i < m->npeers; i++)
		m->peers[i]->seen = false;
	json_array_foreach(devices, i, j) {
		struct svc_device d;
		struct svc_err err;
		struct mpeer *p;
		int rc;

		if (svcjson_parse_device(j, &d, &err) < 0) {
			log_warn(COMPONENT, "peer entry skipped index=%zu field=%s reason=\"%s\"", i, err.field,
				 err.msg);
			continue;
		}
		if (!strcmp(d.id, m->self_id) || !memcmp(d.public_key, m->st.pub, SVC_KEY_LEN))
			continue;
		p = peer_find(m, d.id);
		if (p && (memcmp(p->pub, d.public_key, SVC_KEY_LEN) || !addr_ip_equal(&p->tunnel_ip, &d.tunnel_ip) ||
			  p->relay != d.relay)) {
			for (size_t k = 0; k < m->npeers; k++)
				if (m->peers[k] == p) {
					peer_drop(m, k);
					break;
				}
			p = NULL;
		}
		if (!p) {
			char a[ADDR_STRLEN];
			if ((rc = peer_add(m, &d, &p)) < 0) {
				log_warn(COMPONENT, "peer skipped id=%s reason=\"%s\"", d.id, strerror(-rc));
				continue;
			}
			log_info(COMPONENT, "peer added peer=%s tunnel_ip=%s relay=%s", d.hostname,
				 addr_format_ip(&d.tunnel_ip, a, sizeof(a)), d.relay ? "true" : "false");
		}
		p->seen = true;
		peer_update(m, p, &d);
		if (p->relay && p->has_relay_addr && nrelays < DISCO_MAX_SERVERS)
			relays[nrelays++] = p->relay_addr;
	}
	for (i = 0; i < m->npeers;) {
		if (!m->peers[i]->seen)
			peer_drop(m, i);
		else
			i++;
	}
	if (disco_set_relays(&m->disco, relays, nrelays) > 0)
		disco_kick(&m->disco, now_ms(m));
	relay_choose(m, now_ms(m));
}

static void on_registered(struct meshd *m, struct svc_event *ev)
{
	char why[256], a[CIDR_STRLEN];
	bool changed;

	snprintf(m->self_id, sizeof(m->self_id), "%s", ev->self.id);
	changed = !m->iface_ready || !addr_ip_equal(&m->tip, &ev->self.tunnel_ip);
	if (ev->has_cidr) {
		changed |= !m->has_vpc || memcmp(&m->vpc, &ev->vpc_cidr, sizeof(m->vpc));
		m->vpc = ev->vpc_cidr;
		m->has_vpc = true;
	} else if (!m->has_vpc) {
		/* the answer names no CIDR: the service's default VPC CIDR */
		cidr_parse("100.64.0.0/10", false, &m->vpc);
		m->has_vpc = true;
		log_warn(COMPONENT, "registration answer has no ipv4_cidr; using vpc=%s",
			 cidr_format(&m->vpc, a, sizeof(a)));
	}
	m->tip = ev->self.tunnel_ip;
	m->registered = true;
	log_info(COMPONENT, "registered device=%s tunnel_ip=%s", m->self_id,
		 addr_format_ip(&m->tip, a, sizeof(a)));
	if (changed && iface_configure(m) < 0)
		log_error(COMPONENT, "interface not configured; tunnels will not carry traffic");
	m->st.has_tunnel_ip = true;
	m->st.tunnel_ip = m->tip;
	m->st.has_vpc_cidr = true;
	m->st.vpc_cidr = m->vpc;
	snprintf(m->st.device_id, sizeof(m->st.device_id), "%s", m->self_id);
	if (state_save(m->o.state_dir, &m->st, why, sizeof(why)) < 0)
		log_warn(COMPONENT, "state not saved: %s", why);
	/* the tunnel address is no local endpoint */
	check_local(m);
}

static void svc_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	struct svc_event *ev;
	(void)loop, (void)fd, (void)events;

	while ((ev = svc_next_event(m->svc))) {
		switch (ev->type) {
		case SVC_EV_REGISTERED:
			on_registered(m, ev);
			break;
		case SVC_EV_PEERS:
			if (m->registered)
				sync_peers(m, ev->devices);
			break;
		case SVC_EV_REACHABLE:
			m->service_reachable = true;
			break;
		case SVC_EV_UNREACHABLE:
			m->service_reachable = false;
			break;
		}
		svc_event_free(ev);
	}
}

/* ---- housekeeping ------------------------------------------------------------------- */

static void ping_expire(struct meshd *m, uint64_t now)
{
	if (m->ping.conn && now >= m->ping.deadline) {
		ctl_reply(m->ping.conn, json_pack("{s:s, s:s}", "peer", m->ping.peer->name, "error", "timeout"));
		m->ping.conn = NULL;
	}
}

static int svc_start(struct meshd *m)
{
	struct svc_cfg sc = { .url = m->o.service, .ca_file = m->o.ca, .reg_key = m->reg_key, .os = "linux" };
	int rc;

	memcpy(sc.pub, m->st.pub, SVC_KEY_LEN);
	memcpy(sc.priv, m->st.priv, SVC_KEY_LEN);
	rc = svc_new(&sc, &m->report, &m->svc);
	sodium_memzero(sc.priv, sizeof(sc.priv));
	if (rc < 0) {
		log_error(COMPONENT, "cannot start the service client err=\"%s\"", strerror(-rc));
		return rc;
	}
	if ((rc = loop_add_fd(m->loop, svc_fd(m->svc), LOOP_READ, svc_readable, m)) < 0) {
		svc_free(m->svc);
		m->svc = NULL;
		log_error(COMPONENT, "cannot watch the service client err=\"%s\"", strerror(-rc));
	}
	return rc;
}

static void on_local_soon(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct meshd *m = arg;
	(void)loop;
	(void)t;
	check_local(m);
}

static void addr_watch_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	(void)fd;
	(void)events;
	if (netio_addr_watch_drain(m->io) && !loop_timer_armed(&m->local_soon))
		loop_timer_arm(loop, &m->local_soon, LOCAL_SETTLE_MS, 0);
}

static void on_tick(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct meshd *m = arg;
	struct disco_send out[DISCO_MAX_SERVERS];
	uint64_t now = loop_now(loop);
	(void)t;

	if (now >= m->next_local_check) {
		m->next_local_check = now + m->local_check_ms;
		check_local(m);
	}
	for (int f = 0; f < SVC_FAMILIES; f++) {
		if (m->natd[f].due)
			natd_start(&m->natd[f], now);
		natd_pump(&m->natd[f], now);
	}
	int n = disco_poll(&m->disco, now, out, DISCO_MAX_SERVERS);
	for (int i = 0; i < n; i++)
		send_udp(m, &out[i].to, out[i].buf, out[i].len);
	/* a round ends here or in handle_stun; what it found is compared with
	 * the last report (cheap), so every source of a mapping is reported */
	report_if_changed(m);
	if (!m->svc && ((m->disco.rounds >= 1 && m->disco.state == DISCO_IDLE) || now >= m->svc_due) &&
	    svc_start(m) < 0) {
		m->fatal = true;
		loop_stop(loop);
		return;
	}
	if (now >= m->next_relay_probe) {
		m->next_relay_probe = now + RELAY_PROBE_MS;
		relay_probe(m, now);
	}
	relay_choose(m, now);
	for (size_t i = 0; i < m->npeers; i++)
		peer_observe(m->peers[i], now);
	ping_expire(m, now);
}

/* ---- control socket ---------------------------------------------------------------- */

static json_t *endpoints_json(const struct svc_endpoint *ep, int n)
{
	json_t *a = json_array();
	char buf[ADDR_STRLEN];

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s}", "source", ep[i].source, "address",
						   addr_format(&ep[i].addr, buf, sizeof(buf))));
	return a;
}

/* one family's natdisc findings */
static json_t *natd_json(const struct natd *d)
{
	const struct natdisc_result *r = &d->res;
	struct svc_nat n;
	char line[192], srv[ADDR_STRLEN];
	const char *common;

	natinfo_from_result(r, &n);
	natinfo_describe(r, line, sizeof(line));
	common = natdisc_common_name(r);
	return json_pack("{s:s?, s:s?, s:o, s:s?, s:b, s:s, s:s, s:s?, s:b, s:i}",
			 "mapping", svcjson_nat_dep_name(n.mapping), "filtering", svcjson_nat_dep_name(n.filtering),
			 "hairpinning", n.hairpinning == SVC_NAT_TRI_UNKNOWN ? json_null()
					: json_boolean(n.hairpinning == SVC_NAT_TRI_YES),
			 "type", n.mapping && n.filtering ? common : NULL,
			 "behind_nat", r->nat, "summary", line, "server", fmt_addr(&d->server, srv),
			 "error", r->error != NATDISC_OK ? natdisc_strerror(r->error) : NULL,
			 "running", d->nd != NULL, "runs", (int)d->runs);
}

/* The first family's findings (IPv4 if any, else IPv6: what the object was
 * before discovery ran per family) with "ipv4" and "ipv6" members, each
 * that family's findings or null; null when no run found anything yet */
static json_t *nat_json(struct meshd *m)
{
	bool has[SVC_FAMILIES];
	json_t *o;
	int first;

	for (int f = 0; f < SVC_FAMILIES; f++)
		has[f] = m->natd[f].has_res;
	if ((first = natinfo_first(has)) < 0)
		return json_null();
	if (!(o = natd_json(&m->natd[first])))
		return NULL;
	for (int f = 0; f < SVC_FAMILIES; f++)
		json_object_set_new(o, svcjson_family_name((enum svc_family)f),
				    has[f] ? natd_json(&m->natd[f]) : json_null());
	return o;
}

static json_t *status_json(struct meshd *m)
{
	char key[SVC_KEY_B64LEN], tip[ADDR_STRLEN], vpc[CIDR_STRLEN];
	json_t *o;

	svcjson_key_format(m->st.pub, key);
	o = json_pack("{s:s, s:s, s:s?, s:s?, s:i, s:b, s:b, s:o, s:{s:s, s:b, s:b}, s:s?, s:i, s:I, s:I}",
			 "device", m->o.ifname, "public_key", key,
			 "tunnel_ip", m->registered || m->st.has_tunnel_ip ? addr_format_ip(&m->tip, tip, sizeof(tip)) : NULL,
			 "vpc_cidr", m->has_vpc ? cidr_format(&m->vpc, vpc, sizeof(vpc)) : NULL,
			 "listen_port", m->port, "symmetric_nat", m->report.symmetric_nat,
			 "relay", m->o.relay, "endpoints", endpoints_json(m->report.ep, m->report.nep),
			 "service", "url", m->o.service, "reachable", m->service_reachable,
			 "registered", m->registered,
			 "relay_in_use", m->relay_in_use ? m->relay_in_use->name : NULL,
			 "peers", (int)m->npeers, "relay_forwarded", (json_int_t)m->relay_forwarded,
			 "lost_session_handshakes", (json_int_t)m->lost_handshakes);
	if (o)
		json_object_set_new(o, "nat", nat_json(m));
	return o;
}

static const char *peer_path(const struct mpeer *p)
{
	if (p->use_path)
		return path_state_public(p->path.state);
	if (p->relay)
		return "direct";	/* relays are always reached directly */
	return "relayed";
}

static json_t *peers_json(struct meshd *m)
{
	json_t *a = json_array();

	for (size_t i = 0; i < m->npeers; i++) {
		struct mpeer *p = m->peers[i];
		struct wg_peer_state s = { 0 };
		char tip[ADDR_STRLEN], ep[ADDR_STRLEN];
		json_t *o;

		if (p->wp)
			wg_peer_get_state(p->wp, &s);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "name", p->name, "id", p->id,
			      "tunnel_ip", addr_format_ip(&p->tunnel_ip, tip, sizeof(tip)), "path", peer_path(p),
			      "state", p->use_path ? path_state_name(p->path.state) : "static",
			      "relay", p->relay, "last_handshake", (json_int_t)s.last_handshake.tv_sec,
			      "rx_bytes", (json_int_t)s.rx_bytes, "tx_bytes", (json_int_t)s.tx_bytes);
		json_object_set_new(o, "endpoint", s.endpoint.sa.sa_family == AF_INET ||
							   s.endpoint.sa.sa_family == AF_INET6
						   ? json_string(addr_format(&s.endpoint, ep, sizeof(ep)))
						   : json_null());
		json_object_set_new(o, "rtt_ms", p->relay && p->last_answer ? json_real(p->rtt_ms)
					       : p->ping_ms >= 0 ? json_real(p->ping_ms) : json_null());
		/* our latest answered initiation's round trip (what relays are chosen by) */
		json_object_set_new(o, "handshake_rtt_ms", s.handshake_rtt_ns ? json_real((double)s.handshake_rtt_ns / 1e6)
										: json_null());
		if (p->relay && !m->o.relay)
			json_object_set_new(o, "relay_in_use", json_boolean(m->relay_in_use == p));
		if (p->use_path)
			json_object_set_new(o, "upgrades", json_integer(p->path.upgrades));
		json_array_append_new(a, o);
	}
	return json_pack("{s:o}", "peers", a);
}

static struct mpeer *peer_by_name(struct meshd *m, const char *name)
{
	union sockaddr_any a;
	bool is_ip = addr_parse_ip(name, 0, &a) == 0;

	for (size_t i = 0; i < m->npeers; i++) {
		struct mpeer *p = m->peers[i];
		if (!strcmp(p->name, name) || !strcmp(p->id, name) || (is_ip && addr_ip_equal(&a, &p->tunnel_ip)))
			return p;
	}
	return NULL;
}

/* an ICMP echo from our tunnel address, into the data plane as if read from the TUN */
static void ping_start(struct meshd *m, struct ctl_conn *c, struct mpeer *p)
{
	uint8_t *ip = m->ctl_buf + WG_DEVICE_HEADROOM;
	struct netio_pkt pkt = { .data = ip, .len = 20 + 8 + 16, .cap = BUF_SIZE - WG_DEVICE_HEADROOM };
	uint16_t sum;

	if (m->ping.conn) {
		ctl_reply_error(c, "a ping is in progress");
		return;
	}
	if (!m->registered) {
		ctl_reply_error(c, "not registered yet: no tunnel address");
		return;
	}
	m->ping.id = (uint16_t)(0x6d00 | (getpid() & 0xff));
	m->ping.seq = ++m->ping_seq;
	memset(ip, 0, pkt.len);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(pkt.len >> 8);
	ip[3] = (uint8_t)pkt.len;
	ip[8] = 64;
	ip[9] = 1;
	memcpy(ip + 12, &m->tip.in.sin_addr, 4);
	memcpy(ip + 16, &p->tunnel_ip.in.sin_addr, 4);
	sum = ip_csum(ip, 20);
	ip[10] = (uint8_t)(sum >> 8);
	ip[11] = (uint8_t)sum;
	ip[20] = 8;
	ip[24] = (uint8_t)(m->ping.id >> 8);
	ip[25] = (uint8_t)m->ping.id;
	ip[26] = (uint8_t)(m->ping.seq >> 8);
	ip[27] = (uint8_t)m->ping.seq;
	memcpy(ip + 28, "natmesh meshctl!", 16);
	sum = ip_csum(ip + 20, 8 + 16);
	ip[22] = (uint8_t)(sum >> 8);
	ip[23] = (uint8_t)sum;
	m->ping.conn = c;
	m->ping.peer = p;
	m->ping.sent = mono_us();
	m->ping.deadline = now_ms(m) + PING_TIMEOUT_MS;
	wg_device_input_tun(m->dev, &pkt, 1);
}

static void on_ctl(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req)
{
	struct meshd *m = arg;

	if (!strcmp(cmd, "status")) {
		ctl_reply(c, status_json(m));
	} else if (!strcmp(cmd, "peers")) {
		ctl_reply(c, peers_json(m));
	} else if (!strcmp(cmd, "ping")) {
		const char *name = json_string_value(json_object_get(req, "peer"));
		struct mpeer *p = name ? peer_by_name(m, name) : NULL;
		if (!name)
			ctl_reply_error(c, "ping needs \"peer\": a name, id or tunnel IP");
		else if (!p)
			ctl_reply_error(c, "no such peer");
		else
			ping_start(m, c, p);
	} else {
		ctl_reply_error(c, "unknown command (status, peers, ping)");
	}
}

/* ---- UAPI (read-only: `wg show` works on meshd's interface) ---------------------------- */

static int uapi_get(void *arg, struct wg_uapi_config *out)
{
	struct meshd *m = arg;
	int rc = wg_device_dump(m->dev, out);
	if (rc == 0)
		out->listen_port = m->port;
	return rc;
}

static int uapi_set(void *arg, const struct wg_uapi_config *cfg)
{
	(void)arg, (void)cfg;
	return -EPERM;	/* meshd owns the configuration */
}

static const struct wg_uapi_ops uapi_ops = { .get = uapi_get, .set = uapi_set };

/* ---- start and stop -------------------------------------------------------------------- */

static void on_stop(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info(COMPONENT, "stopping signal=%s", strsignal(signo));
	loop_stop(loop);
}

/* The WireGuard socket: [::] dual-stack, so peers reach us over IPv4 and
 * IPv6 on one port (netio turns IPv4-mapped addresses into plain IPv4 ones
 * both ways); 0.0.0.0 where the host has no IPv6. */
static int udp_bind(struct meshd *m, uint16_t port)
{
	unsigned flags = m->o.no_offload ? 0 : NETIO_UDP_OFFLOAD;
	union sockaddr_any any, local;
	int rc;

	addr_parse_ip("::", port, &any);
	m->family = AF_INET6;
	rc = netio_udp_open_flags(m->io, &any, flags, &m->udp);
	if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
		log_info(COMPONENT, "no IPv6 on this host: IPv4 underlay only");
		addr_parse_ip("0.0.0.0", port, &any);
		m->family = AF_INET;
		rc = netio_udp_open_flags(m->io, &any, flags, &m->udp);
	}
	if (rc < 0)
		return rc;
	if (netio_udp_local(m->io, m->udp, &local) == 0)
		m->port = addr_port(&local);
	return 0;
}

static int read_reg_key(struct meshd *m)
{
	char buf[512];
	FILE *f = fopen(m->o.reg_key_file, "r");
	size_t n;

	if (!f) {
		log_error(COMPONENT, "cannot read --reg-key-file %s: %s", m->o.reg_key_file, strerror(errno));
		return -errno;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!buf[0]) {
		log_error(COMPONENT, "--reg-key-file %s: empty", m->o.reg_key_file);
		return -EINVAL;
	}
	m->reg_key = strdup(buf);
	sodium_memzero(buf, sizeof(buf));
	return m->reg_key ? 0 : -ENOMEM;
}

static int add_stun(struct meshd *m, const char *hostport)
{
	char host[256], label[DISCO_LABEL_MAX];
	struct addrinfo hints = { .ai_family = m->family == AF_INET6 ? AF_UNSPEC : AF_INET,
				  .ai_socktype = SOCK_DGRAM }, *res;
	const char *colon = strrchr(hostport, ':');
	union sockaddr_any a;
	int rc;

	snprintf(label, sizeof(label), "stun:%s", hostport);
	if (addr_parse(hostport, &a) == 0)
		return disco_add_server(&m->disco, &a, label, false);
	if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = 0;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		log_error(COMPONENT, "--stun %s: %s", hostport, gai_strerror(rc));
		return -EINVAL;
	}
	memset(&a, 0, sizeof(a));
	memcpy(&a, res->ai_addr, res->ai_addrlen <= sizeof(a) ? res->ai_addrlen : sizeof(a));
	freeaddrinfo(res);
	return disco_add_server(&m->disco, &a, label, false);
}

static int start(struct meshd *m)
{
	char why[512];
	int rc;

	m->addr_watch = -1;
	if ((rc = read_reg_key(m)) < 0)
		return rc;
	if ((rc = state_load(m->o.state_dir, &m->st, why, sizeof(why))) < 0) {
		log_error(COMPONENT, "state: %s", why);
		goto err_key;
	}
	m->udp_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	m->tun_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	m->fwd_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	if (!m->udp_bufs || !m->tun_bufs || !m->fwd_bufs) {
		rc = -ENOMEM;
		goto err_bufs;
	}
	if ((rc = loop_new(&m->loop)) < 0)
		goto err_bufs;
	if ((rc = netio_linux_new(&m->io)) < 0)
		goto err_loop;
	if ((rc = netio_tun_open_flags(m->io, m->o.ifname, m->o.no_tun_offload ? 0 : NETIO_TUN_OFFLOAD,
					&m->tun)) < 0) {
		log_error(COMPONENT, "cannot create TUN ifname=%s err=\"%s\"", m->o.ifname, strerror(-rc));
		goto err_io;
	}
	if ((rc = wg_device_new(m->loop, &dev_ops, m, &m->dev)) < 0)
		goto err_tun;
	wg_device_set_mtu(m->dev, WG_DEFAULT_MTU);
	if ((rc = wg_device_set_private_key(m->dev, m->st.priv)) < 0)
		goto err_dev;
	rc = udp_bind(m, m->o.listen_port >= 0 ? (uint16_t)m->o.listen_port : m->st.listen_port);
	if (rc < 0 && m->o.listen_port < 0 && m->st.listen_port) {
		log_warn(COMPONENT, "saved port=%u is taken; a new one", m->st.listen_port);
		rc = udp_bind(m, 0);
	}
	if (rc < 0) {
		log_error(COMPONENT, "cannot open the UDP socket err=\"%s\"", strerror(-rc));
		goto err_dev;
	}
	m->st.listen_port = m->port;
	if (state_save(m->o.state_dir, &m->st, why, sizeof(why)) < 0)
		log_warn(COMPONENT, "state not saved: %s", why);
	if ((rc = loop_add_fd(m->loop, netio_udp_fd(m->io, m->udp), LOOP_READ, udp_readable, m)) < 0)
		goto err_udp;
	if ((rc = loop_add_fd(m->loop, netio_tun_fd(m->io, m->tun), LOOP_READ, tun_readable, m)) < 0)
		goto err_udpfd;
	/* a restart brings the tunnel back before the service answers */
	if (m->st.has_tunnel_ip && m->st.has_vpc_cidr) {
		m->tip = m->st.tunnel_ip;
		m->vpc = m->st.vpc_cidr;
		m->has_vpc = true;
		snprintf(m->self_id, sizeof(m->self_id), "%s", m->st.device_id);
		iface_configure(m);
	}
	disco_init(&m->disco, 0, loop_now(m->loop));
	for (int i = 0; i < m->o.nstun; i++) {
		if ((rc = add_stun(m, m->o.stun[i])) < 0 && rc != -EEXIST) {
			log_error(COMPONENT, "bad --stun %s", m->o.stun[i]);
			goto err_tunfd;
		}
	}
	/* the first --stun server of each family; relays come later */
	natd_init(m);
	/* address changes are notified (the poll stays as a slow safety net) */
	loop_timer_init(&m->local_soon, on_local_soon, m);
	m->local_check_ms = LOCAL_CHECK_MS;
	m->addr_watch = netio_addr_watch_fd(m->io);
	if (m->addr_watch >= 0 &&
	    loop_add_fd(m->loop, m->addr_watch, LOOP_READ, addr_watch_readable, m) == 0) {
		m->local_check_ms = LOCAL_WATCHED_MS;
	} else {
		log_warn(COMPONENT, "no address-change notifications, polling every %d ms err=\"%s\"",
			 LOCAL_CHECK_MS, strerror(m->addr_watch < 0 ? -m->addr_watch : errno));
		m->addr_watch = -1;
	}
	check_local(m);
	build_report(m, &m->report);
	if ((rc = ctl_new(m->loop, m->o.ctl_path, on_ctl, m, &m->ctl)) < 0) {
		log_error(COMPONENT, "cannot serve the control socket path=%s err=\"%s\"", m->o.ctl_path,
			  strerror(-rc));
		goto err_tunfd;
	}
	if (wg_uapi_socket_path(m->o.ifname, m->uapi_path, sizeof(m->uapi_path)) == 0 &&
	    wg_uapi_server_new(m->loop, m->uapi_path, &uapi_ops, m, &m->uapi) < 0)
		log_warn(COMPONENT, "no UAPI socket: wg show will not see %s", m->o.ifname);
	if ((rc = loop_signal(m->loop, SIGTERM, on_stop, m)) < 0 ||
	    (rc = loop_signal(m->loop, SIGINT, on_stop, m)) < 0)
		goto err_ctl;
	/* the service client starts once the first discovery round is over
	 * (svc_start), so the registration already carries the reflexive
	 * endpoints and peers spray at the right candidates from the start */
	m->svc_due = loop_now(m->loop) + SVC_START_MAX_MS;
	loop_timer_init(&m->tick, on_tick, m);
	loop_timer_arm(m->loop, &m->tick, 0, TICK_MS);
	log_info(COMPONENT, "up ifname=%s port=%u relay=%s relay_only=%s control=%s", m->o.ifname, m->port,
		 m->o.relay ? "true" : "false", m->o.relay_only ? "true" : "false", m->o.ctl_path);
	return 0;

err_ctl:
	wg_uapi_server_free(m->uapi);
	ctl_free(m->ctl);
err_tunfd:
	if (m->addr_watch >= 0)
		loop_del_fd(m->loop, m->addr_watch);
	loop_del_fd(m->loop, netio_tun_fd(m->io, m->tun));
err_udpfd:
	loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
err_udp:
	netio_udp_close(m->io, m->udp);
err_dev:
	wg_device_free(m->dev);
err_tun:
	netio_tun_close(m->io, m->tun);
err_io:
	netio_free(m->io);
err_loop:
	loop_free(m->loop);
err_bufs:
	free(m->fwd_bufs);
	free(m->tun_bufs);
	free(m->udp_bufs);
	state_clear(&m->st);
err_key:
	if (m->reg_key) {
		sodium_memzero(m->reg_key, strlen(m->reg_key));
		free(m->reg_key);
	}
	return rc;
}

/* the mirror of start(); closing the TUN removes the interface, the
 * registration stays so a restart comes back as the same device */
static void stop(struct meshd *m)
{
	loop_timer_cancel(m->loop, &m->tick);
	loop_timer_cancel(m->loop, &m->local_soon);
	if (m->addr_watch >= 0)
		loop_del_fd(m->loop, m->addr_watch);
	for (int f = 0; f < SVC_FAMILIES; f++)
		natd_stop(&m->natd[f]);
	if (m->svc) {
		loop_del_fd(m->loop, svc_fd(m->svc));
		svc_free(m->svc);
	}
	if (m->ping.conn)
		ctl_reply_error(m->ping.conn, "meshd is stopping");
	wg_uapi_server_free(m->uapi);
	ctl_free(m->ctl);
	while (m->npeers)
		peer_drop(m, m->npeers - 1);
	free(m->peers);
	loop_del_fd(m->loop, netio_tun_fd(m->io, m->tun));
	loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
	netio_udp_close(m->io, m->udp);
	wg_device_free(m->dev);
	netio_tun_close(m->io, m->tun);
	netio_free(m->io);
	loop_free(m->loop);
	free(m->fwd_bufs);
	free(m->tun_bufs);
	free(m->udp_bufs);
	state_clear(&m->st);
	sodium_memzero(m->reg_key, strlen(m->reg_key));
	free(m->reg_key);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "reg-key-file", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'c' },
		{ "stun", required_argument, NULL, 'S' },
		{ "relay", no_argument, NULL, 'r' },
		{ "relay-only", no_argument, NULL, 'R' },
		{ "no-udp-offload", no_argument, NULL, 'O' },
		{ "no-tun-offload", no_argument, NULL, 'U' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "listen-port", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "control", required_argument, NULL, 'C' },
		{ "direct-timeout", required_argument, NULL, 't' },
		{ "log-format", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct meshd m;
	enum log_format fmt = LOG_FORMAT_TEXT;
	enum log_level level = LOG_INFO;
	char *end;
	long v;
	int opt, rc;

	m.o.listen_port = -1;
	snprintf(m.o.ifname, sizeof(m.o.ifname), "mesh0");
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			m.o.service = optarg;
			break;
		case 'k':
			m.o.reg_key_file = optarg;
			break;
		case 'c':
			m.o.ca = optarg;
			break;
		case 'S':
			if (m.o.nstun >= MAX_STUN) {
				fprintf(stderr, "meshd: at most %d --stun servers\n", MAX_STUN);
				return 2;
			}
			m.o.stun[m.o.nstun++] = optarg;
			break;
		case 'r':
			m.o.relay = true;
			break;
		case 'R':
			m.o.relay_only = true;
			break;
		case 'O':
			m.o.no_offload = true;
			break;
		case 'U':
			m.o.no_tun_offload = true;
			break;
		case 'i':
			if (!optarg[0] || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/')) {
				fprintf(stderr, "meshd: bad --ifname: %s\n", optarg);
				return 2;
			}
			snprintf(m.o.ifname, sizeof(m.o.ifname), "%s", optarg);
			break;
		case 'H':
			if (!optarg[0] || strlen(optarg) > SVC_HOSTNAME_MAX) {
				fprintf(stderr, "meshd: bad --hostname: %s\n", optarg);
				return 2;
			}
			snprintf(m.o.hostname, sizeof(m.o.hostname), "%s", optarg);
			break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 65535) {
				fprintf(stderr, "meshd: bad --listen-port: %s (0..65535)\n", optarg);
				return 2;
			}
			m.o.listen_port = (int)v;
			break;
		case 'd':
			snprintf(m.o.state_dir, sizeof(m.o.state_dir), "%s", optarg);
			break;
		case 'C':
			if (strlen(optarg) >= sizeof(m.o.ctl_path)) {
				fprintf(stderr, "meshd: --control path too long: %s\n", optarg);
				return 2;
			}
			snprintf(m.o.ctl_path, sizeof(m.o.ctl_path), "%s", optarg);
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 100 || v > 600000) {
				fprintf(stderr, "meshd: bad --direct-timeout: %s (100..600000 ms)\n", optarg);
				return 2;
			}
			m.o.direct_timeout_ms = (uint32_t)v;
			break;
		case 'L':
			if (log_parse_format(optarg, &fmt) < 0) {
				fprintf(stderr, "meshd: bad --log-format: %s (text or json)\n", optarg);
				return 2;
			}
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "meshd: unexpected argument: %s\n", argv[optind]);
		return 2;
	}
	if (!m.o.service || !m.o.reg_key_file) {
		fprintf(stderr, "meshd: --service and --reg-key-file are required (see --help)\n");
		return 2;
	}
	if (!m.o.hostname[0]) {
		struct utsname u;
		snprintf(m.o.hostname, sizeof(m.o.hostname), "%s", uname(&u) == 0 ? u.nodename : "meshd");
	}
	if (!m.o.state_dir[0])
		snprintf(m.o.state_dir, sizeof(m.o.state_dir), "/var/lib/meshd/%s", m.o.ifname);
	if (!m.o.ctl_path[0])
		snprintf(m.o.ctl_path, sizeof(m.o.ctl_path), "/run/meshd/%s.sock", m.o.ifname);
	log_setup(fmt, level);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		log_error(COMPONENT, "libsodium failed to initialize");
		return 1;
	}
	if (start(&m) < 0)
		return 1;
	rc = loop_run(m.loop);
	if (rc < 0)
		log_error(COMPONENT, "event loop failed err=\"%s\"", strerror(-rc));
	stop(&m);
	return rc < 0 || m.fatal ? 1 : 0;
}
