/* report: the endpoints meshd reports to the service (local addresses on
 * the WireGuard port, the mappings discovery found, the NAT behaviour), kept
 * up to date as local addresses change; rtnetlink says when they do. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "meshd.h"
#include "natinfo.h"

static bool usable_local(const struct meshd *m, const union sockaddr_any *a)
{
	if (m->has_vpc && cidr_contains(&m->vpc, a))
		return false;	/* our own tunnel address, or another mesh's */
	/* an IPv4 socket cannot take what peers would send to these */
	return a->sa.sa_family == AF_INET || m->family == AF_INET6;
}

void report_build(const struct meshd *m, struct svc_report *r)
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
	/* issue 18: the gateway's mapping, which peers try first */
	if (r->nep < SVC_MAX_ENDPOINTS && portmap_io_endpoint(m, &r->ep[r->nep].addr))
		strcpy(r->ep[r->nep++].source, "portmap");
	r->symmetric_nat = m->disco.res.symmetric_nat;
	for (int f = 0; f < SVC_FAMILIES; f++)
		if (m->natd[f].has_res)
			natinfo_from_result(&m->natd[f].res, &r->nat[f]);
}

void report_if_changed(struct meshd *m)
{
	struct svc_report r;

	report_build(m, &r);
	if (!memcmp(&r, &m->report, sizeof(r)))
		return;
	m->report = r;
	log_info(COMPONENT, "endpoints changed count=%d symmetric_nat=%s", r.nep,
		 r.symmetric_nat ? "true" : "false");
	if (m->svc)
		svc_set_report(m->svc, &r);
	/* our side of the candidate order (same NAT or not) may have changed */
	for (size_t i = 0; i < meshd_npeers(m); i++)
		peerpath_candidates(m, meshd_peer(m, i), meshd_now(m));
}

void report_check_local(struct meshd *m)
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
	disco_kick(&m->disco, meshd_now(m));
	for (int f = 0; f < SVC_FAMILIES; f++)
		m->natd[f].due = m->natd[f].has_server;
	report_if_changed(m);
}

static void on_local_soon(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)loop, (void)t;
	report_check_local(arg);
	schedule_run(arg);
}

static void addr_watch_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	(void)fd, (void)events;

	/* should the timer not arm, the periodic check (next_local_check)
	 * still sees the change, later */
	if (netio_addr_watch_drain(m->io) && !loop_timer_armed(&m->local_soon))
		(void)!loop_timer_arm(loop, &m->local_soon, LOCAL_SETTLE_MS, 0);
}

/* address changes are notified (the poll stays as a slow safety net) */
void report_watch_start(struct meshd *m)
{
	loop_timer_init(&m->local_soon, on_local_soon, m);
	m->local_check_ms = LOCAL_CHECK_MS;
	m->addr_watch = netio_addr_watch_fd(m->io);
	if (m->addr_watch >= 0 && loop_add_fd(m->loop, m->addr_watch, LOOP_READ, addr_watch_readable, m) == 0) {
		m->local_check_ms = LOCAL_WATCHED_MS;
		return;
	}
	log_warn(COMPONENT, "no address-change notifications, polling every %d ms err=\"%s\"", LOCAL_CHECK_MS,
		 strerror(m->addr_watch < 0 ? -m->addr_watch : errno));
	m->addr_watch = -1;
}

void report_watch_stop(struct meshd *m)
{
	loop_timer_cancel(m->loop, &m->local_soon);
	if (m->addr_watch >= 0)
		loop_del_fd(m->loop, m->addr_watch);
	m->addr_watch = -1;
}
