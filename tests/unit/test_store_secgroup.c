/* the store's security groups (issue 16): the default group of every VPC,
 * create, update, delete and what refuses them, rules naming groups by id,
 * a device's group, the policy revision; and the upgrade of a version-3
 * database, which keeps every device, token and address */
#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/store.h"
#include "service/store_internal.h"

#define NOW 1700000000

static char dir[64], path[96];

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/test_store_sg.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(store_secgroup, .init = setup, .fini = teardown);

static void vpc(struct store *st, const char *name, char id[UUID_STRLEN])
{
	struct vpc_spec spec = { 0 };
	json_t *out;

	snprintf(spec.name, sizeof(spec.name), "%s", name);
	cr_assert_eq(cidr_parse("10.1.0.0/24", false, &spec.cidr), 0);
	cr_assert_eq(store_vpc_create(st, &spec, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

static void device(struct store *st, const char *vpc_id, char id[UUID_STRLEN])
{
	struct regkey_spec k = { .max_devices = 10 };
	uint8_t hash[TOKEN_HASH_BYTES], pk[32], sk[32];
	struct device_spec d = { .set = DEV_PUBLIC_KEY };
	json_t *out;

	snprintf(k.vpc_id, sizeof(k.vpc_id), "%s", vpc_id);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_regkey_create(st, &k, hash, NOW, &out), 0);
	char key[UUID_STRLEN];
	snprintf(key, sizeof(key), "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	crypto_box_keypair(pk, sk);
	memcpy(d.public_key, pk, 32);
	wgkey_format(pk, d.public_key_b64);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_device_register(st, key, &d, hash, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

/* a group spec from JSON text, through the validator */
static void spec_of(const char *text, bool create, struct secgroup_spec *s)
{
	struct verr e;
	json_t *j = json_loads(text, 0, NULL);

	cr_assert_not_null(j, "%s", text);
	cr_assert_eq(create ? validate_secgroup_create(j, s, &e) : validate_secgroup_patch(j, s, &e), 0,
		     "%s: %s", e.field, e.msg);
	json_decref(j);
}

static int create(struct store *st, const char *vpc_id, const char *rest, char id[UUID_STRLEN], struct verr *e)
{
	char text[1024];
	struct secgroup_spec s;
	json_t *out = NULL;
	int rc;

	snprintf(text, sizeof(text), "{\"vpc_id\":\"%s\",%s}", vpc_id, rest);
	spec_of(text, true, &s);
	rc = store_secgroup_create(st, &s, NOW, &out, e);
	secgroup_spec_clear(&s);
	if (rc == 0 && id)
		snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	return rc;
}

static const char *group_of(struct store *st, const char *device_id, char buf[UUID_STRLEN])
{
	json_t *d;

	cr_assert_eq(store_device_get(st, device_id, &d, NULL), 0);
	snprintf(buf, UUID_STRLEN, "%s", json_string_value(json_object_get(d, "security_group_id")));
	json_decref(d);
	return buf;
}

Test(store_secgroup, a_vpc_has_its_default_group_and_a_device_joins_it)
{
	char v[UUID_STRLEN], d[UUID_STRLEN], g[UUID_STRLEN];
	struct store *st;
	json_t *list, *dev;
	struct verr e;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "lab", v);
	cr_assert_eq(store_secgroup_list(st, v, &list), 0);
	cr_assert_eq(json_array_size(list), 1);
	json_t *def = json_array_get(list, 0);
	cr_expect_str_eq(json_string_value(json_object_get(def, "name")), "default");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(def, "inbound_rules"), 0),
							  "ip_protocol")), "any");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(def, "outbound_rules"), 0),
							  "ip_protocol")), "any");
	device(st, v, d);
	cr_expect_str_eq(group_of(st, d, g), json_string_value(json_object_get(def, "id")));
	cr_assert_eq(store_device_get(st, d, &dev, NULL), 0);
	cr_expect(json_is_true(json_object_get(dev, "enforces_policy")), "enforces unless it says otherwise");
	json_decref(dev);
	cr_expect_eq(store_secgroup_delete(st, json_string_value(json_object_get(def, "id")), v, &e), -EPERM,
		     "the default group stays");
	json_decref(list);
	store_free(st);
}

