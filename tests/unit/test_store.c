#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "service/store.h"
#include "service/store_internal.h"

#define NOW 1700000000

static char dir[64], path[96];

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/test_store.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown);

static void vpc(struct store *st, const char *cidr, char id[UUID_STRLEN])
{
	struct vpc_spec spec = { .name = "lab" };
	json_t *out;
	cr_assert_eq(cidr_parse(cidr, false, &spec.cidr), 0);
	cr_assert_eq(store_vpc_create(st, &spec, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

static void regkey_spec(struct store *st, const char *vpc_id, struct regkey_spec spec, char id[UUID_STRLEN])
{
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	if (!spec.max_devices)
		spec.max_devices = REGKEY_MAX_DEVICES_DEFAULT;
	snprintf(spec.vpc_id, sizeof(spec.vpc_id), "%s", vpc_id);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_regkey_create(st, &spec, hash, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

static void regkey(struct store *st, const char *vpc_id, bool single, int64_t expires, char id[UUID_STRLEN])
{
	regkey_spec(st, vpc_id, (struct regkey_spec){ .single_use = single, .expires_at = expires }, id);
}

/* registers spec with the key; returns rc, the tunnel IP and id */
static int reg(struct store *st, const char *key_id, struct device_spec *spec, char ip[32],
	       char id[UUID_STRLEN], bool *created)
{
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out = NULL;
	int rc;
	randombytes_buf(hash, sizeof(hash));
	rc = store_device_register(st, key_id, spec, hash, NOW, &out);
	*created = rc == 0;
	if (rc == 0) {
		snprintf(ip, 32, "%s", json_string_value(json_object_get(out, "tunnel_ip")));
		snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	}
	json_decref(out);
	return rc;
}

static void fresh_key(struct device_spec *spec)
{
	uint8_t pk[32], sk[32];
	memset(spec, 0, sizeof(*spec));
	crypto_box_keypair(pk, sk);
	memcpy(spec->public_key, pk, 32);
	wgkey_format(pk, spec->public_key_b64);
	spec->set = DEV_PUBLIC_KEY;
}

Test(store, register_is_idempotent_and_slash30_fills)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN], ip2[32], id2[UUID_STRLEN];
	struct device_spec a, b, c;
	struct store *st;
	bool created;
	int64_t rev;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.1.0.0/30", v);
	regkey(st, v, false, 0, k);
	fresh_key(&a);
	fresh_key(&b);
	fresh_key(&c);
	cr_assert_eq(reg(st, k, &a, ip, id, &created), 0);
	cr_expect(created);
	cr_expect_str_eq(ip, "10.1.0.1");
	cr_expect_eq(reg(st, k, &a, ip2, id2, &created), -EEXIST, "the same public key again, with a key");
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_device_reregister(st, id, &a, hash, NOW, &out), 0, "with its own token");
	cr_expect_str_eq(json_string_value(json_object_get(out, "tunnel_ip")), ip);
	cr_expect_str_eq(json_string_value(json_object_get(out, "id")), id);
	json_decref(out);
	cr_assert_eq(reg(st, k, &b, ip, id2, &created), 0);
	cr_expect_str_eq(ip, "10.1.0.2");
	cr_expect_eq(reg(st, k, &c, ip, id2, &created), -ENOSPC);
	cr_expect_eq(store_device_count(st), 2);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 2, "only the two new devices raised the revision");
	store_free(st);
}

Test(store, delete_releases_and_reopen_restores)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id1[UUID_STRLEN], id2[UUID_STRLEN], vpc_of[UUID_STRLEN];
	struct device_spec a, b, c;
	json_t *devices, *deleted;
	struct store *st, *other;
	bool created, full;
	int64_t rev;

	cr_assert_eq(store_open(path, &st), 0);
	cr_expect_eq(store_open(path, &other), -EBUSY, "one writer per database");
	vpc(st, "10.2.0.0/24", v);
	regkey(st, v, false, 0, k);
	fresh_key(&a);
	fresh_key(&b);
	fresh_key(&c);
	cr_assert_eq(reg(st, k, &a, ip, id1, &created), 0);
	cr_assert_eq(reg(st, k, &b, ip, id2, &created), 0);
	cr_assert_eq(store_device_delete(st, id1, NOW, vpc_of), 0);
	cr_expect_str_eq(vpc_of, v);
	cr_expect_eq(store_device_delete(st, id1, NOW, vpc_of), -ENOENT);
	cr_expect_eq(store_vpc_delete(st, v), -ENOTEMPTY);
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3);
	cr_assert_eq(store_device_changes(st, v, 2, &devices, &deleted, &full), 0);
	cr_expect(!full);
	cr_expect_eq(json_array_size(devices), 0);
	cr_assert_eq(json_array_size(deleted), 1);
	cr_expect_str_eq(json_string_value(json_array_get(deleted, 0)), id1);
	json_decref(devices);
	json_decref(deleted);
	cr_assert_eq(reg(st, k, &c, ip, id1, &created), 0);
	cr_expect_str_eq(ip, "10.2.0.1", "the released address, after a restart");
	store_free(st);
}

