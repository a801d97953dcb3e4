/* meshwg: the userspace WireGuard daemon, used the way wireguard-go is
 * (wireguard.com/xplatform): `meshwg [-f] IFNAME` creates the TUN interface
 * IFNAME and serves /var/run/wireguard/IFNAME.sock, so wg(8) configures it.
 * One event loop: batches of TUN packets and of datagrams
 * (recvmmsg/sendmmsg) go through the device of agent/wg/device.h, whose
 * encryption and decryption of each batch are spread over --threads
 * threads (default: one per CPU; workers.h). The TUN
 * has offloads unless --no-tun-offload (netio's NETIO_TUN_OFFLOAD): the
 * kernel's TCP super-packets are cut in netio, and runs of TCP segments are
 * written back as one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "loop.h"
#include "netio.h"
#include "rtnl.h"
#include "tunpump.h"
#include "uapi.h"
#include "workers.h"

#define COMPONENT "meshwg"
/* room for any datagram or TUN packet up to 64 KiB, plus in-place crypto */
#define BUF_SIZE (WG_DEVICE_HEADROOM + 65535 + WG_DEVICE_TAILROOM)
/* batches handled per wake-up before the loop looks at other descriptors */
#define BATCHES_PER_WAKE 8

struct meshwg {
	char ifname[IFNAMSIZ];
	bool fatal;			/* the loop stopped on an error */
	struct loop *loop;
	struct netio *io;
	struct netio_tun *tun;
	struct netio_udp *udp;
	uint16_t port;
	uint32_t fwmark;
	bool no_tun_offload;		/* --no-tun-offload */
	int threads;			/* --threads, 0: one per CPU */
	struct wg_device *dev;
	struct loop_timer wg_timer;	/* the device's next deadline */
	uint64_t wg_timer_at;		/* ns, when armed */
	struct wg_uapi_server *uapi;
	char sock_path[108];
	uint64_t udp_send_dropped;
	uint64_t tun_write_dropped;

	struct netio_pkt tun_pkts[NETIO_BATCH_MAX];
	struct netio_pkt udp_pkts[NETIO_BATCH_MAX];
	uint8_t *tun_bufs;
	uint8_t *udp_bufs;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshwg [-f|--foreground] [--log-format text|json] [--verbose]\n"
		"              [--no-tun-offload] [--threads N] IFNAME\n"
		"       meshwg --help\n"
		"\n"
		"A userspace WireGuard: creates the TUN interface IFNAME (MTU %d, down)\n"
		"and serves the cross-platform userspace API on %s/IFNAME.sock,\n"
		"so that wg(8) (set, setconf, show, showconf) configures it; then\n"
		"`ip addr add ... dev IFNAME; ip link set IFNAME up` as with any WireGuard.\n"
		"\n"
		"  -f, --foreground   stay in the foreground (default: daemonize once up)\n"
		"  --log-format F     text (default) or json\n"
		"  --verbose          debug logs\n"
		"  --no-tun-offload   a plain TUN (default: TUN offloads where the kernel\n"
		"                     has them: TCP super-packets (TSO) and checksums from\n"
		"                     the kernel are done here, and runs of TCP segments\n"
		"                     are written to it as one)\n"
		"  --threads N        threads that encrypt and decrypt, 1..%d (default: one\n"
		"                     per CPU the process may run on; 1: the event loop's\n"
		"                     thread alone)\n"
		"\n"
		"SIGUSR1 logs the counters of dropped packets and handshakes.\n"
		"SIGTERM or SIGINT remove the socket and the interface and exit 0.\n",
		WG_DEFAULT_MTU, "/var/run/wireguard", WG_WORKERS_MAX);
}

/* ---- socket ---------------------------------------------------------------- */

static void udp_readable(struct loop *loop, int fd, uint32_t events, void *arg);

static int set_fwmark(struct meshwg *m, struct netio_udp *u, uint32_t mark)
{
	int fd = netio_udp_fd(m->io, u);
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return -errno;
	return 0;
}

/* (Re)binds the one UDP socket: [::]:port dual-stack, or 0.0.0.0:port on a
 * host without IPv6. The old socket stays until the new one is bound. */
