/* policy_nft's plan (policy_nft_plan.h) as libnftnl objects in one batch
 * (lib/nftbatch.h): the whole table, or a change from the plan the kernel
 * holds. The ruleset is drawn at the top of policy_nft.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "nftbatch.h"
#include "policy_nft.h"
#include "policy_nft_plan.h"

/* nft's datatype numbers (nftables src/datatype.h), so `nft list` shows the
 * sets' elements as addresses */
enum { TYPE_IPADDR = 7, TYPE_IP6ADDR = 8 };
#define ELEMS_PER_MSG 256	/* a set's elements per netlink message (nested attributes hold 64 KiB) */
#define ITEMS_MAX (1u << 20)

static const char *const base_chains[] = { "input", "forward", "output" };

/* ---- nftnl objects ----------------------------------------------------------- */

/* Elements of one set for one message, written straight into the batch
 * (nftnl would allocate an object per element: 44,000 of them for issue
 * 16's largest group, and their memory cost more than the kernel's work) */
struct elems {
	char set[40];
	uint32_t set_id;
	int family;
	const struct policy_range *rg;	/* in the plan's pool */
	size_t n;
};

static void add_table(struct nftb *b, uint16_t msg, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (t) {
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, POLICY_NFT_TABLE);
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	}
	nftb_push(b, msg, flags, NFPROTO_INET, NFTB_TABLE, t);
}

static void add_chain(struct nftb *b, const char *name, uint32_t hook, bool base)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, POLICY_NFT_TABLE);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
		if (base) {
			nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
			nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
			nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0);
			nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
		}
	}
	nftb_push(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFPROTO_INET, NFTB_CHAIN, c);
}

static struct nftnl_set *set_new(const char *name, uint32_t id, int family)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s) {
		nftnl_set_set_str(s, NFTNL_SET_TABLE, POLICY_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		nftnl_set_set_u32(s, NFTNL_SET_ID, id);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, family == AF_INET ? TYPE_IPADDR : TYPE_IP6ADDR);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, (uint32_t)pn_alen(family));
	}
	return s;
}

static void elem_put(struct nlmsghdr *nlh, int idx, const uint8_t *key, int n, bool end)
{
	struct nlattr *el = mnl_attr_nest_start(nlh, (uint16_t)idx), *k;

	if (end)
		mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
	k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
	mnl_attr_put(nlh, NFTA_DATA_VALUE, (size_t)n, key);
	mnl_attr_nest_end(nlh, k);
	mnl_attr_nest_end(nlh, el);
}

/* NFT_MSG_NEWSETELEM's attributes, as nftnl_set_elems_nlmsg_build_payload
 * writes them: each range [lo, hi] is an element lo and an interval end
 * hi + 1 (none for a range that reaches the top) */
static void elems_payload(struct nlmsghdr *nlh, const void *obj)
{
	const struct elems *x = obj;
	struct nlattr *list;
	int al = pn_alen(x->family), k = 0;

	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, POLICY_NFT_TABLE);
	mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, x->set);
	mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, htonl(x->set_id));
	list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (size_t i = 0; i < x->n; i++) {
		uint8_t end[16];

		memcpy(end, x->rg[i].hi, 16);
		elem_put(nlh, ++k, x->rg[i].lo, al, false);
		if (pn_addr_inc(end, al))
			elem_put(nlh, ++k, end, al, true);
	}
	mnl_attr_nest_end(nlh, list);
}

/* A named interval set of the ranges; returns its id (0: failed). Named,
 * not anonymous: the kernel finds a set of the same batch by its name with
 * a walk of the table's sets, where an anonymous one costs a walk of the
 * whole transaction per set and per rule bound to it (quadratic: 512 sets
 * took 70 ms of the kernel's time, issue 16's bench). */
static uint32_t add_set(struct nftb *b, const char *name, int family, const struct policy_range *rg, size_t n)
{
	uint32_t id = (uint32_t)nftb_len(b) + 1;	/* unique in the batch */
	struct nftnl_set *s = set_new(name, id, family);

	if (s)
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_CONSTANT | NFT_SET_INTERVAL);
	nftb_push(b, NFT_MSG_NEWSET, NLM_F_CREATE, NFPROTO_INET, NFTB_SET, s);
	for (size_t i = 0; i < n && !b->error; i += ELEMS_PER_MSG / 2) {
		struct elems *x = calloc(1, sizeof(*x));

		if (x) {
			snprintf(x->set, sizeof(x->set), "%s", name);
			x->set_id = id;
			x->family = family;
			x->rg = rg + i;
			x->n = n - i < ELEMS_PER_MSG / 2 ? n - i : ELEMS_PER_MSG / 2;
		}
		nftb_push_raw(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, NFPROTO_INET, x, x ? x->set : NULL,
			      1024 + (x ? x->n : 0) * 2 * 96, elems_payload);
	}
	return b->error ? 0 : id;
}

