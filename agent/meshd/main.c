/* meshd: the natmesh agent. Options, start and stop; what runs in between
 * is spread over the files meshd.h lists. */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent/wg/workers.h"
#include "log.h"
#include "meshd.h"
#include "portmap.h"
#include "svcurl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshd --service URL --reg-key-file F [options]\n"
		"\n"
		"The natmesh agent: a WireGuard interface (userspace data plane) whose peers\n"
		"come from meshsvc; direct tunnels through NATs, relay fallback and upgrade.\n"
		"\n"
		"  --service URL          meshsvc base URL (https://host:port); several replicas:\n"
		"                         repeat it or give a comma list (failover in order)\n"
		"  --reg-key-file F       file holding the registration key (mode 0600 or stricter)\n"
		"  --ca F                 CA bundle to verify the service with\n"
		"  --insecure-http        allow an http:// service URL (the registration key\n"
		"                         and the device token then travel in clear)\n"
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
		"  --measure-lifetime     also measure the NAT's UDP mapping lifetime (RFC 5780\n"
		"                         4.6, about 2.5 minutes) and keep alive at half of it\n"
		"                         (5..25 s; default: every 10 s)\n"
		"  --no-policy            do not enforce security groups (no nftables table\n"
		"                         inet natmesh, no checks at a relay); the service is\n"
		"                         told this device does not enforce\n"
		"  --no-port-mapping      do not ask the gateway to map the WireGuard port\n"
		"                         (default: PCP, NAT-PMP, then UPnP-IGD, the port of\n"
		"                         last time, renewed; released on exit)\n"
		"  --port-mapping LIST    only these of pcp,nat-pmp,upnp (default all)\n"
		"  --threads N            threads that encrypt and decrypt (1..64; default:\n"
		"                         one per CPU the process may run on; 1: the event\n"
		"                         loop's thread alone)\n"
		"  --log-format text|json\n"
		"  --verbose              debug logs\n"
		"  --help\n"
		"\n"
		"SIGTERM/SIGINT remove the interface and the nftables table; the registration stays.\n",
		PATH_DIRECT_TIMEOUT_MS);
}

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
	char buf[512], why[768];
	int rc;

	if ((rc = state_read_secret(m->o.reg_key_file, buf, sizeof(buf), why, sizeof(why))) < 0) {
		log_error(COMPONENT, "cannot read --reg-key-file %s", why);
		return rc;
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

static void free_reg_key(struct meshd *m)
{
	sodium_memzero(m->reg_key, strlen(m->reg_key));
	free(m->reg_key);
	m->reg_key = NULL;
}

static int start_buffers(struct meshd *m)
{
	m->udp_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	m->tun_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	m->fwd_bufs = malloc((size_t)NETIO_BATCH_MAX * BUF_SIZE);
	if (!m->udp_bufs || !m->tun_bufs || !m->fwd_bufs)
		return -ENOMEM;
	return 0;
}

static void stop_buffers(struct meshd *m)
{
	free(m->fwd_bufs);
	free(m->tun_bufs);
	free(m->udp_bufs);
}

/* the saved port, or a new one when it is taken; saved for the next start */
static int open_socket(struct meshd *m)
{
	char why[512];
	int rc;

	rc = udp_bind(m, m->o.listen_port >= 0 ? (uint16_t)m->o.listen_port : m->st.listen_port);
	if (rc < 0 && m->o.listen_port < 0 && m->st.listen_port) {
		log_warn(COMPONENT, "saved port=%u is taken; a new one", m->st.listen_port);
		rc = udp_bind(m, 0);
	}
	if (rc < 0) {
		log_error(COMPONENT, "cannot open the UDP socket err=\"%s\"", strerror(-rc));
		return rc;
	}
	m->st.listen_port = m->port;
	if (state_save(m->o.state_dir, &m->st, why, sizeof(why)) < 0)
		log_warn(COMPONENT, "state not saved: %s", why);
	return 0;
}

/* the loop, the TUN, the WireGuard device and its socket */
static int start_dataplane(struct meshd *m)
{
	int rc;

	if ((rc = loop_new(&m->loop)) < 0)
		return rc;
	if ((rc = netio_linux_new(&m->io)) < 0)
		goto err_loop;
	if ((rc = netio_tun_open_flags(m->io, m->o.ifname, m->o.no_tun_offload ? 0 : NETIO_TUN_OFFLOAD,
					&m->tun)) < 0) {
		log_error(COMPONENT, "cannot create TUN ifname=%s err=\"%s\"", m->o.ifname, strerror(-rc));
		goto err_io;
	}
	if ((rc = wg_device_new(&datapath_dev_ops, m, &m->dev)) < 0)
		goto err_tun;
	wg_device_set_mtu(m->dev, WG_DEFAULT_MTU);
	if ((rc = wg_device_set_threads(m->dev, m->o.threads)) < 0) {
		log_error(COMPONENT, "cannot start threads n=%d err=\"%s\"", m->o.threads, strerror(-rc));
		goto err_dev;
	}
	log_info(COMPONENT, "data plane threads=%d", wg_device_get_threads(m->dev));
	wg_device_set_wall_clock(m->dev, clock_now_ns(), clock_wall_ns());
	if ((rc = wg_device_set_private_key(m->dev, m->st.priv)) < 0 || (rc = open_socket(m)) < 0)
		goto err_dev;
	if ((rc = loop_add_fd(m->loop, netio_udp_fd(m->io, m->udp), LOOP_READ, datapath_udp_readable, m)) < 0)
		goto err_udp;
	if ((rc = loop_add_fd(m->loop, netio_tun_fd(m->io, m->tun), LOOP_READ, datapath_tun_readable, m)) < 0)
		goto err_udpfd;
	return 0;

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
	return rc;
}

static void stop_dataplane(struct meshd *m)
{
	loop_del_fd(m->loop, netio_tun_fd(m->io, m->tun));
	loop_del_fd(m->loop, netio_udp_fd(m->io, m->udp));
	netio_udp_close(m->io, m->udp);
	wg_device_free(m->dev);
	netio_tun_close(m->io, m->tun);
	netio_free(m->io);
	loop_free(m->loop);
}

/* a restart brings the tunnel back before the service answers */
static void restore_tunnel(struct meshd *m)
{
	struct svc_err err;

	if (!m->st.has_tunnel_ip || !m->st.has_vpc_cidr)
		return;
	if (svcjson_check_vpc(&m->st.vpc_cidr, &m->st.tunnel_ip, &err) < 0) {
		log_warn(COMPONENT, "saved tunnel not restored field=%s reason=\"%s\"", err.field, err.msg);
		return;
	}
	m->tip = m->st.tunnel_ip;
	m->vpc = m->st.vpc_cidr;
	m->has_vpc = true;
	snprintf(m->self_id, sizeof(m->self_id), "%s", m->st.device_id);
	iface_configure(m);
}

/* discovery, the control and UAPI sockets, signals, housekeeping */
static int start_agent(struct meshd *m)
{
	int rc;

	restore_tunnel(m);
	disco_init(&m->disco, 0, loop_now(m->loop));
	stunmux_init(&m->mux, &m->disco, m->o.relay, m->port, "natmesh meshd relay");
	for (int i = 0; i < m->o.nstun; i++) {
		if ((rc = add_stun(m, m->o.stun[i])) < 0 && rc != -EEXIST) {
			log_error(COMPONENT, "bad --stun %s", m->o.stun[i]);
			return rc;
		}
	}
	/* the first --stun server of each family; relays come later */
	m->keepalive_s = PATH_KEEPALIVE_S;	/* until natd measures the NAT */
	natd_init(m);
	report_watch_start(m);
	report_check_local(m);
	report_build(m, &m->report);
	if ((rc = ctl_new(m->loop, m->o.ctl_path, status_ctl, m, &m->ctl)) < 0) {
		log_error(COMPONENT, "cannot serve the control socket path=%s err=\"%s\"", m->o.ctl_path,
			  strerror(-rc));
		goto err_watch;
	}
	iface_uapi_open(m);
	if ((rc = portmap_io_start(m)) < 0)
		log_warn(COMPONENT, "port mapping off err=\"%s\"", strerror(-rc));
	if ((rc = loop_signal(m->loop, SIGTERM, on_stop, m)) < 0 ||
	    (rc = loop_signal(m->loop, SIGINT, on_stop, m)) < 0)
		goto err_ctl;
	/* the service client starts once the first discovery round is over
	 * (service_start), so the registration already carries the reflexive
	 * endpoints and peers spray at the right candidates from the start */
	m->svc_due = loop_now(m->loop) + SVC_START_MAX_MS;
	schedule_start(m);
	return 0;

err_ctl:
	portmap_io_stop(m);
	iface_uapi_close(m);
	ctl_free(m->ctl);
err_watch:
	report_watch_stop(m);
	return rc;
}

/* what ran since start_agent (the service client, natdisc runs, a ping,
 * peers) ends first */
static void stop_agent(struct meshd *m)
{
	schedule_stop(m);
	service_stop(m);
	for (int f = 0; f < SVC_FAMILIES; f++)
		natd_stop(&m->natd[f]);
	ping_cancel(m, NULL, "meshd is stopping");
	peers_clear(m);
	portmap_io_stop(m);
	iface_uapi_close(m);
	ctl_free(m->ctl);
	report_watch_stop(m);
}

static int start(struct meshd *m)
{
	char why[512];
	int rc;

	m->addr_watch = -1;
	vec_init(&m->peers, sizeof(struct mpeer *), MESHD_MAX_PEERS, "meshd peers");
	if ((rc = read_reg_key(m)) < 0)
		return rc;
	if ((rc = state_load(m->o.state_dir, &m->st, why, sizeof(why))) < 0) {
		log_error(COMPONENT, "state: %s", why);
		goto err_key;
	}
	phases_mark(&m->phases, PHASE_KEY);
	/* issue 16: the table is in before the TUN exists */
	if ((rc = enforce_start(m)) < 0)
		goto err_policy;
	if ((rc = start_buffers(m)) < 0)
		goto err_bufs;
	if ((rc = start_dataplane(m)) < 0)
		goto err_bufs;
	phases_mark(&m->phases, PHASE_TUN);
	if ((rc = start_agent(m)) < 0)
		goto err_dataplane;
	log_info(COMPONENT, "up ifname=%s port=%u relay=%s relay_only=%s control=%s", m->o.ifname, m->port,
		 m->o.relay ? "true" : "false", m->o.relay_only ? "true" : "false", m->o.ctl_path);
	return 0;

err_dataplane:
	stop_dataplane(m);
err_bufs:
	stop_buffers(m);
	enforce_stop(m);
err_policy:
	state_clear(&m->st);
err_key:
	free_reg_key(m);
	return rc;
}

/* the mirror of start(); closing the TUN removes the interface, the
 * registration stays so a restart comes back as the same device */
static void stop(struct meshd *m)
{
	stop_agent(m);
	stop_dataplane(m);
	stop_buffers(m);
	enforce_stop(m);
	state_clear(&m->st);
	free_reg_key(m);
}

/* a number in [min, max]: 0 or -EINVAL */
static int parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || end == s || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* the replicas' URLs: each well formed, each encrypted unless
 * --insecure-http; 0 to go on, else the exit status */
static int check_services(const struct opts *o)
{
	char why[SVCURL_LEN + 256], http_url[SVCURL_LEN];

	if (svcurl_check(o->service, o->insecure_http, "the registration key and the device token", http_url,
			 sizeof(http_url), why, sizeof(why)) < 0) {
		fprintf(stderr, "meshd: %s\n", why);
		return 2;
	}
	return 0;
}

/* every --service, comma-joined: the replicas in the order given */
static char service_list[SVCURL_LIST_LEN];

/* one option into o; 0, or the exit status when it was refused */
static int set_opt(struct opts *o, int opt, const char *arg, enum log_format *fmt)
{
	long v;

	switch (opt) {
	case 's':
		if (svcurl_append(service_list, sizeof(service_list), arg) < 0) {
			fprintf(stderr, "meshd: --service: the URLs are longer than %zu bytes in all\n",
				sizeof(service_list) - 1);
			return 2;
		}
		o->service = service_list;
		return 0;
	case 'k': o->reg_key_file = arg; return 0;
	case 'c': o->ca = arg; return 0;
	case 'r': o->relay = true; return 0;
	case 'R': o->relay_only = true; return 0;
	case 'O': o->no_offload = true; return 0;
	case 'U': o->no_tun_offload = true; return 0;
	case 'I': o->insecure_http = true; return 0;
	case 'P': o->no_policy = true; return 0;
	case 'M': o->measure_lifetime = true; return 0;
	case 'N': o->no_port_mapping = true; return 0;
	case 'm':
		if ((o->port_mapping = portmap_parse_protos(arg)) < 0)
			return fprintf(stderr, "meshd: bad --port-mapping: %s (pcp,nat-pmp,upnp or all)\n", arg), 2;
		return 0;
	case 'd': snprintf(o->state_dir, sizeof(o->state_dir), "%s", arg); return 0;
	case 'S':
		if (o->nstun >= MAX_STUN)
			return fprintf(stderr, "meshd: at most %d --stun servers\n", MAX_STUN), 2;
		o->stun[o->nstun++] = arg;
		return 0;
	case 'i':
		if (!arg[0] || strlen(arg) >= IFNAMSIZ || strchr(arg, '/'))
			return fprintf(stderr, "meshd: bad --ifname: %s\n", arg), 2;
		snprintf(o->ifname, sizeof(o->ifname), "%s", arg);
		return 0;
	case 'H':
		if (!arg[0] || strlen(arg) > SVC_HOSTNAME_MAX)
			return fprintf(stderr, "meshd: bad --hostname: %s\n", arg), 2;
		snprintf(o->hostname, sizeof(o->hostname), "%s", arg);
		return 0;
	case 'p':
		if (parse_num(arg, 0, 65535, &v) < 0)
			return fprintf(stderr, "meshd: bad --listen-port: %s (0..65535)\n", arg), 2;
		o->listen_port = (int)v;
		return 0;
	case 'C':
		if (strlen(arg) >= sizeof(o->ctl_path))
			return fprintf(stderr, "meshd: --control path too long: %s\n", arg), 2;
		snprintf(o->ctl_path, sizeof(o->ctl_path), "%s", arg);
		return 0;
	case 't':
		if (parse_num(arg, 100, 600000, &v) < 0)
			return fprintf(stderr, "meshd: bad --direct-timeout: %s (100..600000 ms)\n", arg), 2;
		o->direct_timeout_ms = (uint32_t)v;
		return 0;
	case 'W':
		if (parse_num(arg, 1, WG_WORKERS_MAX, &v) < 0)
			return fprintf(stderr, "meshd: bad --threads: %s (1..%d)\n", arg, WG_WORKERS_MAX), 2;
		o->threads = (int)v;
		return 0;
	case 'L':
		if (log_parse_format(arg, fmt) < 0)
			return fprintf(stderr, "meshd: bad --log-format: %s (text or json)\n", arg), 2;
		return 0;
	}
	usage(stderr);
	return 2;
}

/* the defaults that depend on other options */
static void set_defaults(struct opts *o)
{
	if (!o->hostname[0]) {
		struct utsname u;
		snprintf(o->hostname, sizeof(o->hostname), "%s", uname(&u) == 0 ? u.nodename : "meshd");
	}
	if (!o->state_dir[0])
		snprintf(o->state_dir, sizeof(o->state_dir), "/var/lib/meshd/%s", o->ifname);
	if (!o->ctl_path[0])
		snprintf(o->ctl_path, sizeof(o->ctl_path), "/run/meshd/%s.sock", o->ifname);
}

/* -1 to run, else the exit status */
static int parse_opts(int argc, char **argv, struct opts *o, enum log_format *fmt, enum log_level *level)
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
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "no-policy", no_argument, NULL, 'P' },
		{ "measure-lifetime", no_argument, NULL, 'M' },
		{ "no-port-mapping", no_argument, NULL, 'N' },
		{ "port-mapping", required_argument, NULL, 'm' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "listen-port", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "control", required_argument, NULL, 'C' },
		{ "direct-timeout", required_argument, NULL, 't' },
		{ "threads", required_argument, NULL, 'W' },
		{ "log-format", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc;

	o->listen_port = -1;
	snprintf(o->ifname, sizeof(o->ifname), "mesh0");
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'v')
			*level = LOG_DEBUG;
		else if ((rc = set_opt(o, opt, optarg, fmt)) != 0)
			return rc;
	}
	if (optind != argc) {
		fprintf(stderr, "meshd: unexpected argument: %s\n", argv[optind]);
		return 2;
	}
	if (!o->service || !o->reg_key_file) {
		fprintf(stderr, "meshd: --service and --reg-key-file are required (see --help)\n");
		return 2;
	}
	if ((rc = check_services(o)) != 0)
		return rc;
	set_defaults(o);
	return -1;
}

int main(int argc, char **argv)
{
	static struct meshd m;
	char why[SVCURL_LEN + 256], http_url[SVCURL_LEN];
	enum log_format fmt = LOG_FORMAT_TEXT;
	enum log_level level = LOG_INFO;
	int rc;

	phases_init(&m.phases);
	if ((rc = parse_opts(argc, argv, &m.o, &fmt, &level)) >= 0)
		return rc;
	log_setup(fmt, level);
	if (svcurl_check(m.o.service, true, "", http_url, sizeof(http_url), why, sizeof(why)) == 0 && http_url[0])
		log_warn(COMPONENT, "the service URL is not encrypted (--insecure-http): the registration key "
			 "and the device token travel in clear url=%s", http_url);
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