static int udp_bind(struct meshwg *m, uint16_t port)
{
	union sockaddr_any any, local;
	struct netio_udp *u;
	int rc;

	addr_parse_ip("::", port, &any);
	/* UDP GSO/GRO (netio): runs of datagrams to one peer leave as one
	 * send, runs from one peer arrive as one buffer */
	rc = netio_udp_open_flags(m->io, &any, NETIO_UDP_OFFLOAD, &u);
	if (rc == -EAFNOSUPPORT) {
		addr_parse_ip("0.0.0.0", port, &any);
		rc = netio_udp_open_flags(m->io, &any, NETIO_UDP_OFFLOAD, &u);
	}
	if (rc < 0)
		return rc;
	if (m->fwmark && (rc = set_fwmark(m, u, m->fwmark)) < 0)
		goto err_close;
	rc = loop_add_fd(m->loop, netio_udp_fd(m->io, u), LOOP_READ, udp_readable, m);
	if (rc < 0)
		goto err_close;
	if (m->udp) {
		loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
		netio_udp_close(m->io, m->udp);
	}
	m->udp = u;
	if (netio_udp_local(m->io, u, &local) == 0)
		m->port = addr_port(&local);
	log_info(COMPONENT, "listening ifname=%s port=%u", m->ifname, m->port);
	return 0;

err_close:
	netio_udp_close(m->io, u);
	return rc;
}

/* ---- packet path ------------------------------------------------------------ */

static void dev_udp_send(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshwg *m = arg;
	int sent = netio_udp_send(m->io, m->udp, pkts, n);

	if (sent < n)
		m->udp_send_dropped += (uint64_t)(n - (sent < 0 ? 0 : sent));
}

static void dev_tun_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshwg *m = arg;
	int done = netio_tun_write(m->io, m->tun, pkts, n);
	if (done < n)
		m->tun_write_dropped += (uint64_t)(n - (done < 0 ? 0 : done));
}

static const struct wg_device_ops dev_ops = {
	.udp_send = dev_udp_send,
	.tun_deliver = dev_tun_deliver,
};

/* the device's timers on one loop timer, re-armed after every call into it */
static void dev_schedule(struct meshwg *m)
{
	uint64_t next = wg_device_next_deadline(m->dev), now;

	if (!next) {
		loop_timer_cancel(m->loop, &m->wg_timer);
		return;
	}
	if (loop_timer_armed(&m->wg_timer) && m->wg_timer_at == next)
		return;
	now = clock_now_ns();
	if (loop_timer_arm(m->loop, &m->wg_timer, next > now ? (next - now + 999999) / 1000000 : 0, 0) < 0) {
		/* the peers' timers would never run again: stop rather than hang */
		log_error(COMPONENT, "cannot arm the WireGuard timer; stopping");
		m->fatal = true;
		loop_stop(m->loop);
		return;
	}
	m->wg_timer_at = next;
}

static void on_wg_timer(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct meshwg *m = arg;
	(void)loop, (void)t;

	wg_device_expire(m->dev, clock_now_ns());
	dev_schedule(m);
}

static void udp_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshwg *m = arg;
	struct netio_pkt segs[NETIO_BATCH_MAX];
	(void)loop;
	(void)fd;
	(void)events;
	for (int b = 0; b < BATCHES_PER_WAKE; b++) {
		int nseg = 0;

		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			m->udp_pkts[i].data = m->udp_bufs + (size_t)i * BUF_SIZE;
			m->udp_pkts[i].cap = BUF_SIZE;
		}
		int n = netio_udp_recv(m->io, m->udp, m->udp_pkts, NETIO_BATCH_MAX);
		uint64_t now = clock_now_ns();
		if (n <= 0)
			break;
		/* a GRO run is cut back into its datagrams; the device takes
		 * them NETIO_BATCH_MAX at a time */
		for (int i = 0; i < n; i++) {
			struct netio_pkt run[NETIO_SEGS_MAX];
			int k = netio_pkt_split(&m->udp_pkts[i], run, NETIO_SEGS_MAX);
			for (int j = 0; j < k; j++) {
				segs[nseg++] = run[j];
				if (nseg == NETIO_BATCH_MAX) {
					wg_device_input_udp(m->dev, segs, nseg, now);
					nseg = 0;
				}
			}
		}
		if (nseg)
			wg_device_input_udp(m->dev, segs, nseg, now);
		if (n < NETIO_BATCH_MAX)
			break;
	}
	dev_schedule(m);
}

