/* svcjson: request bodies and checked answers of the meshd <-> meshsvc API. */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "svcjson.h"

static int fail(struct svc_err *err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct svc_err *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		snprintf(err->field, sizeof(err->field), "%s", field);
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int svcjson_key_parse(const char *b64, uint8_t out[SVC_KEY_LEN])
{
	size_t n;

	if (!b64 || strlen(b64) != SVC_KEY_B64LEN - 1)
		return -EINVAL;
	if (sodium_base642bin(out, SVC_KEY_LEN, b64, SVC_KEY_B64LEN - 1, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != SVC_KEY_LEN)
		return -EINVAL;
	return 0;
}

void svcjson_key_format(const uint8_t key[SVC_KEY_LEN], char out[SVC_KEY_B64LEN])
{
	sodium_bin2base64(out, SVC_KEY_B64LEN, key, SVC_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

static json_t *endpoints_json(const struct svc_report *r)
{
	json_t *a = json_array();
	char buf[ADDR_STRLEN];

	if (!a)
		return NULL;
	for (int i = 0; i < r->nep && i < SVC_MAX_ENDPOINTS; i++) {
		json_t *e = json_pack("{s:s, s:s}", "source", r->ep[i].source, "address",
				      addr_format(&r->ep[i].addr, buf, sizeof(buf)));
		if (!e || json_array_append_new(a, e) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

const char *svcjson_nat_dep_name(enum wire_dep d)
{
	const char *s = wire_dep_name(d);

	/* "unknown" is what wire_dep_name() says for no name at all */
	return wire_dep_parse(s) < 0 ? NULL : s;
}

json_t *svcjson_nat_json(const struct svc_nat *n)
{
	const char *m = svcjson_nat_dep_name(n->mapping), *f = svcjson_nat_dep_name(n->filtering);
	json_t *o;

	if (!m && !f && n->hairpinning == SVC_NAT_TRI_UNKNOWN)
		return NULL;
	if (!(o = json_object()))
		return NULL;
	if (m)
		json_object_set_new(o, "mapping", json_string(m));
	if (f)
		json_object_set_new(o, "filtering", json_string(f));
	if (n->hairpinning != SVC_NAT_TRI_UNKNOWN)
		json_object_set_new(o, "hairpinning", json_boolean(n->hairpinning == SVC_NAT_TRI_YES));
	return o;
}

const char *svcjson_family_name(enum svc_family f)
{
	switch (f) {
	case SVC_FAM_IPV4:
		return "ipv4";
	case SVC_FAM_IPV6:
		return "ipv6";
	case SVC_FAMILIES:
		break;
	}
	return NULL;
}

json_t *svcjson_nat_families_json(const struct svc_nat nat[SVC_FAMILIES])
{
	json_t *o = NULL, *n;

	for (int f = 0; f < SVC_FAMILIES; f++) {
		if (!(n = svcjson_nat_json(&nat[f])))
			continue;
		if (!o && !(o = json_object())) {
			json_decref(n);
			return NULL;
		}
		json_object_set_new(o, svcjson_family_name((enum svc_family)f), n);
	}
	return o;
}

int svcjson_nat_legacy(json_t *body, const struct svc_report *r)
{
	json_t *n = svcjson_nat_json(&r->nat[SVC_FAM_IPV4]);

	if (!n)
		n = svcjson_nat_json(&r->nat[SVC_FAM_IPV6]);
	if (!n) {
		json_object_del(body, "nat");
		return 0;
	}
	return json_object_set_new(body, "nat", n) < 0 ? -ENOMEM : 0;
}

/* the nat object joins a body only when something is known */
static json_t *with_nat(json_t *body, const struct svc_report *r)
{
	json_t *n;

	if (body && (n = svcjson_nat_families_json(r->nat)))
		json_object_set_new(body, "nat", n);
	return body;
}

json_t *svcjson_register_body(const uint8_t pub[SVC_KEY_LEN], const char *os,
			      const struct svc_report *r)
{
	char key[SVC_KEY_B64LEN];
	json_t *eps = endpoints_json(r);

	if (!eps)
		return NULL;
	svcjson_key_format(pub, key);
	return with_nat(json_pack("{s:s, s:s, s:s, s:o, s:b, s:b}", "public_key", key, "hostname",
				  r->hostname, "os", os, "endpoints", eps, "relay", r->relay,
				  "symmetric_nat", r->symmetric_nat), r);
}

json_t *svcjson_patch_body(const struct svc_report *r)
{
	json_t *eps = endpoints_json(r);

	if (!eps)
		return NULL;
	return with_nat(json_pack("{s:o, s:b, s:s, s:b}", "endpoints", eps, "symmetric_nat",
				  r->symmetric_nat, "hostname", r->hostname, "relay", r->relay), r);
}

static int get_string(const json_t *j, const char *key, bool required, char *out, size_t cap,
		      struct svc_err *err)
{
	const json_t *v = json_object_get(j, key);

	if (!v || json_is_null(v)) {
		if (required)
			return fail(err, key, "missing");
		out[0] = 0;
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, key, "not a string");
	if (json_string_length(v) >= cap)
		return fail(err, key, "longer than %zu bytes", cap - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_bool(const json_t *j, const char *key, bool *out, struct svc_err *err)
{
	const json_t *v = json_object_get(j, key);

	*out = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return fail(err, key, "not true or false");
	*out = json_is_true(v);
	return 0;
}

static int parse_endpoints(const json_t *v, struct svc_device *d, struct svc_err *err)
{
	size_t i;
	const json_t *e;

	d->nep = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return fail(err, "endpoints", "not an array");
	json_array_foreach(v, i, e) {
		struct svc_endpoint *ep;
		char field[40], addr[ADDR_STRLEN + 8];

		if (d->nep >= SVC_MAX_ENDPOINTS)
			break;
		ep = &d->ep[d->nep];
		snprintf(field, sizeof(field), "endpoints[%zu]", i);
		if (!json_is_object(e))
			return fail(err, field, "not an object");
		if (get_string(e, "source", true, ep->source, sizeof(ep->source), err) < 0 ||
		    get_string(e, "address", true, addr, sizeof(addr), err) < 0) {
			if (err) {
				char inner[sizeof(err->field)];
				memcpy(inner, err->field, sizeof(inner));
				snprintf(err->field, sizeof(err->field), "%s.%.20s", field, inner);
			}
			return -EINVAL;
		}
		if (addr_parse(addr, &ep->addr) < 0 || addr_port(&ep->addr) == 0)
			return fail(err, field, "address \"%s\" is not IP:PORT", addr);
		addr_unmap_v4(&ep->addr);
		d->nep++;
	}
	return 0;
}

int svcjson_parse_device(const json_t *j, struct svc_device *d, struct svc_err *err)
{
	char key[SVC_KEY_B64LEN + 8], ip[INET6_ADDRSTRLEN + 8];
	const json_t *rev;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(j))
		return fail(err, "", "device is not an object");
	if (get_string(j, "id", true, d->id, sizeof(d->id), err) < 0 ||
	    get_string(j, "vpc_id", false, d->vpc_id, sizeof(d->vpc_id), err) < 0 ||
	    get_string(j, "public_key", true, key, sizeof(key), err) < 0 ||
	    get_string(j, "hostname", false, d->hostname, sizeof(d->hostname), err) < 0 ||
	    get_string(j, "tunnel_ip", true, ip, sizeof(ip), err) < 0 ||
	    get_string(j, "security_group_id", false, d->security_group_id, sizeof(d->security_group_id), err) < 0 ||
	    get_bool(j, "relay", &d->relay, err) < 0 ||
	    get_bool(j, "symmetric_nat", &d->symmetric_nat, err) < 0 ||
	    get_bool(j, "online", &d->online, err) < 0)
		return -EINVAL;
	if (!d->id[0])
		return fail(err, "id", "empty");
	if (svcjson_key_parse(key, d->public_key) < 0)
		return fail(err, "public_key", "not a base64 32-byte key");
	if (addr_parse_ip(ip, 0, &d->tunnel_ip) < 0 || d->tunnel_ip.sa.sa_family != AF_INET)
		return fail(err, "tunnel_ip", "\"%s\" is not an IPv4 address", ip);
	rev = json_object_get(j, "revision");
	if (rev && !json_is_integer(rev))
		return fail(err, "revision", "not an integer");
	d->revision = rev ? json_integer_value(rev) : 0;
	return parse_endpoints(json_object_get(j, "endpoints"), d, err);
}

static int parse_cidr_in(const json_t *j, struct cidr *out, bool *has, struct svc_err *err)
{
	const json_t *v = json_object_get(j, "ipv4_cidr");

	if (!v)
		return 0;
	if (!json_is_string(v) || cidr_parse(json_string_value(v), false, out) < 0 ||
	    out->family != AF_INET)
		return fail(err, "ipv4_cidr", "not an IPv4 CIDR");
	*has = true;
	return 0;
}

int svcjson_check_vpc(const struct cidr *vpc, const union sockaddr_any *tip, struct svc_err *err)
{
	const char *field = vpc->family == AF_INET6 ? "ipv6_cidr" : "ipv4_cidr";
	unsigned bits = vpc->family == AF_INET6 ? 128 : 32;
	char c[CIDR_STRLEN], a[ADDR_STRLEN];
	uint64_t idx;

	cidr_format(vpc, c, sizeof(c));
	if (vpc->prefix < SVC_VPC_PREFIX_MIN || vpc->prefix > bits)
		return fail(err, field, "%s is not a VPC prefix (/%d to /%u)", c, SVC_VPC_PREFIX_MIN, bits);
	addr_format_ip(tip, a, sizeof(a));
	if (tip->sa.sa_family != vpc->family || cidr_index(vpc, tip, &idx) < 0)
		return fail(err, "tunnel_ip", "%s is outside the VPC %s", a, c);
	/* RFC 3021: in a /31 (and a /32) every address is a host's */
	if (vpc->prefix + 1u < bits &&
	    (idx == 0 || (vpc->family == AF_INET && idx == cidr_size(vpc) - 1)))
		return fail(err, "tunnel_ip", "%s is not a host address of %s", a, c);
	return 0;
}

int svcjson_parse_registration(const json_t *j, struct svc_device *dev,
			       char sealed[SVC_SEALED_MAX], struct cidr *vpc_cidr,
			       bool *has_cidr, struct svc_err *err)
{
	const json_t *vpc;
	int rc;

	*has_cidr = false;
	if ((rc = svcjson_parse_device(j, dev, err)) < 0)
		return rc;
	if (!dev->vpc_id[0])
		return fail(err, "vpc_id", "missing");
	if ((rc = get_string(j, "device_token", true, sealed, SVC_SEALED_MAX, err)) < 0)
		return rc;
	if ((rc = parse_cidr_in(j, vpc_cidr, has_cidr, err)) < 0)
		return rc;
	vpc = json_object_get(j, "vpc");
	if (!*has_cidr && json_is_object(vpc) && (rc = parse_cidr_in(vpc, vpc_cidr, has_cidr, err)) < 0)
		return rc;
	return *has_cidr ? svcjson_check_vpc(vpc_cidr, &dev->tunnel_ip, err) : 0;
}

int svcjson_parse_challenge(const json_t *j, uint8_t challenge[SVC_KEY_LEN], uint8_t service_key[SVC_KEY_LEN],
			    struct svc_err *err)
{
	const char *c, *k;

	if (!json_is_object(j))
		return fail(err, "", "answer is not an object");
	c = json_string_value(json_object_get(j, "challenge"));
	k = json_string_value(json_object_get(j, "service_key"));
	if (!c || svcjson_key_parse(c, challenge) < 0)
		return fail(err, "challenge", "not base64 of 32 bytes");
	if (!k || svcjson_key_parse(k, service_key) < 0)
		return fail(err, "service_key", "not an X25519 public key (base64 of 32 bytes)");
	return 0;
}

int svcjson_parse_changes(const json_t *j, int64_t *revision, json_t **devices,
			  json_t **deleted, bool *full, struct svc_err *err)
{
	const json_t *rev, *f;
	json_t *dev, *del;

	if (!json_is_object(j))
		return fail(err, "", "answer is not an object");
	rev = json_object_get(j, "revision");
	if (!json_is_integer(rev) || json_integer_value(rev) < 0)
		return fail(err, "revision", "not a non-negative integer");
	dev = json_object_get(j, "devices");
	if (!json_is_array(dev))
		return fail(err, "devices", "not an array");
	if (json_array_size(dev) > SVC_DEVICES_MAX)
		return fail(err, "devices", "%zu entries, more than %d", json_array_size(dev), SVC_DEVICES_MAX);
	del = json_object_get(j, "deleted");
	if (del && !json_is_null(del) && !json_is_array(del))
		return fail(err, "deleted", "not an array");
	if (json_array_size(del) > SVC_DEVICES_MAX)
		return fail(err, "deleted", "%zu entries, more than %d", json_array_size(del), SVC_DEVICES_MAX);
	f = json_object_get(j, "full");
	if (f && !json_is_boolean(f))
		return fail(err, "full", "not true or false");
	*full = f && json_is_true(f);
	*revision = json_integer_value(rev);
	*devices = dev;
	*deleted = json_is_array(del) ? del : NULL;
	return 0;
}

static void merge_deleted(json_t *map, const json_t *deleted)
{
	size_t i;
	json_t *d;

	if (deleted)
		json_array_foreach(deleted, i, d)
			if (json_is_string(d))
				json_object_del(map, json_string_value(d));
}

void svcjson_merge_changes(json_t *map, const json_t *devices, const json_t *deleted, bool full,
			   size_t max, struct svc_merge *out)
{
	size_t i;
	json_t *d;

	memset(out, 0, sizeof(*out));
	if (full)
		json_object_clear(map);
	merge_deleted(map, deleted);
	json_array_foreach(devices, i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		if (!id) {
			out->no_id++;
			continue;
		}
		if (json_object_size(map) >= max && !json_object_get(map, id)) {
			out->refused++;
			continue;
		}
		json_object_set(map, id, d);
	}
	/* an id in both lists is gone, as before deletions came first */
	merge_deleted(map, deleted);
}

json_t *svcjson_policy(const json_t *answer)
{
	json_t *sg = json_object_get(answer, "security_group"), *all = json_object_get(answer, "security_groups");
	json_t *o;

	if ((!sg || json_is_null(sg)) && (!all || json_is_null(all)))
		return NULL;
	if (!(o = json_object()))
		return NULL;
	if (sg && !json_is_null(sg))
		json_object_set(o, "security_group", sg);
	if (all && !json_is_null(all))
		json_object_set(o, "security_groups", all);
	return o;
}
