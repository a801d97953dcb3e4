/* db_pg: the PostgreSQL engine of db.h, over libpq. Every statement is
 * prepared once per connection under its own name (s1, s2, ...) and run with
 * PQexecPrepared; parameters go as text (blobs binary, as bytea) with types
 * the server infers from the statement, results come back as text. A
 * constraint violation is SQLSTATE class 23. Unlike an SQLite file, a
 * PostgreSQL database takes several meshsvc at once (replicas): the store
 * re-checks in SQL what its memory may have missed (store.h). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "log.h"

/* seconds to wait for the server at open, unless the URL says connect_timeout */
#define DB_PG_CONNECT_TIMEOUT "10"
#define DB_ERR_MAX 512
/* the least time between two attempts to reconnect */
#define DB_PG_RETRY_MS 1000

/* the connection's state, as the store sees it */
enum pg_link {
	LINK_UP,
	LINK_LOST,		/* lost outside a transaction: the next statement reconnects */
	LINK_LOST_IN_TXN,	/* lost inside one: statements fail until the store's ROLLBACK */
};

struct pdb {
	struct db base;
	PGconn *c;
	char err[DB_ERR_MAX];
	char shown[DB_TARGET_STRLEN];	/* the URL without its password */
	int64_t changes;
	unsigned next_name;
	enum pg_link link;
	int64_t last_try_ms;		/* the last reconnection attempt */
	struct pstmt *stmts;		/* prepared again on a new connection */
	char channel[64];		/* LISTENed to, again on a new connection */
};

struct pstmt {
	struct db_stmt base;
	struct pstmt *next, **prev;
	char *pgtext;			/* with $N */
	char name[16];
	char *values[DB_PARAMS_MAX];
	int lengths[DB_PARAMS_MAX], formats[DB_PARAMS_MAX];
	PGresult *res;
	bool executed;
	int row, nrows;
	uint8_t blob[DB_BLOB_MAX];
};

#define PDB(d) ((struct pdb *)(d))
#define PS(s) ((struct pstmt *)(s))

int db_pg_placeholders(const char *text, char *out, size_t outsize, int *nparams)
{
	bool quoted = false;
	size_t o = 0;

	*nparams = 0;
	for (const char *p = text; *p; p++) {
		char c = *p;
		if (c == '\'')
			quoted = !quoted;
		if (c == '?' && !quoted) {
			char *end;
			long n = strtol(p + 1, &end, 10);
			if (end == p + 1 || n < 1 || n > DB_PARAMS_MAX)
				return -EINVAL;
			if (n > *nparams)
				*nparams = (int)n;
			c = '$';
		}
		if (o + 1 >= outsize)
			return -ENOSPC;
		out[o++] = c;
	}
	out[o] = 0;
	return 0;
}

/* keeps the message of a failed result (or of the connection) for db_errmsg */
static void keep_error(struct pdb *d, const PGresult *r)
{
	const char *m = r ? PQresultErrorMessage(r) : "";
	if (!*m)
		m = PQerrorMessage(d->c);
	snprintf(d->err, sizeof(d->err), "%.*s", (int)strcspn(m, "\n"), m);
}

static void p_close(struct db *db)
{
	PQfinish(PDB(db)->c);
	free(db);
}

static const char *p_errmsg(struct db *db) { return PDB(db)->err; }
static int64_t p_changes(struct db *db) { return PDB(db)->changes; }

static bool p_in_txn(struct db *db)
{
	if (PDB(db)->link != LINK_UP)
		return PDB(db)->link == LINK_LOST_IN_TXN;
	return PQtransactionStatus(PDB(db)->c) != PQTRANS_IDLE;
}

static int p_exec(struct db *db, const char *text)
{
	PGresult *r = PQexec(PDB(db)->c, text);
	ExecStatusType st = PQresultStatus(r);
	int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;

	if (rc < 0) {
		keep_error(PDB(db), r);
		log_error("store", "%.80s failed: %s", text, PDB(db)->err);
	}
	PQclear(r);
	return rc;
}

