/* db_internal: what db.c dispatches to; each engine (db_sqlite.c, db_pg.c)
 * fills a db_ops and embeds struct db and struct db_stmt first in its own. */
#ifndef NATMESH_SVC_DB_INTERNAL_H
#define NATMESH_SVC_DB_INTERNAL_H

#include "db.h"

struct db_ops {
	void (*close)(struct db *db);
	const char *(*errmsg)(struct db *db);
	int (*exec)(struct db *db, const char *text);
	bool (*in_txn)(struct db *db);
	int64_t (*changes)(struct db *db);
	bool (*available)(struct db *db);	/* NULL: always */
	int (*prepare)(struct db *db, const char *text, struct db_stmt **out);
	void (*finalize)(struct db_stmt *s);
	void (*reset)(struct db_stmt *s);
	void (*clear_bindings)(struct db_stmt *s);
	void (*bind_int64)(struct db_stmt *s, int i, int64_t v);
	void (*bind_text)(struct db_stmt *s, int i, const char *v);
	void (*bind_blob)(struct db_stmt *s, int i, const void *p, size_t n);
	void (*bind_null)(struct db_stmt *s, int i);
	enum db_result (*step)(struct db_stmt *s);
	int64_t (*column_int64)(struct db_stmt *s, int col);
	const char *(*column_text)(struct db_stmt *s, int col);
	bool (*column_null)(struct db_stmt *s, int col);
	const void *(*column_blob)(struct db_stmt *s, int col, size_t *n);
	int (*listen)(struct db *db, const char *channel);	/* NULL: no notices */
};

struct db {
	const struct db_ops *ops;
	enum db_engine engine;
};

struct db_stmt {
	struct db *db;
	char *sql;	/* as written (?N) */
	int nparams;
};

int db_sqlite_open(const char *path, struct db **out);
int db_pg_open(const char *url, struct db **out);
int db_pg_doorbell_fd(struct db *db);
int db_pg_doorbell_drain(struct db *db);

#endif