/* rule expressions: each appends to r (NULL r: nothing) */
static struct nftnl_expr *expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = r ? nftnl_expr_alloc(name) : NULL;

	if (e)
		nftnl_rule_add_expr(r, e);
	return e;
}

static void x_meta(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = expr(r, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
}

static void x_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

static void x_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	}
}

static void x_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = expr(r, "immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
		if (chain)
			nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
}

static void m_meta_u8(struct nftnl_rule *r, uint32_t key, uint8_t v)
{
	x_meta(r, key);
	x_cmp(r, NFT_CMP_EQ, &v, 1);
}

static void m_ifname(struct nftnl_rule *r, bool oif, const char *ifname)
{
	char name[IFNAMSIZ] = { 0 };

	memcpy(name, ifname, strlen(ifname));
	x_meta(r, oif ? NFT_META_OIFNAME : NFT_META_IIFNAME);
	x_cmp(r, NFT_CMP_EQ, name, IFNAMSIZ);
}

static void m_icmp_type(struct nftnl_rule *r, int family, uint8_t type)
{
	m_meta_u8(r, NFT_META_NFPROTO, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
	m_meta_u8(r, NFT_META_L4PROTO, family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	x_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
	x_cmp(r, NFT_CMP_EQ, &type, 1);
}

static void m_ct_established(struct nftnl_rule *r)
{
	uint32_t mask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), zero = 0;
	struct nftnl_expr *e = expr(r, "ct");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	if ((e = expr(r, "bitwise"))) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	}
	x_cmp(r, NFT_CMP_NEQ, &zero, 4);
}

static void m_dport(struct nftnl_rule *r, uint16_t lo, uint16_t hi)
{
	uint16_t l = htons(lo), h = htons(hi);
	struct nftnl_expr *e;

	x_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	if (lo == hi) {
		x_cmp(r, NFT_CMP_EQ, &l, 2);
		return;
	}
	if ((e = expr(r, "range"))) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_RANGE_OP, NFT_RANGE_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_FROM_DATA, &l, 2);
		nftnl_expr_set(e, NFTNL_EXPR_RANGE_TO_DATA, &h, 2);
	}
}

static void m_set(struct nftnl_rule *r, int family, bool src, const char *name, uint32_t set_id)
{
	uint32_t off = family == AF_INET ? (src ? 12 : 16) : (src ? 8 : 24);
	struct nftnl_expr *e;

	m_meta_u8(r, NFT_META_NFPROTO, family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
	x_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, (uint32_t)pn_alen(family));
	if ((e = expr(r, "lookup"))) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, name);
		if (set_id)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	}
}

static void set_comment(struct nftnl_rule *r, const char *text)
{
	struct nftnl_udata_buf *u = r ? nftnl_udata_buf_alloc(64) : NULL;

	if (!u)
		return;
	if (nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, text))
		nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* the rule p of plan r; new_set: its set (if any) goes in first, else it is
 * one already in the kernel (looked up by its name) */
