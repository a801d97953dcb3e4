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

#include "db_internal.h"
#include "log.h"

/* seconds to wait for the server at open, unless the URL says connect_timeout */
#define DB_PG_CONNECT_TIMEOUT "10"
#define DB_ERR_MAX 512

struct pdb {
	struct db base;
	PGconn *c;
	char err[DB_ERR_MAX];
	int64_t changes;
	unsigned next_name;
};

struct pstmt {
	struct db_stmt base;
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
	free(s->sql);
	free(s);
}

static int p_prepare(struct db *db, const char *text, struct db_stmt **out)
{
	struct pdb *d = PDB(db);
	size_t n = strlen(text) + 1;
	struct pstmt *s = calloc(1, sizeof(*s));
	char *pg = malloc(n);
	PGresult *r = NULL;
	int rc = -ENOMEM;

	if (!s || !pg || !(s->base.sql = strdup(text)))
		goto err;
	if ((rc = db_pg_placeholders(text, pg, n, &s->base.nparams)) < 0) {
		log_error("store", "bad placeholders (?1..?%d only) in %s", DB_PARAMS_MAX, text);
		goto err;
	}
	s->base.db = db;
	snprintf(s->name, sizeof(s->name), "s%u", ++d->next_name);
	r = PQprepare(d->c, s->name, pg, s->base.nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		keep_error(d, r);
		log_error("store", "cannot prepare %s: %s", text, d->err);
		rc = -EINVAL;
		goto err;
	}
	PQclear(r);
	free(pg);
	*out = &s->base;
	return 0;
err:
	PQclear(r);
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

static enum db_result p_step(struct db_stmt *s)
{
	struct pstmt *ps = PS(s);
	struct pdb *d = PDB(s->db);
	const char *state, *tuples;
	ExecStatusType st;

	if (!ps->executed) {
		ps->executed = true;
		ps->row = -1;
		ps->nrows = 0;
		ps->res = PQexecPrepared(d->c, ps->name, s->nparams, (const char *const *)ps->values, ps->lengths,
					 ps->formats, 0);
		st = PQresultStatus(ps->res);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			keep_error(d, ps->res);
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
	.column_null = p_column_null, .column_blob = p_column_blob,
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
	char shown[DB_TARGET_STRLEN];
	struct pdb *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->base.ops = &pg_ops;
	d->base.engine = DB_PG;
	db_target_redact(url, shown);
	d->c = PQconnectdbParams(keys, values, 1);
	if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
		keep_error(d, NULL);
		log_error("store", "cannot connect to PostgreSQL url=%s: %s", shown, d->c ? d->err : "out of memory");
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
