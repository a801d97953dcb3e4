/* store_vpc: VPCs in the database and in memory, and their revisions, which
 * every device change raises. */
#include <errno.h>

#include "store_internal.h"

static json_t *vpc_json(struct db_stmt *s)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", store_col_text(s, 0), "name", store_col_text(s, 1),
			 "ipv4_cidr", store_col_text(s, 2), "created_at", store_time_or_null(db_column_int64(s, 3)));
}

int store_vpc_get(struct store *st, const char *id, json_t **out)
{
	return store_row_json(st, store_stmt(st, S_VPC_GET), id, vpc_json, "vpc get", out);
}

int store_vpc_create(struct store *st, const struct vpc_spec *spec, int64_t now, json_t **out)
{
	char id[UUID_STRLEN], cidr[CIDR_STRLEN];
	struct vpc_state *v;
	struct db_stmt *s;
	int rc;

	uuid_generate(id);
	cidr_format(&spec->cidr, cidr, sizeof(cidr));
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_VPC_NAME_TAKEN);
	store_bind_text(s, 1, spec->name);
	rc = db_step(s);
	db_reset(s);
	if (rc != DB_DONE) {
		rc = rc == DB_ROW ? -EEXIST : store_db_error(st, "vpc name");
		goto err;
	}
	s = store_stmt(st, S_VPC_INSERT);
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, spec->name);
	store_bind_text(s, 3, cidr);
	db_bind_int64(s, 4, now);
	if ((rc = store_exec(st, s)) < 0 || (rc = store_secgroup_insert_default(st, id, now)) < 0 ||
	    (rc = store_vpc_state_add(st, id, cidr, 0, &v)) < 0)
		goto err;
	store_journal(st, U_VPC_ADD, v, 0);
	if ((rc = store_txn_commit(st)) < 0)
		goto err;
	return store_vpc_get(st, id, out);
err:
	store_txn_rollback(st);
	return rc;
}

int store_vpc_list(struct store *st, json_t **out)
{
	return store_rows_json(st, store_stmt(st, S_VPC_LIST), vpc_json, "vpc list", out);
}

int store_vpc_delete(struct store *st, const char *id)
{
	struct vpc_state *v = store_vpc_load(st, id);
	struct db_stmt *s;
	int rc;

	if (!v)
		return -ENOENT;
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	s = store_stmt(st, S_VPC_DEVICES);
	store_bind_text(s, 1, id);
	rc = db_step(s);
	db_reset(s);
	if (rc != DB_DONE) {
		rc = rc == DB_ROW ? -ENOTEMPTY : store_db_error(st, "vpc devices");
		goto err;
	}
	s = store_stmt(st, S_VPC_DELETE);
	store_bind_text(s, 1, id);
	if ((rc = store_exec(st, s)) < 0)
		goto err;
	store_vpc_state_unlink(st, v);
	store_journal(st, U_VPC_REMOVE, v, 0);
	if ((rc = store_txn_commit(st)) < 0)
		goto err;
	return 0;
err:
	store_txn_rollback(st);
	return rc;
}

int store_vpc_revision(struct store *st, const char *id, int64_t *out)
{
	const struct vpc_state *v = store_vpc_load(st, id);
	if (!v)
		return -ENOENT;
	*out = v->revision;
	return 0;
}

static void set_revision(struct store *st, struct vpc_state *v, int64_t revision)
{
	store_journal(st, U_REVISION, v, v->revision);
	v->revision = revision;
}

/* the VPC's next revision, inside the caller's transaction, in the database
 * and in memory */
int store_bump(struct store *st, const char *vpc_id, int64_t *rev)
{
	struct db_stmt *s = store_stmt(st, S_VPC_BUMP);
	struct vpc_state *v;
	int rc;
	store_bind_text(s, 1, vpc_id);
	rc = db_step(s);
	if (rc == DB_ROW)
		*rev = db_column_int64(s, 0);
	db_reset(s);
	if (rc != DB_ROW)
		return rc == DB_DONE ? -ENOENT : store_db_error(st, "revision");
	if ((v = store_vpc_find(st, vpc_id)))
		set_revision(st, v, *rev);
	return 0;
}
