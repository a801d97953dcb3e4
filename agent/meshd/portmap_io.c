/* portmap_io: the port mapping core (portmap.c) and the UPnP worker
 * (portmap_upnp.c) bound to meshd: the default gateway, a UDP socket
 * connected to its port 5351 (so only the gateway's answers arrive, RFC 6887
 * 8.3), a loop timer, the worker's pipe, the external port kept in
 * STATE_DIR/portmap_port, the endpoint reported, and the release at exit.
 * The default route is read from /proc/net/route when rtnetlink says a route
 * changed (RTMGRP_IPV4_ROUTE), and every GW_WATCHED_MS anyway. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "meshd.h"
#include "portmap.h"
#include "portmap_upnp.h"

enum {
	GW_CHECK_MS = 2000,	/* the default route looked at this often ... */
	GW_WATCHED_MS = 30000,	/* ... or this often when rtnetlink tells of route changes */
	RELEASE_WAIT_MS = 200,	/* at exit, the answer to a deletion waited for */
};

struct portmap_io {
	struct meshd *m;
	struct portmap core;
	struct upnp *upnp;
	int fd;				/* connected to gw:5351, -1: none */
	union sockaddr_any gw;
	bool has_gw;
	struct loop_timer timer;
	uint64_t gw_check_at;
	struct mnl_socket *routes;	/* IPv4 route notifications, NULL: polled */
	char port_file[600];
};

/* the IPv4 default route's gateway from /proc/net/route: 0, or -ENOENT */
static int default_gateway(union sockaddr_any *gw)
{
	char line[256], ifname[32];
	unsigned long dst, via, flags, mask;
	FILE *f = fopen("/proc/net/route", "re");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (rc && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%31s %lx %lx %lx %*s %*s %*s %lx", ifname, &dst, &via, &flags, &mask) != 5)
			continue;
		if (dst == 0 && mask == 0 && (flags & 0x3) == 0x3) {	/* RTF_UP | RTF_GATEWAY */
			memset(gw, 0, sizeof(*gw));
			gw->in.sin_family = AF_INET;
			gw->in.sin_addr.s_addr = (uint32_t)via;	/* printed in network order */
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

static uint16_t load_port(const char *path)
{
	FILE *f = fopen(path, "re");
	unsigned v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%u", &v) != 1 || v > 65535)
		v = 0;
	fclose(f);
	return (uint16_t)v;
}

static void save_port(const char *path, uint16_t port)
{
	char tmp[620];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "we"))) {
		log_warn(COMPONENT, "port mapping: cannot save the external port path=%s err=\"%s\"", tmp, strerror(errno));
		return;
	}
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		log_warn(COMPONENT, "port mapping: cannot save the external port path=%s err=\"%s\"", path,
			 strerror(errno));
}

static void close_socket(struct portmap_io *p)
{
	if (p->fd < 0)
		return;
	loop_del_fd(p->m->loop, p->fd);
	close(p->fd);
	p->fd = -1;
}

static void readable(struct loop *loop, int fd, uint32_t events, void *arg);