static void tun_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshwg *m = arg;
	(void)loop, (void)fd, (void)events;

	wg_tun_pump(m->dev, m->io, m->tun, m->tun_pkts, m->tun_bufs, BUF_SIZE);
	dev_schedule(m);
}

/* ---- UAPI ---------------------------------------------------------------------- */

static int uapi_get(void *arg, struct wg_uapi_config *out)
{
	struct meshwg *m = arg;
	int rc = wg_device_dump(m->dev, out);
	if (rc < 0)
		return rc;
	out->listen_port = m->port;
	out->fwmark = m->fwmark;
	return 0;
}

static int uapi_set(void *arg, const struct wg_uapi_config *cfg)
{
	struct meshwg *m = arg;
	int rc;

	if (cfg->flags & WG_UAPI_HAS_FWMARK && cfg->fwmark != m->fwmark) {
		rc = set_fwmark(m, m->udp, cfg->fwmark);
		if (rc < 0)
			return rc;
		m->fwmark = cfg->fwmark;
	}
	if (cfg->flags & WG_UAPI_HAS_LISTEN_PORT && (cfg->listen_port != m->port || !cfg->listen_port)) {
		rc = udp_bind(m, cfg->listen_port);
		if (rc < 0) {
			log_warn(COMPONENT, "cannot bind port=%u err=\"%s\"", cfg->listen_port, strerror(-rc));
			return rc;
		}
	}
	rc = wg_device_apply(m->dev, cfg, clock_now_ns());
	dev_schedule(m);
	return rc;
}

static const struct wg_uapi_ops uapi_ops = {
	.get = uapi_get,
	.set = uapi_set,
};

/* ---- signals ----------------------------------------------------------------- */

static void log_stats(struct meshwg *m)
{
	struct wg_device_stats s;
	struct netio_tun_stats ts;
	wg_device_get_stats(m->dev, &s);
	netio_tun_stats(m->io, m->tun, &ts);
	log_info(COMPONENT,
		 "stats ifname=%s rx_bad_type=%" PRIu64 " rx_bad_length=%" PRIu64 " rx_bad_mac=%" PRIu64
		 " rx_bad_handshake=%" PRIu64 " rx_unknown_index=%" PRIu64 " rx_bad_auth=%" PRIu64
		 " rx_replay=%" PRIu64 " rx_expired=%" PRIu64 " rx_bad_src=%" PRIu64 " rx_bad_packet=%" PRIu64
		 " rx_ratelimited=%" PRIu64 " rx_data=%" PRIu64 " rx_keepalive=%" PRIu64
		 " initiations_rx=%" PRIu64 " responses_rx=%" PRIu64 " cookie_replies_rx=%" PRIu64
		 " initiations_tx=%" PRIu64 " responses_tx=%" PRIu64 " cookie_replies_tx=%" PRIu64
		 " tx_no_route=%" PRIu64 " tx_no_endpoint=%" PRIu64 " tx_staged_dropped=%" PRIu64
		 " udp_send_dropped=%" PRIu64 " tun_write_dropped=%" PRIu64 " tun_offload=%s"
		 " tun_rx_super=%" PRIu64 " tun_rx_segs=%" PRIu64 " tun_rx_csum=%" PRIu64 " tun_rx_bad=%" PRIu64
		 " tun_rx_largest=%" PRIu64 " tun_tx_super=%" PRIu64,
		 m->ifname, s.rx_bad_type, s.rx_bad_length, s.rx_bad_mac, s.rx_bad_handshake,
		 s.rx_unknown_index, s.rx_bad_auth, s.rx_replay, s.rx_expired, s.rx_bad_src, s.rx_bad_packet,
		 s.rx_ratelimited, s.rx_data, s.rx_keepalive, s.handshake_initiations_rx,
		 s.handshake_responses_rx, s.cookie_replies_rx, s.handshake_initiations_tx,
		 s.handshake_responses_tx, s.cookie_replies_tx, s.tx_no_route, s.tx_no_endpoint,
		 s.tx_staged_dropped, m->udp_send_dropped, m->tun_write_dropped, ts.offload ? "on" : "off",
		 ts.rx_super, ts.rx_segs, ts.rx_csum, ts.rx_bad, ts.rx_largest, ts.tx_super);
}

