/* output: the analysis as text for people or JSON for meshsim's report. Both
 * walk the same per-pair event list, built by pair_events(). */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum ev_kind {
	EV_STUN_REQ,
	EV_STUN_RESP,
	EV_WG_INIT,
	EV_WG_RESP,
	EV_WG_COOKIE,
	EV_FIRST_DATA,
	EV_ORPHAN_DATA,
	EV_RELAYED,
};

struct ev {
	uint64_t t;
	enum ev_kind kind;
	int idx;		/* probe, session, orphan or forward */
};

struct evlist {
	struct ev *v;
	size_t n, cap;
};

static const char *mode_name(enum rp_pair_mode m)
{
	switch (m) {
	case RP_MODE_DIRECT: return "direct";
	case RP_MODE_RELAYED: return "relayed";
	case RP_MODE_UPGRADED: return "upgraded";
	default: return "none";
	}
}

/* "2026-11-25T08:52:46.111802747Z" */
static const char *iso_time(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%09uZ", (unsigned)(ns % 1000000000u));
	return buf;
}

static double rel_s(const struct rp *rp, uint64_t t)
{
	return (double)(t - rp->t0) / 1e9;
}

static int ev_add(struct evlist *l, uint64_t t, enum ev_kind kind, int idx)
{
	struct ev *e = RP_PUSH(l->v, l->n, l->cap);

	if (!e)
		return -ENOMEM;
	e->t = t;
	e->kind = kind;
	e->idx = idx;
	return 0;
}

static int cmp_ev(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;

	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return (int)a->kind - (int)b->kind;
}

static bool in_pair(const struct rp_pair *p, int n)
{
	return n >= 0 && (n == p->a || n == p->b || (p->relay >= 0 && n == p->relay));
}

/* The sessions of the pair itself, and each side's sessions with its relay. */
static bool session_in_pair(const struct rp_pair *p, const struct rp_session *s)
{
	if ((s->initiator == p->a && s->responder == p->b) ||
	    (s->initiator == p->b && s->responder == p->a))
		return true;
	return p->relay >= 0 && in_pair(p, s->initiator) && in_pair(p, s->responder) &&
	       (s->initiator == p->relay || s->responder == p->relay);
}

static int pair_events(const struct rp *rp, const struct rp_pair *p, struct evlist *l)
{
	int rc = 0;

	for (size_t i = 0; i < rp->nprobes && !rc; i++) {
		const struct rp_stun_probe *pr = &rp->probes[i];

		if (pr->node != p->a && pr->node != p->b)
			continue;
		rc = ev_add(l, rp->flights[pr->req_flight].t_first, EV_STUN_REQ, (int)i);
		if (!rc && pr->resp_flight >= 0)
			rc = ev_add(l, rp->flights[pr->resp_flight].t_first, EV_STUN_RESP, (int)i);
	}
	for (size_t i = 0; i < rp->nsess && !rc; i++) {
		const struct rp_session *s = &rp->sess[i];

		if (!session_in_pair(p, s))
			continue;
		if (s->init_flight >= 0)
			rc = ev_add(l, s->t_init, EV_WG_INIT, (int)i);
		if (!rc && s->resp_flight >= 0)
			rc = ev_add(l, s->t_resp, EV_WG_RESP, (int)i);
		if (!rc && s->cookie_flight >= 0)
			rc = ev_add(l, rp->flights[s->cookie_flight].t_first, EV_WG_COOKIE, (int)i);
		if (!rc && s->first_data >= 0)
			rc = ev_add(l, rp->flights[s->first_data].t_first, EV_FIRST_DATA, (int)i);
	}
	for (size_t i = 0; i < rp->norphans && !rc; i++) {
		const struct rp_orphan *o = &rp->orphans[i];

		if (o->first_data >= 0 && in_pair(p, o->from) && in_pair(p, o->to) &&
		    (o->from == p->a || o->from == p->b || o->to == p->a || o->to == p->b))
			rc = ev_add(l, rp->flights[o->first_data].t_first, EV_ORPHAN_DATA, (int)i);
	}
	for (size_t i = 0; i < rp->nfwds && !rc; i++) {
		const struct rp_forward *w = &rp->fwds[i];

		if (w->r == p->relay && ((w->a == p->a && w->b == p->b) || (w->a == p->b && w->b == p->a)))
			rc = ev_add(l, rp->flights[w->first_in].t_first, EV_RELAYED, (int)i);
	}
	if (!rc && l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_ev);
	return rc;
}

/* one letter per node of the pair, for the timeline */
static const char *tag(const struct rp_pair *p, int n)
{
	if (n == p->a)
		return "A";
	if (n == p->b)
		return "B";
	if (n == p->relay)
		return "R";
	return "?";
}

