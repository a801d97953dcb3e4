#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <string.h>

#include "policy.h"

static struct policy_group group(const char *json, unsigned flags)
{
	struct policy_group g;
	char err[POLICY_ERR_MAX] = "";
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);

	cr_assert_not_null(j, "test JSON: %s", je.text);
	cr_assert_eq(policy_group_parse(j, flags, &g, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	return g;
}

/* the error text policy_group_parse gives for json, or "" when it parses */
static const char *refusal(const char *json)
{
	static char err[POLICY_ERR_MAX];
	struct policy_group g;
	json_t *j = json_loads(json, 0, NULL);

	cr_assert_not_null(j, "test JSON: %s", json);
	err[0] = '\0';
	if (policy_group_parse(j, 0, &g, err, sizeof(err)) == 0) {
		policy_group_free(&g);
		err[0] = '\0';
	} else {
		cr_expect_neq(err[0], '\0', "a refusal explains itself: %s", json);
	}
	json_decref(j);
	return err;
}

static struct policy_peer peer(const char *v4, const char *v6, const char *group_id)
{
	struct policy_peer p = { .group_id = group_id };

	if (v4) {
		p.addr[p.naddr].family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, v4, p.addr[p.naddr++].a), 1);
	}
	if (v6) {
		p.addr[p.naddr].family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, v6, p.addr[p.naddr++].a), 1);
	}
	return p;
}

Test(policy, ranges_parse_and_format_normalised)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "10.0.0.0/8", "10.0.0.0/8" },
		{ "100.64.0.5", "100.64.0.5" },
		{ "100.64.0.5/32", "100.64.0.5" },
		{ "10.0.0.0-10.0.0.255", "10.0.0.0/24" },
		{ "10.0.0.1-10.0.0.9", "10.0.0.1-10.0.0.9" },
		{ "fd00::/64", "fd00::/64" },
		{ "fd00::1-fd00::3", "fd00::1-fd00::3" },
		{ "0.0.0.0/0", "0.0.0.0/0" },
	};
	struct policy_range r;
	char buf[128], err[POLICY_ERR_MAX];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(policy_range_parse(ok[i].in, &r, err, sizeof(err)), 0, "%s: %s", ok[i].in, err);
		cr_expect_str_eq(policy_range_format(&r, buf, sizeof(buf)), ok[i].out, "%s", ok[i].in);
	}
	static const char *const bad[] = { "10.0.0.1/24", "10.0.0.0/33", "10.0.0.0/", "10.0.0.9-10.0.0.1",
					   "10.0.0.1-fd00::1", "10.0.0.1-10.0.0.2/32", "host", "", "fd00::/129" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_expect_eq(policy_range_parse(bad[i], &r, err, sizeof(err)), -EINVAL, "\"%s\" refused", bad[i]);
		cr_expect(strstr(err, bad[i]) != NULL || !*bad[i], "the error names the input: %s", err);
	}
}

Test(policy, every_field_refused_with_its_name)
{
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_protocol\":\"sctp\"}]}"),
			 "inbound_rules[0].ip_protocol"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":70000}]}"),
			 "inbound_rules[0].from_port"));
	cr_expect(strstr(refusal("{\"outbound_rules\":[{},{\"ip_protocol\":\"udp\",\"to_port\":-1}]}"),
			 "outbound_rules[1].to_port"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":90,\"to_port\":80}]}"),
			 "greater than to_port"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_protocol\":\"icmp\",\"from_port\":1,\"to_port\":2}]}"),
			 "only to tcp and udp"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_ranges\":[\"10.0.0.0/8\",\"bogus\"]}]}"),
			 "inbound_rules[0].ip_ranges[1]"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"ip_ranges\":\"10.0.0.0/8\"}]}"), "must be an array"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"groups\":[\"\"]}]}"), "inbound_rules[0].groups[0]"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"port\":80}]}"), "inbound_rules[0].port: unknown field"));
	cr_expect(strstr(refusal("{\"inbound_rules\":[{\"group_addresses\":[]}]}"), "unknown field"),
		  "only the service's resolved answer may carry group_addresses");
	cr_expect(strstr(refusal("{\"inbound_rules\":{}}"), "inbound_rules: must be an array"));

	/* 257 rules, 65 ranges */
	json_t *g = json_object(), *rules = json_array(), *rule = json_object(), *ranges = json_array();
	for (int i = 0; i < 65; i++)
		json_array_append_new(ranges, json_sprintf("10.0.%d.0/24", i));
	json_object_set_new(rule, "ip_ranges", ranges);
	json_array_append_new(rules, rule);
	json_object_set_new(g, "inbound_rules", rules);
	char *s = json_dumps(g, 0);
	cr_expect(strstr(refusal(s), "65 entries, at most 64"));
	free(s);
	json_array_clear(rules);
	for (int i = 0; i < 257; i++)
		json_array_append_new(rules, json_object());
	s = json_dumps(g, 0);
	cr_expect(strstr(refusal(s), "257 rules, at most 256"));
	free(s);
	json_decref(g);
}

