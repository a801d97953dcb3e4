/* validate: the field tables of the API's request bodies and the checks of
 * each field (validate.h); the NAT findings of a device are validate_nat.c's. */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "validate_internal.h"

int validate_fail(struct verr *err, const char *field, const char *fmt, ...)
{
	va_list ap;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* One field of a body: parse checks and stores it; NULL marks it read-only. */
struct field {
	const char *name;
	int (*parse)(const char *name, const json_t *v, void *spec, struct verr *err);
	bool required;
	unsigned bit;		/* enum device_field, for device bodies */
};

static int check_fields(const json_t *body, const struct field *fields, size_t n, void *spec,
			unsigned *set, struct verr *err)
{
	const char *key;
	json_t *value;
	int rc;

	if (!json_is_object(body))
		return validate_fail(err, NULL, "body must be a JSON object");
	json_object_foreach((json_t *)body, key, value) {
		const struct field *f = NULL;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(fields[i].name, key))
				f = &fields[i];
		if (!f)
			return validate_fail(err, key, "unknown field");
		if (!f->parse)
			return validate_fail(err, key, "read-only field");
		if ((rc = f->parse(key, value, spec, err)) < 0)
			return rc;
		if (set)
			*set |= f->bit;
	}
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && !json_object_get(body, fields[i].name))
			return validate_fail(err, fields[i].name, "required field is missing");
	return 0;
}

/* a JSON string of 1..max bytes without control characters, copied to out */
static int get_string(const char *name, const json_t *v, size_t min, size_t max, char *out,
		      struct verr *err)
{
	if (!json_is_string(v))
		return validate_fail(err, name, "must be a string");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n < min || n > max)
		return validate_fail(err, name, "length must be %zu..%zu bytes", min, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return validate_fail(err, name, "must not contain control characters");
	memcpy(out, s, n + 1);
	return 0;
}

