/* policy: security-group rules; see policy.h */
#include "policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const proto_names[] = {
	[POLICY_ANY] = "any", [POLICY_IPV4] = "ipv4", [POLICY_IPV6] = "ipv6",
	[POLICY_TCP] = "tcp", [POLICY_UDP] = "udp", [POLICY_ICMP] = "icmp",
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int policy_proto_parse(const char *s, enum policy_proto *out)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (strcmp(s, proto_names[i]) == 0) {
			*out = (enum policy_proto)i;
			return 0;
		}
	return -EINVAL;
}

const char *policy_proto_name(enum policy_proto p)
{
	return (unsigned)p < sizeof(proto_names) / sizeof(proto_names[0]) ? proto_names[p] : "?";
}

static int alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* a bare address of either family into *family and a[16] */
static int parse_ip(const char *s, int *family, uint8_t a[16])
{
	memset(a, 0, 16);
	if (inet_pton(AF_INET, s, a) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

int policy_range_parse(const char *s, struct policy_range *out, char *err, size_t errlen)
{
	char buf[2 * INET6_ADDRSTRLEN + 8];
	const char *dash = strchr(s, '-'), *slash = strchr(s, '/');

	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(buf))
		return fail(err, errlen, "\"%.40s...\" is too long for an address range", s);
	strcpy(buf, s);
	if (dash) {
		int f2;

		buf[dash - s] = '\0';
		if (slash)
			return fail(err, errlen, "\"%s\" mixes a range (A-B) and a prefix (/len)", s);
		if (parse_ip(buf, &out->family, out->lo) < 0 || parse_ip(buf + (dash - s) + 1, &f2, out->hi) < 0)
			return fail(err, errlen, "\"%s\" is not a range of two IP addresses (A-B)", s);
		if (f2 != out->family)
			return fail(err, errlen, "\"%s\" mixes IPv4 and IPv6", s);
		if (memcmp(out->lo, out->hi, (size_t)alen(out->family)) > 0)
			return fail(err, errlen, "\"%s\" starts after it ends", s);
		return 0;
	}
	if (slash) {
		char *end;
		long len;

		buf[slash - s] = '\0';
		if (parse_ip(buf, &out->family, out->lo) < 0)
			return fail(err, errlen, "\"%s\" is not a CIDR (its address does not parse)", s);
		errno = 0;
		len = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || len < 0 || len > alen(out->family) * 8)
			return fail(err, errlen, "\"%s\": prefix length must be 0..%d", s, alen(out->family) * 8);
		memcpy(out->hi, out->lo, 16);
		for (int bit = (int)len; bit < alen(out->family) * 8; bit++) {
			uint8_t m = (uint8_t)(0x80u >> (bit % 8));

			if (out->lo[bit / 8] & m)
				return fail(err, errlen, "\"%s\" has bits set past its prefix length (the network is not %s)",
					    s, buf);
			out->hi[bit / 8] |= m;
		}
		return 0;
	}
	if (parse_ip(buf, &out->family, out->lo) < 0)
		return fail(err, errlen, "\"%s\" is not an IP address, a CIDR or a range A-B", s);
	memcpy(out->hi, out->lo, 16);
	return 0;
}

/* the prefix length when [lo, hi] is exactly one prefix, else -1 */
static int range_prefix(const struct policy_range *r)
{
	int bits = alen(r->family) * 8, len = bits;

	while (len > 0) {
		int bit = len - 1;
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));

		if ((r->lo[bit / 8] & m) || !(r->hi[bit / 8] & m))
			break;
		len--;
	}
	for (int bit = 0; bit < len; bit++) {
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));

		if ((r->lo[bit / 8] & m) != (r->hi[bit / 8] & m))
			return -1;
	}
	return len;
}

const char *policy_range_format(const struct policy_range *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int plen = range_prefix(r);

	inet_ntop(r->family, r->lo, a, sizeof(a));
	if (plen == alen(r->family) * 8)
		snprintf(buf, len, "%s", a);
	else if (plen >= 0)
		snprintf(buf, len, "%s/%d", a, plen);
	else
		snprintf(buf, len, "%s-%s", a, inet_ntop(r->family, r->hi, b, sizeof(b)));
	return buf;
}

bool policy_range_contains(const struct policy_range *r, int family, const uint8_t *a)
{
	size_t n = (size_t)alen(family);

	return r->family == family && memcmp(a, r->lo, n) >= 0 && memcmp(a, r->hi, n) <= 0;
}

