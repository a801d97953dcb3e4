/* The model rendered into nftnl objects, checked through their text form
 * (the notation of `nft --debug=netlink`). No netlink: tests/netns/nat_presets.sh
 * applies the same rulesets in namespaces and probes their behaviour. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nat-models/natmodel.h"

#define WAN0 "0x306e6177 0x00000000 0x00000000 0x00000000"	/* "wan0" */
#define W "0x017100cb"						/* 203.0.113.1 */

/* addr: an IPv4 address, an IPv6 address, or "IPV4,IPV6" for both tables */
static char *render(const char *spec, const char *wan, const char *addr)
{
	struct natmodel m;
	struct natmodel_error err = { "", "" };
	struct natmodel_ruleset *rs;
	struct natmodel_wan a = { 0 };
	const char *comma = strchr(addr, ',');
	char v4[INET_ADDRSTRLEN] = "";
	char *text;

	cr_assert_eq(natmodel_parse(spec, &m, &err), 0, "%s: %s", spec, err.reason);
	if (comma) {
		cr_assert_lt((size_t)(comma - addr), sizeof(v4));
		memcpy(v4, addr, (size_t)(comma - addr));
		v4[comma - addr] = '\0';
		a.has_v4 = inet_pton(AF_INET, v4, &a.v4) == 1;
		a.has_v6 = inet_pton(AF_INET6, comma + 1, &a.v6) == 1;
		cr_assert(a.has_v4 && a.has_v6, "%s", addr);
	} else {
		a.has_v4 = inet_pton(AF_INET, addr, &a.v4) == 1;
		a.has_v6 = !a.has_v4 && inet_pton(AF_INET6, addr, &a.v6) == 1;
		cr_assert(a.has_v4 || a.has_v6, "%s", addr);
	}
	cr_assert_eq(natmodel_render(&m, wan, &a, &rs, &err), 0, "%s: %s", spec, err.reason);
	text = natmodel_ruleset_describe(rs);
	cr_assert_not_null(text);
	natmodel_ruleset_free(rs);
	return text;
}

/* the rules of one chain: each its "add rule:" line and expressions */
struct rules {
	int n;
	char r[16][4096];
};

/* family: "ip" or "ip6" */
static void chain_rules(const char *text, const char *family, const char *chain, struct rules *out)
{
	char head[96];
	const char *p = text;

	snprintf(head, sizeof(head), "add rule: %s natmesh_nat %s\n", family, chain);
	out->n = 0;
	while ((p = strstr(p, head))) {
		const char *end = strstr(p + 1, "\nadd ");
		size_t len = end ? (size_t)(end - p) : strlen(p);
		cr_assert_lt(out->n, 16);
		cr_assert_lt(len, sizeof(out->r[0]));
		memcpy(out->r[out->n], p, len);
		out->r[out->n++][len] = '\0';
		p += len;
	}
}

/* the index of the first rule containing every needle, or -1 */
static int find_rule(const struct rules *rs, const char *const *needles)
{
	for (int i = 0; i < rs->n; i++) {
		bool all = true;
		for (const char *const *n = needles; *n; n++)
			all = all && strstr(rs->r[i], *n);
		if (all)
			return i;
	}
	return -1;
}
#define HAS_RULE(rs, ...) (find_rule((rs), (const char *const[]){ __VA_ARGS__, NULL }) >= 0)

Test(render, one_batch_replaces_the_table)
{
	char *t = render("full-cone", "wan0", "203.0.113.1");

	cr_expect(!strncmp(t, "add table: table natmesh_nat ip", 31), "%.80s", t);
	const char *del = strstr(t, "\ndelete table: table natmesh_nat ip");
	const char *add2 = del ? strstr(del, "\nadd table: table natmesh_nat ip") : NULL;
	const char *obj = strstr(t, "\nadd obj:"), *set = strstr(t, "\nadd set:");
	const char *chain = strstr(t, "\nadd chain:"), *rule = strstr(t, "\nadd rule:");
	cr_assert(del && add2 && obj && set && chain && rule);
	cr_expect(add2 < obj && obj < set && set < chain && chain < rule, "objects before the rules using them");
	cr_expect_null(strstr(rule, "\nadd table"));
	cr_expect_null(strstr(rule, "\nadd chain"));
	free(t);
}

