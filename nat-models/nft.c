/* The NAT model rendered to nftables with libnftnl, sent over libmnl as one
 * batch. The ruleset, in nft's notation (WAN = wan_ifname, W = wan_addr,
 * T = udp_timeout; the parts in brackets depend on the model; F is ip or ip6,
 * A ipv4_addr or ipv6_addr, and `ip` below reads `ip6` in the ip6 table):
 *
 *   table F natmesh_nat {
 *     ct timeout udp { protocol udp; l3proto F; policy = { unreplied: T, replied: T } }
 *     map ports   { inet_service : A . inet_service; timeout T }  external port -> inside endpoint
 *     [map mappings { A . inet_service [. A] : inet_service; timeout T }]  EI/AD mapping
 *     [set allowed  { inet_service . A; timeout T }]  AD filtering: ext port . remote address
 *     chain timeout (filter prerouting -150): meta l4proto udp ct state new ct timeout set "udp"
 *     chain dstnat (nat prerouting -100):
 *       [EIF] iifname WAN udp dport dnat ip to udp dport map @ports
 *       [ADF] iifname WAN udp dport . ip saddr @allowed dnat ip to udp dport map @ports
 *       [hairpin] iifname != WAN ip daddr W udp dport @ports meta mark set HAIRPIN dnat ip to udp dport map @ports
 *     chain srcnat (nat postrouting 100):
 *       oifname WAN ip saddr != W meta l4proto != udp masquerade
 *       for S in (oifname WAN ip saddr != W, [hairpin] meta mark HAIRPIN), with meta l4proto udp:
 *         [EI/AD] S snat ip to W : ip saddr . udp sport [. ct original ip daddr] map @mappings
 *         [preserve] S udp sport @ports snat ip to W : LO-HI fully-random (port taken)
 *         [preserve] S snat ip to W
 *         [sequential] S snat ip to W : numgen inc mod (HI-LO+1) offset LO
 *         [random] S snat ip to W : LO-HI fully-random
 *       (LO-HI: the model's port range, default 1024-65535)
 *     chain learn (filter postrouting 110): every outbound UDP packet refreshes
 *       (RFC 4787 REQ-6) @ports, @mappings and @allowed from the conntrack
 *       tuples: `ct original` is the inside view, `ct reply` the outside one.
 *     chain input (filter input 0): iifname WAN meta l4proto udp ct state new drop
 *     chain forward (filter forward 0): iifname WAN ct state new ct status & dnat == 0 drop
 *   }
 *
 * A WAN with an IPv4 and an IPv6 address gets both tables, ip first, in one
 * batch. In the ip6 table an address fills four 32-bit registers, so the
 * registers after it (a port, a key's next field) move up by three (RA()).
 *
 * The input drop matters: unsolicited UDP delivered locally would be
 * confirmed by conntrack, and its tuple would then block the very mapping an
 * inside host later needs for that remote endpoint.
 *
 * Limits: hairpinned packets are not filtered (the filter applies to what
 * arrives on the WAN); a sequential port that clashes with a live conntrack
 * tuple costs that first packet, and the retry takes the next port. */
#include "natmodel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "nftbatch.h"

#define HAIRPIN_MARK 0x4e4d4850u	/* "NMHP" */
#define TIMEOUT_OBJ "udp"

/* nft's datatype numbers (nftables src/datatype.h), so `nft list` shows the
 * sets with their real types; concatenations shift by 6 bits per field. */
enum { TYPE_IPADDR = 7, TYPE_IP6ADDR = 8, TYPE_INET_SERVICE = 13 };
#define CONCAT2(a, b) (((a) << 6) | (b))
#define CONCAT3(a, b, c) (((((a) << 6) | (b)) << 6) | (c))

/* 32-bit registers; a concatenation fills consecutive ones, and an IPv6
 * address four (RA(n): n addresses further on) */
enum { R0 = NFT_REG32_00, R1 };
#define RA(rs, r, n) ((r) + (n) * (rs)->areg)

/* The most items a ruleset holds. The largest model today (endpoint-
 * independent mapping, address-dependent filtering, preserved ports,
 * hairpinning, both families) renders 54; the rest is headroom for what later
 * models add. The batch takes 4 KiB per item. */
#define ITEMS_MAX 256

struct natmodel_ruleset {
	struct nftb b;		/* the objects, in order; its error: the first failure */
	uint16_t family;	/* of the table being built */
	const char *table;
	uint32_t next_set_id;
	/* what the rules need while they are built */
	char wan[IFNAMSIZ];
	uint8_t wan_addr[16];	/* network order, alen bytes */
	uint32_t alen;		/* 4 (ip) or 16 (ip6) */
	uint32_t areg;		/* 32-bit registers an address fills */
	uint32_t ip_type;	/* TYPE_IPADDR or TYPE_IP6ADDR */
};

