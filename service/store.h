/* store: the control plane's durable state in SQLite (WAL, synchronous=FULL)
 * or PostgreSQL (store_open's target: a path, or a postgres:// URL):
 * VPCs, registration keys, devices and the tombstones of deleted devices. A
 * write is committed before the call returns (in a batch: before
 * store_batch_commit returns), so an answer sent after that survives kill -9
 * and power loss. SQL runs only through statements prepared at open. Each VPC
 * has a revision that every device change raises; a device row carries the
 * revision of its last change, which makes "what changed since REV" one
 * indexed query. A deleted device leaves a tombstone, kept for a while
 * (store_limits) and then pruned; a VPC remembers the newest revision pruned
 * (its horizon), and a client asking for changes since an older revision gets
 * the whole list instead. A device's `online` is published state: it flips,
 * with a new revision, when an authenticated request comes from an offline
 * device and when store_housekeeping finds it silent for offline_after_s;
 * last_seen moves without a revision. The store also keeps each VPC's IPAM and
 * revision in memory. An SQLite file has one writer (an exclusive lock on the
 * file). A PostgreSQL database may have several meshsvc (replicas), so what
 * memory cannot know is settled in SQL: a VPC made by another replica is
 * loaded on first use, an address another replica took is skipped (the
 * unique (vpc_id, ip_index) and the next address), the revision bump locks
 * the VPC's row until commit (revisions rise across replicas), and a key's
 * use is re-checked as it is written (db_pg.c: a lost connection is
 * reconnected), and store_housekeeping reads every VPC's revision again and
 * tells changed of those other replicas raised; a VPC full in memory has its
 * addresses read again before it is called full. Not thread-safe: one thread owns a store.
 *
 * Two engines, one store: the store's files are written once against db.h
 * (prepare/bind/step/column, transactions by SQL text), with an SQLite and a
 * libpq engine behind it; the SQL is portable (flags are integers compared
 * with <> 0, CASE for SQLite's two-argument max, ON CONFLICT for both) and
 * the differences left (DDL types, BEGIN IMMEDIATE, where the schema version
 * lives, upgrades) are in store_schema.c's struct dialect. A vtable of two
 * whole stores would have copied every query and its rules twice.
 * store_internal.h maps its files.
 *
 * Group commit. Between store_batch_begin and store_batch_commit the writes
 * share one transaction, so one fsync makes many of them durable. The
 * transaction (BEGIN IMMEDIATE) opens at the batch's first write; each write
 * runs in a savepoint of its own, so a write that fails (a full VPC, a used
 * key, a constraint) is rolled back alone and the others stay. The memory
 * state (each VPC's IPAM, revision and tombstone horizon, the list of VPCs) is
 * changed inside the transaction and journaled: a savepoint rolled back undoes
 * its own entries, a commit that fails undoes the whole batch's, so memory
 * always matches what the database holds (or will hold, once committed).
 * Inside a batch, reads see the batch's uncommitted writes; nothing of them
 * is durable before store_batch_commit returns, so the caller holds every
 * answer built while store_batch_pending is true (a write's, or a read's that
 * may have seen one) until then, and answers them all with an error if the
 * commit fails. Outside a batch every write is its own committed
 * transaction. */
#ifndef NATMESH_SVC_STORE_H
#define NATMESH_SVC_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "token.h"
#include "validate.h"

/* a device counts as online this long after its last authenticated request */
#define DEVICE_ONLINE_WINDOW_S 120
/* a deleted device's tombstone is kept this long (default) */
#define TOMBSTONE_TTL_S (24 * 3600)

struct store_limits {
	int64_t offline_after_s;	/* DEVICE_ONLINE_WINDOW_S */
	int64_t tombstone_ttl_s;	/* TOMBSTONE_TTL_S */
};

struct store;

/* who a bearer token belongs to */
struct principal {
	enum token_scope scope;
	char id[UUID_STRLEN];		/* the key's or the device's id; "" for admin */
	char vpc_id[UUID_STRLEN];	/* "" for admin */
	int64_t last_seen;		/* devices only */
	bool online;			/* devices only: as published */
};

/* -EBUSY when another process holds the database, -EPROTO when its schema is
 * newer than this code; an older schema is upgraded */