static void tid_hex(const uint8_t *tid, char *buf)
{
	for (int i = 0; i < 12; i++)
		sprintf(buf + 2 * i, "%02x", tid[i]);
}

/* --- STUN clients that are not WireGuard peers (natcheck, other tools) --- */

struct stun_client {
	union sockaddr_any ip;		/* port 0 */
	uint64_t requests, answered;
	union sockaddr_any mapped[4];
	int nmapped, more_mapped;
};

/* one entry per client IP among the probes of no node; *out malloc'd */
static int stun_clients(const struct rp *rp, struct stun_client **out, size_t *n)
{
	struct stun_client *v = NULL;
	size_t cap = 0;

	*n = 0;
	for (size_t i = 0; i < rp->nprobes; i++) {
		const struct rp_stun_probe *pr = &rp->probes[i];
		struct stun_client *c = NULL;
		union sockaddr_any ip = pr->client;

		if (pr->node >= 0)
			continue;
		addr_set_port(&ip, 0);
		for (size_t k = 0; k < *n && !c; k++)
			if (addr_equal(&v[k].ip, &ip))
				c = &v[k];
		if (!c) {
			c = RP_PUSH(v, *n, cap);
			if (!c) {
				free(v);
				return -ENOMEM;
			}
			memset(c, 0, sizeof(*c));
			c->ip = ip;
		}
		c->requests += pr->transmissions;
		if (pr->resp_flight >= 0) {
			const struct pkt_stun *r = &rp->stuns[rp->flights[pr->resp_flight].stun];
			bool seen = false;

			c->answered++;
			if (!r->has_xor_mapped)
				continue;
			for (int k = 0; k < c->nmapped; k++)
				seen = seen || addr_equal(&c->mapped[k], &r->xor_mapped);
			if (!seen && c->nmapped < 4)
				c->mapped[c->nmapped++] = r->xor_mapped;
			else if (!seen)
				c->more_mapped++;
		}
	}
	*out = v;
	return 0;
}

static void print_stun_clients(const struct rp *rp)
{
	struct stun_client *v;
	size_t n;
	char a[ADDR_STRLEN];

	if (stun_clients(rp, &v, &n) < 0 || !n) {
		if (n)
			printf("\n(out of memory for the STUN clients)\n");
		return;
	}
	printf("\nSTUN clients that are not WireGuard peers:\n");
	for (size_t i = 0; i < n; i++) {
		printf("  %s: %" PRIu64 " requests, %" PRIu64 " answered", addr_format_ip(&v[i].ip, a, sizeof(a)),
		       v[i].requests, v[i].answered);
		for (int k = 0; k < v[i].nmapped; k++)
			printf("%s%s", k ? ", " : "; mapped ", addr_format(&v[i].mapped[k], a, sizeof(a)));
		if (v[i].more_mapped)
			printf(" and %d more", v[i].more_mapped);
		printf("\n");
	}
	free(v);
}

/* --- text ---------------------------------------------------------------- */

static void print_node_legend(const struct rp *rp, int n, const char *t)
{
	char name[ADDR_STRLEN + 64], a[ADDR_STRLEN];
	bool first = true;

	printf("  %s = %s%s%s", t, rp_node_name(rp, n, name, sizeof(name)),
	       rp->nodes[n].relay ? ", relay" : "",
	       rp->nodes[n].unknown ? ", never seen sending" : "");
	for (size_t i = 0; i < rp->ntrans; i++) {
		if (rp_addr_node(rp, &rp->trans[i].outer) != n)
			continue;
		printf("%s%s", first ? ", seen as " : ", ", addr_format(&rp->trans[i].outer, a, sizeof(a)));
		first = false;
	}
	printf("\n");
}

