/* db: the store's one door to SQL, with two engines behind it: SQLite (a file
 * path, embedded, the default) and PostgreSQL through libpq (a postgres:// or
 * postgresql:// URL). The store (store*.c) is written once against this
 * prepare/bind/step/column interface; what differs between the engines lives
 * here and in store_schema.c's DDL. Statement text is written in SQLite's
 * numbered placeholders (?1, ?2; a bare ? is refused) and portable SQL; the
 * PostgreSQL engine rewrites ?N to $N and prepares each statement once per
 * connection under its own name (PQprepare). Parameters are sent as text, or
 * binary for blobs (bytea), with their types inferred by the server; results
 * come back as text. Not thread-safe: one thread owns a db. */
#ifndef NATMESH_SVC_DB_H
#define NATMESH_SVC_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_engine { DB_SQLITE, DB_PG };

/* what db_step found */
enum db_result {
	DB_ERROR,	/* db_errmsg says why */
	DB_ROW,		/* a row: read it with db_column_* */
	DB_DONE,	/* no (more) rows; a write is done */
	DB_CONSTRAINT,	/* a unique, foreign key or check constraint refused the write */
};

/* the most parameters a statement takes, and the largest blob a column returns */
#define DB_PARAMS_MAX 32
#define DB_BLOB_MAX 64
/* a URL with its password hidden, for logs */
#define DB_TARGET_STRLEN 512

struct db;
struct db_stmt;

/* whether target names a PostgreSQL database rather than an SQLite file */
bool db_is_url(const char *target);
/* target without its password (user:***@, password=***), for logs */
void db_target_redact(const char *target, char out[DB_TARGET_STRLEN]);

/* Opens target: a PostgreSQL URL, or an SQLite file (created if missing; WAL,
 * synchronous=FULL, foreign keys). -EIO with the reason logged (the target
 * without its password). */
int db_open(const char *target, struct db **out);
void db_close(struct db *db);
enum db_engine db_engine(const struct db *db);
/* the last error of the connection (or of its last statement) */
const char *db_errmsg(struct db *db);
/* runs fixed SQL text without parameters, possibly several statements */
int db_exec(struct db *db, const char *text);
/* whether a transaction is open (or, in PostgreSQL, failed and not yet ended) */
bool db_in_txn(struct db *db);
/* rows changed by the last write */
int64_t db_changes(struct db *db);
/* Whether the database answers now (SQLite: always). PostgreSQL: outside a
 * transaction a SELECT 1 on the connection, and a lost connection is
 * reconnected (at most once a second); inside one, whether it still holds.
 * For meshsvc's 503s and /healthz. */
bool db_available(struct db *db);

/* PostgreSQL's LISTEN to channel, again on every new connection (SQLite:
 * nothing; it has one writer) */
int db_listen(struct db *db, const char *channel);

/* A doorbell: a connection of its own that only LISTENs to channel, for a
 * thread that waits on its descriptor (poll) and then lets the store's owner
 * act on them. -ENOTSUP for SQLite. db_doorbell_fd is -1
 * while the connection is lost; db_doorbell_drain reads what arrived and
 * returns how many notices, reconnecting (at most once a second) if it was
 * lost. Close it with db_close. */
int db_doorbell_open(const char *target, const char *channel, struct db **out);
int db_doorbell_fd(struct db *db);
int db_doorbell_drain(struct db *db);

/* -EINVAL for text the engine refuses (logged), -ENOMEM */
int db_prepare(struct db *db, const char *text, struct db_stmt **out);
void db_finalize(struct db_stmt *s);
const char *db_sql(const struct db_stmt *s);
int db_param_count(const struct db_stmt *s);
/* back to before its first step; bindings stay */
void db_reset(struct db_stmt *s);
void db_clear_bindings(struct db_stmt *s);

/* i counts from 1, as ?i; values are copied */
void db_bind_int64(struct db_stmt *s, int i, int64_t v);
void db_bind_text(struct db_stmt *s, int i, const char *v);
void db_bind_blob(struct db_stmt *s, int i, const void *p, size_t n);
void db_bind_null(struct db_stmt *s, int i);

enum db_result db_step(struct db_stmt *s);

/* columns of the current row, from 0; NULL reads as 0, "" or no bytes */
int64_t db_column_int64(struct db_stmt *s, int col);
int db_column_int(struct db_stmt *s, int col);
const char *db_column_text(struct db_stmt *s, int col);
bool db_column_null(struct db_stmt *s, int col);
const void *db_column_blob(struct db_stmt *s, int col);
size_t db_column_bytes(struct db_stmt *s, int col);

/* db_pg.c, exported for its unit test: text with ?N rewritten to $N into out
 * (size outsize), and the highest N; -EINVAL for a bare ?, -ENOSPC */
int db_pg_placeholders(const char *text, char *out, size_t outsize, int *nparams);

#endif
