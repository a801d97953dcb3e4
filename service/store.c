/* store: opening and closing the store (store.h), the statement and row
 * helpers its files share, and each VPC's state in memory: its revision, its
 * tombstone horizon and its IPAM, loaded from the database at open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store_internal.h"
#include "log.h"

int store_db_error(struct store *st, const char *what)
{
	log_error("store", "%s failed: %s", what, sqlite3_errmsg(st->db));
	return -EIO;
}

/* the statement, reset and unbound, ready for binds */
sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* runs a statement that returns no rows */
int store_exec(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc != SQLITE_DONE)
		return store_db_error(st, sqlite3_sql(s));
	return 0;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

const char *store_col_text(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t ? t : "";
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

int store_rows_json(struct store *st, sqlite3_stmt *s, row_json_fn row, const char *what, json_t **out)
{
	json_t *list = json_array();
	int rc;
	if (!list)
		return -ENOMEM;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(list, row(s));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return store_db_error(st, what);
	}
	*out = list;
	return 0;
}

int store_row_json(struct store *st, sqlite3_stmt *s, const char *id, row_json_fn row, const char *what,
		   json_t **out)
{
	int rc;

	*out = NULL;
	store_bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = row(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
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

/* every VPC's revision and its addresses in use, from the database */
static int load_state(struct store *st)
{
	sqlite3_stmt *s = store_stmt(st, S_VPC_LIST), *d;
	struct vpc_state *v;
	int rc = 0, step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = store_vpc_state_add(st, store_col_text(s, 0), store_col_text(s, 2), sqlite3_column_int64(s, 4), &v)) < 0) {
			log_error("store", "cannot load vpc id=%s cidr=%s", store_col_text(s, 0), store_col_text(s, 2));
			break;
		}
		v->compacted = sqlite3_column_int64(s, 5);
		d = store_stmt(st, S_DEV_INDICES);
		store_bind_text(d, 1, v->id);
		while ((step = sqlite3_step(d)) == SQLITE_ROW) {
			uint64_t index = (uint64_t)sqlite3_column_int64(d, 0);
			if ((rc = ipam_reserve(&v->ipam, index)) < 0) {
				log_error("store", "bad address index vpc=%s index=%llu", v->id,
					  (unsigned long long)index);
				break;
			}
		}
		sqlite3_reset(d);
		if (rc < 0 || step != SQLITE_DONE) {
			rc = rc < 0 ? rc : store_db_error(st, "loading addresses");
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_db_error(st, "loading vpcs");
	sqlite3_reset(s);
	return rc;
}

int store_open(const char *path, struct store **out)
{
	struct store *st;
	int rc;

	*out = NULL;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
	vec_init(&st->undo, sizeof(struct undo), UNDO_MAX, "meshsvc store journal");
	/* the in-memory IPAM and revisions are only right for the single writer */
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0) {
		rc = -errno;
		log_error("store", "cannot open database path=%s: %s", path, strerror(errno));
		goto err_free;
	}
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_error("store", "database is in use by another meshsvc path=%s", path);
		goto err_lock;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = store_db_error(st, "open");
		goto err_db;
	}
	sqlite3_extended_result_codes(st->db, 0);
	if ((rc = store_pragma(st, "PRAGMA journal_mode=WAL")) < 0 ||
	    (rc = store_pragma(st, "PRAGMA synchronous=FULL")) < 0 ||
	    (rc = store_pragma(st, "PRAGMA foreign_keys=ON")) < 0 ||
	    (rc = store_pragma(st, "PRAGMA busy_timeout=5000")) < 0 ||
	    (rc = store_schema_setup(st, path)) < 0)
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
		sqlite3_finalize(st->stmt[i]);
err_db:
	sqlite3_close(st->db);
err_lock:
	close(st->lock_fd);
err_free:
	free(st);
	return rc;
}

void store_free(struct store *st)
{
	if (!st)
		return;
	/* an open transaction is rolled back by sqlite3_close; memory with it */
	store_undo_to(st, 0);
	vec_free(&st->undo);
	while (st->vpcs) {
		struct vpc_state *v = st->vpcs;
		st->vpcs = v->next;
		store_vpc_state_free(v);
	}
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	close(st->lock_fd);
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