static int get_bool(const char *name, const json_t *v, bool *out, struct verr *err)
{
	if (!json_is_boolean(v))
		return validate_fail(err, name, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

/* RFC 1123 labels (letters, digits, hyphen; underscore too, as seen in the
 * wild), 1..63 bytes each, no hyphen at either end */
static bool is_hostname(const char *s)
{
	size_t label = 0;
	if (!*s)
		return false;
	for (const char *p = s;; p++) {
		if (*p == '.' || !*p) {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (!*p)
				return true;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
		if (label == 0 && *p == '-')
			return false;
		label++;
	}
}

bool validate_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	if (strlen(s) != UUID_STRLEN - 1)
		return false;
	for (size_t i = 0; i < UUID_STRLEN - 1; i++) {
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	}
	return true;
}

void uuid_generate(char out[UUID_STRLEN])
{
	uint8_t b[16];
	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 9562 version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
	snprintf(out, UUID_STRLEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 5.6 date-time */
int time_parse(const char *s, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p;

	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec == 60 ? 59 : sec;
	time_t t = timegm(&tm);
	if (tm.tm_mday != d) /* Feb 29 of a common year rolled over */
		return -EINVAL;
	*out = (int64_t)t - sign * (oh * 3600 + om * 60);
	return 0;
}

void time_format(int64_t t, char out[TIME_STRLEN])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, TIME_STRLEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- VPC ------------------------------------------------------------------- */

static int vpc_name(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct vpc_spec *s = spec;
	int rc = get_string(name, v, 1, WIRE_NAME_MAX, s->name, err);
	if (rc < 0)
		return rc;
	for (const char *p = s->name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return validate_fail(err, name, "may contain only letters, digits, '.', '_' and '-'");
	return 0;
}

static int vpc_cidr(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct vpc_spec *s = spec;
	char buf[CIDR_STRLEN];
	int rc = get_string(name, v, 1, sizeof(buf) - 1, buf, err);
	if (rc < 0)
		return rc;
	if (cidr_parse(buf, false, &s->cidr) < 0 || s->cidr.family != AF_INET)
		return validate_fail(err, name, "must be an IPv4 prefix like 100.64.0.0/10 with no host bits set");
	if (s->cidr.prefix < VPC_PREFIX_MIN || s->cidr.prefix > VPC_PREFIX_MAX)
		return validate_fail(err, name, "prefix length must be /%d../%d", VPC_PREFIX_MIN, VPC_PREFIX_MAX);
	return 0;
}

static const struct field vpc_fields[] = {
	{ "name", vpc_name, true, 0 },
	{ "ipv4_cidr", vpc_cidr, false, 0 },
	{ "id", NULL, false, 0 },
	{ "created_at", NULL, false, 0 },
	{ "revision", NULL, false, 0 },
};

int validate_vpc_create(const json_t *body, struct vpc_spec *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	cidr_parse(VPC_DEFAULT_CIDR, false, &out->cidr);
	return check_fields(body, vpc_fields, sizeof(vpc_fields) / sizeof(vpc_fields[0]), out, NULL, err);
}

/* --- registration key ------------------------------------------------------ */

static int rk_vpc_id(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct regkey_spec *s = spec;
	if (!json_is_string(v) || !validate_uuid(json_string_value(v)))
		return validate_fail(err, name, "must be a VPC id (a lowercase UUID)");
	memcpy(s->vpc_id, json_string_value(v), UUID_STRLEN);
	return 0;
}

static int rk_single_use(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_bool(name, v, &((struct regkey_spec *)spec)->single_use, err);
}

static int rk_relay(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_bool(name, v, &((struct regkey_spec *)spec)->relay, err);
}

static int rk_max_devices(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct regkey_spec *s = spec;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > REGKEY_MAX_DEVICES_MAX)
		return validate_fail(err, name, "must be an integer 1..%d", REGKEY_MAX_DEVICES_MAX);
	s->max_devices = json_integer_value(v);
	return 0;
}

static int rk_expires_at(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct regkey_spec *s = spec;
	if (json_is_null(v)) {
		s->expires_at = 0;
		return 0;
	}
	if (!json_is_string(v) || time_parse(json_string_value(v), &s->expires_at) < 0)
		return validate_fail(err, name, "must be an RFC 3339 time like 2030-01-02T03:04:05Z, or null");
	return 0;
}

static int rk_description(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_string(name, v, 0, WIRE_DESCRIPTION_MAX, ((struct regkey_spec *)spec)->description, err);
}

static const struct field regkey_fields[] = {
	{ "vpc_id", rk_vpc_id, true, 0 },
	{ "single_use", rk_single_use, false, 0 },
	{ "expires_at", rk_expires_at, false, 0 },
	{ "description", rk_description, false, 0 },
	{ "relay", rk_relay, false, 0 },
	{ "max_devices", rk_max_devices, false, 0 },
	{ "id", NULL, false, 0 },
	{ "registrations", NULL, false, 0 },
	{ "secret", NULL, false, 0 },
	{ "created_at", NULL, false, 0 },
};

int validate_regkey_create(const json_t *body, int64_t now, struct regkey_spec *out, struct verr *err)
{
	int rc;
	memset(out, 0, sizeof(*out));
	out->max_devices = REGKEY_MAX_DEVICES_DEFAULT;
	rc = check_fields(body, regkey_fields, sizeof(regkey_fields) / sizeof(regkey_fields[0]), out,
			  NULL, err);
	if (rc < 0)
		return rc;
	if (out->expires_at && out->expires_at <= now)
		return validate_fail(err, "expires_at", "must lie in the future");
	return 0;
}

/* --- device ------------------------------------------------------------------ */

static int dev_public_key(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;
	if (!json_is_string(v) || wgkey_parse(json_string_value(v), s->public_key) < 0)
		return validate_fail(err, name, "must be a WireGuard public key: base64 of 32 bytes");
	memcpy(s->public_key_b64, json_string_value(v), WG_KEY_B64LEN);
	return 0;
}

static int dev_vpc_id(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;
	if (!json_is_string(v) || !validate_uuid(json_string_value(v)))
		return validate_fail(err, name, "must be a VPC id (a lowercase UUID)");
	memcpy(s->vpc_id, json_string_value(v), UUID_STRLEN);
	return 0;
}

static int dev_hostname(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;
	int rc = get_string(name, v, 1, WIRE_HOSTNAME_MAX, s->hostname, err);
	if (rc == 0 && !is_hostname(s->hostname))
		return validate_fail(err, name, "must be a host name: dot-separated labels of letters, digits, '-' and '_'");
	return rc;
}

static int dev_os(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_string(name, v, 0, WIRE_OS_MAX, ((struct device_spec *)spec)->os, err);
}

static int dev_relay(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_bool(name, v, &((struct device_spec *)spec)->relay, err);
}

static int dev_symmetric_nat(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_bool(name, v, &((struct device_spec *)spec)->symmetric_nat, err);
}

/* "stun:HOST:PORT": HOST a name, an IPv4 address or a [bracketed] IPv6 address */
static bool is_stun_source(const char *s)
{
	char host[WIRE_HOSTNAME_MAX + 1];
	union sockaddr_any a;
	const char *colon;
	size_t n;

	if (strncmp(s, "stun:", 5))
		return false;
	s += 5;
	if (addr_parse(s, &a) == 0)
		return addr_port(&a) != 0;
	colon = strrchr(s, ':');
	if (!colon || (n = (size_t)(colon - s)) == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = 0;
	if (!is_hostname(host))
		return false;
	char probe[32];
	snprintf(probe, sizeof(probe), "0.0.0.0%s", colon);
	return addr_parse(probe, &a) == 0 && addr_port(&a) != 0;
}

/* Why an address is no place to send handshakes to, or NULL: an endpoint is
 * where every agent of the VPC sends initiations, so one that reaches the
 * agents' own hosts (loopback, unspecified), many hosts at once (multicast,
 * the limited broadcast) or the link they sit on (link-local, where cloud
 * metadata services live) would make the agents a reflector aimed by one
 * PATCH (issue 15, point 5). IPv4-mapped IPv6 addresses are judged as IPv4. */
static const char *unusable_address(const union sockaddr_any *a)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	size_t n;
	const uint8_t *b = addr_ip_bytes(a, &n);
	bool zero = true;

	if (n == 16 && !memcmp(b, v4mapped, sizeof(v4mapped))) {
		b += 12;
		n = 4;
	}
	for (size_t i = 0; i < n; i++)
		zero &= !b[i];
	if (zero)
		return "unspecified";
	if (n == 4) {
		if (b[0] == 127)
			return "loopback (127.0.0.0/8)";
		if (b[0] == 169 && b[1] == 254)
			return "link-local (169.254.0.0/16)";
		if ((b[0] & 0xf0) == 224)
			return "multicast (224.0.0.0/4)";
		if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
			return "the limited broadcast (255.255.255.255)";
		return NULL;
	}
	static const uint8_t loopback6[16] = { [15] = 1 };
	if (!memcmp(b, loopback6, 16))
		return "loopback (::1)";
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return "link-local (fe80::/10)";
	if (b[0] == 0xff)
		return "multicast (ff00::/8)";
	return NULL;
}

static int endpoint(const json_t *v, size_t i, json_t **out, struct verr *err)
{
	char field[64], addrbuf[ADDR_STRLEN];
	const char *key, *source = NULL, *address = NULL;
	union sockaddr_any a;
	json_t *value;

	if (!json_is_object(v)) {
		snprintf(field, sizeof(field), "endpoints[%zu]", i);
		return validate_fail(err, field, "must be an object with source and address");
	}
	json_object_foreach((json_t *)v, key, value) {
		snprintf(field, sizeof(field), "endpoints[%zu].%.32s", i, key);
		if (strcmp(key, "source") && strcmp(key, "address"))
			return validate_fail(err, field, "unknown field");
		if (!json_is_string(value))
			return validate_fail(err, field, "must be a string");
		if (!strcmp(key, "source"))
			source = json_string_value(value);
		else
			address = json_string_value(value);
	}
	snprintf(field, sizeof(field), "endpoints[%zu].source", i);
	if (!source)
		return validate_fail(err, field, "required field is missing");
	if (strcmp(source, "local") && strcmp(source, "relay") && strcmp(source, "portmap") && !is_stun_source(source))
		return validate_fail(err, field, "must be \"local\", \"relay\", \"portmap\" or \"stun:HOST:PORT\"");
	snprintf(field, sizeof(field), "endpoints[%zu].address", i);
	if (!address)
		return validate_fail(err, field, "required field is missing");
	const char *unusable;
	if (addr_parse(address, &a) < 0 || addr_port(&a) == 0)
		return validate_fail(err, field, "must be IP:PORT (or [IPv6]:PORT) with a port 1..65535");
	if ((unusable = unusable_address(&a)))
		return validate_fail(err, field, "must be a unicast address peers can reach, not %s", unusable);
	*out = json_pack("{s:s, s:s}", "source", source, "address", addr_format(&a, addrbuf, sizeof(addrbuf)));
	return *out ? 0 : -ENOMEM;
}

static int dev_endpoints(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;
	json_t *list, *item, *norm;
	size_t i;
	int rc;

	if (!json_is_array(v))
		return validate_fail(err, name, "must be an array of {\"source\", \"address\"} objects");
	if (json_array_size(v) > WIRE_ENDPOINTS_MAX)
		return validate_fail(err, name, "at most %d endpoints", WIRE_ENDPOINTS_MAX);
	if (!(list = json_array()))
		return -ENOMEM;
	json_array_foreach(v, i, item) {
		if ((rc = endpoint(item, i, &norm, err)) < 0) {
			json_decref(list);
			return rc;
		}
		json_array_append_new(list, norm);
	}
	json_decref(s->endpoints);
	s->endpoints = list;
	return 0;
}

static int dev_nat(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;

	json_decref(s->nat);
	return validate_nat(name, v, &s->nat, err);
}

static int dev_enforces_policy(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_bool(name, v, &((struct device_spec *)spec)->enforces_policy, err);
}

/* a group's id or name; the store finds it in the device's VPC */
static int dev_security_group(const char *name, const json_t *v, void *spec, struct verr *err)
{
	return get_string(name, v, 1, WIRE_NAME_MAX, ((struct device_spec *)spec)->security_group, err);
}

#define DEVICE_READ_ONLY(n) { n, NULL, false, 0 }
static const struct field register_fields[] = {
	{ "public_key", dev_public_key, true, DEV_PUBLIC_KEY },
	{ "vpc_id", dev_vpc_id, false, DEV_VPC_ID },
	{ "hostname", dev_hostname, false, DEV_HOSTNAME },
	{ "os", dev_os, false, DEV_OS },
	{ "endpoints", dev_endpoints, false, DEV_ENDPOINTS },
	{ "relay", dev_relay, false, DEV_RELAY },
	{ "symmetric_nat", dev_symmetric_nat, false, DEV_SYMMETRIC_NAT },
	{ "nat", dev_nat, false, DEV_NAT },
	{ "proof", validate_dev_proof, false, DEV_PROOF },
	{ "enforces_policy", dev_enforces_policy, false, DEV_ENFORCES_POLICY },
	DEVICE_READ_ONLY("id"), DEVICE_READ_ONLY("tunnel_ip"), DEVICE_READ_ONLY("allowed_ips"),
	DEVICE_READ_ONLY("revision"), DEVICE_READ_ONLY("online"), DEVICE_READ_ONLY("last_seen"),
	DEVICE_READ_ONLY("security_group_id"),
};

/* what a device may change about itself */
static const struct field patch_fields[] = {
	{ "endpoints", dev_endpoints, false, DEV_ENDPOINTS },
	{ "symmetric_nat", dev_symmetric_nat, false, DEV_SYMMETRIC_NAT },
	{ "nat", dev_nat, false, DEV_NAT },
	{ "hostname", dev_hostname, false, DEV_HOSTNAME },
	{ "relay", dev_relay, false, DEV_RELAY },
	{ "security_group_id", dev_security_group, false, DEV_SECURITY_GROUP },
	DEVICE_READ_ONLY("id"), DEVICE_READ_ONLY("vpc_id"), DEVICE_READ_ONLY("public_key"),
	DEVICE_READ_ONLY("os"), DEVICE_READ_ONLY("tunnel_ip"), DEVICE_READ_ONLY("allowed_ips"),
	DEVICE_READ_ONLY("revision"), DEVICE_READ_ONLY("online"), DEVICE_READ_ONLY("last_seen"),
	DEVICE_READ_ONLY("enforces_policy"),
};

static int device_body(const json_t *body, const struct field *fields, size_t n,
		       struct device_spec *out, struct verr *err)
{
	memset(out, 0, sizeof(*out));
	int rc = check_fields(body, fields, n, out, &out->set, err);
	if (rc < 0)
		device_spec_clear(out);
	return rc;
}

int validate_device_register(const json_t *body, struct device_spec *out, struct verr *err)
{
	return device_body(body, register_fields, sizeof(register_fields) / sizeof(register_fields[0]),
			   out, err);
}

int validate_device_patch(const json_t *body, struct device_spec *out, struct verr *err)
{
	int rc = device_body(body, patch_fields, sizeof(patch_fields) / sizeof(patch_fields[0]), out, err);
	if (rc == 0 && !out->set)
		return validate_fail(err, NULL, "nothing to change: give endpoints, symmetric_nat, nat, hostname, relay"
						   " or security_group_id");
	return rc;
}

void device_spec_clear(struct device_spec *spec)
{
	json_decref(spec->endpoints);
	json_decref(spec->nat);
	spec->endpoints = spec->nat = NULL;
	spec->set = 0;
}

/* --- query parameters ---------------------------------------------------------- */

static int non_negative(const char *s, int64_t max, int64_t *out)
{
	int64_t v = 0;
	if (!*s || strlen(s) > 18)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int validate_since(const char *s, int64_t *out, struct verr *err)
{
	if (non_negative(s, INT64_MAX / 16, out) < 0)
		return validate_fail(err, "since", "must be a revision: a non-negative integer");
	return 0;
}

int validate_wait(const char *s, int *out, struct verr *err)
{
	int64_t v;
	if (non_negative(s, WIRE_WAIT_MAX_S, &v) < 0)
		return validate_fail(err, "wait", "must be a number of seconds, 0..%d", WIRE_WAIT_MAX_S);
	*out = (int)v;
	return 0;
}
