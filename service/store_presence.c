/* store_presence: housekeeping. Devices silent for the offline window are
 * published as offline (a new revision each, one transaction for all), and
 * tombstones older than their time to live are pruned, moving each VPC's
 * horizon. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "log.h"

/* rows of (text, text or integer) from a query with one integer parameter,
 * collected first so that the statement is done before the writes */
struct pair {
	char a[UUID_STRLEN];
	char b[UUID_STRLEN];
	int64_t num;
};

/* At most STORE_HOUSEKEEPING_MAX rows: past it the vec logs and counts the
 * refusal, and the rows left over are taken by the next pass. *out is
 * free()d by the caller. */
static int collect(struct store *st, enum stmt_id id, int64_t param, struct pair **out, size_t *n)
{
	struct vec list = VEC_INIT(struct pair, STORE_HOUSEKEEPING_MAX,
				   "meshsvc housekeeping rows (the rest wait for the next pass)");
	struct db_stmt *s = store_stmt(st, id);
	struct pair *p;
	int step, rc = 0;

	db_bind_int64(s, 1, param);
	while ((step = db_step(s)) == DB_ROW) {
		if (!(p = vec_push(&list))) {
			rc = -errno;
			break;
		}
		store_copy_id(p->a, store_col_text(s, 0));
		store_copy_id(p->b, store_col_text(s, 1));
		p->num = db_column_int64(s, 1);
	}
	db_reset(s);
	if (rc == 0 && step != DB_DONE)
		rc = store_db_error(st, db_sql(s));
	if (rc < 0 && rc != -ENOSPC) {
		vec_free(&list);
		return rc;
	}
	*out = vec_detach(&list, n);
	return 0;
}

/* devices silent since cutoff go offline, each with a new revision, all in
 * one transaction (one fsync however many went quiet) */
static int mark_offline(struct store *st, int64_t cutoff, store_changed_fn changed, void *arg)
{
	struct pair *list = NULL;
	size_t n, i;
	int rc;

	if ((rc = collect(st, S_DEV_SILENT, cutoff, &list, &n)) < 0 || n == 0)
		goto out;
	if ((rc = store_txn_begin(st)) < 0)
		goto out;
	/* a revision each */
	rc = store_undo_reserve(st, n);
	for (i = 0; i < n && rc == 0; i++)
		rc = store_set_online(st, list[i].a, list[i].b, false, 0, &list[i].num);
	if (rc < 0 || (rc = store_txn_commit(st)) < 0) {
		store_txn_rollback(st);
		goto out;
	}
	/* ordered by VPC and revision: one call per VPC */
	for (i = 0; i < n; i++) {
		log_info("store", "device offline id=%s vpc=%s", list[i].a, list[i].b);
		if (changed && (i + 1 == n || strcmp(list[i].b, list[i + 1].b)))
			changed(arg, list[i].b);
	}
	rc = (int)n;
out:
	free(list);
	return rc;
}

/* tombstones deleted at or before cutoff go; every tombstone of a VPC up to
 * its newest expired one, so the horizon (compacted) is one number per VPC */
static int prune_tombstones(struct store *st, int64_t cutoff)
{
	struct pair *list = NULL;
	struct db_stmt *s;
	size_t n, i;
	int rc;

	if ((rc = collect(st, S_TOMB_EXPIRED, cutoff, &list, &n)) < 0 || n == 0)
		goto out;
	if ((rc = store_txn_begin(st)) < 0)
		goto out;
	/* a horizon each */
	rc = store_undo_reserve(st, n);
	for (i = 0; i < n && rc == 0; i++) {
		struct vpc_state *v = store_vpc_find(st, list[i].a);
		s = store_stmt(st, S_TOMB_PRUNE);
		store_bind_text(s, 1, list[i].a);
		db_bind_int64(s, 2, list[i].num);
		if ((rc = store_exec(st, s)) < 0)
			break;
		s = store_stmt(st, S_VPC_SET_COMPACTED);
		store_bind_text(s, 1, list[i].a);
		db_bind_int64(s, 2, list[i].num);
		if ((rc = store_exec(st, s)) == 0 && v && list[i].num > v->compacted) {
			store_journal(st, U_COMPACTED, v, v->compacted);
			v->compacted = list[i].num;
		}
	}
	if (rc < 0 || (rc = store_txn_commit(st)) < 0) {
		store_txn_rollback(st);
		goto out;
	}
	for (i = 0; i < n; i++)
		log_info("store", "tombstones pruned vpc=%s up_to_revision=%lld", list[i].a,
			 (long long)list[i].num);
	rc = (int)n;
out:
	free(list);
	return rc;
}

/* Every VPC's committed revision and horizon, read again: another meshsvc
 * on the database (PostgreSQL) may have changed it; changed is told of each
 * that rose. One query, each housekeeping pass, and at once when meshsvc's
 * doorbell hears of a change; reading the rows rather than the notices
 * themselves means a notice that reached the doorbell first is not missed. */
static void refresh_revisions(struct store *st, store_changed_fn changed, void *arg)
{
	struct db_stmt *s = store_stmt(st, S_VPC_LIST);
	struct vpc_state *v;

	while (db_step(s) == DB_ROW) {
		if (!(v = store_vpc_find(st, store_col_text(s, 0))))
			continue;
		if (db_column_int64(s, 5) > v->compacted)
			v->compacted = db_column_int64(s, 5);
		if (db_column_int64(s, 4) > v->revision) {
			v->revision = db_column_int64(s, 4);
			if (changed)
				changed(arg, v->id);
		}
	}
	db_reset(s);
}

int store_housekeeping(struct store *st, int64_t now, const struct store_limits *lim,
		       store_changed_fn changed, void *arg)
{
	int rc;

	if (st->batch != BATCH_NONE)
		return -EBUSY;
	/* outside any transaction, so memory takes only committed revisions */
	if (db_engine(st->db) == DB_PG)
		refresh_revisions(st, changed, arg);
	if ((rc = mark_offline(st, now - lim->offline_after_s, changed, arg)) < 0)
		return rc;
	return prune_tombstones(st, now - lim->tombstone_ttl_s);
}