/* clients -> web tcp/80; web -> db tcp/5432; clients allow nothing in */
#define WEB "{\"id\":\"web\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80," \
	    "\"groups\":[\"clients\"]}],\"outbound_rules\":[{}]}"
#define DB "{\"id\":\"db\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432," \
	   "\"groups\":[\"web\"]}],\"outbound_rules\":[{}]}"
#define CLIENTS "{\"id\":\"clients\",\"outbound_rules\":[{}]}"
#define RELAYS "{\"id\":\"relays\",\"inbound_rules\":[{\"ip_protocol\":\"icmp\"}],\"outbound_rules\":[{}]}"

Test(policy, allows_needs_both_groups)
{
	struct policy_group web = group(WEB, 0), db = group(DB, 0), clients = group(CLIENTS, 0);
	struct policy_peer c = peer("100.64.0.2", "fd00::2", "clients"), w = peer("100.64.0.3", NULL, "web"),
			   d = peer("100.64.0.4", NULL, "db");

	cr_expect(policy_allows(&clients, &c, &web, &w, AF_INET, IPPROTO_TCP, 80));
	cr_expect_not(policy_allows(&clients, &c, &web, &w, AF_INET, IPPROTO_TCP, 81));
	cr_expect_not(policy_allows(&clients, &c, &web, &w, AF_INET, IPPROTO_UDP, 80));
	cr_expect_not(policy_allows(&clients, &c, &web, &w, AF_INET, IPPROTO_ICMP, 0));
	cr_expect_not(policy_allows(&web, &w, &clients, &c, AF_INET, IPPROTO_TCP, 80), "clients allow nothing in");
	cr_expect(policy_allows(&web, &w, &db, &d, AF_INET, IPPROTO_TCP, 5432));
	cr_expect_not(policy_allows(&clients, &c, &db, &d, AF_INET, IPPROTO_TCP, 5432), "db only from web");
	/* the peer side by address: the resolved form an agent gets */
	struct policy_group webr = group("{\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,"
					 "\"groups\":[\"clients\"],\"group_addresses\":[\"100.64.0.2\",\"fd00::2\"]}]}",
					 POLICY_PARSE_RESOLVED);
	struct policy_peer anon = peer("100.64.0.2", NULL, NULL), other = peer("100.64.0.9", NULL, NULL);
	cr_expect(policy_rules_match(webr.in, webr.nin, &anon, AF_INET, IPPROTO_TCP, 80) == 0);
	cr_expect(policy_rules_match(webr.in, webr.nin, &other, AF_INET, IPPROTO_TCP, 80) == -1);
	policy_group_free(&webr);
	policy_group_free(&web);
	policy_group_free(&db);
	policy_group_free(&clients);
}

