#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ipam.h"
#include "log.h"

/* 1: the first release; 2: vpcs.compacted, devices.online, tombstones.deleted_at */
#define SCHEMA_VERSION 2
#define STR_(x) #x
#define STR(x) STR_(x)
#define SET_SCHEMA_VERSION "PRAGMA user_version = " STR(SCHEMA_VERSION)

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS vpcs ("
	"  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ipv4_cidr TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL, revision INTEGER NOT NULL,"
	"  compacted INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE IF NOT EXISTS reg_keys ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	"  secret_hash BLOB NOT NULL UNIQUE, single_use INTEGER NOT NULL, expires_at INTEGER,"
	"  description TEXT NOT NULL, created_at INTEGER NOT NULL, used_by TEXT) STRICT;"
	"CREATE TABLE IF NOT EXISTS devices ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id),"
	"  public_key TEXT NOT NULL, hostname TEXT NOT NULL, os TEXT NOT NULL,"
	"  endpoints TEXT NOT NULL, ip_index INTEGER NOT NULL, tunnel_ip TEXT NOT NULL,"
	"  relay INTEGER NOT NULL, symmetric_nat INTEGER NOT NULL, nat TEXT,"
	"  revision INTEGER NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  token_hash BLOB NOT NULL UNIQUE, online INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE (vpc_id, public_key), UNIQUE (vpc_id, ip_index), UNIQUE (vpc_id, revision)) STRICT;"
	"CREATE TABLE IF NOT EXISTS tombstones ("
	"  vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE, device_id TEXT NOT NULL,"
	"  revision INTEGER NOT NULL, deleted_at INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (vpc_id, revision)) STRICT;"
	"CREATE INDEX IF NOT EXISTS devices_presence ON devices (online, last_seen);";

/* from version 1, inside one transaction; ?1 is the time of the upgrade, ?2
 * the default online window: tombstones start their life then, and a device
 * is online as version 1 would have computed it */
static const char *const migrate_v1[] = {
	"ALTER TABLE vpcs ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE devices ADD COLUMN online INTEGER NOT NULL DEFAULT 1",
	"ALTER TABLE tombstones ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0",
	"UPDATE devices SET online = (last_seen > ?1 - ?2)",
	"UPDATE tombstones SET deleted_at = ?1",
	"CREATE INDEX IF NOT EXISTS devices_presence ON devices (online, last_seen)",
	SET_SCHEMA_VERSION,
};

#define DEVICE_COLS "id, vpc_id, public_key, hostname, os, endpoints, tunnel_ip, relay," \
		    " symmetric_nat, nat, revision, last_seen, online"
enum { DC_ID, DC_VPC_ID, DC_PUBLIC_KEY, DC_HOSTNAME, DC_OS, DC_ENDPOINTS, DC_TUNNEL_IP, DC_RELAY,
       DC_SYMMETRIC_NAT, DC_NAT, DC_REVISION, DC_LAST_SEEN, DC_ONLINE, DC_IP_INDEX /* S_DEV_GET only */ };
#define REGKEY_COLS "id, vpc_id, single_use, expires_at, description, used_by"

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_VPC_INSERT, S_VPC_GET, S_VPC_LIST, S_VPC_DELETE, S_VPC_BUMP, S_VPC_NAME_TAKEN,
	S_VPC_DEVICES,
	S_RK_INSERT, S_RK_GET, S_RK_LIST, S_RK_DELETE, S_RK_BY_HASH, S_RK_SET_USED,
	S_DEV_INSERT, S_DEV_GET, S_DEV_BY_KEY, S_DEV_BY_TOKEN, S_DEV_SET_TOKEN, S_DEV_UPDATE,
	S_DEV_DELETE, S_DEV_TOUCH, S_DEV_CHANGES, S_DEV_ALL, S_DEV_INDICES, S_DEV_SET_ONLINE,
	S_DEV_SILENT,
	S_TOMB_INSERT, S_TOMB_SINCE, S_TOMB_EXPIRED, S_TOMB_PRUNE, S_VPC_SET_COMPACTED,
	S_COUNT
};

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT write",
	[S_RELEASE] = "RELEASE write",
	[S_ROLLBACK_TO] = "ROLLBACK TO write",
	[S_VPC_INSERT] = "INSERT INTO vpcs (id, name, ipv4_cidr, created_at, revision) VALUES (?1, ?2, ?3, ?4, 0)",
	[S_VPC_GET] = "SELECT id, name, ipv4_cidr, created_at, revision FROM vpcs WHERE id = ?1",
	[S_VPC_LIST] = "SELECT id, name, ipv4_cidr, created_at, revision, compacted FROM vpcs"
		       " ORDER BY created_at, id",
	[S_VPC_DELETE] = "DELETE FROM vpcs WHERE id = ?1",
	[S_VPC_BUMP] = "UPDATE vpcs SET revision = revision + 1 WHERE id = ?1 RETURNING revision",
	[S_VPC_NAME_TAKEN] = "SELECT 1 FROM vpcs WHERE name = ?1",
	[S_VPC_DEVICES] = "SELECT 1 FROM devices WHERE vpc_id = ?1 LIMIT 1",
	[S_RK_INSERT] = "INSERT INTO reg_keys (id, vpc_id, secret_hash, single_use, expires_at,"
			" description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_RK_GET] = "SELECT " REGKEY_COLS " FROM reg_keys WHERE id = ?1",
	[S_RK_LIST] = "SELECT " REGKEY_COLS " FROM reg_keys ORDER BY created_at, id",
	[S_RK_DELETE] = "DELETE FROM reg_keys WHERE id = ?1",
	[S_RK_BY_HASH] = "SELECT id, vpc_id, expires_at, secret_hash FROM reg_keys WHERE secret_hash = ?1",
	[S_RK_SET_USED] = "UPDATE reg_keys SET used_by = ?2 WHERE id = ?1",
	[S_DEV_INSERT] = "INSERT INTO devices (id, vpc_id, public_key, hostname, os, endpoints,"
			 " ip_index, tunnel_ip, relay, symmetric_nat, nat, revision, created_at,"
			 " last_seen, token_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
			 " ?11, ?12, ?13, ?13, ?14)",
	[S_DEV_GET] = "SELECT " DEVICE_COLS ", ip_index FROM devices WHERE id = ?1",
	[S_DEV_BY_KEY] = "SELECT id, online FROM devices WHERE vpc_id = ?1 AND public_key = ?2",
	[S_DEV_BY_TOKEN] = "SELECT id, vpc_id, last_seen, token_hash, online FROM devices WHERE token_hash = ?1",
	[S_DEV_SET_TOKEN] = "UPDATE devices SET token_hash = ?2, last_seen = ?3 WHERE id = ?1",
	[S_DEV_UPDATE] = "UPDATE devices SET hostname = ?2, endpoints = ?3, relay = ?4,"
			 " symmetric_nat = ?5, nat = ?6, revision = ?7, last_seen = ?8 WHERE id = ?1",
	[S_DEV_DELETE] = "DELETE FROM devices WHERE id = ?1",
	[S_DEV_TOUCH] = "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
	[S_DEV_CHANGES] = "SELECT " DEVICE_COLS " FROM devices WHERE vpc_id = ?1 AND revision > ?2"
			  " ORDER BY revision",
	[S_DEV_ALL] = "SELECT " DEVICE_COLS " FROM devices ORDER BY vpc_id, ip_index",
	[S_DEV_INDICES] = "SELECT ip_index FROM devices WHERE vpc_id = ?1",
	[S_DEV_SET_ONLINE] = "UPDATE devices SET online = ?2, revision = ?3, last_seen = max(last_seen, ?4)"
			     " WHERE id = ?1",
	[S_DEV_SILENT] = "SELECT id, vpc_id FROM devices WHERE online = 1 AND last_seen <= ?1"
			 " ORDER BY vpc_id, revision",
	[S_TOMB_INSERT] = "INSERT INTO tombstones (vpc_id, device_id, revision, deleted_at)"
			  " VALUES (?1, ?2, ?3, ?4)",
	[S_TOMB_SINCE] = "SELECT device_id FROM tombstones WHERE vpc_id = ?1 AND revision > ?2"
			 " ORDER BY revision",
	[S_TOMB_EXPIRED] = "SELECT vpc_id, max(revision) FROM tombstones WHERE deleted_at <= ?1 GROUP BY vpc_id",
	[S_TOMB_PRUNE] = "DELETE FROM tombstones WHERE vpc_id = ?1 AND revision <= ?2",
	[S_VPC_SET_COMPACTED] = "UPDATE vpcs SET compacted = max(compacted, ?2) WHERE id = ?1",
};