static void on_stop(struct loop *loop, int signo, void *arg)
{
	(void)arg;
	log_info(COMPONENT, "stopping signal=%s", strsignal(signo));
	loop_stop(loop);
}

static void on_usr1(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	log_stats(arg);
}

/* ---- start and stop ------------------------------------------------------------ */

/* the data plane on the loop's clock, its timers on one loop timer */
static int dev_open(struct meshwg *m)
{
	int rc = wg_device_new(&dev_ops, m, &m->dev);

	if (rc < 0) {
		log_error(COMPONENT, "cannot create device err=\"%s\"", strerror(-rc));
		return rc;
	}
	wg_device_set_mtu(m->dev, WG_DEFAULT_MTU);
	rc = wg_device_set_threads(m->dev, m->threads);
	if (rc < 0) {
		log_error(COMPONENT, "cannot start threads n=%d err=\"%s\"", m->threads, strerror(-rc));
		wg_device_free(m->dev);
		return rc;
	}
	wg_device_set_wall_clock(m->dev, clock_now_ns(), clock_wall_ns());
	loop_timer_init(&m->wg_timer, on_wg_timer, m);
	return 0;
}

static int start(struct meshwg *m)
{
	struct netio_tun_stats ts;
	int rc;

	m->tun_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	m->udp_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	if (!m->tun_bufs || !m->udp_bufs) {
		log_error(COMPONENT, "out of memory");
		rc = -ENOMEM;
		goto err_bufs;
	}
	rc = loop_new(&m->loop);
	if (rc < 0) {
		log_error(COMPONENT, "cannot create event loop err=\"%s\"", strerror(-rc));
		goto err_bufs;
	}
	rc = netio_linux_new(&m->io);
	if (rc < 0) {
		log_error(COMPONENT, "cannot open network backend err=\"%s\"", strerror(-rc));
		goto err_loop;
	}
	rc = netio_tun_open_flags(m->io, m->ifname, m->no_tun_offload ? 0 : NETIO_TUN_OFFLOAD, &m->tun);
	if (rc < 0) {
		log_error(COMPONENT, "cannot create TUN ifname=%s err=\"%s\"", m->ifname, strerror(-rc));
		goto err_io;
	}
	rc = rtnl_link_set_mtu(m->ifname, WG_DEFAULT_MTU);
	if (rc < 0) {
		log_error(COMPONENT, "cannot set MTU ifname=%s err=\"%s\"", m->ifname, strerror(-rc));
		goto err_tun;
	}
	rc = dev_open(m);
	if (rc < 0)
		goto err_tun;
	rc = udp_bind(m, 0);
	if (rc < 0) {
		log_error(COMPONENT, "cannot open UDP socket err=\"%s\"", strerror(-rc));
		goto err_dev;
	}
	rc = loop_add_fd(m->loop, netio_tun_fd(m->io, m->tun), LOOP_READ, tun_readable, m);
	if (rc < 0)
		goto err_udp;
	if ((rc = loop_signal(m->loop, SIGTERM, on_stop, m)) < 0 ||
	    (rc = loop_signal(m->loop, SIGINT, on_stop, m)) < 0 ||
	    (rc = loop_signal(m->loop, SIGUSR1, on_usr1, m)) < 0) {
		log_error(COMPONENT, "cannot route signals err=\"%s\"", strerror(-rc));
		goto err_tunfd;
	}
	rc = wg_uapi_socket_path(m->ifname, m->sock_path, sizeof(m->sock_path));
	if (rc == 0)
		rc = wg_uapi_server_new(m->loop, m->sock_path, &uapi_ops, m, &m->uapi);
	if (rc < 0) {
		log_error(COMPONENT, "cannot serve UAPI path=%s err=\"%s\"", m->sock_path, strerror(-rc));
		goto err_tunfd;
	}
	netio_tun_stats(m->io, m->tun, &ts);
	log_info(COMPONENT, "up ifname=%s uapi=%s tun_offload=%s threads=%d", m->ifname, m->sock_path,
		 ts.offload ? "on" : "off", wg_device_get_threads(m->dev));
	return 0;

err_tunfd:
	loop_del_fd(m->loop, netio_tun_fd(m->io, m->tun));
err_udp:
	loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
	netio_udp_close(m->io, m->udp);
err_dev:
	loop_timer_cancel(m->loop, &m->wg_timer);
	wg_device_free(m->dev);
err_tun:
	netio_tun_close(m->io, m->tun);
err_io:
	netio_free(m->io);
err_loop:
	loop_free(m->loop);
err_bufs:
	free(m->udp_bufs);
	free(m->tun_bufs);
	return rc;
}