static void p_clear_bindings(struct db_stmt *s)
{
	for (int i = 0; i < DB_PARAMS_MAX; i++) {
		free(PS(s)->values[i]);
		PS(s)->values[i] = NULL;
		PS(s)->lengths[i] = PS(s)->formats[i] = 0;
	}
}

static void p_reset(struct db_stmt *s)
{
	PQclear(PS(s)->res);
	PS(s)->res = NULL;
	PS(s)->executed = false;
}

static void p_finalize(struct db_stmt *s)
{
	char text[32];
	struct pdb *d = PDB(s->db);

	p_reset(s);
	p_clear_bindings(s);
	snprintf(text, sizeof(text), "DEALLOCATE %s", PS(s)->name);
	if (PQstatus(d->c) == CONNECTION_OK)
		PQclear(PQexec(d->c, text));
	if ((*PS(s)->prev = PS(s)->next))
		PS(s)->next->prev = PS(s)->prev;
	free(PS(s)->pgtext);
	free(s->sql);
	free(s);
}

/* PQprepare of the statement on the current connection */
static int prepare_one(struct pdb *d, struct pstmt *s)
{
	PGresult *r = PQprepare(d->c, s->name, s->pgtext, s->base.nparams, NULL);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		keep_error(d, r);
		rc = -EINVAL;
	}
	PQclear(r);
	return rc;
}

static int p_prepare(struct db *db, const char *text, struct db_stmt **out)
{
	struct pdb *d = PDB(db);
	size_t n = strlen(text) + 1;
	struct pstmt *s = calloc(1, sizeof(*s));
	char *pg = malloc(n);
	int rc = -ENOMEM;

	if (!s || !pg || !(s->base.sql = strdup(text)))
		goto err;
	if ((rc = db_pg_placeholders(text, pg, n, &s->base.nparams)) < 0) {
		log_error("store", "bad placeholders (?1..?%d only) in %s", DB_PARAMS_MAX, text);
		goto err;
	}
	s->base.db = db;
	s->pgtext = pg;
	snprintf(s->name, sizeof(s->name), "s%u", ++d->next_name);
	if ((rc = prepare_one(d, s)) < 0) {
		log_error("store", "cannot prepare %s: %s", text, d->err);
		goto err;
	}
	if ((s->next = d->stmts))
		s->next->prev = &s->next;
	s->prev = &d->stmts;
	d->stmts = s;
	*out = &s->base;
	return 0;
err:
	free(pg);
	if (s)
		free(s->base.sql);
	free(s);
	return rc;
}

/* a copy of n bytes as parameter i, format 0 (text) or 1 (binary) */
static void bind(struct db_stmt *s, int i, const void *p, size_t n, int format)
{
	struct pstmt *ps = PS(s);
	char *v = NULL;

	if (i < 1 || i > DB_PARAMS_MAX)
		return;
	if (p && (v = malloc(n + 1))) {
		memcpy(v, p, n);
		v[n] = 0;
	}
	free(ps->values[i - 1]);
	ps->values[i - 1] = v;
	ps->lengths[i - 1] = (int)n;
	ps->formats[i - 1] = format;
}

static void p_bind_int64(struct db_stmt *s, int i, int64_t v)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%lld", (long long)v);
	bind(s, i, t, (size_t)n, 0);
}

static void p_bind_text(struct db_stmt *s, int i, const char *v) { bind(s, i, v, v ? strlen(v) : 0, 0); }
static void p_bind_blob(struct db_stmt *s, int i, const void *p, size_t n) { bind(s, i, p, n, 1); }
static void p_bind_null(struct db_stmt *s, int i) { bind(s, i, NULL, 0, 0); }

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lost(struct pdb *d, bool in_txn)
{
	if (d->link == LINK_UP)
		log_error("store", "lost the connection to PostgreSQL url=%s: %s", d->shown, d->err);
	d->link = in_txn ? LINK_LOST_IN_TXN : LINK_LOST;
}

static int reconnect(struct pdb *d);

