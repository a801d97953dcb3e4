/* store_secgroup: security groups (issue 16) in the database. A group's rules
 * are kept as lib/policy writes them, each rule's groups by id (a name is
 * resolved in the group's VPC when written, so a rename breaks nothing).
 * Every change of a group raises its VPC's revision and records it as the
 * VPC's policy revision: the peer lists of the VPC are recomputed, and a
 * client asking changes since an older revision gets every device again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "validate_internal.h"

/* the most users a refused delete names */
#define USERS_NAMED 5

static json_t *rules_column(struct db_stmt *s, int col)
{
	json_t *v = json_loads(store_col_text(s, col), 0, NULL);

	return json_is_array(v) ? v : (json_decref(v), json_array());
}

static json_t *secgroup_json(struct db_stmt *s)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:o}", "id", store_col_text(s, GC_ID), "vpc_id",
			 store_col_text(s, GC_VPC_ID), "name", store_col_text(s, GC_NAME), "description",
			 store_col_text(s, GC_DESCRIPTION), "inbound_rules", rules_column(s, GC_INBOUND),
			 "outbound_rules", rules_column(s, GC_OUTBOUND), "revision",
			 (json_int_t)db_column_int64(s, GC_REVISION), "created_at",
			 store_time_or_null(db_column_int64(s, GC_CREATED_AT)));
}

int store_secgroup_get(struct store *st, const char *id, json_t **out)
{
	return store_row_json(st, store_stmt(st, S_SG_GET), id, secgroup_json, "security group get", out);
}

int store_secgroup_list(struct store *st, const char *vpc_id, json_t **out)
{
	struct db_stmt *s = store_stmt(st, vpc_id ? S_SG_LIST_VPC : S_SG_LIST);

	if (vpc_id)
		store_bind_text(s, 1, vpc_id);
	return store_rows_json(st, s, secgroup_json, "security group list", out);
}

/* one id from a statement with its binds made; "" when it has no row */
static int one_id(struct store *st, struct db_stmt *s, char id[UUID_STRLEN], const char *what)
{
	int rc = db_step(s);

	id[0] = 0;
	if (rc == DB_ROW)
		store_copy_id(id, store_col_text(s, 0));
	db_reset(s);
	return rc == DB_ROW || rc == DB_DONE ? 0 : store_db_error(st, what);
}

int store_secgroup_default(struct store *st, const char *vpc_id, char id[UUID_STRLEN])
{
	struct db_stmt *s = store_stmt(st, S_SG_DEFAULT);

	store_bind_text(s, 1, vpc_id);
	return one_id(st, s, id, "default group");
}