static void print_event(const struct rp *rp, const struct rp_pair *p, const struct ev *e)
{
	char a1[ADDR_STRLEN], a2[ADDR_STRLEN], tid[25], who[16];
	const struct rp_session *s;

	printf("  %+11.6f  ", rel_s(rp, e->t));
	switch (e->kind) {
	case EV_STUN_REQ: case EV_STUN_RESP: {
		const struct rp_stun_probe *pr = &rp->probes[e->idx];
		const struct pkt_stun *req = &rp->stuns[rp->flights[pr->req_flight].stun];

		tid_hex(req->txid, tid);
		snprintf(who, sizeof(who), "%s", tag(p, pr->node));
		if (e->kind == EV_STUN_REQ) {
			printf("%-9s STUN request to %s from %s tid %s", who,
			       addr_format(&pr->server, a1, sizeof(a1)), addr_format(&pr->client, a2, sizeof(a2)), tid);
			if (req->has_change_request && req->change_request)
				printf(" change-request%s%s", req->change_request & 4 ? " ip" : "",
				       req->change_request & 2 ? " port" : "");
			if (req->has_response_port)
				printf(" response-port %u", req->response_port);
			if (pr->transmissions > 1)
				printf(" (%u transmissions)", pr->transmissions);
			if (pr->resp_flight < 0)
				printf(": no answer");
			printf("\n");
		} else {
			const struct rp_flight *rf = &rp->flights[pr->resp_flight];
			const struct pkt_stun *r = &rp->stuns[rf->stun];

			printf("%-9s STUN %s from %s", who, pkt_stun_class_name(r->cls),
			       addr_format(&rf->src, a1, sizeof(a1)));
			if (r->has_xor_mapped)
				printf(": mapped %s", addr_format(&r->xor_mapped, a2, sizeof(a2)));
			else if (r->has_mapped)
				printf(": mapped %s", addr_format(&r->mapped, a2, sizeof(a2)));
			if (r->has_error)
				printf(": error %u", r->error_code);
			printf(" (rtt %.3f ms)\n", (double)(rf->t_first - rp->flights[pr->req_flight].t_first) / 1e6);
		}
		return;
	}
	case EV_WG_INIT:
		s = &rp->sess[e->idx];
		snprintf(who, sizeof(who), "%s -> %s", tag(p, s->initiator), tag(p, s->responder));
		printf("%-9s handshake initiation 0x%08x to candidate %s%s%s%s: %s\n", who, s->init_idx,
		       addr_format(&s->candidate, a1, sizeof(a1)),
		       s->candidate_by_ip ? " (IP of the peer's NAT, other port)" :
		       s->peer_inferred ? " (no host there; peer taken from the next attempt)" :
		       s->peer_by_mac1 ? " (no host there; peer proven by mac1, key " : "",
		       s->peer_by_mac1 ? rp->keys[s->peer_key].label : "", s->peer_by_mac1 ? ")" : "",
		       s->resp_flight >= 0 ? "answered" : "no answer");
		return;
	case EV_WG_RESP:
		s = &rp->sess[e->idx];
		snprintf(who, sizeof(who), "%s -> %s", tag(p, s->responder), tag(p, s->initiator));
		printf("%-9s handshake response 0x%08x to 0x%08x from %s", who, s->resp_idx, s->init_idx,
		       addr_format(&s->answered_from, a1, sizeof(a1)));
		if (s->init_flight >= 0)
			printf(" (rtt %.3f ms)", (double)(s->t_resp - s->t_init) / 1e6);
		printf("\n");
		return;
	case EV_WG_COOKIE:
		s = &rp->sess[e->idx];
		snprintf(who, sizeof(who), "%s -> %s", tag(p, s->responder), tag(p, s->initiator));
		printf("%-9s cookie reply to 0x%08x (responder under load)\n", who, s->init_idx);
		return;
	case EV_FIRST_DATA: {
		const struct rp_flight *f;

		s = &rp->sess[e->idx];
		f = &rp->flights[s->first_data];
		snprintf(who, sizeof(who), "%s -> %s", tag(p, f->from), tag(p, f->to));
		printf("%-9s first data (%u bytes) to %s; session 0x%08x: %" PRIu64 " + %" PRIu64
		       " data, %" PRIu64 " keepalives\n", who, f->len, addr_format(&f->dst, a1, sizeof(a1)),
		       s->init_idx, s->data_i2r, s->data_r2i, s->keepalives);
		return;
	}
	case EV_ORPHAN_DATA: {
		const struct rp_orphan *o = &rp->orphans[e->idx];
		const struct rp_flight *f = &rp->flights[o->first_data];

		snprintf(who, sizeof(who), "%s -> %s", tag(p, o->from), tag(p, o->to));
		printf("%-9s data to %s, index 0x%08x (its handshake is not in the captures), %" PRIu64 " messages\n",
		       who, addr_format(&f->dst, a1, sizeof(a1)), o->receiver, o->count);
		return;
	}
	case EV_RELAYED: {
		const struct rp_forward *w = &rp->fwds[e->idx];

		snprintf(who, sizeof(who), "%s>R>%s", tag(p, w->a), tag(p, w->b));
		printf("%-9s first relayed data (%u bytes), forwarded after %.3f ms; %" PRIu64 " forwarded\n",
		       who, rp->flights[w->first_in].len,
		       (double)(rp->flights[w->first_out].t_first - rp->flights[w->first_in].t_first) / 1e6,
		       w->count);
		return;
	}
	}
}

