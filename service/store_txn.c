/* store_txn: transactions, group commit and the memory journal (store.h).
 * A write runs in its own transaction, or in a savepoint of its batch's; the
 * memory changes it makes (revisions, horizons, addresses, VPCs) are
 * journaled, so a rollback of the write, or of the whole batch, restores the
 * memory to what the database holds. */
#include <errno.h>
#include <stdlib.h>

#include "store_internal.h"
#include "log.h"

/* room for n more journal entries, made before a write changes anything, so
 * that journaling cannot fail halfway through it; -ENOSPC past UNDO_MAX (the
 * vec logs and counts it) */
int store_undo_reserve(struct store *st, size_t n)
{
	return vec_reserve(&st->undo, n);
}

void store_journal(struct store *st, enum undo_kind kind, struct vpc_state *v, int64_t value)
{
	struct undo u = { kind, v, value };

	/* store_undo_reserve made room for every entry of a write: a bug */
	if (vec_append(&st->undo, &u) < 0)
		log_error("store", "memory journal full: a rollback would not restore vpc=%s", v->id);
}

/* undoes the journal back to its length to, newest first */
void store_undo_to(struct store *st, size_t to)
{
	while (st->undo.len > to) {
		struct undo *u = vec_at(&st->undo, st->undo.len - 1);

		vec_truncate(&st->undo, st->undo.len - 1);
		switch (u->kind) {
		case U_REVISION:
			u->v->revision = u->value;
			break;
		case U_COMPACTED:
			u->v->compacted = u->value;
			break;
		case U_ALLOC:
			ipam_release(&u->v->ipam, (uint64_t)u->value);
			break;
		case U_RELEASE:
			/* cannot fail: the bitmap covers the index, and whatever took
			 * it after the release was undone first */
			ipam_reserve(&u->v->ipam, (uint64_t)u->value);
			break;
		case U_VPC_ADD:
			store_vpc_state_unlink(st, u->v);
			store_vpc_state_free(u->v);
			break;
		case U_VPC_REMOVE:
			u->v->next = st->vpcs;
			st->vpcs = u->v;
			break;
		}
	}
}

/* the transaction is durable: the journal goes, and the VPCs it removed */
static void undo_forget(struct store *st)
{
	for (size_t i = 0; i < st->undo.len; i++) {
		struct undo *u = vec_at(&st->undo, i);
		if (u->kind == U_VPC_REMOVE)
			store_vpc_state_free(u->v);
	}
	vec_truncate(&st->undo, 0);
}

/* SQLite rolled the batch's transaction back by itself (an I/O error, a full
 * disk, RAISE(ROLLBACK)): the memory of every write in it goes too */
static void batch_lost(struct store *st)
{
	log_error("store", "the batch's transaction was rolled back: %s; its %u writes are lost",
		  db_errmsg(st->db), st->batch_writes);
	store_undo_to(st, 0);
	st->batch = BATCH_LOST;
}

/* begins a write: its own transaction, or a savepoint in the batch's */
int store_txn_begin(struct store *st)
{
	int rc;

	if (st->batch == BATCH_LOST)
		return -EIO;
	if ((rc = store_undo_reserve(st, UNDO_PER_WRITE)) < 0)
		return rc;
	if (st->batch != BATCH_OPEN && (rc = store_exec(st, store_stmt(st, S_BEGIN))) < 0)
		return rc;
	if (st->batch == BATCH_EMPTY)
		st->batch = BATCH_OPEN;
	if (st->batch == BATCH_OPEN && (rc = store_exec(st, store_stmt(st, S_SAVEPOINT))) < 0) {
		if (!db_in_txn(st->db))
			batch_lost(st);
		return rc;
	}
	st->mark = st->undo.len;
	return 0;
}

/* ends a write that worked: commits its transaction, or releases its savepoint */
int store_txn_commit(struct store *st)
{
	int rc;

	if (st->batch == BATCH_OPEN) {
		if ((rc = store_exec(st, store_stmt(st, S_RELEASE))) < 0)
			return rc;
		st->batch_writes++;
		return 0;
	}
	if ((rc = store_exec(st, store_stmt(st, S_COMMIT))) < 0) {
		st->stats.failed_commits++;
		return rc;
	}
	undo_forget(st);
	st->stats.commits++;
	st->stats.writes++;
	return 0;
}

/* ends a write that failed, or whose commit did: its rows and its memory
 * changes are undone; in a batch, the writes before it stay */
void store_txn_rollback(struct store *st)
{
	store_undo_to(st, st->mark);
	switch (st->batch) {
	case BATCH_NONE:
		if (!!db_in_txn(st->db))
			store_exec(st, store_stmt(st, S_ROLLBACK));
		break;
	case BATCH_OPEN:
		if (!db_in_txn(st->db) || store_exec(st, store_stmt(st, S_ROLLBACK_TO)) < 0 ||
		    store_exec(st, store_stmt(st, S_RELEASE)) < 0) {
			if (!!db_in_txn(st->db))
				store_exec(st, store_stmt(st, S_ROLLBACK));
			batch_lost(st);
		}
		break;
	case BATCH_EMPTY:
	case BATCH_LOST:
		break;
	}
}

int store_batch_begin(struct store *st)
{
	if (st->batch != BATCH_NONE)
		return -EALREADY;
	st->batch = BATCH_EMPTY;
	st->batch_writes = 0;
	return 0;
}

bool store_available(struct store *st)
{
	return db_available(st->db);
}

bool store_batch_pending(const struct store *st)
{
	return st->batch == BATCH_OPEN || st->batch == BATCH_LOST;
}

int store_batch_commit(struct store *st)
{
	enum batch_state was = st->batch;
	unsigned n = st->batch_writes;
	int rc;

	st->batch = BATCH_NONE;
	st->batch_writes = 0;
	st->mark = 0;
	switch (was) {
	case BATCH_NONE:
		return -EINVAL;
	case BATCH_EMPTY:
		return 0;
	case BATCH_LOST:
		st->stats.failed_commits++;
		return -EIO;
	case BATCH_OPEN:
		break;
	}
	if ((rc = store_exec(st, store_stmt(st, S_COMMIT))) < 0) {
		/* an I/O error, or a deferred constraint: it may still be open */
		log_error("store", "batch commit failed writes=%u: %s", n, db_errmsg(st->db));
		if (!!db_in_txn(st->db))
			store_exec(st, store_stmt(st, S_ROLLBACK));
		store_undo_to(st, 0);
		st->stats.failed_commits++;
		return rc == -EEXIST ? -EIO : rc;
	}
	undo_forget(st);
	if (n) {
		st->stats.commits++;
		st->stats.writes += n;
	}
	return (int)n;
}

void store_stats(const struct store *st, struct store_stats *out)
{
	*out = st->stats;
}