/* the mirror of start(); closing the TUN removes the interface */
static void stop(struct meshwg *m)
{
	log_stats(m);
	wg_uapi_server_free(m->uapi);
	loop_del_fd(m->loop, netio_tun_fd(m->io, m->tun));
	loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
	netio_udp_close(m->io, m->udp);
	loop_timer_cancel(m->loop, &m->wg_timer);
	wg_device_free(m->dev);
	netio_tun_close(m->io, m->tun);
	netio_free(m->io);
	loop_free(m->loop);
	free(m->udp_bufs);
	free(m->tun_bufs);
}

static int parse_threads(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 1 || v > WG_WORKERS_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Like wireguard-go: the parent returns only once the child is up (exit 0)
 * or has failed (exit 1), so `meshwg wg0 && wg set wg0 ...` works. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char status = 1;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	setsid();
	if (chdir("/") < 0)
		return -errno;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	*ready_fd = p[1];
	return 0;
}

static void report_ready(int fd, char status)
{
	if (fd < 0)
		return;
	if (write(fd, &status, 1) != 1)
		log_warn(COMPONENT, "cannot report readiness to the parent");
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-format", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "no-tun-offload", no_argument, NULL, 'T' },
		{ "threads", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct meshwg m;
	enum log_format fmt = LOG_FORMAT_TEXT;
	enum log_level level = LOG_INFO;
	int foreground = 0, opt, rc, ready_fd = -1;

	while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			foreground = 1;
			break;
		case 'L':
			if (log_parse_format(optarg, &fmt) < 0) {
				fprintf(stderr, "meshwg: bad --log-format: %s\n", optarg);
				return 2;
			}
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'T':
			m.no_tun_offload = true;
			break;
		case 'W':
			if (parse_threads(optarg, &m.threads) < 0) {
				fprintf(stderr, "meshwg: bad --threads: %s (1..%d)\n", optarg, WG_WORKERS_MAX);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (strlen(argv[optind]) >= IFNAMSIZ || !argv[optind][0] || strchr(argv[optind], '/')) {
		fprintf(stderr, "meshwg: bad interface name: %s\n", argv[optind]);
		return 2;
	}
	strcpy(m.ifname, argv[optind]);
	log_setup(fmt, level);
	signal(SIGPIPE, SIG_IGN);

	if (!foreground && (rc = daemonize(&ready_fd)) < 0) {
		log_error(COMPONENT, "cannot daemonize err=\"%s\"", strerror(-rc));
		return 1;
	}
	rc = start(&m);
	report_ready(ready_fd, rc < 0);
	if (rc < 0)
		return 1;
	rc = loop_run(m.loop);
	if (rc < 0)
		log_error(COMPONENT, "event loop failed err=\"%s\"", strerror(-rc));
	stop(&m);
	return rc < 0 || m.fatal ? 1 : 0;
}