static void print_pair_summary(const struct rp *rp, const struct rp_pair *p)
{
	char a1[ADDR_STRLEN], n1[ADDR_STRLEN + 64];

	switch (p->mode) {
	case RP_MODE_DIRECT:
		printf("  direct");
		if (p->win_session >= 0)
			printf(", winning candidate %s (%s -> %s)",
			       addr_format(&rp->sess[p->win_session].candidate, a1, sizeof(a1)),
			       tag(p, rp->sess[p->win_session].initiator), tag(p, rp->sess[p->win_session].responder));
		printf(", first data at %+.6f s\n", rel_s(rp, p->t_first_data));
		if (p->t_relay)
			printf("  relay %s also carried data from %+.6f s: %s\n",
			       rp_node_name(rp, p->relay, n1, sizeof(n1)), rel_s(rp, p->t_relay), p->reason);
		break;
	case RP_MODE_RELAYED:
	case RP_MODE_UPGRADED:
		printf("  relayed via %s, first data at %+.6f s\n",
		       rp_node_name(rp, p->relay, n1, sizeof(n1)), rel_s(rp, p->t_relay));
		printf("  why: %s\n", p->reason);
		if (p->mode == RP_MODE_UPGRADED) {
			printf("  upgraded to direct");
			if (p->win_session >= 0)
				printf(" via candidate %s (%s -> %s)",
				       addr_format(&rp->sess[p->win_session].candidate, a1, sizeof(a1)),
				       tag(p, rp->sess[p->win_session].initiator),
				       tag(p, rp->sess[p->win_session].responder));
			printf(", first direct data at %+.6f s\n", rel_s(rp, p->t_direct));
		}
		break;
	default:
		if (p->win_session >= 0)
			printf("  handshake answered via candidate %s, but no data\n",
			       addr_format(&rp->sess[p->win_session].candidate, a1, sizeof(a1)));
		else
			printf("  no handshake answered, no data\n");
	}
}

static void print_candidates(const struct rp *rp, const struct rp_pair *p)
{
	char a1[ADDR_STRLEN];
	bool any = false;

	for (size_t i = 0; i < rp->nsess; i++) {
		const struct rp_session *s = &rp->sess[i];
		uint32_t tries = 0, answered = 0;
		bool seen = false;

		if (s->init_flight < 0 || !((s->initiator == p->a && s->responder == p->b) ||
					     (s->initiator == p->b && s->responder == p->a)))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = rp->sess[j].init_flight >= 0 && rp->sess[j].initiator == s->initiator &&
			       rp->sess[j].responder == s->responder &&
			       addr_equal(&rp->sess[j].candidate, &s->candidate);
		if (seen)
			continue;
		for (size_t j = i; j < rp->nsess; j++) {
			const struct rp_session *t = &rp->sess[j];

			if (t->init_flight >= 0 && t->initiator == s->initiator &&
			    t->responder == s->responder && addr_equal(&t->candidate, &s->candidate)) {
				tries++;
				answered += t->resp_flight >= 0;
			}
		}
		printf("%s %s->%s %s (%u initiation%s, %u answered)", any ? "," : "  candidates:",
		       tag(p, s->initiator), tag(p, s->responder), addr_format(&s->candidate, a1, sizeof(a1)),
		       tries, tries == 1 ? "" : "s", answered);
		any = true;
	}
	if (any)
		printf("\n");
}

static void print_captures(const struct rp *rp)
{
	for (size_t i = 0; i < rp->ncaps; i++) {
		const struct rp_capture *c = &rp->caps[i];

		printf("  %s: %" PRIu64 " records, %" PRIu64 " STUN, %" PRIu64 " WireGuard", c->path,
		       c->records, c->stun, c->wg);
		if (c->undecodable) {
			printf(", %" PRIu64 " undecodable (at offset", c->undecodable);
			for (size_t k = 0; k < c->undecodable && k < RP_BAD_OFFSETS; k++)
				printf("%s %" PRIu64, k ? "," : "", c->bad_offsets[k]);
			printf("%s)", c->undecodable > RP_BAD_OFFSETS ? ", ..." : "");
		}
		if (c->resyncs)
			printf(", %" PRIu64 " damaged record header%s skipped over (%" PRIu64 " bytes)",
			       c->resyncs, c->resyncs == 1 ? "" : "s", c->skipped);
		printf("\n");
	}
}

void rp_print_warnings(const struct rp_capture *c, FILE *f)
{
	uint64_t kept_bytes = 0;

	for (uint64_t k = 0; k < c->resyncs && k < RP_RESYNCS_KEPT; k++) {
		const struct rp_resync *e = &c->resync[k];

		fprintf(f, "traversal-report: %s: warning: corrupt record header at byte offset %" PRIu64
			" (%s), resumed at byte offset %" PRIu64 ": %" PRIu64 " bytes skipped\n",
			c->path, e->corrupt_at, e->why, e->resumed_at, e->resumed_at - e->corrupt_at);
		kept_bytes += e->resumed_at - e->corrupt_at;
	}
	if (c->resyncs > RP_RESYNCS_KEPT)
		fprintf(f, "traversal-report: %s: warning: %" PRIu64 " more corrupt record headers, %" PRIu64
			" more bytes skipped\n", c->path, c->resyncs - RP_RESYNCS_KEPT, c->skipped - kept_bytes);
}

