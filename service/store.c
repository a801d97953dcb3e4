/* store: opening and closing the store (store.h), the statement and row
 * helpers its files share, and each VPC's state in memory: its revision, its
 * tombstone horizon and its IPAM, loaded from the database at open. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "log.h"

int store_db_error(struct store *st, const char *what)
{
	log_error("store", "%s failed: %s", what, db_errmsg(st->db));
	return -EIO;
}

/* the statement, reset and unbound, ready for binds */
struct db_stmt *store_stmt(struct store *st, enum stmt_id id)
{
	struct db_stmt *s = st->stmt[id];
	db_reset(s);
	db_clear_bindings(s);
	return s;
}

/* runs a statement that returns no rows */
int store_exec(struct store *st, struct db_stmt *s)
{
	int rc = db_step(s);
	db_reset(s);
	if (rc == DB_CONSTRAINT)
		return -EEXIST;
	if (rc != DB_DONE)
		return store_db_error(st, db_sql(s));
	return 0;
}

void store_bind_text(struct db_stmt *s, int i, const char *v)
{
	db_bind_text(s, i, v);
}

const char *store_col_text(struct db_stmt *s, int i)
{
	return db_column_text(s, i);
}

void store_copy_id(char out[UUID_STRLEN], const char *s)
{
	snprintf(out, UUID_STRLEN, "%s", s);
}

json_t *store_time_or_null(int64_t t)
{
	char buf[TIME_STRLEN];
	if (!t)
		return json_null();
	time_format(t, buf);
	return json_string(buf);
}

int store_rows_json(struct store *st, struct db_stmt *s, row_json_fn row, const char *what, json_t **out)
{
	json_t *list = json_array();
	int rc;
	if (!list)
		return -ENOMEM;
	while ((rc = db_step(s)) == DB_ROW)
		json_array_append_new(list, row(s));
	db_reset(s);
	if (rc != DB_DONE) {
		json_decref(list);
		return store_db_error(st, what);
	}
	*out = list;
	return 0;
}

int store_row_json(struct store *st, struct db_stmt *s, const char *id, row_json_fn row, const char *what,
		   json_t **out)
{
	int rc;

	*out = NULL;
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW)
		*out = row(s);
	db_reset(s);
	if (rc == DB_DONE)
		return -ENOENT;
	if (rc != DB_ROW)
		return store_db_error(st, what);
	return *out ? 0 : -ENOMEM;
}

struct vpc_state *store_vpc_find(const struct store *st, const char *id)
{
	for (struct vpc_state *v = st->vpcs; v; v = v->next)
		if (!strcmp(v->id, id))
			return v;
	return NULL;
}

void store_vpc_state_free(struct vpc_state *v)
{
	ipam_fini(&v->ipam);
	free(v);
}

/* memory state of a VPC that exists in the database */
int store_vpc_state_add(struct store *st, const char *id, const char *cidr_text, int64_t revision,
			struct vpc_state **out)
{
	struct cidr cidr;
	struct vpc_state *v;
	int rc;

	if (cidr_parse(cidr_text, false, &cidr) < 0)
		return -EINVAL;
	if (!(v = calloc(1, sizeof(*v))))
		return -ENOMEM;
	store_copy_id(v->id, id);
	v->revision = revision;
	if ((rc = ipam_init(&v->ipam, &cidr)) < 0) {
		free(v);
		return rc;
	}
	v->next = st->vpcs;
	st->vpcs = v;
	*out = v;
	return 0;
}

void store_vpc_state_unlink(struct store *st, struct vpc_state *v)
{
	for (struct vpc_state **p = &st->vpcs; *p; p = &(*p)->next) {
		if (*p == v) {
			*p = v->next;
			v->next = NULL;
			return;
		}
	}
}

/* the addresses in use in the VPC, from the database, reserved in ipam */
static int load_addresses(struct store *st, const char *vpc_id, struct ipam *ipam)
{
	struct db_stmt *d = store_stmt(st, S_DEV_INDICES);
	int rc = 0, step;

	store_bind_text(d, 1, vpc_id);
	while ((step = db_step(d)) == DB_ROW) {
		uint64_t index = (uint64_t)db_column_int64(d, 0);
		if ((rc = ipam_reserve(ipam, index)) < 0) {
			log_error("store", "bad address index vpc=%s index=%llu", vpc_id, (unsigned long long)index);
			break;
		}
	}
	db_reset(d);
	if (rc == 0 && step != DB_DONE)
		rc = store_db_error(st, "loading addresses");
	return rc;
}

/* ipam_alloc; a VPC full in memory has its addresses read again, since
 * another meshsvc on the database may have freed some (deleted devices), and
 * then the next free one. Inside the caller's transaction the reading sees
 * its own writes, so the journal stays true. */
