#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim/portmapd.h"
#include "sim/scenario.h"

/* a valid lab:  pub --- internet --- gw1 (full-cone) --- site1 --- h1 */
#define NETS "\"networks\": [{\"name\": \"internet\", \"cidr\": \"203.0.113.0/24\"}," \
	     " {\"name\": \"site1\", \"cidr\": \"10.0.1.0/24\"}]"
#define PUB "{\"name\": \"pub\", \"links\": [{\"network\": \"internet\", \"address\": \"203.0.113.10\"}]," \
	    " \"processes\": [{\"argv\": [\"meshstun\", \"--listen\", \"${ip}:3478\"], \"ready\": {\"udp\": 3478}}]}"
#define GW "{\"name\": \"gw1\", \"kind\": \"nat\", \"nat\": \"full-cone\", \"wan\": \"wan\", \"links\": [" \
	   "{\"network\": \"internet\", \"ifname\": \"wan\", \"address\": \"203.0.113.2\"}," \
	   " {\"network\": \"site1\", \"ifname\": \"lan\", \"address\": \"10.0.1.1\"}]}"
#define H1 "{\"name\": \"h1\", \"links\": [{\"network\": \"site1\"}], \"routes\": [{\"dst\": \"default\", \"via\": \"gw1\"}]," \
	   " \"processes\": [{\"argv\": [\"sleep\", \"9\"], \"after\": [\"pub/meshstun\"]}]}"
/* an IPv4 and an IPv6 network */
#define NETS6 "\"networks\": [{\"name\": \"internet\", \"cidr\": \"203.0.113.0/24\"}," \
	      " {\"name\": \"v6\", \"cidr\": \"2001:db8:1::/64\"}]"
#define DOC(nets, nodes, exps) "{\"name\": \"t\", " nets ", \"nodes\": [" nodes "], \"expectations\": [" exps "]}"
#define GOOD DOC(NETS, PUB ", " GW ", " H1, "{\"ping\": [\"h1\", \"pub\"]}")

static struct sim_scenario *parse_ok(const char *text)
{
	struct sim_scenario *s = NULL;
	char err[SIM_ERR_MAX];
	int rc = sim_scenario_parse("t.json", text, &s, err, sizeof(err));
	cr_assert_eq(rc, 0, "unexpected error: %s", err);
	return s;
}

Test(sim_scenario, good_file)
{
	struct sim_scenario *s = parse_ok(GOOD);
	char ip[ADDR_STRLEN];
	union sockaddr_any a;
	cr_assert_eq(s->nnets, 2);
	cr_assert_eq(s->nnodes, 3);
	cr_assert_eq(s->nlinks, 4);
	cr_assert_eq(s->nprocs, 2);
	cr_assert_eq(s->nodes[1].kind, SIM_NODE_NAT);
	cr_assert_str_eq(s->nodes[1].wan, "wan");
	/* h1's address is the first free host of site1 (gw1 holds .1) */
	sim_link_ip(sim_scenario_link(s, 2, NULL), &a);
	cr_assert_str_eq(addr_format_ip(&a, ip, sizeof(ip)), "10.0.1.2");
	cr_assert_str_eq(sim_scenario_link(s, 2, NULL)->ifname, "eth0");
	/* the default route goes via gw1's address on site1, out of eth0 */
	addr_format_ip(&s->nodes[2].routes[0].via, ip, sizeof(ip));
	cr_assert_str_eq(ip, "10.0.1.1");
	cr_assert_str_eq(s->nodes[2].routes[0].dev, "eth0");
	cr_assert_str_eq(s->procs[0].name, "meshstun");
	cr_assert_eq(s->procs[0].ready.kind, SIM_READY_UDP);
	cr_assert_eq(s->procs[1].nafter, 1);
	cr_assert_eq(s->procs[1].after[0], 0);
	cr_assert_eq(s->expects[0].kind, SIM_EXPECT_PING);
	cr_assert_eq(s->timeout_ms, 120000);
	sim_scenario_free(s);
}

/* NAT66: a NAT node whose links are all IPv6 (the WAN the first link, or
 * "wan"), and hosts behind it routed via its inside address */
Test(sim_scenario, nat66_gateway)
{
	struct sim_scenario *s = parse_ok("{\"name\": \"t\", \"networks\": [{\"name\": \"core\", \"cidr\": \"2001:db8::/64\"},"
		" {\"name\": \"site\", \"cidr\": \"fd00:1::/64\"}], \"nodes\": ["
		"{\"name\": \"gw\", \"kind\": \"nat\", \"nat\": \"symmetric\", \"wan\": \"wan\", \"links\": ["
		" {\"network\": \"site\", \"ifname\": \"lan\"}, {\"network\": \"core\", \"ifname\": \"wan\", \"address\": \"2001:db8::7\"}]},"
		" {\"name\": \"h\", \"links\": [{\"network\": \"site\"}], \"routes\": [{\"dst\": \"default\", \"via\": \"gw\"}]}], "
		"\"expectations\": []}");
	char ip[ADDR_STRLEN], c[CIDR_STRLEN];

	cr_assert_eq(s->nodes[0].kind, SIM_NODE_NAT);
	cr_assert_str_eq(s->nodes[0].wan, "wan");
	cr_assert_str_eq(cidr_format(&sim_scenario_link(s, 0, "wan")->addr, c, sizeof(c)), "2001:db8::7/64");
	cr_assert_str_eq(cidr_format(&s->nodes[1].routes[0].dst, c, sizeof(c)), "::/0");
	cr_assert_str_eq(addr_format_ip(&s->nodes[1].routes[0].via, ip, sizeof(ip)), "fd00:1::1");
	sim_scenario_free(s);
}