void rp_print_text(const struct rp *rp)
{
	char a1[ADDR_STRLEN], a2[ADDR_STRLEN], ts[64];
	size_t npeer = 0;

	for (size_t i = 0; i < rp->ncaps; i++) {
		rp_print_warnings(&rp->caps[i], stdout);
		if (rp->caps[i].failed)
			printf("traversal-report: %s: read error at byte offset %" PRIu64 ": %s (%" PRIu64
			       " records read before it are used)\n", rp->caps[i].path,
			       rp->caps[i].err_offset, rp->caps[i].err, rp->caps[i].records);
	}
	if (rp->nobs) {
		printf("captures (t=0 is %s):\n", iso_time(rp->t0, ts, sizeof(ts)));
	} else {
		printf("captures (no STUN or WireGuard packets):\n");
	}
	print_captures(rp);
	if (rp->ntrans) {
		printf("NAT translations (inner -> outer):\n");
		for (size_t i = 0; i < rp->ntrans; i++) {
			const struct rp_translation *t = &rp->trans[i];

			printf("  %s -> %s  (%s, %s", addr_format(&t->inner, a1, sizeof(a1)),
			       addr_format(&t->outer, a2, sizeof(a2)), t->how, rp->caps[t->cap_in].name);
			if (t->cap_out != t->cap_in)
				printf(" / %s", rp->caps[t->cap_out].name);
			printf(", %+.6f s)\n", rel_s(rp, t->t));
		}
		if (rp->trans_conflicts)
			printf("  (%" PRIu64 " contradicting translations ignored)\n", rp->trans_conflicts);
	}
	/* pairs of peers first, then links to relays and unknown endpoints */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < rp->npairs; i++) {
			const struct rp_pair *p = &rp->pairs[i];
			struct evlist l = { 0 };
			bool peer = !rp->nodes[p->a].relay && !rp->nodes[p->b].relay &&
				    !rp->nodes[p->a].unknown && !rp->nodes[p->b].unknown;
			char n1[ADDR_STRLEN + 64], n2[ADDR_STRLEN + 64];

			if (peer != (pass == 0))
				continue;
			npeer += peer;
			printf("\n%s %s <-> %s: %s\n", peer ? "pair" : "link", rp_node_name(rp, p->a, n1, sizeof(n1)),
			       rp_node_name(rp, p->b, n2, sizeof(n2)), mode_name(p->mode));
			print_node_legend(rp, p->a, "A");
			print_node_legend(rp, p->b, "B");
			if (p->relay >= 0)
				print_node_legend(rp, p->relay, "R");
			print_pair_summary(rp, p);
			print_candidates(rp, p);
			if (pair_events(rp, p, &l) < 0) {
				printf("  (out of memory for the timeline)\n");
			} else {
				for (size_t k = 0; k < l.n; k++)
					print_event(rp, p, &l.v[k]);
			}
			free(l.v);
		}
	}
	print_stun_clients(rp);
	printf("\n%zu capture%s, %zu datagrams, %zu peer pair%s\n", rp->ncaps, rp->ncaps == 1 ? "" : "s",
	       rp->nflights, npeer, npeer == 1 ? "" : "s");
}

/* --- JSON ---------------------------------------------------------------- */

static json_t *jaddr(const union sockaddr_any *a)
{
	char buf[ADDR_STRLEN];

	return json_string(addr_format(a, buf, sizeof(buf)));
}

static json_t *jnode(const struct rp *rp, int n)
{
	return n >= 0 ? jaddr(&rp->nodes[n].addr) : json_null();
}

/* the captures that saw a datagram, in time order (each once): for an
 * unanswered one, the last link it crossed is among them */
static json_t *flight_captures(const struct rp *rp, int flight)
{
	const struct rp_flight *f = &rp->flights[flight];
	json_t *a = json_array();

	for (uint32_t i = 0; i < f->nobs; i++) {
		const char *name = rp->caps[rp->obs[rp->order[f->obs0 + i]].cap].name;
		bool dup = false;

		for (size_t k = 0; k < json_array_size(a) && !dup; k++)
			dup = !strcmp(json_string_value(json_array_get(a, k)), name);
		if (!dup)
			json_array_append_new(a, json_string(name));
	}
	return a;
}