/* what the store keeps in memory per VPC */
struct vpc_state {
	char id[UUID_STRLEN];
	int64_t revision;
	int64_t compacted;	/* tombstones up to this revision are gone */
	struct ipam ipam;
	struct vpc_state *next;
};

/* how writes are grouped into transactions */
enum batch_state {
	BATCH_NONE,	/* every write is its own transaction */
	BATCH_EMPTY,	/* a batch is started, no write yet: no transaction */
	BATCH_OPEN,	/* the batch's transaction is open; writes are savepoints in it */
	BATCH_LOST,	/* SQLite rolled the transaction back on an error: every write
			 * of the batch is gone, the next ones fail, the commit fails */
};

/* one change to the memory state, with what undoes it */
enum undo_kind { U_REVISION, U_COMPACTED, U_ALLOC, U_RELEASE, U_VPC_ADD, U_VPC_REMOVE };
struct undo {
	enum undo_kind kind;
	struct vpc_state *v;
	int64_t value;		/* the old revision or horizon, or the address index */
};
/* the most journal entries one write makes (a registration: an address and a revision) */
#define UNDO_PER_WRITE 2

struct store {
	sqlite3 *db;
	int lock_fd;
	sqlite3_stmt *stmt[S_COUNT];
	struct vpc_state *vpcs;
	enum batch_state batch;
	unsigned batch_writes;
	/* the memory changes of the open transaction, undone in reverse on rollback */
	struct undo *undo;
	size_t nundo, undo_cap;
	size_t mark;		/* the journal's length when the current write began */
	struct store_stats stats;
};

static int db_error(struct store *st, const char *what)
{
	log_error("store", "%s failed: %s", what, sqlite3_errmsg(st->db));
	return -EIO;
}