static void add_rule(struct nftb *b, const struct policy_nft *r, const struct pn_rule *p, bool new_set)
{
	struct nftnl_rule *nr;
	uint32_t set_id = 0;

	if (new_set && p->kind == PN_PERMIT && p->nset &&
	    !(set_id = add_set(b, p->set, p->family, &r->pool[p->set_off], p->nset)))
		return;
	if ((nr = nftnl_rule_alloc())) {
		nftnl_rule_set_str(nr, NFTNL_RULE_TABLE, POLICY_NFT_TABLE);
		nftnl_rule_set_str(nr, NFTNL_RULE_CHAIN, p->chain);
		nftnl_rule_set_u32(nr, NFTNL_RULE_FAMILY, NFPROTO_INET);
	}
	switch (p->kind) {
	case PN_JUMP:
		m_ifname(nr, p->oif, r->ifname);
		x_verdict(nr, NFT_JUMP, p->target);
		break;
	case PN_CT:
		m_ct_established(nr);
		x_verdict(nr, NF_ACCEPT, NULL);
		break;
	case PN_ECHO_REPLY:
		m_icmp_type(nr, p->family, p->family == AF_INET ? 0 : 129);	/* RFC 792, RFC 4443 */
		x_verdict(nr, NF_ACCEPT, NULL);
		break;
	case PN_PROBE:
		m_icmp_type(nr, AF_INET, 8);
		x_payload(nr, NFT_PAYLOAD_TRANSPORT_HEADER, 8, POLICY_PROBE_LEN);
		x_cmp(nr, NFT_CMP_EQ, POLICY_PROBE_DATA, POLICY_PROBE_LEN);
		x_verdict(nr, NF_ACCEPT, NULL);
		break;
	case PN_DROP:
		expr(nr, "counter");
		x_verdict(nr, NF_DROP, NULL);
		break;
	case PN_PERMIT:
		if (p->nset)
			m_set(nr, p->family, p->peer_src, p->set, set_id);
		else if (p->family)
			m_meta_u8(nr, NFT_META_NFPROTO, p->family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
		if (p->l4)
			m_meta_u8(nr, NFT_META_L4PROTO, p->l4);
		if (p->plo || p->phi)
			m_dport(nr, p->plo, p->phi);
		expr(nr, "counter");
		x_verdict(nr, NF_ACCEPT, NULL);
		set_comment(nr, p->comment);
		break;
	}
	nftb_push(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFPROTO_INET, NFTB_RULE, nr);
}

static void build(struct nftb *b, const struct policy_nft *r)
{
	static const uint32_t hooks[] = { NF_INET_LOCAL_IN, NF_INET_FORWARD, NF_INET_LOCAL_OUT };

	/* replace any earlier table in the same transaction */
	add_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(b, NFT_MSG_DELTABLE, 0);
	add_table(b, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);
	/* the regular chains first: the base chains' rules jump to them */
	add_chain(b, "inbound", 0, false);
	add_chain(b, "outbound", 0, false);
	for (size_t i = 0; i < 3; i++)
		add_chain(b, base_chains[i], hooks[i], true);
	for (size_t i = 0; i < r->nrules && !b->error; i++)
		add_rule(b, r, &r->rules[i], true);
}

/* does plan a hold p's set (of plan b) with the same elements? */
static bool same_set(const struct policy_nft *a, const struct policy_nft *b, const struct pn_rule *p)
{
	for (size_t i = 0; i < a->nrules; i++) {
		const struct pn_rule *q = &a->rules[i];

		if (q->nset && !strcmp(q->set, p->set))
			return q->nset == p->nset && q->family == p->family &&
			       !memcmp(&a->pool[q->set_off], &b->pool[p->set_off], p->nset * sizeof(*a->pool));
	}
	return false;
}

static void flush_chain(struct nftb *b, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r) {
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, POLICY_NFT_TABLE);
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
		nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	}
	/* a rule without a handle deletes every rule of the chain */
	nftb_push(b, NFT_MSG_DELRULE, 0, NFPROTO_INET, NFTB_RULE, r);
}

/* From old (in the kernel) to r, in one transaction: the rules of the two
 * chains flushed and added again, the sets whose elements changed deleted
 * and made again, the others kept (their elements are most of the work) */
static void build_change(struct nftb *b, const struct policy_nft *old, const struct policy_nft *r)
{
	flush_chain(b, "inbound");
	flush_chain(b, "outbound");
	for (size_t i = 0; i < old->nrules && !b->error; i++) {
		const struct pn_rule *p = &old->rules[i];
		struct nftnl_set *s;

		if (!p->nset || same_set(r, old, p))
			continue;
		if ((s = nftnl_set_alloc())) {
			nftnl_set_set_str(s, NFTNL_SET_TABLE, POLICY_NFT_TABLE);
			nftnl_set_set_str(s, NFTNL_SET_NAME, p->set);
			nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		}
		nftb_push(b, NFT_MSG_DELSET, 0, NFPROTO_INET, NFTB_SET, s);
	}
	for (size_t i = 0; i < r->nrules && !b->error; i++) {
		const struct pn_rule *p = &r->rules[i];

		if (p->kind != PN_JUMP)
			add_rule(b, r, p, !p->nset || !same_set(old, r, p));
	}
}

/* ---- netlink: nftbatch.h ------------------------------------------------------ */

int policy_nft_commit(const struct policy_nft *r, char *err, size_t errlen)
{
	struct nftb b;
	int rc;

	nftb_init(&b, ITEMS_MAX, "policy ruleset items");
	build(&b, r);
	rc = nftb_commit(&b, err, errlen);
	nftb_free(&b);
	return rc;
}

int policy_nft_commit_change(const struct policy_nft *old, const struct policy_nft *r, char *err, size_t errlen)
{
	struct nftb b;
	int rc;

	if (!old || strcmp(old->ifname, r->ifname))
		return policy_nft_commit(r, err, errlen);
	nftb_init(&b, ITEMS_MAX, "policy ruleset items");
	build_change(&b, old, r);
	rc = nftb_commit(&b, err, errlen);
	nftb_free(&b);
	return rc;
}

int policy_nft_remove(char *err, size_t errlen)
{
	struct nftb b;
	int rc;

	nftb_init(&b, 1, "policy table removal");
	add_table(&b, NFT_MSG_DELTABLE, 0);
	rc = nftb_commit(&b, err, errlen);
	nftb_free(&b);
	return rc;
}