static int parse_ranges(const json_t *arr, const char *where, const char *key, size_t max,
			struct policy_range **out, size_t *n, char *err, size_t errlen)
{
	size_t i;
	json_t *v;
	char why[POLICY_ERR_MAX];

	*out = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!json_is_array(arr))
		return fail(err, errlen, "%s.%s: must be an array of strings", where, key);
	if (json_array_size(arr) > max)
		return fail(err, errlen, "%s.%s: %zu entries, at most %zu", where, key, json_array_size(arr), max);
	if (json_array_size(arr) == 0)
		return 0;
	*out = calloc(json_array_size(arr), sizeof(**out));
	if (!*out)
		return fail(err, errlen, "%s.%s: out of memory", where, key);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return fail(err, errlen, "%s.%s[%zu]: must be a string", where, key, i);
		if (policy_range_parse(json_string_value(v), &(*out)[i], why, sizeof(why)) < 0)
			return fail(err, errlen, "%s.%s[%zu]: %s", where, key, i, why);
		(*n)++;
	}
	return 0;
}

static int parse_port(const json_t *j, const char *where, const char *key, uint16_t *out,
		      char *err, size_t errlen)
{
	json_int_t v;

	*out = 0;
	if (!j)
		return 0;
	if (!json_is_integer(j))
		return fail(err, errlen, "%s.%s: must be an integer 0..65535", where, key);
	v = json_integer_value(j);
	if (v < 0 || v > 65535)
		return fail(err, errlen, "%s.%s: %lld is out of range 0..65535", where, key, (long long)v);
	*out = (uint16_t)v;
	return 0;
}

int policy_rule_parse(const json_t *j, unsigned flags, const char *where,
		      struct policy_rule *out, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j))
		return fail(err, errlen, "%s: must be an object", where);
	json_object_foreach((json_t *)j, key, v) {
		if (strcmp(key, "ip_protocol") && strcmp(key, "from_port") && strcmp(key, "to_port") &&
		    strcmp(key, "ip_ranges") && strcmp(key, "groups") &&
		    !(strcmp(key, "group_addresses") == 0 && (flags & POLICY_PARSE_RESOLVED)))
			return fail(err, errlen, "%s.%s: unknown field", where, key);
	}
	v = json_object_get(j, "ip_protocol");
	if (!v)
		out->proto = POLICY_ANY;
	else if (!json_is_string(v) || policy_proto_parse(json_string_value(v), &out->proto) < 0)
		return fail(err, errlen, "%s.ip_protocol: must be one of any, ipv4, ipv6, tcp, udp, icmp", where);
	if ((rc = parse_port(json_object_get(j, "from_port"), where, "from_port", &out->from_port, err, errlen)) < 0 ||
	    (rc = parse_port(json_object_get(j, "to_port"), where, "to_port", &out->to_port, err, errlen)) < 0)
		return rc;
	if (out->from_port > out->to_port)
		return fail(err, errlen, "%s.from_port: %u is greater than to_port %u", where, out->from_port,
			    out->to_port);
	if ((out->from_port || out->to_port) && out->proto != POLICY_TCP && out->proto != POLICY_UDP)
		return fail(err, errlen, "%s.from_port: ports apply only to tcp and udp, not %s", where,
			    policy_proto_name(out->proto));
	rc = parse_ranges(json_object_get(j, "ip_ranges"), where, "ip_ranges", POLICY_MAX_RANGES,
			  &out->ranges, &out->nranges, err, errlen);
	if (rc == 0 && (flags & POLICY_PARSE_RESOLVED))
		rc = parse_ranges(json_object_get(j, "group_addresses"), where, "group_addresses",
				  POLICY_MAX_MEMBERS, &out->members, &out->nmembers, err, errlen);
	if (rc < 0) {
		policy_rule_free(out);
		return rc;
	}
	v = json_object_get(j, "groups");
	if (v) {
		size_t i;
		json_t *g;

		if (!json_is_array(v) || json_array_size(v) > POLICY_MAX_GROUPS) {
			policy_rule_free(out);
			return fail(err, errlen, "%s.groups: must be an array of at most %d group ids or names", where,
				    POLICY_MAX_GROUPS);
		}
		out->groups = calloc(json_array_size(v) + 1, sizeof(*out->groups));
		if (!out->groups) {
			policy_rule_free(out);
			return fail(err, errlen, "%s.groups: out of memory", where);
		}
		json_array_foreach(v, i, g) {
			const char *s = json_string_value(g);

			if (!s || !*s || strlen(s) >= POLICY_ID_MAX) {
				policy_rule_free(out);
				return fail(err, errlen, "%s.groups[%zu]: must be a group id or name of 1..%d characters",
					    where, i, POLICY_ID_MAX - 1);
			}
			strcpy(out->groups[out->ngroups++], s);
		}
	}
	return 0;
}

