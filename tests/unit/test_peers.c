/* peers.c: the service's device lists into meshd's peers and the data
 * plane's: added, kept and updated, replaced, removed; bad entries, our own
 * entry and entries past the maximum skipped. A real WireGuard device with
 * fake ops (nothing leaves the process) and no service. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "agent/meshd/meshd.h"
#include "agent/wg/crypto.h"

#define NKEYS 4
#define MAXDEV 5

static struct meshd m;
static uint8_t priv[NKEYS][WG_KEY_LEN], pub[NKEYS][WG_KEY_LEN];	/* 0 is ours */
static int sent;

static void fake_send(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg, (void)pkts;
	sent += n;
}

static void fake_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	(void)arg, (void)pkts, (void)n;
}

static const struct wg_device_ops ops = { .udp_send = fake_send, .tun_deliver = fake_deliver };

static void setup(void)
{
	memset(&m, 0, sizeof(m));
	cr_assert_eq(wg_crypto_init(), 0);
	for (int i = 0; i < NKEYS; i++)
		wg_dh_generate(priv[i], pub[i]);
	/* ours (0) the lowest key: the side with the higher key yields its
	 * first spray by PATH_SPRAY_YIELD_MS (peers.c), and the tests below
	 * look at once */
	for (int i = 1; i < NKEYS; i++)
		if (memcmp(pub[i], pub[0], WG_KEY_LEN) < 0) {
			uint8_t t[WG_KEY_LEN];
			memcpy(t, pub[0], WG_KEY_LEN), memcpy(pub[0], pub[i], WG_KEY_LEN), memcpy(pub[i], t, WG_KEY_LEN);
			memcpy(t, priv[0], WG_KEY_LEN), memcpy(priv[0], priv[i], WG_KEY_LEN), memcpy(priv[i], t, WG_KEY_LEN);
		}
	cr_assert_eq(loop_new(&m.loop), 0);
	cr_assert_eq(wg_device_new(&ops, &m, &m.dev), 0);
	memcpy(m.st.pub, pub[0], WG_KEY_LEN);
	cr_assert_eq(wg_device_set_private_key(m.dev, priv[0]), 0);
	vec_init(&m.peers, sizeof(struct mpeer *), MESHD_MAX_PEERS, "test peers");
	disco_init(&m.disco, 0, 0);
	snprintf(m.self_id, sizeof(m.self_id), "self");
	sent = 0;
}

static void teardown(void)
{
	peers_clear(&m);
	wg_device_free(m.dev);
	loop_free(m.loop);
}

/* one entry of a list: key < 0 is a key that does not parse, id NULL none */
struct dev {
	const char *id;
	int key;
	const char *host, *tunnel_ip, *endpoint;
};

static json_t *devices(const struct dev *d)
{
	json_t *a = json_array();

	for (int i = 0; i < MAXDEV && (d[i].id || d[i].host); i++) {
		char b64[SVC_KEY_B64LEN];
		json_t *o;

		if (d[i].key >= 0)
			svcjson_key_format(pub[d[i].key], b64);
		else
			snprintf(b64, sizeof(b64), "not a key");
		o = json_pack("{s:s, s:s, s:s, s:b, s:[{s:s, s:s}]}", "public_key", b64, "hostname", d[i].host,
			      "tunnel_ip", d[i].tunnel_ip, "relay", 0, "endpoints", "source", "local", "address",
			      d[i].endpoint);
		if (d[i].id)
			json_object_set_new(o, "id", json_string(d[i].id));
		json_array_append_new(a, o);
	}
	return a;
}

static void sync_list(const struct dev *d)
{
	json_t *a = devices(d);

	peers_sync(&m, a);
	json_decref(a);
}

static struct mpeer *by_id(const char *id)
{
	for (size_t i = 0; i < meshd_npeers(&m); i++)
		if (!strcmp(meshd_peer(&m, i)->id, id))
			return meshd_peer(&m, i);
	return NULL;
}

#define A(k, host, ep) { "a", k, host, "100.64.0.2", ep }
#define B(k) { "b", k, "b", "100.64.0.3", "192.0.2.3:51820" }