struct preset_case {
	const char *spec;
	int dstnat_rules;	/* filtering: EIF 1, ADF 1 (with @allowed), APDF 0 */
	bool allowed;		/* the ADF set */
	bool mappings;		/* the EIM/ADM map */
	int learn_rules;	/* outbound, plus inbound flows when filtering lets them in */
};

Test(render, filtering_and_mapping_per_preset)
{
	static const struct preset_case cases[] = {
		{ "full-cone", 1, false, true, 2 },
		{ "restricted-cone", 1, true, true, 2 },
		{ "port-restricted-cone", 0, false, true, 1 },
		{ "symmetric", 0, false, false, 1 },
		{ "{\"preset\":\"symmetric\",\"filtering\":\"endpoint-independent\"}", 1, false, false, 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct preset_case *c = &cases[i];
		char *t = render(c->spec, "wan0", "203.0.113.1");
		struct rules dst, learn, src;

		chain_rules(t, "ip", "dstnat", &dst);
		chain_rules(t, "ip", "learn", &learn);
		chain_rules(t, "ip", "srcnat", &src);
		cr_expect_eq(dst.n, c->dstnat_rules, "%s: dstnat rules", c->spec);
		cr_expect_eq(learn.n, c->learn_rules, "%s: learn rules", c->spec);
		cr_expect_eq(strstr(t, "add set: allowed natmesh_nat key_type 839 key_len 8 data_type 0 data_len 0") != NULL,
			     c->allowed, "%s: allowed set", c->spec);
		cr_expect_eq(strstr(t, "add set: mappings natmesh_nat key_type 461 key_len 8 data_type 13 data_len 2") != NULL,
			     c->mappings, "%s: mappings map", c->spec);
		cr_expect(strstr(t, "add set: ports natmesh_nat key_type 13 key_len 2 data_type 461 data_len 8 flags 0x38"),
			  "%s: ports map", c->spec);
		if (c->dstnat_rules) {
			/* inbound on the WAN, dnat to the learnt inside endpoint */
			cr_expect(HAS_RULE(&dst, "cmp eq reg 8 " WAN0,
					   "[ payload load 2b @ transport header + 2 => reg 8 ]",
					   "[ lookup reg 8 set ports dreg 9 ]",
					   "[ nat dnat ip addr_min reg 9 addr_max reg 9 proto_min reg 10 proto_max reg 10"),
				  "%s:\n%s", c->spec, dst.r[0]);
			cr_expect_eq(HAS_RULE(&dst, "[ payload load 4b @ network header + 12 => reg 9 ]",
					      "[ lookup reg 8 set allowed ]"), c->allowed, "%s", c->spec);
		}
		/* the inside endpoint's mapping is reused before any allocation */
		cr_expect_eq(HAS_RULE(&src, "[ lookup reg 10 set mappings dreg 10 ]",
				      "[ nat snat ip addr_min reg 9 addr_max reg 9 proto_min reg 10 proto_max reg 10 flags 0x3 ]"),
			     c->mappings, "%s", c->spec);
		/* outbound packets learn the external port -> inside endpoint */
		cr_expect(HAS_RULE(&learn, "[ ct load direction => reg 8 ]\n  [ cmp eq reg 8 0x00000000 ]",
				   "[ ct load proto_dst => reg 8 , dir reply ]",
				   "[ ct load src_ip => reg 9 , dir original ]",
				   "[ ct load proto_src => reg 10 , dir original ]",
				   "[ dynset update reg_key 8 set ports sreg_data 9 ]"), "%s", c->spec);
		/* other protocols: Linux's default masquerade; unsolicited UDP dropped */
		cr_expect(HAS_RULE(&src, "[ cmp neq reg 8 0x00000011 ]", "[ masq ]"), "%s", c->spec);
		cr_expect(strstr(t, "add rule: ip natmesh_nat input\n  [ meta load iifname => reg 8 ]\n"
				 "  [ cmp eq reg 8 " WAN0 " ]\n  [ meta load l4proto => reg 8 ]"), "%s", c->spec);
		free(t);
	}
}

Test(render, address_dependent_mapping_keys_on_the_remote_address)
{
	char *t = render("{\"mapping\":\"address-dependent\",\"filtering\":\"address-dependent\","
			 "\"port_allocation\":\"random\"}", "wan0", "203.0.113.1");
	struct rules src, learn;

	cr_expect(strstr(t, "add set: mappings natmesh_nat key_type 29511 key_len 12 data_type 13 data_len 2"));
	chain_rules(t, "ip", "srcnat", &src);
	chain_rules(t, "ip", "learn", &learn);
	cr_expect(HAS_RULE(&src, "[ payload load 4b @ network header + 12 => reg 10 ]",
			   "[ payload load 2b @ transport header + 0 => reg 11 ]",
			   "[ ct load dst_ip => reg 12 , dir original ]",
			   "[ lookup reg 10 set mappings dreg 10 ]"));
	cr_expect(HAS_RULE(&learn, "[ ct load dst_ip => reg 11 , dir original ]",
			   "[ ct load proto_dst => reg 12 , dir reply ]",
			   "[ dynset update reg_key 9 set mappings sreg_data 12 ]"));
	free(t);
}

Test(render, port_allocation)
{
	struct rules src;
	char *t;

	/* preserve: a random port only when another endpoint holds this one */
	t = render("port-restricted-cone", "wan0", "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	int taken = find_rule(&src, (const char *const[]){ "[ payload load 2b @ transport header + 0 => reg 8 ]",
							  "[ lookup reg 8 set ports ]",
							  "[ immediate reg 10 0x00000004 ]", "[ immediate reg 11 0x0000ffff ]",
							  "proto_min reg 10 proto_max reg 11 flags 0x13 ]", NULL });
	int keep = find_rule(&src, (const char *const[]){ "[ immediate reg 9 " W " ]",
							 "[ nat snat ip addr_min reg 9 addr_max reg 9 flags 0x1 ]", NULL });
	cr_expect(taken >= 0 && keep > taken, "taken %d keep %d", taken, keep);
	cr_expect_null(strstr(t, "numgen"));
	free(t);

	t = render("{\"preset\":\"full-cone\",\"port_allocation\":\"sequential\"}", "wan0", "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect(HAS_RULE(&src, "[ numgen reg 10 = inc mod 64512 offset 1024 ]\n"
			   "  [ byteorder reg 10 = hton(reg 10, 2, 2) ]\n"
			   "  [ nat snat ip addr_min reg 9 addr_max reg 9 proto_min reg 10 proto_max reg 10 flags 0x3 ]"));
	cr_expect_null(strstr(t, "flags 0x1 ]"), "no port-keeping snat");
	free(t);

	t = render("symmetric", "wan0", "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect(HAS_RULE(&src, "[ cmp eq reg 8 0x00000011 ]", "[ immediate reg 9 " W " ]",
			   "proto_min reg 10 proto_max reg 11 flags 0x13 ]"));
	cr_expect_eq(src.n, 2, "masquerade for other protocols and one fully-random snat");
	cr_expect_null(strstr(t, "set mappings"));
	free(t);
}

