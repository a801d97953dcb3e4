/* peerpath: a peer's direct path, between path.c's state machine and the
 * data plane. The candidates (both sides' endpoints) and what the data plane
 * did (handshakes, packets) go in; sprays of handshake initiations and the
 * route change between direct and relayed come out. */
#include <errno.h>
#include <string.h>

#include "agent/wg/messages.h"
#include "log.h"
#include "meshd.h"

/* issue 5: the same initiation to every candidate at once; whichever copy
 * is answered first wins and the data plane roams to where the answer came
 * from. The path schedule paces the sprays; no destination IP gets more
 * than iplimit.h allows (issue 15 point 5). */
static void spray(struct meshd *m, struct mpeer *p)
{
	union sockaddr_any to[PATH_MAX_CANDS];
	int rc, n = 0;

	if (!p->wp || p->path.ncands == 0)
		return;
	for (int i = 0; i < p->path.ncands; i++)
		if (iplimit_allow(&m->initlimit, &p->path.cands[i], meshd_now(m)))
			to[n++] = p->path.cands[i];
	if (n < p->path.ncands)
		log_debug(COMPONENT, "handshake initiations limited peer=%s dropped=%d", p->name, p->path.ncands - n);
	if (!n)
		return;
	rc = wg_peer_initiate_to(p->wp, to, n, clock_now_ns());
	if (rc < 0)
		log_warn(COMPONENT, "spray not sent peer=%s err=\"%s\"", p->name, strerror(-rc));
	else
		log_debug(COMPONENT, "handshake initiation peer=%s candidates=%d", p->name, rc);
}

static void apply(struct meshd *m, struct mpeer *p, const struct path_out *o, enum path_state before)
{
	struct cidr host = { .family = AF_INET, .prefix = 32 };
	char a[ADDR_STRLEN];

	memcpy(host.addr, &p->tunnel_ip.in.sin_addr, 4);
	for (int i = 0; i < o->n; i++) {
		switch (o->act[i].type) {
		case PATH_ACT_SPRAY:
			spray(m, p);
			break;
		case PATH_ACT_DIRECT:
			if (wg_peer_allowed_ip_add(p->wp, &host) < 0)
				log_warn(COMPONENT, "cannot install direct route peer=%s", p->name);
			wg_peer_set_persistent_keepalive(p->wp, m->keepalive_s, clock_now_ns());
			break;
		case PATH_ACT_RELAY:
			wg_peer_allowed_ip_remove(p->wp, &host);
			wg_peer_set_persistent_keepalive(p->wp, 0, clock_now_ns());
			break;
		case PATH_ACT_TELL:
			/* the /32 is gone: it follows the relay's VPC CIDR */
			ping_tell(m, p);
			log_info(COMPONENT, "direct path lost, peer told through the relay peer=%s", p->name);
			break;
		}
	}
	if (p->path.state != before)
		log_info(COMPONENT, "path peer=%s from=%s to=%s endpoint=%s", p->name, path_state_name(before),
			 path_state_name(p->path.state), meshd_fmt_addr(&p->path.endpoint, a));
}

void peerpath_candidates(struct meshd *m, struct mpeer *p, uint64_t now)
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
		mine[i].mapped = false;
	}
	for (int i = 0; i < p->nep; i++) {
		theirs[i].addr = p->ep[i].addr;
		theirs[i].reflexive = strcmp(p->ep[i].source, "local") != 0;
		theirs[i].mapped = !strcmp(p->ep[i].source, "portmap");
	}
	n = path_order_candidates(mine, m->report.nep, theirs, p->nep, order, PATH_MAX_CANDS);
	path_learn(&p->path, order, n, now, &o);
	apply(m, p, &o, before);
}

/* what the data plane did since the last look: a handshake it told of,
 * packets its counters show */
void peerpath_observe(struct meshd *m, struct mpeer *p, uint64_t now)
{
	struct wg_peer_state s;
	struct path_out o = { 0 };
	enum path_state before = p->path.state;

	if (!p->wp)
		return;
	wg_peer_get_state(p->wp, &s);
	if (p->use_path) {
		if (p->hs_done)
			path_handshake(&p->path, &s.endpoint, now, &o);
		path_rtt(&p->path, (uint32_t)(s.handshake_rtt_ns / 1000000u));
		if (p->owned_elsewhere)
			path_owned_elsewhere(&p->path, now, &o);
		if (s.rx_initiations != p->last_initiations)
			path_initiated(&p->path, now);
		if (s.rx_bytes != p->last_rx)
			path_rx(&p->path, now);
		else if (s.tx_bytes - p->last_tx > (s.tx_keepalives - p->last_keepalives) * WG_MSG_DATA_MIN_LEN)
			path_tx_data(&p->path, now);
		else if (s.tx_bytes != p->last_tx)
			path_tx(&p->path, now);
		if (now >= path_deadline(&p->path))
			path_tick(&p->path, now, &o);
		apply(m, p, &o, before);
	}
	p->hs_done = p->owned_elsewhere = false;
	p->last_rx = s.rx_bytes;
	p->last_tx = s.tx_bytes;
	p->last_keepalives = s.tx_keepalives;
	p->last_initiations = s.rx_initiations;
}

const char *peerpath_name(const struct mpeer *p)
{
	if (p->use_path)
		return path_state_public(p->path.state);
	if (p->relay)
		return "direct";	/* relays are always reached directly */
	return "relayed";
}

/* Issue 17: a keepalive is what holds both NATs' mappings open while a path
 * is idle; it goes to direct peers and, from an agent, to its relays. */
void peerpath_keepalive(struct meshd *m, uint32_t lifetime_alive_ms)
{
	uint32_t ka = path_keepalive_s(lifetime_alive_ms);

	if (ka == m->keepalive_s)
		return;
	log_info(COMPONENT, "persistent keepalive keepalive_s=%u previous_s=%u mapping_lifetime_ms=%u", ka,
		 m->keepalive_s, lifetime_alive_ms);
	m->keepalive_s = ka;
	for (size_t i = 0; i < meshd_npeers(m); i++) {
		struct mpeer *p = meshd_peer(m, i);
		bool on = (p->use_path && p->path.state == PATH_DIRECT) || (p->relay && p->has_relay_addr && !m->o.relay);
		if (p->wp && on)
			wg_peer_set_persistent_keepalive(p->wp, ka, clock_now_ns());
	}
}