Test(peers, sync, .init = setup, .fini = teardown)
{
	static const struct {
		const char *name;
		struct dev first[MAXDEV], then[MAXDEV];
		size_t npeers;		/* after then */
		const char *names;	/* the peers' names after then, in order */
		int a_key;		/* a's key in the data plane after then, -1: a is gone */
		bool a_kept;		/* a is the same peer as after first */
	} cases[] = {
		{ "added", { A(1, "a", "192.0.2.2:51820"), B(2) }, { A(1, "a", "192.0.2.2:51820"), B(2) },
		  2, "a b", 1, true },
		{ "updated in place", { A(1, "a", "192.0.2.2:51820") }, { A(1, "a2", "198.51.100.2:4000") },
		  1, "a2", 1, true },
		{ "new key: replaced", { A(1, "a", "192.0.2.2:51820") }, { A(3, "a", "192.0.2.2:51820") },
		  1, "a", 3, false },
		{ "no longer listed: removed", { A(1, "a", "192.0.2.2:51820"), B(2) }, { B(2) },
		  1, "b", -1, false },
		{ "bad entries skipped", { A(1, "a", "192.0.2.2:51820") },
		  { { "x", -1, "x", "100.64.0.9", "192.0.2.9:1" }, { NULL, 2, "noid", "100.64.0.8", "192.0.2.8:1" },
		    { "y", 2, "y", "not an ip", "192.0.2.7:1" }, A(1, "a", "192.0.2.2:51820") },
		  1, "a", 1, true },
		{ "our own entry skipped", { A(1, "a", "192.0.2.2:51820") },
		  { { "self", 2, "me", "100.64.0.1", "192.0.2.1:1" }, { "other", 0, "me", "100.64.0.1", "192.0.2.1:1" },
		    A(1, "a", "192.0.2.2:51820") },
		  1, "a", 1, true },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mpeer *a0;
		char names[256] = "";

		teardown();
		setup();
		sync_list(cases[c].first);
		a0 = by_id("a");
		cr_assert_not_null(a0, "%s: a added", cases[c].name);
		sync_list(cases[c].then);
		cr_expect_eq(meshd_npeers(&m), cases[c].npeers, "%s: peers", cases[c].name);
		cr_expect_eq(wg_device_peer_count(m.dev), cases[c].npeers, "%s: data plane peers", cases[c].name);
		for (size_t i = 0; i < meshd_npeers(&m); i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? " " : "",
				 meshd_peer(&m, i)->name);
		cr_expect_str_eq(names, cases[c].names, "%s: names", cases[c].name);
		for (int k = 1; k < NKEYS; k++)
			cr_expect_eq(wg_device_peer_find(m.dev, pub[k]) != NULL,
				     k == cases[c].a_key || (k == 2 && by_id("b")), "%s: key %d in the data plane",
				     cases[c].name, k);
		cr_expect_eq(by_id("a") == NULL, cases[c].a_key < 0, "%s: a listed", cases[c].name);
		if (cases[c].a_kept)
			cr_expect_eq(by_id("a"), a0, "%s: a kept, not replaced", cases[c].name);
	}
}

Test(peers, update_takes_endpoints, .init = setup, .fini = teardown)
{
	struct dev one[MAXDEV] = { A(1, "a", "192.0.2.2:51820") };
	struct dev moved[MAXDEV] = { A(1, "a", "198.51.100.2:4000") };
	union sockaddr_any want;
	struct mpeer *p;

	sync_list(one);
	sync_list(moved);
	p = by_id("a");
	cr_assert_not_null(p);
	cr_assert_eq(p->nep, 1);
	addr_parse("198.51.100.2:4000", &want);
	cr_expect(addr_equal(&p->ep[0].addr, &want));
	cr_expect(p->use_path, "a plain peer has a path");
	cr_expect_gt(sent, 0, "the new candidate was sprayed at");
}

/* the list is bounded: past the maximum a peer is refused, counted, logged */
Test(peers, bounded, .init = setup, .fini = teardown)
{
	struct dev three[MAXDEV] = { A(1, "a", "192.0.2.2:51820"), B(2), { "c", 3, "c", "100.64.0.4", "192.0.2.4:1" } };

	vec_free(&m.peers);
	vec_init(&m.peers, sizeof(struct mpeer *), 2, "test peers");
	sync_list(three);
	cr_expect_eq(meshd_npeers(&m), 2);
	cr_expect_eq(wg_device_peer_count(m.dev), 2, "the refused one is not in the data plane either");
	cr_expect_eq(m.peers.refused, 1);
	cr_expect_null(by_id("c"));
}

/* issue 15 point 6: a peer's tunnel address is one of the VPC's and not ours */
Test(peers, tunnel_ip_in_the_vpc, .init = setup, .fini = teardown)
{
	struct dev list[MAXDEV] = {
		{ "out", 1, "out", "10.0.0.5", "192.0.2.5:1" },
		{ "mine", 2, "mine", "100.64.0.1", "192.0.2.6:1" },
		B(3),
	};

	cr_assert_eq(cidr_parse("100.64.0.0/24", false, &m.vpc), 0);
	m.has_vpc = true;
	cr_assert_eq(addr_parse_ip("100.64.0.1", 0, &m.tip), 0);
	sync_list(list);
	cr_expect_eq(meshd_npeers(&m), 1);
	cr_expect_not_null(by_id("b"));
	cr_expect_eq(wg_device_peer_count(m.dev), 1);
}

/* issue 15 point 5: endpoints no peer can be at are not candidates */
Test(peers, endpoints_filtered, .init = setup, .fini = teardown)
{
	struct dev list[MAXDEV] = { A(1, "a", "127.0.0.1:51820"), B(2) };
	struct mpeer *p;

	sync_list(list);
	p = by_id("a");
	cr_assert_not_null(p);
	cr_expect_eq(p->nep, 0);
	cr_expect_eq(p->path.ncands, 0);
	cr_expect_eq(sent, 1, "only b was sprayed at");
}

