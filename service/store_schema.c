/* store_schema: the store's SQL. The schema (version SCHEMA_VERSION) and the
 * steps that upgrade an older database to it, and the text of every statement
 * the store prepares at open; SQL runs only through these. */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "store_internal.h"
#include "log.h"

/* 1: the first release; 2: vpcs.compacted, devices.online, tombstones.deleted_at;
 * 3: reg_keys.relay (a key that mints relays), reg_keys.max_devices and
 * reg_keys.registrations (the quota of devices a key registers, and its use);
 * 4: security_groups (issue 16), devices.security_group_id and
 * devices.enforces_policy, vpcs.policy_revision; every VPC gets its default
 * group, and every device is put in it */
#define SCHEMA_VERSION 4
#define STR_(x) #x
#define STR(x) STR_(x)
#define SET_SCHEMA_VERSION "PRAGMA user_version = " STR(SCHEMA_VERSION)

/* a VPC's security groups; rules are JSON arrays as lib/policy writes them,
 * their groups by id */
#define SECURITY_GROUPS_TABLE \
	"CREATE TABLE IF NOT EXISTS security_groups (" \
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE," \
	"  name TEXT NOT NULL, description TEXT NOT NULL, inbound_rules TEXT NOT NULL," \
	"  outbound_rules TEXT NOT NULL, revision INTEGER NOT NULL, created_at INTEGER NOT NULL," \
	"  is_default INTEGER NOT NULL DEFAULT 0, UNIQUE (vpc_id, name)) STRICT"
/* a random version 4 UUID (RFC 9562), in SQL, for the default groups made by the upgrade */
#define SQL_UUID4 \
	"lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||" \
	" substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) ||" \
	" substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS vpcs ("
	"  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ipv4_cidr TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL, revision INTEGER NOT NULL,"
	"  compacted INTEGER NOT NULL DEFAULT 0, policy_revision INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE IF NOT EXISTS reg_keys ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	"  secret_hash BLOB NOT NULL UNIQUE, single_use INTEGER NOT NULL, expires_at INTEGER,"
	"  description TEXT NOT NULL, created_at INTEGER NOT NULL, used_by TEXT,"
	"  relay INTEGER NOT NULL DEFAULT 0, max_devices INTEGER NOT NULL DEFAULT " STR(REGKEY_MAX_DEVICES_DEFAULT) ","
	"  registrations INTEGER NOT NULL DEFAULT 0) STRICT;"
	"CREATE TABLE IF NOT EXISTS devices ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id),"
	"  public_key TEXT NOT NULL, hostname TEXT NOT NULL, os TEXT NOT NULL,"
	"  endpoints TEXT NOT NULL, ip_index INTEGER NOT NULL, tunnel_ip TEXT NOT NULL,"
	"  relay INTEGER NOT NULL, symmetric_nat INTEGER NOT NULL, nat TEXT,"
	"  revision INTEGER NOT NULL, created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	"  token_hash BLOB NOT NULL UNIQUE, online INTEGER NOT NULL DEFAULT 1,"
	"  security_group_id TEXT NOT NULL DEFAULT '', enforces_policy INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE (vpc_id, public_key), UNIQUE (vpc_id, ip_index), UNIQUE (vpc_id, revision)) STRICT;"
	"CREATE TABLE IF NOT EXISTS tombstones ("
	"  vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE, device_id TEXT NOT NULL,"
	"  revision INTEGER NOT NULL, deleted_at INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (vpc_id, revision)) STRICT;"
	"CREATE INDEX IF NOT EXISTS devices_presence ON devices (online, last_seen);"
	SECURITY_GROUPS_TABLE ";"
	"CREATE INDEX IF NOT EXISTS devices_group ON devices (security_group_id);";

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
	"PRAGMA user_version = 2",
};

/* from version 2: no key made before mints relays (the admin grants them per
 * device now); every key gets the default quota, its past registrations
 * uncounted but for a used single-use key's one */
static const char *const migrate_v2[] = {
	"ALTER TABLE reg_keys ADD COLUMN relay INTEGER NOT NULL DEFAULT 0",
	("ALTER TABLE reg_keys ADD COLUMN max_devices INTEGER NOT NULL DEFAULT " STR(REGKEY_MAX_DEVICES_DEFAULT)),
	"ALTER TABLE reg_keys ADD COLUMN registrations INTEGER NOT NULL DEFAULT 0",
	"UPDATE reg_keys SET registrations = 1 WHERE used_by IS NOT NULL",
	"PRAGMA user_version = 3",
};