/* a socket connected to gw:5351; *client is our address towards it */
static int open_socket(struct portmap_io *p, union sockaddr_any *client)
{
	union sockaddr_any to = p->gw;
	socklen_t len = sizeof(*client);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	addr_set_port(&to, PCP_PORT);
	if (connect(fd, &to.sa, addr_len(&to)) < 0 || getsockname(fd, &client->sa, &len) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if ((rc = loop_add_fd(p->m->loop, fd, LOOP_READ, readable, p)) < 0) {
		close(fd);
		return rc;
	}
	p->fd = fd;
	return 0;
}

static void run_upnp_job(struct portmap_io *p)
{
	struct portmap *pm = &p->core;
	enum portmap_upnp_job job = pm->upnp_job;
	int rc;

	if (job == PORTMAP_UPNP_NONE || upnp_busy(p->upnp))
		return;
	pm->upnp_job = PORTMAP_UPNP_NONE;
	upnp_set_gateway(p->upnp, &p->gw);
	if ((rc = upnp_start(p->upnp, job, pm->internal_port, pm->want_port, PORTMAP_LIFETIME_S)) < 0) {
		log_warn(COMPONENT, "port mapping: cannot start the UPnP worker err=\"%s\"", strerror(-rc));
		if (job == PORTMAP_UPNP_DISCOVER)
			portmap_upnp_discovered(pm, false, clock_now_ms());
		else if (job == PORTMAP_UPNP_MAP)
			portmap_upnp_mapped(pm, false, NULL, 0, clock_now_ms());
		return;
	}
	pm->upnp_busy = true;
}

/* sends what the core has, starts what it asks of the worker, re-arms the
 * timer, and tells the service when the mapping changed */
static void pump(struct portmap_io *p)
{
	struct portmap *pm = &p->core;
	union sockaddr_any before = pm->state == PORTMAP_MAPPED ? pm->external : (union sockaddr_any){ 0 };
	struct portmap_dgram d;
	uint64_t now = clock_now_ms(), dl;

	while (portmap_poll(pm, now, &d) == 1)
		if (p->fd >= 0 && send(p->fd, d.buf, d.len, 0) < 0)
			log_debug(COMPONENT, "port mapping: send to gateway=%s err=\"%s\"", pm->gw_name, strerror(errno));
	run_upnp_job(p);
	dl = portmap_deadline(pm);
	if (dl > p->gw_check_at)
		dl = p->gw_check_at;
	/* at least 1 ms: a timer due at once would run again in the same pass */
	(void)!loop_timer_arm(p->m->loop, &p->timer, dl > now ? dl - now : 1, 0);
	if (pm->state == PORTMAP_MAPPED && addr_port(&pm->external) != addr_port(&before))
		save_port(p->port_file, addr_port(&pm->external));
	if (!addr_equal(&before, pm->state == PORTMAP_MAPPED ? &pm->external : &(union sockaddr_any){ 0 }))
		report_if_changed(p->m);
}

static void start_gateway(struct portmap_io *p)
{
	union sockaddr_any client;
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	int rc;

	close_socket(p);
	if ((rc = open_socket(p, &client)) < 0) {
		log_warn(COMPONENT, "port mapping: cannot reach gateway=%s err=\"%s\"",
			 addr_format_ip(&p->gw, a, sizeof(a)), strerror(-rc));
		p->core.state = PORTMAP_IDLE;
		return;
	}
	log_info(COMPONENT, "port mapping: probing gateway=%s from=%s", addr_format_ip(&p->gw, a, sizeof(a)),
		 addr_format_ip(&client, b, sizeof(b)));
	portmap_start(&p->core, &p->gw, &client, clock_now_ms());
}

/* on start and when the default route's gateway changes */
static void check_gateway(struct portmap_io *p)
{
	union sockaddr_any gw;
	bool has = default_gateway(&gw) == 0;

	p->gw_check_at = clock_now_ms() + (p->routes ? GW_WATCHED_MS : GW_CHECK_MS);
	if (has == p->has_gw && (!has || addr_ip_equal(&gw, &p->gw)))
		return;
	p->has_gw = has;
	if (!has) {
		log_info(COMPONENT, "port mapping: no IPv4 default gateway");
		close_socket(p);
		p->core.state = PORTMAP_IDLE;
		return;
	}
	p->gw = gw;
	start_gateway(p);
}

static void on_timer(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct portmap_io *p = arg;
	(void)loop, (void)t;

	if (clock_now_ms() >= p->gw_check_at)
		check_gateway(p);
	pump(p);
}

static void readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap_io *p = arg;
	uint8_t buf[PCP_MAX_LEN + 1];
	ssize_t n;
	(void)loop, (void)events;

	/* one more than the largest message, so an oversized one is seen as such */
	while ((n = recv(fd, buf, sizeof(buf), MSG_TRUNC)) >= 0)
		portmap_receive(&p->core, buf, (size_t)n, clock_now_ms());
	pump(p);
}

static void upnp_done(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap_io *p = arg;
	union sockaddr_any ext;
	uint32_t life = 0;
	char why[128];
	bool ok = false;
	enum portmap_upnp_job job = upnp_finish(p->upnp, &ok, &ext, &life, why, sizeof(why));
	(void)loop, (void)fd, (void)events;

	p->core.upnp_busy = false;
	if (!ok && job != PORTMAP_UPNP_NONE)
		log_info(COMPONENT, "port mapping: upnp gateway=%s: %s", p->core.gw_name, why);
	if (job == PORTMAP_UPNP_DISCOVER)
		portmap_upnp_discovered(&p->core, ok, clock_now_ms());
	else if (job == PORTMAP_UPNP_MAP)
		portmap_upnp_mapped(&p->core, ok, &ext, life, clock_now_ms());
	else if (job == PORTMAP_UPNP_CHECK)
		portmap_upnp_checked(&p->core, ok, clock_now_ms());
	pump(p);
}

static void routes_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct portmap_io *p = arg;
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	(void)loop, (void)fd, (void)events;

	/* what changed does not matter: the default route is read again */
	while (mnl_socket_recvfrom(p->routes, buf, sizeof(buf)) > 0)
		;
	check_gateway(p);
	pump(p);
}

static void routes_watch(struct portmap_io *p)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (nl && mnl_socket_bind(nl, RTMGRP_IPV4_ROUTE, MNL_SOCKET_AUTOPID) == 0 &&
	    loop_add_fd(p->m->loop, mnl_socket_get_fd(nl), LOOP_READ, routes_readable, p) == 0) {
		p->routes = nl;
		return;
	}
	log_warn(COMPONENT, "port mapping: no route-change notifications, the gateway is polled every %d ms err=\"%s\"",
		 GW_CHECK_MS, strerror(errno));
	if (nl)
		mnl_socket_close(nl);
}

