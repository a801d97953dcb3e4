#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/db.h"

/* ?N to $N for PostgreSQL: quoted text is left alone, a bare ? refused */
static const struct {
	const char *in, *out;
	int rc, nparams;
} placeholder_cases[] = {
	{ "SELECT 1", "SELECT 1", 0, 0 },
	{ "SELECT ?1", "SELECT $1", 0, 1 },
	{ "VALUES (?1, ?2, ?13, ?13)", "VALUES ($1, $2, $13, $13)", 0, 13 },
	{ "SELECT '?1' WHERE a = ?2", "SELECT '?1' WHERE a = $2", 0, 2 },
	{ "SELECT 'it''s ?' || ?1", "SELECT 'it''s ?' || $1", 0, 1 },
	{ "SELECT ?", NULL, -EINVAL, 0 },
	{ "SELECT ?0", NULL, -EINVAL, 0 },
	{ "SELECT ?33", NULL, -EINVAL, 0 },
	{ "SELECT ?x", NULL, -EINVAL, 0 },
};

Test(db, pg_placeholders)
{
	for (size_t i = 0; i < sizeof(placeholder_cases) / sizeof(placeholder_cases[0]); i++) {
		char out[128];
		int n = -1;
		int rc = db_pg_placeholders(placeholder_cases[i].in, out, sizeof(out), &n);
		cr_expect_eq(rc, placeholder_cases[i].rc, "%s: rc %d", placeholder_cases[i].in, rc);
		if (rc == 0) {
			cr_expect_str_eq(out, placeholder_cases[i].out);
			cr_expect_eq(n, placeholder_cases[i].nparams, "%s: %d params", placeholder_cases[i].in, n);
		}
	}
}

Test(db, pg_placeholders_bounded)
{
	char out[8];
	int n;
	cr_expect_eq(db_pg_placeholders("SELECT ?1", out, sizeof(out), &n), -ENOSPC);
	cr_expect_eq(db_pg_placeholders("SELECT ?1", out, 0, &n), -ENOSPC);
}

static const struct {
	const char *in, *out;
	bool url;
} redact_cases[] = {
	{ "postgres://u:pw@host/db", "postgres://u:***@host/db", true },
	{ "postgresql://u:pw@host:5432/db?sslmode=require", "postgresql://u:***@host:5432/db?sslmode=require", true },
	{ "postgresql://u@host/db", "postgresql://u@host/db", true },
	{ "postgresql:///db?host=/tmp/s&port=5", "postgresql:///db?host=/tmp/s&port=5", true },
	{ "postgres://h/db?password=x&sslmode=require", "postgres://h/db?password=***&sslmode=require", true },
	{ "postgres://u:a@h/db?password=b", "postgres://u:***@h/db?password=***", true },
	/* an SQLite path is shown as it is, whatever it holds */
	{ "/var/lib/a:b@c/password=d", "/var/lib/a:b@c/password=d", false },
	{ "meshsvc.db", "meshsvc.db", false },
	{ "postgres:/x", "postgres:/x", false },
};

Test(db, target_redact)
{
	for (size_t i = 0; i < sizeof(redact_cases) / sizeof(redact_cases[0]); i++) {
		char out[DB_TARGET_STRLEN];
		db_target_redact(redact_cases[i].in, out);
		cr_expect_str_eq(out, redact_cases[i].out);
		cr_expect_eq(db_is_url(redact_cases[i].in), redact_cases[i].url, "%s", redact_cases[i].in);
	}
}

Test(db, target_redact_bounded)
{
	char in[2 * DB_TARGET_STRLEN], out[DB_TARGET_STRLEN];
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = 0;
	memcpy(in, "postgres://u:", 13);
	in[100] = '@';
	db_target_redact(in, out);
	cr_expect_eq(strlen(out), DB_TARGET_STRLEN - 1);
	cr_expect_eq(strncmp(out, "postgres://u:***@", 17), 0);
}

/* the SQLite engine through the interface the store uses */
Test(db, sqlite_engine)
{
	char dir[] = "/tmp/test_db.XXXXXX", path[64];
	static const uint8_t blob[4] = { 0, 1, 0xfe, 0xff };
	struct db *db, *other;
	struct db_stmt *ins, *sel, *sel2;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	cr_assert_eq(db_open(path, &db), 0);
	cr_expect_eq(db_engine(db), DB_SQLITE);
	cr_expect_eq(db_open(path, &other), -EBUSY, "one writer per file");
	cr_expect_null(other);
	cr_assert_eq(db_exec(db, "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BLOB)"), 0);
	cr_assert_eq(db_prepare(db, "INSERT INTO t VALUES (?1, ?2, ?3)", &ins), 0);
	cr_expect_eq(db_param_count(ins), 3);
	db_bind_text(ins, 1, "a");
	db_bind_int64(ins, 2, 5000000000LL);
	db_bind_blob(ins, 3, blob, sizeof(blob));
	cr_expect_eq(db_step(ins), DB_DONE);
	cr_expect_eq(db_changes(db), 1);
	db_reset(ins);
	cr_expect_eq(db_step(ins), DB_CONSTRAINT, "the same key again");
	db_reset(ins);
	db_clear_bindings(ins);
	db_bind_text(ins, 1, "b");
	cr_expect_eq(db_step(ins), DB_DONE, "unbound parameters are NULL");
	cr_assert_eq(db_prepare(db, "SELECT k, n, b FROM t ORDER BY k", &sel), 0);
	cr_assert_eq(db_step(sel), DB_ROW);
	cr_expect_str_eq(db_column_text(sel, 0), "a");
	cr_expect_eq(db_column_int64(sel, 1), 5000000000LL);
	cr_expect_eq(db_column_bytes(sel, 2), sizeof(blob));
	cr_expect_eq(memcmp(db_column_blob(sel, 2), blob, sizeof(blob)), 0);
	cr_assert_eq(db_step(sel), DB_ROW);
	cr_expect(db_column_null(sel, 1));
	cr_expect_eq(db_column_int64(sel, 1), 0);
	cr_expect_str_eq(db_column_text(sel, 2), "");
	cr_expect_eq(db_step(sel), DB_DONE);
	db_reset(sel);
	cr_expect_not(db_in_txn(db));
	cr_expect_eq(db_exec(db, "BEGIN"), 0);
	cr_expect(db_in_txn(db));
	cr_expect_eq(db_exec(db, "ROLLBACK"), 0);
	cr_expect_eq(db_prepare(db, "SELECT nothing FROM nowhere", &sel2), -EINVAL);
	cr_expect_null(sel2);
	db_finalize(sel);
	db_finalize(ins);
	db_close(db);
	cr_expect_eq(db_open(path, &db), 0, "free again once closed");
	db_close(db);
	unlink(path);
	rmdir(dir);
}