/* from version 3: security groups; each VPC gets its default group (allows
 * everything both ways, so the VPC behaves as before) and its devices join it */
static const char *const migrate_v3[] = {
	SECURITY_GROUPS_TABLE,
	"ALTER TABLE vpcs ADD COLUMN policy_revision INTEGER NOT NULL DEFAULT 0",
	"ALTER TABLE devices ADD COLUMN security_group_id TEXT NOT NULL DEFAULT ''",
	"ALTER TABLE devices ADD COLUMN enforces_policy INTEGER NOT NULL DEFAULT 1",
	("INSERT INTO security_groups (id, vpc_id, name, description, inbound_rules, outbound_rules, revision,"
	 " created_at, is_default) SELECT " SQL_UUID4 ", id, '" SECGROUP_DEFAULT_NAME "', '" SECGROUP_DEFAULT_DESCRIPTION "',"
	 " '" SECGROUP_ALLOW_ALL "', '" SECGROUP_ALLOW_ALL "', 1, ?1, 1 FROM vpcs"),
	("UPDATE devices SET security_group_id = (SELECT g.id FROM security_groups g"
	 " WHERE g.vpc_id = devices.vpc_id AND g.is_default)"),
	"CREATE INDEX IF NOT EXISTS devices_group ON devices (security_group_id)",
	SET_SCHEMA_VERSION,
};

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = NULL,	/* the dialect's begin */
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT one_write",
	[S_RELEASE] = "RELEASE one_write",
	[S_ROLLBACK_TO] = "ROLLBACK TO one_write",
	[S_VPC_INSERT] = "INSERT INTO vpcs (id, name, ipv4_cidr, created_at, revision) VALUES (?1, ?2, ?3, ?4, 0)",
	[S_VPC_GET] = "SELECT id, name, ipv4_cidr, created_at, revision, compacted FROM vpcs WHERE id = ?1",
	[S_VPC_LIST] = "SELECT id, name, ipv4_cidr, created_at, revision, compacted FROM vpcs"
		       " ORDER BY created_at, id",
	[S_VPC_DELETE] = "DELETE FROM vpcs WHERE id = ?1",
	[S_VPC_BUMP] = "UPDATE vpcs SET revision = revision + 1 WHERE id = ?1 RETURNING revision",
	[S_VPC_NAME_TAKEN] = "SELECT 1 FROM vpcs WHERE name = ?1",
	[S_VPC_DEVICES] = "SELECT 1 FROM devices WHERE vpc_id = ?1 LIMIT 1",
	[S_RK_INSERT] = "INSERT INTO reg_keys (id, vpc_id, secret_hash, single_use, expires_at,"
			" description, created_at, relay, max_devices) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_RK_GET] = "SELECT " REGKEY_COLS " FROM reg_keys WHERE id = ?1",
	[S_RK_LIST] = "SELECT " REGKEY_COLS " FROM reg_keys ORDER BY created_at, id",
	[S_RK_DELETE] = "DELETE FROM reg_keys WHERE id = ?1",
	[S_RK_BY_HASH] = "SELECT id, vpc_id, expires_at, secret_hash FROM reg_keys WHERE secret_hash = ?1",
	/* checked again as it is written: another meshsvc may have used the key
	 * since it was read (the row lock makes the second writer wait and
	 * re-read it) */
	[S_RK_COUNT_USE] = "UPDATE reg_keys SET registrations = registrations + 1,"
			   " used_by = CASE WHEN single_use <> 0 THEN ?2 ELSE used_by END WHERE id = ?1"
			   " AND registrations < max_devices AND (single_use = 0 OR used_by IS NULL)",
	[S_DEV_INSERT] = "INSERT INTO devices (id, vpc_id, public_key, hostname, os, endpoints,"
			 " ip_index, tunnel_ip, relay, symmetric_nat, nat, revision, created_at,"
			 " last_seen, token_hash, security_group_id, enforces_policy) VALUES (?1, ?2, ?3, ?4, ?5,"
			 " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?14, ?15, ?16)"
			 " ON CONFLICT (vpc_id, ip_index) DO NOTHING",
	[S_DEV_GET] = "SELECT " DEVICE_COLS ", ip_index FROM devices WHERE id = ?1",
	[S_DEV_BY_KEY] = "SELECT id, online, relay FROM devices WHERE vpc_id = ?1 AND public_key = ?2",
	[S_DEV_BY_TOKEN] = "SELECT id, vpc_id, last_seen, token_hash, online FROM devices WHERE token_hash = ?1",
	[S_DEV_SET_TOKEN] = "UPDATE devices SET token_hash = ?2, last_seen = ?3,"
			    " enforces_policy = coalesce(?4, enforces_policy) WHERE id = ?1",
	[S_DEV_UPDATE] = "UPDATE devices SET hostname = ?2, endpoints = ?3, relay = ?4,"
			 " symmetric_nat = ?5, nat = ?6, revision = ?7, last_seen = ?8, security_group_id = ?9"
			 " WHERE id = ?1",
	[S_DEV_DELETE] = "DELETE FROM devices WHERE id = ?1",
	[S_DEV_TOUCH] = "UPDATE devices SET last_seen = ?2 WHERE id = ?1",
	[S_DEV_CHANGES] = "SELECT " DEVICE_COLS " FROM devices WHERE vpc_id = ?1 AND revision > ?2"
			  " ORDER BY revision",
	[S_DEV_ALL] = "SELECT " DEVICE_COLS " FROM devices ORDER BY vpc_id, ip_index",
	[S_DEV_INDICES] = "SELECT ip_index FROM devices WHERE vpc_id = ?1",
	[S_DEV_SET_ONLINE] = "UPDATE devices SET online = ?2, revision = ?3,"
			     " last_seen = CASE WHEN last_seen > ?4 THEN last_seen ELSE ?4 END"
			     " WHERE id = ?1",
	[S_DEV_SILENT] = "SELECT id, vpc_id FROM devices WHERE online = 1 AND last_seen <= ?1"
			 " ORDER BY vpc_id, revision",
	[S_TOMB_INSERT] = "INSERT INTO tombstones (vpc_id, device_id, revision, deleted_at)"
			  " VALUES (?1, ?2, ?3, ?4)",
	[S_TOMB_SINCE] = "SELECT device_id FROM tombstones WHERE vpc_id = ?1 AND revision > ?2"
			 " ORDER BY revision",
	[S_TOMB_EXPIRED] = "SELECT vpc_id, max(revision) FROM tombstones WHERE deleted_at <= ?1 GROUP BY vpc_id",
	[S_TOMB_PRUNE] = "DELETE FROM tombstones WHERE vpc_id = ?1 AND revision <= ?2",
	[S_VPC_SET_COMPACTED] = "UPDATE vpcs SET compacted = CASE WHEN compacted > ?2 THEN compacted ELSE ?2 END"
				" WHERE id = ?1",
	[S_SG_INSERT] = "INSERT INTO security_groups (" SECGROUP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_SG_GET] = "SELECT " SECGROUP_COLS " FROM security_groups WHERE id = ?1",
	[S_SG_LIST] = "SELECT " SECGROUP_COLS " FROM security_groups ORDER BY vpc_id, created_at, name",
	[S_SG_LIST_VPC] = "SELECT " SECGROUP_COLS " FROM security_groups WHERE vpc_id = ?1 ORDER BY created_at, name",
	[S_SG_UPDATE] = "UPDATE security_groups SET name = ?2, description = ?3, inbound_rules = ?4,"
			" outbound_rules = ?5, revision = ?6 WHERE id = ?1",
	[S_SG_DELETE] = "DELETE FROM security_groups WHERE id = ?1",
	[S_SG_BY_NAME] = "SELECT id FROM security_groups WHERE vpc_id = ?1 AND name = ?2",
	[S_SG_DEFAULT] = "SELECT id FROM security_groups WHERE vpc_id = ?1 AND is_default <> 0",
	[S_SG_USERS] = "SELECT id FROM devices WHERE security_group_id = ?1 ORDER BY id LIMIT ?2",
	[S_VPC_SET_POLICY] = "UPDATE vpcs SET policy_revision = ?2 WHERE id = ?1",
	[S_VPC_POLICY] = "SELECT policy_revision FROM vpcs WHERE id = ?1",
	[S_DEV_MEMBERS] = "SELECT id, tunnel_ip, security_group_id, relay, revision FROM devices WHERE vpc_id = ?1"
			  " ORDER BY ip_index",
	[S_SG_COUNT] = "SELECT count(*) FROM security_groups WHERE vpc_id = ?1",
	[S_SG_ADDRESSES] = "SELECT tunnel_ip FROM devices WHERE security_group_id = ?1 ORDER BY ip_index",
};

