/* The device's security group rendered to nftables (see policy_nft.h). The
 * ruleset, in nft's notation (IF = the mesh interface):
 *
 *   table inet natmesh {
 *     set inbound_rules_I_v4 { type ipv4_addr; flags constant,interval; elements = { RANGES } }
 *     (one per rule and family with a peer side; _v6: ipv6_addr; outbound_rules_I_...)
 *     chain input   (filter input 0):   iifname IF jump inbound
 *     chain forward (filter forward 0): iifname IF jump inbound
 *                                       oifname IF jump outbound
 *     chain output  (filter output 0):  oifname IF jump outbound
 *     chain inbound {
 *       ct state established,related accept
 *       icmp type echo-reply accept
 *       icmpv6 type echo-reply accept
 *       icmp type echo-request @th,64,128 "natmesh meshctl!" accept   (meshctl ping)
 *       per inbound rule and family:
 *         [ip|ip6 saddr @inbound_rules_I_vF] [meta nfproto F] [meta l4proto P]
 *         [th dport LO-HI] counter accept comment "inbound_rules[i]"
 *       counter drop
 *     }
 *     chain outbound: the same with daddr and outbound_rules, without the
 *       meshctl ping line (replies leave as established)
 *   }
 *
 * A rule's peer side is the union of its ip_ranges and group_addresses,
 * merged and split by family into interval sets named after the rule; a rule whose
 * peer side names only addresses of one family renders in that family only,
 * one that names only empty groups renders to nothing (it matches no one). A
 * rule without peer side renders once for every family, except icmp, which
 * is ICMP in IPv4 and ICMPv6 in IPv6 (two rules). A packet forwarded from IF
 * back into IF passes the inbound chain only (its accept ends the forward
 * hook). */
#include "policy_nft.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_nft_plan.h"

/* ---- the plan -------------------------------------------------------------- */

static struct pn_rule *plan_add(struct policy_nft *r, const char *chain, enum pn_kind kind)
{
	if (r->nrules == r->caprules) {
		size_t cap = r->caprules ? 2 * r->caprules : 64;
		struct pn_rule *n = realloc(r->rules, cap * sizeof(*n));
		if (!n) {
			r->error = -ENOMEM;
			return NULL;
		}
		r->rules = n;
		r->caprules = cap;
	}
	struct pn_rule *p = &r->rules[r->nrules++];
	memset(p, 0, sizeof(*p));
	p->chain = chain;
	p->kind = kind;
	return p;
}


static int range_cmp(const void *a, const void *b)
{
	const struct policy_range *x = a, *y = b;
	return memcmp(x->lo, y->lo, 16);
}


/* hi + 1 >= lo: the two touch or overlap */
static bool touches(const struct policy_range *cur, const struct policy_range *next, int n)
{
	uint8_t up[16];

	memcpy(up, cur->hi, 16);
	if (!pn_addr_inc(up, n))
		return true;	/* cur reaches the top */
	return memcmp(next->lo, up, (size_t)n) <= 0;
}

/* the rule's ranges and members of family, sorted and merged, appended to
 * the pool; returns how many */
static size_t pool_peer(struct policy_nft *r, const struct policy_rule *pr, int family)
{
	size_t want = pr->nranges + pr->nmembers, start = r->npool, n = 0, m;

	if (r->npool + want > r->cappool) {
		size_t cap = r->cappool ? r->cappool : 256;
		while (cap < r->npool + want)
			cap *= 2;
		struct policy_range *np = realloc(r->pool, cap * sizeof(*np));
		if (!np) {
			r->error = -ENOMEM;
			return 0;
		}
		r->pool = np;
		r->cappool = cap;
	}
	for (size_t i = 0; i < pr->nranges; i++)
		if (pr->ranges[i].family == family)
			r->pool[start + n++] = pr->ranges[i];
	for (size_t i = 0; i < pr->nmembers; i++)
		if (pr->members[i].family == family)
			r->pool[start + n++] = pr->members[i];
	if (n == 0)
		return 0;
	qsort(&r->pool[start], n, sizeof(r->pool[0]), range_cmp);
	m = 0;
	for (size_t i = 1; i < n; i++) {
		struct policy_range *cur = &r->pool[start + m], *nx = &r->pool[start + i];
		if (touches(cur, nx, pn_alen(family))) {
			if (memcmp(nx->hi, cur->hi, 16) > 0)
				memcpy(cur->hi, nx->hi, 16);
		} else {
			r->pool[start + ++m] = *nx;
		}
	}
	r->npool = start + m + 1;
	return m + 1;
}