/* ---- building ------------------------------------------------------------- */

static void build_failed(struct natmodel_ruleset *rs, int rc)
{
	nftb_failed(&rs->b, rc);
}

static void push(struct natmodel_ruleset *rs, uint16_t msg, uint16_t flags, enum nftb_kind kind, void *obj)
{
	nftb_push(&rs->b, msg, flags, rs->family, kind, obj);
}

static struct natmodel_ruleset *ruleset_new(uint16_t family, const char *table)
{
	struct natmodel_ruleset *rs = calloc(1, sizeof(*rs));

	if (rs) {
		nftb_init(&rs->b, ITEMS_MAX, "nat ruleset items");
		rs->family = family;
		rs->table = table;
	}
	return rs;
}

void natmodel_ruleset_free(struct natmodel_ruleset *rs)
{
	if (!rs)
		return;
	nftb_free(&rs->b);
	free(rs);
}

static void add_table(struct natmodel_ruleset *rs, uint16_t msg, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (t) {
		nftnl_table_set_str(t, NFTNL_TABLE_NAME, rs->table);
		nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, rs->family);
	}
	push(rs, msg, flags, NFTB_TABLE, t);
}

static struct nftnl_chain *chain_new(struct natmodel_ruleset *rs, const char *name)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, rs->table);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, rs->family);
	}
	return c;
}

static void add_base_chain(struct natmodel_ruleset *rs, const char *name, const char *type,
			   uint32_t hook, int32_t prio, const char *dev)
{
	struct nftnl_chain *c = chain_new(rs, name);

	if (c) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
		if (dev)
			nftnl_chain_set_str(c, NFTNL_CHAIN_DEV, dev);
	}
	push(rs, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFTB_CHAIN, c);
}

/* a dynamic set (data_len 0) or map with per-element timeouts */
static void add_set(struct natmodel_ruleset *rs, const char *name, uint32_t key_type, uint32_t key_len,
		    uint32_t data_type, uint32_t data_len, uint32_t timeout_s)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (s) {
		uint32_t flags = NFT_SET_TIMEOUT | NFT_SET_EVAL | (data_len ? NFT_SET_MAP : 0);
		nftnl_set_set_str(s, NFTNL_SET_TABLE, rs->table);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, rs->family);
		nftnl_set_set_u32(s, NFTNL_SET_ID, ++rs->next_set_id);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, key_type);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, key_len);
		if (data_len) {
			nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, data_type);
			nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, data_len);
		}
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
		nftnl_set_set_u64(s, NFTNL_SET_TIMEOUT, (uint64_t)timeout_s * 1000);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65535);
	}
	push(rs, NFT_MSG_NEWSET, NLM_F_CREATE, NFTB_SET, s);
}

static uint32_t set_id(const struct natmodel_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < nftb_len(&rs->b); i++) {
		const struct nftb_item *it = nftb_item(&rs->b, i);
		if (it->kind == NFTB_SET && it->family == rs->family &&
		    !strcmp(nftnl_set_get_str(it->obj, NFTNL_SET_NAME), name))
			return nftnl_set_get_u32(it->obj, NFTNL_SET_ID);
	}
	return 0;
}

static void add_ct_timeout(struct natmodel_ruleset *rs, uint32_t timeout_s)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	uint32_t policy[NFTNL_CTTIMEOUT_ARRAY_MAX] = { 0 };

	policy[NFTNL_CTTIMEOUT_UDP_UNREPLIED] = timeout_s;
	policy[NFTNL_CTTIMEOUT_UDP_REPLIED] = timeout_s;
	if (o) {
		nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, rs->table);
		nftnl_obj_set_str(o, NFTNL_OBJ_NAME, TIMEOUT_OBJ);
		nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, rs->family);
		nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_CT_TIMEOUT);
		nftnl_obj_set_u16(o, NFTNL_OBJ_CT_TIMEOUT_L3PROTO, rs->family);
		nftnl_obj_set_u8(o, NFTNL_OBJ_CT_TIMEOUT_L4PROTO, IPPROTO_UDP);
		nftnl_obj_set_data(o, NFTNL_OBJ_CT_TIMEOUT_ARRAY, policy, sizeof(policy));
	}
	push(rs, NFT_MSG_NEWOBJ, NLM_F_CREATE, NFTB_OBJ, o);
}

