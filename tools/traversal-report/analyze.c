/* analyze: observations -> flights -> translations -> nodes -> sessions,
 * STUN probes, relay forwarding -> pairs. Each step reads only what the steps
 * before it produced; rp_analyze() runs them in order. */
#include "report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- address interning: address -> id, with an alias parent per id ------- */

struct rp_addrtab {
	union sockaddr_any *addrs;
	int32_t *parent;	/* outer -> inner (toward the host); -1 at the root */
	int32_t *node;		/* node whose root this is; -1 */
	size_t n, cap;
	uint32_t *slots;	/* id + 1; 0 is empty */
	size_t nslots;
};

static uint64_t addr_hash(const union sockaddr_any *a)
{
	size_t n;
	const uint8_t *ip = addr_ip_bytes(a, &n);
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)a->sa.sa_family;

	for (size_t i = 0; i < n; i++)
		h = (h ^ ip[i]) * 0x100000001b3ull;
	h = (h ^ addr_port(a)) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int tab_rehash(struct rp_addrtab *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t id = 0; id < t->n; id++) {
		size_t i = addr_hash(&t->addrs[id]) & (nslots - 1);

		while (slots[i])
			i = (i + 1) & (nslots - 1);
		slots[i] = (uint32_t)id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* the id of a, or -1 when not interned */
static int tab_find(const struct rp_addrtab *t, const union sockaddr_any *a)
{
	if (!t->nslots)
		return -1;
	for (size_t i = addr_hash(a) & (t->nslots - 1); t->slots[i]; i = (i + 1) & (t->nslots - 1))
		if (addr_equal(&t->addrs[t->slots[i] - 1], a))
			return (int)t->slots[i] - 1;
	return -1;
}

/* the id of a, interned if new; -ENOMEM */
static int tab_id(struct rp_addrtab *t, const union sockaddr_any *a)
{
	int id = tab_find(t, a);
	size_t i;

	if (id >= 0)
		return id;
	if ((t->n + 1) * 2 > t->nslots && tab_rehash(t, t->nslots ? t->nslots * 2 : 256) < 0)
		return -ENOMEM;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 128;
		void *a1 = realloc(t->addrs, ncap * sizeof(*t->addrs));

		if (!a1)
			return -ENOMEM;
		t->addrs = a1;
		a1 = realloc(t->parent, ncap * sizeof(*t->parent));
		if (!a1)
			return -ENOMEM;
		t->parent = a1;
		a1 = realloc(t->node, ncap * sizeof(*t->node));
		if (!a1)
			return -ENOMEM;
		t->node = a1;
		t->cap = ncap;
	}
	id = (int)t->n++;
	t->addrs[id] = *a;
	t->parent[id] = -1;
	t->node[id] = -1;
	for (i = addr_hash(a) & (t->nslots - 1); t->slots[i]; i = (i + 1) & (t->nslots - 1))
		;
	t->slots[i] = (uint32_t)id + 1;
	return id;
}

static int tab_root(const struct rp_addrtab *t, int id)
{
	/* bounded: alias() never closes a cycle, so a chain is at most n long */
	for (size_t hops = 0; id >= 0 && t->parent[id] >= 0 && hops < t->n; hops++)
		id = t->parent[id];
	return id;
}

static void tab_free(struct rp_addrtab *t)
{
	if (!t)
		return;
	free(t->addrs);
	free(t->parent);
	free(t->node);
	free(t->slots);
	free(t);
}

/* --- small helpers ------------------------------------------------------- */