Test(render, hairpinning)
{
	struct rules dst, src;
	char *t = render("{\"preset\":\"port-restricted-cone\",\"hairpinning\":true}", "wan0", "203.0.113.1");

	chain_rules(t, "ip", "dstnat", &dst);
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect_eq(dst.n, 1);
	cr_expect(HAS_RULE(&dst, "[ cmp neq reg 8 " WAN0 " ]", "[ payload load 4b @ network header + 16 => reg 8 ]",
			   "[ cmp eq reg 8 " W " ]", "[ lookup reg 8 set ports ]",
			   "[ immediate reg 8 0x4e4d4850 ]\n  [ meta set mark with reg 8 ]",
			   "[ lookup reg 8 set ports dreg 9 ]", "[ nat dnat ip"));
	/* the hairpinned packet gets the sender's external mapping as source */
	cr_expect(HAS_RULE(&src, "[ meta load mark => reg 8 ]\n  [ cmp eq reg 8 0x4e4d4850 ]",
			   "[ lookup reg 10 set mappings dreg 10 ]"));
	cr_expect(HAS_RULE(&src, "[ meta load mark => reg 8 ]", "flags 0x1 ]"));
	free(t);

	t = render("port-restricted-cone", "wan0", "203.0.113.1");
	cr_expect_null(strstr(t, "mark"));
	free(t);
}

