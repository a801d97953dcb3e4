/* meshd's security-group rendering (agent/meshd/policy_nft.c): each rule
 * shape to its expected nftables rules, in the `nft -f` text the renderer
 * emits beside its libnftnl objects. No netlink here: tests/netns/
 * agent_policy.sh applies the same rulesets and sends real traffic. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/meshd/policy_nft.h"
#include "policy.h"

#define HEAD_IN                                                                   \
	"ct state established,related accept\n"                                   \
	"icmp type echo-reply accept\n"                                           \
	"icmpv6 type echo-reply accept\n"                                         \
	"icmp type echo-request @th,64,128 0x6e61746d657368206d65736863746c21 accept\n"
#define HEAD_OUT                                                                  \
	"ct state established,related accept\n"                                   \
	"icmp type echo-reply accept\n"                                           \
	"icmpv6 type echo-reply accept\n"
#define DROP "counter drop\n"

static char *render(const char *json)
{
	struct policy_group g;
	struct policy_nft *r;
	char err[POLICY_ERR_MAX] = "";
	json_error_t je;
	json_t *j = NULL;
	char *text;

	if (json) {
		j = json_loads(json, 0, &je);
		cr_assert_not_null(j, "test JSON: %s", je.text);
		cr_assert_eq(policy_group_parse(j, POLICY_PARSE_RESOLVED, &g, err, sizeof(err)), 0, "%s", err);
		json_decref(j);
	}
	cr_assert_eq(policy_nft_render(json ? &g : NULL, "mesh0", &r), 0);
	text = policy_nft_text(r, false);
	cr_assert_not_null(text);
	policy_nft_free(r);
	if (json)
		policy_group_free(&g);
	return text;
}

/* the rules of one chain of text, one per line, tabs gone */
static char *chain(const char *text, const char *name)
{
	char head[64], *out = calloc(1, strlen(text) + 1), *o = out;
	const char *p;

	snprintf(head, sizeof(head), "\tchain %s {\n", name);
	p = strstr(text, head);
	cr_assert_not_null(p, "no chain %s in\n%s", name, text);
	p += strlen(head);
	while (*p && strncmp(p, "\t}\n", 3) != 0) {
		const char *nl = strchr(p, '\n');
		while (*p == '\t')
			p++;
		memcpy(o, p, (size_t)(nl - p + 1));
		o += nl - p + 1;
		p = nl + 1;
	}
	return out;
}

/* every set of text as "NAME TYPE { ELEMENTS }" lines */
static char *sets(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;
	const char *p = text;

	while ((p = strstr(p, "\tset "))) {
		char name[64], type[32];
		const char *el = strstr(p, "elements = { "), *end;

		cr_assert_eq(sscanf(p, "\tset %63s {\n\t\ttype %31s", name, type), 2);
		cr_assert_not_null(el);
		el += strlen("elements = ");
		end = strstr(el, " }\n");
		o += sprintf(o, "%s %s %.*s\n", name, type, (int)(end - el + 2), el);
		p = end;
	}
	return out;
}

struct shape {
	const char *name;
	const char *rule;	/* one inbound rule */
	const char *expect;	/* its lines of the inbound chain */
	const char *sets;	/* the sets they use */
};

static const struct shape shapes[] = {
	{ "tcp port range from a CIDR",
	  "{\"ip_protocol\":\"tcp\",\"from_port\":8000,\"to_port\":8100,\"ip_ranges\":[\"100.64.0.0/10\"]}",
	  "ip saddr @inbound_rules_0_v4 meta l4proto tcp th dport 8000-8100 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 100.64.0.0/10 }\n" },
	{ "tcp single port, anyone (both families in one rule)",
	  "{\"ip_protocol\":\"tcp\",\"from_port\":22,\"to_port\":22}",
	  "meta l4proto tcp th dport 22 counter accept comment \"inbound_rules[0]\"\n", "" },
	{ "udp every port",
	  "{\"ip_protocol\":\"udp\",\"ip_ranges\":[\"100.64.0.9\"]}",
	  "ip saddr @inbound_rules_0_v4 meta l4proto udp counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 100.64.0.9 }\n" },
	{ "icmp: ICMP in IPv4, ICMPv6 in IPv6",
	  "{\"ip_protocol\":\"icmp\"}",
	  "meta nfproto ipv4 meta l4proto icmp counter accept comment \"inbound_rules[0]\"\n"
	  "meta nfproto ipv6 meta l4proto ipv6-icmp counter accept comment \"inbound_rules[0]\"\n", "" },
	{ "any", "{\"ip_protocol\":\"any\"}", "counter accept comment \"inbound_rules[0]\"\n", "" },
	{ "ipv4 only", "{\"ip_protocol\":\"ipv4\"}",
	  "meta nfproto ipv4 counter accept comment \"inbound_rules[0]\"\n", "" },
	{ "ipv6 from a v6 prefix", "{\"ip_protocol\":\"ipv6\",\"ip_ranges\":[\"fd00:1::/48\"]}",
	  "ip6 saddr @inbound_rules_0_v6 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v6 ipv6_addr { fd00:1::/48 }\n" },
	{ "ipv4 rule with only IPv6 ranges renders nothing", "{\"ip_protocol\":\"ipv4\",\"ip_ranges\":[\"fd00::/8\"]}",
	  "", "" },
	{ "ranges A-B of both families split per family",
	  "{\"ip_protocol\":\"tcp\",\"from_port\":443,\"to_port\":443,"
	  "\"ip_ranges\":[\"100.64.1.1-100.64.1.9\",\"fd00::1-fd00::ff\"]}",
	  "ip saddr @inbound_rules_0_v4 meta l4proto tcp th dport 443 counter accept comment \"inbound_rules[0]\"\n"
	  "ip6 saddr @inbound_rules_0_v6 meta l4proto tcp th dport 443 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 100.64.1.1-100.64.1.9 }\n"
	  "inbound_rules_0_v6 ipv6_addr { fd00::1-fd00::ff }\n" },
	{ "groups expanded into their members, merged with ranges",
	  "{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432,\"ip_ranges\":[\"100.64.0.10\"],"
	  "\"groups\":[\"web\"],\"group_addresses\":[\"100.64.0.12\",\"100.64.0.11\",\"100.64.3.1\"]}",
	  "ip saddr @inbound_rules_0_v4 meta l4proto tcp th dport 5432 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 100.64.0.10-100.64.0.12, 100.64.3.1 }\n" },
	{ "overlapping and adjacent ranges merged into prefixes",
	  "{\"ip_ranges\":[\"10.0.0.0/25\",\"10.0.0.128/25\",\"10.0.0.5-10.0.0.7\",\"10.0.1.0/24\"]}",
	  "ip saddr @inbound_rules_0_v4 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 10.0.0.0/23 }\n" },
	{ "the whole address space", "{\"ip_ranges\":[\"0.0.0.0/0\",\"::/0\"]}",
	  "ip saddr @inbound_rules_0_v4 counter accept comment \"inbound_rules[0]\"\n"
	  "ip6 saddr @inbound_rules_0_v6 counter accept comment \"inbound_rules[0]\"\n",
	  "inbound_rules_0_v4 ipv4_addr { 0.0.0.0/0 }\ninbound_rules_0_v6 ipv6_addr { ::/0 }\n" },
	{ "a rule naming only an empty group matches no one",
	  "{\"ip_protocol\":\"tcp\",\"groups\":[\"empty\"],\"group_addresses\":[]}", "", "" },
};