static uint8_t l4_of(enum policy_proto p, int family)
{
	switch (p) {
	case POLICY_TCP: return IPPROTO_TCP;
	case POLICY_UDP: return IPPROTO_UDP;
	case POLICY_ICMP: return family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	default: return 0;
	}
}

/* one family's rule of pr; family 0: every family (no peer side, no icmp) */
static void plan_permit(struct policy_nft *r, const char *chain, const char *where, const struct policy_rule *pr,
			bool src, int family, size_t set_off, size_t nset)
{
	struct pn_rule *p = plan_add(r, chain, PN_PERMIT);

	if (!p)
		return;
	p->family = family;
	p->l4 = l4_of(pr->proto, family);
	if (pr->proto == POLICY_TCP || pr->proto == POLICY_UDP) {
		p->plo = pr->from_port;
		p->phi = pr->to_port;
	}
	p->peer_src = src;
	p->set_off = set_off;
	p->nset = nset;
	snprintf(p->comment, sizeof(p->comment), "%s", where);
	if (nset) {
		/* "inbound_rules[3]" -> "inbound_rules_3_v4" */
		size_t n = strcspn(where, "[");
		snprintf(p->set, sizeof(p->set), "%.*s_%.*s_v%d", (int)n, where, (int)strcspn(where + n + 1, "]"),
			 where + n + 1, family == AF_INET ? 4 : 6);
	}
}

static void plan_rule(struct policy_nft *r, const char *chain, const char *where, const struct policy_rule *pr,
		      bool src)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	bool any_peer = pr->nranges == 0 && pr->ngroups == 0;

	for (int f = 0; f < 2; f++) {
		int family = fams[f];

		if ((pr->proto == POLICY_IPV4 && family != AF_INET) || (pr->proto == POLICY_IPV6 && family != AF_INET6))
			continue;
		if (any_peer) {
			/* any, tcp, udp: one rule for both families */
			bool both = pr->proto == POLICY_ANY || pr->proto == POLICY_TCP || pr->proto == POLICY_UDP;
			plan_permit(r, chain, where, pr, src, both ? 0 : family, 0, 0);
			if (both)
				return;
			continue;
		}
		size_t off = r->npool, n = pool_peer(r, pr, family);
		if (n)
			plan_permit(r, chain, where, pr, src, family, off, n);
	}
}

static void plan_chain(struct policy_nft *r, const char *chain, const char *key, const struct policy_rule *rules,
		       size_t n, bool inbound)
{
	struct pn_rule *p;
	char where[32];

	plan_add(r, chain, PN_CT);
	if ((p = plan_add(r, chain, PN_ECHO_REPLY)))
		p->family = AF_INET;
	if ((p = plan_add(r, chain, PN_ECHO_REPLY)))
		p->family = AF_INET6;
	if (inbound && (p = plan_add(r, chain, PN_PROBE)))
		p->family = AF_INET;
	for (size_t i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		plan_rule(r, chain, where, &rules[i], inbound);
	}
	plan_add(r, chain, PN_DROP);
}

static void plan_jump(struct policy_nft *r, const char *chain, bool oif, const char *target)
{
	struct pn_rule *p = plan_add(r, chain, PN_JUMP);

	if (p) {
		p->oif = oif;
		p->target = target;
	}
}