Test(store, single_use_and_expiry)
{
	char v[UUID_STRLEN], once[UUID_STRLEN], old[UUID_STRLEN], ip[32], id[UUID_STRLEN], id2[UUID_STRLEN];
	struct device_spec a, b;
	struct store *st;
	bool created;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.3.0.0/24", v);
	regkey(st, v, true, 0, once);
	regkey(st, v, false, NOW + 10, old);
	fresh_key(&a);
	fresh_key(&b);
	cr_assert_eq(reg(st, once, &a, ip, id, &created), 0);
	cr_expect_eq(reg(st, once, &b, ip, id2, &created), -EKEYREVOKED);
	cr_expect_eq(reg(st, once, &a, ip, id2, &created), -EKEYREVOKED, "used, even by its own device's key");
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	randombytes_buf(hash, sizeof(hash));
	cr_expect_eq(store_device_register(st, old, &b, hash, NOW + 10, &out), -EKEYEXPIRED);
	strcpy(b.vpc_id, "00000000-0000-4000-8000-000000000000");
	b.set |= DEV_VPC_ID;
	cr_expect_eq(reg(st, old, &b, ip, id2, &created), -EXDEV);
	store_free(st);
}

/* the token of a device, as a hash: whether hash authenticates it */
static bool token_is(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], const char *id)
{
	struct principal who;
	return store_device_auth(st, hash, &who) == 0 && !strcmp(who.id, id);
}

/* issue 15, point 2: anyone with a registration key and a victim's public key
 * (the whole VPC sees it) re-registered it and revoked the victim's token,
 * without using up a single-use key */
Test(store, a_public_key_registered_again_with_a_key_changes_nothing)
{
	char v[UUID_STRLEN], multi[UUID_STRLEN], once[UUID_STRLEN], ip[32], id[UUID_STRLEN], id2[UUID_STRLEN];
	uint8_t victim_token[TOKEN_HASH_BYTES], rogue_token[TOKEN_HASH_BYTES];
	struct device_spec victim, other;
	struct store *st;
	bool created;
	json_t *out = NULL;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.5.0.0/24", v);
	regkey(st, v, false, 0, multi);
	regkey(st, v, true, 0, once);
	fresh_key(&victim);
	randombytes_buf(victim_token, sizeof(victim_token));
	cr_assert_eq(store_device_register(st, multi, &victim, victim_token, NOW, &out), 0);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	cr_assert(token_is(st, victim_token, id));
	static const char *const keys[] = { "multi-use", "single-use" };
	for (int i = 0; i < 2; i++) {
		randombytes_buf(rogue_token, sizeof(rogue_token));
		cr_expect_eq(store_device_register(st, i ? once : multi, &victim, rogue_token, NOW + 1, &out), -EEXIST,
			     "%s key", keys[i]);
		cr_expect(token_is(st, victim_token, id), "the victim's token still works after the %s key", keys[i]);
		cr_expect(!token_is(st, rogue_token, id), "and the rogue's does not (%s key)", keys[i]);
	}
	fresh_key(&other);
	cr_expect_eq(reg(st, once, &other, ip, id2, &created), 0, "the refused attempt did not use the single-use key");
	cr_expect_eq(reg(st, once, &victim, ip, id2, &created), -EKEYREVOKED, "its first registration did");
	cr_expect_eq(store_device_reregister(st, id2, &victim, rogue_token, NOW, &out), -EACCES,
		     "another device's token cannot take the victim's key");
	cr_expect(token_is(st, victim_token, id));
	store_free(st);
}

/* a key proof checked by the caller (challenge.h): the registered device
 * comes back with a new token; the key's rules still hold */
Test(store, a_proven_key_reclaims_its_device)
{
	char v[UUID_STRLEN], multi[UUID_STRLEN], once[UUID_STRLEN], small[UUID_STRLEN], ip[32], id[UUID_STRLEN],
		id2[UUID_STRLEN];
	uint8_t old_token[TOKEN_HASH_BYTES], new_token[TOKEN_HASH_BYTES];
	struct device_spec dev, other;
	int64_t rev_before, rev_after;
	struct store *st;
	bool created;
	json_t *out = NULL;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.9.0.0/24", v);
	regkey(st, v, false, 0, multi);
	regkey(st, v, true, 0, once);
	regkey_spec(st, v, (struct regkey_spec){ .max_devices = 1 }, small);
	fresh_key(&dev);
	randombytes_buf(old_token, sizeof(old_token));
	cr_assert_eq(store_device_register(st, multi, &dev, old_token, NOW, &out), 0);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(out, "id")));
	snprintf(ip, sizeof(ip), "%s", json_string_value(json_object_get(out, "tunnel_ip")));
	json_decref(out);

	store_vpc_revision(st, v, &rev_before);
	randombytes_buf(new_token, sizeof(new_token));
	cr_assert_eq(store_device_reclaim(st, multi, &dev, new_token, NOW + 1, &out), 1, "reclaimed");
	cr_expect_str_eq(json_string_value(json_object_get(out, "id")), id);
	cr_expect_str_eq(json_string_value(json_object_get(out, "tunnel_ip")), ip);
	json_decref(out);
	cr_expect(token_is(st, new_token, id), "the new token is the device's");
	cr_expect(!token_is(st, old_token, id), "the old one is revoked");
	cr_expect_eq(store_device_count(st), 1);
	store_vpc_revision(st, v, &rev_after);
	cr_expect_eq(rev_after, rev_before, "an online device's reclaim changes nothing its peers see");

	/* a reclaim spends a single-use key and counts against max_devices */
	cr_expect_eq(store_device_reclaim(st, once, &dev, old_token, NOW + 2, &out), 1);
	json_decref(out);
	fresh_key(&other);
	cr_expect_eq(reg(st, once, &other, ip, id2, &created), -EKEYREVOKED, "the single-use key was spent");
	cr_expect_eq(store_device_reclaim(st, small, &dev, old_token, NOW + 3, &out), 1);
	json_decref(out);
	cr_expect_eq(store_device_reclaim(st, small, &dev, new_token, NOW + 4, &out), -EDQUOT, "the quota counts it");
	cr_expect(token_is(st, old_token, id), "and the refused one changed nothing");

	/* relaying is the admin's grant: a claim for a device that is none is refused */
	dev.relay = true;
	dev.set |= DEV_RELAY;
	cr_expect_eq(store_device_reclaim(st, multi, &dev, new_token, NOW + 5, &out), -EPERM);
	cr_expect(token_is(st, old_token, id));

	/* a proven key that is not registered is a new device */
	cr_expect_eq(store_device_reclaim(st, multi, &other, new_token, NOW + 6, &out), 0);
	cr_expect_str_neq(json_string_value(json_object_get(out, "id")), id);
	json_decref(out);
	store_free(st);
}