/* What the engines' SQL differs in: the DDL (SQLite's STRICT INTEGER/BLOB,
 * PostgreSQL's BIGINT/BYTEA; flags are integers 0/1 in both, so every
 * statement compares them portably), how a writer begins (SQLite takes the
 * write lock at BEGIN IMMEDIATE), where the schema version lives (SQLite's
 * user_version, PostgreSQL's natmesh_schema table) and the upgrades: each
 * engine lists the steps from each of its older versions. PostgreSQL's first
 * schema is version 4, so it has no upgrade yet; the next version adds its
 * steps to both lists. */
struct dialect {
	const char *begin, *schema, *set_version;
	int first_version;
	const char *const *upgrade[SCHEMA_VERSION];	/* from version i to i + 1 */
	size_t steps[SCHEMA_VERSION];
};

#define PG_FLAG "INTEGER NOT NULL"

static const char pg_schema[] =
	"CREATE TABLE IF NOT EXISTS vpcs ("
	"  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ipv4_cidr TEXT NOT NULL,"
	"  created_at BIGINT NOT NULL, revision BIGINT NOT NULL,"
	"  compacted BIGINT NOT NULL DEFAULT 0, policy_revision BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS reg_keys ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	"  secret_hash BYTEA NOT NULL UNIQUE, single_use " PG_FLAG ", expires_at BIGINT,"
	"  description TEXT NOT NULL, created_at BIGINT NOT NULL, used_by TEXT,"
	"  relay " PG_FLAG " DEFAULT 0, max_devices BIGINT NOT NULL DEFAULT " STR(REGKEY_MAX_DEVICES_DEFAULT) ","
	"  registrations BIGINT NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS devices ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id),"
	"  public_key TEXT NOT NULL, hostname TEXT NOT NULL, os TEXT NOT NULL,"
	"  endpoints TEXT NOT NULL, ip_index BIGINT NOT NULL, tunnel_ip TEXT NOT NULL,"
	"  relay " PG_FLAG ", symmetric_nat " PG_FLAG ", nat TEXT,"
	"  revision BIGINT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL,"
	"  token_hash BYTEA NOT NULL UNIQUE, online " PG_FLAG " DEFAULT 1,"
	"  security_group_id TEXT NOT NULL DEFAULT '', enforces_policy " PG_FLAG " DEFAULT 1,"
	"  UNIQUE (vpc_id, public_key), UNIQUE (vpc_id, ip_index), UNIQUE (vpc_id, revision));"
	"CREATE TABLE IF NOT EXISTS tombstones ("
	"  vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE, device_id TEXT NOT NULL,"
	"  revision BIGINT NOT NULL, deleted_at BIGINT NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (vpc_id, revision));"
	"CREATE INDEX IF NOT EXISTS devices_presence ON devices (online, last_seen);"
	"CREATE TABLE IF NOT EXISTS security_groups ("
	"  id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL, description TEXT NOT NULL, inbound_rules TEXT NOT NULL,"
	"  outbound_rules TEXT NOT NULL, revision BIGINT NOT NULL, created_at BIGINT NOT NULL,"
	"  is_default " PG_FLAG " DEFAULT 0, UNIQUE (vpc_id, name));"
	"CREATE INDEX IF NOT EXISTS devices_group ON devices (security_group_id);"
	/* every replica hears of a VPC's new revision when it commits (one
	 * notice per VPC and transaction: PostgreSQL folds equal ones) */
	"CREATE OR REPLACE FUNCTION natmesh_vpc_changed() RETURNS trigger LANGUAGE plpgsql AS"
	"  $$ BEGIN PERFORM pg_notify('" STORE_VPC_CHANNEL "', NEW.id); RETURN NULL; END $$;"
	"CREATE OR REPLACE TRIGGER vpcs_changed AFTER UPDATE OF revision ON vpcs"
	"  FOR EACH ROW EXECUTE FUNCTION natmesh_vpc_changed();";

