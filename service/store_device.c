/* store_device: devices. Registration (a new address from the VPC's IPAM) with
 * a key, registration again with the device's own token (a new token),
 * authentication by token hash,
 * changes, presence, deletion with a tombstone, and the changes of a VPC
 * since a revision. Every change a peer must hear of raises the VPC's
 * revision. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "log.h"

static json_t *json_column(struct db_stmt *s, int col, json_t *fallback)
{
	json_t *v = NULL;
	if (!db_column_null(s, col))
		v = json_loads(store_col_text(s, col), 0, NULL);
	if (!v)
		return fallback;
	json_decref(fallback);
	return v;
}

static json_t *device_json(struct db_stmt *s)
{
	char allowed[CIDR_STRLEN];
	snprintf(allowed, sizeof(allowed), "%s/32", store_col_text(s, DC_TUNNEL_IP));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:[s], s:b, s:b, s:o, s:I, s:b, s:o, s:s, s:b}",
			 "id", store_col_text(s, DC_ID), "vpc_id", store_col_text(s, DC_VPC_ID),
			 "public_key", store_col_text(s, DC_PUBLIC_KEY), "hostname", store_col_text(s, DC_HOSTNAME),
			 "os", store_col_text(s, DC_OS), "endpoints", json_column(s, DC_ENDPOINTS, json_array()),
			 "tunnel_ip", store_col_text(s, DC_TUNNEL_IP), "allowed_ips", allowed,
			 "relay", db_column_int(s, DC_RELAY), "symmetric_nat",
			 db_column_int(s, DC_SYMMETRIC_NAT), "nat", json_column(s, DC_NAT, json_null()),
			 "revision", (json_int_t)db_column_int64(s, DC_REVISION), "online",
			 db_column_int(s, DC_ONLINE), "last_seen",
			 store_time_or_null(db_column_int64(s, DC_LAST_SEEN)), "security_group_id",
			 store_col_text(s, DC_SECURITY_GROUP_ID), "enforces_policy",
			 db_column_int(s, DC_ENFORCES_POLICY));
}

int store_device_get(struct store *st, const char *id, json_t **out, char vpc_id[UUID_STRLEN])
{
	struct db_stmt *s = store_stmt(st, S_DEV_GET);
	int rc;
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		*out = device_json(s);
		if (vpc_id)
			store_copy_id(vpc_id, store_col_text(s, DC_VPC_ID));
	}
	db_reset(s);
	if (rc == DB_DONE)
		return -ENOENT;
	if (rc != DB_ROW)
		return store_db_error(st, "device get");
	return *out ? 0 : -ENOMEM;
}

/* a stored JSON column; validate builds values in a fixed key order, so equal
 * values have equal text */