/* the statement, reset and unbound, ready for binds */
static sqlite3_stmt *stmt(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* runs a statement that returns no rows */
static int exec(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return -EEXIST;
	if (rc != SQLITE_DONE)
		return db_error(st, sqlite3_sql(s));
	return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t ? t : "";
}

static void copy_id(char out[UUID_STRLEN], const char *s)
{
	snprintf(out, UUID_STRLEN, "%s", s);
}

static struct vpc_state *vpc_find(const struct store *st, const char *id)
{
	for (struct vpc_state *v = st->vpcs; v; v = v->next)
		if (!strcmp(v->id, id))
			return v;
	return NULL;
}

static void vpc_state_free(struct vpc_state *v)
{
	ipam_fini(&v->ipam);
	free(v);
}

/* memory state of a VPC that exists in the database */
static int vpc_state_add(struct store *st, const char *id, const char *cidr_text, int64_t revision,
			 struct vpc_state **out)
{
	struct cidr cidr;
	struct vpc_state *v;
	int rc;

	if (cidr_parse(cidr_text, false, &cidr) < 0)
		return -EINVAL;
	if (!(v = calloc(1, sizeof(*v))))
		return -ENOMEM;
	copy_id(v->id, id);
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

static void vpc_state_unlink(struct store *st, struct vpc_state *v)
{
	for (struct vpc_state **p = &st->vpcs; *p; p = &(*p)->next) {
		if (*p == v) {
			*p = v->next;
			v->next = NULL;
			return;
		}
	}
}

/* --- transactions and the memory journal ----------------------------------------- */

/* room for n more journal entries, made before a write changes anything, so
 * that journaling cannot fail halfway through it */
static int undo_reserve(struct store *st, size_t n)
{
	struct undo *u;
	size_t cap;

	if (st->nundo + n <= st->undo_cap)
		return 0;
	cap = st->undo_cap ? st->undo_cap : 64;
	while (cap < st->nundo + n)
		cap *= 2;
	if (!(u = realloc(st->undo, cap * sizeof(*u))))
		return -ENOMEM;
	st->undo = u;
	st->undo_cap = cap;
	return 0;
}

static void journal(struct store *st, enum undo_kind kind, struct vpc_state *v, int64_t value)
{
	if (st->nundo == st->undo_cap) {
		/* undo_reserve made room for every entry of a write: a bug */
		log_error("store", "memory journal full: a rollback would not restore vpc=%s", v->id);
		return;
	}
	st->undo[st->nundo++] = (struct undo){ kind, v, value };
}

/* undoes the journal back to its length to, newest first */
static void undo_to(struct store *st, size_t to)
{
	while (st->nundo > to) {
		struct undo *u = &st->undo[--st->nundo];
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
			vpc_state_unlink(st, u->v);
			vpc_state_free(u->v);
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
	for (size_t i = 0; i < st->nundo; i++)
		if (st->undo[i].kind == U_VPC_REMOVE)
			vpc_state_free(st->undo[i].v);
	st->nundo = 0;
}

static void set_revision(struct store *st, struct vpc_state *v, int64_t revision)
{
	journal(st, U_REVISION, v, v->revision);
	v->revision = revision;
}

/* SQLite rolled the batch's transaction back by itself (an I/O error, a full
 * disk, RAISE(ROLLBACK)): the memory of every write in it goes too */
static void batch_lost(struct store *st)
{
	log_error("store", "the batch's transaction was rolled back: %s; its %u writes are lost",
		  sqlite3_errmsg(st->db), st->batch_writes);
	undo_to(st, 0);
	st->batch = BATCH_LOST;
}

/* begins a write: its own transaction, or a savepoint in the batch's */
static int txn_begin(struct store *st)
{
	int rc;

	if (st->batch == BATCH_LOST)
		return -EIO;
	if ((rc = undo_reserve(st, UNDO_PER_WRITE)) < 0)
		return rc;
	if (st->batch != BATCH_OPEN && (rc = exec(st, stmt(st, S_BEGIN))) < 0)
		return rc;
	if (st->batch == BATCH_EMPTY)
		st->batch = BATCH_OPEN;
	if (st->batch == BATCH_OPEN && (rc = exec(st, stmt(st, S_SAVEPOINT))) < 0) {
		if (sqlite3_get_autocommit(st->db))
			batch_lost(st);
		return rc;
	}
	st->mark = st->nundo;
	return 0;
}

/* ends a write that worked: commits its transaction, or releases its savepoint */
static int txn_commit(struct store *st)
{
	int rc;

	if (st->batch == BATCH_OPEN) {
		if ((rc = exec(st, stmt(st, S_RELEASE))) < 0)
			return rc;
		st->batch_writes++;
		return 0;
	}
	if ((rc = exec(st, stmt(st, S_COMMIT))) < 0) {
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
static void txn_rollback(struct store *st)
{
	undo_to(st, st->mark);
	switch (st->batch) {
	case BATCH_NONE:
		if (!sqlite3_get_autocommit(st->db))
			exec(st, stmt(st, S_ROLLBACK));
		break;
	case BATCH_OPEN:
		if (sqlite3_get_autocommit(st->db) || exec(st, stmt(st, S_ROLLBACK_TO)) < 0 ||
		    exec(st, stmt(st, S_RELEASE)) < 0) {
			if (!sqlite3_get_autocommit(st->db))
				exec(st, stmt(st, S_ROLLBACK));
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
	if ((rc = exec(st, stmt(st, S_COMMIT))) < 0) {
		/* an I/O error, or a deferred constraint: it may still be open */
		log_error("store", "batch commit failed writes=%u: %s", n, sqlite3_errmsg(st->db));
		if (!sqlite3_get_autocommit(st->db))
			exec(st, stmt(st, S_ROLLBACK));
		undo_to(st, 0);
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

/* every VPC's revision and its addresses in use, from the database */
static int load_state(struct store *st)
{
	sqlite3_stmt *s = stmt(st, S_VPC_LIST), *d;
	struct vpc_state *v;
	int rc = 0, step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if ((rc = vpc_state_add(st, col_text(s, 0), col_text(s, 2), sqlite3_column_int64(s, 4), &v)) < 0) {
			log_error("store", "cannot load vpc id=%s cidr=%s", col_text(s, 0), col_text(s, 2));
			break;
		}
		v->compacted = sqlite3_column_int64(s, 5);
		d = stmt(st, S_DEV_INDICES);
		bind_text(d, 1, v->id);
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
			rc = rc < 0 ? rc : db_error(st, "loading addresses");
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_error(st, "loading vpcs");
	sqlite3_reset(s);
	return rc;
}

static int pragma(struct store *st, const char *text)
{
	/* fixed text only: PRAGMAs cannot take bound parameters */
	if (sqlite3_exec(st->db, text, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(st, text);
	return 0;
}

/* one integer from a statement without parameters (PRAGMA user_version, a count) */
static int query_int(struct store *st, const char *text, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db, text, -1, &s, NULL) != SQLITE_OK)
		return db_error(st, text);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(st, text);
}

static int migrate_from_v1(struct store *st, const char *path, int64_t now)
{
	size_t i;

	if (pragma(st, "BEGIN IMMEDIATE") < 0)
		return -EIO;
	for (i = 0; i < sizeof(migrate_v1) / sizeof(migrate_v1[0]); i++) {
		sqlite3_stmt *s;
		int rc;

		if (sqlite3_prepare_v2(st->db, migrate_v1[i], -1, &s, NULL) != SQLITE_OK) {
			db_error(st, migrate_v1[i]);
			break;
		}
		if (sqlite3_bind_parameter_count(s) >= 1)
			sqlite3_bind_int64(s, 1, now);
		if (sqlite3_bind_parameter_count(s) >= 2)
			sqlite3_bind_int64(s, 2, DEVICE_ONLINE_WINDOW_S);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE) {
			db_error(st, migrate_v1[i]);
			break;
		}
	}
	if (i < sizeof(migrate_v1) / sizeof(migrate_v1[0])) {
		pragma(st, "ROLLBACK");
		return -EIO;
	}
	if (pragma(st, "COMMIT") < 0)
		return -EIO;
	log_info("store", "upgraded the database schema from version 1 to %d path=%s", SCHEMA_VERSION, path);
	return 0;
}

/* creates the schema, upgrades an older one, refuses a newer one */
static int schema_setup(struct store *st, const char *path)
{
	int64_t version, tables;
	int rc;

	if ((rc = query_int(st, "PRAGMA user_version", &version)) < 0 ||
	    (rc = query_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'vpcs'",
			    &tables)) < 0)
		return rc;
	/* version 1 created its tables before it set the version */
	if (version == 0 && tables)
		version = 1;
	if (version > SCHEMA_VERSION) {
		log_error("store", "the database has schema version %lld, newer than this meshsvc's %d path=%s",
			  (long long)version, SCHEMA_VERSION, path);
		return -EPROTO;
	}
	if (version == 1 && (rc = migrate_from_v1(st, path, (int64_t)time(NULL))) < 0)
		return rc;
	if ((rc = pragma(st, schema)) < 0 || (rc = pragma(st, SET_SCHEMA_VERSION)) < 0)
		return rc;
	return 0;
}

int store_open(const char *path, struct store **out)
{
	struct store *st;
	int rc;

	*out = NULL;
	if (!(st = calloc(1, sizeof(*st))))
		return -ENOMEM;
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
		rc = db_error(st, "open");
		goto err_db;
	}
	sqlite3_extended_result_codes(st->db, 0);
	if ((rc = pragma(st, "PRAGMA journal_mode=WAL")) < 0 ||
	    (rc = pragma(st, "PRAGMA synchronous=FULL")) < 0 ||
	    (rc = pragma(st, "PRAGMA foreign_keys=ON")) < 0 ||
	    (rc = pragma(st, "PRAGMA busy_timeout=5000")) < 0 ||
	    (rc = schema_setup(st, path)) < 0)
		goto err_db;
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) != SQLITE_OK) {
			rc = db_error(st, sql[i]);
			goto err_stmt;
		}
	}
	if ((rc = load_state(st)) < 0)
		goto err_stmt;
	*out = st;
	return 0;

err_stmt:
	while (st->vpcs) {
		struct vpc_state *v = st->vpcs;
		st->vpcs = v->next;
		vpc_state_free(v);
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
	undo_to(st, 0);
	free(st->undo);
	while (st->vpcs) {
		struct vpc_state *v = st->vpcs;
		st->vpcs = v->next;
		vpc_state_free(v);
	}
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	close(st->lock_fd);
	free(st);
}

static json_t *time_or_null(int64_t t)
{
	char buf[TIME_STRLEN];
	if (!t)
		return json_null();
	time_format(t, buf);
	return json_string(buf);
}

/* --- VPCs ------------------------------------------------------------------------ */

/* every row of s, each made into JSON by row, as an array */
typedef json_t *(*row_json_fn)(sqlite3_stmt *s);

static int rows_json(struct store *st, sqlite3_stmt *s, row_json_fn row, const char *what, json_t **out)
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
		return db_error(st, what);
	}
	*out = list;
	return 0;
}

static json_t *vpc_json(sqlite3_stmt *s)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", col_text(s, 0), "name", col_text(s, 1),
			 "ipv4_cidr", col_text(s, 2), "created_at", time_or_null(sqlite3_column_int64(s, 3)));
}