Test(store_secgroup, crud_names_ids_and_refusals)
{
	char v[UUID_STRLEN], v2[UUID_STRLEN], web[UUID_STRLEN], cl[UUID_STRLEN], far[UUID_STRLEN],
		d[UUID_STRLEN], g[UUID_STRLEN], got[UUID_STRLEN];
	struct secgroup_spec s;
	int64_t prev, rev, pol;
	struct store *st;
	json_t *out;
	struct verr e;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "lab", v);
	vpc(st, "other", v2);
	cr_assert_eq(store_vpc_revision(st, v, &prev), 0);
	cr_assert_eq(create(st, v, "\"name\":\"clients\"", cl, &e), 0);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_assert_eq(store_policy_revision(st, v, &pol), 0);
	cr_expect_eq(rev, prev + 1, "a new group is a new revision");
	cr_expect_eq(pol, rev, "and the VPC's policy revision");
	cr_expect_eq(create(st, v, "\"name\":\"clients\"", NULL, &e), -EEXIST);
	cr_expect_str_eq(e.field, "name");
	cr_expect_eq(create(st, v2, "\"name\":\"clients\"", far, &e), 0, "a name is unique per VPC only");
	cr_assert_eq(create(st, v, "\"name\":\"web\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,"
				   "\"to_port\":80,\"groups\":[\"clients\",\"web\"]}]", web, &e), 0,
		     "%s: %s", e.field, e.msg);
	cr_assert_eq(store_secgroup_get(st, web, &out), 0);
	json_t *groups = json_object_get(json_array_get(json_object_get(out, "inbound_rules"), 0), "groups");
	cr_expect_str_eq(json_string_value(json_array_get(groups, 0)), cl, "a name is stored as the id");
	cr_expect_str_eq(json_string_value(json_array_get(groups, 1)), web, "its own name too");
	json_decref(out);
	cr_expect_eq(create(st, v, "\"name\":\"t\",\"outbound_rules\":[{},{\"groups\":[\"web\",\"nope\"]}]", NULL, &e),
		     -ESRCH);
	cr_expect_str_eq(e.field, "outbound_rules[1].groups[1]");
	char text[256];
	snprintf(text, sizeof(text), "\"name\":\"t\",\"inbound_rules\":[{\"groups\":[\"%s\"]}]", far);
	cr_expect_eq(create(st, v, text, NULL, &e), -ESRCH, "another VPC's group");
	cr_expect_str_eq(e.field, "inbound_rules[0].groups[0]");

	/* update: rename keeps the references (they are ids) */
	spec_of("{\"name\":\"people\",\"description\":\"d\"}", false, &s);
	cr_expect_eq(store_secgroup_update(st, cl, &s, NOW, &out, &e), 0);
	cr_expect_str_eq(json_string_value(json_object_get(out, "name")), "people");
	json_decref(out);
	secgroup_spec_clear(&s);
	spec_of("{\"name\":\"web\"}", false, &s);
	cr_expect_eq(store_secgroup_update(st, cl, &s, NOW, &out, &e), -EEXIST);
	cr_expect_str_eq(e.field, "name");
	secgroup_spec_clear(&s);
	cr_expect_eq(store_secgroup_update(st, "00000000-0000-4000-8000-000000000000", &s, NOW, &out, &e), -ENOENT);

	/* a device's group, by name or id; never another VPC's */
	device(st, v, d);
	struct device_spec ds = { .set = DEV_SECURITY_GROUP };
	snprintf(ds.security_group, sizeof(ds.security_group), "%s", "people");
	cr_assert_eq(store_device_patch(st, d, &ds, NOW, &out), 0);
	json_decref(out);
	cr_expect_str_eq(group_of(st, d, g), cl);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_assert_eq(store_policy_revision(st, v, &pol), 0);
	cr_expect_eq(pol, rev, "a device's new group is a new policy");
	snprintf(ds.security_group, sizeof(ds.security_group), "%s", far);
	cr_expect_eq(store_device_patch(st, d, &ds, NOW, &out), -ESRCH);
	cr_expect_str_eq(group_of(st, d, g), cl, "unchanged");
	cr_expect_eq(store_secgroup_resolve(st, v, "web", got), 0);
	cr_expect_str_eq(got, web);
	cr_expect_eq(store_secgroup_resolve(st, v, far, got), -ESRCH);

	/* delete: refused while used, naming who */
	cr_expect_eq(store_secgroup_delete(st, cl, g, &e), -EBUSY);
	cr_expect(strstr(e.msg, d) != NULL, "names the device: %s", e.msg);
	cr_expect(strstr(e.msg, "web") != NULL, "names the group whose rule names it: %s", e.msg);
	snprintf(ds.security_group, sizeof(ds.security_group), "%s", "default");
	cr_assert_eq(store_device_patch(st, d, &ds, NOW, &out), 0);
	json_decref(out);
	cr_expect_eq(store_secgroup_delete(st, cl, g, &e), -EBUSY, "still named by web");
	cr_expect(strstr(e.msg, d) == NULL, "no device any more: %s", e.msg);
	cr_expect_eq(store_secgroup_delete(st, web, g, &e), 0, "a group naming itself goes");
	cr_expect_str_eq(g, v);
	cr_expect_eq(store_secgroup_delete(st, cl, g, &e), 0);
	cr_expect_eq(store_secgroup_get(st, cl, &out), -ENOENT);
	cr_expect_eq(store_secgroup_delete(st, cl, g, &e), -ENOENT);
	store_free(st);
}