Test(render, timeout_wan_name_and_address)
{
	char *t = render("{\"preset\":\"restricted-cone\",\"udp_timeout\":3}", "eth1", "198.51.100.7");

	cr_expect(strstr(t, "name udp use 0 [ ct_timeout family 2 protocol 17 policy = {UNREPLIED = 3,REPLIED = 3,}]"));
	cr_expect(strstr(t, "add set: ports natmesh_nat key_type 13 key_len 2 data_type 461 data_len 8 flags 0x38 timeout 3s"));
	cr_expect(strstr(t, "add set: allowed natmesh_nat key_type 839 key_len 8 data_type 0 data_len 0 flags 0x30 timeout 3s"));
	cr_expect(strstr(t, "add rule: ip natmesh_nat timeout\n  [ meta load l4proto => reg 8 ]\n"
			 "  [ cmp eq reg 8 0x00000011 ]\n  [ ct load state => reg 8 ]\n"
			 "  [ bitwise reg 8 = ( reg 8 & 0x00000008 ) ^ 0x00000000 ]\n"
			 "  [ cmp neq reg 8 0x00000000 ]\n  [ objref type 7 name udp ]"));
	cr_expect(strstr(t, "[ cmp eq reg 8 0x31687465 0x00000000 0x00000000 0x00000000 ]"), "eth1");
	cr_expect(strstr(t, "[ immediate reg 9 0x076433c6 ]"), "198.51.100.7");
	cr_expect_null(strstr(t, "0x306e6177"));
	cr_expect_null(strstr(t, W));
	free(t);
}

Test(render, refusals)
{
	struct natmodel m = { NATMODEL_AD, NATMODEL_EI, NATMODEL_PORTS_PRESERVE, false, 60,
			      NATMODEL_PORT_MIN, NATMODEL_PORT_MAX, 0 };
	struct natmodel_error err = { "", "" };
	struct natmodel_ruleset *rs = (struct natmodel_ruleset *)&err;
	struct natmodel_wan a = { .has_v4 = true, .v4 = { htonl(0xcb007101) } };

	cr_expect_eq(natmodel_render(&m, "wan0", &a, &rs, &err), -EOPNOTSUPP);
	cr_expect_null(rs);
	cr_expect_str_eq(err.field, "port_allocation");

	m.ports = NATMODEL_PORTS_RANDOM;
	static const char *const names[] = { "", "sixteen-chars-xx", NULL };
	for (int i = 0; i < 3; i++) {
		rs = (struct natmodel_ruleset *)&err;
		cr_expect_eq(natmodel_render(&m, names[i], &a, &rs, &err), -EINVAL, "%d", i);
		cr_expect_null(rs);
		cr_expect_str_eq(err.field, "wan");
	}
	cr_expect_eq(natmodel_render(&m, "fifteen-chars-x", &a, &rs, &err), 0);
	natmodel_ruleset_free(rs);
	natmodel_ruleset_free(NULL);
}

/* a port range bounds sequential and random allocation and preserve's
 * fallback */
Test(render, port_range)
{
	struct rules src;
	char *t;

	t = render("{\"preset\":\"full-cone\",\"port_allocation\":\"sequential\",\"port_range\":\"20000-20099\"}",
		   "wan0", "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect(HAS_RULE(&src, "[ numgen reg 10 = inc mod 100 offset 20000 ]"));
	free(t);

	t = render("{\"preset\":\"symmetric\",\"port_range\":\"40000-40009\"}", "wan0", "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect(HAS_RULE(&src, "[ immediate reg 10 0x0000409c ]", "[ immediate reg 11 0x0000499c ]",
			   "proto_min reg 10 proto_max reg 11 flags 0x13 ]"));
	cr_expect_null(strstr(t, "0x0000ffff"), "not the default range");
	free(t);

	t = render("{\"preset\":\"port-restricted-cone\",\"port_range\":\"40000-40009\"}", "wan0",
		   "203.0.113.1");
	chain_rules(t, "ip", "srcnat", &src);
	cr_expect(HAS_RULE(&src, "[ lookup reg 8 set ports ]", "[ immediate reg 10 0x0000409c ]",
			   "[ immediate reg 11 0x0000499c ]"), "preserve falls back into the range");
	free(t);
}