int policy_nft_render(const struct policy_group *g, const char *ifname, struct policy_nft **out)
{
	struct policy_nft *r;
	int rc;

	*out = NULL;
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
	plan_jump(r, "input", false, "inbound");
	plan_jump(r, "forward", false, "inbound");
	plan_jump(r, "forward", true, "outbound");
	plan_jump(r, "output", true, "outbound");
	plan_chain(r, "inbound", "inbound_rules", g ? g->in : NULL, g ? g->nin : 0, true);
	plan_chain(r, "outbound", "outbound_rules", g ? g->out : NULL, g ? g->nout : 0, false);
	if ((rc = r->error) < 0) {
		policy_nft_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void policy_nft_free(struct policy_nft *r)
{
	if (!r)
		return;
	free(r->rules);
	free(r->pool);
	free(r);
}

size_t policy_nft_rule_count(const struct policy_nft *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nrules; i++)
		n += r->rules[i].kind != PN_JUMP;
	return n;
}

/* ---- text (nft -f) ---------------------------------------------------------- */

static const char *l4_name(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	default: return "ipv6-icmp";
	}
}

static void text_set(FILE *f, const struct policy_nft *r, const struct pn_rule *p)
{
	char buf[2 * INET6_ADDRSTRLEN + 8];

	fprintf(f, "\tset %s {\n\t\ttype %s\n\t\tflags constant,interval\n\t\telements = { ", p->set,
		p->family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	for (size_t i = 0; i < p->nset; i++)
		fprintf(f, "%s%s", i ? ", " : "", policy_range_format(&r->pool[p->set_off + i], buf, sizeof(buf)));
	fputs(" }\n\t}\n", f);
}

static void text_rule(FILE *f, const struct policy_nft *r, const struct pn_rule *p)
{
	fputs("\t\t", f);
	switch (p->kind) {
	case PN_JUMP:
		fprintf(f, "%s \"%s\" jump %s\n", p->oif ? "oifname" : "iifname", r->ifname, p->target);
		return;
	case PN_CT:
		fputs("ct state established,related accept\n", f);
		return;
	case PN_ECHO_REPLY:
		fputs(p->family == AF_INET ? "icmp type echo-reply accept\n" : "icmpv6 type echo-reply accept\n", f);
		return;
	case PN_PROBE:
		fputs("icmp type echo-request @th,64,128 0x", f);
		for (int i = 0; i < POLICY_PROBE_LEN; i++)
			fprintf(f, "%02x", (uint8_t)POLICY_PROBE_DATA[i]);
		fputs(" accept\n", f);
		return;
	case PN_DROP:
		fputs("counter drop\n", f);
		return;
	case PN_PERMIT:
		break;
	}
	if (p->nset) {
		fprintf(f, "%s %s @%s ", p->family == AF_INET ? "ip" : "ip6", p->peer_src ? "saddr" : "daddr", p->set);
	} else if (p->family) {
		fprintf(f, "meta nfproto %s ", p->family == AF_INET ? "ipv4" : "ipv6");
	}
	if (p->l4)
		fprintf(f, "meta l4proto %s ", l4_name(p->l4));
	if (p->plo == p->phi && p->plo)
		fprintf(f, "th dport %u ", p->plo);
	else if (p->plo || p->phi)
		fprintf(f, "th dport %u-%u ", p->plo, p->phi);
	fprintf(f, "counter accept comment \"%s\"\n", p->comment);
}

char *policy_nft_text(const struct policy_nft *r, bool replace)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	static const char *const chains[] = { "input", "forward", "output", "inbound", "outbound" };

	if (!f)
		return NULL;
	if (replace)
		fputs("table inet " POLICY_NFT_TABLE "\ndelete table inet " POLICY_NFT_TABLE "\n", f);
	fputs("table inet " POLICY_NFT_TABLE " {\n", f);
	for (size_t i = 0; i < r->nrules; i++)
		if (r->rules[i].nset)
			text_set(f, r, &r->rules[i]);
	for (size_t c = 0; c < sizeof(chains) / sizeof(chains[0]); c++) {
		fprintf(f, "\tchain %s {\n", chains[c]);
		if (c < 3)
			fprintf(f, "\t\ttype filter hook %s priority filter; policy accept;\n", chains[c]);
		for (size_t i = 0; i < r->nrules; i++)
			if (strcmp(r->rules[i].chain, chains[c]) == 0)
				text_rule(f, r, &r->rules[i]);
		fputs("\t}\n", f);
	}
	fputs("}\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