/* issue 15 point 7: peers are found by id through a hash index, not a linear
 * search. A big list, then one with a third removed and a fifth re-keyed,
 * then the whole list again: every peer once, at its index, in the data
 * plane once (a lost or stale index entry would add a peer twice, or touch
 * freed memory). */
#define BIG 3000
static uint8_t big_pub[BIG][WG_KEY_LEN], big_pub2[BIG][WG_KEY_LEN];

static json_t *big_list(int drop_every, int rekey_every)
{
	json_t *a = json_array();

	for (int i = 0; i < BIG; i++) {
		char id[16], tip[20], b64[SVC_KEY_B64LEN];
		if (drop_every && i % drop_every == 0)
			continue;
		snprintf(id, sizeof(id), "d%d", i);
		snprintf(tip, sizeof(tip), "100.64.%d.%d", 1 + i / 250, 1 + i % 250);
		svcjson_key_format(rekey_every && i % rekey_every == 0 ? big_pub2[i] : big_pub[i], b64);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:[]}", "id", id, "public_key", b64,
						   "hostname", id, "tunnel_ip", tip, "relay", 0, "endpoints"));
	}
	return a;
}

static void check_big(size_t want)
{
	cr_assert_eq(meshd_npeers(&m), want);
	cr_assert_eq(wg_device_peer_count(m.dev), want);
	for (size_t i = 0; i < meshd_npeers(&m); i++)
		cr_assert_eq(meshd_peer(&m, i)->idx, i, "peer %s at %zu", meshd_peer(&m, i)->id, i);
}

Test(peers, big_list_indexed, .init = setup, .fini = teardown)
{
	uint8_t priv_big[WG_KEY_LEN];
	json_t *a;

	for (int i = 0; i < BIG; i++) {
		wg_dh_generate(priv_big, big_pub[i]);
		wg_dh_generate(priv_big, big_pub2[i]);
	}
	a = big_list(0, 0);
	peers_sync(&m, a);
	json_decref(a);
	check_big(BIG);
	a = big_list(3, 5);
	peers_sync(&m, a);
	json_decref(a);
	check_big(BIG - BIG / 3);
	for (size_t i = 0; i < meshd_npeers(&m); i++) {
		int n = atoi(meshd_peer(&m, i)->id + 1);
		cr_assert_neq(n % 3, 0, "%s was removed", meshd_peer(&m, i)->id);
		cr_assert_eq(memcmp(meshd_peer(&m, i)->pub, n % 5 ? big_pub[n] : big_pub2[n], WG_KEY_LEN), 0);
	}
	a = big_list(0, 0);
	peers_sync(&m, a);
	json_decref(a);
	check_big(BIG);
}

/* issue 15 point 1: the VPC is routed through the relay in use; only the
 * other relays get it as rx sources (the data plane then refuses from them
 * any address another peer holds by a longer prefix: test_device.c), and a
 * plain peer never does */
Test(peers, vpc_sources_only_from_relays_not_in_use, .init = setup, .fini = teardown)
{
	static const struct { const char *id, *tip, *ep; bool relay; } v[] = {
		{ "r1", "100.64.0.11", "203.0.113.21:51820", true },
		{ "r2", "100.64.0.12", "203.0.113.22:51820", true },
		{ "p", "100.64.0.3", "192.0.2.3:51820", false },
	};
	struct mpeer *r1, *r2, *p;

	cr_assert_eq(cidr_parse("100.64.0.0/24", false, &m.vpc), 0);
	m.has_vpc = true;
	cr_assert_eq(addr_parse_ip("100.64.0.1", 0, &m.tip), 0);
	for (size_t from = 0; from < 2; from++) {	/* then r1 is gone */
		json_t *a = json_array();
		for (size_t i = from; i < sizeof(v) / sizeof(v[0]); i++) {
			char b64[SVC_KEY_B64LEN];
			svcjson_key_format(pub[i + 1], b64);
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:[{s:s, s:s}]}", "id",
							   v[i].id, "public_key", b64, "hostname", v[i].id,
							   "tunnel_ip", v[i].tip, "relay", v[i].relay, "endpoints",
							   "source", "local", "address", v[i].ep));
		}
		peers_sync(&m, a);
		json_decref(a);
		if (from)
			break;
		r1 = by_id("r1"), r2 = by_id("r2"), p = by_id("p");
		cr_assert(r1 && r2 && p);
		cr_assert_eq(m.relay_in_use, r1, "none alive yet: the lowest id");
		cr_expect_not(r1->has_rx_vpc, "the relay in use has the VPC as its route");
		cr_expect(r2->has_rx_vpc, "another relay forwards what r1 routes");
		cr_expect_not(p->has_rx_vpc);
		cr_expect_eq(wg_peer_allowed_ips(r1->wp, NULL, 0), 2, "its /32 and the VPC");
		cr_expect_eq(wg_peer_allowed_ips(r2->wp, NULL, 0), 1, "its /32 only");
	}
	r2 = by_id("r2");
	cr_assert_eq(m.relay_in_use, r2, "r1 gone: r2 in use");
	cr_expect_not(r2->has_rx_vpc, "r2 routes the VPC now");
	cr_expect_eq(wg_peer_allowed_ips(r2->wp, NULL, 0), 2);
}