/* ---- IPv6 (NAT66): the same table in family ip6 ------------------------- */

#define W6 "0xb80d0120 0x00000000 0x00000000 0x01000000"	/* 2001:db8::1 */

/* One rule of one chain of the ip6 table holds every needle, in a ruleset
 * rendered for 2001:db8::1: the addresses are 16 bytes at offsets 8 and 24,
 * fill four registers, and push the port and the keys after them. */
struct v6_case {
	const char *what, *spec, *chain;
	const char *needles[8];
};

static const struct v6_case v6_cases[] = {
	{ "EIF: inbound dnat to the learnt inside endpoint (port after the address)", "full-cone", "dstnat",
	  { "cmp eq reg 8 " WAN0, "[ payload load 2b @ transport header + 2 => reg 8 ]",
	    "[ lookup reg 8 set ports dreg 9 ]",
	    "[ nat dnat ip6 addr_min reg 9 addr_max reg 9 proto_min reg 13 proto_max reg 13 flags 0x3 ]" } },
	{ "ADF: port . IPv6 source address in @allowed", "restricted-cone", "dstnat",
	  { "[ payload load 16b @ network header + 8 => reg 9 ]", "[ lookup reg 8 set allowed ]",
	    "[ nat dnat ip6 addr_min reg 9" } },
	{ "EIM: saddr . sport after W, the mapped port into the same register", "port-restricted-cone", "srcnat",
	  { "[ immediate reg 9 " W6 " ]", "[ payload load 16b @ network header + 8 => reg 13 ]",
	    "[ payload load 2b @ transport header + 0 => reg 17 ]", "[ lookup reg 13 set mappings dreg 13 ]",
	    "[ nat snat ip6 addr_min reg 9 addr_max reg 9 proto_min reg 13 proto_max reg 13 flags 0x3 ]" } },
	{ "ADM: the remote IPv6 address from conntrack ends the key",
	  "{\"mapping\":\"address-dependent\",\"filtering\":\"address-dependent\",\"port_allocation\":\"random\"}", "srcnat",
	  { "[ payload load 2b @ transport header + 0 => reg 17 ]", "[ ct load dst_ip6 => reg 18 , dir original ]",
	    "[ lookup reg 13 set mappings dreg 13 ]" } },
	{ "preserve: a port held by another endpoint falls back to a random one", "port-restricted-cone", "srcnat",
	  { "[ lookup reg 8 set ports ]", "[ immediate reg 13 0x00000004 ]", "[ immediate reg 14 0x0000ffff ]",
	    "[ nat snat ip6 addr_min reg 9 addr_max reg 9 proto_min reg 13 proto_max reg 14 flags 0x13 ]" } },
	{ "preserve: the port kept, only the address translated", "port-restricted-cone", "srcnat",
	  { "[ cmp neq reg 8 " W6 " ]", "[ immediate reg 9 " W6 " ]",
	    "[ nat snat ip6 addr_min reg 9 addr_max reg 9 flags 0x1 ]" } },
	{ "sequential within port_range",
	  "{\"preset\":\"full-cone\",\"port_allocation\":\"sequential\",\"port_range\":\"20000-20099\"}", "srcnat",
	  { "[ numgen reg 13 = inc mod 100 offset 20000 ]\n  [ byteorder reg 13 = hton(reg 13, 2, 2) ]\n"
	    "  [ nat snat ip6 addr_min reg 9 addr_max reg 9 proto_min reg 13 proto_max reg 13 flags 0x3 ]" } },
	{ "random within port_range", "{\"preset\":\"symmetric\",\"port_range\":\"40000-40009\"}", "srcnat",
	  { "[ immediate reg 13 0x0000409c ]", "[ immediate reg 14 0x0000499c ]",
	    "proto_min reg 13 proto_max reg 14 flags 0x13 ]" } },
	{ "other protocols: masquerade, not from W itself", "symmetric", "srcnat",
	  { "[ payload load 16b @ network header + 8 => reg 8 ]", "[ cmp neq reg 8 " W6 " ]",
	    "[ cmp neq reg 8 0x00000011 ]", "[ masq ]" } },
	{ "hairpinning: inside to W, marked, dnat to the mapping's owner",
	  "{\"preset\":\"port-restricted-cone\",\"hairpinning\":true}", "dstnat",
	  { "[ cmp neq reg 8 " WAN0 " ]", "[ payload load 16b @ network header + 24 => reg 8 ]",
	    "[ cmp eq reg 8 " W6 " ]", "[ meta set mark with reg 8 ]", "[ nat dnat ip6" } },
	{ "hairpinning: the sender's external mapping as source",
	  "{\"preset\":\"port-restricted-cone\",\"hairpinning\":true}", "srcnat",
	  { "[ cmp eq reg 8 0x4e4d4850 ]", "[ lookup reg 13 set mappings dreg 13 ]", "[ nat snat ip6" } },
	{ "learn (outbound): external port -> IPv6 inside address . port", "symmetric", "learn",
	  { "[ cmp eq reg 8 0x00000000 ]", "[ ct load proto_dst => reg 8 , dir reply ]",
	    "[ ct load src_ip6 => reg 9 , dir original ]", "[ ct load proto_src => reg 13 , dir original ]",
	    "[ dynset update reg_key 8 set ports sreg_data 9 ]" } },
	{ "learn: ADM and ADF keys with the remote IPv6 address",
	  "{\"mapping\":\"address-dependent\",\"filtering\":\"address-dependent\",\"port_allocation\":\"random\"}", "learn",
	  { "[ ct load dst_ip6 => reg 14 , dir original ]", "[ ct load proto_dst => reg 18 , dir reply ]",
	    "[ dynset update reg_key 9 set mappings sreg_data 18 ]", "[ ct load dst_ip6 => reg 9 , dir original ]",
	    "[ dynset update reg_key 8 set allowed ]" } },
	{ "learn (inbound, EIF): from the reply tuple", "full-cone", "learn",
	  { "[ cmp eq reg 8 0x00000001 ]", "[ ct load src_ip6 => reg 9 , dir reply ]",
	    "[ dynset update reg_key 9 set mappings sreg_data 18 ]" } },
	{ "unsolicited UDP to the gateway dropped", "restricted-cone", "input",
	  { "cmp eq reg 8 " WAN0, "[ cmp eq reg 8 0x00000011 ]", "[ immediate reg 0 drop ]" } },
	{ "only dnat'ed flows forwarded in", "full-cone", "forward",
	  { "[ bitwise reg 8 = ( reg 8 & 0x00000020 ) ^ 0x00000000 ]", "[ immediate reg 0 drop ]" } },
	{ "the ct timeout applies to new UDP flows", "{\"preset\":\"restricted-cone\",\"udp_timeout\":3}", "timeout",
	  { "[ cmp eq reg 8 0x00000011 ]", "[ objref type 7 name udp ]" } },
};