/* ---- rule expressions: each appends to r, or marks r broken (NULL expr) */

struct rb {
	struct natmodel_ruleset *rs;
	struct nftnl_rule *r;
};

static struct rb rule_new(struct natmodel_ruleset *rs, const char *chain)
{
	struct rb b = { rs, nftnl_rule_alloc() };

	if (b.r) {
		nftnl_rule_set_str(b.r, NFTNL_RULE_TABLE, rs->table);
		nftnl_rule_set_str(b.r, NFTNL_RULE_CHAIN, chain);
		nftnl_rule_set_u32(b.r, NFTNL_RULE_FAMILY, rs->family);
	}
	return b;
}

static void rule_add(struct rb *b)
{
	push(b->rs, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFTB_RULE, b->r);
	b->r = NULL;
}

static struct nftnl_expr *expr(struct rb *b, const char *name)
{
	struct nftnl_expr *e = b->r ? nftnl_expr_alloc(name) : NULL;

	if (e)
		nftnl_rule_add_expr(b->r, e);
	else
		build_failed(b->rs, -ENOMEM);
	return e;
}

static void x_meta(struct rb *b, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr(b, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
}

static void x_meta_set(struct rb *b, uint32_t key, uint32_t sreg)
{
	struct nftnl_expr *e = expr(b, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, sreg);
	}
}

static void x_cmp(struct rb *b, uint32_t sreg, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(b, "cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

static void x_payload(struct rb *b, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = expr(b, "payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
}

/* dir < 0: a key without direction (state, status, direction) */
static void x_ct(struct rb *b, uint32_t key, int dir, uint32_t dreg)
{
	struct nftnl_expr *e = expr(b, "ct");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
		if (dir >= 0)
			nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, (uint8_t)dir);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	}
}

/* reg = (reg & mask) ^ 0, 4 bytes */
static void x_and(struct rb *b, uint32_t reg, uint32_t mask)
{
	struct nftnl_expr *e = expr(b, "bitwise");
	uint32_t zero = 0;
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	}
}

static void x_imm(struct rb *b, uint32_t dreg, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(b, "immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
	}
}

static void x_verdict(struct rb *b, int verdict)
{
	struct nftnl_expr *e = expr(b, "immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
}

/* dreg 0: a plain membership test */
static void x_lookup(struct rb *b, uint32_t sreg, const char *set, uint32_t dreg)
{
	struct nftnl_expr *e = expr(b, "lookup");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id(b->rs, set));
		if (dreg)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	}
}

/* add the key (and data) to set, or refresh its timeout (RFC 4787 REQ-6) */
static void x_update(struct rb *b, const char *set, uint32_t sreg_key, uint32_t sreg_data)
{
	struct nftnl_expr *e = expr(b, "dynset");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
		nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SET_ID, set_id(b->rs, set));
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg_key);
		if (sreg_data)
			nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_DATA, sreg_data);
	}
}

/* snat/dnat to the address in reg_addr, the port range in reg_pmin..reg_pmax
 * (0: none) */
static void x_nat(struct rb *b, uint32_t type, uint32_t reg_addr, uint32_t reg_pmin, uint32_t reg_pmax,
		  uint32_t flags)
{
	struct nftnl_expr *e = expr(b, "nat");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, type);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, b->rs->family);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, reg_addr);
		flags |= NF_NAT_RANGE_MAP_IPS;
		if (reg_pmin) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_pmin);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, reg_pmax);
			flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
		}
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, flags);
	}
}

static void x_masq(struct rb *b)
{
	expr(b, "masq");
}

static void x_numgen(struct rb *b, uint32_t type, uint32_t mod, uint32_t offset, uint32_t dreg)
{
	struct nftnl_expr *e = expr(b, "numgen");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, type);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, mod);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, dreg);
	}
}

/* host to network order of the len bytes in reg, size-byte words */
static void x_hton(struct rb *b, uint32_t reg, uint32_t len, uint32_t size)
{
	struct nftnl_expr *e = expr(b, "byteorder");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, size);
	}
}

static void x_objref(struct rb *b, uint32_t type, const char *name)
{
	struct nftnl_expr *e = expr(b, "objref");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, type);
		nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, name);
	}
}

/* ---- matches built from the expressions ----------------------------------- */

static void m_ifname(struct rb *b, uint32_t key, uint32_t op)
{
	x_meta(b, key, R0);
	x_cmp(b, R0, op, b->rs->wan, IFNAMSIZ);
}