Test(store, a_key_registers_at_most_its_max_devices)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN];
	struct device_spec a;
	struct store *st;
	bool created;
	json_t *out;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.6.0.0/24", v);
	regkey_spec(st, v, (struct regkey_spec){ .max_devices = 3 }, k);
	for (int i = 0; i < 3; i++) {
		fresh_key(&a);
		cr_assert_eq(reg(st, k, &a, ip, id, &created), 0, "device %d", i + 1);
	}
	cr_assert_eq(store_device_delete(st, id, NOW, v), 0);
	fresh_key(&a);
	cr_expect_eq(reg(st, k, &a, ip, id, &created), -EDQUOT, "the quota counts registrations, not devices left");
	cr_expect_eq(store_device_count(st), 2);
	cr_assert_eq(store_regkey_get(st, k, &out), 0);
	cr_expect_eq(json_integer_value(json_object_get(out, "registrations")), 3);
	cr_expect_eq(json_integer_value(json_object_get(out, "max_devices")), 3);
	json_decref(out);
	store_free(st);
}

static bool relay_of(struct store *st, const char *id)
{
	json_t *out;
	cr_assert_eq(store_device_get(st, id, &out, NULL), 0);
	bool relay = json_is_true(json_object_get(out, "relay"));
	json_decref(out);
	return relay;
}

/* issue 15, point 1: relaying is granted by a key that mints relays or by
 * the admin (a PATCH the API allows only with the admin token), never claimed */
Test(store, a_relay_is_granted_by_its_key_not_claimed)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], rk[UUID_STRLEN], ip[32], id[UUID_STRLEN], rid[UUID_STRLEN];
	struct device_spec a, r, claim;
	struct store *st;
	bool created;
	json_t *out;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.4.0.0/24", v);
	regkey(st, v, false, 0, k);
	regkey_spec(st, v, (struct regkey_spec){ .relay = true }, rk);
	cr_assert_eq(store_regkey_get(st, rk, &out), 0);
	cr_expect(json_is_true(json_object_get(out, "relay")), "the key says it mints relays");
	json_decref(out);
	fresh_key(&claim);
	claim.relay = true;
	claim.set |= DEV_RELAY;
	cr_expect_eq(reg(st, k, &claim, ip, id, &created), -EPERM, "a claim with a key that mints no relays");
	cr_expect_eq(store_device_count(st), 0, "and nothing is stored");
	fresh_key(&a);
	cr_assert_eq(reg(st, k, &a, ip, id, &created), 0);
	cr_expect(!relay_of(st, id));
	fresh_key(&r);
	cr_assert_eq(reg(st, rk, &r, ip, rid, &created), 0);
	cr_expect(relay_of(st, rid), "a key that mints relays makes relays, claimed or not");
	struct device_spec grant = { .set = DEV_RELAY, .relay = true };
	cr_assert_eq(store_device_patch(st, id, &grant, NOW, &out), 0);
	json_decref(out);
	cr_expect(relay_of(st, id), "granted");
	store_free(st);
}

Test(store, patch_bumps_revision_only_on_change)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN];
	struct device_spec a, p;
	json_error_t je;
	struct verr e;
	struct store *st;
	json_t *out, *body;
	bool created;
	int64_t r1, r2, r3;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.4.0.0/24", v);
	regkey(st, v, false, 0, k);
	fresh_key(&a);
	cr_assert_eq(reg(st, k, &a, ip, id, &created), 0);
	store_vpc_revision(st, v, &r1);
	body = json_loads("{\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.1:5\"}],\"nat\":{\"mapping\":\"address-dependent\"}}", 0, &je);
	cr_assert_eq(validate_device_patch(body, &p, &e), 0);
	cr_assert_eq(store_device_patch(st, id, &p, NOW, &out), 0);
	json_decref(out);
	store_vpc_revision(st, v, &r2);
	cr_expect_eq(r2, r1 + 1);
	cr_assert_eq(store_device_patch(st, id, &p, NOW, &out), 0);
	store_vpc_revision(st, v, &r3);
	cr_expect_eq(r3, r2, "the same report again changes nothing");
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(out, "endpoints"), 0), "address")), "10.0.0.1:5");
	json_decref(out);
	device_spec_clear(&p);
	json_decref(body);
	store_free(st);
}