int store_vpc_get(struct store *st, const char *id, json_t **out)
{
	sqlite3_stmt *s = stmt(st, S_VPC_GET);
	int rc;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = vpc_json(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, "vpc get");
	return *out ? 0 : -ENOMEM;
}

int store_vpc_create(struct store *st, const struct vpc_spec *spec, int64_t now, json_t **out)
{
	char id[UUID_STRLEN], cidr[CIDR_STRLEN];
	struct vpc_state *v;
	sqlite3_stmt *s;
	int rc;

	uuid_generate(id);
	cidr_format(&spec->cidr, cidr, sizeof(cidr));
	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_VPC_NAME_TAKEN);
	bind_text(s, 1, spec->name);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rc = rc == SQLITE_ROW ? -EEXIST : db_error(st, "vpc name");
		goto err;
	}
	s = stmt(st, S_VPC_INSERT);
	bind_text(s, 1, id);
	bind_text(s, 2, spec->name);
	bind_text(s, 3, cidr);
	sqlite3_bind_int64(s, 4, now);
	if ((rc = exec(st, s)) < 0 || (rc = vpc_state_add(st, id, cidr, 0, &v)) < 0)
		goto err;
	journal(st, U_VPC_ADD, v, 0);
	if ((rc = txn_commit(st)) < 0)
		goto err;
	return store_vpc_get(st, id, out);