/* IPv6: addresses picked from a /64, "default" takes the family of via, and a
 * node on an IPv4 and an IPv6 network with the router picks the router's
 * address of dst's family */
Test(sim_scenario, ipv6_lab)
{
	struct sim_scenario *s = parse_ok(DOC(NETS6,
		"{\"name\": \"r\", \"kind\": \"router\", \"links\": [{\"network\": \"v6\"}, {\"network\": \"internet\"}]},"
		" {\"name\": \"a\", \"links\": [{\"network\": \"v6\"}], \"routes\": [{\"dst\": \"default\", \"via\": \"r\"}]},"
		" {\"name\": \"d\", \"links\": [{\"network\": \"internet\"}, {\"network\": \"v6\", \"address\": \"2001:db8:1::d/64\"}],"
		"  \"routes\": [{\"dst\": \"default\", \"via\": \"r\"}, {\"dst\": \"::/0\", \"via\": \"r\"},"
		"              {\"dst\": \"2001:db8:7::/48\", \"via\": \"2001:db8:1::1\"}, {\"dst\": \"default\", \"via\": \"2001:db8:1::1\"}]}",
		"{\"ping\": [\"a\", \"d\"]}, {\"ping\": [\"a\", \"2001:db8:1::d\"]}"));
	static const struct {
		size_t node, route;
		const char *dst, *via, *dev;
	} want[] = {
		{ 1, 0, "::/0", "2001:db8:1::1", "eth0" },
		{ 2, 0, "0.0.0.0/0", "203.0.113.1", "eth0" },	/* the first network d shares with r */
		{ 2, 1, "::/0", "2001:db8:1::1", "eth1" },
		{ 2, 2, "2001:db8:7::/48", "2001:db8:1::1", "eth1" },
		{ 2, 3, "::/0", "2001:db8:1::1", "eth1" },
	};
	char ip[ADDR_STRLEN], c[CIDR_STRLEN];
	union sockaddr_any a;

	sim_link_ip(sim_scenario_link(s, 0, NULL), &a);
	cr_assert_str_eq(addr_format_ip(&a, ip, sizeof(ip)), "2001:db8:1::1");
	cr_assert_str_eq(cidr_format(&sim_scenario_link(s, 1, NULL)->addr, c, sizeof(c)), "2001:db8:1::2/64");
	cr_assert_str_eq(cidr_format(&sim_scenario_link(s, 2, "eth1")->addr, c, sizeof(c)), "2001:db8:1::d/64");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct sim_route *rt = &s->nodes[want[i].node].routes[want[i].route];
		cr_expect_str_eq(cidr_format(&rt->dst, c, sizeof(c)), want[i].dst, "case %zu", i);
		cr_expect_str_eq(addr_format_ip(&rt->via, ip, sizeof(ip)), want[i].via, "case %zu", i);
		cr_expect_str_eq(rt->dev, want[i].dev, "case %zu", i);
	}
	cr_assert_eq(s->expects[1].kind, SIM_EXPECT_PING);
	cr_assert_str_eq(s->expects[1].to, "2001:db8:1::d");
	sim_scenario_free(s);
}

/* "address": "IP/PREFIX" keeps its host part, on a network with a cidr and
 * on one without */
Test(sim_scenario, address_with_prefix)
{
	struct sim_scenario *s = parse_ok(DOC("\"networks\": [{\"name\": \"site1\", \"cidr\": \"10.0.1.0/24\"}, {\"name\": \"bare\"}]",
		"{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.7/24\"},"
		" {\"network\": \"bare\", \"address\": \"10.8.0.5/16\"}]},"
		" {\"name\": \"b\", \"links\": [{\"network\": \"bare\", \"address\": \"2001:db8::5/64\"}]}", ""));
	char c[CIDR_STRLEN];
	cr_assert_str_eq(cidr_format(&s->links[0].addr, c, sizeof(c)), "10.0.1.7/24");
	cr_assert_str_eq(cidr_format(&s->links[1].addr, c, sizeof(c)), "10.8.0.5/16");
	cr_assert_str_eq(cidr_format(&s->links[2].addr, c, sizeof(c)), "2001:db8::5/64");
	sim_scenario_free(s);
}

/* a host "a" on site1 with the link keys given */
#define IMP(keys) "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", " keys "}]}"

struct bad_case {
	const char *text;
	const char *err;	/* the whole message */
};