static char *json_text(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void bind_json(struct db_stmt *s, int i, const char *text)
{
	if (text)
		store_bind_text(s, i, text);
	else
		db_bind_null(s, i);
}

/* the device with this key in the VPC, if any, into id (and whether it is online) */
static int device_by_key(struct store *st, const char *vpc_id, const char *public_key, char id[UUID_STRLEN],
			 bool *online, bool *relay)
{
	struct db_stmt *s = store_stmt(st, S_DEV_BY_KEY);
	int rc;
	id[0] = 0;
	store_bind_text(s, 1, vpc_id);
	store_bind_text(s, 2, public_key);
	rc = db_step(s);
	if (rc == DB_ROW) {
		store_copy_id(id, store_col_text(s, 0));
		*online = db_column_int(s, 1);
		*relay = db_column_int(s, 2);
	}
	db_reset(s);
	return rc == DB_ROW || rc == DB_DONE ? 0 : store_db_error(st, "device by key");
}

/* the device's row at address index: 0 (no row when the address was taken), -EEXIST, -EIO */
static int insert_row(struct store *st, struct vpc_state *v, const char *id, const struct device_spec *spec,
		      bool relay, const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, int64_t rev,
		      const char *group, const char *endpoints, const char *nat, uint64_t index,
		      const union sockaddr_any *addr)
{
	static const char no_endpoints[] = "[]";
	char ip[INET6_ADDRSTRLEN];
	struct db_stmt *s = store_stmt(st, S_DEV_INSERT);

	store_bind_text(s, 1, id);
	store_bind_text(s, 2, v->id);
	store_bind_text(s, 3, spec->public_key_b64);
	store_bind_text(s, 4, spec->hostname);
	store_bind_text(s, 5, spec->os);
	store_bind_text(s, 6, endpoints ? endpoints : no_endpoints);
	db_bind_int64(s, 7, (int64_t)index);
	store_bind_text(s, 8, addr_format_ip(addr, ip, sizeof(ip)));
	db_bind_int64(s, 9, relay);
	db_bind_int64(s, 10, spec->symmetric_nat);
	bind_json(s, 11, nat);
	db_bind_int64(s, 12, rev);
	db_bind_int64(s, 13, now);
	db_bind_blob(s, 14, token_hash, TOKEN_HASH_BYTES);
	store_bind_text(s, 15, group);
	db_bind_int64(s, 16, (spec->set & DEV_ENFORCES_POLICY) ? spec->enforces_policy : true);
	return store_exec(st, s);
}

/* inside the caller's transaction, which undoes the address on rollback */
static int insert_device(struct store *st, struct vpc_state *v, const char *id,
			 const struct device_spec *spec, bool relay, const uint8_t token_hash[TOKEN_HASH_BYTES],
			 int64_t now)
{
	char group[UUID_STRLEN], *endpoints = NULL, *nat = NULL;
	union sockaddr_any addr;
	uint64_t index;
	int64_t rev;
	int rc;

	/* a new device joins its VPC's default group; the admin moves it. The
	 * bump locks the VPC's row until commit, so the VPC's registrations
	 * take their addresses one at a time, across meshsvc replicas too */
	if ((rc = store_secgroup_default(st, v->id, group)) < 0 || (rc = store_bump(st, v->id, &rev)) < 0)
		return rc;
	endpoints = json_text(spec->endpoints);
	nat = json_text(spec->nat);
	/* an address another meshsvc gave out (committed: the insert waits for
	 * its transaction) stays taken in this one's IPAM too */
	while ((rc = store_ipam_alloc(st, v, &index, &addr)) == 0) {
		if ((rc = insert_row(st, v, id, spec, relay, token_hash, now, rev, group, endpoints, nat, index,
				     &addr)) < 0) {
			ipam_release(&v->ipam, index);
			break;
		}
		if (db_changes(st->db)) {
			store_journal(st, U_ALLOC, v, (int64_t)index);
			break;
		}
		log_info("store", "address taken by another meshsvc vpc=%s index=%llu", v->id,
			 (unsigned long long)index);
	}
	free(endpoints);
	free(nat);
	return rc;
}

/* the key of a registration, read inside its transaction */
struct key_use {
	char vpc_id[UUID_STRLEN];
	bool single_use, used, relay;
	int64_t expires_at, max_devices, registrations;
};

static int key_read(struct store *st, const char *regkey_id, struct key_use *k)
{
	struct db_stmt *s = store_stmt(st, S_RK_GET);
	int rc;

	memset(k, 0, sizeof(*k));
	store_bind_text(s, 1, regkey_id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		store_copy_id(k->vpc_id, store_col_text(s, RC_VPC_ID));
		k->single_use = db_column_int(s, RC_SINGLE_USE);
		k->expires_at = db_column_int64(s, RC_EXPIRES_AT);
		k->used = !db_column_null(s, RC_USED_BY);
		k->relay = db_column_int(s, RC_RELAY);
		k->max_devices = db_column_int64(s, RC_MAX_DEVICES);
		k->registrations = db_column_int64(s, RC_REGISTRATIONS);
	}
	db_reset(s);
	if (rc == DB_ROW)
		return 0;
	return rc == DB_DONE ? -ENOENT : store_db_error(st, "reg-key get");
}

/* the device with this key, proven (store_device_reclaim), gets the new
 * token: the same id, address and relay flag; online again */
static int reclaim(struct store *st, const char *id, const char *vpc_id, bool online, bool relay,
		   const struct device_spec *spec, const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now)
{
	struct db_stmt *s;
	int64_t rev = 0;
	int rc;

	if (spec->relay && !relay)
		return -EPERM;
	s = store_stmt(st, S_DEV_SET_TOKEN);
	store_bind_text(s, 1, id);
	db_bind_blob(s, 2, token_hash, TOKEN_HASH_BYTES);
	db_bind_int64(s, 3, now);
	if ((rc = store_exec(st, s)) < 0)
		return rc;
	return online ? 0 : store_set_online(st, id, vpc_id, true, now, &rev);
}

/* a registration with a key; with proven, a registered public key too */
static int register_key(struct store *st, const char *regkey_id, const struct device_spec *spec,
			const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, bool proven, json_t **out)
{
	char id[UUID_STRLEN];
	struct vpc_state *v = NULL;
	bool online = true, relay = false, reclaimed = false;
	struct key_use k;
	struct db_stmt *s;
	int rc;

	*out = NULL;
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	if ((rc = key_read(st, regkey_id, &k)) < 0)
		goto err;
	if (k.expires_at && k.expires_at <= now)
		rc = -EKEYEXPIRED;
	else if ((spec->set & DEV_VPC_ID) && strcmp(spec->vpc_id, k.vpc_id))
		rc = -EXDEV;
	else if (!(v = store_vpc_load(st, k.vpc_id)))
		rc = -ENOENT;
	else if (k.single_use && k.used)
		rc = -EKEYREVOKED;
	else if (k.registrations >= k.max_devices)
		rc = -EDQUOT;
	if (rc < 0 || (rc = device_by_key(st, k.vpc_id, spec->public_key_b64, id, &online, &relay)) < 0)
		goto err;
	/* the key is public to the whole VPC: it proves nothing, and the
	 * device's token (store_device_reregister) or a key proof is what lets
	 * it in again */
	if (id[0] && !proven) {
		rc = -EEXIST;
		goto err;
	}
	if (id[0]) {
		if ((rc = reclaim(st, id, k.vpc_id, online, relay, spec, token_hash, now)) < 0)
			goto err;
		reclaimed = true;
		goto count;
	}
	/* relaying is granted (by the key or by the admin), never claimed */
	if (spec->relay && !k.relay) {
		rc = -EPERM;
		goto err;
	}
	uuid_generate(id);
	if ((rc = insert_device(st, v, id, spec, k.relay, token_hash, now)) < 0)
		goto err;
count:
	/* a reclaim is a successful registration: it counts, and spends a single-use key */
	s = store_stmt(st, S_RK_COUNT_USE);
	store_bind_text(s, 1, regkey_id);
	store_bind_text(s, 2, id);
	if ((rc = store_exec(st, s)) < 0)
		goto err;
	if (!db_changes(st->db)) {
		rc = k.single_use ? -EKEYREVOKED : -EDQUOT;
		goto err;
	}
	if ((rc = store_txn_commit(st)) < 0)
		goto err;
	if ((rc = store_device_get(st, id, out, NULL)) < 0)
		return rc;
	return reclaimed;
err:
	store_txn_rollback(st);
	return rc;
}

int store_device_register(struct store *st, const char *regkey_id, const struct device_spec *spec,
			  const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out)
{
	return register_key(st, regkey_id, spec, token_hash, now, false, out);
}

int store_device_reclaim(struct store *st, const char *regkey_id, const struct device_spec *spec,
			 const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out)
{
	return register_key(st, regkey_id, spec, token_hash, now, true, out);
}

int store_device_reregister(struct store *st, const char *id, const struct device_spec *spec,
			    const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out)
{
	char vpc_id[UUID_STRLEN];
	bool same_key = false, relay = false, online = true;
	int64_t rev = 0;
	struct db_stmt *s;
	int rc;

	*out = NULL;
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_DEV_GET);
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		store_copy_id(vpc_id, store_col_text(s, DC_VPC_ID));
		same_key = !strcmp(store_col_text(s, DC_PUBLIC_KEY), spec->public_key_b64);
		relay = db_column_int(s, DC_RELAY);
		online = db_column_int(s, DC_ONLINE);
	}
	db_reset(s);
	if (rc != DB_ROW) {
		rc = rc == DB_DONE ? -ENOENT : store_db_error(st, "device get");
		goto err;
	}
	if (!same_key)
		rc = -EACCES;
	else if ((spec->set & DEV_VPC_ID) && strcmp(spec->vpc_id, vpc_id))
		rc = -EXDEV;
	else if (spec->relay && !relay)
		rc = -EPERM;
	if (rc < 0)
		goto err;
	/* the same device, address and id; only a new token (and a new
	 * revision if it comes back online) */
	s = store_stmt(st, S_DEV_SET_TOKEN);
	store_bind_text(s, 1, id);
	db_bind_blob(s, 2, token_hash, TOKEN_HASH_BYTES);
	db_bind_int64(s, 3, now);
	if (spec->set & DEV_ENFORCES_POLICY)
		db_bind_int64(s, 4, spec->enforces_policy);
	if ((rc = store_exec(st, s)) < 0 || (!online && (rc = store_set_online(st, id, vpc_id, true, now, &rev)) < 0) ||
	    (rc = store_txn_commit(st)) < 0)
		goto err;
	return store_device_get(st, id, out, NULL);
