/* the peer list a device gets (api_list_json with a policy view): only the
 * peers policy lets it learn of, relays always, the others as ids in
 * deleted; after a policy change every device again; its own group resolved
 * (group_addresses), every group for a relay; and the classes of requesters
 * that share one list.
 *
 *   clients (a) --tcp/80--> web (b) --tcp/5432--> db (c);  n: default;  r: relay */
#include <criterion/criterion.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "service/api_internal.h"
#include "service/store.h"

#define NOW 1700000000

static char dir[64], path[96];
static struct store *st;
static struct api *api;
static char vpc[UUID_STRLEN], key[UUID_STRLEN], rkey[UUID_STRLEN];
static char A[UUID_STRLEN], B[UUID_STRLEN], C[UUID_STRLEN], N[UUID_STRLEN], R[UUID_STRLEN];
static char CLIENTS[UUID_STRLEN], WEB[UUID_STRLEN], DB[UUID_STRLEN];

static void regkey(bool relay, char id[UUID_STRLEN])
{
	struct regkey_spec k = { .max_devices = 10, .relay = relay };
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;

	snprintf(k.vpc_id, sizeof(k.vpc_id), "%s", vpc);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_regkey_create(st, &k, hash, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

static void device(const char *k, char id[UUID_STRLEN])
{
	uint8_t hash[TOKEN_HASH_BYTES], pk[32], sk[32];
	struct device_spec d = { .set = DEV_PUBLIC_KEY };
	json_t *out;

	crypto_box_keypair(pk, sk);
	memcpy(d.public_key, pk, 32);
	wgkey_format(pk, d.public_key_b64);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_device_register(st, k, &d, hash, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

static void group(const char *rest, char id[UUID_STRLEN])
{
	char text[1024];
	struct secgroup_spec s;
	struct verr e;
	json_t *j, *out;

	snprintf(text, sizeof(text), "{\"vpc_id\":\"%s\",%s}", vpc, rest);
	cr_assert_not_null(j = json_loads(text, 0, NULL));
	cr_assert_eq(validate_secgroup_create(j, &s, &e), 0, "%s: %s", e.field, e.msg);
	cr_assert_eq(store_secgroup_create(st, &s, NOW, &out, &e), 0, "%s: %s", e.field, e.msg);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	secgroup_spec_clear(&s);
	json_decref(out);
	json_decref(j);
}

static void move(const char *device_id, const char *group_id)
{
	struct device_spec d = { .set = DEV_SECURITY_GROUP };
	json_t *out;

	snprintf(d.security_group, sizeof(d.security_group), "%s", group_id);
	cr_assert_eq(store_device_patch(st, device_id, &d, NOW, &out), 0);
	json_decref(out);
}

static void setup(void)
{
	struct vpc_spec v = { .name = "lab" };
	json_t *out;

	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/test_api_policy.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	cr_assert_eq(store_open(path, &st), 0);
	cr_assert_eq(cidr_parse("10.1.0.0/24", false, &v.cidr), 0);
	cr_assert_eq(store_vpc_create(st, &v, NOW, &out), 0);
	snprintf(vpc, sizeof(vpc), "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	regkey(false, key);
	regkey(true, rkey);
	device(key, A);
	device(key, B);
	device(key, C);
	device(key, N);
	device(rkey, R);
	group("\"name\":\"clients\",\"outbound_rules\":[{}]", CLIENTS);
	group("\"name\":\"web\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,"
	      "\"groups\":[\"clients\"]}],\"outbound_rules\":[{}]", WEB);
	group("\"name\":\"db\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":5432,\"to_port\":5432,"
	      "\"groups\":[\"web\"]}],\"outbound_rules\":[{}]", DB);
	move(A, CLIENTS);
	move(B, WEB);
	move(C, DB);
	cr_assert_not_null(api = calloc(1, sizeof(*api)));
	api->store = st;
}

static void teardown(void)
{
	char cmd[128];

	api_policy_free(api);
	free(api);
	store_free(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(api_policy, .init = setup, .fini = teardown);

/* the list for device id (NULL: the admin) since since */
static json_t *list(const char *id, int64_t since)
{
	struct policy_view *v;
	int64_t revision;
	json_t *out;

	cr_assert_eq(store_vpc_revision(st, vpc, &revision), 0);
	cr_assert_eq(api_policy_view(api, vpc, &v), 0);
	cr_assert_eq(api_list_json(api, vpc, since, revision, v, id ? api_policy_member(v, id) : NULL, &out), 0);
	api_policy_view_put(v);
	return out;
}

/* the ids of a list's member key, sorted, as one string */
static char *ids(const json_t *l, const char *member)
{
	static char buf[8][512];
	static int turn;
	char *s = buf[turn++ % 8];
	const char *all[16];
	size_t n = 0, i;
	json_t *e;

	json_array_foreach(json_object_get(l, member), i, e)
		if (n < 16)
			all[n++] = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "id"));
	for (size_t x = 0; x < n; x++)
		for (size_t y = x + 1; y < n; y++)
			if (strcmp(all[x], all[y]) > 0) {
				const char *t = all[x];
				all[x] = all[y];
				all[y] = t;
			}
	s[0] = 0;
	for (i = 0; i < n; i++)
		snprintf(s + strlen(s), 512 - strlen(s), "%s%s", i ? " " : "", all[i]);
	return s;
}

static char *set_of(int n, ...)
{
	json_t *a = json_array(), *l;
	va_list ap;
	char *s;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_string(va_arg(ap, const char *)));
	va_end(ap);
	l = json_pack("{s:o}", "x", a);
	s = ids(l, "x");
	json_decref(l);
	return s;
}

Test(api_policy, each_device_sees_only_whom_policy_allows_and_relays)
{
	json_t *l;

	l = list(A, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(3, B, N, R), "a client: web, the default group, the relay");
	cr_expect_str_eq(ids(l, "deleted"), "", "a full list names no one else");
	cr_expect(json_is_true(json_object_get(l, "full")));
	json_decref(l);
	l = list(C, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(3, B, N, R), "db: web, default, relay; never a client");
	json_decref(l);
	l = list(B, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(4, A, C, N, R), "web: clients, db, default, relay; not itself");
	json_decref(l);
	l = list(R, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(5, A, B, C, N, R), "a relay sees everyone");
	cr_expect_eq(json_array_size(json_object_get(l, "security_groups")), 4, "and gets every group");
	json_decref(l);
	/* relays are seen whatever their group allows */
	move(R, DB);
	l = list(A, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(3, B, N, R), "a relay in db is still seen by a client");
	json_decref(l);
	l = list(R, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(5, A, B, C, N, R), "and still sees everyone");
	json_decref(l);
	l = list(NULL, 0);
	cr_expect_str_eq(ids(l, "devices"), set_of(5, A, B, C, N, R), "the admin's list is whole");
	cr_expect_null(json_object_get(l, "security_group"));
	json_decref(l);
}

Test(api_policy, the_own_group_is_resolved_and_a_relay_gets_all)
{
	json_t *l = list(B, 0), *g = json_object_get(l, "security_group"), *rule, *a;
	char ip[32];

	cr_expect_str_eq(json_string_value(json_object_get(g, "id")), WEB);
	rule = json_array_get(json_object_get(g, "inbound_rules"), 0);
	a = json_object_get(rule, "group_addresses");
	cr_assert_eq(json_array_size(a), 1, "one member in clients");
	json_t *dev;
	cr_assert_eq(store_device_get(st, A, &dev, NULL), 0);
	snprintf(ip, sizeof(ip), "%s", json_string_value(json_object_get(dev, "tunnel_ip")));
	json_decref(dev);
	cr_expect_str_eq(json_string_value(json_array_get(a, 0)), ip);
	cr_expect_null(json_object_get(l, "security_groups"), "no relay, no other groups");
	json_decref(l);
	/* what an agent parses: lib/policy reads it back */
	char why[POLICY_ERR_MAX];
	struct policy_group pg;
	l = list(B, 0);
	cr_expect_eq(policy_group_parse(json_object_get(l, "security_group"), POLICY_PARSE_RESOLVED, &pg, why,
					sizeof(why)), 0, "%s", why);
	cr_expect_eq(pg.in[0].nmembers, 1);
	policy_group_free(&pg);
	json_decref(l);
}

Test(api_policy, changes_of_hidden_devices_are_ids_in_deleted)
{
	int64_t rev;
	json_t *l, *out;
	struct device_spec d = { .set = DEV_HOSTNAME, .hostname = "db2" };

	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	cr_assert_eq(store_device_patch(st, C, &d, NOW, &out), 0);
	json_decref(out);
	l = list(A, rev);
	cr_expect(json_is_false(json_object_get(l, "full")));
	cr_expect_str_eq(ids(l, "devices"), "");
	cr_expect_str_eq(ids(l, "deleted"), C);
	char *text = json_dumps(l, JSON_COMPACT);
	cr_expect_null(strstr(text, "db2"), "nothing of it but its id: %s", text);
	free(text);
	json_decref(l);
	l = list(B, rev);
	cr_expect_str_eq(ids(l, "devices"), C, "a device that sees it gets the change");
	json_decref(l);
}

Test(api_policy, after_a_policy_change_everyone_again_and_the_rest_as_ids)
{
	int64_t rev;
	struct secgroup_spec s = { .set = SG_INBOUND };
	struct verr e;
	json_t *l, *out;

	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	cr_assert_not_null(s.inbound = json_loads("[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,"
						  "\"groups\":[\"db\"]}]", 0, NULL));
	cr_assert_eq(store_secgroup_update(st, WEB, &s, NOW, &out, &e), 0);
	secgroup_spec_clear(&s);
	json_decref(out);
	l = list(A, rev);
	cr_expect(json_is_false(json_object_get(l, "full")), "changes, not a new start");
	cr_expect_str_eq(ids(l, "devices"), set_of(2, N, R), "every device it sees now");
	cr_expect_str_eq(ids(l, "deleted"), set_of(3, A, B, C), "and every other one's id: web is hidden");
	json_decref(l);
	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	l = list(A, rev);
	cr_expect_str_eq(ids(l, "devices"), "", "caught up: nothing");
	cr_expect_str_eq(ids(l, "deleted"), "");
	json_decref(l);
	/* the view of that policy is kept now: the next change is told as what it changed */
	move(C, CLIENTS);
	l = list(A, rev);
	cr_expect(json_is_false(json_object_get(l, "full")));
	cr_expect_str_eq(ids(l, "devices"), "", "a device's new group is a policy change too");
	cr_expect_str_eq(ids(l, "deleted"), C, "c is a client now (clients allow nothing in); no one else is news");
	json_decref(l);
	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	l = list(A, rev);
	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	cr_assert_not_null(s.inbound = json_loads("[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,"
						  "\"groups\":[\"clients\"]}]", 0, NULL));
	s.set = SG_INBOUND;
	cr_assert_eq(store_secgroup_update(st, WEB, &s, NOW, &out, &e), 0);
	secgroup_spec_clear(&s);
	json_decref(out);
	json_decref(l);
	l = list(A, rev);
	cr_expect_str_eq(ids(l, "devices"), B, "web open to clients again: only web is news");
	cr_expect_str_eq(ids(l, "deleted"), "");
	json_decref(l);
	l = list(B, rev);
	cr_expect_str_eq(ids(l, "devices"), set_of(2, A, C), "and to web, the clients");
	json_decref(l);
	l = list(N, rev);
	cr_expect_str_eq(ids(l, "devices"), "", "the default group's device sees what it saw: nothing is news");
	cr_expect_str_eq(ids(l, "deleted"), "");
	json_decref(l);
}

Test(api_policy, a_client_behind_the_kept_policy_gets_everything_again)
{
	int64_t before;
	json_t *l;

	cr_assert_eq(store_vpc_revision(st, vpc, &before), 0);
	l = list(A, 0);
	json_decref(l);
	move(N, CLIENTS);
	move(N, WEB);
	/* the kept view is the one of the policy before web's move: a client at
	 * a revision before that one knew an older policy */
	l = list(A, before - 1);
	cr_expect_str_eq(ids(l, "devices"), set_of(3, B, N, R), "every device it sees");
	cr_expect_str_eq(ids(l, "deleted"), set_of(2, A, C), "and every other id");
	json_decref(l);
}

Test(api_policy, classes_share_a_list_only_when_it_is_the_same)
{
	char cls[API_CLASS_LEN], web2[UUID_STRLEN];
	struct policy_view *v;

	cr_assert_eq(api_policy_view(api, vpc, &v), 0);
	api_policy_class(v, api_policy_member(v, A), 0, cls);
	cr_expect_eq(strncmp(cls, "group:", 6), 0, "%s", cls);
	cr_expect_str_eq(cls + 6, CLIENTS);
	api_policy_class(v, api_policy_member(v, R), 0, cls);
	cr_expect_eq(strncmp(cls, "relay:", 6), 0, "%s", cls);
	cr_expect_neq(strcmp(cls + 6, CLIENTS), 0, "a relay's class names its own group");
	api_policy_view_put(v);
	move(R, CLIENTS);
	cr_assert_eq(api_policy_view(api, vpc, &v), 0);
	api_policy_class(v, api_policy_member(v, R), 0, cls);
	cr_expect_str_eq(cls + 6, CLIENTS, "another group, another list: its security_group differs");
	api_policy_view_put(v);
	/* ranges make visibility a matter of addresses: each device its own list */
	group("\"name\":\"ops\",\"inbound_rules\":[{\"ip_ranges\":[\"10.1.0.1\"]}]", web2);
	cr_assert_eq(api_policy_view(api, vpc, &v), 0);
	api_policy_class(v, api_policy_member(v, A), 0, cls);
	cr_expect_eq(strncmp(cls, "device:", 7), 0, "%s", cls);
	cr_expect_str_eq(cls + 7, A);
	api_policy_view_put(v);
	/* the device at 10.1.0.1 (a, the first registered) sees ops' member, the other clients do not */
	move(N, web2);
	move(C, CLIENTS);
	json_t *l = list(A, 0);
	cr_expect(strstr(ids(l, "devices"), N) != NULL, "a's address is in ops' inbound ranges");
	json_decref(l);
	l = list(C, 0);
	cr_expect(strstr(ids(l, "devices"), N) == NULL, "c's is not");
	json_decref(l);
}

Test(api_policy, the_registration_answer_matches_the_peer_list)
{
	json_t *dev, *l;
	char *a, *b;

	/* a view of the current revision is cached by this list ... */
	l = list(R, 0);
	cr_assert_eq(store_device_get(st, R, &dev, NULL), 0);
	cr_assert_eq(api_policy_annotate_device(api, dev), 0);
	a = json_dumps(json_object_get(dev, "security_groups"), JSON_COMPACT | JSON_SORT_KEYS);
	b = json_dumps(json_object_get(l, "security_groups"), JSON_COMPACT | JSON_SORT_KEYS);
	cr_expect_str_eq(a, b, "from the cached view");
	free(a);
	json_decref(dev);
	/* ... and without it: the groups alone, addresses read as named */
	api_policy_free(api);
	cr_assert_eq(store_device_get(st, R, &dev, NULL), 0);
	cr_assert_eq(api_policy_annotate_device(api, dev), 0);
	cr_expect_null(api->views, "a partial view is not kept");
	a = json_dumps(json_object_get(dev, "security_groups"), JSON_COMPACT | JSON_SORT_KEYS);
	cr_expect_str_eq(a, b, "from the groups alone");
	cr_expect_not_null(strstr(a, "group_addresses\":[\"10.1.0.1\"]"), "web's rule names clients: a: %s", a);
	free(a);
	free(b);
	json_decref(dev);
	cr_assert_eq(store_device_get(st, A, &dev, NULL), 0);
	cr_assert_eq(api_policy_annotate_device(api, dev), 0);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(dev, "security_group"), "id")), CLIENTS);
	cr_expect_null(json_object_get(dev, "security_groups"), "no relay");
	json_decref(dev);
	json_decref(l);
}

Test(api_policy, a_device_moved_by_the_change_gets_a_list_of_its_own)
{
	char cls[API_CLASS_LEN];
	struct policy_view *v;
	int64_t rev;
	json_t *l;

	cr_assert_eq(store_vpc_revision(st, vpc, &rev), 0);
	l = list(A, rev);	/* keeps the view of this policy */
	json_decref(l);
	move(N, CLIENTS);
	cr_assert_eq(api_policy_view(api, vpc, &v), 0);
	api_policy_class(v, api_policy_member(v, A), rev, cls);
	cr_expect_eq(strncmp(cls, "group:", 6), 0, "a client that stayed shares its group's list: %s", cls);
	api_policy_class(v, api_policy_member(v, N), rev, cls);
	cr_expect_eq(strncmp(cls, "device:", 7), 0, "the moved one does not (it knew other peers): %s", cls);
	api_policy_class(v, api_policy_member(v, N), 0, cls);
	cr_expect_eq(strncmp(cls, "group:", 6), 0, "starting over it does: %s", cls);
	api_policy_view_put(v);
	/* and the two lists differ: n saw everyone before */
	l = list(N, rev);
	cr_expect_str_eq(ids(l, "deleted"), set_of(3, A, C, N), "n no longer sees the clients, db, itself");
	json_decref(l);
	l = list(A, rev);
	cr_expect_str_eq(ids(l, "deleted"), N, "a no longer sees n");
	cr_expect_str_eq(ids(l, "devices"), "");
	json_decref(l);
}