int store_open(const char *path, struct store **out);
void store_free(struct store *st);

int store_vpc_create(struct store *st, const struct vpc_spec *spec, int64_t now, json_t **out);	/* -EEXIST: name taken */
int store_vpc_get(struct store *st, const char *id, json_t **out);					/* -ENOENT */
int store_vpc_list(struct store *st, json_t **out);
int store_vpc_delete(struct store *st, const char *id);						/* -ENOENT, -ENOTEMPTY */
int store_vpc_revision(struct store *st, const char *id, int64_t *out);				/* -ENOENT */

int store_regkey_create(struct store *st, const struct regkey_spec *spec,
			const uint8_t hash[TOKEN_HASH_BYTES], int64_t now, json_t **out);	/* -ENOENT: no such VPC */
int store_regkey_get(struct store *st, const char *id, json_t **out);
int store_regkey_list(struct store *st, json_t **out);
int store_regkey_delete(struct store *st, const char *id);
/* -ENOENT unknown, -EKEYEXPIRED past expires_at */
int store_regkey_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], int64_t now,
		      struct principal *out);

/* Registers a new device with the key (counted against the key's
 * max_devices; a single-use key is used up by it). -ENOENT key gone,
 * -EKEYEXPIRED, -EKEYREVOKED single-use key already used, -EDQUOT the key
 * registered its max_devices, -EXDEV spec->vpc_id is not the key's VPC,
 * -EEXIST a device of the VPC has this public key (it registers again with
 * its token: store_device_reregister), -ENOSPC VPC full, -EPERM spec claims
 * relay and the key mints no relays. A new device is a relay exactly when its
 * key mints relays. Nothing changes on an error. */
int store_device_register(struct store *st, const char *regkey_id, const struct device_spec *spec,
			  const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out);
/* As store_device_register, but the caller has checked a key proof
 * (challenge.h) for spec's public key: a device of the key's VPC with that
 * key is reclaimed (1): a new token in place of its old one, the same id,
 * address and relay flag (-EPERM if spec claims relay and it is none), and
 * online; counted against the key like a registration, and a single-use key
 * is used up by it. Without such a device, a new one (0). */
int store_device_reclaim(struct store *st, const char *regkey_id, const struct device_spec *spec,
			 const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out);
/* The device id, authenticated by its current token, registers again: a new
 * token, and online. -ENOENT, -EACCES spec's public key is not the device's,
 * -EXDEV spec->vpc_id is not its VPC, -EPERM spec claims relay and the device
 * is none. */
int store_device_reregister(struct store *st, const char *id, const struct device_spec *spec,
			    const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out);
int store_device_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], struct principal *out);
/* the device and, in vpc_id, its VPC */
int store_device_get(struct store *st, const char *id, json_t **out, char vpc_id[UUID_STRLEN]);
/* applies the fields set in spec; the revision rises only if something
 * changed; -ESRCH spec->security_group is no group of the device's VPC */
int store_device_patch(struct store *st, const char *id, const struct device_spec *spec, int64_t now,
		       json_t **out);
int store_device_delete(struct store *st, const char *id, int64_t now, char vpc_id[UUID_STRLEN]);
/* an authenticated request from who: last_seen is now, and an offline device
 * comes online with a new revision (then 1 is returned, else 0) */
int store_device_touch(struct store *st, const struct principal *who, int64_t now);
/* The devices of a VPC changed after since, ordered by revision, and the ids
 * of those deleted after since; or, with *full set, every device (since 0, a
 * since ahead of the VPC, or one older than its tombstone horizon). -ENOENT */
int store_device_changes(struct store *st, const char *vpc_id, int64_t since, json_t **devices,
			 json_t **deleted, bool *full);
/* every device of every VPC */
int store_device_list(struct store *st, json_t **out);

/* Security groups (issue 16). Every VPC has its default group, made with
 * it, which allows everything both ways and cannot be deleted; a device is
 * in one group (its VPC's default unless the admin moves it). A rule's
 * groups are stored as ids: a name is resolved in the group's VPC when it is
 * written. Every change of a group, and of a device's group, raises the VPC's
 * revision and records it as the VPC's policy revision (store_policy_revision),
 * so long polls wake and peer lists are recomputed. Errors fill err with the
 * field: -ENOENT no such group (or VPC), -EEXIST the name is taken in the VPC,
 * -ESRCH a rule names a group that is not in the VPC, -ENOSPC the VPC has
 * SECGROUP_MAX_PER_VPC groups, -EPERM the default
 * group's name or its deletion, -EBUSY (delete) devices or other groups'
 * rules use it (err->msg names them). */
