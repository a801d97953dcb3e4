/* enforce: security groups in meshd; see enforce.h */
#include "enforce.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "meshd.h"
#include "policy_nft.h"

#define SAVED_GROUP "security_group.json"

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* g (NULL: no permit rule) into the kernel; 0 or a negative errno, logged */
static int apply(struct meshd *m, const struct policy_group *g)
{
	struct enforce *e = &m->pol;
	char err[POLICY_NFT_ERR_MAX] = "";
	struct policy_nft *r;
	double t0 = mono_ms();
	int rc;

	if ((rc = policy_nft_render(g, m->o.ifname, &r)) < 0) {
		snprintf(err, sizeof(err), "%s", strerror(-rc));
	} else {
		/* the rules and the changed sets only, while the table is ours;
		 * the whole table when that fails (someone else changed it) */
		rc = e->plan ? policy_nft_commit_change(e->plan, r, err, sizeof(err)) : -ENOENT;
		if (rc < 0 && e->plan)
			log_warn(COMPONENT, "nftables table inet " POLICY_NFT_TABLE " replaced whole: the change "
				 "did not apply err=\"%s\"", err);
		if (rc < 0)
			rc = policy_nft_commit(r, err, sizeof(err));
		policy_nft_free(e->plan);
		e->plan = rc == 0 ? r : NULL;
		if (rc < 0)
			policy_nft_free(r);
	}
	if (rc < 0) {
		e->apply_errors++;
		log_error(COMPONENT, "nftables table inet " POLICY_NFT_TABLE " not applied group=%s err=\"%s\"",
			  g && g->id[0] ? g->id : "none", err);
		return rc;
	}
	e->installed = true;
	e->applies++;
	e->last_apply_ms = mono_ms() - t0;
	return 0;
}

static void saved_path(const struct meshd *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" SAVED_GROUP, m->o.state_dir);
}

