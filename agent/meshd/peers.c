/* peers: the VPC's other devices as the service lists them. Each list is
 * the whole truth: a device new to it is added to the data plane, one whose
 * key, tunnel address or role changed is replaced, one no longer listed is
 * removed. A bad entry is logged and skipped, never the whole list. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meshd.h"

/* Peers by id (issue 15 point 7): a list of n devices is O(n), not O(n^2)
 * as a linear search made it. Open addressing with linear probing in a table
 * twice the size of the most peers there may be, deletion by backward shift
 * (no tombstones, so lookups never slow down with churn). */
#define SLOT_MASK (MESHD_PEER_SLOTS - 1)

static size_t slot_of(const char *id)
{
	uint64_t h = 14695981039346656037ull;	/* FNV-1a */

	while (*id)
		h = (h ^ (uint8_t)*id++) * 1099511628211ull;
	return (size_t)(h ^ h >> 32) & SLOT_MASK;
}

/* the slot holding id, or the empty one where it would go */
static size_t slot_find(const struct meshd *m, const char *id)
{
	size_t s = slot_of(id);

	while (m->peer_slot[s] && strcmp(m->peer_slot[s]->id, id))
		s = (s + 1) & SLOT_MASK;
	return s;
}

static void slot_del(struct meshd *m, size_t s)
{
	size_t j = s;

	m->peer_slot[s] = NULL;
	for (;;) {
		struct mpeer *q;
		size_t k;

		j = (j + 1) & SLOT_MASK;
		if (!(q = m->peer_slot[j]))
			return;
		k = slot_of(q->id);
		/* q stays unless its home k lies cyclically outside (s, j] */
		if (s <= j ? (k <= s || k > j) : (k <= s && k > j)) {
			m->peer_slot[s] = q;
			m->peer_slot[j] = NULL;
			s = j;
		}
	}
}

static struct mpeer *peer_find(struct meshd *m, const char *id)
{
	return m->peer_slot[slot_find(m, id)];
}

static void peer_drop(struct meshd *m, size_t i)
{
	struct mpeer *p = meshd_peer(m, i);

	slot_del(m, slot_find(m, p->id));

	log_info(COMPONENT, "peer removed peer=%s", p->name);
	ping_cancel(m, p, "peer removed");
	if (m->relay_in_use == p)
		m->relay_in_use = NULL;
	if (p->wp)
		wg_device_peer_remove(m->dev, p->wp);
	sodium_memzero(p, sizeof(*p));
	free(p);
	vec_swap_remove(&m->peers, i);
	if (i < meshd_npeers(m))
		meshd_peer(m, i)->idx = i;
}

static int peer_add(struct meshd *m, const struct svc_device *d, struct mpeer **out)
{
	struct mpeer *p;
	int rc;

	if ((rc = vec_reserve(&m->peers, 1)) < 0)
		return rc;
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
		  }, m->relay_in_use != NULL, meshd_now(m));
	if (p->wp && (m->o.relay || d->relay)) {
		struct cidr host = { .family = AF_INET, .prefix = 32 };
		memcpy(host.addr, &d->tunnel_ip.in.sin_addr, 4);
		wg_peer_allowed_ip_add(p->wp, &host);
	}
	(void)vec_append(&m->peers, &p);	/* reserved above */
	p->idx = meshd_npeers(m) - 1;
	/* the vec holds at most MESHD_MAX_PEERS: the table has room */
	m->peer_slot[slot_find(m, p->id)] = p;
	*out = p;
	return 0;
}

/* --relay: agents reach relays, not the other way round, and a relay learns
 * an agent's endpoint when the agent sends (roaming). After a relay restart
 * an agent with nothing to send is silent for up to a keepalive (10 s), and
 * forwarding to it needs an address before that: its mapping as a relay or a
 * STUN server saw it, which an endpoint-independent NAT keeps open towards the
 * relay too, since the agent keeps sending there. (A symmetric NAT does not;
 * lost.c answers those agents when they send.) An endpoint the data plane
 * already has is never replaced. */
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

/* a relay is publicly reachable: its local IPv4 endpoint first */
static void relay_learn_addr(struct meshd *m, struct mpeer *p)
{
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
		wg_peer_set_persistent_keepalive(p->wp, m->keepalive_s, clock_now_ns());
	}
}

