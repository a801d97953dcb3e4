/* A relay's decision per forwarded packet (enforce_relay_decide): the
 * issue's groups clients, web and db; allowed flows and their replies pass,
 * what no rule allows is dropped, and what the relay passes without a rule
 * (echo replies, ICMP errors, meshctl ping) is exactly that. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <string.h>

#include "agent/meshd/enforce.h"
#include "agent/meshd/meshd.h"
#include "agent/meshd/policy_nft.h"

static struct policy_group group(const char *json)
{
	struct policy_group g;
	char err[POLICY_ERR_MAX] = "";
	json_error_t je;
	json_t *j = json_loads(json, 0, &je);

	cr_assert_not_null(j, "test JSON: %s", je.text);
	cr_assert_eq(policy_group_parse(j, POLICY_PARSE_RESOLVED, &g, err, sizeof(err)), 0, "%s", err);
	json_decref(j);
	return g;
}

/* clients 100.64.0.10, web 100.64.0.20, db 100.64.0.30 */
#define CLIENTS "{\"id\":\"clients\",\"outbound_rules\":[{\"ip_protocol\":\"any\"}]}"
#define WEB                                                                                     \
	"{\"id\":\"web\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80," \
	"\"groups\":[\"clients\"],\"group_addresses\":[\"100.64.0.10\"]}],"                         \
	"\"outbound_rules\":[{\"ip_protocol\":\"any\"}]}"
#define DB                                                                                      \
	"{\"id\":\"db\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432," \
	"\"groups\":[\"web\"],\"group_addresses\":[\"100.64.0.20\"]}],"                             \
	"\"outbound_rules\":[{\"ip_protocol\":\"any\"}]}"

static struct policy_peer peer(const char *ip, const char *gid)
{
	struct policy_peer p = { .naddr = 1, .group_id = gid };

	p.addr[0].family = AF_INET;
	inet_pton(AF_INET, ip, p.addr[0].a);
	return p;
}

/* an IPv4 packet: proto, ports (tcp/udp) or type (icmp), tcp flags */
static size_t packet(uint8_t *b, const char *src, const char *dst, uint8_t proto, uint16_t sport, uint16_t dport,
		     uint8_t flags_or_type)
{
	memset(b, 0, 80);
	b[0] = 0x45;
	b[9] = proto;
	inet_pton(AF_INET, src, b + 12);
	inet_pton(AF_INET, dst, b + 16);
	if (proto == IPPROTO_ICMP) {
		b[20] = flags_or_type;
		return 20 + 8 + 16;
	}
	b[20] = (uint8_t)(sport >> 8);
	b[21] = (uint8_t)sport;
	b[22] = (uint8_t)(dport >> 8);
	b[23] = (uint8_t)dport;
	b[33] = flags_or_type;
	return 20 + 20;
}

enum { SYN = 0x02, ACK = 0x10, SYNACK = 0x12 };

struct pcase {
	const char *name;
	int from, to;		/* 0 clients, 1 web, 2 db */
	uint8_t proto;
	uint16_t sport, dport;
	uint8_t flags;
	bool pass;
};