static json_t *event_json(const struct rp *rp, const struct ev *e)
{
	json_t *o = json_object();
	char tid[25], idx[16];
	const struct rp_session *s;

	json_object_set_new(o, "t_s", json_real(rel_s(rp, e->t)));
	switch (e->kind) {
	case EV_STUN_REQ: case EV_STUN_RESP: {
		const struct rp_stun_probe *pr = &rp->probes[e->idx];
		const struct pkt_stun *req = &rp->stuns[rp->flights[pr->req_flight].stun];

		tid_hex(req->txid, tid);
		json_object_set_new(o, "node", jnode(rp, pr->node));
		json_object_set_new(o, "tid", json_string(tid));
		json_object_set_new(o, "server", jaddr(&pr->server));
		if (e->kind == EV_STUN_REQ) {
			json_object_set_new(o, "type", json_string("stun-request"));
			json_object_set_new(o, "client", jaddr(&pr->client));
			json_object_set_new(o, "transmissions", json_integer(pr->transmissions));
			json_object_set_new(o, "answered", json_boolean(pr->resp_flight >= 0));
			if (req->has_change_request)
				json_object_set_new(o, "change_request", json_integer(req->change_request));
			if (req->has_response_port)
				json_object_set_new(o, "response_port", json_integer(req->response_port));
		} else {
			const struct rp_flight *rf = &rp->flights[pr->resp_flight];
			const struct pkt_stun *r = &rp->stuns[rf->stun];

			json_object_set_new(o, "type", json_string(r->cls == PKT_STUN_ERROR ? "stun-error" : "stun-success"));
			json_object_set_new(o, "from", jaddr(&rf->src));
			json_object_set_new(o, "rtt_ms", json_real((double)(rf->t_first - rp->flights[pr->req_flight].t_first) / 1e6));
			if (r->has_xor_mapped)
				json_object_set_new(o, "xor_mapped", jaddr(&r->xor_mapped));
			if (r->has_mapped)
				json_object_set_new(o, "mapped", jaddr(&r->mapped));
			if (r->has_response_origin)
				json_object_set_new(o, "response_origin", jaddr(&r->response_origin));
			if (r->has_other_address)
				json_object_set_new(o, "other_address", jaddr(&r->other_address));
			if (r->has_error)
				json_object_set_new(o, "error_code", json_integer(r->error_code));
		}
		break;
	}
	case EV_WG_INIT:
		s = &rp->sess[e->idx];
		json_object_set_new(o, "type", json_string("handshake-initiation"));
		json_object_set_new(o, "from", jnode(rp, s->initiator));
		json_object_set_new(o, "to", jnode(rp, s->responder));
		snprintf(idx, sizeof(idx), "0x%08x", s->init_idx);
		json_object_set_new(o, "sender", json_string(idx));
		json_object_set_new(o, "candidate", jaddr(&s->candidate));
		json_object_set_new(o, "candidate_by_ip", json_boolean(s->candidate_by_ip));
		json_object_set_new(o, "peer_inferred", json_boolean(s->peer_inferred));
		json_object_set_new(o, "peer_by_mac1", json_boolean(s->peer_by_mac1));
		json_object_set_new(o, "mac1_key", s->peer_key >= 0 ? json_string(rp->keys[s->peer_key].label) : json_null());
		json_object_set_new(o, "answered", json_boolean(s->resp_flight >= 0));
		json_object_set_new(o, "seen_in", flight_captures(rp, s->init_flight));
		break;
	case EV_WG_RESP:
		s = &rp->sess[e->idx];
		json_object_set_new(o, "type", json_string("handshake-response"));
		json_object_set_new(o, "from", jnode(rp, s->responder));
		json_object_set_new(o, "to", jnode(rp, s->initiator));
		snprintf(idx, sizeof(idx), "0x%08x", s->resp_idx);
		json_object_set_new(o, "sender", json_string(idx));
		snprintf(idx, sizeof(idx), "0x%08x", s->init_idx);
		json_object_set_new(o, "receiver", json_string(idx));
		json_object_set_new(o, "source", jaddr(&s->answered_from));
		if (s->init_flight >= 0)
			json_object_set_new(o, "rtt_ms", json_real((double)(s->t_resp - s->t_init) / 1e6));
		break;
	case EV_WG_COOKIE:
		s = &rp->sess[e->idx];
		json_object_set_new(o, "type", json_string("cookie-reply"));
		json_object_set_new(o, "from", jnode(rp, s->responder));
		json_object_set_new(o, "to", jnode(rp, s->initiator));
		break;
	case EV_FIRST_DATA: {
		const struct rp_flight *f;

		s = &rp->sess[e->idx];
		f = &rp->flights[s->first_data];
		json_object_set_new(o, "type", json_string("first-data"));
		json_object_set_new(o, "from", jnode(rp, f->from));
		json_object_set_new(o, "to", jnode(rp, f->to));
		json_object_set_new(o, "destination", jaddr(&f->dst));
		json_object_set_new(o, "bytes", json_integer(f->len));
		json_object_set_new(o, "data_i2r", json_integer((json_int_t)s->data_i2r));
		json_object_set_new(o, "data_r2i", json_integer((json_int_t)s->data_r2i));
		json_object_set_new(o, "keepalives", json_integer((json_int_t)s->keepalives));
		break;
	}
	case EV_ORPHAN_DATA: {
		const struct rp_orphan *w = &rp->orphans[e->idx];

		json_object_set_new(o, "type", json_string("data-without-handshake"));
		json_object_set_new(o, "from", jnode(rp, w->from));
		json_object_set_new(o, "to", jnode(rp, w->to));
		json_object_set_new(o, "messages", json_integer((json_int_t)w->count));
		break;
	}
	case EV_RELAYED: {
		const struct rp_forward *w = &rp->fwds[e->idx];

		json_object_set_new(o, "type", json_string("relayed-data"));
		json_object_set_new(o, "from", jnode(rp, w->a));
		json_object_set_new(o, "relay", jnode(rp, w->r));
		json_object_set_new(o, "to", jnode(rp, w->b));
		json_object_set_new(o, "forwarded", json_integer((json_int_t)w->count));
		break;
	}
	}
	return o;
}