err:
	txn_rollback(st);
	return rc;
}

int store_vpc_list(struct store *st, json_t **out)
{
	return rows_json(st, stmt(st, S_VPC_LIST), vpc_json, "vpc list", out);
}

int store_vpc_delete(struct store *st, const char *id)
{
	struct vpc_state *v = vpc_find(st, id);
	sqlite3_stmt *s;
	int rc;

	if (!v)
		return -ENOENT;
	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_VPC_DEVICES);
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		rc = rc == SQLITE_ROW ? -ENOTEMPTY : db_error(st, "vpc devices");
		goto err;
	}
	s = stmt(st, S_VPC_DELETE);
	bind_text(s, 1, id);
	if ((rc = exec(st, s)) < 0)
		goto err;
	vpc_state_unlink(st, v);
	journal(st, U_VPC_REMOVE, v, 0);
	if ((rc = txn_commit(st)) < 0)
		goto err;
	return 0;
err:
	txn_rollback(st);
	return rc;
}

int store_vpc_revision(struct store *st, const char *id, int64_t *out)
{
	const struct vpc_state *v = vpc_find(st, id);
	if (!v)
		return -ENOENT;
	*out = v->revision;
	return 0;
}

/* the VPC's next revision, inside the caller's transaction, in the database
 * and in memory */
static int bump(struct store *st, const char *vpc_id, int64_t *rev)
{
	sqlite3_stmt *s = stmt(st, S_VPC_BUMP);
	struct vpc_state *v;
	int rc;
	bind_text(s, 1, vpc_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*rev = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : db_error(st, "revision");
	if ((v = vpc_find(st, vpc_id)))
		set_revision(st, v, *rev);
	return 0;
}

/* publishes a device's presence inside the caller's transaction: a new
 * revision, so watchers hear of it; last_seen moves forward to seen if later */
static int set_online(struct store *st, const char *id, const char *vpc_id, bool online, int64_t seen,
		      int64_t *rev)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = bump(st, vpc_id, rev)) < 0)
		return rc;
	s = stmt(st, S_DEV_SET_ONLINE);
	bind_text(s, 1, id);
	sqlite3_bind_int(s, 2, online);
	sqlite3_bind_int64(s, 3, *rev);
	sqlite3_bind_int64(s, 4, seen);
	return exec(st, s);
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

/* --- registration keys ------------------------------------------------------------ */

static json_t *regkey_json(sqlite3_stmt *s)
{
	bool single = sqlite3_column_int(s, 2);
	return json_pack("{s:s, s:s, s:b, s:o, s:s, s:b}", "id", col_text(s, 0), "vpc_id", col_text(s, 1),
			 "single_use", single, "expires_at", time_or_null(sqlite3_column_int64(s, 3)),
			 "description", col_text(s, 4), "used",
			 single && sqlite3_column_type(s, 5) != SQLITE_NULL);
}

int store_regkey_get(struct store *st, const char *id, json_t **out)
{
	sqlite3_stmt *s = stmt(st, S_RK_GET);
	int rc;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = regkey_json(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, "reg-key get");
	return *out ? 0 : -ENOMEM;
}

int store_regkey_create(struct store *st, const struct regkey_spec *spec,
			const uint8_t hash[TOKEN_HASH_BYTES], int64_t now, json_t **out)
{
	char id[UUID_STRLEN];
	sqlite3_stmt *s;
	int rc;

	if (!vpc_find(st, spec->vpc_id))
		return -ENOENT;
	uuid_generate(id);
	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_RK_INSERT);
	bind_text(s, 1, id);
	bind_text(s, 2, spec->vpc_id);
	sqlite3_bind_blob(s, 3, hash, TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 4, spec->single_use);
	if (spec->expires_at)
		sqlite3_bind_int64(s, 5, spec->expires_at);
	bind_text(s, 6, spec->description);
	sqlite3_bind_int64(s, 7, now);
	if ((rc = exec(st, s)) < 0 || (rc = txn_commit(st)) < 0) {
		txn_rollback(st);
		return rc;
	}
	return store_regkey_get(st, id, out);
}

int store_regkey_list(struct store *st, json_t **out)
{
	return rows_json(st, stmt(st, S_RK_LIST), regkey_json, "reg-key list", out);
}

int store_regkey_delete(struct store *st, const char *id)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_RK_DELETE);
	bind_text(s, 1, id);
	if ((rc = exec(st, s)) == 0 && !sqlite3_changes(st->db))
		rc = -ENOENT;
	if (rc < 0 || (rc = txn_commit(st)) < 0) {
		txn_rollback(st);
		return rc;
	}
	return 0;
}

/* Tokens are found by their hash: whatever the index lookup's timing reveals is
 * about hashes of 256-bit secrets, not the secrets. The final decision is a
 * constant-time comparison all the same. */
static bool hash_matches(sqlite3_stmt *s, int col, const uint8_t hash[TOKEN_HASH_BYTES])
{
	return sqlite3_column_bytes(s, col) == TOKEN_HASH_BYTES &&
	       sodium_memcmp(sqlite3_column_blob(s, col), hash, TOKEN_HASH_BYTES) == 0;
}

int store_regkey_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], int64_t now,
		      struct principal *out)
{
	sqlite3_stmt *s = stmt(st, S_RK_BY_HASH);
	int64_t expires_at = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_blob(s, 1, hash, TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && hash_matches(s, 3, hash)) {
		out->scope = TOKEN_REGKEY;
		copy_id(out->id, col_text(s, 0));
		copy_id(out->vpc_id, col_text(s, 1));
		expires_at = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, "reg-key auth");
	if (!out->id[0])
		return -ENOENT;
	return expires_at && expires_at <= now ? -EKEYEXPIRED : 0;
}

/* --- devices -------------------------------------------------------------------- */