static void m_udp(struct rb *b, bool is_udp)
{
	uint8_t proto = IPPROTO_UDP;
	x_meta(b, NFT_META_L4PROTO, R0);
	x_cmp(b, R0, is_udp ? NFT_CMP_EQ : NFT_CMP_NEQ, &proto, 1);
}

/* the source or destination address of the IPv4 (offset 12, 16) or IPv6
 * (8, 24) header */
static void x_addr(struct rb *b, bool src, uint32_t dreg)
{
	uint32_t off = b->rs->alen == 4 ? (src ? 12 : 16) : (src ? 8 : 24);
	x_payload(b, NFT_PAYLOAD_NETWORK_HEADER, off, b->rs->alen, dreg);
}

/* the conntrack tuple's source or destination address, in the table's family */
static uint32_t ct_ip(const struct natmodel_ruleset *rs, bool src)
{
	if (rs->alen == 4)
		return src ? NFT_CT_SRC_IP : NFT_CT_DST_IP;
	return src ? NFT_CT_SRC_IP6 : NFT_CT_DST_IP6;
}

/* ip/ip6 saddr or daddr compared with the WAN address */
static void m_wan_addr(struct rb *b, bool src, uint32_t op)
{
	x_addr(b, src, R0);
	x_cmp(b, R0, op, b->rs->wan_addr, b->rs->alen);
}

static void m_ct_bit(struct rb *b, uint32_t key, uint32_t bit, uint32_t op)
{
	uint32_t zero = 0;
	x_ct(b, key, -1, R0);
	x_and(b, R0, bit);
	x_cmp(b, R0, op, &zero, 4);
}

static void m_ct_dir(struct rb *b, uint8_t dir)
{
	x_ct(b, NFT_CT_DIRECTION, -1, R0);
	x_cmp(b, R0, NFT_CMP_EQ, &dir, 1);
}

static void m_mark(struct rb *b)
{
	uint32_t mark = HAIRPIN_MARK;
	x_meta(b, NFT_META_MARK, R0);
	x_cmp(b, R0, NFT_CMP_EQ, &mark, 4);
}

/* the traffic the srcnat chain translates: out of the WAN, or hairpinned */
enum sel { SEL_WAN, SEL_HAIRPIN };

static void m_sel(struct rb *b, enum sel s)
{
	if (s == SEL_WAN) {
		m_ifname(b, NFT_META_OIFNAME, NFT_CMP_EQ);
		m_wan_addr(b, true, NFT_CMP_NEQ);
	} else {
		m_mark(b);
	}
	m_udp(b, true);
}

/* R1 = W; the registers after it (P = RA(R1, 1)) hold ports or keys */
static void imm_wan(struct rb *b)
{
	x_imm(b, R1, b->rs->wan_addr, b->rs->alen);
}

static void snat_range_random(struct rb *b, const struct natmodel *m)
{
	uint16_t lo = htons(m->port_min), hi = htons(m->port_max);
	uint32_t P = RA(b->rs, R1, 1);
	imm_wan(b);
	x_imm(b, P, &lo, 2);
	x_imm(b, P + 1, &hi, 2);
	x_nat(b, NFT_NAT_SNAT, R1, P, P + 1, NF_NAT_RANGE_PROTO_RANDOM_FULLY);
}

static void srcnat_rules(struct natmodel_ruleset *rs, const struct natmodel *m, enum sel s)
{
	uint32_t P = RA(rs, R1, 1);	/* after W */
	struct rb b;

	if (m->mapping != NATMODEL_APD) {
		/* the inside endpoint's existing mapping (RFC 4787 4.1: EIM, ADM);
		 * key saddr . sport [. daddr] from P, the port it maps to into P */
		b = rule_new(rs, "srcnat");
		m_sel(&b, s);
		imm_wan(&b);
		x_addr(&b, true, P);
		x_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, RA(rs, P, 1));
		if (m->mapping == NATMODEL_AD)
			x_ct(&b, ct_ip(rs, false), IP_CT_DIR_ORIGINAL, RA(rs, P, 1) + 1);
		x_lookup(&b, P, "mappings", P);
		x_nat(&b, NFT_NAT_SNAT, R1, P, P, 0);
		rule_add(&b);
	}
	switch (m->ports) {
	case NATMODEL_PORTS_PRESERVE:
		/* RFC 4787 REQ-1: no port overloading once another inside
		 * endpoint holds this port as its mapping */
		b = rule_new(rs, "srcnat");
		m_sel(&b, s);
		x_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, R0);
		x_lookup(&b, R0, "ports", 0);
		snat_range_random(&b, m);
		rule_add(&b);
		b = rule_new(rs, "srcnat");
		m_sel(&b, s);
		imm_wan(&b);
		x_nat(&b, NFT_NAT_SNAT, R1, 0, 0, 0);
		rule_add(&b);
		break;
	case NATMODEL_PORTS_SEQUENTIAL:
		b = rule_new(rs, "srcnat");
		m_sel(&b, s);
		imm_wan(&b);
		x_numgen(&b, NFT_NG_INCREMENTAL, (uint32_t)(m->port_max - m->port_min + 1), m->port_min, P);
		/* numgen writes host order; nat reads the port in network order */
		x_hton(&b, P, 2, 2);
		x_nat(&b, NFT_NAT_SNAT, R1, P, P, 0);
		rule_add(&b);
		break;
	case NATMODEL_PORTS_RANDOM:
		b = rule_new(rs, "srcnat");
		m_sel(&b, s);
		snat_range_random(&b, m);
		rule_add(&b);
		break;
	}
}