static const struct pcase cases[] = {
	{ "client opens web:80", 0, 1, IPPROTO_TCP, 40000, 80, SYN, true },
	{ "web answers the client", 1, 0, IPPROTO_TCP, 80, 40000, SYNACK, true },
	{ "client opens web:22", 0, 1, IPPROTO_TCP, 40000, 22, SYN, false },
	{ "client opens db:5432", 0, 2, IPPROTO_TCP, 40000, 5432, SYN, false },
	{ "web opens db:5432", 1, 2, IPPROTO_TCP, 40001, 5432, SYN, true },
	{ "db answers web", 2, 1, IPPROTO_TCP, 5432, 40001, ACK, true },
	{ "db opens web from port 5432 (a SYN is no reply)", 2, 1, IPPROTO_TCP, 5432, 80, SYN, false },
	{ "web opens a client (clients allow nothing in)", 1, 0, IPPROTO_TCP, 40000, 22, SYN, false },
	{ "udp to web:80 (only tcp allowed)", 0, 1, IPPROTO_UDP, 40000, 80, 0, false },
	{ "udp from web's port 80 to a client (looks like a reply to nothing allowed)", 1, 0, IPPROTO_UDP, 80, 40000,
	  0, false },
	{ "ping client -> web (no icmp rule)", 0, 1, IPPROTO_ICMP, 0, 0, 8, false },
	{ "echo reply web -> client", 1, 0, IPPROTO_ICMP, 0, 0, 0, true },
	{ "destination unreachable db -> web", 2, 1, IPPROTO_ICMP, 0, 0, 3, true },
	{ "redirect db -> web", 2, 1, IPPROTO_ICMP, 0, 0, 5, false },
};

Test(enforce, relay_decides_per_flow)
{
	static const char *const ips[] = { "100.64.0.10", "100.64.0.20", "100.64.0.30" };
	static const char *const ids[] = { "clients", "web", "db" };
	struct policy_group g[3] = { group(CLIENTS), group(WEB), group(DB) };
	uint8_t b[80];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		struct policy_peer s = peer(ips[c->from], ids[c->from]), d = peer(ips[c->to], ids[c->to]);
		size_t len = packet(b, ips[c->from], ips[c->to], c->proto, c->sport, c->dport, c->flags);

		cr_expect_eq(enforce_relay_decide(&g[c->from], &s, &g[c->to], &d, b, len), c->pass, "%s", c->name);
	}
	for (int i = 0; i < 3; i++)
		policy_group_free(&g[i]);
}

Test(enforce, meshctl_ping_passes_other_echo_requests_do_not)
{
	struct policy_group gc = group(CLIENTS), gw = group(WEB);
	struct policy_peer s = peer("100.64.0.10", "clients"), d = peer("100.64.0.20", "web");
	uint8_t b[80];
	size_t len = packet(b, "100.64.0.10", "100.64.0.20", IPPROTO_ICMP, 0, 0, 8);

	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, len));
	memcpy(b + 28, POLICY_PROBE_DATA, POLICY_PROBE_LEN);
	cr_expect(enforce_relay_decide(&gc, &s, &gw, &d, b, len));
	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, 20 + 8 + 8), "truncated probe");
	policy_group_free(&gc);
	policy_group_free(&gw);
}

Test(enforce, broken_headers_and_fragments)
{
	struct policy_group gc = group(CLIENTS), gw = group(WEB);
	struct policy_peer s = peer("100.64.0.10", "clients"), d = peer("100.64.0.20", "web");
	uint8_t b[80];
	size_t len = packet(b, "100.64.0.10", "100.64.0.20", IPPROTO_TCP, 40000, 80, SYN);

	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, 19), "shorter than a header");
	b[0] = 0x65;
	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, len), "not IPv4");
	b[0] = 0x4f;
	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, len), "header longer than the packet");
	b[0] = 0x45;
	b[6] = 0x00;
	b[7] = 0x10;	/* a later fragment: no ports, and web allows port 80 only */
	cr_expect_not(enforce_relay_decide(&gc, &s, &gw, &d, b, len));
	b[7] = 0;
	cr_expect(enforce_relay_decide(&gc, &s, &gw, &d, b, len));
	policy_group_free(&gc);
	policy_group_free(&gw);
}

/* a relay's whole path: the groups and peers taken over from the service's
 * answer, packets looked up by their addresses, decisions remembered per
 * flow until the groups change, and what is unknown dropped */
static struct meshd relay;

static void add_peer(const char *ip, const char *gid)
{
	struct mpeer *p = calloc(1, sizeof(*p));

	cr_assert_not_null(p);
	p->tunnel_ip.in.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &p->tunnel_ip.in.sin_addr);
	snprintf(p->group_id, sizeof(p->group_id), "%s", gid);
	cr_assert_eq(vec_append(&relay.peers, &p), 0);
}