Test(policy_nft, every_rule_shape)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		char json[1024], want[2048], *text, *in, *st;

		snprintf(json, sizeof(json), "{\"id\":\"g\",\"inbound_rules\":[%s]}", shapes[i].rule);
		snprintf(want, sizeof(want), HEAD_IN "%s" DROP, shapes[i].expect);
		text = render(json);
		in = chain(text, "inbound");
		st = sets(text);
		cr_expect_str_eq(in, want, "%s", shapes[i].name);
		cr_expect_str_eq(st, shapes[i].sets, "%s: sets", shapes[i].name);
		free(in);
		free(st);
		free(text);
	}
}

Test(policy_nft, outbound_rules_match_the_destination)
{
	char *text = render("{\"outbound_rules\":[{\"ip_protocol\":\"udp\",\"from_port\":53,\"to_port\":53,"
			    "\"ip_ranges\":[\"100.64.0.53\",\"fd00::53\"]}]}");
	char *out = chain(text, "outbound"), *in = chain(text, "inbound");

	cr_expect_str_eq(out, HEAD_OUT
			 "ip daddr @outbound_rules_0_v4 meta l4proto udp th dport 53 counter accept comment \"outbound_rules[0]\"\n"
			 "ip6 daddr @outbound_rules_0_v6 meta l4proto udp th dport 53 counter accept comment \"outbound_rules[0]\"\n"
			 DROP);
	cr_expect_str_eq(in, HEAD_IN DROP, "no inbound rule: only replies, echo replies and the probe pass");
	free(out);
	free(in);
	free(text);
}

/* what meshd installs before the service answers, and the hooks */
Test(policy_nft, no_group_permits_nothing_and_hooks_the_interface)
{
	char *text = render(NULL);
	char *in = chain(text, "inbound"), *out = chain(text, "outbound");
	char *input = chain(text, "input"), *fwd = chain(text, "forward"), *output = chain(text, "output");

	cr_expect_str_eq(in, HEAD_IN DROP);
	cr_expect_str_eq(out, HEAD_OUT DROP);
	cr_expect_str_eq(input, "type filter hook input priority filter; policy accept;\n"
				"iifname \"mesh0\" jump inbound\n");
	cr_expect_str_eq(fwd, "type filter hook forward priority filter; policy accept;\n"
			      "iifname \"mesh0\" jump inbound\noifname \"mesh0\" jump outbound\n");
	cr_expect_str_eq(output, "type filter hook output priority filter; policy accept;\n"
				 "oifname \"mesh0\" jump outbound\n");
	cr_expect(strncmp(text, "table inet natmesh {\n", 21) == 0);
	free(in);
	free(out);
	free(input);
	free(fwd);
	free(output);
	free(text);
}

Test(policy_nft, replace_form_and_rule_count)
{
	struct policy_group g;
	struct policy_nft *r;
	char *text;

	cr_assert_eq(policy_group_allow_all(&g), 0);
	cr_assert_eq(policy_nft_render(&g, "mesh0", &r), 0);
	text = policy_nft_text(r, true);
	cr_expect(strncmp(text, "table inet natmesh\ndelete table inet natmesh\ntable inet natmesh {\n", 65) == 0,
		  "%s", text);
	/* 4 + 3 fixed rules, one permit per direction, two drops */
	cr_expect_eq(policy_nft_rule_count(r), 4 + 3 + 2 + 2);
	free(text);
	policy_nft_free(r);
	policy_group_free(&g);
}

Test(policy_nft, bad_interface_names_refused)
{
	struct policy_nft *r = (void *)1;

	cr_expect_eq(policy_nft_render(NULL, "", &r), -EINVAL);
	cr_expect_null(r);
	cr_expect_eq(policy_nft_render(NULL, "a-name-far-too-long", &r), -EINVAL);
}
