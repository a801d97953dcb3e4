/* db_sqlite: the SQLite engine of db.h. One file, WAL with synchronous=FULL
 * (a commit is durable when it returns), foreign keys on; the file is locked
 * (flock) so that one meshsvc at a time writes it, since the store keeps
 * state in memory that only its single writer can trust. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "db_internal.h"
#include "log.h"

struct sdb {
	struct db base;
	sqlite3 *h;
	int lock_fd;
};

struct sstmt {
	struct db_stmt base;
	sqlite3_stmt *h;
};

#define SDB(d) ((struct sdb *)(d))
#define SS(s) (((struct sstmt *)(s))->h)

static void s_close(struct db *db)
{
	sqlite3_close(SDB(db)->h);
	close(SDB(db)->lock_fd);
	free(db);
}

static const char *s_errmsg(struct db *db) { return sqlite3_errmsg(SDB(db)->h); }
static bool s_in_txn(struct db *db) { return !sqlite3_get_autocommit(SDB(db)->h); }
static int64_t s_changes(struct db *db) { return sqlite3_changes(SDB(db)->h); }

static int s_exec(struct db *db, const char *text)
{
	if (sqlite3_exec(SDB(db)->h, text, NULL, NULL, NULL) != SQLITE_OK) {
		log_error("store", "%s failed: %s", text, s_errmsg(db));
		return -EIO;
	}
	return 0;
}

static int s_prepare(struct db *db, const char *text, struct db_stmt **out)
{
	struct sstmt *s = calloc(1, sizeof(*s));

	if (!s || !(s->base.sql = strdup(text))) {
		free(s);
		return -ENOMEM;
	}
	s->base.db = db;
	if (sqlite3_prepare_v3(SDB(db)->h, text, -1, SQLITE_PREPARE_PERSISTENT, &s->h, NULL) != SQLITE_OK) {
		log_error("store", "cannot prepare %s: %s", text, s_errmsg(db));
		free(s->base.sql);
		free(s);
		return -EINVAL;
	}
	s->base.nparams = sqlite3_bind_parameter_count(s->h);
	*out = &s->base;
	return 0;
}

static void s_finalize(struct db_stmt *s)
{
	sqlite3_finalize(SS(s));
	free(s->sql);
	free(s);
}

static void s_reset(struct db_stmt *s) { sqlite3_reset(SS(s)); }
static void s_clear_bindings(struct db_stmt *s) { sqlite3_clear_bindings(SS(s)); }
static void s_bind_int64(struct db_stmt *s, int i, int64_t v) { sqlite3_bind_int64(SS(s), i, v); }
static void s_bind_text(struct db_stmt *s, int i, const char *v) { sqlite3_bind_text(SS(s), i, v, -1, SQLITE_TRANSIENT); }
static void s_bind_null(struct db_stmt *s, int i) { sqlite3_bind_null(SS(s), i); }

static void s_bind_blob(struct db_stmt *s, int i, const void *p, size_t n)
{
	sqlite3_bind_blob(SS(s), i, p, (int)n, SQLITE_TRANSIENT);
}

static enum db_result s_step(struct db_stmt *s)
{
	switch (sqlite3_step(SS(s))) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	default:
		return DB_ERROR;
	}
}

static int64_t s_column_int64(struct db_stmt *s, int col) { return sqlite3_column_int64(SS(s), col); }
static bool s_column_null(struct db_stmt *s, int col) { return sqlite3_column_type(SS(s), col) == SQLITE_NULL; }

static const char *s_column_text(struct db_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(SS(s), col);
}

static const void *s_column_blob(struct db_stmt *s, int col, size_t *n)
{
	const void *p = sqlite3_column_blob(SS(s), col);
	*n = (size_t)sqlite3_column_bytes(SS(s), col);
	return p;
}

static const struct db_ops sqlite_ops = {
	.close = s_close, .errmsg = s_errmsg, .exec = s_exec, .in_txn = s_in_txn, .changes = s_changes,
	.prepare = s_prepare, .finalize = s_finalize, .reset = s_reset, .clear_bindings = s_clear_bindings,
	.bind_int64 = s_bind_int64, .bind_text = s_bind_text, .bind_blob = s_bind_blob, .bind_null = s_bind_null,
	.step = s_step, .column_int64 = s_column_int64, .column_text = s_column_text,
	.column_null = s_column_null, .column_blob = s_column_blob,
};

int db_sqlite_open(const char *path, struct db **out)
{
	struct sdb *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->base.ops = &sqlite_ops;
	d->base.engine = DB_SQLITE;
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		rc = -errno;
		log_error("store", "cannot open database path=%s: %s", path, strerror(errno));
		goto err_free;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_error("store", "database is in use by another meshsvc path=%s", path);
		goto err_lock;
	}
	if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		log_error("store", "cannot open database path=%s: %s", path, sqlite3_errmsg(d->h));
		rc = -EIO;
		goto err_db;
	}
	sqlite3_extended_result_codes(d->h, 0);
	if ((rc = s_exec(&d->base, "PRAGMA journal_mode=WAL")) < 0 ||
	    (rc = s_exec(&d->base, "PRAGMA synchronous=FULL")) < 0 ||
	    (rc = s_exec(&d->base, "PRAGMA foreign_keys=ON")) < 0 ||
	    (rc = s_exec(&d->base, "PRAGMA busy_timeout=5000")) < 0)
		goto err_db;
	*out = &d->base;
	return 0;

err_db:
	sqlite3_close(d->h);
err_lock:
	close(d->lock_fd);
err_free:
	free(d);
	return rc;
}