static json_t *policy_of(const char *groups)
{
	char buf[2048];
	json_t *j;

	snprintf(buf, sizeof(buf), "{\"security_groups\":%s}", groups);
	j = json_loads(buf, 0, NULL);
	cr_assert_not_null(j, "%s", buf);
	return j;
}

Test(enforce, relay_path_cache_and_unknown_devices)
{
	uint8_t b[80];
	size_t syn, ack;
	json_t *pol;

	relay.o.relay = true;
	vec_init(&relay.peers, sizeof(struct mpeer *), 16, "test peers");
	add_peer("100.64.0.10", "clients");
	add_peer("100.64.0.20", "web");
	add_peer("100.64.0.30", "db");
	add_peer("100.64.0.40", "nosuchgroup");

	/* no groups from the service (one that predates them): everything */
	syn = packet(b, "100.64.0.10", "100.64.0.30", IPPROTO_TCP, 40000, 5432, SYN);
	cr_expect(enforce_relay_allows(&relay, b, syn));

	pol = policy_of("[" CLIENTS "," WEB "," DB "]");
	enforce_relay_update(&relay, pol);
	json_decref(pol);
	cr_expect_eq(relay.pol.ngroups, 3);
	cr_expect_not(enforce_relay_allows(&relay, b, syn), "client to db");
	cr_expect_not(enforce_relay_allows(&relay, b, syn), "the same, remembered");
	cr_expect_eq(relay.pol.relay_policy_drops, 2);
	cr_expect_eq(relay.pol.cache_hits, 1);

	syn = packet(b, "100.64.0.20", "100.64.0.30", IPPROTO_TCP, 40001, 5432, SYN);
	cr_expect(enforce_relay_allows(&relay, b, syn), "web to db");
	ack = packet(b, "100.64.0.30", "100.64.0.20", IPPROTO_TCP, 5432, 40001, ACK);
	cr_expect(enforce_relay_allows(&relay, b, ack), "db's reply");
	ack = packet(b, "100.64.0.30", "100.64.0.20", IPPROTO_TCP, 5432, 40001, SYN);
	cr_expect_not(enforce_relay_allows(&relay, b, ack), "db opening from 5432: a SYN of its own, not the reply");

	syn = packet(b, "100.64.0.40", "100.64.0.20", IPPROTO_TCP, 40000, 80, SYN);
	cr_expect_not(enforce_relay_allows(&relay, b, syn), "a device whose group the relay does not know");
	syn = packet(b, "100.64.0.99", "100.64.0.20", IPPROTO_TCP, 40000, 80, SYN);
	cr_expect_not(enforce_relay_allows(&relay, b, syn), "an address no peer has");
	cr_expect_eq(relay.pol.relay_unknown_group, 2);

	/* the admin opens db to clients: the remembered drop is forgotten */
	pol = policy_of("[" CLIENTS "," WEB ",{\"id\":\"db\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\","
			"\"from_port\":5432,\"to_port\":5432}]}]");
	enforce_relay_update(&relay, pol);
	json_decref(pol);
	syn = packet(b, "100.64.0.10", "100.64.0.30", IPPROTO_TCP, 40000, 5432, SYN);
	cr_expect(enforce_relay_allows(&relay, b, syn), "client to db, now open");
	cr_expect_not(enforce_relay_allows(&relay, b, 12), "a truncated packet");

	relay.o.no_policy = true;
	cr_expect(enforce_relay_allows(&relay, b, 12), "--no-policy: no checks");
	relay.o.no_policy = false;
	enforce_stop(&relay);
	for (size_t i = 0; i < relay.peers.len; i++)
		free(meshd_peer(&relay, i));
	vec_free(&relay.peers);
}