static json_t *json_column(sqlite3_stmt *s, int col, json_t *fallback)
{
	json_t *v = NULL;
	if (sqlite3_column_type(s, col) != SQLITE_NULL)
		v = json_loads(col_text(s, col), 0, NULL);
	if (!v)
		return fallback;
	json_decref(fallback);
	return v;
}

static json_t *device_json(sqlite3_stmt *s)
{
	char allowed[CIDR_STRLEN];
	snprintf(allowed, sizeof(allowed), "%s/32", col_text(s, DC_TUNNEL_IP));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:[s], s:b, s:b, s:o, s:I, s:b, s:o}",
			 "id", col_text(s, DC_ID), "vpc_id", col_text(s, DC_VPC_ID),
			 "public_key", col_text(s, DC_PUBLIC_KEY), "hostname", col_text(s, DC_HOSTNAME),
			 "os", col_text(s, DC_OS), "endpoints", json_column(s, DC_ENDPOINTS, json_array()),
			 "tunnel_ip", col_text(s, DC_TUNNEL_IP), "allowed_ips", allowed,
			 "relay", sqlite3_column_int(s, DC_RELAY), "symmetric_nat",
			 sqlite3_column_int(s, DC_SYMMETRIC_NAT), "nat", json_column(s, DC_NAT, json_null()),
			 "revision", (json_int_t)sqlite3_column_int64(s, DC_REVISION), "online",
			 sqlite3_column_int(s, DC_ONLINE), "last_seen",
			 time_or_null(sqlite3_column_int64(s, DC_LAST_SEEN)));
}

int store_device_get(struct store *st, const char *id, json_t **out, char vpc_id[UUID_STRLEN])
{
	sqlite3_stmt *s = stmt(st, S_DEV_GET);
	int rc;
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = device_json(s);
		if (vpc_id)
			copy_id(vpc_id, col_text(s, DC_VPC_ID));
	}
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return db_error(st, "device get");
	return *out ? 0 : -ENOMEM;
}

/* a stored JSON column; validate builds values in a fixed key order, so equal
 * values have equal text */
