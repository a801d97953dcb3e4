/* store_regkey: registration keys, stored by the hash of their secret, and
 * the authentication of a registration key's token. */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "store_internal.h"

static json_t *regkey_json(struct db_stmt *s)
{
	bool single = db_column_int(s, RC_SINGLE_USE);
	return json_pack("{s:s, s:s, s:b, s:o, s:s, s:b, s:b, s:I, s:I}", "id", store_col_text(s, RC_ID), "vpc_id",
			 store_col_text(s, RC_VPC_ID), "single_use", single, "expires_at",
			 store_time_or_null(db_column_int64(s, RC_EXPIRES_AT)), "description",
			 store_col_text(s, RC_DESCRIPTION), "used",
			 single && !db_column_null(s, RC_USED_BY), "relay",
			 db_column_int(s, RC_RELAY), "max_devices",
			 (json_int_t)db_column_int64(s, RC_MAX_DEVICES), "registrations",
			 (json_int_t)db_column_int64(s, RC_REGISTRATIONS));
}

int store_regkey_get(struct store *st, const char *id, json_t **out)
{
	return store_row_json(st, store_stmt(st, S_RK_GET), id, regkey_json, "reg-key get", out);
}

int store_regkey_create(struct store *st, const struct regkey_spec *spec,
			const uint8_t hash[TOKEN_HASH_BYTES], int64_t now, json_t **out)
{
	char id[UUID_STRLEN];
	struct db_stmt *s;
	int rc;

	if (!store_vpc_load(st, spec->vpc_id))
		return -ENOENT;
	uuid_generate(id);
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_RK_INSERT);
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, spec->vpc_id);
	db_bind_blob(s, 3, hash, TOKEN_HASH_BYTES);
	db_bind_int64(s, 4, spec->single_use);
	if (spec->expires_at)
		db_bind_int64(s, 5, spec->expires_at);
	store_bind_text(s, 6, spec->description);
	db_bind_int64(s, 7, now);
	db_bind_int64(s, 8, spec->relay);
	db_bind_int64(s, 9, spec->max_devices);
	if ((rc = store_exec(st, s)) < 0 || (rc = store_txn_commit(st)) < 0) {
		store_txn_rollback(st);
		return rc;
	}
	return store_regkey_get(st, id, out);
}

int store_regkey_list(struct store *st, json_t **out)
{
	return store_rows_json(st, store_stmt(st, S_RK_LIST), regkey_json, "reg-key list", out);
}

int store_regkey_delete(struct store *st, const char *id)
{
	struct db_stmt *s;
	int rc;

	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_RK_DELETE);
	store_bind_text(s, 1, id);
	if ((rc = store_exec(st, s)) == 0 && !db_changes(st->db))
		rc = -ENOENT;
	if (rc < 0 || (rc = store_txn_commit(st)) < 0) {
		store_txn_rollback(st);
		return rc;
	}
	return 0;
}

/* Tokens are found by their hash: whatever the index lookup's timing reveals is
 * about hashes of 256-bit secrets, not the secrets. The final decision is a
 * constant-time comparison all the same. */
bool store_hash_matches(struct db_stmt *s, int col, const uint8_t hash[TOKEN_HASH_BYTES])
{
	return db_column_bytes(s, col) == TOKEN_HASH_BYTES &&
	       sodium_memcmp(db_column_blob(s, col), hash, TOKEN_HASH_BYTES) == 0;
}

int store_regkey_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], int64_t now,
		      struct principal *out)
{
	struct db_stmt *s = store_stmt(st, S_RK_BY_HASH);
	int64_t expires_at = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	db_bind_blob(s, 1, hash, TOKEN_HASH_BYTES);
	rc = db_step(s);
	if (rc == DB_ROW && store_hash_matches(s, 3, hash)) {
		out->scope = TOKEN_REGKEY;
		store_copy_id(out->id, store_col_text(s, 0));
		store_copy_id(out->vpc_id, store_col_text(s, 1));
		expires_at = db_column_int64(s, 2);
	}
	db_reset(s);
	if (rc != DB_ROW && rc != DB_DONE)
		return store_db_error(st, "reg-key auth");
	if (!out->id[0])
		return -ENOENT;
	return expires_at && expires_at <= now ? -EKEYEXPIRED : 0;
}