Test(render6, rules_per_behaviour)
{
	for (size_t i = 0; i < sizeof(v6_cases) / sizeof(v6_cases[0]); i++) {
		const struct v6_case *c = &v6_cases[i];
		char *t = render(c->spec, "wan0", "2001:db8::1");
		struct rules r;
		const char *needles[9] = { 0 };

		for (size_t k = 0; k < 8 && c->needles[k]; k++)
			needles[k] = c->needles[k];
		chain_rules(t, "ip6", c->chain, &r);
		cr_expect(find_rule(&r, needles) >= 0, "%s (%s):\n%s", c->what, c->spec, t);
		free(t);
	}
}

/* per preset: the sets with IPv6 types, as many rules as for IPv4, and
 * nothing of IPv4 left (no 4-byte address, no ip nat, no src_ip) */
Test(render6, sets_and_rule_counts_per_preset)
{
	static const struct preset_case cases[] = {
		{ "full-cone", 1, false, true, 2 },
		{ "restricted-cone", 1, true, true, 2 },
		{ "port-restricted-cone", 0, false, true, 1 },
		{ "symmetric", 0, false, false, 1 },
		{ "{\"preset\":\"symmetric\",\"filtering\":\"endpoint-independent\",\"hairpinning\":true}", 2, false, false, 2 },
	};
	static const char *const v4_only[] = { "table natmesh_nat ip ", "add rule: ip natmesh_nat", "family 2 ",
					       "@ network header + 12", "@ network header + 16", "4b @ network header",
					       "nat snat ip addr", "nat dnat ip addr", "src_ip =>", "dst_ip =>", NULL };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct preset_case *c = &cases[i];
		char *t = render(c->spec, "wan0", "2001:db8::1");
		struct rules dst, learn;

		cr_expect(!strncmp(t, "add table: table natmesh_nat ip6 ", 33), "%s: %.60s", c->spec, t);
		cr_expect(strstr(t, "[ ct_timeout family 10 protocol 17 "), "%s: l3proto ip6", c->spec);
		/* ipv6_addr . inet_service = 8 << 6 | 13, 16 + 4 bytes */
		cr_expect(strstr(t, "add set: ports natmesh_nat key_type 13 key_len 2 data_type 525 data_len 20 flags 0x38"),
			  "%s: ports map", c->spec);
		cr_expect_eq(strstr(t, "add set: mappings natmesh_nat key_type 525 key_len 20 data_type 13 data_len 2") != NULL,
			     c->mappings, "%s: mappings map", c->spec);
		cr_expect_eq(strstr(t, "add set: allowed natmesh_nat key_type 840 key_len 20 data_type 0 data_len 0") != NULL,
			     c->allowed, "%s: allowed set", c->spec);
		chain_rules(t, "ip6", "dstnat", &dst);
		chain_rules(t, "ip6", "learn", &learn);
		cr_expect_eq(dst.n, c->dstnat_rules, "%s: dstnat rules", c->spec);
		cr_expect_eq(learn.n, c->learn_rules, "%s: learn rules", c->spec);
		for (const char *const *n = v4_only; *n; n++)
			cr_expect_null(strstr(t, *n), "%s: \"%s\" in an ip6 table", c->spec, *n);
		free(t);
	}
	char *t = render("{\"mapping\":\"address-dependent\",\"port_allocation\":\"random\"}", "wan0", "2001:db8::1");
	/* ipv6_addr . inet_service . ipv6_addr, 16 + 4 + 16 bytes */
	cr_expect(strstr(t, "add set: mappings natmesh_nat key_type 33608 key_len 36 data_type 13 data_len 2"));
	free(t);
}