/* every kind of mistake, with the message it must produce */
static const struct bad_case bad[] = {
	{ "{\"name\": \"t\",", "t.json:1:13: string or '}' expected near end of file" },
	{ "[]", "t.json: (top level): must be an object, not an array" },
	{ "{\"nodes\": [{\"name\": \"a\"}]}", "t.json: name: missing (required)" },
	{ "{\"name\": \"t\", \"nodes\": [{\"name\": \"a\"}], \"colour\": 1}", "t.json: colour: unknown key" },
	{ "{\"name\": \"t t\", \"nodes\": [{\"name\": \"a\"}]}",
	  "t.json: name: \"t t\": only letters, digits, '-' and '_' and '.' are allowed" },
	{ "{\"name\": \"t\"}", "t.json: nodes: missing (required)" },
	{ "{\"name\": \"t\", \"nodes\": []}", "t.json: nodes: must list at least one node" },
	{ "{\"name\": \"t\", \"timeout_s\": 0, \"nodes\": [{\"name\": \"a\"}]}",
	  "t.json: timeout_s: 0 is out of range 1..3600" },
	{ "{\"name\": \"t\", \"timeout_s\": \"9\", \"nodes\": [{\"name\": \"a\"}]}",
	  "t.json: timeout_s: must be an integer, not a string" },
	{ "{\"name\": \"t\", \"name\": \"u\", \"nodes\": [{\"name\": \"a\"}]}",
	  "t.json:1:20: duplicate object key near '\"name\"'" },
	/* networks */
	{ DOC("\"networks\": [{\"name\": \"n\", \"cidr\": \"10.0.1.1/24\"}]", "{\"name\": \"a\"}", ""),
	  "t.json: networks[0].cidr: \"10.0.1.1/24\" is not a network prefix (like 10.0.1.0/24, host bits zero)" },
	{ DOC("\"networks\": [{\"name\": \"n\"}, {\"name\": \"n\"}]", "{\"name\": \"a\"}", ""),
	  "t.json: networks[1].name: network \"n\" is defined twice" },
	{ DOC("\"networks\": {}", "{\"name\": \"a\"}", ""), "t.json: networks: must be an array, not an object" },
	/* nodes */
	{ DOC(NETS, "{\"name\": \"a-very-long-node-name\"}", ""),
	  "t.json: nodes[0].name: \"a-very-long-node-name\" is longer than 15 characters" },
	{ DOC(NETS, "{\"name\": \"a\"}, {\"name\": \"a\"}", ""), "t.json: nodes[1].name: node \"a\" is defined twice" },
	{ DOC(NETS, "{\"name\": \"site1\"}", ""),
	  "t.json: nodes[0].name: \"site1\" is already a network's name (each names a namespace)" },
	{ DOC(NETS, "{\"name\": \"a\", \"kind\": \"switch\"}", ""),
	  "t.json: nodes[0].kind: \"switch\" is not one of host, router, nat" },
	{ DOC(NETS, "{\"name\": \"a\", \"nat\": \"full-cone\"}", ""),
	  "t.json: nodes[0].nat: only a node of kind \"nat\" has a NAT model" },
	{ DOC(NETS, "{\"name\": \"a\", \"kind\": \"nat\", \"links\": [{\"network\": \"site1\"}]}", ""),
	  "t.json: nodes[0]: a node of kind \"nat\" needs \"nat\" (a preset name or a model object)" },
	{ DOC(NETS, "{\"name\": \"a\", \"kind\": \"nat\", \"nat\": {\"mapping\": \"sideways\"}, \"links\": [{\"network\": \"site1\"}]}", ""),
	  "t.json: nodes[0].nat.mapping: unknown value \"sideways\" (expected endpoint-independent, address-dependent or address-and-port-dependent)" },
	{ DOC(NETS, "{\"name\": \"a\", \"kind\": \"nat\", \"nat\": 7, \"links\": [{\"network\": \"site1\"}]}", ""),
	  "t.json: nodes[0].nat: must be a preset name or a model object, not an integer" },
	{ DOC(NETS, "{\"name\": \"a\", \"kind\": \"nat\", \"nat\": \"full-cone\", \"wan\": \"wan0\", \"links\": [{\"network\": \"site1\"}]}", ""),
	  "t.json: nodes[0].wan: node \"a\" has no interface \"wan0\"" },
	/* links */
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"moon\"}]}", ""),
	  "t.json: nodes[0].links[0].network: unknown network \"moon\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\"}, {\"network\": \"site1\"}]}", ""),
	  "t.json: nodes[0].links[1].network: node \"a\" is already linked to \"site1\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"ifname\": \"x\"}, {\"network\": \"internet\", \"ifname\": \"x\"}]}", ""),
	  "t.json: nodes[0].links[1].ifname: interface \"x\" is used twice on node \"a\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"ifname\": \"averyveryverylongif\"}]}", ""),
	  "t.json: nodes[0].links[0].ifname: \"averyveryverylongif\" is longer than 15 characters" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.2.5\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 10.0.2.5 is not inside network \"site1\" (10.0.1.0/24)" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.255\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 10.0.1.255 is the network or broadcast address of \"site1\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.7/16\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 10.0.1.7/16 is not inside network \"site1\" (10.0.1.0/24)" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.0/24\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 10.0.1.0/24 is the network or broadcast address of \"site1\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.7/33\"}]}", ""),
	  "t.json: nodes[0].links[0].address: \"10.0.1.7/33\" is not an address with a prefix (like 10.0.1.2/24)" },
	{ DOC("\"networks\": [{\"name\": \"n\"}]", "{\"name\": \"a\", \"links\": [{\"network\": \"n\", \"address\": \"10.8.0.5/16\"}]}, "
		    "{\"name\": \"b\", \"links\": [{\"network\": \"n\", \"address\": \"10.8.0.5/24\"}]}", ""),
	  "t.json: nodes[1].links[0].address: 10.8.0.5/24 is already the address of a/eth0" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"ten\"}]}", ""),
	  "t.json: nodes[0].links[0].address: \"ten\" is not an IP address" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.5\"}]}, "
		    "{\"name\": \"b\", \"links\": [{\"network\": \"site1\", \"address\": \"10.0.1.5\"}]}", ""),
	  "t.json: nodes[1].links[0].address: 10.0.1.5 is already the address of a/eth0" },
	{ DOC("\"networks\": [{\"name\": \"n\"}]", "{\"name\": \"a\", \"links\": [{\"network\": \"n\"}]}", ""),
	  "t.json: nodes[0].links[0]: needs an \"address\": network \"n\" has no cidr to pick one from" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"loss_percent\": 101}]}", ""),
	  "t.json: nodes[0].links[0].loss_percent: 101 is out of range 0..100" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\", \"mtu\": 1400}]}", ""),
	  "t.json: nodes[0].links[0].mtu: unknown key" },
	/* routes */
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\"}], \"routes\": [{\"dst\": \"default\", \"via\": \"10.9.9.9\"}]}", ""),
	  "t.json: nodes[0].routes[0].via: 10.9.9.9 is not on any network of node \"a\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\"}], \"routes\": [{\"dst\": \"default\", \"via\": \"b\"}]}, "
		    "{\"name\": \"b\", \"links\": [{\"network\": \"internet\"}]}", ""),
	  "t.json: nodes[0].routes[0].via: node \"b\" shares no network with \"a\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"links\": [{\"network\": \"site1\"}], \"routes\": [{\"dst\": \"everywhere\", \"via\": \"10.0.1.9\"}]}", ""),
	  "t.json: nodes[0].routes[0].dst: \"everywhere\" is neither \"default\" nor a network prefix" },
	/* IPv6 */
	{ DOC(NETS6, "{\"name\": \"a\", \"links\": [{\"network\": \"v6\", \"address\": \"2001:db8:2::5\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 2001:db8:2::5 is not inside network \"v6\" (2001:db8:1::/64)" },
	{ DOC(NETS6, "{\"name\": \"a\", \"links\": [{\"network\": \"v6\", \"address\": \"2001:db8:1::\"}]}", ""),
	  "t.json: nodes[0].links[0].address: 2001:db8:1:: is the network or broadcast address of \"v6\"" },
	{ DOC(NETS6, "{\"name\": \"a\", \"links\": [{\"network\": \"v6\"}], \"routes\": [{\"dst\": \"10.0.0.0/8\", \"via\": \"b\"}]}, "
		     "{\"name\": \"b\", \"links\": [{\"network\": \"v6\"}]}", ""),
	  "t.json: nodes[0].routes[0].via: the gateway's address family differs from dst's" },
	{ DOC(NETS6, "{\"name\": \"a\", \"links\": [{\"network\": \"v6\"}], \"routes\": [{\"dst\": \"::/0\", \"via\": \"10.0.1.1\"}]}", ""),
	  "t.json: nodes[0].routes[0].via: 10.0.1.1 is not on any network of node \"a\"" },
	/* a NAT node translates the WAN's family only: an inside link of the
	 * other family, either way round */
	{ DOC(NETS6, "{\"name\": \"b\", \"links\": [{\"network\": \"v6\"}]}, "
		     "{\"name\": \"gw\", \"kind\": \"nat\", \"nat\": \"full-cone\", \"wan\": \"wan\", \"links\": ["
		     "{\"network\": \"internet\", \"ifname\": \"wan\"}, {\"network\": \"v6\", \"ifname\": \"lan\", \"address\": \"2001:db8:1::9/64\"}]}", ""),
	  "t.json: nodes[1].links[1]: 2001:db8:1::9/64 on network \"v6\" is IPv6, but the WAN wan (203.0.113.1/24) is IPv4: "
	  "a node of kind \"nat\" translates one family (no NAT46/NAT64, no dual-stack gateway)" },
	{ DOC(NETS6, "{\"name\": \"gw\", \"kind\": \"nat\", \"nat\": \"symmetric\", \"links\": ["
		     "{\"network\": \"v6\"}, {\"network\": \"internet\"}]}", ""),
	  "t.json: nodes[0].links[1]: 203.0.113.1/24 on network \"internet\" is IPv4, but the WAN eth0 (2001:db8:1::1/64) is IPv6: "
	  "a node of kind \"nat\" translates one family (no NAT46/NAT64, no dual-stack gateway)" },
	/* processes */
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"name\": \"x\"}]}", ""),
	  "t.json: nodes[0].processes[0]: needs \"argv\" (an array of strings)" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": \"sleep 1\"}]}", ""),
	  "t.json: nodes[0].processes[0].argv: must be an array of strings, not a string" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"sleep\", 1]}]}", ""),
	  "t.json: nodes[0].processes[0].argv[1]: must be a string, not an integer" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"sleep\"]}, {\"argv\": [\"sleep\"]}]}", ""),
	  "t.json: nodes[0].processes[1].argv[0]: node \"a\" already runs a process named \"sleep\" (add a \"name\")" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\", \"${colour}\"]}]}", ""),
	  "t.json: nodes[0].processes[0].argv[1]: unknown variable ${colour}" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\", \"${ip:zz}\"]}]}", ""),
	  "t.json: nodes[0].processes[0].argv[1]: ${ip:zz}: unknown node \"zz\"" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\", \"${ip:a}\"]}]}", ""),
	  "t.json: nodes[0].processes[0].argv[1]: ${ip:a}: node \"a\" has no links" },
	{ DOC(NETS, PUB ", {\"name\": \"a\", \"processes\": [{\"argv\": [\"x\", \"${ip:pub/wlan0}\"]}]}", ""),
	  "t.json: nodes[1].processes[0].argv[1]: ${ip:pub/wlan0}: node \"pub\" has no interface wlan0" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\", \"${ip\"]}]}", ""),
	  "t.json: nodes[0].processes[0].argv[1]: \"${ip\": unterminated ${" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"], \"after\": [\"y\"]}]}", ""),
	  "t.json: nodes[0].processes[0].after[0]: unknown process \"y\" (write NODE/NAME)" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"], \"after\": [\"a/y\"]}, {\"argv\": [\"y\"], \"after\": [\"x\"]}]}", ""),
	  "t.json: nodes[0].processes[1].after: processes wait for each other in a cycle (a/y after a/x)" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"]}]}, {\"name\": \"b\", \"processes\": [{\"argv\": [\"x\"]}, {\"argv\": [\"y\"], \"after\": [\"x\"]}]}", ""),
	  "t.json: nodes[1].processes[1].after[0]: \"x\" names processes on several nodes; write NODE/NAME" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"], \"ready\": {\"udp\": 70000}}]}", ""),
	  "t.json: nodes[0].processes[0].ready.udp: 70000 is out of range 1..65535" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"], \"ready\": {\"udp\": 1, \"tcp\": 2}}]}", ""),
	  "t.json: nodes[0].processes[0].ready: needs exactly one of udp, tcp, file, command" },
	{ DOC(NETS, "{\"name\": \"a\", \"processes\": [{\"argv\": [\"x\"], \"oneshot\": true, \"ready\": {\"udp\": 1}}]}", ""),
	  "t.json: nodes[0].processes[0].ready: a oneshot process is ready when it exits 0; drop \"ready\"" },
	/* expectations */
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\", \"nobody\"]}"),
	  "t.json: expectations[0].ping[1]: \"nobody\" is neither a node, NODE/IFNAME nor an IP address" },
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\"]}"), "t.json: expectations[0].ping: must be [FROM, TO]" },
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\", \"pub/wlan0\"]}"),
	  "t.json: expectations[0].ping[1]: node \"pub\" has no interface wlan0" },
	{ DOC(NETS, PUB ", " GW ", " H1, "{\"ping\": [\"pub\", \"h1\"], \"path\": \"teleport\"}"),
	  "t.json: expectations[0].path: \"teleport\" is not one of direct, relayed" },
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\", \"pub\"], \"path\": \"direct\"}"),
	  "t.json: expectations[0].ping: a node has no mesh path to itself" },
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\", \"203.0.113.10\"], \"command\": \"true\"}"),
	  "t.json: expectations[0]: has both \"ping\" and \"command\"; one kind per expectation" },
	{ DOC(NETS, PUB, "{\"wait\": 1}"),
	  "t.json: expectations[0]: needs one of ping, command, stop, start, restart, sleep_ms, impair, reboot" },
	{ DOC(NETS, PUB, "{\"command\": \"true\"}"),
	  "t.json: expectations[0].node: missing (required: the node the command runs in)" },
	{ DOC(NETS, PUB, "{\"command\": \"true\", \"node\": \"pub\", \"expect_output\": \"(\"}"),
	  "t.json: expectations[0].expect_output: bad regular expression \"(\": Unmatched ( or \\(" },
	{ DOC(NETS, PUB, "{\"command\": \"true\", \"node\": \"pub\", \"expect_exit\": 256}"),
	  "t.json: expectations[0].expect_exit: 256 is out of range 0..255" },
	{ DOC(NETS, PUB, "{\"restart\": \"pub/nothing\"}"),
	  "t.json: expectations[0].restart: unknown process \"pub/nothing\" (write NODE/NAME)" },
	{ DOC(NETS, PUB, "{\"sleep_ms\": \"1s\"}"), "t.json: expectations[0].sleep_ms: must be an integer, not a string" },
	{ DOC(NETS, PUB, "{\"ping\": [\"pub\", \"203.0.113.10\"], \"timeout\": 5}"),
	  "t.json: expectations[0].timeout: unknown key" },
	{ DOC(NETS, PUB, "{\"stop\": \"meshstun\", \"if\": \"true\"}"),
	  "t.json: expectations[0].node: missing (required with \"if\": the node the condition runs in)" },
	{ DOC(NETS, PUB, "{\"stop\": \"meshstun\", \"node\": \"pub\"}"),
	  "t.json: expectations[0].node: goes with \"if\" (the node an action's condition runs in)" },
	{ DOC(NETS, PUB, "{\"stop\": \"meshstun\", \"if\": [], \"node\": \"pub\"}"),
	  "t.json: expectations[0].if: must not be empty" },
	{ DOC(NETS, PUB, "{\"sleep_ms\": 5, \"if\": \"true\", \"node\": \"pub\"}"),
	  "t.json: expectations[0].if: unknown key" },
	/* impairments: every refusal names the path down to the value */
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"delay_ms\": 10, \"jitter_ms\": 20}"), ""),
	  "t.json: nodes[1].links[0].egress.jitter_ms: 20 is more than delay_ms (10): jitter is uniform in "
	  "[-jitter, +jitter] around the delay" },
	{ DOC(NETS, PUB ", " IMP("\"ingress\": {\"delay_ms\": -1}"), ""),
	  "t.json: nodes[1].links[0].ingress.delay_ms: -1 is out of range 0..60000" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"loss_percent\": 100.01}"), ""),
	  "t.json: nodes[1].links[0].egress.loss_percent: 100.01 is out of range 0..100" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"duplicate_percent\": 200}"), ""),
	  "t.json: nodes[1].links[0].egress.duplicate_percent: 200 is out of range 0..100" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"rate_kbit\": 0}"), ""),
	  "t.json: nodes[1].links[0].egress.rate_kbit: 0 would carry nothing; leave rate_kbit out for no limit" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"queue_kbytes\": 4}"), ""),
	  "t.json: nodes[1].links[0].egress.queue_kbytes: a queue limit needs rate_kbit (only the rate limit queues)" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"delay\": 4}"), ""),
	  "t.json: nodes[1].links[0].egress.delay: unknown key (known: delay_ms, jitter_ms, loss_percent, "
	  "duplicate_percent, reorder_percent, rate_kbit, queue_packets, queue_kbytes)" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {}, \"loss_percent\": 3"), ""),
	  "t.json: nodes[1].links[0].loss_percent: not with egress/ingress: give their loss_percent instead" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {\"delay_ms\": 10, \"jitter_ms\": 5}"),
	      "{\"impair\": \"a\", \"egress\": {\"delay_ms\": 2}}"),
	  "t.json: expectations[0].egress.jitter_ms: 5 is more than delay_ms (2): jitter is uniform in "
	  "[-jitter, +jitter] around the delay" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {}"), "{\"impair\": \"a/eth9\", \"delay_ms\": 2}"),
	  "t.json: expectations[0].impair: node \"a\" has no interface eth9" },
	{ DOC(NETS, PUB ", " IMP("\"egress\": {}"), "{\"impair\": \"a\", \"delay_s\": 2}"),
	  "t.json: expectations[0].delay_s: unknown key (known: delay_ms, jitter_ms, loss_percent, "
	  "duplicate_percent, reorder_percent, rate_kbit, queue_packets, queue_kbytes, egress, ingress)" },
	{ DOC(NETS, PUB, "{\"impair\": \"pub\", \"reorder_percent\": 60}"),
	  "t.json: expectations[0].reorder_percent: 60 is out of range 0..50" },
	{ "{\"name\": \"t\", \"seed\": -1, " NETS ", \"nodes\": [" PUB "]}",
	  "t.json: seed: must be an integer 0..2^63-1" },
};