/* the schema of version 3, as it wrote it */
static const char v3_schema[] =
	"CREATE TABLE vpcs (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ipv4_cidr TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, revision INTEGER NOT NULL, compacted INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE reg_keys (id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	" secret_hash BLOB NOT NULL UNIQUE, single_use INTEGER NOT NULL, expires_at INTEGER,"
	" description TEXT NOT NULL, created_at INTEGER NOT NULL, used_by TEXT,"
	" relay INTEGER NOT NULL DEFAULT 0, max_devices INTEGER NOT NULL DEFAULT 1000,"
	" registrations INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE devices (id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id),"
	" public_key TEXT NOT NULL, hostname TEXT NOT NULL, os TEXT NOT NULL,"
	" endpoints TEXT NOT NULL, ip_index INTEGER NOT NULL, tunnel_ip TEXT NOT NULL,"
	" relay INTEGER NOT NULL, symmetric_nat INTEGER NOT NULL, nat TEXT,"
	" revision INTEGER NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	" token_hash BLOB NOT NULL UNIQUE, online INTEGER NOT NULL DEFAULT 1,"
	" UNIQUE (vpc_id, public_key), UNIQUE (vpc_id, ip_index), UNIQUE (vpc_id, revision)) STRICT;"
	"CREATE TABLE tombstones (vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	" device_id TEXT NOT NULL, revision INTEGER NOT NULL, deleted_at INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (vpc_id, revision)) STRICT;"
	"CREATE INDEX devices_presence ON devices (online, last_seen);"
	"PRAGMA user_version=3;";

static void raw_exec(const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err ? err : "");
	sqlite3_close(db);
}

#define V1 "11111111-1111-4111-8111-111111111111"
#define V2 "22222222-2222-4222-8222-222222222222"
#define DA "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define DB "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
#define DC "cccccccc-cccc-4ccc-8ccc-cccccccccccc"