int store_ipam_alloc(struct store *st, struct vpc_state *v, uint64_t *index, union sockaddr_any *addr)
{
	struct ipam fresh;
	int rc = ipam_alloc(&v->ipam, index, addr);

	if (rc != -ENOSPC || db_engine(st->db) != DB_PG || ipam_init(&fresh, &v->ipam.cidr) < 0)
		return rc;
	if (load_addresses(st, v->id, &fresh) < 0) {
		ipam_fini(&fresh);
		return rc;
	}
	ipam_fini(&v->ipam);
	v->ipam = fresh;
	return ipam_alloc(&v->ipam, index, addr);
}

/* the VPC's memory state from its row (id, cidr, revision, compacted at
 * the columns given) and its addresses in use */
static int load_vpc(struct store *st, struct db_stmt *row, int cidr, int revision, int compacted,
		    struct vpc_state **out)
{
	struct vpc_state *v;
	int rc;

	if ((rc = store_vpc_state_add(st, store_col_text(row, 0), store_col_text(row, cidr),
				      db_column_int64(row, revision), &v)) < 0) {
		log_error("store", "cannot load vpc id=%s cidr=%s", store_col_text(row, 0), store_col_text(row, cidr));
		return rc;
	}
	v->compacted = db_column_int64(row, compacted);
	if ((rc = load_addresses(st, v->id, &v->ipam)) < 0) {
		store_vpc_state_unlink(st, v);
		store_vpc_state_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* every VPC's revision and its addresses in use, from the database */
static int load_state(struct store *st)
{
	struct db_stmt *s = store_stmt(st, S_VPC_LIST);
	struct vpc_state *v;
	int rc = 0, step;

	while ((step = db_step(s)) == DB_ROW)
		if ((rc = load_vpc(st, s, 2, 4, 5, &v)) < 0)
			break;
	if (rc == 0 && step != DB_DONE)
		rc = store_db_error(st, "loading vpcs");
	db_reset(s);
	return rc;
}

/* Another meshsvc on the same database (PostgreSQL) may have made the VPC
 * since this one loaded its state: a VPC missing from memory is looked up in
 * the database before it is called unknown. Not journaled: the state is what
 * is committed, whatever becomes of the caller's transaction. */
struct vpc_state *store_vpc_load(struct store *st, const char *id)
{
	struct vpc_state *v = store_vpc_find(st, id);
	struct db_stmt *s;

	if (v)
		return v;
	s = store_stmt(st, S_VPC_GET);
	store_bind_text(s, 1, id);
	if (db_step(s) != DB_ROW || load_vpc(st, s, 2, 4, 5, &v) < 0)
		v = NULL;
	db_reset(s);
	return v;
}

int store_open(const char *path, struct store **out)
{
	struct store *st;
	int rc;

	*out = NULL;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	vec_init(&st->undo, sizeof(struct undo), UNDO_MAX, "meshsvc store journal");
	db_target_redact(path, st->shown);
	/* the engine takes the database for this one writer (flock, advisory
	 * lock): the in-memory IPAM and revisions are only right for it */
	if ((rc = db_open(path, &st->db)) < 0)
		goto err_free;
	if ((rc = store_schema_setup(st, st->shown)) < 0)
		goto err_db;
	if ((rc = store_schema_prepare(st)) < 0 || (rc = load_state(st)) < 0)
		goto err_stmt;
	*out = st;
	return 0;

err_stmt:
	while (st->vpcs) {
		struct vpc_state *v = st->vpcs;
		st->vpcs = v->next;
		store_vpc_state_free(v);
	}
	for (int i = 0; i < S_COUNT; i++)
		db_finalize(st->stmt[i]);
err_db:
	db_close(st->db);
err_free:
	free(st);
	return rc;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	/* an open transaction is rolled back when the connection closes; memory with it */
	store_undo_to(st, 0);
	vec_free(&st->undo);
	while (st->vpcs) {
		struct vpc_state *v = st->vpcs;
		st->vpcs = v->next;
		store_vpc_state_free(v);
	}
	for (int i = 0; i < S_COUNT; i++)
		db_finalize(st->stmt[i]);
	db_close(st->db);
	free(st);
}

uint64_t store_vpc_count(const struct store *st)
{
	uint64_t n = 0;
	for (const struct vpc_state *v = st->vpcs; v; v = v->next)
		n++;
	return n;
}

uint64_t store_device_count(const struct store *st)
{
	uint64_t n = 0;
	for (const struct vpc_state *v = st->vpcs; v; v = v->next)
		n += v->ipam.used;
	return n;
}