err:
	store_txn_rollback(st);
	return rc;
}

int store_device_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], struct principal *out)
{
	struct db_stmt *s = store_stmt(st, S_DEV_BY_TOKEN);
	int rc;

	memset(out, 0, sizeof(*out));
	db_bind_blob(s, 1, hash, TOKEN_HASH_BYTES);
	rc = db_step(s);
	if (rc == DB_ROW && store_hash_matches(s, 3, hash)) {
		out->scope = TOKEN_DEVICE;
		store_copy_id(out->id, store_col_text(s, 0));
		store_copy_id(out->vpc_id, store_col_text(s, 1));
		out->last_seen = db_column_int64(s, 2);
		out->online = db_column_int(s, 4);
	}
	db_reset(s);
	if (rc != DB_ROW && rc != DB_DONE)
		return store_db_error(st, "device auth");
	return out->id[0] ? 0 : -ENOENT;
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int store_device_patch(struct store *st, const char *id, const struct device_spec *spec, int64_t now,
		       json_t **out)
{
	char vpc_id[UUID_STRLEN], group[UUID_STRLEN] = "", *hostname = NULL, *endpoints = NULL, *nat = NULL;
	bool relay = false, symmetric_nat = false, changed = false, regrouped = false;
	int64_t rev = 0;
	struct db_stmt *s;
	int rc;

	*out = NULL;
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_DEV_GET);
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		store_copy_id(vpc_id, store_col_text(s, DC_VPC_ID));
		hostname = strdup(spec->set & DEV_HOSTNAME ? spec->hostname : store_col_text(s, DC_HOSTNAME));
		endpoints = spec->set & DEV_ENDPOINTS ? json_text(spec->endpoints) : strdup(store_col_text(s, DC_ENDPOINTS));
		if (spec->set & DEV_NAT)
			nat = json_text(spec->nat);
		else if (!db_column_null(s, DC_NAT))
			nat = strdup(store_col_text(s, DC_NAT));
		relay = spec->set & DEV_RELAY ? spec->relay : db_column_int(s, DC_RELAY);
		symmetric_nat = spec->set & DEV_SYMMETRIC_NAT ? spec->symmetric_nat
							       : db_column_int(s, DC_SYMMETRIC_NAT);
		store_copy_id(group, store_col_text(s, DC_SECURITY_GROUP_ID));
		/* a relay sees every device and every device sees it */
		regrouped = relay != (bool)db_column_int(s, DC_RELAY);
		changed = strcmp(hostname ? hostname : "", store_col_text(s, DC_HOSTNAME)) ||
			  !same_text(endpoints, store_col_text(s, DC_ENDPOINTS)) ||
			  !same_text(nat, db_column_null(s, DC_NAT) ? NULL : store_col_text(s, DC_NAT)) ||
			  relay != (bool)db_column_int(s, DC_RELAY) ||
			  symmetric_nat != (bool)db_column_int(s, DC_SYMMETRIC_NAT);
	}
	db_reset(s);
	if (rc != DB_ROW) {
		rc = rc == DB_DONE ? -ENOENT : store_db_error(st, "device get");
		goto err;
	}
	if (!hostname || !endpoints || ((spec->set & DEV_NAT) && spec->nat && !nat)) {
		rc = -ENOMEM;
		goto err;
	}
	if (spec->set & DEV_SECURITY_GROUP) {
		char to[UUID_STRLEN];

		if ((rc = store_secgroup_resolve(st, vpc_id, spec->security_group, to)) < 0)
			goto err;
		regrouped |= strcmp(to, group) != 0;
		changed |= regrouped;
		store_copy_id(group, to);
	}
	if (!changed) {
		/* the same report again: nobody needs to hear of it */
		s = store_stmt(st, S_DEV_TOUCH);
		store_bind_text(s, 1, id);
		db_bind_int64(s, 2, now);
	} else {
		/* another group or relaying: a new policy for the VPC's peer lists */
		if ((rc = regrouped ? store_policy_bump(st, vpc_id, &rev) : store_bump(st, vpc_id, &rev)) < 0)
			goto err;
		s = store_stmt(st, S_DEV_UPDATE);
		store_bind_text(s, 1, id);
		store_bind_text(s, 2, hostname);
		store_bind_text(s, 3, endpoints);
		db_bind_int64(s, 4, relay);
		db_bind_int64(s, 5, symmetric_nat);
		bind_json(s, 6, nat);
		db_bind_int64(s, 7, rev);
		db_bind_int64(s, 8, now);
		store_bind_text(s, 9, group);
	}
	if ((rc = store_exec(st, s)) < 0 || (rc = store_txn_commit(st)) < 0)
		goto err;
	free(hostname);
	free(endpoints);
	free(nat);
	return store_device_get(st, id, out, NULL);