static char *json_text(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void bind_json(sqlite3_stmt *s, int i, const char *text)
{
	if (text)
		bind_text(s, i, text);
	else
		sqlite3_bind_null(s, i);
}

/* the device with this key in the VPC, if any, into id (and whether it is online) */
static int device_by_key(struct store *st, const char *vpc_id, const char *public_key, char id[UUID_STRLEN],
			 bool *online)
{
	sqlite3_stmt *s = stmt(st, S_DEV_BY_KEY);
	int rc;
	id[0] = 0;
	bind_text(s, 1, vpc_id);
	bind_text(s, 2, public_key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_id(id, col_text(s, 0));
		*online = sqlite3_column_int(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_error(st, "device by key");
}

/* inside the caller's transaction, which undoes the address on rollback */
static int insert_device(struct store *st, struct vpc_state *v, const char *id,
			 const struct device_spec *spec, const uint8_t token_hash[TOKEN_HASH_BYTES],
			 int64_t now)
{
	static const char no_endpoints[] = "[]";
	char ip[INET6_ADDRSTRLEN], *endpoints = NULL, *nat = NULL;
	union sockaddr_any addr;
	uint64_t index;
	int64_t rev;
	sqlite3_stmt *s;
	int rc;

	if ((rc = ipam_alloc(&v->ipam, &index, &addr)) < 0)
		return rc;
	journal(st, U_ALLOC, v, (int64_t)index);
	if ((rc = bump(st, v->id, &rev)) < 0)
		return rc;
	endpoints = json_text(spec->endpoints);
	nat = json_text(spec->nat);
	s = stmt(st, S_DEV_INSERT);
	bind_text(s, 1, id);
	bind_text(s, 2, v->id);
	bind_text(s, 3, spec->public_key_b64);
	bind_text(s, 4, spec->hostname);
	bind_text(s, 5, spec->os);
	bind_text(s, 6, endpoints ? endpoints : no_endpoints);
	sqlite3_bind_int64(s, 7, (int64_t)index);
	bind_text(s, 8, addr_format_ip(&addr, ip, sizeof(ip)));
	sqlite3_bind_int(s, 9, spec->relay);
	sqlite3_bind_int(s, 10, spec->symmetric_nat);
	bind_json(s, 11, nat);
	sqlite3_bind_int64(s, 12, rev);
	sqlite3_bind_int64(s, 13, now);
	sqlite3_bind_blob(s, 14, token_hash, TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
	rc = exec(st, s);
	free(endpoints);
	free(nat);
	return rc;
}

int store_device_register(struct store *st, const char *regkey_id, const struct device_spec *spec,
			  const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out,
			  bool *created)
{
	char id[UUID_STRLEN], vpc_id[UUID_STRLEN] = "", used_by[UUID_STRLEN] = "";
	struct vpc_state *v = NULL;
	int64_t expires_at = 0;
	bool single_use = false, online = true;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*created = false;
	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_RK_GET);
	bind_text(s, 1, regkey_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_id(vpc_id, col_text(s, 1));
		single_use = sqlite3_column_int(s, 2);
		expires_at = sqlite3_column_int64(s, 3);
		copy_id(used_by, col_text(s, 5));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? -ENOENT : db_error(st, "reg-key get");
		goto err;
	}
	rc = 0;
	if (expires_at && expires_at <= now)
		rc = -EKEYEXPIRED;
	else if ((spec->set & DEV_VPC_ID) && strcmp(spec->vpc_id, vpc_id))
		rc = -EXDEV;
	else if (!(v = vpc_find(st, vpc_id)))
		rc = -ENOENT;
	if (rc < 0 || (rc = device_by_key(st, vpc_id, spec->public_key_b64, id, &online)) < 0)
		goto err;
	/* a used single-use key still lets its own device register again */
	if (single_use && used_by[0] && strcmp(used_by, id)) {
		rc = -EKEYREVOKED;
		goto err;
	}
	if (id[0]) {
		/* idempotent: the same device, address and id; only a new
		 * token (and a new revision if it comes back online) */
		int64_t rev = 0;
		s = stmt(st, S_DEV_SET_TOKEN);
		bind_text(s, 1, id);
		sqlite3_bind_blob(s, 2, token_hash, TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 3, now);
		if ((rc = exec(st, s)) < 0 || (!online && (rc = set_online(st, id, vpc_id, true, now, &rev)) < 0) ||
		    (rc = txn_commit(st)) < 0)
			goto err;
	} else {
		uuid_generate(id);
		if ((rc = insert_device(st, v, id, spec, token_hash, now)) < 0)
			goto err;
		if (single_use) {
			s = stmt(st, S_RK_SET_USED);
			bind_text(s, 1, regkey_id);
			bind_text(s, 2, id);
			rc = exec(st, s);
		}
		if (rc < 0 || (rc = txn_commit(st)) < 0)
			goto err;
		*created = true;
	}
	return store_device_get(st, id, out, NULL);
err:
	txn_rollback(st);
	return rc;
}

int store_device_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], struct principal *out)
{
	sqlite3_stmt *s = stmt(st, S_DEV_BY_TOKEN);
	int rc;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_blob(s, 1, hash, TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && hash_matches(s, 3, hash)) {
		out->scope = TOKEN_DEVICE;
		copy_id(out->id, col_text(s, 0));
		copy_id(out->vpc_id, col_text(s, 1));
		out->last_seen = sqlite3_column_int64(s, 2);
		out->online = sqlite3_column_int(s, 4);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, "device auth");
	return out->id[0] ? 0 : -ENOENT;
}

static bool same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int store_device_patch(struct store *st, const char *id, const struct device_spec *spec, int64_t now,
		       json_t **out)
{
	char vpc_id[UUID_STRLEN], *hostname = NULL, *endpoints = NULL, *nat = NULL;
	bool relay = false, symmetric_nat = false, changed = false;
	int64_t rev = 0;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_DEV_GET);
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_id(vpc_id, col_text(s, DC_VPC_ID));
		hostname = strdup(spec->set & DEV_HOSTNAME ? spec->hostname : col_text(s, DC_HOSTNAME));
		endpoints = spec->set & DEV_ENDPOINTS ? json_text(spec->endpoints) : strdup(col_text(s, DC_ENDPOINTS));
		if (spec->set & DEV_NAT)
			nat = json_text(spec->nat);
		else if (sqlite3_column_type(s, DC_NAT) != SQLITE_NULL)
			nat = strdup(col_text(s, DC_NAT));
		relay = spec->set & DEV_RELAY ? spec->relay : sqlite3_column_int(s, DC_RELAY);
		symmetric_nat = spec->set & DEV_SYMMETRIC_NAT ? spec->symmetric_nat
							       : sqlite3_column_int(s, DC_SYMMETRIC_NAT);
		changed = strcmp(hostname ? hostname : "", col_text(s, DC_HOSTNAME)) ||
			  !same_text(endpoints, col_text(s, DC_ENDPOINTS)) ||
			  !same_text(nat, sqlite3_column_type(s, DC_NAT) == SQLITE_NULL ? NULL : col_text(s, DC_NAT)) ||
			  relay != (bool)sqlite3_column_int(s, DC_RELAY) ||
			  symmetric_nat != (bool)sqlite3_column_int(s, DC_SYMMETRIC_NAT);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? -ENOENT : db_error(st, "device get");
		goto err;
	}
	if (!hostname || !endpoints || ((spec->set & DEV_NAT) && spec->nat && !nat)) {
		rc = -ENOMEM;
		goto err;
	}
	if (!changed) {
		/* the same report again: nobody needs to hear of it */
		s = stmt(st, S_DEV_TOUCH);
		bind_text(s, 1, id);
		sqlite3_bind_int64(s, 2, now);
	} else {
		if ((rc = bump(st, vpc_id, &rev)) < 0)
			goto err;
		s = stmt(st, S_DEV_UPDATE);
		bind_text(s, 1, id);
		bind_text(s, 2, hostname);
		bind_text(s, 3, endpoints);
		sqlite3_bind_int(s, 4, relay);
		sqlite3_bind_int(s, 5, symmetric_nat);
		bind_json(s, 6, nat);
		sqlite3_bind_int64(s, 7, rev);
		sqlite3_bind_int64(s, 8, now);
	}
	if ((rc = exec(st, s)) < 0 || (rc = txn_commit(st)) < 0)
		goto err;
	free(hostname);
	free(endpoints);
	free(nat);
	return store_device_get(st, id, out, NULL);
err:
	txn_rollback(st);
	free(hostname);
	free(endpoints);
	free(nat);
	return rc;
}

int store_device_delete(struct store *st, const char *id, int64_t now, char vpc_id[UUID_STRLEN])
{
	struct vpc_state *v;
	uint64_t index = 0;
	int64_t rev;
	sqlite3_stmt *s;
	int rc;

	if ((rc = txn_begin(st)) < 0)
		return rc;
	s = stmt(st, S_DEV_GET);
	bind_text(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		copy_id(vpc_id, col_text(s, DC_VPC_ID));
		index = (uint64_t)sqlite3_column_int64(s, DC_IP_INDEX);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? -ENOENT : db_error(st, "device get");
		goto err;
	}
	if ((rc = bump(st, vpc_id, &rev)) < 0)
		goto err;
	s = stmt(st, S_DEV_DELETE);
	bind_text(s, 1, id);
	if ((rc = exec(st, s)) < 0)
		goto err;
	/* the tombstone tells long-pollers that the device left */
	s = stmt(st, S_TOMB_INSERT);
	bind_text(s, 1, vpc_id);
	bind_text(s, 2, id);
	sqlite3_bind_int64(s, 3, rev);
	sqlite3_bind_int64(s, 4, now);
	if ((rc = exec(st, s)) < 0)
		goto err;
	if ((v = vpc_find(st, vpc_id)) && ipam_release(&v->ipam, index) == 0)
		journal(st, U_RELEASE, v, (int64_t)index);
	if ((rc = txn_commit(st)) < 0)
		goto err;
	return 0;
err:
	txn_rollback(st);
	return rc;
}