/* Refresh or learn the sets from one outbound packet. For an outbound flow
 * (direction original, snat) the inside endpoint is the original source and
 * the external port the reply destination; for an inbound flow (direction
 * reply, dnat) it is the other way round. */
static void learn_rule(struct natmodel_ruleset *rs, const struct natmodel *m, bool outbound)
{
	int in_dir = outbound ? IP_CT_DIR_ORIGINAL : IP_CT_DIR_REPLY;
	int ex_dir = outbound ? IP_CT_DIR_REPLY : IP_CT_DIR_ORIGINAL;
	/* the remote address: where an outbound flow went, where an inbound came from */
	uint32_t remote_key = ct_ip(rs, !outbound);
	int remote_dir = IP_CT_DIR_ORIGINAL;
	/* registers: R1 inside address, then its port, the remote address, and
	 * the external port as the data of @mappings */
	uint32_t port = RA(rs, R1, 1), remote = port + 1, data = RA(rs, remote, 1);
	struct rb b = rule_new(rs, "learn");

	m_udp(&b, true);
	m_ct_dir(&b, outbound ? IP_CT_DIR_ORIGINAL : IP_CT_DIR_REPLY);
	m_ct_bit(&b, NFT_CT_STATUS, outbound ? IPS_SRC_NAT : IPS_DST_NAT, NFT_CMP_NEQ);
	if (!outbound)
		m_ifname(&b, NFT_META_OIFNAME, NFT_CMP_EQ);

	/* ports: external port -> inside address . port */
	x_ct(&b, NFT_CT_PROTO_DST, ex_dir, R0);
	x_ct(&b, ct_ip(rs, true), in_dir, R1);
	x_ct(&b, NFT_CT_PROTO_SRC, in_dir, port);
	x_update(&b, "ports", R0, R1);
	if (m->mapping != NATMODEL_APD) {
		/* mappings: inside address . port [. remote address] -> external port */
		x_ct(&b, ct_ip(rs, true), in_dir, R1);
		x_ct(&b, NFT_CT_PROTO_SRC, in_dir, port);
		if (m->mapping == NATMODEL_AD)
			x_ct(&b, remote_key, remote_dir, remote);
		x_ct(&b, NFT_CT_PROTO_DST, ex_dir, data);
		x_update(&b, "mappings", R1, data);
	}
	if (m->filtering == NATMODEL_AD) {
		/* allowed: external port . remote address */
		x_ct(&b, NFT_CT_PROTO_DST, ex_dir, R0);
		x_ct(&b, remote_key, remote_dir, R1);
		x_update(&b, "allowed", R0, 0);
	}
	rule_add(&b);
}

static void dnat_to_ports(struct rb *b)
{
	x_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R0);
	/* the data: inside address from R1, then its port */
	x_lookup(b, R0, "ports", R1);
	x_nat(b, NFT_NAT_DNAT, R1, RA(b->rs, R1, 1), RA(b->rs, R1, 1), 0);
}

static int wan_name(const char *ifname, char out[IFNAMSIZ], struct natmodel_error *err)
{
	size_t n = ifname ? strlen(ifname) : 0;

	if (n == 0 || n >= IFNAMSIZ) {
		if (err) {
			snprintf(err->field, sizeof(err->field), "wan");
			snprintf(err->reason, sizeof(err->reason),
				 "interface name must have 1..%d characters", IFNAMSIZ - 1);
		}
		return -EINVAL;
	}
	memset(out, 0, IFNAMSIZ);
	memcpy(out, ifname, n);
	return 0;
}

