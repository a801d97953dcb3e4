/* validate_secgroup: the bodies of /api/security-groups (validate.h). The
 * rules are lib/policy's to check (one rule parser in natmesh); its errors
 * name the field ("inbound_rules[2].to_port: ...") and become the 400's field
 * and message. The rules are kept as lib/policy writes them back. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "validate_internal.h"

static int sg_name(const char *field, const json_t *v, struct secgroup_spec *s, struct verr *err)
{
	const char *p;

	if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > WIRE_NAME_MAX)
		return validate_fail(err, field, "must be a string of 1..%d characters", WIRE_NAME_MAX);
	for (p = json_string_value(v); *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return validate_fail(err, field, "may contain only letters, digits, '.', '_' and '-'");
	/* a rule names a group by id or by name: a name must not read as an id */
	if (validate_uuid(json_string_value(v)))
		return validate_fail(err, field, "must not have the form of an id (a UUID)");
	snprintf(s->name, sizeof(s->name), "%s", json_string_value(v));
	return 0;
}

static int sg_description(const char *field, const json_t *v, struct secgroup_spec *s, struct verr *err)
{
	const char *p;

	if (!json_is_string(v) || json_string_length(v) > WIRE_DESCRIPTION_MAX)
		return validate_fail(err, field, "must be a string of 0..%d bytes", WIRE_DESCRIPTION_MAX);
	for (p = json_string_value(v); *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return validate_fail(err, field, "must not contain control characters");
	snprintf(s->description, sizeof(s->description), "%s", json_string_value(v));
	return 0;
}

/* lib/policy's "field: why" into err */
static int policy_fail(struct verr *err, const char *key, const char *msg)
{
	const char *colon = strstr(msg, ": ");
	char field[sizeof(err->field)];

	if (!colon)
		return validate_fail(err, key, "%s", msg);
	snprintf(field, sizeof(field), "%.*s", (int)(colon - msg), msg);
	return validate_fail(err, field, "%s", colon + 2);
}

/* inbound_rules or outbound_rules: checked by lib/policy, written back by it */
static int sg_rules(const char *key, const json_t *v, json_t **out, struct verr *err)
{
	char why[POLICY_ERR_MAX];
	struct policy_group g;
	json_t *wrap, *list;
	int rc;

	if (!(wrap = json_pack("{s:O}", key, (json_t *)v)))
		return -ENOMEM;
	rc = policy_group_parse(wrap, 0, &g, why, sizeof(why));
	json_decref(wrap);
	if (rc < 0)
		return policy_fail(err, key, why);
	if ((list = json_array())) {
		const struct policy_rule *r = !strcmp(key, "inbound_rules") ? g.in : g.out;
		size_t n = !strcmp(key, "inbound_rules") ? g.nin : g.nout;

		for (size_t i = 0; i < n; i++)
			if (json_array_append_new(list, policy_rule_json(&r[i], false)) < 0) {
				json_decref(list);
				list = NULL;
				break;
			}
	}
	policy_group_free(&g);
	json_decref(*out);
	*out = list;
	return list ? 0 : -ENOMEM;
}

static int sg_vpc_id(const char *field, const json_t *v, struct secgroup_spec *s, struct verr *err)
{
	if (!json_is_string(v) || !validate_uuid(json_string_value(v)))
		return validate_fail(err, field, "must be a VPC id (a lowercase UUID)");
	memcpy(s->vpc_id, json_string_value(v), UUID_STRLEN);
	return 0;
}

static int sg_body(const json_t *body, bool create, struct secgroup_spec *out, struct verr *err)
{
	static const char *const read_only[] = { "id", "revision", "created_at" };
	const char *key;
	json_t *v;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(body))
		return validate_fail(err, NULL, "body must be a JSON object");
	json_object_foreach((json_t *)body, key, v) {
		unsigned bit = 0;

		if (!strcmp(key, "vpc_id") && create) {
			rc = sg_vpc_id(key, v, out, err);
			bit = SG_VPC_ID;
		} else if (!strcmp(key, "name")) {
			rc = sg_name(key, v, out, err);
			bit = SG_NAME;
		} else if (!strcmp(key, "description")) {
			rc = sg_description(key, v, out, err);
			bit = SG_DESCRIPTION;
		} else if (!strcmp(key, "inbound_rules")) {
			rc = sg_rules(key, v, &out->inbound, err);
			bit = SG_INBOUND;
		} else if (!strcmp(key, "outbound_rules")) {
			rc = sg_rules(key, v, &out->outbound, err);
			bit = SG_OUTBOUND;
		} else {
			rc = validate_fail(err, key, "unknown field");
			for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
				if (!strcmp(key, read_only[i]) || !strcmp(key, "vpc_id"))
					rc = validate_fail(err, key, "read-only field");
		}
		if (rc < 0)
			break;
		out->set |= bit;
	}
	if (rc < 0) {
		secgroup_spec_clear(out);
		return rc;
	}
	return 0;
}

int validate_secgroup_create(const json_t *body, struct secgroup_spec *out, struct verr *err)
{
	int rc = sg_body(body, true, out, err);

	if (rc < 0)
		return rc;
	if (!(out->set & SG_VPC_ID))
		rc = validate_fail(err, "vpc_id", "required field is missing");
	else if (!(out->set & SG_NAME))
		rc = validate_fail(err, "name", "required field is missing");
	/* absent rules: none, the group allows nothing that way */
	else if ((!out->inbound && !(out->inbound = json_array())) || (!out->outbound && !(out->outbound = json_array())))
		rc = -ENOMEM;
	else
		out->set |= SG_INBOUND | SG_OUTBOUND;
	if (rc < 0)
		secgroup_spec_clear(out);
	return rc;
}

int validate_secgroup_patch(const json_t *body, struct secgroup_spec *out, struct verr *err)
{
	int rc = sg_body(body, false, out, err);

	if (rc == 0 && !out->set) {
		secgroup_spec_clear(out);
		return validate_fail(err, NULL,
				     "nothing to change: give name, description, inbound_rules or outbound_rules");
	}
	return rc;
}

void secgroup_spec_clear(struct secgroup_spec *spec)
{
	json_decref(spec->inbound);
	json_decref(spec->outbound);
	spec->inbound = spec->outbound = NULL;
	spec->set = 0;
}