Test(sim_scenario, bad_files)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sim_scenario *s = (void *)1;
		char err[SIM_ERR_MAX] = "";
		int rc = sim_scenario_parse("t.json", bad[i].text, &s, err, sizeof(err));
		cr_expect_eq(rc, -EINVAL, "case %zu parsed: %s", i, bad[i].text);
		cr_expect_null(s, "case %zu", i);
		cr_expect_str_eq(err, bad[i].err, "case %zu: got %s", i, err);
	}
}

Test(sim_scenario, missing_file)
{
	struct sim_scenario *s;
	char err[SIM_ERR_MAX];
	cr_assert_eq(sim_scenario_load("/nonexistent/x.json", &s, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "/nonexistent/x.json: No such file or directory");
}

Test(sim_scenario, path_expectation_and_actions)
{
	struct sim_scenario *s = parse_ok(DOC(NETS, PUB ", " GW ", " H1,
					      "{\"ping\": [\"h1\", \"pub\"], \"path\": \"relayed\", \"within_ms\": 3000},"
					      "{\"restart\": \"meshstun\", \"name\": \"bounce\"}, {\"sleep_ms\": 10},"
					      "{\"command\": [\"true\"], \"node\": \"h1\", \"within_ms\": 50},"
					      "{\"stop\": \"pub/meshstun\", \"if\": \"test -e x\", \"node\": \"h1\"}"));
	cr_assert_eq(s->nexpects, 5);
	cr_assert_eq(s->expects[0].kind, SIM_EXPECT_PATH);
	cr_assert_str_eq(s->expects[0].path, "relayed");
	cr_assert_eq(s->expects[0].to_node, 0);
	cr_assert_eq(s->expects[0].within_ms, 3000);
	cr_assert_eq(s->expects[1].kind, SIM_EXPECT_RESTART);
	cr_assert_str_eq(s->expects[1].label, "bounce");
	cr_assert_eq(s->expects[1].proc, 0);
	cr_assert_eq(s->expects[2].sleep_ms, 10);
	cr_assert_eq(s->expects[3].argv.n, 1);
	cr_assert(!s->expects[1].has_cond);
	cr_assert_eq(s->expects[4].kind, SIM_EXPECT_STOP);
	cr_assert(s->expects[4].has_cond);
	cr_assert_eq(s->expects[4].from, 2);
	cr_assert_str_eq(s->expects[4].argv.v[2], "test -e x");
	sim_scenario_free(s);
}

Test(sim_scenario, impairments_and_impair_steps)
{
	struct sim_scenario *s = parse_ok("{\"name\": \"t\", \"seed\": 42, " NETS ", \"nodes\": [" PUB ", "
		IMP("\"egress\": {\"delay_ms\": 75, \"jitter_ms\": 2.5}, \"ingress\": {\"rate_kbit\": 800, "
		    "\"queue_packets\": 20, \"loss_percent\": 0.5}") "], \"expectations\": ["
		"{\"impair\": \"a\", \"delay_ms\": 5, \"name\": \"closer\"},"
		"{\"impair\": \"pub/eth0\", \"ingress\": {\"duplicate_percent\": 1}}]}");
	const struct sim_link *a = sim_scenario_link(s, 1, NULL);
	cr_assert_eq(s->seed, 42);
	cr_assert(a->impaired);
	cr_assert_eq(a->impair[IMPAIR_EGRESS].delay_us, 75000);
	cr_assert_eq(a->impair[IMPAIR_EGRESS].jitter_us, 2500);
	cr_assert_eq(a->impair[IMPAIR_INGRESS].rate_kbit, 800);
	cr_assert_eq(a->impair[IMPAIR_INGRESS].queue_packets, 20);
	cr_assert_eq(a->impair[IMPAIR_INGRESS].loss_ppm, 5000);
	cr_assert_eq(s->expects[0].kind, SIM_EXPECT_IMPAIR);
	cr_assert_eq(s->expects[0].link, 1);
	cr_assert_str_eq(s->expects[0].update, "{\"delay_ms\":5}");
	cr_assert_str_eq(s->expects[0].label, "closer");
	/* a link named by a step alone gets a line, without impairment until then */
	cr_assert_eq(s->expects[1].link, 0);
	cr_assert(s->links[0].impaired);
	cr_assert(!impair_conf_active(&s->links[0].impair[IMPAIR_EGRESS]));
	sim_scenario_free(s);
	/* the default seed; no line where nothing asks for one */
	s = parse_ok(GOOD);
	cr_assert_eq(s->seed, 1);
	for (size_t i = 0; i < s->nlinks; i++)
		cr_assert(!s->links[i].impaired);
	sim_scenario_free(s);
}

/* a gateway whose model declares port mapping (sim/portmapd.h) */
#define GWPM(list) "{\"name\": \"gw1\", \"kind\": \"nat\", \"nat\": {\"preset\": \"symmetric\", \"port_mapping\": " list \
	"}, \"wan\": \"wan\", \"links\": [{\"network\": \"internet\", \"ifname\": \"wan\", \"address\": \"203.0.113.2\"}," \
	" {\"network\": \"site1\", \"ifname\": \"lan\", \"address\": \"10.0.1.1\"}]}"

Test(sim_scenario, port_mapping_processes_and_reboot)
{
	struct sim_scenario *s = parse_ok(DOC(NETS, PUB ", " GWPM("[\"pcp\", \"upnp\"]") ", " H1,
					      "{\"reboot\": \"gw1\"}, {\"reboot\": \"gw1\", \"name\": \"again\"}"));
	/* pub's meshstun, gw1's two, h1's sleep */
	cr_assert_eq(s->nprocs, 4);
	cr_assert_str_eq(s->procs[1].name, SIM_PORTMAPD_STUN_PROC);
	cr_assert_eq(s->procs[1].node, 1);
	cr_assert_str_eq(s->procs[1].argv.v[2], "${ip:gw1/wan}:3478");
	cr_assert_eq(s->procs[1].ready.kind, SIM_READY_UDP);
	cr_assert_str_eq(s->procs[2].name, SIM_PORTMAPD_PROC);
	cr_assert_str_eq(s->procs[2].argv.v[0], SIM_PORTMAPD_BIN);
	cr_assert_str_eq(s->procs[2].argv.v[3], "${run}/portmap/gw1.conf");
	cr_assert_eq(s->procs[2].nafter, 1);
	cr_assert_eq(s->procs[2].after[0], 1, "miniupnpd waits for its STUN server");
	cr_assert_eq(s->procs[2].ready.kind, SIM_READY_COMMAND);
	cr_assert(strstr(s->procs[2].ready.argv.v[2], "/Listening for NAT-PMP/"), "%s", s->procs[2].ready.argv.v[2]);
	cr_assert_eq(s->procs[2].ready.timeout_ms, SIM_PORTMAPD_READY_MS);
	cr_assert_eq(s->expects[0].kind, SIM_EXPECT_REBOOT);
	cr_assert_eq(s->expects[0].from, 1);
	cr_assert_eq(s->expects[0].proc, 2);
	cr_assert_str_eq(s->expects[0].label, "reboot gw1");
	cr_assert_str_eq(s->expects[1].label, "again");
	sim_scenario_free(s);
	/* UPnP alone: ready once HTTP listens */
	s = parse_ok(DOC(NETS, PUB ", " GWPM("[\"upnp\"]") ", " H1, ""));
	cr_assert(strstr(s->procs[2].ready.argv.v[2], "/HTTP listening on port/"), "%s", s->procs[2].ready.argv.v[2]);
	sim_scenario_free(s);
	/* without port_mapping, no process is added */
	s = parse_ok(GOOD);
	cr_assert_eq(s->nprocs, 2);
	sim_scenario_free(s);
}

Test(sim_scenario, port_mapping_refusals)
{
	static const struct bad_case cases[] = {
		{ DOC(NETS, PUB ", " GWPM("[\"pcp\", \"pcp\"]") ", " H1, ""),
		  "t.json: nodes[1].nat.port_mapping[1]: \"pcp\" is listed twice" },
		{ DOC(NETS, PUB ", " GWPM("[\"upnp\", \"natpmp\"]") ", " H1, ""),
		  "t.json: nodes[1].nat.port_mapping[1]: unknown protocol \"natpmp\" (expected pcp, nat-pmp or upnp)" },
		{ DOC(NETS, PUB ", " GWPM("[1]") ", " H1, ""),
		  "t.json: nodes[1].nat.port_mapping[0]: must be a string (\"pcp\", \"nat-pmp\" or \"upnp\")" },
		{ DOC(NETS, PUB ", " GWPM("[]") ", " H1, ""),
		  "t.json: nodes[1].nat.port_mapping: must be a non-empty array of \"pcp\", \"nat-pmp\", \"upnp\"" },
		{ DOC(NETS, PUB ", " GWPM("\"upnp\"") ", " H1, ""),
		  "t.json: nodes[1].nat.port_mapping: must be a non-empty array of \"pcp\", \"nat-pmp\", \"upnp\"" },
		{ DOC(NETS, PUB ", " GW ", " H1, "{\"reboot\": \"gw1\"}"),
		  "t.json: expectations[0].reboot: node \"gw1\" is not a NAT gateway with \"port_mapping\" in its model" },
		{ DOC(NETS, PUB ", " GWPM("[\"pcp\"]") ", " H1, "{\"reboot\": \"h1\"}"),
		  "t.json: expectations[0].reboot: node \"h1\" is not a NAT gateway with \"port_mapping\" in its model" },
		{ DOC(NETS, PUB ", " GWPM("[\"pcp\"]") ", " H1, "{\"reboot\": \"gw9\"}"),
		  "t.json: expectations[0].reboot: unknown node \"gw9\"" },
		{ DOC(NETS, PUB ", " GWPM("[\"pcp\"]") ", " H1, "{\"reboot\": \"gw1\", \"node\": \"h1\"}"),
		  "t.json: expectations[0].node: unknown key" },
		{ DOC("\"networks\": [{\"name\": \"core\", \"cidr\": \"2001:db8::/64\"}, {\"name\": \"site\", \"cidr\": \"fd00:1::/64\"}]",
		      "{\"name\": \"gw\", \"kind\": \"nat\", \"nat\": {\"port_mapping\": [\"pcp\"]}, \"links\": ["
		      "{\"network\": \"core\", \"ifname\": \"wan\"}, {\"network\": \"site\", \"ifname\": \"lan\"}]}", ""),
		  "t.json: nodes[0].nat.port_mapping: miniupnpd maps IPv4 (NAT44) only; the WAN wan is IPv6" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sim_scenario *s = (void *)1;
		char err[SIM_ERR_MAX] = "";
		cr_expect_eq(sim_scenario_parse("t.json", cases[i].text, &s, err, sizeof(err)), -EINVAL, "case %zu", i);
		cr_expect_null(s, "case %zu", i);
		cr_expect_str_eq(err, cases[i].err, "case %zu: got %s", i, err);
	}
}