err:
	store_txn_rollback(st);
	free(hostname);
	free(endpoints);
	free(nat);
	return rc;
}

int store_device_delete(struct store *st, const char *id, int64_t now, char vpc_id[UUID_STRLEN])
{
	struct vpc_state *v;
	uint64_t index = 0;
	int64_t rev;
	struct db_stmt *s;
	int rc;

	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_DEV_GET);
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		store_copy_id(vpc_id, store_col_text(s, DC_VPC_ID));
		index = (uint64_t)db_column_int64(s, DC_IP_INDEX);
	}
	db_reset(s);
	if (rc != DB_ROW) {
		rc = rc == DB_DONE ? -ENOENT : store_db_error(st, "device get");
		goto err;
	}
	if ((rc = store_bump(st, vpc_id, &rev)) < 0)
		goto err;
	s = store_stmt(st, S_DEV_DELETE);
	store_bind_text(s, 1, id);
	if ((rc = store_exec(st, s)) < 0)
		goto err;
	/* the tombstone tells long-pollers that the device left */
	s = store_stmt(st, S_TOMB_INSERT);
	store_bind_text(s, 1, vpc_id);
	store_bind_text(s, 2, id);
	db_bind_int64(s, 3, rev);
	db_bind_int64(s, 4, now);
	if ((rc = store_exec(st, s)) < 0)
		goto err;
	if ((v = store_vpc_find(st, vpc_id)) && ipam_release(&v->ipam, index) == 0)
		store_journal(st, U_RELEASE, v, (int64_t)index);
	if ((rc = store_txn_commit(st)) < 0)
		goto err;
	return 0;