/* the group kept for the next start (no window without rules then) */
static void save(const struct meshd *m, const json_t *group)
{
	char path[600], tmp[620];

	saved_path(m, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(group, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
		log_warn(COMPONENT, "security group not saved path=%s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

/* take over a parsed group that is now in the kernel */
static void adopt(struct enforce *e, struct policy_group *g, const json_t *j, const char *source)
{
	if (e->has_group)
		policy_group_free(&e->group);
	e->group = *g;
	e->has_group = true;
	json_decref(e->applied);
	e->applied = j ? json_deep_copy(j) : NULL;
	e->source = source;
}

static int parse(const json_t *j, struct policy_group *g, char *err, size_t errlen)
{
	return policy_group_parse(j, POLICY_PARSE_RESOLVED, g, err, errlen);
}

int enforce_start(struct meshd *m)
{
	struct enforce *e = &m->pol;
	struct policy_group g;
	char path[600], err[POLICY_ERR_MAX];
	json_t *saved = NULL;
	int rc;

	e->source = "none";
	if (m->o.no_policy) {
		log_info(COMPONENT, "security groups not enforced (--no-policy); the service is told");
		return 0;
	}
	saved_path(m, path, sizeof(path));
	if (access(path, F_OK) == 0) {
		json_error_t je;
		if (!(saved = json_load_file(path, 0, &je)))
			log_warn(COMPONENT, "saved security group ignored path=%s line=%d reason=\"%s\"", path, je.line,
				 je.text);
		else if (parse(saved, &g, err, sizeof(err)) < 0) {
			log_warn(COMPONENT, "saved security group ignored path=%s reason=\"%s\"", path, err);
			json_decref(saved);
			saved = NULL;
		}
	}
	/* before the TUN carries anything: the last group, or no permit at all */
	rc = apply(m, saved ? &g : NULL);
	if (rc < 0) {
		log_error(COMPONENT, "cannot enforce security groups: this host needs nftables (nf_tables with the "
			  "inet family, and CAP_NET_ADMIN); run meshd with --no-policy to go without enforcement");
		if (saved) {
			policy_group_free(&g);
			json_decref(saved);
		}
		return rc;
	}
	if (saved) {
		adopt(e, &g, saved, "saved");
		json_decref(saved);
		log_info(COMPONENT, "security group from the last run applied group=%s name=%s revision=%lld",
			 e->group.id, e->group.name, (long long)e->group.revision);
	} else {
		log_info(COMPONENT, "nftables table inet " POLICY_NFT_TABLE " installed, nothing permitted until the "
			 "service sends this device's security group");
	}
	return 0;
}

void enforce_stop(struct meshd *m)
{
	struct enforce *e = &m->pol;
	char err[POLICY_NFT_ERR_MAX] = "";
	int rc;

	if (e->installed && (rc = policy_nft_remove(err, sizeof(err))) < 0 && rc != -ENOENT)
		log_warn(COMPONENT, "nftables table inet " POLICY_NFT_TABLE " not removed err=\"%s\"", err);
	e->installed = false;
	policy_nft_free(e->plan);
	e->plan = NULL;
	if (e->has_group)
		policy_group_free(&e->group);
	e->has_group = false;
	json_decref(e->applied);
	e->applied = NULL;
	json_decref(e->relay_json);
	e->relay_json = NULL;
	for (size_t i = 0; i < e->ngroups; i++)
		policy_group_free(&e->groups[i]);
	free(e->groups);
	free(e->ips);
	free(e->cache);
	e->groups = NULL;
	e->ips = NULL;
	e->cache = NULL;
	e->ngroups = e->nips = 0;
}

static void own_update(struct meshd *m, const json_t *sg)
{
	struct enforce *e = &m->pol;
	struct policy_group g;
	char err[POLICY_ERR_MAX];

	if (!sg) {
		if (!e->absent_logged)
			log_warn(COMPONENT, "the service sends no security group (it predates them): everything "
				 "is allowed on the tunnel");
		e->absent_logged = true;
		if (e->absent && e->installed)
			return;
		if (policy_group_allow_all(&g) < 0 || apply(m, &g) < 0) {
			policy_group_free(&g);
			return;
		}
		adopt(e, &g, NULL, "absent");
		e->absent = true;
		{	/* so a restart allows everything from the start, too */
			json_t *all = json_pack("{s:[{s:s}], s:[{s:s}]}", "inbound_rules", "ip_protocol", "any",
						"outbound_rules", "ip_protocol", "any");
			save(m, all);
			json_decref(all);
		}
		return;
	}
	if (!e->absent && e->applied && json_equal(sg, e->applied)) {
		e->source = "service";	/* a kept group the service confirms */
		return;
	}
	if (parse(sg, &g, err, sizeof(err)) < 0) {
		e->apply_errors++;
		log_error(COMPONENT, "security group refused field=security_group reason=\"%s\"; the rules in place stay",
			  err);
		return;
	}
	if (apply(m, &g) < 0) {
		policy_group_free(&g);
		return;
	}
	adopt(e, &g, sg, "service");
	e->absent = false;
	save(m, sg);
	log_info(COMPONENT, "security group applied group=%s name=%s revision=%lld inbound_rules=%zu "
		 "outbound_rules=%zu apply_ms=%.1f", e->group.id, e->group.name, (long long)e->group.revision,
		 e->group.nin, e->group.nout, e->last_apply_ms);
}

/* ---- relay ---------------------------------------------------------------- */

static void relay_groups(struct meshd *m, const json_t *all)
{
	struct enforce *e = &m->pol;
	struct policy_group *gs = NULL;
	size_t n = 0, i;
	json_t *v;

	if ((!all && !e->relay_json) || (all && e->relay_json && json_equal(all, e->relay_json)))
		return;
	if (all && !json_is_array(all)) {
		log_error(COMPONENT, "security groups refused field=security_groups reason=\"not an array\"");
		return;
	}
	if (all && json_array_size(all) && !(gs = calloc(json_array_size(all), sizeof(*gs))))
		return;
	json_array_foreach(all, i, v) {
		char err[POLICY_ERR_MAX];
		int rc = parse(v, &gs[n], err, sizeof(err));

		if (rc == 0 && !gs[n].id[0]) {
			snprintf(err, sizeof(err), "the group has no id");
			policy_group_free(&gs[n]);
			rc = -EINVAL;
		}
		if (rc < 0) {
			log_warn(COMPONENT, "security group skipped field=security_groups[%zu] reason=\"%s\"", i, err);
			continue;
		}
		n++;
	}
	for (i = 0; i < e->ngroups; i++)
		policy_group_free(&e->groups[i]);
	free(e->groups);
	e->groups = gs;
	e->ngroups = n;
	json_decref(e->relay_json);
	e->relay_json = all ? json_deep_copy(all) : NULL;
	log_info(COMPONENT, "relay: security groups of the VPC groups=%zu", n);
}

static int ip_cmp(const void *a, const void *b)
{
	const struct enforce_ip *x = a, *y = b;
	return x->ip < y->ip ? -1 : x->ip > y->ip;
}

static int32_t group_index(const struct enforce *e, const char *id)
{
	for (size_t i = 0; id[0] && i < e->ngroups; i++)
		if (strcmp(e->groups[i].id, id) == 0)
			return (int32_t)i;
	return -1;
}

/* the peers by tunnel address, each with its group */
static void relay_reindex(struct meshd *m)
{
	struct enforce *e = &m->pol;
	size_t n = meshd_npeers(m);
	struct enforce_ip *ips = n ? calloc(n, sizeof(*ips)) : NULL;

	if (n && !ips)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct mpeer *p = meshd_peer(m, i);
		ips[i].ip = ntohl(p->tunnel_ip.in.sin_addr.s_addr);
		ips[i].group = group_index(e, p->group_id);
	}
	if (n)	/* qsort's base may not be NULL, even for no elements */
		qsort(ips, n, sizeof(*ips), ip_cmp);
	free(e->ips);
	e->ips = ips;
	e->nips = n;
}

void enforce_relay_update(struct meshd *m, const json_t *policy)
{
	relay_groups(m, json_object_get(policy, "security_groups"));
	relay_reindex(m);
	/* what the cache decided may no longer hold */
	if (++m->pol.gen == 0)
		m->pol.gen = 1;
}

void enforce_update(struct meshd *m, const json_t *policy)
{
	if (m->o.no_policy)
		return;
	own_update(m, json_object_get(policy, "security_group"));
	if (m->o.relay)
		enforce_relay_update(m, policy);
}

static const struct enforce_ip *ip_find(const struct enforce *e, uint32_t ip)
{
	size_t lo = 0, hi = e->nips;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->ips[mid].ip == ip)
			return &e->ips[mid];
		if (e->ips[mid].ip < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool is_probe(const uint8_t *icmp, size_t len)
{
	return len >= 8 + POLICY_PROBE_LEN && icmp[0] == 8 &&
	       memcmp(icmp + 8, POLICY_PROBE_DATA, POLICY_PROBE_LEN) == 0;
}

bool enforce_relay_decide(const struct policy_group *gs, const struct policy_peer *src,
			  const struct policy_group *gd, const struct policy_peer *dst, const uint8_t *ip, size_t len)
{
	size_t ihl;
	uint8_t proto;
	uint16_t sport = 0, dport = 0;
	bool first, l4 = false;

	if (len < 20 || (ip[0] >> 4) != 4 || (ihl = (size_t)(ip[0] & 15) * 4) < 20 || len < ihl)
		return false;
	proto = ip[9];
	/* a later fragment has no transport header: only rules for every port */
	first = ((ip[6] & 0x1f) << 8 | ip[7]) == 0;
	if (first && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && len >= ihl + 4) {
		sport = (uint16_t)(ip[ihl] << 8 | ip[ihl + 1]);
		dport = (uint16_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
		l4 = true;
	}
	if (policy_allows(gs, src, gd, dst, AF_INET, proto, dport))
		return true;
	if (first && proto == IPPROTO_ICMP && len >= ihl + 8) {
		uint8_t type = ip[ihl];
		/* RFC 792: echo reply, destination unreachable, time exceeded,
		 * parameter problem: answers the end hosts' conntrack judges */
		if (type == 0 || type == 3 || type == 11 || type == 12 || is_probe(ip + ihl, len - ihl))
			return true;
	}
	if (l4) {
		/* a SYN without ACK opens a connection: never a reply */
		if (proto == IPPROTO_TCP && len >= ihl + 14 && (ip[ihl + 13] & 0x12) == 0x02)
			return false;
		return policy_allows(gd, dst, gs, src, AF_INET, proto, sport);
	}
	return false;
}

/* the flow of a TCP or UDP packet that is its first fragment, as the cache
 * keys it; false for anything else (not cached) */
static bool flow_of(const uint8_t *ip, size_t len, struct enforce_flow *f)
{
	size_t ihl = (size_t)(ip[0] & 15) * 4;

	if (ihl < 20 || (ip[9] != IPPROTO_TCP && ip[9] != IPPROTO_UDP) || ((ip[6] & 0x1f) << 8 | ip[7]) != 0 ||
	    len < ihl + (ip[9] == IPPROTO_TCP ? 14 : 4))
		return false;
	memset(f, 0, sizeof(*f));
	memcpy(&f->src, ip + 12, 4);
	memcpy(&f->dst, ip + 16, 4);
	f->proto = ip[9];
	f->sport = (uint16_t)(ip[ihl] << 8 | ip[ihl + 1]);
	f->dport = (uint16_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
	f->syn = ip[9] == IPPROTO_TCP && (ip[ihl + 13] & 0x12) == 0x02;
	return true;
}

static struct enforce_flow *cache_slot(struct enforce *e, const struct enforce_flow *f)
{
	uint64_t h = ((uint64_t)f->src * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)f->dst * 0xc2b2ae3d27d4eb4full) ^
		     ((uint64_t)f->sport << 24 | (uint64_t)f->dport << 8 | (uint64_t)(f->proto ^ f->syn));

	h ^= h >> 29;
	return &e->cache[(h * 0xbf58476d1ce4e5b9ull >> 40) % ENFORCE_CACHE];
}

static bool same_flow(const struct enforce_flow *a, const struct enforce_flow *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport && a->dport == b->dport &&
	       a->proto == b->proto && a->syn == b->syn;
}

static bool decide(struct enforce *e, const uint8_t *ip, size_t len)
{
	const struct enforce_ip *s, *d;
	struct policy_peer src = { .naddr = 1 }, dst = { .naddr = 1 };
	uint32_t a;

	memcpy(&a, ip + 12, 4);
	s = ip_find(e, ntohl(a));
	memcpy(&a, ip + 16, 4);
	d = ip_find(e, ntohl(a));
	if (!s || !d || s->group < 0 || d->group < 0) {
		e->relay_unknown_group++;
		return false;
	}
	src.addr[0].family = dst.addr[0].family = AF_INET;
	memcpy(src.addr[0].a, ip + 12, 4);
	memcpy(dst.addr[0].a, ip + 16, 4);
	src.group_id = e->groups[s->group].id;
	dst.group_id = e->groups[d->group].id;
	return enforce_relay_decide(&e->groups[s->group], &src, &e->groups[d->group], &dst, ip, len);
}

bool enforce_relay_allows(struct meshd *m, const uint8_t *ip, size_t len)
{
	struct enforce *e = &m->pol;
	struct enforce_flow f, *slot = NULL;
	bool allow;

	if (m->o.no_policy || !e->relay_json)
		return true;	/* a service without security groups */
	if (len < 20 || (ip[0] >> 4) != 4) {
		e->relay_policy_drops++;
		return false;
	}
	if (!e->cache && e->gen)
		e->cache = calloc(ENFORCE_CACHE, sizeof(*e->cache));
	if (e->cache && flow_of(ip, len, &f)) {
		slot = cache_slot(e, &f);
		if (slot->gen == e->gen && same_flow(slot, &f)) {
			e->cache_hits++;
			allow = slot->allow;
			goto out;
		}
	}
	allow = decide(e, ip, len);
	if (slot) {
		f.allow = allow;
		f.gen = e->gen;
		*slot = f;
	}
out:
	if (!allow)
		e->relay_policy_drops++;
	return allow;
}

/* ---- status -------------------------------------------------------------------- */

/* "tcp 80-90 from 100.64.0.0/10, 100.64.1.1-100.64.1.9, group web (2 addresses)" */
static json_t *rule_json(const struct policy_rule *r, bool inbound, uint64_t pkts, bool has_pkts)
{
	char line[512], buf[2 * INET6_ADDRSTRLEN + 8];
	size_t o = 0;

#define PUT(...) do { if (o < sizeof(line)) o += (size_t)snprintf(line + o, sizeof(line) - o, __VA_ARGS__); } while (0)
	PUT("%s", policy_proto_name(r->proto));
	if (r->from_port || r->to_port) {
		if (r->from_port == r->to_port)
			PUT(" port %u", r->from_port);
		else
			PUT(" ports %u-%u", r->from_port, r->to_port);
	}
	PUT(" %s ", inbound ? "from" : "to");
	if (!r->nranges && !r->ngroups)
		PUT("anyone");
	for (size_t i = 0; i < r->nranges && i < 8; i++)
		PUT("%s%s", i ? ", " : "", policy_range_format(&r->ranges[i], buf, sizeof(buf)));
	if (r->nranges > 8)
		PUT(" (+%zu more)", r->nranges - 8);
	for (size_t i = 0; i < r->ngroups; i++)
		PUT("%sgroup %s", i || r->nranges ? ", " : "", r->groups[i]);
	if (r->ngroups)
		PUT(" (%zu addresses)", r->nmembers);
#undef PUT
	if (o >= sizeof(line))
		memcpy(line + sizeof(line) - 4, "...", 4);
	return json_pack("{s:s, s:o}", "rule", line, "packets", has_pkts ? json_integer((json_int_t)pkts) : json_null());
}

json_t *enforce_status_json(const struct meshd *m)
{
	const struct enforce *e = &m->pol;
	struct policy_nft_counters c = { 0 };
	struct wg_device_stats ds;
	bool has_c = false;
	json_t *o, *in, *out;

	wg_device_get_stats(m->dev, &ds);
	o = json_pack("{s:b, s:s, s:I, s:I, s:I}", "enforced", !m->o.no_policy && e->installed,
		      "source", m->o.no_policy ? "off" : e->source, "applies", (json_int_t)e->applies,
		      "apply_errors", (json_int_t)e->apply_errors,
		      "spoofed_sources", (json_int_t)ds.rx_bad_src);
	if (!o)
		return NULL;
	if (m->o.relay)
		json_object_set_new(o, "relay_policy_drops", json_integer((json_int_t)e->relay_policy_drops));
	if (m->o.relay) {
		json_object_set_new(o, "relay_groups", json_integer((json_int_t)e->ngroups));
		json_object_set_new(o, "relay_unknown_group", json_integer((json_int_t)e->relay_unknown_group));
	}
	if (e->installed && policy_nft_counters(e->has_group ? e->group.nin : 0, e->has_group ? e->group.nout : 0,
						&c) == 0)
		has_c = true;
	json_object_set_new(o, "inbound_drops", has_c ? json_integer((json_int_t)c.in_drop_pkts) : json_null());
	json_object_set_new(o, "outbound_drops", has_c ? json_integer((json_int_t)c.out_drop_pkts) : json_null());
	if (!e->has_group) {
		json_object_set_new(o, "group", json_null());
	} else {
		json_object_set_new(o, "group", json_pack("{s:s, s:s, s:I}", "id", e->group.id, "name", e->group.name,
							  "revision", (json_int_t)e->group.revision));
		in = json_array();
		out = json_array();
		for (size_t i = 0; i < e->group.nin; i++)
			json_array_append_new(in, rule_json(&e->group.in[i], true, has_c ? c.in_pkts[i] : 0, has_c));
		for (size_t i = 0; i < e->group.nout; i++)
			json_array_append_new(out, rule_json(&e->group.out[i], false, has_c ? c.out_pkts[i] : 0, has_c));
		json_object_set_new(o, "inbound_rules", in);
		json_object_set_new(o, "outbound_rules", out);
	}
	if (has_c)
		policy_nft_counters_free(&c);
	return o;
}