int store_secgroup_resolve(struct store *st, const char *vpc_id, const char *id_or_name, char id[UUID_STRLEN])
{
	struct db_stmt *s;
	json_t *g = NULL;
	int rc;

	if (validate_uuid(id_or_name)) {
		rc = store_secgroup_get(st, id_or_name, &g);
		if (rc == 0 && !strcmp(json_string_value(json_object_get(g, "vpc_id")), vpc_id)) {
			store_copy_id(id, id_or_name);
			json_decref(g);
			return 0;
		}
		json_decref(g);
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	s = store_stmt(st, S_SG_BY_NAME);
	store_bind_text(s, 1, vpc_id);
	store_bind_text(s, 2, id_or_name);
	if ((rc = one_id(st, s, id, "security group by name")) < 0)
		return rc;
	return id[0] ? 0 : -ESRCH;
}

int store_policy_bump(struct store *st, const char *vpc_id, int64_t *rev)
{
	struct db_stmt *s;
	int rc;

	if ((rc = store_bump(st, vpc_id, rev)) < 0)
		return rc;
	s = store_stmt(st, S_VPC_SET_POLICY);
	store_bind_text(s, 1, vpc_id);
	db_bind_int64(s, 2, *rev);
	return store_exec(st, s);
}

int store_policy_revision(struct store *st, const char *vpc_id, int64_t *out)
{
	struct db_stmt *s = store_stmt(st, S_VPC_POLICY);
	int rc;

	*out = 0;
	store_bind_text(s, 1, vpc_id);
	rc = db_step(s);
	if (rc == DB_ROW)
		*out = db_column_int64(s, 0);
	db_reset(s);
	if (rc == DB_DONE)
		return -ENOENT;
	return rc == DB_ROW ? 0 : store_db_error(st, "policy revision");
}

int store_policy_members(struct store *st, const char *vpc_id, store_member_fn fn, void *arg)
{
	struct db_stmt *s = store_stmt(st, S_DEV_MEMBERS);
	int rc, step;

	store_bind_text(s, 1, vpc_id);
	while ((step = db_step(s)) == DB_ROW)
		if ((rc = fn(arg, store_col_text(s, 0), store_col_text(s, 1), store_col_text(s, 2),
			     db_column_int(s, 3), db_column_int64(s, 4))) < 0) {
			db_reset(s);
			return rc;
		}
	db_reset(s);
	return step == DB_DONE ? 0 : store_db_error(st, "policy members");
}

int store_policy_group_addresses(struct store *st, const char *group_id, json_t *addrs)
{
	struct db_stmt *s = store_stmt(st, S_SG_ADDRESSES);
	int step;

	store_bind_text(s, 1, group_id);
	while ((step = db_step(s)) == DB_ROW)
		if (json_array_append_new(addrs, json_string(store_col_text(s, 0))) < 0) {
			db_reset(s);
			return -ENOMEM;
		}
	db_reset(s);
	return step == DB_DONE ? 0 : store_db_error(st, "group addresses");
}

/* the rules (as validated) with each group named by id: the group's own name
 * is self, another is looked up in the VPC; -ESRCH with err naming the field */
static int resolve_rules(struct store *st, const char *vpc_id, const char *key, const json_t *rules,
			 const char *self_id, const char *self_name, json_t **out, struct verr *err)
{
	char field[64], id[UUID_STRLEN];
	size_t i, j;
	json_t *r, *g;
	int rc;

	if (!(*out = json_deep_copy(rules)))
		return -ENOMEM;
	json_array_foreach(*out, i, r) {
		json_array_foreach(json_object_get(r, "groups"), j, g) {
			const char *name = json_string_value(g);

			snprintf(field, sizeof(field), "%s[%zu].groups[%zu]", key, i, j);
			if (!strcmp(name, self_id) || !strcmp(name, self_name)) {
				store_copy_id(id, self_id);
			} else if ((rc = store_secgroup_resolve(st, vpc_id, name, id)) < 0) {
				if (rc == -ESRCH)
					validate_fail(err, field, "no security group \"%.60s\" in this VPC", name);
				json_decref(*out);
				*out = NULL;
				return rc;
			}
			json_string_set(g, id);
		}
	}
	return 0;
}

/* the rule arrays as stored: from spec where it sets them, else from old
 * (NULL: none), resolved */
static int stored_rules(struct store *st, const char *vpc_id, const struct secgroup_spec *spec,
			const json_t *old, const char *self_id, const char *self_name, char **in, char **outb,
			struct verr *err)
{
	json_t *ri = NULL, *ro = NULL;
	int rc;

	*in = *outb = NULL;
	if ((rc = resolve_rules(st, vpc_id, "inbound_rules",
				(spec->set & SG_INBOUND) ? spec->inbound : json_object_get(old, "inbound_rules"),
				self_id, self_name, &ri, err)) < 0 ||
	    (rc = resolve_rules(st, vpc_id, "outbound_rules",
				(spec->set & SG_OUTBOUND) ? spec->outbound : json_object_get(old, "outbound_rules"),
				self_id, self_name, &ro, err)) < 0)
		goto out;
	*in = json_dumps(ri, JSON_COMPACT);
	*outb = json_dumps(ro, JSON_COMPACT);
	if (!*in || !*outb) {
		free(*in);
		free(*outb);
		*in = *outb = NULL;
		rc = -ENOMEM;
	}
out:
	json_decref(ri);
	json_decref(ro);
	return rc;
}

/* how many groups the VPC has, or an error */
static int group_count(struct store *st, const char *vpc_id)
{
	struct db_stmt *s = store_stmt(st, S_SG_COUNT);
	int rc, n = 0;

	store_bind_text(s, 1, vpc_id);
	rc = db_step(s);
	if (rc == DB_ROW)
		n = db_column_int(s, 0);
	db_reset(s);
	return rc == DB_ROW ? n : store_db_error(st, "security group count");
}

static int name_taken(struct store *st, const char *vpc_id, const char *name, const char *except_id)
{
	char id[UUID_STRLEN];
	struct db_stmt *s = store_stmt(st, S_SG_BY_NAME);
	int rc;

	store_bind_text(s, 1, vpc_id);
	store_bind_text(s, 2, name);
	if ((rc = one_id(st, s, id, "security group by name")) < 0)
		return rc;
	return id[0] && (!except_id || strcmp(id, except_id)) ? -EEXIST : 0;
}

static int insert(struct store *st, const char *id, const char *vpc_id, const char *name, const char *description,
		  const char *in, const char *out, int64_t rev, int64_t now, bool is_default)
{
	struct db_stmt *s = store_stmt(st, S_SG_INSERT);

	store_bind_text(s, 1 + GC_ID, id);
	store_bind_text(s, 1 + GC_VPC_ID, vpc_id);
	store_bind_text(s, 1 + GC_NAME, name);
	store_bind_text(s, 1 + GC_DESCRIPTION, description);
	store_bind_text(s, 1 + GC_INBOUND, in);
	store_bind_text(s, 1 + GC_OUTBOUND, out);
	db_bind_int64(s, 1 + GC_REVISION, rev);
	db_bind_int64(s, 1 + GC_CREATED_AT, now);
	db_bind_int64(s, 1 + GC_IS_DEFAULT, is_default);
	return store_exec(st, s);
}

int store_secgroup_insert_default(struct store *st, const char *vpc_id, int64_t now)
{
	char id[UUID_STRLEN];

	uuid_generate(id);
	return insert(st, id, vpc_id, SECGROUP_DEFAULT_NAME, SECGROUP_DEFAULT_DESCRIPTION, SECGROUP_ALLOW_ALL,
		      SECGROUP_ALLOW_ALL, 0, now, true);
}

int store_secgroup_create(struct store *st, const struct secgroup_spec *spec, int64_t now, json_t **out,
			  struct verr *err)
{
	char id[UUID_STRLEN], *in = NULL, *outb = NULL;
	int64_t rev;
	int rc;

	*out = NULL;
	if (!store_vpc_load(st, spec->vpc_id)) {
		validate_fail(err, "vpc_id", "no such VPC");
		return -ENOENT;
	}
	uuid_generate(id);
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	if ((rc = name_taken(st, spec->vpc_id, spec->name, NULL)) < 0) {
		if (rc == -EEXIST)
			validate_fail(err, "name", "a security group named %s exists in this VPC", spec->name);
		goto err;
	}
	if ((rc = group_count(st, spec->vpc_id)) >= SECGROUP_MAX_PER_VPC) {
		validate_fail(err, NULL, "the VPC has %d security groups, the most it may have", SECGROUP_MAX_PER_VPC);
		rc = -ENOSPC;
	}
	if (rc < 0)
		goto err;
	if ((rc = stored_rules(st, spec->vpc_id, spec, NULL, id, spec->name, &in, &outb, err)) < 0 ||
	    (rc = store_policy_bump(st, spec->vpc_id, &rev)) < 0 ||
	    (rc = insert(st, id, spec->vpc_id, spec->name, spec->description, in, outb, rev, now, false)) < 0 ||
	    (rc = store_txn_commit(st)) < 0)
		goto err;
	free(in);
	free(outb);
	return store_secgroup_get(st, id, out);
err:
	store_txn_rollback(st);
	free(in);
	free(outb);
	return rc;
}

/* the group's row: its VPC and whether it is the default */
static int group_row(struct store *st, const char *id, json_t **g, char vpc_id[UUID_STRLEN], bool *is_default)
{
	struct db_stmt *s = store_stmt(st, S_SG_GET);
	int rc;

	*g = NULL;
	store_bind_text(s, 1, id);
	rc = db_step(s);
	if (rc == DB_ROW) {
		*g = secgroup_json(s);
		store_copy_id(vpc_id, store_col_text(s, GC_VPC_ID));
		*is_default = db_column_int(s, GC_IS_DEFAULT);
	}
	db_reset(s);
	if (rc == DB_DONE)
		return -ENOENT;
	if (rc != DB_ROW)
		return store_db_error(st, "security group get");
	return *g ? 0 : -ENOMEM;
}

int store_secgroup_update(struct store *st, const char *id, const struct secgroup_spec *spec, int64_t now,
			  json_t **out, struct verr *err)
{
	char vpc_id[UUID_STRLEN], *in = NULL, *outb = NULL;
	const char *name, *description;
	bool is_default = false;
	json_t *old = NULL;
	int64_t rev;
	struct db_stmt *s;
	int rc;

	(void)now;
	*out = NULL;
	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	if ((rc = group_row(st, id, &old, vpc_id, &is_default)) < 0)
		goto err;
	name = (spec->set & SG_NAME) ? spec->name : json_string_value(json_object_get(old, "name"));
	description = (spec->set & SG_DESCRIPTION) ? spec->description
						   : json_string_value(json_object_get(old, "description"));
	if (is_default && strcmp(name, SECGROUP_DEFAULT_NAME)) {
		validate_fail(err, "name", "the default group keeps its name");
		rc = -EPERM;
		goto err;
	}
	if ((rc = name_taken(st, vpc_id, name, id)) < 0) {
		if (rc == -EEXIST)
			validate_fail(err, "name", "a security group named %s exists in this VPC", name);
		goto err;
	}
	if ((rc = stored_rules(st, vpc_id, spec, old, id, name, &in, &outb, err)) < 0 ||
	    (rc = store_policy_bump(st, vpc_id, &rev)) < 0)
		goto err;
	s = store_stmt(st, S_SG_UPDATE);
	store_bind_text(s, 1, id);
	store_bind_text(s, 2, name);
	store_bind_text(s, 3, description);
	store_bind_text(s, 4, in);
	store_bind_text(s, 5, outb);
	db_bind_int64(s, 6, rev);
	if ((rc = store_exec(st, s)) < 0 || (rc = store_txn_commit(st)) < 0)
		goto err;
	json_decref(old);
	free(in);
	free(outb);
	return store_secgroup_get(st, id, out);
err:
	store_txn_rollback(st);
	json_decref(old);
	free(in);
	free(outb);
	return rc;
}

static bool rules_name(const json_t *rules, const char *id)
{
	size_t i, j;
	json_t *r, *g;

	json_array_foreach(rules, i, r)
		json_array_foreach(json_object_get(r, "groups"), j, g)
			if (json_is_string(g) && !strcmp(json_string_value(g), id))
				return true;
	return false;
}

/* who keeps the group from going, written into err->msg: 0 (nobody), -EBUSY */
static int users(struct store *st, const char *id, const char *vpc_id, struct verr *err)
{
	char devs[160] = "", groups[160] = "";
	size_t ndev = 0, ngroup = 0, used;
	json_t *list = NULL, *g;
	struct db_stmt *s = store_stmt(st, S_SG_USERS);
	int rc;
	size_t i;

	store_bind_text(s, 1, id);
	db_bind_int64(s, 2, USERS_NAMED + 1);
	used = 0;
	while ((rc = db_step(s)) == DB_ROW) {
		if (++ndev <= USERS_NAMED && used < sizeof(devs))
			used += (size_t)snprintf(devs + used, sizeof(devs) - used, "%s%s", ndev > 1 ? ", " : "",
						 store_col_text(s, 0));
	}
	db_reset(s);
	if (rc != DB_DONE)
		return store_db_error(st, "security group users");
	if ((rc = store_secgroup_list(st, vpc_id, &list)) < 0)
		return rc;
	used = 0;
	json_array_foreach(list, i, g) {
		if (!strcmp(json_string_value(json_object_get(g, "id")), id))
			continue;
		if (!rules_name(json_object_get(g, "inbound_rules"), id) &&
		    !rules_name(json_object_get(g, "outbound_rules"), id))
			continue;
		if (++ngroup <= USERS_NAMED && used < sizeof(groups))
			used += (size_t)snprintf(groups + used, sizeof(groups) - used, "%s%s", ngroup > 1 ? ", " : "",
						 json_string_value(json_object_get(g, "name")));
	}
	json_decref(list);
	if (!ndev && !ngroup)
		return 0;
	snprintf(err->field, sizeof(err->field), "%s", "");
	snprintf(err->msg, sizeof(err->msg), "the security group is in use%s%s%s%s%s%s",
		 ndev ? " by devices " : "", devs, ndev > USERS_NAMED ? " and more" : "",
		 ngroup ? (ndev ? "; named by the rules of groups " : " by the rules of groups ") : "", groups,
		 ngroup > USERS_NAMED ? " and more" : "");
	return -EBUSY;
}

int store_secgroup_delete(struct store *st, const char *id, char vpc_id[UUID_STRLEN], struct verr *err)
{
	bool is_default = false;
	json_t *old = NULL;
	int64_t rev;
	struct db_stmt *s;
	int rc;

	if ((rc = store_txn_begin(st)) < 0)
		return rc;
	if ((rc = group_row(st, id, &old, vpc_id, &is_default)) < 0)
		goto err;
	if (is_default) {
		validate_fail(err, NULL, "the VPC's default group cannot be deleted");
		rc = -EPERM;
		goto err;
	}
	if ((rc = users(st, id, vpc_id, err)) < 0 || (rc = store_policy_bump(st, vpc_id, &rev)) < 0)
		goto err;
	s = store_stmt(st, S_SG_DELETE);
	store_bind_text(s, 1, id);
	if ((rc = store_exec(st, s)) < 0 || (rc = store_txn_commit(st)) < 0)
		goto err;
	json_decref(old);
	return 0;
err:
	store_txn_rollback(st);
	json_decref(old);
	return rc;
}