static bool p_available(struct db *db)
{
	struct pdb *d = PDB(db);
	PGresult *r;
	bool ok;

	if (d->link == LINK_LOST_IN_TXN)
		return false;
	if (d->link == LINK_LOST)
		return reconnect(d) == 0;
	if (PQtransactionStatus(d->c) != PQTRANS_IDLE)
		return PQstatus(d->c) == CONNECTION_OK;
	r = PQexec(d->c, "SELECT 1");
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok) {
		keep_error(d, r);
		lost(d, false);
	}
	PQclear(r);
	return ok;
}

static int listen_again(struct pdb *d)
{
	char text[96];
	snprintf(text, sizeof(text), "LISTEN %s", d->channel);
	return p_exec(&d->base, text);
}

static int p_listen(struct db *db, const char *channel)
{
	snprintf(PDB(db)->channel, sizeof(PDB(db)->channel), "%s", channel);
	return listen_again(PDB(db));
}

int db_pg_doorbell_fd(struct db *db)
{
	struct pdb *d = PDB(db);
	return d->link == LINK_UP && PQstatus(d->c) == CONNECTION_OK ? PQsocket(d->c) : -1;
}

int db_pg_doorbell_drain(struct db *db)
{
	struct pdb *d = PDB(db);
	PGnotify *n;
	int count = 0;

	if (d->link != LINK_UP && reconnect(d) < 0)
		return -EIO;
	if (!PQconsumeInput(d->c) || PQstatus(d->c) != CONNECTION_OK) {
		keep_error(d, NULL);
		lost(d, false);
		return -EIO;
	}
	while ((n = PQnotifies(d->c))) {
		count++;
		PQfreemem(n);
	}
	return count;
}

/* A new connection, with every statement prepared again; at most one
 * attempt a second, so a database that is down costs each request one
 * quick error, not a connection timeout. */
static int reconnect(struct pdb *d)
{
	int64_t now = now_ms();

	if (now - d->last_try_ms < DB_PG_RETRY_MS) {
		snprintf(d->err, sizeof(d->err), "no connection to PostgreSQL (retrying)");
		return -EIO;
	}
	d->last_try_ms = now;
	PQreset(d->c);
	if (PQstatus(d->c) != CONNECTION_OK) {
		keep_error(d, NULL);
		return -EIO;
	}
	for (struct pstmt *s = d->stmts; s; s = s->next) {
		if (prepare_one(d, s) < 0) {
			log_error("store", "cannot prepare %s again: %s", s->base.sql, d->err);
			return -EIO;
		}
	}
	if (d->channel[0] && listen_again(d) < 0)
		return -EIO;
	d->link = LINK_UP;
	log_info("store", "reconnected to PostgreSQL url=%s", d->shown);
	return 0;
}

/* Before a statement on a lost connection. A transaction open when it was
 * lost is gone: its statements fail until the store rolls it back, and that
 * ROLLBACK is done at once (nothing of it was committed, or the commit's
 * answer was lost: then the store's memory, undone, is behind the database,
 * which its replica rules settle); the statement after it reconnects.
 * DB_ROW: run the statement. */
static enum db_result recover(struct pdb *d, struct db_stmt *s)
{
	bool rollback = !strcmp(s->sql, "ROLLBACK");

	if (d->link == LINK_UP)
		lost(d, PQtransactionStatus(d->c) == PQTRANS_INTRANS || PQtransactionStatus(d->c) == PQTRANS_INERROR);
	if (rollback) {
		/* the transaction died with the connection: rolled back */
		d->link = LINK_LOST;
		return DB_DONE;
	}
	if (d->link == LINK_LOST_IN_TXN) {
		snprintf(d->err, sizeof(d->err), "the connection to PostgreSQL was lost inside the transaction");
		return DB_ERROR;
	}
	return reconnect(d) < 0 ? DB_ERROR : DB_ROW;
}

static enum db_result p_step(struct db_stmt *s)
{
	struct pstmt *ps = PS(s);
	struct pdb *d = PDB(s->db);
	const char *state, *tuples;
	ExecStatusType st;