/* the family whose table the next objects belong to */
static void ruleset_family(struct natmodel_ruleset *rs, uint16_t family, const void *wan_addr)
{
	rs->family = family;
	rs->alen = family == NFPROTO_IPV6 ? 16 : 4;
	rs->areg = rs->alen / 4;
	rs->ip_type = family == NFPROTO_IPV6 ? TYPE_IP6ADDR : TYPE_IPADDR;
	memset(rs->wan_addr, 0, sizeof(rs->wan_addr));
	if (wan_addr)
		memcpy(rs->wan_addr, wan_addr, rs->alen);
}

/* one family's table: the same chains and rules for ip and ip6, with the
 * addresses, their registers and the sets' types of that family */
static void render_table(struct natmodel_ruleset *rs, const struct natmodel *m)
{
	uint32_t T = m->udp_timeout, mark = HAIRPIN_MARK;
	uint32_t A = rs->ip_type, alen = rs->alen;
	/* a concatenation pads each field to 4 bytes: the port takes 4 */
	uint32_t ep_len = alen + 4;
	struct rb b;

	/* replace any earlier table in the same transaction */
	add_table(rs, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(rs, NFT_MSG_DELTABLE, 0);
	add_table(rs, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL);

	add_ct_timeout(rs, T);
	add_set(rs, "ports", TYPE_INET_SERVICE, 2, CONCAT2(A, TYPE_INET_SERVICE), ep_len, T);
	if (m->mapping == NATMODEL_EI)
		add_set(rs, "mappings", CONCAT2(A, TYPE_INET_SERVICE), ep_len, TYPE_INET_SERVICE, 2, T);
	else if (m->mapping == NATMODEL_AD)
		add_set(rs, "mappings", CONCAT3(A, TYPE_INET_SERVICE, A), ep_len + alen,
			TYPE_INET_SERVICE, 2, T);
	if (m->filtering == NATMODEL_AD)
		add_set(rs, "allowed", CONCAT2(TYPE_INET_SERVICE, A), 4 + alen, 0, 0, T);

	add_base_chain(rs, "timeout", "filter", NF_INET_PRE_ROUTING, NF_IP_PRI_MANGLE, NULL);
	add_base_chain(rs, "dstnat", "nat", NF_INET_PRE_ROUTING, NF_IP_PRI_NAT_DST, NULL);
	add_base_chain(rs, "srcnat", "nat", NF_INET_POST_ROUTING, NF_IP_PRI_NAT_SRC, NULL);
	add_base_chain(rs, "learn", "filter", NF_INET_POST_ROUTING, NF_IP_PRI_NAT_SRC + 10, NULL);
	add_base_chain(rs, "input", "filter", NF_INET_LOCAL_IN, NF_IP_PRI_FILTER, NULL);
	add_base_chain(rs, "forward", "filter", NF_INET_FORWARD, NF_IP_PRI_FILTER, NULL);

	/* the mapping timeout is the conntrack timeout (RFC 4787 4.3) */
	b = rule_new(rs, "timeout");
	m_udp(&b, true);
	m_ct_bit(&b, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW), NFT_CMP_NEQ);
	x_objref(&b, NFT_OBJECT_CT_TIMEOUT, TIMEOUT_OBJ);
	rule_add(&b);

	/* filtering (RFC 4787 5): APD is conntrack itself, no rule */
	if (m->filtering != NATMODEL_APD) {
		b = rule_new(rs, "dstnat");
		m_ifname(&b, NFT_META_IIFNAME, NFT_CMP_EQ);
		m_udp(&b, true);
		if (m->filtering == NATMODEL_AD) {
			x_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R0);
			x_addr(&b, true, R1);
			x_lookup(&b, R0, "allowed", 0);
		}
		dnat_to_ports(&b);
		rule_add(&b);
	}
	if (m->hairpinning) {
		/* RFC 4787 6, REQ-9: inside to an external mapping */
		b = rule_new(rs, "dstnat");
		m_ifname(&b, NFT_META_IIFNAME, NFT_CMP_NEQ);
		m_wan_addr(&b, false, NFT_CMP_EQ);
		m_udp(&b, true);
		x_payload(&b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R0);
		x_lookup(&b, R0, "ports", 0);
		x_imm(&b, R0, &mark, 4);
		x_meta_set(&b, NFT_META_MARK, R0);
		dnat_to_ports(&b);
		rule_add(&b);
	}

	b = rule_new(rs, "srcnat");
	m_ifname(&b, NFT_META_OIFNAME, NFT_CMP_EQ);
	m_wan_addr(&b, true, NFT_CMP_NEQ);
	m_udp(&b, false);
	x_masq(&b);
	rule_add(&b);
	srcnat_rules(rs, m, SEL_WAN);
	if (m->hairpinning)
		srcnat_rules(rs, m, SEL_HAIRPIN);	/* REQ-9: source is the external mapping */

	learn_rule(rs, m, true);
	if (m->filtering != NATMODEL_APD)
		learn_rule(rs, m, false);

	b = rule_new(rs, "input");
	m_ifname(&b, NFT_META_IIFNAME, NFT_CMP_EQ);
	m_udp(&b, true);
	m_ct_bit(&b, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW), NFT_CMP_NEQ);
	x_verdict(&b, NF_DROP);
	rule_add(&b);

	b = rule_new(rs, "forward");
	m_ifname(&b, NFT_META_IIFNAME, NFT_CMP_EQ);
	m_ct_bit(&b, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW), NFT_CMP_NEQ);
	m_ct_bit(&b, NFT_CT_STATUS, IPS_DST_NAT, NFT_CMP_EQ);
	x_verdict(&b, NF_DROP);
	rule_add(&b);
}