int store_device_touch(struct store *st, const struct principal *who, int64_t now)
{
	sqlite3_stmt *s;
	int64_t rev;
	int rc;

	if ((rc = txn_begin(st)) < 0)
		return rc;
	if (who->online) {
		s = stmt(st, S_DEV_TOUCH);
		bind_text(s, 1, who->id);
		sqlite3_bind_int64(s, 2, now);
		rc = exec(st, s);
	} else {
		rc = set_online(st, who->id, who->vpc_id, true, now, &rev);
	}
	if (rc < 0 || (rc = txn_commit(st)) < 0) {
		txn_rollback(st);
		return rc;
	}
	return !who->online;
}

/* the rows of a query of DEVICE_COLS as an array */
static int device_rows(struct store *st, sqlite3_stmt *s, json_t **out)
{
	return rows_json(st, s, device_json, "device list", out);
}

int store_device_changes(struct store *st, const char *vpc_id, int64_t since, json_t **devices,
			 json_t **deleted, bool *full)
{
	const struct vpc_state *v = vpc_find(st, vpc_id);
	sqlite3_stmt *s = stmt(st, S_DEV_CHANGES);
	int rc;

	*devices = *deleted = NULL;
	if (!v)
		return -ENOENT;
	/* a since from the future, or from before the oldest tombstone kept,
	 * cannot be answered with changes: the client starts over */
	*full = since == 0 || since > v->revision || since < v->compacted;
	if (*full)
		since = 0;
	bind_text(s, 1, vpc_id);
	sqlite3_bind_int64(s, 2, since);
	if ((rc = device_rows(st, s, devices)) < 0)
		return rc;
	if (!(*deleted = json_array())) {
		rc = -ENOMEM;
		goto err;
	}
	if (since == 0)
		return 0;
	s = stmt(st, S_TOMB_SINCE);
	bind_text(s, 1, vpc_id);
	sqlite3_bind_int64(s, 2, since);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(*deleted, json_string(col_text(s, 0)));
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	rc = db_error(st, "tombstones");
err:
	json_decref(*devices);
	json_decref(*deleted);
	*devices = *deleted = NULL;
	return rc;
}

int store_device_list(struct store *st, json_t **out)
{
	return device_rows(st, stmt(st, S_DEV_ALL), out);
}

/* rows of (text, text or integer) from a query with one integer parameter,
 * collected first so that the statement is done before the writes */
struct pair {
	char a[UUID_STRLEN];
	char b[UUID_STRLEN];
	int64_t num;
};

static int collect(struct store *st, enum stmt_id id, int64_t param, struct pair **out, size_t *n)
{
	sqlite3_stmt *s = stmt(st, id);
	struct pair *list = NULL, *grown;
	size_t cap = 0;
	int step;

	*n = 0;
	sqlite3_bind_int64(s, 1, param);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(grown = realloc(list, cap * sizeof(*list)))) {
				sqlite3_reset(s);
				free(list);
				return -ENOMEM;
			}
			list = grown;
		}
		copy_id(list[*n].a, col_text(s, 0));
		copy_id(list[*n].b, col_text(s, 1));
		list[*n].num = sqlite3_column_int64(s, 1);
		(*n)++;
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE) {
		free(list);
		return db_error(st, sqlite3_sql(s));
	}
	*out = list;
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
	if ((rc = txn_begin(st)) < 0)
		goto out;
	/* a revision each */
	rc = undo_reserve(st, n);
	for (i = 0; i < n && rc == 0; i++)
		rc = set_online(st, list[i].a, list[i].b, false, 0, &list[i].num);
	if (rc < 0 || (rc = txn_commit(st)) < 0) {
		txn_rollback(st);
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
	sqlite3_stmt *s;
	size_t n, i;
	int rc;

	if ((rc = collect(st, S_TOMB_EXPIRED, cutoff, &list, &n)) < 0 || n == 0)
		goto out;
	if ((rc = txn_begin(st)) < 0)
		goto out;
	/* a horizon each */
	rc = undo_reserve(st, n);
	for (i = 0; i < n && rc == 0; i++) {
		struct vpc_state *v = vpc_find(st, list[i].a);
		s = stmt(st, S_TOMB_PRUNE);
		bind_text(s, 1, list[i].a);
		sqlite3_bind_int64(s, 2, list[i].num);
		if ((rc = exec(st, s)) < 0)
			break;
		s = stmt(st, S_VPC_SET_COMPACTED);
		bind_text(s, 1, list[i].a);
		sqlite3_bind_int64(s, 2, list[i].num);
		if ((rc = exec(st, s)) == 0 && v && list[i].num > v->compacted) {
			journal(st, U_COMPACTED, v, v->compacted);
			v->compacted = list[i].num;
		}
	}
	if (rc < 0 || (rc = txn_commit(st)) < 0) {
		txn_rollback(st);
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

int store_housekeeping(struct store *st, int64_t now, const struct store_limits *lim,
		       store_changed_fn changed, void *arg)
{
	int rc;

	if (st->batch != BATCH_NONE)
		return -EBUSY;
	if ((rc = mark_offline(st, now - lim->offline_after_s, changed, arg)) < 0)
		return rc;
	return prune_tombstones(st, now - lim->tombstone_ttl_s);
}