Test(policy, protocols_families_and_ports)
{
	struct policy_group g = group("{\"inbound_rules\":[{\"ip_protocol\":\"ipv6\"},{\"ip_protocol\":\"icmp\"},"
				      "{\"ip_protocol\":\"udp\",\"from_port\":1000,\"to_port\":2000},"
				      "{\"ip_protocol\":\"tcp\",\"ip_ranges\":[\"10.1.0.0-10.1.0.9\"]}]}",
				      0);
	struct policy_peer p = peer("10.1.0.5", "fd00::5", NULL), q = peer("10.2.0.5", NULL, NULL);

	cr_expect_eq(policy_rules_match(g.in, g.nin, &p, AF_INET6, IPPROTO_TCP, 22), 0, "ipv6 matches any v6");
	cr_expect_eq(policy_rules_match(g.in, g.nin, &p, AF_INET, IPPROTO_ICMP, 0), 1);
	cr_expect_eq(policy_rules_match(g.in, g.nin, &p, AF_INET, IPPROTO_ICMPV6, 0), -1, "icmpv6 is not v4 icmp");
	cr_expect_eq(policy_rules_match(g.in, g.nin, &q, AF_INET, IPPROTO_UDP, 1000), 2);
	cr_expect_eq(policy_rules_match(g.in, g.nin, &q, AF_INET, IPPROTO_UDP, 2001), -1);
	cr_expect_eq(policy_rules_match(g.in, g.nin, &p, AF_INET, IPPROTO_TCP, 5), 3, "tcp 0-0 is every port");
	cr_expect_eq(policy_rules_match(g.in, g.nin, &q, AF_INET, IPPROTO_TCP, 5), -1, "outside the range");
	policy_group_free(&g);
	/* a rule naming only a group with no members matches nobody */
	g = group("{\"inbound_rules\":[{\"groups\":[\"empty\"],\"group_addresses\":[]}]}", POLICY_PARSE_RESOLVED);
	cr_expect_eq(policy_rules_match(g.in, g.nin, &p, AF_INET, IPPROTO_TCP, 5), -1);
	policy_group_free(&g);
}

Test(policy, visible_when_either_direction_allows)
{
	struct policy_group web = group(WEB, 0), db = group(DB, 0), clients = group(CLIENTS, 0),
			    relays = group(RELAYS, 0), all;
	struct policy_peer c = peer("100.64.0.2", NULL, "clients"), c2 = peer("100.64.0.5", NULL, "clients"),
			   w = peer("100.64.0.3", NULL, "web"), d = peer("100.64.0.4", NULL, "db"),
			   r = peer("100.64.0.1", NULL, "relays"), v6only = peer(NULL, "fd00::7", "web");

	cr_assert_eq(policy_group_allow_all(&all), 0);
	cr_expect(policy_visible(&clients, &c, &web, &w), "clients -> web tcp/80");
	cr_expect(policy_visible(&web, &w, &clients, &c), "symmetric");
	cr_expect(policy_visible(&web, &w, &db, &d));
	cr_expect_not(policy_visible(&clients, &c, &db, &d), "a client never learns of db");
	cr_expect_not(policy_visible(&clients, &c, &clients, &c2), "clients allow nothing in");
	cr_expect(policy_visible(&clients, &c, &relays, &r));
	cr_expect_not(policy_visible(&clients, &c, &web, &v6only), "no family in common");
	cr_expect(policy_visible(&all, &c, &all, &c2), "the default group sees everyone");
	/* intersection of ports: web outbound only tcp/22, db inbound only tcp/5432: no packet passes both */
	struct policy_group w22 = group("{\"outbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":22,\"to_port\":22}]}",
					0);
	cr_expect_not(policy_visible(&w22, &w, &db, &d));
	policy_group_free(&w22);
	policy_group_free(&web);
	policy_group_free(&db);
	policy_group_free(&clients);
	policy_group_free(&relays);
	policy_group_free(&all);
}

Test(policy, rule_round_trips_through_json)
{
	struct policy_group g = group("{\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":90,"
				      "\"ip_ranges\":[\"10.0.0.0-10.0.0.255\",\"fd00::1\"],\"groups\":[\"web\"]}]}",
				      0);
	json_t *j = policy_rule_json(&g.in[0], false);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);

	cr_expect_str_eq(s, "{\"from_port\":80,\"groups\":[\"web\"],\"ip_protocol\":\"tcp\","
			    "\"ip_ranges\":[\"10.0.0.0/24\",\"fd00::1\"],\"to_port\":90}");
	free(s);
	json_decref(j);
	policy_group_free(&g);
}