int natmodel_render(const struct natmodel *m, const char *wan_ifname, const struct natmodel_wan *wan,
		    struct natmodel_ruleset **out, struct natmodel_error *err)
{
	struct natmodel_ruleset *rs;
	int rc;

	*out = NULL;
	rc = natmodel_check(m, err);
	if (rc < 0)
		return rc;
	if (!wan->has_v4 && !wan->has_v6) {
		if (err) {
			snprintf(err->field, sizeof(err->field), "wan");
			snprintf(err->reason, sizeof(err->reason), "no external address (IPv4 or IPv6)");
		}
		return -EINVAL;
	}
	rs = ruleset_new(NFPROTO_IPV4, NATMODEL_TABLE);
	if (!rs)
		return -ENOMEM;
	rc = wan_name(wan_ifname, rs->wan, err);
	if (rc < 0)
		goto fail;
	if (wan->has_v4) {
		ruleset_family(rs, NFPROTO_IPV4, &wan->v4);
		render_table(rs, m);
	}
	if (wan->has_v6) {
		ruleset_family(rs, NFPROTO_IPV6, &wan->v6);
		render_table(rs, m);
	}
	if (rs->b.error) {
		rc = rs->b.error;
		goto fail;
	}
	*out = rs;
	return 0;
fail:
	natmodel_ruleset_free(rs);
	return rc;
}

/* ---- text form and netlink: nftbatch.h ----------------------------------- */

char *natmodel_ruleset_describe(const struct natmodel_ruleset *rs)
{
	return nftb_describe(&rs->b);
}

static int syserr(struct natmodel_error *err, const char *what, int rc)
{
	if (err) {
		err->field[0] = '\0';
		snprintf(err->reason, sizeof(err->reason), "%s: %s", what, strerror(-rc));
	}
	return rc;
}

int natmodel_ruleset_commit(const struct natmodel_ruleset *rs, struct natmodel_error *err)
{
	char reason[sizeof(err->reason)];
	int rc = nftb_commit(&rs->b, reason, sizeof(reason));

	if (rc < 0 && err) {
		err->field[0] = '\0';
		memcpy(err->reason, reason, sizeof(reason));
	}
	return rc;
}

/* the first IPv4 and the first global IPv6 address of ifname (link-local
 * addresses are not an external address: they are not routed) */
static int wan_lookup(const char *ifname, struct natmodel_wan *out, struct natmodel_error *err)
{
	struct ifaddrs *ifa, *i;

	*out = (struct natmodel_wan){ 0 };
	if (getifaddrs(&ifa) < 0)
		return syserr(err, "getifaddrs", -errno);
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || strcmp(i->ifa_name, ifname))
			continue;
		if (i->ifa_addr->sa_family == AF_INET && !out->has_v4) {
			out->v4 = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			out->has_v4 = true;
		} else if (i->ifa_addr->sa_family == AF_INET6 && !out->has_v6) {
			const struct in6_addr *a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_MULTICAST(a))
				continue;
			out->v6 = *a;
			out->has_v6 = true;
		}
	}
	freeifaddrs(ifa);
	if (!out->has_v4 && !out->has_v6) {
		if (err) {
			snprintf(err->field, sizeof(err->field), "wan");
			snprintf(err->reason, sizeof(err->reason),
				 "%s has no IPv4 address and no global IPv6 one in this namespace", ifname);
		}
		return -EADDRNOTAVAIL;
	}
	return 0;
}

