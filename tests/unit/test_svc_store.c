#include <criterion/criterion.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/store.h"

#define NOW 1700000000

static char dir[64], path[96];

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/test_svc_store.XXXXXX");
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

static void regkey(struct store *st, const char *vpc_id, bool single, int64_t expires, char id[UUID_STRLEN])
{
	struct regkey_spec spec = { .single_use = single, .expires_at = expires };
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	snprintf(spec.vpc_id, sizeof(spec.vpc_id), "%s", vpc_id);
	randombytes_buf(hash, sizeof(hash));
	cr_assert_eq(store_regkey_create(st, &spec, hash, NOW, &out), 0);
	snprintf(id, UUID_STRLEN, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
}

/* registers a fresh key (or key, if given); returns rc, the tunnel IP and id */
static int reg(struct store *st, const char *key_id, struct device_spec *spec, char ip[32],
	       char id[UUID_STRLEN], bool *created)
{
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out = NULL;
	int rc;
	randombytes_buf(hash, sizeof(hash));
	rc = store_device_register(st, key_id, spec, hash, NOW, &out, created);
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
	cr_assert_eq(reg(st, k, &a, ip2, id2, &created), 0);
	cr_expect(!created, "the same public key again");
	cr_expect_str_eq(ip2, ip);
	cr_expect_str_eq(id2, id);
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
	bool created;
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
	cr_assert_eq(store_device_delete(st, id1, vpc_of), 0);
	cr_expect_str_eq(vpc_of, v);
	cr_expect_eq(store_device_delete(st, id1, vpc_of), -ENOENT);
	cr_expect_eq(store_vpc_delete(st, v), -ENOTEMPTY);
	store_free(st);

	cr_assert_eq(store_open(path, &st), 0);
	cr_assert_eq(store_vpc_revision(st, v, &rev), 0);
	cr_expect_eq(rev, 3);
	cr_assert_eq(store_device_changes(st, v, 2, NOW, &devices, &deleted), 0);
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
	cr_expect_eq(reg(st, once, &a, ip, id2, &created), 0, "its own device may register again");
	cr_expect_str_eq(id2, id);
	uint8_t hash[TOKEN_HASH_BYTES];
	json_t *out;
	randombytes_buf(hash, sizeof(hash));
	cr_expect_eq(store_device_register(st, old, &b, hash, NOW + 10, &out, &created), -EKEYEXPIRED);
	strcpy(b.vpc_id, "00000000-0000-4000-8000-000000000000");
	b.set |= DEV_VPC_ID;
	cr_expect_eq(reg(st, old, &b, ip, id2, &created), -EXDEV);
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