/* per-family NAT findings: stored as JSON text (no schema change), returned
 * whole by a device read and the VPC's list, and a change in one family
 * alone is a change */
Test(store, nat_per_family)
{
	static const struct {
		const char *nat;
		bool change;
		const char *want;	/* the device's nat as read back */
	} steps[] = {
		{ "{\"mapping\":\"endpoint-independent\"}", true, "{\"mapping\":\"endpoint-independent\"}" },
		{ "{\"ipv4\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\"},"
		  "\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"endpoint-independent\"}}", true,
		  "{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\","
		  "\"ipv4\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\"},"
		  "\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"endpoint-independent\"}}" },
		{ "{\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"endpoint-independent\"},"
		  "\"ipv4\":{\"filtering\":\"address-and-port-dependent\",\"mapping\":\"endpoint-independent\"}}", false,
		  "{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\","
		  "\"ipv4\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\"},"
		  "\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"endpoint-independent\"}}" },
		{ "{\"ipv4\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\"},"
		  "\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-dependent\"}}", true,
		  "{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\","
		  "\"ipv4\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-and-port-dependent\"},"
		  "\"ipv6\":{\"mapping\":\"endpoint-independent\",\"filtering\":\"address-dependent\"}}" },
	};
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN], vid[UUID_STRLEN];
	struct device_spec a;
	struct store *st;
	bool created;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.6.0.0/24", v);
	regkey(st, v, false, 0, k);
	fresh_key(&a);
	cr_assert_eq(reg(st, k, &a, ip, id, &created), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char body[1024];
		struct device_spec p;
		json_error_t je;
		struct verr e;
		json_t *b, *out, *list;
		int64_t r1, r2;
		char *got;

		snprintf(body, sizeof(body), "{\"nat\":%s}", steps[i].nat);
		cr_assert_not_null(b = json_loads(body, 0, &je));
		cr_assert_eq(validate_device_patch(b, &p, &e), 0, "step %zu: %s: %s", i, e.field, e.msg);
		store_vpc_revision(st, v, &r1);
		cr_assert_eq(store_device_patch(st, id, &p, NOW, &out), 0);
		json_decref(out);
		store_vpc_revision(st, v, &r2);
		cr_expect_eq(r2 != r1, steps[i].change, "step %zu: revision %lld -> %lld", i, (long long)r1,
			     (long long)r2);
		cr_assert_eq(store_device_get(st, id, &out, vid), 0);
		got = json_dumps(json_object_get(out, "nat"), JSON_COMPACT);
		cr_expect_str_eq(got, steps[i].want, "step %zu: read", i);
		free(got);
		json_decref(out);
		cr_assert_eq(store_device_list(st, &list), 0);
		got = json_dumps(json_object_get(json_array_get(list, 0), "nat"), JSON_COMPACT);
		cr_expect_str_eq(got, steps[i].want, "step %zu: list", i);
		free(got);
		json_decref(list);
		device_spec_clear(&p);
		json_decref(b);
	}
	device_spec_clear(&a);
	store_free(st);
}

/* changes since REV: whether full, how many devices, the deleted ids joined by "," */
static void changes(struct store *st, const char *v, int64_t since, bool *full, size_t *ndev, char *del, size_t dlen)
{
	json_t *devices, *deleted, *d;
	size_t i;

	cr_assert_eq(store_device_changes(st, v, since, &devices, &deleted, full), 0);
	*ndev = json_array_size(devices);
	del[0] = 0;
	json_array_foreach(deleted, i, d) {
		if (i)
			strncat(del, ",", dlen - strlen(del) - 1);
		strncat(del, json_string_value(d), dlen - strlen(del) - 1);
	}
	json_decref(devices);
	json_decref(deleted);
}

static int nchanged;
static char last_changed[UUID_STRLEN];
static void on_changed(void *arg, const char *vpc_id)
{
	(void)arg;
	nchanged++;
	snprintf(last_changed, sizeof(last_changed), "%s", vpc_id);
}

