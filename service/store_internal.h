/* store_internal: what the files of the store share, and nothing else
 * includes. store.c opens and closes the store and keeps each VPC's memory
 * state; store_schema.c holds the schema of each engine (db.h), its
 * migrations and every SQL statement; store_txn.c runs transactions, group commit and the memory
 * journal that undoes them; store_vpc.c, store_regkey.c and store_device.c
 * are the resources; store_presence.c is housekeeping (devices gone quiet,
 * old tombstones). */
#ifndef NATMESH_SVC_STORE_INTERNAL_H
#define NATMESH_SVC_STORE_INTERNAL_H

#include "db.h"

#include "ipam.h"
#include "store.h"
#include "vec.h"

#define DEVICE_COLS "id, vpc_id, public_key, hostname, os, endpoints, tunnel_ip, relay," \
		    " symmetric_nat, nat, revision, last_seen, online, security_group_id, enforces_policy"
enum { DC_ID, DC_VPC_ID, DC_PUBLIC_KEY, DC_HOSTNAME, DC_OS, DC_ENDPOINTS, DC_TUNNEL_IP, DC_RELAY,
       DC_SYMMETRIC_NAT, DC_NAT, DC_REVISION, DC_LAST_SEEN, DC_ONLINE, DC_SECURITY_GROUP_ID,
       DC_ENFORCES_POLICY, DC_IP_INDEX /* S_DEV_GET only */ };
#define SECGROUP_COLS "id, vpc_id, name, description, inbound_rules, outbound_rules, revision, created_at," \
		      " is_default"
enum { GC_ID, GC_VPC_ID, GC_NAME, GC_DESCRIPTION, GC_INBOUND, GC_OUTBOUND, GC_REVISION, GC_CREATED_AT,
       GC_IS_DEFAULT };
#define REGKEY_COLS "id, vpc_id, single_use, expires_at, description, used_by, relay, max_devices," \
		    " registrations"
enum { RC_ID, RC_VPC_ID, RC_SINGLE_USE, RC_EXPIRES_AT, RC_DESCRIPTION, RC_USED_BY, RC_RELAY, RC_MAX_DEVICES,
       RC_REGISTRATIONS };

/* the statements prepared at open (their text is in store_schema.c) */
enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_VPC_INSERT, S_VPC_GET, S_VPC_LIST, S_VPC_DELETE, S_VPC_BUMP, S_VPC_NAME_TAKEN,
	S_VPC_DEVICES,
	S_RK_INSERT, S_RK_GET, S_RK_LIST, S_RK_DELETE, S_RK_BY_HASH, S_RK_COUNT_USE,
	S_DEV_INSERT, S_DEV_GET, S_DEV_BY_KEY, S_DEV_BY_TOKEN, S_DEV_SET_TOKEN, S_DEV_UPDATE,
	S_DEV_DELETE, S_DEV_TOUCH, S_DEV_CHANGES, S_DEV_ALL, S_DEV_INDICES, S_DEV_SET_ONLINE,
	S_DEV_SILENT,
	S_TOMB_INSERT, S_TOMB_SINCE, S_TOMB_EXPIRED, S_TOMB_PRUNE, S_VPC_SET_COMPACTED,
	S_SG_INSERT, S_SG_GET, S_SG_LIST, S_SG_LIST_VPC, S_SG_UPDATE, S_SG_DELETE, S_SG_BY_NAME,
	S_SG_DEFAULT, S_SG_USERS, S_VPC_SET_POLICY, S_VPC_POLICY, S_DEV_MEMBERS, S_SG_ADDRESSES, S_SG_COUNT,
	S_COUNT
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
/* the most rows one housekeeping pass takes (devices gone quiet, VPCs with
 * expired tombstones); the rest wait for the next pass, a second later, so
 * a mass outage of 40,000 devices is published within ten seconds */
#define STORE_HOUSEKEEPING_MAX 4096
/* The most entries the journal of one transaction holds (24 bytes each):
 * housekeeping needs one per row it takes, a write of the API at most three
 * (a registration's address and revision, its token's touch), and a batch of
 * the API holds the writes of one round, a few hundred under load, more only
 * if thousands of uploads end in the same round. A write past it fails
 * (-ENOSPC) and is rolled back alone. */
#define UNDO_MAX (1 << 18)