static void routes_unwatch(struct portmap_io *p)
{
	if (!p->routes)
		return;
	loop_del_fd(p->m->loop, mnl_socket_get_fd(p->routes));
	mnl_socket_close(p->routes);
	p->routes = NULL;
}

int portmap_io_start(struct meshd *m)
{
	struct portmap_io *p;
	uint8_t nonce[PCP_NONCE_LEN];
	int rc;

	m->pmio = NULL;
	if (m->o.no_port_mapping)
		return 0;
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->m = m;
	p->fd = -1;
	if ((rc = upnp_new(&p->upnp)) < 0)
		goto err_free;
	if ((rc = loop_add_fd(m->loop, upnp_fd(p->upnp), LOOP_READ, upnp_done, p)) < 0)
		goto err_upnp;
	snprintf(p->port_file, sizeof(p->port_file), "%s/portmap_port", m->o.state_dir);
	randombytes_buf(nonce, sizeof(nonce));
	portmap_init(&p->core, m->o.port_mapping ? (unsigned)m->o.port_mapping : PORTMAP_ALL, m->port,
		     load_port(p->port_file), nonce);
	loop_timer_init(&p->timer, on_timer, p);
	m->pmio = p;
	routes_watch(p);
	check_gateway(p);
	pump(p);
	return 0;

err_upnp:
	upnp_free(p->upnp);
err_free:
	free(p);
	return rc;
}

/* RFC 6887 15, RFC 6886 3.4: lifetime 0, and the answer waited for briefly */
static void release(struct portmap_io *p)
{
	struct portmap *pm = &p->core;
	uint8_t buf[64], in[PCP_MAX_LEN];
	size_t n = portmap_release(pm, buf, sizeof(buf));
	char a[ADDR_STRLEN];

	if (pm->state != PORTMAP_MAPPED)
		return;
	addr_format(&pm->external, a, sizeof(a));
	if (pm->proto == PORTMAP_UPNP) {
		int rc = upnp_delete(p->upnp);
		log_info(COMPONENT, "port mapping: released protocol=upnp gateway=%s external=%s%s", pm->gw_name, a,
			 rc ? " (DeletePortMapping failed)" : "");
		return;
	}
	if (!n || p->fd < 0)
		return;
	for (int i = 0; i < 2; i++) {
		struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
		if (send(p->fd, buf, n, 0) < 0)
			break;
		if (poll(&pfd, 1, RELEASE_WAIT_MS / 2) == 1 && recv(p->fd, in, sizeof(in), 0) > 0) {
			log_info(COMPONENT, "port mapping: released protocol=%s gateway=%s external=%s",
				 portmap_proto_name(pm->proto), pm->gw_name, a);
			return;
		}
	}
	log_warn(COMPONENT, "port mapping: gateway=%s did not answer the release of external=%s", pm->gw_name, a);
}

void portmap_io_stop(struct meshd *m)
{
	struct portmap_io *p = m->pmio;

	if (!p)
		return;
	loop_timer_cancel(m->loop, &p->timer);
	routes_unwatch(p);
	loop_del_fd(m->loop, upnp_fd(p->upnp));
	if (upnp_busy(p->upnp)) {
		bool ok;
		union sockaddr_any ext;
		uint32_t life;
		char why[128];
		enum portmap_upnp_job job = upnp_finish(p->upnp, &ok, &ext, &life, why, sizeof(why));
		if (job == PORTMAP_UPNP_MAP)
			portmap_upnp_mapped(&p->core, ok, &ext, life, clock_now_ms());
	}
	release(p);
	close_socket(p);
	upnp_free(p->upnp);
	free(p);
	m->pmio = NULL;
}

bool portmap_io_endpoint(const struct meshd *m, union sockaddr_any *out)
{
	if (!m->pmio || m->pmio->core.state != PORTMAP_MAPPED)
		return false;
	*out = m->pmio->core.external;
	return true;
}

json_t *portmap_io_status(const struct meshd *m)
{
	const struct portmap *pm;
	uint64_t now = clock_now_ms();
	char a[ADDR_STRLEN];
	json_t *o;

	if (!m->pmio)
		return json_pack("{s:s}", "state", "off");
	pm = &m->pmio->core;
	o = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "state", portmap_state_name(pm->state), "protocol",
		      portmap_proto_name(pm->proto), "gateway", m->pmio->has_gw ? pm->gw_name : "none",
		      "internal_port", pm->internal_port, "maps", pm->maps, "renewals", pm->renewals, "remaps",
		      pm->remaps);
	if (pm->state != PORTMAP_MAPPED)
		return o;
	json_object_set_new(o, "external", json_string(addr_format(&pm->external, a, sizeof(a))));
	json_object_set_new(o, "lifetime_s", json_integer(pm->lifetime));
	json_object_set_new(o, "renew_in_s", json_integer(pm->renew_at > now ? (json_int_t)((pm->renew_at - now) / 1000)
									    : 0));
	json_object_set_new(o, "first_mapping_ms", json_integer(pm->first_ms ? pm->first_ms - 1 : 0));
	return o;
}