void policy_rule_free(struct policy_rule *r)
{
	free(r->ranges);
	free(r->groups);
	free(r->members);
	memset(r, 0, sizeof(*r));
}

static int parse_rules(const json_t *arr, unsigned flags, const char *key, struct policy_rule **out,
		       size_t *n, char *err, size_t errlen)
{
	size_t i;
	json_t *v;
	char where[64];

	*out = NULL;
	*n = 0;
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return fail(err, errlen, "%s: must be an array of rules", key);
	if (json_array_size(arr) > POLICY_MAX_RULES)
		return fail(err, errlen, "%s: %zu rules, at most %d", key, json_array_size(arr), POLICY_MAX_RULES);
	if (json_array_size(arr) == 0)
		return 0;
	*out = calloc(json_array_size(arr), sizeof(**out));
	if (!*out)
		return fail(err, errlen, "%s: out of memory", key);
	json_array_foreach(arr, i, v) {
		int rc;

		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		rc = policy_rule_parse(v, flags, where, &(*out)[i], err, errlen);
		if (rc < 0)
			return rc;
		(*n)++;
	}
	return 0;
}

static void copy_str(const json_t *j, char *dst, size_t len)
{
	const char *s = json_string_value(j);

	if (s)
		snprintf(dst, len, "%s", s);
}

int policy_group_parse(const json_t *j, unsigned flags, struct policy_group *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(j))
		return fail(err, errlen, "security group: must be an object");
	copy_str(json_object_get(j, "id"), out->id, sizeof(out->id));
	copy_str(json_object_get(j, "name"), out->name, sizeof(out->name));
	if (json_is_integer(json_object_get(j, "revision")))
		out->revision = json_integer_value(json_object_get(j, "revision"));
	rc = parse_rules(json_object_get(j, "inbound_rules"), flags, "inbound_rules", &out->in, &out->nin, err,
			 errlen);
	if (rc == 0)
		rc = parse_rules(json_object_get(j, "outbound_rules"), flags, "outbound_rules", &out->out,
				 &out->nout, err, errlen);
	if (rc < 0)
		policy_group_free(out);
	return rc;
}

void policy_group_free(struct policy_group *g)
{
	for (size_t i = 0; i < g->nin; i++)
		policy_rule_free(&g->in[i]);
	for (size_t i = 0; i < g->nout; i++)
		policy_rule_free(&g->out[i]);
	free(g->in);
	free(g->out);
	memset(g, 0, sizeof(*g));
}

int policy_group_allow_all(struct policy_group *out)
{
	memset(out, 0, sizeof(*out));
	out->in = calloc(1, sizeof(*out->in));
	out->out = calloc(1, sizeof(*out->out));
	if (!out->in || !out->out) {
		policy_group_free(out);
		return -ENOMEM;
	}
	out->nin = out->nout = 1;
	return 0;
}

static json_t *ranges_json(const struct policy_range *r, size_t n)
{
	json_t *a = json_array();
	char buf[2 * INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(policy_range_format(&r[i], buf, sizeof(buf))));
	return a;
}

json_t *policy_rule_json(const struct policy_rule *r, bool resolved)
{
	json_t *j = json_object(), *g = json_array();

	if (!j || !g) {
		json_decref(j);
		json_decref(g);
		return NULL;
	}
	json_object_set_new(j, "ip_protocol", json_string(policy_proto_name(r->proto)));
	json_object_set_new(j, "from_port", json_integer(r->from_port));
	json_object_set_new(j, "to_port", json_integer(r->to_port));
	json_object_set_new(j, "ip_ranges", ranges_json(r->ranges, r->nranges));
	for (size_t i = 0; i < r->ngroups; i++)
		json_array_append_new(g, json_string(r->groups[i]));
	json_object_set_new(j, "groups", g);
	if (resolved)
		json_object_set_new(j, "group_addresses", ranges_json(r->members, r->nmembers));
	return j;
}

/* --- matching ------------------------------------------------------------ */