struct store {
	struct db *db;
	char shown[DB_TARGET_STRLEN];	/* the database, for logs (no password) */
	struct db_stmt *stmt[S_COUNT];
	struct vpc_state *vpcs;
	enum batch_state batch;
	unsigned batch_writes;
	/* struct undo: the memory changes of the open transaction, undone in
	 * reverse on rollback */
	struct vec undo;
	size_t mark;		/* the journal's length when the current write began */
	struct store_stats stats;
};

/* store.c: statements and rows */
/* logs what failed with SQLite's message; -EIO */
int store_db_error(struct store *st, const char *what);
/* the statement, reset and unbound, ready for binds */
struct db_stmt *store_stmt(struct store *st, enum stmt_id id);
/* runs a statement that returns no rows: 0, -EEXIST (a constraint), -EIO */
int store_exec(struct store *st, struct db_stmt *s);
void store_bind_text(struct db_stmt *s, int i, const char *v);
/* the column's text, "" for NULL */
const char *store_col_text(struct db_stmt *s, int i);
void store_copy_id(char out[UUID_STRLEN], const char *s);
json_t *store_time_or_null(int64_t t);
/* every row of s, each made into JSON by row, as an array */
typedef json_t *(*row_json_fn)(struct db_stmt *s);
int store_rows_json(struct store *st, struct db_stmt *s, row_json_fn row, const char *what, json_t **out);
/* the one row of s whose first parameter is id, as JSON: 0, -ENOENT, -ENOMEM
 * or the database's error (logged with what) */
int store_row_json(struct store *st, struct db_stmt *s, const char *id, row_json_fn row, const char *what,
		   json_t **out);

/* store.c: each VPC's memory state */
struct vpc_state *store_vpc_find(const struct store *st, const char *id);
/* store_vpc_find, or else the VPC from the database (made by another
 * meshsvc); NULL when it is in neither */
struct vpc_state *store_vpc_load(struct store *st, const char *id);
/* memory state of a VPC that exists in the database */
int store_vpc_state_add(struct store *st, const char *id, const char *cidr_text, int64_t revision,
			struct vpc_state **out);
void store_vpc_state_unlink(struct store *st, struct vpc_state *v);
void store_vpc_state_free(struct vpc_state *v);
/* ipam_alloc in the VPC; when it is full, its addresses read again first */
int store_ipam_alloc(struct store *st, struct vpc_state *v, uint64_t *index, union sockaddr_any *addr);

/* store_schema.c */
/* creates the schema, upgrades an older one, refuses a newer one (-EPROTO) */
int store_schema_setup(struct store *st, const char *path);
/* prepares every statement of enum stmt_id into st->stmt */
int store_schema_prepare(struct store *st);
/* runs fixed SQL text (PRAGMAs cannot take bound parameters) */
int store_pragma(struct store *st, const char *text);

/* store_txn.c: each write runs between store_txn_begin and store_txn_commit,
 * or store_txn_rollback when it or its commit fails */
int store_txn_begin(struct store *st);
int store_txn_commit(struct store *st);
void store_txn_rollback(struct store *st);
/* room for n more journal entries, made before a write changes anything */
int store_undo_reserve(struct store *st, size_t n);
void store_journal(struct store *st, enum undo_kind kind, struct vpc_state *v, int64_t value);
/* undoes the journal back to its length to, newest first */
void store_undo_to(struct store *st, size_t to);

/* store_vpc.c: the VPC's next revision, inside the caller's transaction, in
 * the database and in memory */
int store_bump(struct store *st, const char *vpc_id, int64_t *rev);

/* store_secgroup.c: a new policy in the VPC (a group or a device's group
 * changed): the VPC's next revision, recorded as its policy revision */
int store_policy_bump(struct store *st, const char *vpc_id, int64_t *rev);
/* inserts the VPC's default group, inside the caller's transaction */
int store_secgroup_insert_default(struct store *st, const char *vpc_id, int64_t now);
/* the VPC's default group's id ("" if none) */
int store_secgroup_default(struct store *st, const char *vpc_id, char id[UUID_STRLEN]);

/* store_regkey.c: a constant-time comparison of column col with hash */
bool store_hash_matches(struct db_stmt *s, int col, const uint8_t hash[TOKEN_HASH_BYTES]);

/* store_device.c: publishes a device's presence inside the caller's
 * transaction (a new revision); last_seen moves forward to seen if later */
int store_set_online(struct store *st, const char *id, const char *vpc_id, bool online, int64_t seen,
		     int64_t *rev);

#endif