static void peer_update(struct meshd *m, struct mpeer *p, const struct svc_device *d)
{
	snprintf(p->name, sizeof(p->name), "%s", d->hostname[0] ? d->hostname : d->id);
	p->symmetric_nat = d->symmetric_nat;
	snprintf(p->group_id, sizeof(p->group_id), "%s", d->security_group_id);
	p->nep = 0;
	for (int i = 0; i < d->nep; i++) {
		const char *why;
		char a[ADDR_STRLEN];

		if (path_addr_usable(&d->ep[i].addr, &why))
			p->ep[p->nep++] = d->ep[i];
		else
			log_warn(COMPONENT, "peer endpoint ignored peer=%s endpoint=%s reason=\"%s\"", p->name,
				 meshd_fmt_addr(&d->ep[i].addr, a), why);
	}
	if (p->relay && p->wp)
		relay_learn_addr(m, p);
	if (m->o.relay && p->wp && !p->relay)
		relay_seed_endpoint(p);
	peerpath_candidates(m, p, meshd_now(m));
}

/* the peer for d, added or replaced when its identity changed; NULL when it
 * could not be added (logged) */
static struct mpeer *peer_for(struct meshd *m, const struct svc_device *d, int *full)
{
	char a[ADDR_STRLEN];
	struct mpeer *p;
	int rc;

	p = peer_find(m, d->id);
	if (p && (memcmp(p->pub, d->public_key, SVC_KEY_LEN) || !addr_ip_equal(&p->tunnel_ip, &d->tunnel_ip) ||
		  p->relay != d->relay)) {
		peer_drop(m, p->idx);
		p = NULL;
	}
	if (p)
		return p;
	if ((rc = peer_add(m, d, &p)) < 0) {
		if (rc == -ENOSPC)
			(*full)++;	/* one line per list (peers_sync) */
		else
			log_warn(COMPONENT, "peer skipped id=%s reason=\"%s\"", d->id, strerror(-rc));
		return NULL;
	}
	log_info(COMPONENT, "peer added peer=%s tunnel_ip=%s relay=%s", d->hostname,
		 addr_format_ip(&d->tunnel_ip, a, sizeof(a)), d->relay ? "true" : "false");
	return p;
}

void peers_sync(struct meshd *m, json_t *devices)
{
	union sockaddr_any relays[DISCO_MAX_SERVERS];
	int nrelays = 0, full = 0;
	size_t i;
	json_t *j;

	for (i = 0; i < meshd_npeers(m); i++)
		meshd_peer(m, i)->seen = false;
	json_array_foreach(devices, i, j) {
		struct svc_device d;
		struct svc_err err;
		struct mpeer *p;

		if (svcjson_parse_device(j, &d, &err) < 0) {
			log_warn(COMPONENT, "peer entry skipped index=%zu field=%s reason=\"%s\"", i, err.field,
				 err.msg);
			continue;
		}
		if (!strcmp(d.id, m->self_id) || !memcmp(d.public_key, m->st.pub, SVC_KEY_LEN))
			continue;
		/* issue 15 point 6: a relay's address becomes a route */
		if (m->has_vpc && (!cidr_contains(&m->vpc, &d.tunnel_ip) || addr_ip_equal(&d.tunnel_ip, &m->tip))) {
			log_warn(COMPONENT, "peer entry skipped index=%zu field=tunnel_ip reason=\"%s\"", i,
				 cidr_contains(&m->vpc, &d.tunnel_ip) ? "ours" : "outside the VPC");
			continue;
		}
		if (!(p = peer_for(m, &d, &full)))
			continue;
		p->seen = true;
		peer_update(m, p, &d);
		if (p->relay && p->has_relay_addr && nrelays < DISCO_MAX_SERVERS)
			relays[nrelays++] = p->relay_addr;
	}
	if (full)
		log_warn(COMPONENT, "peers skipped count=%d reason=\"more than %d peers\"", full, MESHD_MAX_PEERS);
	for (i = 0; i < meshd_npeers(m);) {
		if (!meshd_peer(m, i)->seen)
			peer_drop(m, i);
		else
			i++;
	}
	if (disco_set_relays(&m->disco, relays, nrelays) > 0)
		disco_kick(&m->disco, meshd_now(m));
	relays_choose(m, meshd_now(m));
}

struct mpeer *peers_by_name(struct meshd *m, const char *name)
{
	union sockaddr_any a;
	bool is_ip = addr_parse_ip(name, 0, &a) == 0;

	for (size_t i = 0; i < meshd_npeers(m); i++) {
		struct mpeer *p = meshd_peer(m, i);
		if (!strcmp(p->name, name) || !strcmp(p->id, name) || (is_ip && addr_ip_equal(&a, &p->tunnel_ip)))
			return p;
	}
	return NULL;
}

void peers_clear(struct meshd *m)
{
	while (meshd_npeers(m))
		peer_drop(m, meshd_npeers(m) - 1);
	vec_free(&m->peers);
}