bool rp_addr_private(const union sockaddr_any *a)
{
	size_t n;
	const uint8_t *ip = addr_ip_bytes(a, &n);

	if (n == 4)
		return ip[0] == 10 || ip[0] == 127 ||
		       (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
		       (ip[0] == 192 && ip[1] == 168) ||
		       (ip[0] == 100 && (ip[1] & 0xc0) == 64) ||	/* RFC 6598 shared */
		       (ip[0] == 169 && ip[1] == 254);
	if (n == 16)
		return (ip[0] & 0xfe) == 0xfc ||			/* ULA */
		       (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) ||	/* link-local */
		       (!memcmp(ip, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15) && ip[15] == 1);
	return false;
}

const char *rp_node_name(const struct rp *rp, int node, char *buf, size_t len)
{
	char a[ADDR_STRLEN];

	if (node < 0 || (size_t)node >= rp->nnodes) {
		snprintf(buf, len, "?");
		return buf;
	}
	addr_format(&rp->nodes[node].addr, a, sizeof(a));
	if (rp->nodes[node].label)
		snprintf(buf, len, "%s (%s)", rp->nodes[node].label, a);
	else
		snprintf(buf, len, "%s", a);
	return buf;
}

int rp_addr_node(const struct rp *rp, const union sockaddr_any *a)
{
	int id = rp->tab ? tab_find(rp->tab, a) : -1;

	return id < 0 ? -1 : rp->tab->node[tab_root(rp->tab, id)];
}

/* --- u32 -> int map for WireGuard indices -------------------------------- */

struct u32map {
	uint32_t *keys;
	int *vals;		/* -1 empty */
	size_t nslots, n;
};

static int u32map_put(struct u32map *m, uint32_t key, int val);

static int u32map_grow(struct u32map *m)
{
	struct u32map nm = { .nslots = m->nslots ? m->nslots * 2 : 256 };

	nm.keys = calloc(nm.nslots, sizeof(*nm.keys));
	nm.vals = malloc(nm.nslots * sizeof(*nm.vals));
	if (!nm.keys || !nm.vals) {
		free(nm.keys);
		free(nm.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nm.nslots; i++)
		nm.vals[i] = -1;
	for (size_t i = 0; i < m->nslots; i++)
		if (m->vals[i] >= 0)
			u32map_put(&nm, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = nm;
	return 0;
}

static size_t u32_slot(uint32_t k, size_t nslots)
{
	return (size_t)((k * 2654435761u) ^ (k >> 16)) & (nslots - 1);
}

static int u32map_get(const struct u32map *m, uint32_t key)
{
	if (!m->nslots)
		return -1;
	for (size_t i = u32_slot(key, m->nslots); m->vals[i] >= 0; i = (i + 1) & (m->nslots - 1))
		if (m->keys[i] == key)
			return m->vals[i];
	return -1;
}

/* inserts or replaces */
static int u32map_put(struct u32map *m, uint32_t key, int val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->nslots && u32map_grow(m) < 0)
		return -ENOMEM;
	for (i = u32_slot(key, m->nslots); m->vals[i] >= 0; i = (i + 1) & (m->nslots - 1))
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

static void u32map_free(struct u32map *m)
{
	free(m->keys);
	free(m->vals);
}

/* --- step 1: flights ----------------------------------------------------- */

static const struct rp *g_sort_rp;	/* qsort has no context argument */

static int cmp_hash_time(const void *x, const void *y)
{
	const struct rp_obs *a = &g_sort_rp->obs[*(const uint32_t *)x];
	const struct rp_obs *b = &g_sort_rp->obs[*(const uint32_t *)y];

	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if (a->ts_ns != b->ts_ns)
		return a->ts_ns < b->ts_ns ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

/* Order of the observations of one datagram: by time; at equal time stamps
 * (microsecond captures of a gateway's two sides) the side nearer the sender
 * first: a private source is before its translation, a public destination
 * before its translation to a private one. */
static int obs_side_score(const struct rp_obs *o)
{
	return (rp_addr_private(&o->src) ? 0 : 1) + (rp_addr_private(&o->dst) ? 1 : 0);
}

static int cmp_in_flight(const void *x, const void *y)
{
	const struct rp_obs *a = &g_sort_rp->obs[*(const uint32_t *)x];
	const struct rp_obs *b = &g_sort_rp->obs[*(const uint32_t *)y];
	int sa, sb;

	if (a->ts_ns != b->ts_ns)
		return a->ts_ns < b->ts_ns ? -1 : 1;
	sa = obs_side_score(a);
	sb = obs_side_score(b);
	if (sa != sb)
		return sa - sb;
	if (a->cap != b->cap)
		return a->cap < b->cap ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

static int cmp_flight_time(const void *x, const void *y)
{
	const struct rp_flight *a = x, *b = y;

	if (a->t_first != b->t_first)
		return a->t_first < b->t_first ? -1 : 1;
	return a->obs0 < b->obs0 ? -1 : 1;
}

/* true when the flight [start, end) already holds an observation of the same
 * capture and addresses from a while ago: then o is a second datagram with
 * the same bytes (a retransmission), not the same one seen on a router's
 * second interface by a capture on "any" */
static bool flight_has_twin(const struct rp *rp, size_t start, size_t end, const struct rp_obs *o)
{
	for (size_t i = start; i < end; i++) {
		const struct rp_obs *p = &rp->obs[rp->order[i]];

		if (p->cap == o->cap && addr_equal(&p->src, &o->src) && addr_equal(&p->dst, &o->dst) &&
		    o->ts_ns - p->ts_ns > RP_TWIN_NS)
			return true;
	}
	return false;
}

static void flight_fill(struct rp *rp, struct rp_flight *f)
{
	const struct rp_obs *first, *last;

	g_sort_rp = rp;
	qsort(rp->order + f->obs0, f->nobs, sizeof(*rp->order), cmp_in_flight);
	first = &rp->obs[rp->order[f->obs0]];
	last = &rp->obs[rp->order[f->obs0 + f->nobs - 1]];
	f->t_first = first->ts_ns;
	f->t_last = last->ts_ns;
	f->src = first->src;
	f->dst = first->dst;
	f->src_last = last->src;
	f->dst_last = last->dst;
	f->from = f->to = -1;
	f->kind = first->kind;
	f->len = first->len;
	f->stun = first->stun;
	f->wg = first->wg;
	f->key = first->key;
}

static int build_flights(struct rp *rp)
{
	size_t i, start = 0, nf = 0;

	rp->order = malloc(rp->nobs * sizeof(*rp->order));
	rp->flights = malloc(rp->nobs * sizeof(*rp->flights));
	if (!rp->order || !rp->flights)
		return -ENOMEM;
	for (i = 0; i < rp->nobs; i++)
		rp->order[i] = (uint32_t)i;
	g_sort_rp = rp;
	qsort(rp->order, rp->nobs, sizeof(*rp->order), cmp_hash_time);

	for (i = 1; i <= rp->nobs; i++) {
		const struct rp_obs *prev = &rp->obs[rp->order[i - 1]];
		const struct rp_obs *o = i < rp->nobs ? &rp->obs[rp->order[i]] : NULL;

		if (o && o->hash == prev->hash && o->ts_ns - prev->ts_ns <= RP_FLIGHT_GAP_NS &&
		    !flight_has_twin(rp, start, i, o))
			continue;
		rp->flights[nf].obs0 = (uint32_t)start;
		rp->flights[nf].nobs = (uint32_t)(i - start);
		flight_fill(rp, &rp->flights[nf]);
		nf++;
		start = i;
	}
	rp->nflights = nf;
	qsort(rp->flights, nf, sizeof(*rp->flights), cmp_flight_time);
	return 0;
}

/* --- step 2: translations ------------------------------------------------ */

/* outer is a gateway's translation of inner. Never closes a cycle; a second,
 * different inner for the same outer (port reuse, hairpin) is counted only. */
static int alias(struct rp *rp, const union sockaddr_any *outer, const union sockaddr_any *inner,
		 const char *how, uint64_t t, uint32_t cap_in, uint32_t cap_out)
{
	struct rp_addrtab *tab = rp->tab;
	struct rp_translation *tr;
	int o = tab_id(tab, outer), in = tab_id(tab, inner);

	if (o < 0 || in < 0)
		return -ENOMEM;
	if (o == in)
		return 0;
	if (tab->parent[o] >= 0) {
		if (tab->parent[o] != in && tab_root(tab, tab->parent[o]) != tab_root(tab, in))
			rp->trans_conflicts++;
		return 0;
	}
	if (tab_root(tab, in) == o)
		return 0;
	tab->parent[o] = in;
	tr = RP_PUSH(rp->trans, rp->ntrans, rp->trans_cap);
	if (!tr)
		return -ENOMEM;
	tr->inner = *inner;
	tr->outer = *outer;
	tr->how = how;
	tr->t = t;
	tr->cap_in = cap_in;
	tr->cap_out = cap_out;
	return 0;
}

static int flight_translations(struct rp *rp, const struct rp_flight *f)
{
	const char *how = f->kind == PKT_WG ? "wireguard" : "stun";

	for (uint32_t i = 1; i < f->nobs; i++) {
		const struct rp_obs *a = &rp->obs[rp->order[f->obs0 + i - 1]];
		const struct rp_obs *b = &rp->obs[rp->order[f->obs0 + i]];

		/* source NAT on the way out: b's source stands for a's */
		if (!addr_equal(&a->src, &b->src) &&
		    alias(rp, &b->src, &a->src, how, b->ts_ns, a->cap, b->cap) < 0)
			return -ENOMEM;
		/* destination translated on the way in: a's destination is b's */
		if (!addr_equal(&a->dst, &b->dst) &&
		    alias(rp, &a->dst, &b->dst, how, b->ts_ns, b->cap, a->cap) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* --- step 3: STUN probes (and the mappings their answers report) --------- */

static int find_probe(const struct rp *rp, const uint8_t *txid)
{
	for (size_t i = rp->nprobes; i-- > 0;) {
		const struct pkt_stun *s = &rp->stuns[rp->flights[rp->probes[i].req_flight].stun];

		if (!memcmp(s->txid, txid, sizeof(s->txid)))
			return (int)i;
	}
	return -1;
}

static int build_probes(struct rp *rp)
{
	for (size_t fi = 0; fi < rp->nflights; fi++) {
		const struct rp_flight *f = &rp->flights[fi];
		const struct pkt_stun *s;
		struct rp_stun_probe *p;
		int pi;

		if (f->kind != PKT_STUN)
			continue;
		s = &rp->stuns[f->stun];
		pi = find_probe(rp, s->txid);
		if (s->cls == PKT_STUN_REQUEST) {
			if (pi >= 0 && rp->probes[pi].resp_flight < 0 &&
			    addr_equal(&rp->flights[rp->probes[pi].req_flight].src, &f->src)) {
				rp->probes[pi].transmissions++;
				continue;
			}
			p = RP_PUSH(rp->probes, rp->nprobes, rp->probes_cap);
			if (!p)
				return -ENOMEM;
			memset(p, 0, sizeof(*p));
			p->req_flight = (int)fi;
			p->resp_flight = -1;
			p->transmissions = 1;
			p->node = -1;
			p->client = f->src;
			p->server = f->dst;
			continue;
		}
		if ((s->cls != PKT_STUN_SUCCESS && s->cls != PKT_STUN_ERROR) || pi < 0 ||
		    rp->probes[pi].resp_flight >= 0)
			continue;
		p = &rp->probes[pi];
		p->resp_flight = (int)fi;
		if (s->has_xor_mapped && !addr_equal(&s->xor_mapped, &p->client) &&
		    alias(rp, &s->xor_mapped, &p->client, "stun-mapped", f->t_first,
			  rp->obs[rp->order[rp->flights[p->req_flight].obs0]].cap,
			  rp->obs[rp->order[f->obs0]].cap) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* --- step 4: nodes ------------------------------------------------------- */

static int node_of_addr(struct rp *rp, const union sockaddr_any *a, bool create, bool unknown)
{
	struct rp_addrtab *t = rp->tab;
	int id = tab_id(t, a), root;
	struct rp_node *n;

	if (id < 0)
		return -ENOMEM;
	root = tab_root(t, id);
	if (t->node[root] >= 0) {
		/* a destination first, later a sender: it is known after all */
		if (!unknown)
			rp->nodes[t->node[root]].unknown = false;
		return t->node[root];
	}
	if (!create)
		return -1;
	n = RP_PUSH(rp->nodes, rp->nnodes, rp->nodes_cap);
	if (!n)
		return -ENOMEM;
	memset(n, 0, sizeof(*n));
	n->addr = t->addrs[root];
	n->unknown = unknown;
	t->node[root] = (int)(rp->nnodes - 1);
	return t->node[root];
}

/* The node an initiation was meant for: the exact address (through its
 * translations), else the one node that has an address with the same IP (a
 * guessed or stale port, as against a symmetric NAT). */
static int node_for_candidate(struct rp *rp, const union sockaddr_any *cand, int initiator,
			      bool *by_ip)
{
	struct rp_addrtab *t = rp->tab;
	int n = node_of_addr(rp, cand, false, false), found = -1;

	*by_ip = false;
	if (n < -1)
		return n;
	if (n >= 0 && n != initiator && !rp->nodes[n].unknown)
		return n;
	for (size_t id = 0; id < t->n; id++) {
		int r;

		if (!addr_ip_equal(&t->addrs[id], cand))
			continue;
		r = t->node[tab_root(t, (int)id)];
		if (r < 0 || r == initiator || rp->nodes[r].unknown)
			continue;
		if (found >= 0 && found != r)
			return node_of_addr(rp, cand, true, true);	/* ambiguous */
		found = r;
	}
	if (found >= 0) {
		*by_ip = true;
		return found;
	}
	return node_of_addr(rp, cand, true, true);
}

static int build_nodes(struct rp *rp)
{
	for (size_t fi = 0; fi < rp->nflights; fi++) {
		struct rp_flight *f = &rp->flights[fi];

		if (f->kind != PKT_WG)
			continue;
		f->from = node_of_addr(rp, &f->src, true, false);
		if (f->from < 0)
			return -ENOMEM;
		if (f->wg.type != PKT_WG_INITIATION) {
			f->to = node_of_addr(rp, &f->dst, true, false);
			if (f->to < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* --- step 5: WireGuard sessions ------------------------------------------ */

static int new_session(struct rp *rp, int init_flight, struct rp_session **out)
{
	struct rp_session *s = RP_PUSH(rp->sess, rp->nsess, rp->sess_cap);

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->init_flight = init_flight;
	s->resp_flight = s->cookie_flight = s->first_data = -1;
	s->initiator = s->responder = s->peer_key = -1;
	*out = s;
	return 0;
}

static int orphan_data(struct rp *rp, int fi)
{
	const struct rp_flight *f = &rp->flights[fi];
	struct rp_orphan *o;

	for (size_t i = 0; i < rp->norphans; i++) {
		o = &rp->orphans[i];
		if (o->receiver == f->wg.receiver && o->from == f->from && o->to == f->to) {
			o->count++;
			if (o->first_data < 0 && f->wg.data_len)
				o->first_data = fi;
			return 0;
		}
	}
	o = RP_PUSH(rp->orphans, rp->norphans, rp->orphans_cap);
	if (!o)
		return -ENOMEM;
	o->from = f->from;
	o->to = f->to;
	o->receiver = f->wg.receiver;
	o->count = 1;
	o->first_data = f->wg.data_len ? fi : -1;
	return 0;
}

/* An initiation to an address no capture ever saw as a host cannot name its
 * peer (only the peer's key could, through mac1). WireGuard retries a peer
 * at its next endpoint within a few REKEY_TIMEOUTs, so the initiator's next
 * attempt at a known node is taken to be the same peer, and marked so. */
static void infer_dead_candidates(struct rp *rp)
{
	for (size_t i = 0; i < rp->nsess; i++) {
		struct rp_session *s = &rp->sess[i];

		if (s->resp_flight >= 0 || s->responder < 0 || !rp->nodes[s->responder].unknown)
			continue;
		for (size_t j = i + 1; j < rp->nsess; j++) {
			const struct rp_session *t = &rp->sess[j];

			if (t->init_flight < 0 || t->initiator != s->initiator)
				continue;
			if (t->t_init - s->t_init > RP_INFER_NS)
				break;
			if (t->responder < 0 || rp->nodes[t->responder].unknown)
				continue;
			s->responder = t->responder;
			s->peer_inferred = true;
			rp->flights[s->init_flight].to = t->responder;
			break;
		}
	}
}

/* --key: an answered handshake proves who holds the key its mac1 names (the
 * responder of an initiation, the initiator of a response); then an
 * unanswered initiation to an address with no host behind it goes to the
 * holder of the key its mac1 names. Runs before infer_dead_candidates, which
 * is left with what mac1 cannot settle. */
static void prove_by_mac1(struct rp *rp)
{
	for (size_t i = 0; i < rp->nsess; i++) {
		struct rp_session *s = &rp->sess[i];
		int ki = s->init_flight >= 0 ? rp->flights[s->init_flight].key : -1;
		int kr = s->resp_flight >= 0 ? rp->flights[s->resp_flight].key : -1;

		s->peer_key = ki;
		if (s->resp_flight < 0)
			continue;
		if (ki >= 0 && rp->keys[ki].node < 0 && s->responder >= 0)
			rp->keys[ki].node = s->responder;
		if (kr >= 0 && rp->keys[kr].node < 0 && s->initiator >= 0)
			rp->keys[kr].node = s->initiator;
	}
	for (size_t k = 0; k < rp->nkeys; k++) {
		int n = rp->keys[k].node;

		if (n >= 0 && !rp->nodes[n].label && rp->keys[k].named)
			rp->nodes[n].label = rp->keys[k].label;
	}
	for (size_t i = 0; i < rp->nsess; i++) {
		struct rp_session *s = &rp->sess[i];
		int holder = s->peer_key >= 0 ? rp->keys[s->peer_key].node : -1;

		if (s->resp_flight >= 0 || holder < 0 || s->responder < 0 || !rp->nodes[s->responder].unknown)
			continue;
		s->responder = holder;
		s->peer_by_mac1 = true;
		rp->flights[s->init_flight].to = holder;
	}
}

static int build_sessions(struct rp *rp)
{
	struct u32map by_init = { 0 }, by_resp = { 0 };
	int rc = 0;

	for (size_t fi = 0; fi < rp->nflights && !rc; fi++) {
		struct rp_flight *f = &rp->flights[fi];
		struct rp_session *s;
		int si;

		if (f->kind != PKT_WG)
			continue;
		switch (f->wg.type) {
		case PKT_WG_INITIATION:
			if (u32map_get(&by_init, f->wg.sender) >= 0)
				break;	/* the same initiation again, much later */
			if ((rc = new_session(rp, (int)fi, &s)) < 0)
				break;
			s->init_idx = f->wg.sender;
			s->initiator = f->from;
			s->candidate = f->dst;
			s->t_init = f->t_first;
			s->responder = node_for_candidate(rp, &f->dst, f->from, &s->candidate_by_ip);
			if (s->responder < 0) {
				rc = s->responder;
				break;
			}
			f->to = s->responder;
			rc = u32map_put(&by_init, s->init_idx, (int)(rp->nsess - 1));
			break;
		case PKT_WG_RESPONSE:
			si = u32map_get(&by_init, f->wg.receiver);
			if (si < 0) {
				/* the initiation was not captured */
				if ((rc = new_session(rp, -1, &s)) < 0)
					break;
				s->init_idx = f->wg.receiver;
				s->initiator = f->to;
				s->candidate = f->src_last;
				si = (int)(rp->nsess - 1);
				if ((rc = u32map_put(&by_init, s->init_idx, si)) < 0)
					break;
			}
			s = &rp->sess[si];
			if (s->resp_flight >= 0)
				break;
			s->resp_flight = (int)fi;
			s->resp_idx = f->wg.sender;
			s->t_resp = f->t_first;
			s->answered_from = f->src_last;
			/* the answer names the responder, whatever the candidate said */
			s->responder = f->from;
			s->candidate_by_ip = false;
			if (s->init_flight >= 0)
				rp->flights[s->init_flight].to = f->from;
			rc = u32map_put(&by_resp, s->resp_idx, si);
			break;
		case PKT_WG_COOKIE:
			si = u32map_get(&by_init, f->wg.receiver);
			if (si < 0)
				si = u32map_get(&by_resp, f->wg.receiver);
			if (si >= 0 && rp->sess[si].cookie_flight < 0)
				rp->sess[si].cookie_flight = (int)fi;
			break;
		case PKT_WG_DATA: {
			bool i2r = true;

			si = u32map_get(&by_resp, f->wg.receiver);
			if (si < 0) {
				si = u32map_get(&by_init, f->wg.receiver);
				i2r = false;
				if (si >= 0 && rp->sess[si].resp_flight < 0)
					si = -1;
			}
			if (si < 0) {
				rc = orphan_data(rp, (int)fi);
				break;
			}
			s = &rp->sess[si];
			if (!f->wg.data_len) {
				s->keepalives++;
				break;
			}
			if (i2r)
				s->data_i2r++;
			else
				s->data_r2i++;
			if (s->first_data < 0)
				s->first_data = (int)fi;
			s->t_last_data = f->t_first;
			break;
		}
		default:
			break;
		}
	}
	u32map_free(&by_init);
	u32map_free(&by_resp);
	if (!rc) {
		prove_by_mac1(rp);
		infer_dead_candidates(rp);
	}
	return rc;
}

/* probes belong to the node on the same host (the same innermost IP) */
static void attribute_probes(struct rp *rp)
{
	for (size_t i = 0; i < rp->nprobes; i++) {
		struct rp_stun_probe *p = &rp->probes[i];
		int id = tab_find(rp->tab, &p->client);
		const union sockaddr_any *inner = &p->client;

		if (id >= 0) {
			int root = tab_root(rp->tab, id);

			if (rp->tab->node[root] >= 0) {
				p->node = rp->tab->node[root];
				continue;
			}
			inner = &rp->tab->addrs[root];
		}
		for (size_t n = 0; n < rp->nnodes; n++)
			if (!rp->nodes[n].unknown && addr_ip_equal(&rp->nodes[n].addr, inner)) {
				p->node = (int)n;
				break;
			}
	}
}

/* --- step 6: relays, recognised by what they forward --------------------- */

static bool named_relay(const struct rp *rp, int node)
{
	struct rp_addrtab *t = rp->tab;

	for (size_t id = 0; id < t->n; id++) {
		if (t->node[tab_root(t, (int)id)] != node)
			continue;
		for (size_t r = 0; r < rp->nrelays; r++)
			if (addr_port(&rp->relays[r]) ? addr_equal(&rp->relays[r], &t->addrs[id])
						       : addr_ip_equal(&rp->relays[r], &t->addrs[id]))
				return true;
	}
	return false;
}

static int add_forward(struct rp *rp, int a, int r, int b, int fin, int fout)
{
	struct rp_forward *w;

	for (size_t i = 0; i < rp->nfwds; i++) {
		w = &rp->fwds[i];
		if (w->a == a && w->r == r && w->b == b) {
			w->count++;
			return 0;
		}
	}
	w = RP_PUSH(rp->fwds, rp->nfwds, rp->fwds_cap);
	if (!w)
		return -ENOMEM;
	w->a = a;
	w->r = r;
	w->b = b;
	w->count = 1;
	w->first_in = fin;
	w->first_out = fout;
	return 0;
}

static bool is_data(const struct rp_flight *f)
{
	return f->kind == PKT_WG && f->wg.type == PKT_WG_DATA && f->wg.data_len > 0;
}

/* A data message into node r from a, followed within the window by one of
 * the same size from r to b: r forwarded it (same inner packet, same padded
 * length). Each outgoing message explains at most one incoming. Only nodes
 * that send data to two or more others can forward. */
static int find_forwarding(struct rp *rp)
{
	size_t nn = rp->nnodes ? rp->nnodes : 1, nf = rp->nflights ? rp->nflights : 1;
	int *first_peer = malloc(nn * sizeof(int));
	uint8_t *multi = calloc(nn, 1), *used = calloc(nf, 1);
	size_t *outs = malloc(nf * sizeof(size_t)), *ostart = calloc(nn + 1, sizeof(size_t));
	size_t *cursor = calloc(nn, sizeof(size_t));
	int rc = -ENOMEM;

	if (!first_peer || !multi || !used || !outs || !ostart || !cursor)
		goto out;
	for (size_t n = 0; n < nn; n++)
		first_peer[n] = -1;
	/* outgoing data flights per node, in time order (counting sort) */
	for (size_t fi = 0; fi < rp->nflights; fi++) {
		const struct rp_flight *f = &rp->flights[fi];

		if (!is_data(f) || f->to < 0 || f->from == f->to)
			continue;
		ostart[f->from + 1]++;
		if (first_peer[f->from] < 0)
			first_peer[f->from] = f->to;
		else if (first_peer[f->from] != f->to)
			multi[f->from] = 1;
	}
	for (size_t n = 0; n < nn; n++)
		ostart[n + 1] += ostart[n];
	memcpy(cursor, ostart, nn * sizeof(size_t));
	for (size_t fi = 0; fi < rp->nflights; fi++) {
		const struct rp_flight *f = &rp->flights[fi];

		if (is_data(f) && f->to >= 0 && f->from != f->to)
			outs[cursor[f->from]++] = fi;
	}
	memcpy(cursor, ostart, nn * sizeof(size_t));

	rc = 0;
	for (size_t fi = 0; fi < rp->nflights && !rc; fi++) {
		const struct rp_flight *in = &rp->flights[fi];
		int r = in->to;
		size_t end, tries = 0;

		if (!is_data(in) || r < 0 || in->from == r || !multi[r])
			continue;
		end = ostart[r + 1];
		while (cursor[r] < end && rp->flights[outs[cursor[r]]].t_first < in->t_first)
			cursor[r]++;
		for (size_t k = cursor[r]; k < end && tries < RP_FORWARD_SCAN; k++, tries++) {
			const struct rp_flight *o = &rp->flights[outs[k]];

			if (o->t_first > in->t_last + RP_FORWARD_WINDOW_NS)
				break;
			if (used[outs[k]] || o->to == in->from || o->len != in->len)
				continue;
			used[outs[k]] = 1;
			rc = add_forward(rp, in->from, r, o->to, (int)fi, (int)outs[k]);
			break;
		}
	}
	if (rc)
		goto out;
	for (size_t n = 0; n < rp->nnodes; n++)
		if (named_relay(rp, (int)n))
			rp->nodes[n].relay = true;
	/* named relays are the relays: in a full mesh a peer that pings two
	 * others at once can look like it forwards */
	if (rp->nrelays)
		goto out;
	/* everything a node forwarded, between any of its peers, counts */
	for (size_t i = 0; i < rp->nfwds; i++) {
		uint64_t total = 0;

		for (size_t j = 0; j < rp->nfwds; j++)
			if (rp->fwds[j].r == rp->fwds[i].r)
				total += rp->fwds[j].count;
		if (total >= RP_FORWARD_MIN)
			rp->nodes[rp->fwds[i].r].relay = true;
	}
out:
	free(first_peer);
	free(multi);
	free(used);
	free(outs);
	free(ostart);
	free(cursor);
	return rc;
}

/* --- step 7: pairs ------------------------------------------------------- */

static bool pair_has(const struct rp_pair *p, int x, int y)
{
	return (p->a == x && p->b == y) || (p->a == y && p->b == x);
}

/* a total order of addresses, so a pair reads the same in every run */
static int addr_cmp(const union sockaddr_any *x, const union sockaddr_any *y)
{
	size_t nx, ny;
	const uint8_t *ix = addr_ip_bytes(x, &nx), *iy = addr_ip_bytes(y, &ny);
	int c;

	if (nx != ny)
		return nx < ny ? -1 : 1;
	if ((c = memcmp(ix, iy, nx)))
		return c;
	return (int)addr_port(x) - (int)addr_port(y);
}

static int pair_index(struct rp *rp, int a, int b)
{
	struct rp_pair *p;

	if (a < 0 || b < 0 || a == b)
		return -1;
	if (addr_cmp(&rp->nodes[a].addr, &rp->nodes[b].addr) > 0) {
		int t = a;
		a = b;
		b = t;
	}
	for (size_t i = 0; i < rp->npairs; i++)
		if (pair_has(&rp->pairs[i], a, b))
			return (int)i;
	p = RP_PUSH(rp->pairs, rp->npairs, rp->pairs_cap);
	if (!p)
		return -ENOMEM;
	memset(p, 0, sizeof(*p));
	p->a = a;
	p->b = b;
	p->win_session = p->relay = p->relay_fwd = p->first_data_flight = p->direct_flight = -1;
	return (int)(rp->npairs - 1);
}

static size_t cat(char *buf, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t cat(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

/* Why the relay carried this pair: what the direct attempts before it did. */
static void relay_reason(const struct rp *rp, struct rp_pair *p, uint64_t t_relay)
{
	size_t off = 0, tried = 0, answered = 0, by_ip = 0;
	char a[ADDR_STRLEN];

	for (size_t i = 0; i < rp->nsess; i++) {
		const struct rp_session *s = &rp->sess[i];

		if (!pair_has(p, s->initiator, s->responder) || s->init_flight < 0 || s->t_init > t_relay)
			continue;
		tried++;
		if (s->resp_flight >= 0 && s->t_resp <= t_relay)
			answered++;
		if (s->candidate_by_ip)
			by_ip++;
	}
	if (!tried) {
		cat(p->reason, sizeof(p->reason), 0,
		    "no direct handshake between the peers was captured before the relay carried data");
		return;
	}
	if (answered) {
		cat(p->reason, sizeof(p->reason), 0,
		    "a direct handshake was answered, yet data went through the relay");
		return;
	}
	off = cat(p->reason, sizeof(p->reason), off, "%zu direct handshake initiation%s got no answer (candidates",
		  tried, tried == 1 ? "" : "s");
	for (size_t i = 0, k = 0; i < rp->nsess; i++) {
		const struct rp_session *s = &rp->sess[i];
		bool dup = false;

		if (!pair_has(p, s->initiator, s->responder) || s->init_flight < 0 || s->t_init > t_relay)
			continue;
		for (size_t j = 0; j < i; j++)
			if (pair_has(p, rp->sess[j].initiator, rp->sess[j].responder) &&
			    rp->sess[j].init_flight >= 0 && rp->sess[j].t_init <= t_relay &&
			    addr_equal(&rp->sess[j].candidate, &s->candidate))
				dup = true;
		if (dup)
			continue;
		off = cat(p->reason, sizeof(p->reason), off, "%s %s", k++ ? "," : "",
			  addr_format(&s->candidate, a, sizeof(a)));
	}
	off = cat(p->reason, sizeof(p->reason), off, ")");
	for (int side = 0; side < 2; side++) {
		int n = side ? p->b : p->a;
		size_t outers = 0;

		for (size_t i = 0; i < rp->ntrans; i++)
			outers += addr_equal(&rp->trans[i].inner, &rp->nodes[n].addr);
		if (outers < 2)
			continue;
		off = cat(p->reason, sizeof(p->reason), off,
			  "; the NAT in front of %s mapped it to %zu different ports, one per destination: "
			  "endpoint-dependent mapping", addr_format(&rp->nodes[n].addr, a, sizeof(a)), outers);
		by_ip = 0;
	}
	if (by_ip)
		cat(p->reason, sizeof(p->reason), off,
		    "; the peer's NAT showed other ports for the same IP: endpoint-dependent mapping");
}

static void pair_classify(struct rp *rp, struct rp_pair *p)
{
	uint64_t t_direct = 0, t_relay = 0;
	int direct_flight = -1;

	/* the direct session that carried data first, else the first answered */
	for (size_t i = 0; i < rp->nsess; i++) {
		const struct rp_session *s = &rp->sess[i];

		if (!pair_has(p, s->initiator, s->responder))
			continue;
		if (s->first_data >= 0) {
			uint64_t t = rp->flights[s->first_data].t_first;

			if (!t_direct || t < t_direct) {
				t_direct = t;
				direct_flight = s->first_data;
				p->win_session = (int)i;
			}
		} else if (s->resp_flight >= 0 && !t_direct && p->win_session < 0) {
			p->win_session = (int)i;
		}
	}
	for (size_t i = 0; i < rp->norphans; i++) {
		const struct rp_orphan *o = &rp->orphans[i];

		if (pair_has(p, o->from, o->to) && o->first_data >= 0 &&
		    (!t_direct || rp->flights[o->first_data].t_first < t_direct)) {
			t_direct = rp->flights[o->first_data].t_first;
			direct_flight = o->first_data;
		}
	}
	for (size_t i = 0; i < rp->nfwds; i++) {
		const struct rp_forward *w = &rp->fwds[i];
		uint64_t t = rp->flights[w->first_in].t_first;

		if (!pair_has(p, w->a, w->b) || !rp->nodes[w->r].relay)
			continue;
		if (!t_relay || t < t_relay) {
			t_relay = t;
			p->relay = w->r;
			p->relay_fwd = (int)i;
		}
	}
	p->t_direct = t_direct;
	p->direct_flight = direct_flight;
	p->t_relay = t_relay;
	if (t_relay && (!t_direct || t_relay < t_direct)) {
		p->mode = t_direct ? RP_MODE_UPGRADED : RP_MODE_RELAYED;
		p->t_first_data = t_relay;
		p->first_data_flight = rp->fwds[p->relay_fwd].first_in;
		relay_reason(rp, p, t_relay);
	} else if (t_direct) {
		p->mode = RP_MODE_DIRECT;
		p->t_first_data = t_direct;
		p->first_data_flight = direct_flight;
		if (t_relay)
			relay_reason(rp, p, t_relay);
	}
}

static int build_pairs(struct rp *rp)
{
	for (size_t i = 0; i < rp->nsess; i++)
		if (pair_index(rp, rp->sess[i].initiator, rp->sess[i].responder) < -1)
			return -ENOMEM;
	for (size_t i = 0; i < rp->norphans; i++)
		if (pair_index(rp, rp->orphans[i].from, rp->orphans[i].to) < -1)
			return -ENOMEM;
	for (size_t i = 0; i < rp->nfwds; i++)
		if (rp->nodes[rp->fwds[i].r].relay && pair_index(rp, rp->fwds[i].a, rp->fwds[i].b) < -1)
			return -ENOMEM;
	for (size_t i = 0; i < rp->npairs; i++)
		pair_classify(rp, &rp->pairs[i]);
	return 0;
}

/* --names: a label for the node behind an address (or any port of an IP) */
static void apply_names(struct rp *rp)
{
	struct rp_addrtab *t = rp->tab;

	for (size_t id = 0; id < t->n; id++) {
		int node = t->node[tab_root(t, (int)id)];

		if (node < 0 || rp->nodes[node].label)
			continue;
		for (size_t k = 0; k < rp->nnames; k++) {
			const struct rp_name *nm = &rp->names[k];

			if (nm->ip_only ? addr_ip_equal(&nm->addr, &t->addrs[id])
					: addr_equal(&nm->addr, &t->addrs[id])) {
				rp->nodes[node].label = nm->label;
				break;
			}
		}
	}
}

int rp_analyze(struct rp *rp)
{
	int rc;

	rp->tab = calloc(1, sizeof(*rp->tab));
	if (!rp->tab)
		return -ENOMEM;
	if (!rp->nobs)
		return 0;
	rp->t0 = UINT64_MAX;
	for (size_t i = 0; i < rp->nobs; i++)
		if (rp->obs[i].ts_ns < rp->t0)
			rp->t0 = rp->obs[i].ts_ns;
	if ((rc = build_flights(rp)) < 0)
		return rc;
	for (size_t i = 0; i < rp->nflights; i++)
		if ((rc = flight_translations(rp, &rp->flights[i])) < 0)
			return rc;
	if ((rc = build_probes(rp)) < 0 || (rc = build_nodes(rp)) < 0 ||
	    (rc = build_sessions(rp)) < 0)
		return rc;
	attribute_probes(rp);
	if ((rc = find_forwarding(rp)) < 0 || (rc = build_pairs(rp)) < 0)
		return rc;
	apply_names(rp);
	return 0;
}

void rp_free(struct rp *rp)
{
	for (size_t i = 0; i < rp->ncaps; i++)
		free(rp->caps[i].path);
	free(rp->caps);
	free(rp->obs);
	free(rp->stuns);
	free(rp->order);
	free(rp->flights);
	free(rp->trans);
	free(rp->nodes);
	free(rp->sess);
	free(rp->orphans);
	free(rp->probes);
	free(rp->fwds);
	free(rp->pairs);
	free(rp->names);
	free(rp->relays);
	for (size_t k = 0; k < rp->nkeys; k++)
		wg_cookie_checker_deinit(&rp->keys[k].mac1);
	free(rp->keys);
	tab_free(rp->tab);
	memset(rp, 0, sizeof(*rp));
}
