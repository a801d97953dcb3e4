/* relays: meshd's relay peers. Each is alive while it answers disco's STUN
 * probes on the WireGuard socket (disco_poll_relays); the one relay.c picks
 * carries the route of the VPC, the others what it routes (accept_vpc). */
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "meshd.h"
#include "relay.h"

/* Issue 15 point 1: the relay in use carries the VPC as its allowed IPs
 * (use()); another relay may forward to us only what we route through the
 * relay in use (agents choose relays by their own round trips, relay.h), so
 * it gets the VPC as rx sources while some relay is in use, and the data
 * plane refuses from it every address another peer holds by a longer prefix:
 * a peer we reach directly, a relay's own. A relay that is not in use never
 * speaks for addresses that nothing routes. */
static void accept_vpc(struct meshd *m, struct mpeer *r)
{
	bool want = m->has_vpc && r->wp && m->relay_in_use && r != m->relay_in_use;
	int rc;

	if (r->has_rx_vpc && (!want || memcmp(&r->rx_vpc, &m->vpc, sizeof(m->vpc)))) {
		wg_peer_rx_source_remove(r->wp, &r->rx_vpc);
		r->has_rx_vpc = false;
	}
	if (!want || r->has_rx_vpc)
		return;
	rc = wg_peer_rx_source_add(r->wp, &m->vpc);
	r->has_rx_vpc = rc == 0;
	if (rc < 0)
		log_warn(COMPONENT, "relay cannot forward to us relay=%s err=\"%s\"", r->name, strerror(-rc));
	else
		r->rx_vpc = m->vpc;
}

static void use(struct meshd *m, struct mpeer *best, const struct relay_cand *c, const struct relay_cand *cur,
		uint64_t now)
{
	if (m->has_vpc && wg_peer_allowed_ip_add(best->wp, &m->vpc) < 0)
		log_warn(COMPONENT, "cannot route the VPC via relay=%s", best->name);
	log_info(COMPONENT, "relay in use relay=%s srtt_us=%" PRIu64 " alive=%s previous=%s previous_srtt_us=%" PRIu64,
		 best->name, c->rtt_us, relay_alive(c, now) ? "true" : "false",
		 m->relay_in_use ? m->relay_in_use->name : "none", cur ? cur->rtt_us : 0);
	m->relay_in_use = best;
}

/* the relay choice itself is relay.c's: alive, lowest smoothed probe RTT */
void relays_choose(struct meshd *m, uint64_t now)
{
	struct relay_cand c[DISCO_MAX_SERVERS] = { 0 };
	struct mpeer *who[DISCO_MAX_SERVERS] = { 0 }, *best, *cur = m->relay_in_use;
	bool had = cur != NULL;
	int n = 0, icur = -1, pick;

	if (m->o.relay)
		return;
	for (size_t i = 0; i < meshd_npeers(m) && n < DISCO_MAX_SERVERS; i++) {
		struct mpeer *r = meshd_peer(m, i);
		if (!r->relay || !r->wp)
			continue;
		if (r == cur)
			icur = n;
		c[n].id = r->id;
		c[n].last_answer = relays_last_answer(m, r, NULL, &c[n].rtt_us);
		who[n++] = r;
	}
	pick = relay_pick(c, n, icur, now);
	best = pick >= 0 ? who[pick] : NULL;
	if (best && best != cur)
		use(m, best, &c[pick], icur >= 0 ? &c[icur] : NULL, now);
	for (int i = 0; i < n; i++)
		accept_vpc(m, who[i]);
	if (had != (m->relay_in_use != NULL))
		for (size_t i = 0; i < meshd_npeers(m); i++)
			if (meshd_peer(m, i)->use_path)
				path_relay(&meshd_peer(m, i)->path, m->relay_in_use != NULL, now);
}

uint64_t relays_last_answer(const struct meshd *m, const struct mpeer *r, uint64_t *rtt_ms, uint64_t *srtt_us)
{
	const struct disco_server *s = r->has_relay_addr ? disco_server_find(&m->disco, &r->relay_addr) : NULL;

	if (rtt_ms)
		*rtt_ms = s ? s->probe_rtt_ms : 0;
	if (srtt_us)
		*srtt_us = s ? s->probe_srtt_us : 0;
	return s ? s->last_answer : 0;
}
