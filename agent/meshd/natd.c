/* natd: NAT behaviour discovery (issue 7, natinfo.h), one natdisc run per
 * address family against the first --stun server of that family. Its
 * mapping test runs from the WireGuard socket (the mapping WireGuard uses);
 * the filtering and hairpinning tests need fresh sockets of their own. */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "meshd.h"
#include "natinfo.h"

void natd_stop(struct natd *d)
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
void natd_init(struct meshd *m)
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
	struct meshd *m = d->m;
	const struct natdisc_result *r = natdisc_result(d->nd);
	const char *fam = svcjson_family_name(d->fam);
	char line[192], srv[ADDR_STRLEN];

	if (r->tests_done == d->seen && !natdisc_done(d->nd))
		return;
	d->seen = r->tests_done;
	d->res = *r;
	d->has_res = true;
	/* the IPv4 NAT's mapping lifetime sets the keepalive (a mapping that
	 * died at the shortest idle tried counts as the shortest) */
	if (d->fam == SVC_FAM_IPV4 && (r->tests_done & NATDISC_TEST_LIFETIME) && r->lifetime == NATDISC_YES)
		peerpath_keepalive(m, r->lifetime_alive_ms ? r->lifetime_alive_ms : 1);
	if (!natdisc_done(d->nd))
		return;
	natinfo_describe(r, line, sizeof(line));
	if (r->error != NATDISC_OK)
		log_warn(COMPONENT, "NAT behaviour unknown family=%s server=%s reason=\"%s\"", fam,
			 meshd_fmt_addr(&d->server, srv), natdisc_strerror(r->error));
	else
		log_info(COMPONENT, "NAT behaviour family=%s mapping=%s filtering=%s behind_nat=%s summary=\"%s\"",
			 fam, natdisc_dep_name(r->mapping), natdisc_dep_name(r->filtering),
			 r->nat ? "true" : "false", line);
	natd_stop(d);
}

void natd_pump(struct natd *d, uint64_t now)
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
		natdisc_receive(d->nd, k->idx, &p.addr, p.data, p.len, meshd_now(m));
	}
	natd_pump(d, meshd_now(m));
	schedule_run(m);
}

/* natdisc's socket k (1..ND_SOCKS) on local's address: 0 or -errno */
static int natd_open(struct natd *d, int k, const union sockaddr_any *local)
{
	struct meshd *m = d->m;
	struct nd_sock *ks = &d->sock[k - 1];
	union sockaddr_any l;
	int rc;

	*ks = (struct nd_sock){ .d = d, .idx = k };
	if ((rc = netio_udp_open(m->io, local, &ks->u)) < 0)
		return rc;
	if ((rc = netio_udp_local(m->io, ks->u, &l)) < 0 ||
	    (rc = loop_add_fd(m->loop, netio_udp_fd(m->io, ks->u), LOOP_READ, natd_readable, ks)) < 0)
		goto err_sock;
	natdisc_set_local(d->nd, k, &l);
	return 0;

err_sock:
	netio_udp_close(m->io, ks->u);
	ks->u = NULL;
	return rc;
}

/* A run in one family: the mapping test from the WireGuard socket, the
 * filtering test from a fresh socket on the same local address, the
 * hairpinning test from two more. Over IPv4 it finds the NAT; over IPv6 a
 * firewall's filtering (or NAT66). */
void natd_start(struct natd *d, uint64_t now)
{
	struct meshd *m = d->m;
	/* the lifetime (RFC 5780 4.6, last; with --measure-lifetime) only
	 * matters up to twice the longest keepalive, to the nearest 2 s; the
	 * search starts at twice the default keepalive, which tells at once
	 * whether that is safe: about 1 minute for a 15 s NAT, 70 s for one
	 * that keeps mappings 50 s or longer, so the discovery's verdict waits
	 * for it */
	struct natdisc_cfg cfg = { .server = d->server,
				   .tests = NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING | NATDISC_TEST_HAIRPIN |
					    (m->o.measure_lifetime ? NATDISC_TEST_LIFETIME : 0),
				   .lifetime_max_ms = 2 * PATH_KEEPALIVE_MAX_S * 1000,
				   .lifetime_res_ms = 2000,
				   .lifetime_first_ms = 2 * PATH_KEEPALIVE_S * 1000 };
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
		if ((rc = natd_open(d, k, &local)) < 0) {
			log_warn(COMPONENT, "NAT behaviour discovery: no socket %d family=%s err=\"%s\"", k,
				 svcjson_family_name(d->fam), strerror(-rc));
			natd_stop(d);
			return;
		}
	}
	if (natdisc_start(d->nd, now) < 0) {
		natd_stop(d);
		return;
	}
	d->seen = 0;
	d->runs++;
	natd_pump(d, now);
}