/* a dual-stack WAN: both tables in one batch, ip first and as it is alone */
Test(render6, dual_stack_one_batch)
{
	char *both = render("{\"preset\":\"restricted-cone\",\"hairpinning\":true}", "wan0", "203.0.113.1,2001:db8::1");
	char *v4 = render("{\"preset\":\"restricted-cone\",\"hairpinning\":true}", "wan0", "203.0.113.1");
	char *v6 = render("{\"preset\":\"restricted-cone\",\"hairpinning\":true}", "wan0", "2001:db8::1");
	size_t n4 = strlen(v4);

	cr_expect(!strncmp(both, v4, n4), "the ip table comes first, unchanged");
	cr_expect_str_eq(both + n4, v6, "then the ip6 table, as alone");
	free(both);
	free(v4);
	free(v6);
}

Test(render6, refusals)
{
	struct natmodel m = { NATMODEL_EI, NATMODEL_EI, NATMODEL_PORTS_PRESERVE, false, 60,
			      NATMODEL_PORT_MIN, NATMODEL_PORT_MAX, 0 };
	struct natmodel_error err = { "", "" };
	struct natmodel_ruleset *rs = (struct natmodel_ruleset *)&err;
	struct natmodel_wan none = { 0 }, v6 = { .has_v6 = true };

	cr_expect_eq(natmodel_render(&m, "wan0", &none, &rs, &err), -EINVAL);
	cr_expect_null(rs);
	cr_expect_str_eq(err.field, "wan");
	rs = (struct natmodel_ruleset *)&err;
	cr_expect_eq(natmodel_render(&m, "sixteen-chars-xx", &v6, &rs, &err), -EINVAL);
	cr_expect_null(rs);
	m.mapping = NATMODEL_AD;	/* ADM with preserve: not expressible, in either family */
	rs = (struct natmodel_ruleset *)&err;
	cr_expect_eq(natmodel_render(&m, "wan0", &v6, &rs, &err), -EOPNOTSUPP);
	cr_expect_null(rs);
	cr_expect_str_eq(err.field, "port_allocation");
}