static json_t *pair_json(const struct rp *rp, const struct rp_pair *p)
{
	json_t *o = json_object(), *cands = json_array(), *evs = json_array();
	struct evlist l = { 0 };

	json_object_set_new(o, "a", jnode(rp, p->a));
	json_object_set_new(o, "b", jnode(rp, p->b));
	if (rp->nodes[p->a].label)
		json_object_set_new(o, "a_label", json_string(rp->nodes[p->a].label));
	if (rp->nodes[p->b].label)
		json_object_set_new(o, "b_label", json_string(rp->nodes[p->b].label));
	json_object_set_new(o, "peers", json_boolean(!rp->nodes[p->a].relay && !rp->nodes[p->b].relay &&
						     !rp->nodes[p->a].unknown && !rp->nodes[p->b].unknown));
	json_object_set_new(o, "mode", json_string(mode_name(p->mode)));
	json_object_set_new(o, "winning_candidate",
			    p->win_session >= 0 ? jaddr(&rp->sess[p->win_session].candidate) : json_null());
	json_object_set_new(o, "winning_initiator",
			    p->win_session >= 0 ? jnode(rp, rp->sess[p->win_session].initiator) : json_null());
	json_object_set_new(o, "first_data_s", p->t_first_data ? json_real(rel_s(rp, p->t_first_data)) : json_null());
	json_object_set_new(o, "direct_first_data_s", p->t_direct ? json_real(rel_s(rp, p->t_direct)) : json_null());
	if (p->relay >= 0) {
		json_t *r = json_object();

		json_object_set_new(r, "address", jnode(rp, p->relay));
		json_object_set_new(r, "first_data_s", json_real(rel_s(rp, p->t_relay)));
		json_object_set_new(r, "reason", json_string(p->reason));
		json_object_set_new(o, "relay", r);
	} else {
		json_object_set_new(o, "relay", json_null());
	}
	for (size_t i = 0; i < rp->nsess; i++) {
		const struct rp_session *s = &rp->sess[i];
		json_t *c;

		if (s->init_flight < 0 || !((s->initiator == p->a && s->responder == p->b) ||
					     (s->initiator == p->b && s->responder == p->a)))
			continue;
		c = json_object();
		json_object_set_new(c, "from", jnode(rp, s->initiator));
		json_object_set_new(c, "address", jaddr(&s->candidate));
		json_object_set_new(c, "t_s", json_real(rel_s(rp, s->t_init)));
		json_object_set_new(c, "answered", json_boolean(s->resp_flight >= 0));
		json_object_set_new(c, "by_ip", json_boolean(s->candidate_by_ip));
		json_object_set_new(c, "peer_inferred", json_boolean(s->peer_inferred));
		json_object_set_new(c, "peer_by_mac1", json_boolean(s->peer_by_mac1));
		json_array_append_new(cands, c);
	}
	json_object_set_new(o, "initiations", cands);
	if (pair_events(rp, p, &l) == 0)
		for (size_t k = 0; k < l.n; k++)
			json_array_append_new(evs, event_json(rp, &l.v[k]));
	free(l.v);
	json_object_set_new(o, "events", evs);
	return o;
}