err:
	store_txn_rollback(st);
	return rc;
}

/* publishes a device's presence inside the caller's transaction: a new
 * revision, so watchers hear of it; last_seen moves forward to seen if later */
int store_set_online(struct store *st, const char *id, const char *vpc_id, bool online, int64_t seen,
		     int64_t *rev)
{
	struct db_stmt *s;
	int rc;

	if ((rc = store_bump(st, vpc_id, rev)) < 0)
		return rc;
	s = store_stmt(st, S_DEV_SET_ONLINE);
	store_bind_text(s, 1, id);
	db_bind_int64(s, 2, online);
	db_bind_int64(s, 3, *rev);
	db_bind_int64(s, 4, seen);
	return store_exec(st, s);
}

int store_device_touch(struct store *st, const struct principal *who, int64_t now)
{
	struct db_stmt *s;
	int64_t rev;
	int rc;

	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	if (who->online) {
		s = store_stmt(st, S_DEV_TOUCH);
		store_bind_text(s, 1, who->id);
		db_bind_int64(s, 2, now);
		rc = store_exec(st, s);
	} else {
		rc = store_set_online(st, who->id, who->vpc_id, true, now, &rev);
	}
	if (rc < 0 || (rc = store_txn_commit(st)) < 0) {
		store_txn_rollback(st);
		return rc;
	}
	return !who->online;
}

/* the rows of a query of DEVICE_COLS as an array */
static int device_rows(struct store *st, struct db_stmt *s, json_t **out)
{
	return store_rows_json(st, s, device_json, "device list", out);
}

int store_device_changes(struct store *st, const char *vpc_id, int64_t since, json_t **devices,
			 json_t **deleted, bool *full)
{
	const struct vpc_state *v = store_vpc_load(st, vpc_id);
	struct db_stmt *s = store_stmt(st, S_DEV_CHANGES);
	int rc;

	*devices = *deleted = NULL;
	if (!v)
		return -ENOENT;
	/* a since from the future, or from before the oldest tombstone kept,
	 * cannot be answered with changes: the client starts over */
	*full = since == 0 || since > v->revision || since < v->compacted;
	if (*full)
		since = 0;
	store_bind_text(s, 1, vpc_id);
	db_bind_int64(s, 2, since);
	if ((rc = device_rows(st, s, devices)) < 0)
		return rc;
	if (!(*deleted = json_array())) {
		rc = -ENOMEM;
		goto err;
	}
	if (since == 0)
		return 0;
	s = store_stmt(st, S_TOMB_SINCE);
	store_bind_text(s, 1, vpc_id);
	db_bind_int64(s, 2, since);
	while ((rc = db_step(s)) == DB_ROW)
		json_array_append_new(*deleted, json_string(store_col_text(s, 0)));
	db_reset(s);
	if (rc == DB_DONE)
		return 0;
	rc = store_db_error(st, "tombstones");
err:
	json_decref(*devices);
	json_decref(*deleted);
	*devices = *deleted = NULL;
	return rc;
}

int store_device_list(struct store *st, json_t **out)
{
	return device_rows(st, store_stmt(st, S_DEV_ALL), out);
}