static const struct dialect dialects[] = {
	[DB_SQLITE] = {
		.begin = "BEGIN IMMEDIATE", .schema = schema, .set_version = SET_SCHEMA_VERSION,
		.first_version = 1,
		.upgrade = { [1] = migrate_v1, [2] = migrate_v2, [3] = migrate_v3 },
		.steps = { [1] = sizeof(migrate_v1) / sizeof(migrate_v1[0]),
			   [2] = sizeof(migrate_v2) / sizeof(migrate_v2[0]),
			   [3] = sizeof(migrate_v3) / sizeof(migrate_v3[0]) },
	},
	[DB_PG] = {
		.begin = "BEGIN", .schema = pg_schema,
		.set_version = "DELETE FROM natmesh_schema; INSERT INTO natmesh_schema VALUES (" STR(SCHEMA_VERSION) ")",
		.first_version = SCHEMA_VERSION,
	},
};

static const struct dialect *dialect(struct store *st)
{
	return &dialects[db_engine(st->db)];
}

int store_pragma(struct store *st, const char *text)
{
	/* fixed text only: PRAGMAs cannot take bound parameters */
	return db_exec(st->db, text) < 0 ? -EIO : 0;
}

/* one integer from a statement without parameters (a version, a count) */
static int query_int(struct store *st, const char *text, int64_t *out)
{
	struct db_stmt *s;
	int rc;

	*out = 0;
	if (db_prepare(st->db, text, &s) < 0)
		return -EIO;
	rc = db_step(s);
	if (rc == DB_ROW)
		*out = db_column_int64(s, 0);
	if (rc != DB_ROW && rc != DB_DONE)
		store_db_error(st, text);
	db_finalize(s);
	return rc == DB_ROW || rc == DB_DONE ? 0 : -EIO;
}