/* a table of this family from an earlier apply goes, in the same batch */
static void drop_table(struct natmodel_ruleset *rs, uint16_t family)
{
	ruleset_family(rs, family, NULL);
	add_table(rs, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_table(rs, NFT_MSG_DELTABLE, 0);
}

int natmodel_apply(const struct natmodel *m, const char *wan_ifname, const struct natmodel_wan *wan,
		   struct natmodel_error *err)
{
	struct natmodel_ruleset *rs;
	char name[IFNAMSIZ];
	struct natmodel_wan w;
	int rc;

	if (wan)
		w = *wan;
	else if ((rc = wan_name(wan_ifname, name, err)) < 0 || (rc = wan_lookup(wan_ifname, &w, err)) < 0)
		return rc;
	rc = natmodel_render(m, wan_ifname, &w, &rs, err);
	if (rc < 0)
		return rc == -ENOMEM || rc == -ENOSPC ? syserr(err, "ruleset", rc) : rc;
	if (!w.has_v4)
		drop_table(rs, NFPROTO_IPV4);
	if (!w.has_v6)
		drop_table(rs, NFPROTO_IPV6);
	rc = rs->b.error ? syserr(err, "ruleset", rs->b.error) : natmodel_ruleset_commit(rs, err);
	natmodel_ruleset_free(rs);
	return rc;
}

static int remove_family(uint16_t family, struct natmodel_error *err)
{
	struct natmodel_ruleset *rs = ruleset_new(family, NATMODEL_TABLE);
	int rc;

	if (!rs)
		return syserr(err, "ruleset", -ENOMEM);
	add_table(rs, NFT_MSG_DELTABLE, 0);
	rc = rs->b.error ? syserr(err, "ruleset", rs->b.error) : natmodel_ruleset_commit(rs, err);
	natmodel_ruleset_free(rs);
	return rc;
}

int natmodel_remove(struct natmodel_error *err)
{
	int rc4 = remove_family(NFPROTO_IPV4, err);

	if (rc4 < 0 && rc4 != -ENOENT)
		return rc4;
	int rc6 = remove_family(NFPROTO_IPV6, err);
	if (rc6 < 0 && rc6 != -ENOENT)
		return rc6;
	/* -ENOENT, with the kernel's words in err, only when there was neither */
	return rc4 == 0 || rc6 == 0 ? 0 : -ENOENT;
}

int natmodel_loss_apply(const char *ifname, unsigned int percent, struct natmodel_error *err)
{
	struct natmodel_ruleset *rs;
	char chain[IFNAMSIZ + 8];
	uint32_t pct_be = htonl(percent);
	struct rb b;
	int rc;

	if (percent > 100) {
		if (err) {
			snprintf(err->field, sizeof(err->field), "percent");
			snprintf(err->reason, sizeof(err->reason), "%u is out of range 0..100", percent);
		}
		return -EINVAL;
	}
	rs = ruleset_new(NFPROTO_NETDEV, NATMODEL_LOSS_TABLE);
	if (!rs)
		return syserr(err, "ruleset", -ENOMEM);
	rc = wan_name(ifname, rs->wan, err);
	if (rc < 0) {
		if (err)
			snprintf(err->field, sizeof(err->field), "ifname");
		goto out;
	}
	snprintf(chain, sizeof(chain), "in-%s", ifname);

	add_table(rs, NFT_MSG_NEWTABLE, NLM_F_CREATE);
	add_base_chain(rs, chain, "filter", NF_NETDEV_INGRESS, 0, ifname);
	/* flush: a rule without handle deletes every rule of the chain */
	b = rule_new(rs, chain);
	push(rs, NFT_MSG_DELRULE, 0, NFTB_RULE, b.r);
	if (percent > 0) {
		b = rule_new(rs, chain);
		x_numgen(&b, NFT_NG_RANDOM, 100, 0, R0);
		x_hton(&b, R0, 4, 4);	/* cmp lt compares bytes, so big-endian */
		x_cmp(&b, R0, NFT_CMP_LT, &pct_be, 4);
		x_verdict(&b, NF_DROP);
		rule_add(&b);
	} else {
		struct nftnl_chain *c = chain_new(rs, chain);
		push(rs, NFT_MSG_DELCHAIN, 0, NFTB_CHAIN, c);
	}
	rc = rs->b.error ? syserr(err, "ruleset", rs->b.error) : natmodel_ruleset_commit(rs, err);
out:
	natmodel_ruleset_free(rs);
	return rc;
}