Test(store, tombstones_pruned_after_ttl_then_old_revisions_get_everything)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[3][UUID_STRLEN], vpc_of[UUID_STRLEN], del[256];
	struct store_limits lim = { .offline_after_s = 1000000, .tombstone_ttl_s = 1000 };
	struct device_spec a;
	struct store *st;
	bool created, full;
	size_t n;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.5.0.0/24", v);
	regkey(st, v, false, 0, k);
	for (int i = 0; i < 3; i++) {
		fresh_key(&a);
		cr_assert_eq(reg(st, k, &a, ip, id[i], &created), 0);
	}
	cr_assert_eq(store_device_delete(st, id[0], NOW + 10, vpc_of), 0);	/* revision 4 */
	cr_assert_eq(store_device_delete(st, id[1], NOW + 100, vpc_of), 0);	/* revision 5 */
	changes(st, v, 3, &full, &n, del, sizeof(del));
	cr_expect(!full);
	cr_expect_eq(n, 0);
	char both[128];
	snprintf(both, sizeof(both), "%s,%s", id[0], id[1]);
	cr_expect_str_eq(del, both);

	cr_expect_eq(store_housekeeping(st, NOW + 10 + 999, &lim, on_changed, NULL), 0, "not yet expired");
	changes(st, v, 3, &full, &n, del, sizeof(del));
	cr_expect(!full);
	cr_expect_eq(store_housekeeping(st, NOW + 10 + 1000, &lim, on_changed, NULL), 1, "the first expired");
	cr_expect_eq(nchanged, 0, "pruning changes no revision");
	changes(st, v, 3, &full, &n, del, sizeof(del));
	cr_expect(full, "since 3 needs the pruned tombstone of revision 4: the whole list instead");
	cr_expect_eq(n, 1);
	cr_expect_str_eq(del, "");
	changes(st, v, 4, &full, &n, del, sizeof(del));
	cr_expect(!full, "since 4 needs only tombstones that are kept");
	cr_expect_str_eq(del, id[1]);
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	changes(st, v, 3, &full, &n, del, sizeof(del));
	cr_expect(full, "the horizon survives a restart");
	changes(st, v, 4, &full, &n, del, sizeof(del));
	cr_expect(!full);
	cr_expect_eq(store_housekeeping(st, NOW + 100 + 1000, &lim, on_changed, NULL), 1);
	changes(st, v, 4, &full, &n, del, sizeof(del));
	cr_expect(full);
	changes(st, v, 5, &full, &n, del, sizeof(del));
	cr_expect(!full, "the current revision never needs a resync");
	cr_expect_eq(n, 0);
	cr_expect_str_eq(del, "");
	store_free(st);
}

static bool online_of(struct store *st, const char *id, int64_t *rev)
{
	json_t *out;
	bool on;
	cr_assert_eq(store_device_get(st, id, &out, NULL), 0);
	on = json_is_true(json_object_get(out, "online"));
	*rev = json_integer_value(json_object_get(out, "revision"));
	json_decref(out);
	return on;
}

Test(store, online_flips_with_a_revision)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN];
	struct store_limits lim = { .offline_after_s = 120, .tombstone_ttl_s = 1000000 };
	struct principal who = { .scope = TOKEN_DEVICE };
	struct device_spec a;
	struct store *st;
	int64_t rev, drev;
	bool created;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.6.0.0/24", v);
	regkey(st, v, false, 0, k);
	fresh_key(&a);
	cr_assert_eq(reg(st, k, &a, ip, id, &created), 0);	/* at NOW: revision 1 */
	cr_expect(online_of(st, id, &drev));
	nchanged = 0;
	cr_expect_eq(store_housekeeping(st, NOW + 119, &lim, on_changed, NULL), 0);
	cr_expect_eq(nchanged, 0, "119 s of silence: still online");
	cr_expect_eq(store_housekeeping(st, NOW + 120, &lim, on_changed, NULL), 0);
	cr_expect_eq(nchanged, 1, "120 s: published offline");
	cr_expect_str_eq(last_changed, v);
	cr_expect(!online_of(st, id, &drev));
	store_vpc_revision(st, v, &rev);
	cr_expect_eq(rev, 2);
	cr_expect_eq(drev, 2, "the device carries the new revision, so since=1 sees it");
	cr_expect_eq(store_housekeeping(st, NOW + 121, &lim, on_changed, NULL), 0);
	cr_expect_eq(nchanged, 1, "only once");

	snprintf(who.id, sizeof(who.id), "%s", id);
	snprintf(who.vpc_id, sizeof(who.vpc_id), "%s", v);
	who.online = false;
	cr_expect_eq(store_device_touch(st, &who, NOW + 200), 1, "a request from an offline device");
	cr_expect(online_of(st, id, &drev));
	store_vpc_revision(st, v, &rev);
	cr_expect_eq(rev, 3);
	cr_expect_eq(drev, 3);
	who.online = true;
	cr_expect_eq(store_device_touch(st, &who, NOW + 210), 0, "online already: only last_seen");
	store_vpc_revision(st, v, &rev);
	cr_expect_eq(rev, 3);
	cr_expect_eq(store_housekeeping(st, NOW + 210 + 119, &lim, on_changed, NULL), 0);
	cr_expect(online_of(st, id, &drev), "the touch at +210 counts, not the flip at +200");
	cr_expect_eq(store_housekeeping(st, NOW + 210 + 120, &lim, on_changed, NULL), 0);
	cr_expect(!online_of(st, id, &drev));

	/* registering again (a restarted agent, with its token) brings it back too */
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_device_reregister(st, id, &a, hash, NOW + 400, &out), 0);
	json_decref(out);
	cr_expect(online_of(st, id, &drev));
	store_vpc_revision(st, v, &rev);
	cr_expect_eq(rev, 5);
	cr_expect_eq(drev, 5);
	store_free(st);
}