#define SECGROUP_DEFAULT_NAME "default"
/* a VPC's groups, at most (a peer list weighs every pair of them) */
#define SECGROUP_MAX_PER_VPC 1024
#define SECGROUP_DEFAULT_DESCRIPTION "allows everything both ways; new devices join it"
#define SECGROUP_ALLOW_ALL "[{\"ip_protocol\":\"any\",\"from_port\":0,\"to_port\":0,\"ip_ranges\":[],\"groups\":[]}]"
int store_secgroup_create(struct store *st, const struct secgroup_spec *spec, int64_t now, json_t **out,
			  struct verr *err);
int store_secgroup_get(struct store *st, const char *id, json_t **out);
/* vpc_id NULL: every VPC's */
int store_secgroup_list(struct store *st, const char *vpc_id, json_t **out);
int store_secgroup_update(struct store *st, const char *id, const struct secgroup_spec *spec, int64_t now,
			  json_t **out, struct verr *err);
int store_secgroup_delete(struct store *st, const char *id, char vpc_id[UUID_STRLEN], struct verr *err);
/* a group of the VPC by id or name into id; -ESRCH */
int store_secgroup_resolve(struct store *st, const char *vpc_id, const char *id_or_name, char id[UUID_STRLEN]);
/* the revision of the VPC's last policy change (0: none yet) */
int store_policy_revision(struct store *st, const char *vpc_id, int64_t *out);
/* each device of the VPC: its id, tunnel address, group id, relay flag and
 * the revision of its last change */
typedef int (*store_member_fn)(void *arg, const char *id, const char *tunnel_ip, const char *group_id,
			       bool relay, int64_t revision);
int store_policy_members(struct store *st, const char *vpc_id, store_member_fn fn, void *arg);
/* the tunnel addresses of the group's members, appended to addrs (strings) */
int store_policy_group_addresses(struct store *st, const char *group_id, json_t *addrs);

/* the PostgreSQL channel on which each new revision of a VPC is announced
 * (by a trigger, at commit; the payload is the VPC's id); meshsvc's doorbell
 * listens to it and runs store_housekeeping, which reads every VPC's
 * revision again */
#define STORE_VPC_CHANNEL "natmesh_vpc"

/* called once per VPC whose revision rose */
typedef void (*store_changed_fn)(void *arg, const char *vpc_id);
/* Publishes devices silent for lim->offline_after_s as offline and prunes
 * tombstones older than lim->tombstone_ttl_s; returns how many tombstone
 * groups (VPCs) were pruned, or an error. Run it about once a second, outside
 * a batch (-EBUSY inside one: changed is told only of committed changes). */
int store_housekeeping(struct store *st, int64_t now, const struct store_limits *lim,
		       store_changed_fn changed, void *arg);
uint64_t store_device_count(const struct store *st);
uint64_t store_vpc_count(const struct store *st);

/* Starts a batch: the writes until store_batch_commit share one transaction,
 * opened at the first of them. -EALREADY when one is started. */
int store_batch_begin(struct store *st);
/* true from the batch's first write until store_batch_commit: an answer built
 * now may rest on a write that is not durable yet */
bool store_batch_pending(const struct store *st);
/* whether the database answers now (db_available): false makes meshsvc's
 * failed requests 503 and /healthz 503 */
bool store_available(struct store *st);
/* Ends the batch: commits its transaction (one fsync), if it has one, and
 * returns how many writes it made durable (0 for none). On failure (<0) every
 * write of the batch is rolled back, memory included, and none may be
 * acknowledged. */
int store_batch_commit(struct store *st);

struct store_stats {
	uint64_t commits;	/* transactions committed with at least one write: fsyncs */
	uint64_t writes;	/* writes they made durable */
	uint64_t failed_commits;
};
void store_stats(const struct store *st, struct store_stats *out);

#endif
