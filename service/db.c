/* db: the engine-neutral half of db.h: which engine a target names, its
 * redaction for logs, and the calls, each handed to its engine's db_ops. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "db_internal.h"

bool db_is_url(const char *target)
{
	return !strncmp(target, "postgres://", 11) || !strncmp(target, "postgresql://", 13);
}

/* copies [from, to) of in, bounded */
static size_t put(char *out, size_t at, const char *from, size_t n)
{
	if (at + n >= DB_TARGET_STRLEN)
		n = at < DB_TARGET_STRLEN - 1 ? DB_TARGET_STRLEN - 1 - at : 0;
	memcpy(out + at, from, n);
	return at + n;
}

void db_target_redact(const char *target, char out[DB_TARGET_STRLEN])
{
	const char *p = target, *auth = strstr(target, "://"), *end, *at, *colon;
	size_t o = 0;

	if (db_is_url(target) && auth) {
		auth += 3;
		end = auth + strcspn(auth, "/?#");
		at = memchr(auth, '@', (size_t)(end - auth));
		colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon) {
			o = put(out, o, target, (size_t)(colon + 1 - target));
			o = put(out, o, "***", 3);
			p = at;
		}
	}
	/* password=... in the query or a key=value string */
	while (*p) {
		const char *pw = strstr(p, "password=");
		if (!pw || !db_is_url(target)) {
			o = put(out, o, p, strlen(p));
			break;
		}
		o = put(out, o, p, (size_t)(pw + 9 - p));
		o = put(out, o, "***", 3);
		p = pw + 9 + strcspn(pw + 9, "&#");
	}
	out[o] = 0;
}

int db_open(const char *target, struct db **out)
{
	*out = NULL;
	return db_is_url(target) ? db_pg_open(target, out) : db_sqlite_open(target, out);
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

enum db_engine db_engine(const struct db *db) { return db->engine; }
const char *db_errmsg(struct db *db) { return db->ops->errmsg(db); }
int db_exec(struct db *db, const char *text) { return db->ops->exec(db, text); }
bool db_in_txn(struct db *db) { return db->ops->in_txn(db); }
int64_t db_changes(struct db *db) { return db->ops->changes(db); }
bool db_available(struct db *db) { return !db->ops->available || db->ops->available(db); }

int db_prepare(struct db *db, const char *text, struct db_stmt **out)
{
	*out = NULL;
	return db->ops->prepare(db, text, out);
}

void db_finalize(struct db_stmt *s)
{
	if (s)
		s->db->ops->finalize(s);
}

int db_listen(struct db *db, const char *channel)
{
	return db->ops->listen ? db->ops->listen(db, channel) : 0;
}

int db_doorbell_open(const char *target, const char *channel, struct db **out)
{
	int rc;

	*out = NULL;
	if (!db_is_url(target))
		return -ENOTSUP;
	if ((rc = db_pg_open(target, out)) < 0)
		return rc;
	if ((rc = db_listen(*out, channel)) < 0) {
		db_close(*out);
		*out = NULL;
	}
	return rc;
}

int db_doorbell_fd(struct db *db) { return db_pg_doorbell_fd(db); }
int db_doorbell_drain(struct db *db) { return db_pg_doorbell_drain(db); }

const char *db_sql(const struct db_stmt *s) { return s->sql; }
int db_param_count(const struct db_stmt *s) { return s->nparams; }
void db_reset(struct db_stmt *s) { s->db->ops->reset(s); }
void db_clear_bindings(struct db_stmt *s) { s->db->ops->clear_bindings(s); }
void db_bind_int64(struct db_stmt *s, int i, int64_t v) { s->db->ops->bind_int64(s, i, v); }
void db_bind_text(struct db_stmt *s, int i, const char *v) { s->db->ops->bind_text(s, i, v); }
void db_bind_blob(struct db_stmt *s, int i, const void *p, size_t n) { s->db->ops->bind_blob(s, i, p, n); }
void db_bind_null(struct db_stmt *s, int i) { s->db->ops->bind_null(s, i); }
enum db_result db_step(struct db_stmt *s) { return s->db->ops->step(s); }
int64_t db_column_int64(struct db_stmt *s, int col) { return s->db->ops->column_int64(s, col); }
int db_column_int(struct db_stmt *s, int col) { return (int)s->db->ops->column_int64(s, col); }
bool db_column_null(struct db_stmt *s, int col) { return s->db->ops->column_null(s, col); }

const char *db_column_text(struct db_stmt *s, int col)
{
	const char *t = s->db->ops->column_text(s, col);
	return t ? t : "";
}

const void *db_column_blob(struct db_stmt *s, int col)
{
	size_t n;
	return s->db->ops->column_blob(s, col, &n);
}

size_t db_column_bytes(struct db_stmt *s, int col)
{
	size_t n = 0;
	s->db->ops->column_blob(s, col, &n);
	return n;
}
