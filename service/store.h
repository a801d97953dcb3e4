/* store: the control plane's durable state in SQLite (WAL, synchronous=FULL):
 * VPCs, registration keys, devices and the tombstones of deleted devices. Every
 * write is one transaction, committed before the call returns, so an answer
 * sent after it survives kill -9 and power loss. SQL runs only through
 * statements prepared at open. Each VPC has a revision that every device change
 * raises; a device row carries the revision of its last change, which makes
 * "what changed since REV" one indexed query. The store also keeps each VPC's
 * IPAM and revision in memory; it assumes it is the database's only writer and
 * takes an exclusive lock on the file to make sure. Not thread-safe: one thread
 * owns a store. */
#ifndef NATMESH_SVC_STORE_H
#define NATMESH_SVC_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "token.h"
#include "validate.h"

/* a device counts as online this long after its last authenticated request */
#define DEVICE_ONLINE_WINDOW_S 120

struct store;

/* who a bearer token belongs to */
struct principal {
	enum token_scope scope;
	char id[UUID_STRLEN];		/* the key's or the device's id; "" for admin */
	char vpc_id[UUID_STRLEN];	/* "" for admin */
	int64_t last_seen;		/* devices only */
};

/* -EBUSY when another process holds the database */
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

/* Registers spec with the key, or finds the device that has its public key in
 * the key's VPC (then *created is false and only the token changes). -ENOENT
 * key gone, -EKEYEXPIRED, -EKEYREVOKED single-use key already used by another
 * device, -EXDEV spec->vpc_id is not the key's VPC, -ENOSPC VPC full. */
int store_device_register(struct store *st, const char *regkey_id, const struct device_spec *spec,
			  const uint8_t token_hash[TOKEN_HASH_BYTES], int64_t now, json_t **out,
			  bool *created);
int store_device_auth(struct store *st, const uint8_t hash[TOKEN_HASH_BYTES], struct principal *out);
/* the device and, in vpc_id, its VPC */
int store_device_get(struct store *st, const char *id, int64_t now, json_t **out,
		     char vpc_id[UUID_STRLEN]);
/* applies the fields set in spec; the revision rises only if something changed */
int store_device_patch(struct store *st, const char *id, const struct device_spec *spec, int64_t now,
		       json_t **out);
int store_device_delete(struct store *st, const char *id, char vpc_id[UUID_STRLEN]);
int store_device_touch(struct store *st, const char *id, int64_t now);
/* The devices of a VPC changed after since (all when since is 0), ordered by
 * revision, and the ids of those deleted after since. */
int store_device_changes(struct store *st, const char *vpc_id, int64_t since, int64_t now,
			 json_t **devices, json_t **deleted);
/* every device of every VPC */
int store_device_list(struct store *st, int64_t now, json_t **out);
uint64_t store_device_count(const struct store *st);
uint64_t store_vpc_count(const struct store *st);

#endif