/* the schema of the first release, as it wrote it */
static const char v1_schema[] =
	"CREATE TABLE vpcs (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ipv4_cidr TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, revision INTEGER NOT NULL) STRICT;"
	"CREATE TABLE reg_keys (id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	" secret_hash BLOB NOT NULL UNIQUE, single_use INTEGER NOT NULL, expires_at INTEGER,"
	" description TEXT NOT NULL, created_at INTEGER NOT NULL, used_by TEXT) STRICT;"
	"CREATE TABLE devices (id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id),"
	" public_key TEXT NOT NULL, hostname TEXT NOT NULL, os TEXT NOT NULL,"
	" endpoints TEXT NOT NULL, ip_index INTEGER NOT NULL, tunnel_ip TEXT NOT NULL,"
	" relay INTEGER NOT NULL, symmetric_nat INTEGER NOT NULL, nat TEXT,"
	" revision INTEGER NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	" token_hash BLOB NOT NULL UNIQUE,"
	" UNIQUE (vpc_id, public_key), UNIQUE (vpc_id, ip_index), UNIQUE (vpc_id, revision)) STRICT;"
	"CREATE TABLE tombstones (vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	" device_id TEXT NOT NULL, revision INTEGER NOT NULL, PRIMARY KEY (vpc_id, revision)) STRICT;"
	"PRAGMA user_version=1;";

static void raw_exec(const char *sql)
{
	sqlite3 *db;
	char *err = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s", err ? err : "");
	sqlite3_close(db);
}

static int64_t user_version(void)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t v = -1;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

Test(store, upgrades_a_version_1_database)
{
	const char *v = "11111111-1111-4111-8111-111111111111";
	struct store_limits lim = { .offline_after_s = 120, .tombstone_ttl_s = 60 };
	char sql[2048], del[256];
	int64_t now = (int64_t)time(NULL), rev;
	struct store *st;
	bool full;
	size_t n;

	raw_exec(v1_schema);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO vpcs VALUES ('%s', 'old', '10.7.0.0/24', %lld, 3);"
		 "INSERT INTO devices VALUES ('22222222-2222-4222-8222-222222222222', '%s', 'pk-a', 'a', 'linux',"
		 " '[]', 1, '10.7.0.1', 0, 0, NULL, 1, %lld, %lld, x'01');"
		 "INSERT INTO devices VALUES ('33333333-3333-4333-8333-333333333333', '%s', 'pk-b', 'b', 'linux',"
		 " '[]', 2, '10.7.0.2', 0, 0, NULL, 2, %lld, %lld, x'02');"
		 "INSERT INTO tombstones VALUES ('%s', '44444444-4444-4444-8444-444444444444', 3);",
		 v, (long long)now, v, (long long)now, (long long)now, v, (long long)now,
		 (long long)(now - 1000), v);
	raw_exec(sql);
	snprintf(sql, sizeof(sql), "INSERT INTO reg_keys VALUES ('55555555-5555-4555-8555-555555555555', '%s',"
		 " x'05', 0, NULL, 'old', %lld, NULL);", v, (long long)now);
	raw_exec(sql);

	cr_assert_eq(store_open(path, &st), 0);
	json_t *key;
	cr_assert_eq(store_regkey_get(st, "55555555-5555-4555-8555-555555555555", &key), 0);
	cr_expect(json_is_false(json_object_get(key, "relay")), "a key from before relay keys mints no relays");
	json_decref(key);
	cr_expect(online_of(st, "22222222-2222-4222-8222-222222222222", &rev), "seen now: online");
	cr_expect_eq(rev, 1, "the upgrade changes no revision");
	cr_expect(!online_of(st, "33333333-3333-4333-8333-333333333333", &rev), "silent 1000 s: offline");
	changes(st, v, 2, &full, &n, del, sizeof(del));
	cr_expect(!full);
	cr_expect_str_eq(del, "44444444-4444-4444-8444-444444444444", "the old tombstone is served");
	store_free(st);
	cr_expect_eq(user_version(), 4);

	cr_assert_eq(store_open(path, &st), 0, "an upgraded database opens again");
	cr_expect_eq(store_housekeeping(st, now + 59, &lim, NULL, NULL), 0,
		     "a tombstone from before the upgrade lives a full TTL from the upgrade");
	cr_expect_eq(store_housekeeping(st, now + 61, &lim, NULL, NULL), 1);
	changes(st, v, 2, &full, &n, del, sizeof(del));
	cr_expect(full);
	cr_expect_eq(n, 2);
	store_free(st);
}

Test(store, refuses_a_newer_schema)
{
	struct store *st;

	cr_assert_eq(store_open(path, &st), 0);
	store_free(st);
	raw_exec("PRAGMA user_version=5");
	cr_expect_eq(store_open(path, &st), -EPROTO);
	cr_expect_eq(user_version(), 5, "left as it was");
}

/* --- group commit ------------------------------------------------------------------ */

/* rows in a table, through a connection of its own: what is committed */
static int64_t committed_rows(const char *table)
{
	char sql[128];
	sqlite3 *db;
	sqlite3_stmt *s;
	int64_t n = -1;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/* a store with one VPC and one key, after a first open that made the schema
 * and then sql (triggers that make chosen writes fail) */
static struct store *store_with(const char *sql, const char *cidr, char v[UUID_STRLEN], char k[UUID_STRLEN])
{
	struct store *st;
	cr_assert_eq(store_open(path, &st), 0);
	store_free(st);
	if (sql)
		raw_exec(sql);
	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, cidr, v);
	regkey(st, v, false, 0, k);
	return st;
}

static int reg_named(struct store *st, const char *key_id, const char *hostname, char ip[32],
		     char id[UUID_STRLEN])
{
	struct device_spec spec;
	bool created;
	fresh_key(&spec);
	snprintf(spec.hostname, sizeof(spec.hostname), "%s", hostname);
	return reg(st, key_id, &spec, ip, id, &created);
}