/* runs one statement of an upgrade; ?1 is the time of the upgrade, ?2 the
 * default online window */
static int migrate_step(struct store *st, const char *text, int64_t now)
{
	struct db_stmt *s;
	int rc;

	if (db_prepare(st->db, text, &s) < 0)
		return -EIO;
	if (db_param_count(s) >= 1)
		db_bind_int64(s, 1, now);
	if (db_param_count(s) >= 2)
		db_bind_int64(s, 2, DEVICE_ONLINE_WINDOW_S);
	rc = db_step(s);
	if (rc != DB_DONE && rc != DB_ROW)
		store_db_error(st, text);
	db_finalize(s);
	return rc == DB_DONE || rc == DB_ROW ? 0 : -EIO;
}

/* runs the steps of one upgrade inside one transaction */
static int migrate(struct store *st, const char *shown, int64_t now, int64_t from)
{
	const struct dialect *d = dialect(st);
	size_t i;

	if (store_pragma(st, d->begin) < 0)
		return -EIO;
	for (i = 0; i < d->steps[from]; i++)
		if (migrate_step(st, d->upgrade[from][i], now) < 0)
			break;
	if (i < d->steps[from]) {
		store_pragma(st, "ROLLBACK");
		return -EIO;
	}
	if (store_pragma(st, "COMMIT") < 0)
		return -EIO;
	log_info("store", "upgraded the database schema from version %lld to %lld db=%s", (long long)from,
		 (long long)from + 1, shown);
	return 0;
}

/* the database's schema version (0: empty) */
static int schema_version(struct store *st, int64_t *version)
{
	int64_t tables;
	int rc;

	if (db_engine(st->db) == DB_PG)
		return store_pragma(st, "CREATE TABLE IF NOT EXISTS natmesh_schema (version INTEGER NOT NULL)") ?:
		       query_int(st, "SELECT coalesce(max(version), 0) FROM natmesh_schema", version);
	if ((rc = query_int(st, "PRAGMA user_version", version)) < 0 ||
	    (rc = query_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'vpcs'",
			    &tables)) < 0)
		return rc;
	/* version 1 created its tables before it set the version */
	if (*version == 0 && tables)
		*version = 1;
	return 0;
}

/* "natmesh" in ASCII: the advisory lock that replicas starting together
 * take in turn to create or upgrade the schema */
#define PG_SCHEMA_LOCK "31069400117637992"

static int schema_setup(struct store *st, const char *shown);

/* creates the schema, upgrades an older one, refuses a newer one */
int store_schema_setup(struct store *st, const char *shown)
{
	int rc;

	if (db_engine(st->db) != DB_PG)
		return schema_setup(st, shown);
	if (store_pragma(st, "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK ")") < 0)
		return -EIO;
	rc = schema_setup(st, shown);
	if (store_pragma(st, "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK ")") < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

static int schema_setup(struct store *st, const char *shown)
{
	const struct dialect *d = dialect(st);
	int64_t version;
	int rc;

	if ((rc = schema_version(st, &version)) < 0)
		return rc;
	if (version > SCHEMA_VERSION || (version && version < d->first_version)) {
		log_error("store", "the database has schema version %lld, which this meshsvc (version %d) cannot use db=%s",
			  (long long)version, SCHEMA_VERSION, shown);
		return -EPROTO;
	}
	for (int64_t from = version; version && from < SCHEMA_VERSION; from++)
		if ((rc = migrate(st, shown, (int64_t)time(NULL), from)) < 0)
			return rc;
	if ((rc = store_pragma(st, d->schema)) < 0 || (rc = store_pragma(st, d->set_version)) < 0)
		return rc;
	return 0;
}

int store_schema_prepare(struct store *st)
{
	for (int i = 0; i < S_COUNT; i++)
		if (db_prepare(st->db, i == S_BEGIN ? dialect(st)->begin : sql[i], &st->stmt[i]) < 0)
			return -EIO;
	return 0;
}