static json_t *stun_clients_json(const struct rp *rp)
{
	json_t *arr = json_array();
	struct stun_client *v;
	size_t n;
	char a[ADDR_STRLEN];

	if (stun_clients(rp, &v, &n) < 0)
		return arr;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object(), *m = json_array();

		json_object_set_new(o, "ip", json_string(addr_format_ip(&v[i].ip, a, sizeof(a))));
		json_object_set_new(o, "requests", json_integer((json_int_t)v[i].requests));
		json_object_set_new(o, "answered", json_integer((json_int_t)v[i].answered));
		for (int k = 0; k < v[i].nmapped; k++)
			json_array_append_new(m, jaddr(&v[i].mapped[k]));
		json_object_set_new(o, "mapped", m);
		json_array_append_new(arr, o);
	}
	free(v);
	return arr;
}

int rp_print_json(const struct rp *rp)
{
	json_t *root = json_object(), *caps = json_array(), *trans = json_array();
	json_t *nodes = json_array(), *pairs = json_array();
	char ts[64];
	int rc;

	/* t=0 exactly (a double cannot hold epoch nanoseconds), and readable */
	json_object_set_new(root, "t0_ns", rp->nobs ? json_integer((json_int_t)rp->t0) : json_null());
	json_object_set_new(root, "t0", rp->nobs ? json_string(iso_time(rp->t0, ts, sizeof(ts))) : json_null());
	for (size_t i = 0; i < rp->ncaps; i++) {
		const struct rp_capture *c = &rp->caps[i];
		json_t *o = json_object(), *bad = json_array(), *warn = json_array();

		json_object_set_new(o, "file", json_string(c->path));
		json_object_set_new(o, "linktype", json_integer(c->linktype));
		json_object_set_new(o, "records", json_integer((json_int_t)c->records));
		json_object_set_new(o, "stun", json_integer((json_int_t)c->stun));
		json_object_set_new(o, "wireguard", json_integer((json_int_t)c->wg));
		json_object_set_new(o, "undecodable", json_integer((json_int_t)c->undecodable));
		for (size_t k = 0; k < c->undecodable && k < RP_BAD_OFFSETS; k++)
			json_array_append_new(bad, json_integer((json_int_t)c->bad_offsets[k]));
		json_object_set_new(o, "undecodable_offsets", bad);
		json_object_set_new(o, "format", json_string(c->format));
		json_object_set_new(o, "resynchronises", json_boolean(c->resynchronises));
		json_object_set_new(o, "resyncs", json_integer((json_int_t)c->resyncs));
		json_object_set_new(o, "skipped_bytes", json_integer((json_int_t)c->skipped));
		for (uint64_t k = 0; k < c->resyncs && k < RP_RESYNCS_KEPT; k++) {
			const struct rp_resync *r = &c->resync[k];
			json_t *w = json_object();

			json_object_set_new(w, "offset", json_integer((json_int_t)r->corrupt_at));
			json_object_set_new(w, "resumed_offset", json_integer((json_int_t)r->resumed_at));
			json_object_set_new(w, "skipped_bytes",
					    json_integer((json_int_t)(r->resumed_at - r->corrupt_at)));
			json_object_set_new(w, "reason", json_string(r->why));
			json_array_append_new(warn, w);
		}
		json_object_set_new(o, "warnings", warn);
		if (c->failed) {
			json_t *e = json_object();

			json_object_set_new(e, "offset", json_integer((json_int_t)c->err_offset));
			json_object_set_new(e, "reason", json_string(c->err));
			json_object_set_new(o, "error", e);
		} else {
			json_object_set_new(o, "error", json_null());
		}
		json_array_append_new(caps, o);
	}
	json_object_set_new(root, "captures", caps);
	for (size_t i = 0; i < rp->ntrans; i++) {
		const struct rp_translation *t = &rp->trans[i];
		json_t *o = json_object();

		json_object_set_new(o, "inner", jaddr(&t->inner));
		json_object_set_new(o, "outer", jaddr(&t->outer));
		json_object_set_new(o, "seen_by", json_string(t->how));
		json_object_set_new(o, "t_s", json_real(rel_s(rp, t->t)));
		json_array_append_new(trans, o);
	}
	json_object_set_new(root, "translations", trans);
	for (size_t i = 0; i < rp->nnodes; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "address", jaddr(&rp->nodes[i].addr));
		if (rp->nodes[i].label)
			json_object_set_new(o, "label", json_string(rp->nodes[i].label));
		json_object_set_new(o, "relay", json_boolean(rp->nodes[i].relay));
		json_object_set_new(o, "unknown", json_boolean(rp->nodes[i].unknown));
		json_array_append_new(nodes, o);
	}
	json_object_set_new(root, "nodes", nodes);
	for (size_t i = 0; i < rp->npairs; i++)
		json_array_append_new(pairs, pair_json(rp, &rp->pairs[i]));
	json_object_set_new(root, "pairs", pairs);
	json_object_set_new(root, "stun_clients", stun_clients_json(rp));
	rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	printf("\n");
	json_decref(root);
	return rc ? -EIO : 0;
}