Test(store, a_batch_commits_its_registrations_together)
{
	struct store_limits lim = { .offline_after_s = 120, .tombstone_ttl_s = 1000 };
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN], want[32];
	struct store_stats before, after;
	struct store *st = store_with(NULL, "10.8.0.0/24", v, k);
	int64_t rev;

	store_stats(st, &before);
	cr_assert_eq(store_batch_begin(st), 0);
	cr_expect_eq(store_batch_begin(st), -EALREADY);
	cr_expect(!store_batch_pending(st), "no write yet: no transaction, nothing to hold");
	for (int i = 1; i <= 5; i++) {
		cr_assert_eq(reg_named(st, k, "a", ip, id), 0);
		snprintf(want, sizeof(want), "10.8.0.%d", i);
		cr_expect_str_eq(ip, want, "the batch's IPAM sees its own allocations");
	}
	cr_expect(store_batch_pending(st));
	cr_expect_eq(store_housekeeping(st, NOW, &lim, NULL, NULL), -EBUSY);
	cr_expect_eq(committed_rows("devices"), 0, "nothing is visible outside before the commit");
	store_stats(st, &after);
	cr_expect_eq(after.commits, before.commits);
	cr_expect_eq(store_batch_commit(st), 5);
	cr_expect(!store_batch_pending(st));
	cr_expect_eq(committed_rows("devices"), 5);
	store_stats(st, &after);
	cr_expect_eq(after.commits, before.commits + 1, "five writes, one commit");
	cr_expect_eq(after.writes, before.writes + 5);
	cr_expect_eq(store_batch_commit(st), -EINVAL, "no batch");
	cr_assert_eq(store_batch_begin(st), 0);
	cr_expect_eq(store_batch_commit(st), 0, "an empty batch commits nothing");
	store_stats(st, &before);
	cr_expect_eq(before.commits, after.commits);
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	cr_expect_eq(store_device_count(st), 5);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 5);
	store_free(st);
}

/* refused: a statement fails halfway through its write, after the address
 * and the revision were taken */
static const char refuse_trigger[] =
	"CREATE TRIGGER refuse BEFORE INSERT ON devices WHEN NEW.hostname = 'refused'"
	" BEGIN SELECT RAISE(ABORT, 'refused'); END;";

Test(store, a_failed_write_in_a_batch_is_rolled_back_alone)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], a[UUID_STRLEN], b[UUID_STRLEN], id[UUID_STRLEN];
	struct store *st = store_with(refuse_trigger, "10.9.0.0/24", v, k);
	struct device_spec p = { .set = DEV_RELAY, .relay = true };
	json_t *out;
	int64_t rev;

	cr_assert_eq(store_batch_begin(st), 0);
	cr_assert_eq(reg_named(st, k, "a", ip, a), 0);			/* .1, revision 1 */
	cr_expect_eq(reg_named(st, k, "refused", ip, id), -EEXIST);	/* took .2 and revision 2 */
	cr_expect(store_batch_pending(st), "the batch goes on");
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 1, "the failed write's revision is undone at once");
	cr_assert_eq(reg_named(st, k, "b", ip, b), 0);
	cr_expect_str_eq(ip, "10.9.0.2", "and its address");
	cr_assert_eq(store_device_patch(st, a, &p, NOW, &out), 0);
	json_decref(out);
	cr_expect_eq(store_batch_commit(st), 3);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3);
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	cr_expect_eq(store_device_count(st), 2);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3, "the database agrees");
	cr_assert_eq(store_device_get(st, b, &out, NULL), 0);
	cr_expect_str_eq(json_string_value(json_object_get(out, "tunnel_ip")), "10.9.0.2");
	cr_expect_eq(json_integer_value(json_object_get(out, "revision")), 2);
	json_decref(out);
	store_free(st);
}

/* poison: the write works, but its deferred foreign key fails the COMMIT */
static const char poison_trigger[] =
	"CREATE TABLE poison_parent (id INTEGER PRIMARY KEY);"
	"CREATE TABLE poison_child (p INTEGER REFERENCES poison_parent(id) DEFERRABLE INITIALLY DEFERRED);"
	"CREATE TRIGGER poison AFTER INSERT ON devices WHEN NEW.hostname = 'poison'"
	" BEGIN INSERT INTO poison_child VALUES (1); END;";