Test(store_secgroup, upgrades_a_version_3_database_keeping_devices_tokens_and_addresses)
{
	static const struct {
		const char *id, *vpc, *ip;
		uint8_t token;
	} devs[] = { { DA, V1, "10.7.0.1", 0xa1 }, { DB, V1, "10.7.0.2", 0xb2 }, { DC, V2, "10.8.0.1", 0xc3 } };
	char sql[4096], g1[UUID_STRLEN], g2[UUID_STRLEN], g[UUID_STRLEN];
	uint8_t hash[TOKEN_HASH_BYTES];
	struct principal who;
	int64_t rev, pol;
	struct store *st;
	json_t *list, *d;

	raw_exec(v3_schema);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO vpcs VALUES ('" V1 "', 'one', '10.7.0.0/24', %d, 5, 0);"
		 "INSERT INTO vpcs VALUES ('" V2 "', 'two', '10.8.0.0/24', %d, 1, 0);"
		 "INSERT INTO reg_keys VALUES ('dddddddd-dddd-4ddd-8ddd-dddddddddddd', '" V1 "', x'05', 0, NULL, 'k',"
		 " %d, NULL, 1, 1000, 2);"
		 "INSERT INTO tombstones VALUES ('" V1 "', 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee', 3, %d);",
		 NOW, NOW, NOW, NOW);
	raw_exec(sql);
	for (size_t i = 0; i < 3; i++) {
		/* a token's hash: 32 bytes, this test's made of one repeated byte */
		snprintf(sql, sizeof(sql),
			 "INSERT INTO devices VALUES ('%s', '%s', 'pk-%zu', 'h%zu', 'linux', '[]', %d, '%s', %d, 0, NULL,"
			 " %zu, %d, %d, x'%s', 1);",
			 devs[i].id, devs[i].vpc, i, i, i == 1 ? 2 : 1, devs[i].ip, i == 2, i + 1, NOW, NOW,
			 i == 0 ? "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
			 : i == 1 ? "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
				  : "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3");
		raw_exec(sql);
	}

	cr_assert_eq(store_open(path, &st), 0);
	cr_expect_eq(store_device_count(st), 3, "every device kept");
	for (size_t i = 0; i < 3; i++) {
		memset(hash, devs[i].token, sizeof(hash));
		cr_expect_eq(store_device_auth(st, hash, &who), 0, "device %zu's token still works", i);
		cr_expect_str_eq(who.id, devs[i].id);
		cr_assert_eq(store_device_get(st, devs[i].id, &d, NULL), 0);
		cr_expect_str_eq(json_string_value(json_object_get(d, "tunnel_ip")), devs[i].ip, "its address kept");
		cr_expect(json_is_true(json_object_get(d, "enforces_policy")));
		json_decref(d);
	}
	cr_assert_eq(store_secgroup_default(st, V1, g1), 0);
	cr_assert_eq(store_secgroup_default(st, V2, g2), 0);
	cr_expect_eq(strlen(g1), 36, "a default group per VPC");
	cr_expect_str_neq(g1, g2);
	cr_expect_str_eq(group_of(st, DA, g), g1, "each device in its own VPC's default group");
	cr_expect_str_eq(group_of(st, DB, g), g1);
	cr_expect_str_eq(group_of(st, DC, g), g2);
	cr_assert_eq(store_secgroup_list(st, V1, &list), 0);
	cr_expect_eq(json_array_size(list), 1);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "name")), "default");
	json_decref(list);
	cr_assert_eq(store_vpc_revision(st, V1, &rev), 0);
	cr_assert_eq(store_policy_revision(st, V1, &pol), 0);
	cr_expect_eq(rev, 5, "the upgrade changes no revision");
	cr_expect_eq(pol, 0, "and no client needs to start over");
	json_t *dev, *del;
	bool full;
	cr_assert_eq(store_device_changes(st, V1, 2, &dev, &del, &full), 0);
	cr_expect_str_eq(json_string_value(json_array_get(del, 0)), "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee",
			 "tombstones kept");
	json_decref(dev);
	json_decref(del);
	/* a new device takes the next free address, not a kept one */
	device(st, V1, g);
	cr_assert_eq(store_device_get(st, g, &d, NULL), 0);
	cr_expect_str_eq(json_string_value(json_object_get(d, "tunnel_ip")), "10.7.0.3");
	json_decref(d);
	store_free(st);
	cr_assert_eq(store_open(path, &st), 0, "the upgraded database opens again");
	store_free(st);
}

Test(store_secgroup, a_vpc_holds_at_most_its_maximum_of_groups)
{
	char v[UUID_STRLEN], name[64];
	struct store *st;
	struct verr e;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "lab", v);
	cr_assert_eq(store_batch_begin(st), 0);
	/* the default group is the first */
	for (int i = 1; i < SECGROUP_MAX_PER_VPC; i++) {
		snprintf(name, sizeof(name), "\"name\":\"g%d\"", i);
		cr_assert_eq(create(st, v, name, NULL, &e), 0, "group %d", i);
	}
	cr_expect_eq(create(st, v, "\"name\":\"one-more\"", NULL, &e), -ENOSPC);
	cr_assert_geq(store_batch_commit(st), 0);
	store_free(st);
}