static bool peer_side_match(const struct policy_rule *r, const struct policy_peer *peer, int family)
{
	if (r->nranges == 0 && r->ngroups == 0)
		return true;
	for (int k = 0; k < peer->naddr; k++) {
		if (peer->addr[k].family != family)
			continue;
		for (size_t i = 0; i < r->nranges; i++)
			if (policy_range_contains(&r->ranges[i], family, peer->addr[k].a))
				return true;
		for (size_t i = 0; i < r->nmembers; i++)
			if (policy_range_contains(&r->members[i], family, peer->addr[k].a))
				return true;
	}
	if (peer->group_id)
		for (size_t i = 0; i < r->ngroups; i++)
			if (strcmp(r->groups[i], peer->group_id) == 0)
				return true;
	return false;
}

static bool proto_in_family(enum policy_proto p, int family)
{
	return !(p == POLICY_IPV4 && family != AF_INET) && !(p == POLICY_IPV6 && family != AF_INET6);
}

static bool ports_all(const struct policy_rule *r)
{
	return r->from_port == 0 && r->to_port == 0;
}

bool policy_rule_match(const struct policy_rule *r, const struct policy_peer *peer, int family,
		       uint8_t ipproto, uint16_t dport)
{
	if (!proto_in_family(r->proto, family))
		return false;
	switch (r->proto) {
	case POLICY_ANY:
	case POLICY_IPV4:
	case POLICY_IPV6:
		break;
	case POLICY_ICMP:
		if (ipproto != (family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6))
			return false;
		break;
	case POLICY_TCP:
	case POLICY_UDP:
		if (ipproto != (r->proto == POLICY_TCP ? IPPROTO_TCP : IPPROTO_UDP))
			return false;
		if (!ports_all(r) && (dport < r->from_port || dport > r->to_port))
			return false;
		break;
	}
	return peer_side_match(r, peer, family);
}

int policy_rules_match(const struct policy_rule *rules, size_t n, const struct policy_peer *peer, int family,
		       uint8_t ipproto, uint16_t dport)
{
	for (size_t i = 0; i < n; i++)
		if (policy_rule_match(&rules[i], peer, family, ipproto, dport))
			return (int)i;
	return -1;
}

bool policy_allows(const struct policy_group *gs, const struct policy_peer *src, const struct policy_group *gd,
		   const struct policy_peer *dst, int family, uint8_t ipproto, uint16_t dport)
{
	return policy_rules_match(gs->out, gs->nout, dst, family, ipproto, dport) >= 0 &&
	       policy_rules_match(gd->in, gd->nin, src, family, ipproto, dport) >= 0;
}

/* can one packet of this family match both rules (protocols and ports)? */
static bool rules_intersect(const struct policy_rule *a, const struct policy_rule *b, int family)
{
	bool a_wide, b_wide;

	if (!proto_in_family(a->proto, family) || !proto_in_family(b->proto, family))
		return false;
	a_wide = a->proto == POLICY_ANY || a->proto == POLICY_IPV4 || a->proto == POLICY_IPV6;
	b_wide = b->proto == POLICY_ANY || b->proto == POLICY_IPV4 || b->proto == POLICY_IPV6;
	if (a_wide || b_wide)
		return true;
	if (a->proto != b->proto)
		return false;
	if (a->proto == POLICY_ICMP || ports_all(a) || ports_all(b))
		return true;
	return a->from_port <= b->to_port && b->from_port <= a->to_port;
}

static bool has_family(const struct policy_peer *p, int family)
{
	for (int k = 0; k < p->naddr; k++)
		if (p->addr[k].family == family)
			return true;
	return false;
}

/* does some packet from s (group gs) to d (group gd) pass both groups? */
static bool one_way(const struct policy_group *gs, const struct policy_peer *s, const struct policy_group *gd,
		    const struct policy_peer *d)
{
	static const int families[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		int family = families[f];

		if (!has_family(s, family) || !has_family(d, family))
			continue;
		for (size_t i = 0; i < gs->nout; i++) {
			if (!peer_side_match(&gs->out[i], d, family))
				continue;
			for (size_t k = 0; k < gd->nin; k++)
				if (peer_side_match(&gd->in[k], s, family) &&
				    rules_intersect(&gs->out[i], &gd->in[k], family))
					return true;
		}
	}
	return false;
}

bool policy_visible(const struct policy_group *ga, const struct policy_peer *a, const struct policy_group *gb,
		    const struct policy_peer *b)
{
	return one_way(ga, a, gb, b) || one_way(gb, b, ga, a);
}
