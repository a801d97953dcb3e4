/* validate_nat: a device's NAT findings (the "nat" member of its body), in
 * RFC 4787's terms: mapping and filtering behaviours (sections 4.1 and 5)
 * and hairpinning, at the top level and per address family. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "validate_internal.h"

/* RFC 4787 section 4.1 (mapping) and 5 (filtering) behaviours */
static bool is_nat_behaviour(const json_t *v)
{
	return json_is_string(v) && wire_dep_parse(json_string_value(v)) >= 0;
}

static const char *const nat_members[] = { "mapping", "filtering", "hairpinning" };
static const char *const nat_families[] = { "ipv4", "ipv6" };	/* the top level repeats the first */
#define NAT_MEMBERS (sizeof(nat_members) / sizeof(nat_members[0]))
#define NAT_FAMILIES (sizeof(nat_families) / sizeof(nat_families[0]))

static int index_of(const char *const *names, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], key))
			return (int)i;
	return -1;
}

/* 0 for a good mapping, filtering or hairpinning value */
static int nat_member(const char *field, const char *key, const json_t *value, struct verr *err)
{
	if (!strcmp(key, "hairpinning")) {
		if (!json_is_boolean(value))
			return validate_fail(err, field, "must be true or false");
	} else if (!is_nat_behaviour(value)) {
		return validate_fail(err, field, "must be \"endpoint-independent\", \"address-dependent\" or \"address-and-port-dependent\"");
	}
	return 0;
}

/* nat.ipv4, nat.ipv6: one family's findings, rebuilt in a fixed key order */
static int nat_family(const char *fam, const json_t *v, json_t **out, struct verr *err)
{
	char name[16], field[64];
	const char *key;
	json_t *value;
	int rc;

	*out = NULL;
	snprintf(name, sizeof(name), "nat.%.8s", fam);
	if (!json_is_object(v) || !json_object_size(v))
		return validate_fail(err, name, "must be an object with some of mapping, filtering, hairpinning");
	json_object_foreach((json_t *)v, key, value) {
		snprintf(field, sizeof(field), "%s.%.40s", name, key);
		if (index_of(nat_members, NAT_MEMBERS, key) < 0)
			return validate_fail(err, field, "unknown field");
		if ((rc = nat_member(field, key, value, err)) < 0)
			return rc;
	}
	if (!(*out = json_object()))
		return -ENOMEM;
	for (size_t i = 0; i < NAT_MEMBERS; i++)
		if ((value = json_object_get(v, nat_members[i])))
			json_object_set(*out, nat_members[i], value);
	return 0;
}

/* {mapping, filtering, hairpinning, ipv4, ipv6}: with per-family findings
 * the top level is theirs (IPv4, else IPv6), filled in here, so readers of
 * the top level alone (before the families) go on working; a body may
 * repeat it only exactly. Without families (an older agent) it stays as
 * given. Rebuilt in a fixed key order: the same findings are the same text. */
int validate_nat(const char *name, const json_t *v, json_t **out, struct verr *err)
{
	json_t *fam[NAT_FAMILIES] = { NULL, NULL }, *value, *top;
	const char *key;
	char field[64];
	int rc = 0, f;

	*out = NULL;
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return validate_fail(err, name, "must be an object {mapping, filtering, hairpinning, ipv4, ipv6} or null");
	json_object_foreach((json_t *)v, key, value) {
		snprintf(field, sizeof(field), "nat.%.48s", key);
		if ((f = index_of(nat_families, NAT_FAMILIES, key)) >= 0)
			rc = nat_family(nat_families[f], value, &fam[f], err);
		else if (index_of(nat_members, NAT_MEMBERS, key) >= 0)
			rc = nat_member(field, key, value, err);
		else
			rc = validate_fail(err, field, "unknown field");
		if (rc < 0)
			goto out;
	}
	top = fam[0] ? fam[0] : fam[1] ? fam[1] : (json_t *)v;
	for (size_t i = 0; i < NAT_MEMBERS && top != v; i++) {
		const json_t *given = json_object_get(v, nat_members[i]);
		if (given && !json_equal((json_t *)given, json_object_get(top, nat_members[i]))) {
			snprintf(field, sizeof(field), "nat.%s", nat_members[i]);
			rc = validate_fail(err, field, "must equal nat.%s.%s (the top level repeats the IPv4 findings, else the IPv6 ones) or be left out",
					   fam[0] ? "ipv4" : "ipv6", nat_members[i]);
			goto out;
		}
	}
	if (!(*out = json_object())) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < NAT_MEMBERS; i++)
		if ((value = json_object_get(top, nat_members[i])))
			json_object_set(*out, nat_members[i], value);
	for (f = 0; f < (int)NAT_FAMILIES; f++)
		if (fam[f])
			json_object_set(*out, nat_families[f], fam[f]);
out:
	json_decref(fam[1]);
	json_decref(fam[0]);
	return rc;
}