Test(store, a_failed_commit_undoes_the_whole_batch_in_memory_too)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], a[UUID_STRLEN], d[UUID_STRLEN], id[UUID_STRLEN];
	char empty[UUID_STRLEN], vpc_of[UUID_STRLEN];
	struct store *st = store_with(poison_trigger, "10.10.0.0/24", v, k);
	struct device_spec p = { .set = DEV_RELAY, .relay = true };
	struct vpc_spec other = { .name = "other" }, spare = { .name = "spare" };
	struct store_stats stats;
	json_t *out;
	int64_t rev;

	cr_assert_eq(reg_named(st, k, "a", ip, a), 0);	/* .1, revision 1 */
	cr_assert_eq(reg_named(st, k, "d", ip, d), 0);	/* .2, revision 2 */
	cr_assert_eq(cidr_parse("10.11.0.0/24", false, &spare.cidr), 0);
	cr_assert_eq(store_vpc_create(st, &spare, NOW, &out), 0);
	snprintf(empty, sizeof(empty), "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);

	cr_assert_eq(store_batch_begin(st), 0);
	cr_assert_eq(store_device_delete(st, d, NOW, vpc_of), 0);	/* .2 free, revision 3 */
	cr_assert_eq(reg_named(st, k, "b", ip, id), 0);
	cr_expect_str_eq(ip, "10.10.0.2", "the address released in the batch is taken again in it");
	cr_assert_eq(reg_named(st, k, "poison", ip, id), 0);		/* .3, revision 5 */
	cr_assert_eq(store_device_patch(st, a, &p, NOW, &out), 0);	/* revision 6 */
	json_decref(out);
	cr_assert_eq(cidr_parse("10.12.0.0/24", false, &other.cidr), 0);
	cr_assert_eq(store_vpc_create(st, &other, NOW, &out), 0);
	json_decref(out);
	cr_assert_eq(store_vpc_delete(st, empty), 0);
	cr_expect_eq(store_vpc_count(st), 2);
	cr_expect_lt(store_batch_commit(st), 0, "the deferred foreign key fails the commit");
	cr_expect(!store_batch_pending(st));

	store_stats(st, &stats);
	cr_expect_eq(stats.failed_commits, 1);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 2, "the revision is back");
	cr_expect_eq(store_device_count(st), 2, "a and d, as committed");
	cr_expect_eq(store_vpc_count(st), 2, "the VPC created in the batch is gone, the one deleted is back");
	cr_expect_eq(store_vpc_revision(st, empty, &rev), 0);
	cr_assert_eq(store_device_get(st, d, &out, NULL), 0, "the deleted device is back");
	json_decref(out);
	cr_assert_eq(reg_named(st, k, "c", ip, id), 0);
	cr_expect_str_eq(ip, "10.10.0.3", ".1 and .2 are held again, .3 is free again");
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3, "and revisions go on from the committed one");
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	cr_expect_eq(store_device_count(st), 3, "the database holds what memory said");
	cr_expect_eq(store_vpc_count(st), 2);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3);
	store_free(st);
}

/* lose: SQLite rolls the whole transaction back itself, as after an I/O error */
static const char lose_trigger[] =
	"CREATE TRIGGER lose BEFORE INSERT ON devices WHEN NEW.hostname = 'lose'"
	" BEGIN SELECT RAISE(ROLLBACK, 'lost'); END;";

Test(store, a_batch_whose_transaction_is_lost_fails_as_a_whole)
{
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN];
	struct store *st = store_with(lose_trigger, "10.13.0.0/24", v, k);
	int64_t rev;

	cr_assert_eq(store_batch_begin(st), 0);
	cr_assert_eq(reg_named(st, k, "a", ip, id), 0);
	cr_expect_lt(reg_named(st, k, "lose", ip, id), 0);
	cr_expect(store_batch_pending(st), "the held answers must still learn of the failure");
	cr_expect_eq(reg_named(st, k, "b", ip, id), -EIO, "the batch takes no more writes");
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 0, "a's revision went with the transaction");
	cr_expect_eq(store_device_count(st), 0);
	cr_expect_lt(store_batch_commit(st), 0);
	cr_assert_eq(reg_named(st, k, "c", ip, id), 0);
	cr_expect_str_eq(ip, "10.13.0.1");
	cr_expect_eq(committed_rows("devices"), 1);
	store_free(st);
}

static size_t online_count(struct store *st)
{
	json_t *list, *d;
	size_t i, n = 0;
	cr_assert_eq(store_device_list(st, &list), 0);
	json_array_foreach(list, i, d)
		n += json_is_true(json_object_get(d, "online"));
	json_decref(list);
	return n;
}

Test(store, housekeeping_takes_at_most_its_maximum_a_pass_and_the_rest_next)
{
	struct store_limits lim = { .offline_after_s = 120, .tombstone_ttl_s = 1000000 };
	char v[UUID_STRLEN], k[UUID_STRLEN], ip[32], id[UUID_STRLEN];
	struct device_spec a;
	struct store *st;
	bool created;

	cr_assert_eq(store_open(path, &st), 0);
	vpc(st, "10.7.0.0/19", v);
	regkey_spec(st, v, (struct regkey_spec){ .max_devices = STORE_HOUSEKEEPING_MAX + 1 }, k);
	cr_assert_eq(store_batch_begin(st), 0);
	for (int i = 0; i <= STORE_HOUSEKEEPING_MAX; i++) {
		fresh_key(&a);
		cr_assert_eq(reg(st, k, &a, ip, id, &created), 0, "device %d", i);
	}
	cr_assert_eq(store_batch_commit(st), STORE_HOUSEKEEPING_MAX + 1);
	cr_expect_eq(online_count(st), STORE_HOUSEKEEPING_MAX + 1);
	nchanged = 0;
	cr_expect_eq(store_housekeeping(st, NOW + 120, &lim, on_changed, NULL), 0);
	cr_expect_eq(online_count(st), 1, "one pass publishes its maximum, no more");
	cr_expect_eq(nchanged, 1);
	cr_expect_eq(store_housekeeping(st, NOW + 121, &lim, on_changed, NULL), 0);
	cr_expect_eq(online_count(st), 0, "the next pass takes the rest");
	cr_expect_eq(nchanged, 2);
	store_free(st);
}