	if (!ps->executed) {
		bool in_txn = PQtransactionStatus(d->c) != PQTRANS_IDLE;

		ps->executed = true;
		ps->row = -1;
		ps->nrows = 0;
		if (d->link != LINK_UP || PQstatus(d->c) != CONNECTION_OK) {
			enum db_result r = recover(d, s);
			if (r != DB_ROW)
				return r;
			in_txn = false;
		}
		ps->res = PQexecPrepared(d->c, ps->name, s->nparams, (const char *const *)ps->values, ps->lengths,
					 ps->formats, 0);
		st = PQresultStatus(ps->res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			keep_error(d, ps->res);
			if (PQstatus(d->c) != CONNECTION_OK)
				lost(d, in_txn && strcmp(s->sql, "BEGIN"));
			state = PQresultErrorField(ps->res, PG_DIAG_SQLSTATE);
			PQclear(ps->res);
			ps->res = NULL;
			return state && !strncmp(state, "23", 2) ? DB_CONSTRAINT : DB_ERROR;
		}
		ps->nrows = PQntuples(ps->res);
		tuples = PQcmdTuples(ps->res);
		d->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
	}
	if (ps->row + 1 < ps->nrows) {
		ps->row++;
		return DB_ROW;
	}
	ps->row = ps->nrows;
	return DB_DONE;
}

static bool p_column_null(struct db_stmt *s, int col)
{
	struct pstmt *ps = PS(s);
	return !ps->res || ps->row < 0 || ps->row >= ps->nrows || col >= PQnfields(ps->res) ||
	       PQgetisnull(ps->res, ps->row, col);
}

static const char *p_column_text(struct db_stmt *s, int col)
{
	return p_column_null(s, col) ? NULL : PQgetvalue(PS(s)->res, PS(s)->row, col);
}

static int64_t p_column_int64(struct db_stmt *s, int col)
{
	const char *t = p_column_text(s, col);
	/* a boolean (a comparison's result) reads as 1 or 0, as in SQLite */
	if (t && (t[0] == 't' || t[0] == 'f') && !t[1])
		return t[0] == 't';
	return t ? strtoll(t, NULL, 10) : 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* bytea's text form, \x and hex digits; longer than DB_BLOB_MAX reads as none */
static const void *p_column_blob(struct db_stmt *s, int col, size_t *n)
{
	const char *t = p_column_text(s, col);
	size_t len;

	*n = 0;
	if (!t || strncmp(t, "\\x", 2) || (len = strlen(t + 2)) % 2 || len / 2 > DB_BLOB_MAX)
		return NULL;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
		if (hi < 0 || lo < 0)
			return NULL;
		PS(s)->blob[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return PS(s)->blob;
}

static const struct db_ops pg_ops = {
	.close = p_close, .errmsg = p_errmsg, .exec = p_exec, .in_txn = p_in_txn, .changes = p_changes,
	.prepare = p_prepare, .finalize = p_finalize, .reset = p_reset, .clear_bindings = p_clear_bindings,
	.bind_int64 = p_bind_int64, .bind_text = p_bind_text, .bind_blob = p_bind_blob, .bind_null = p_bind_null,
	.step = p_step, .column_int64 = p_column_int64, .column_text = p_column_text,
	.column_null = p_column_null, .column_blob = p_column_blob, .listen = p_listen,
	.available = p_available,
};

/* NOTICEs ("relation already exists, skipping") are not news */
static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int db_pg_open(const char *url, struct db **out)
{
	static const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *values[] = { DB_PG_CONNECT_TIMEOUT, "meshsvc", url, NULL };
	struct pdb *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->base.ops = &pg_ops;
	d->base.engine = DB_PG;
	db_target_redact(url, d->shown);
	d->c = PQconnectdbParams(keys, values, 1);
	if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
		keep_error(d, NULL);
		log_error("store", "cannot connect to PostgreSQL url=%s: %s", d->shown, d->c ? d->err : "out of memory");
		rc = -EIO;
		goto err;
	}
	PQsetNoticeProcessor(d->c, quiet, NULL);
	*out = &d->base;
	return 0;
err:
	PQfinish(d->c);
	free(d);
	return rc;
}
