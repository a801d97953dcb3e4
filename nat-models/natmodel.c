/* The NAT model: presets, JSON parsing with precise errors, the check of
 * what stock nftables can express, and the text and JSON forms. No I/O. */
#include "natmodel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct preset {
	const char *name;
	struct natmodel m;
};

/* a preset: hairpinning off, the default timeout and port range */
#define PRESET(name, map, filt, ports) \
	{ name, { map, filt, ports, false, NATMODEL_TIMEOUT_DEFAULT, NATMODEL_PORT_MIN, NATMODEL_PORT_MAX, 0 } }

static const struct preset presets[] = {
	PRESET("full-cone", NATMODEL_EI, NATMODEL_EI, NATMODEL_PORTS_PRESERVE),
	PRESET("restricted-cone", NATMODEL_EI, NATMODEL_AD, NATMODEL_PORTS_PRESERVE),
	PRESET("port-restricted-cone", NATMODEL_EI, NATMODEL_APD, NATMODEL_PORTS_PRESERVE),
	PRESET("symmetric", NATMODEL_APD, NATMODEL_APD, NATMODEL_PORTS_RANDOM),
};
#define N_PRESETS (sizeof(presets) / sizeof(presets[0]))

const char *const natmodel_preset_names[] = {
	"full-cone", "restricted-cone", "port-restricted-cone", "symmetric", NULL
};

/* natmodel's values start at EI (a model always declares a behaviour);
 * the names are wire.h's */
static const enum wire_dep dep_wire[] = {
	[NATMODEL_EI] = WIRE_DEP_EI,
	[NATMODEL_AD] = WIRE_DEP_AD,
	[NATMODEL_APD] = WIRE_DEP_APD,
};

static const enum wire_ports ports_wire[] = {
	[NATMODEL_PORTS_PRESERVE] = WIRE_PORTS_PRESERVE,
	[NATMODEL_PORTS_SEQUENTIAL] = WIRE_PORTS_SEQUENTIAL,
	[NATMODEL_PORTS_RANDOM] = WIRE_PORTS_RANDOM,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

__attribute__((format(printf, 3, 4)))
static int fail(struct natmodel_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EINVAL;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *natmodel_dep_name(enum natmodel_dep d)
{
	return (unsigned int)d < N(dep_wire) ? wire_dep_name(dep_wire[d]) : "?";
}

const char *natmodel_ports_name(enum natmodel_ports p)
{
	return (unsigned int)p < N(ports_wire) ? wire_ports_name(ports_wire[p]) : "?";
}

/* in bit order: NATMODEL_PM_PCP, _NATPMP, _UPNP */
static const char *const portmap_names[] = { "pcp", "nat-pmp", "upnp" };

const char *natmodel_portmap_name(unsigned int bit)
{
	for (size_t i = 0; i < N(portmap_names); i++)
		if (bit == 1u << i)
			return portmap_names[i];
	return NULL;
}

/* ["pcp", "nat-pmp", "upnp"]: any non-empty subset, each name once */
static int parse_portmap(const json_t *v, const char *field, unsigned int *out,
			 struct natmodel_error *err)
{
	unsigned int bits = 0;
	char at[32];
	size_t i;
	json_t *e;

	if (!json_is_array(v) || !json_array_size(v))
		return fail(err, field, "must be a non-empty array of \"pcp\", \"nat-pmp\", \"upnp\"");
	json_array_foreach(v, i, e) {
		unsigned int bit = 0;
		snprintf(at, sizeof(at), "%s[%zu]", field, i);
		if (!json_is_string(e))
			return fail(err, at, "must be a string (\"pcp\", \"nat-pmp\" or \"upnp\")");
		for (size_t k = 0; k < N(portmap_names); k++)
			if (!strcmp(json_string_value(e), portmap_names[k]))
				bit = 1u << k;
		if (!bit)
			return fail(err, at, "unknown protocol \"%.40s\" (expected pcp, nat-pmp or upnp)",
				    json_string_value(e));
		if (bits & bit)
			return fail(err, at, "\"%s\" is listed twice", json_string_value(e));
		bits |= bit;
	}
	*out = bits;
	return 0;
}

int natmodel_preset(const char *name, struct natmodel *out)
{
	for (size_t i = 0; i < N_PRESETS; i++) {
		if (!strcmp(presets[i].name, name)) {
			*out = presets[i].m;
			return 0;
		}
	}
	return -ENOENT;
}

const char *natmodel_preset_name(const struct natmodel *m)
{
	for (size_t i = 0; i < N_PRESETS; i++) {
		const struct natmodel *p = &presets[i].m;
		if (p->mapping == m->mapping && p->filtering == m->filtering && p->ports == m->ports &&
		    p->hairpinning == m->hairpinning && p->udp_timeout == m->udp_timeout &&
		    p->port_min == m->port_min && p->port_max == m->port_max)
			return presets[i].name;
	}
	return NULL;
}

/* What the nftables rendering (nat-models/nft.c) cannot build on a stock
 * kernel. Linux conntrack keeps a free source port for every destination,
 * so a mapping that must differ per destination cannot also preserve it. */
int natmodel_check(const struct natmodel *m, struct natmodel_error *err)
{
	if ((unsigned int)m->mapping > NATMODEL_APD)
		return fail(err, "mapping", "invalid value %d", (int)m->mapping);
	if ((unsigned int)m->filtering > NATMODEL_APD)
		return fail(err, "filtering", "invalid value %d", (int)m->filtering);
	if ((unsigned int)m->ports > NATMODEL_PORTS_RANDOM)
		return fail(err, "port_allocation", "invalid value %d", (int)m->ports);
	if (m->udp_timeout < 1 || m->udp_timeout > NATMODEL_TIMEOUT_MAX)
		return fail(err, "udp_timeout", "%u is out of range 1..%d seconds",
			    m->udp_timeout, NATMODEL_TIMEOUT_MAX);
	if (m->port_min < 1 || m->port_min > m->port_max)
		return fail(err, "port_range", "%u-%u is not a range of ports (1..65535, low-high)",
			    m->port_min, m->port_max);
	if (m->mapping != NATMODEL_EI && m->ports == NATMODEL_PORTS_PRESERVE) {
		fail(err, "port_allocation",
		     "preserve needs endpoint-independent mapping: Linux conntrack keeps a free "
		     "port for every destination, so a %s mapping cannot also preserve it "
		     "(use sequential or random)", natmodel_dep_name(m->mapping));
		return -EOPNOTSUPP;
	}
	return 0;
}

/* mapping and filtering: one of RFC 4787's three names */
static int parse_dep(const json_t *v, const char *field, enum natmodel_dep *out,
		     struct natmodel_error *err)
{
	int w;

	if (!json_is_string(v))
		return fail(err, field, "must be a string");
	if ((w = wire_dep_parse(json_string_value(v))) >= 0)
		for (size_t i = 0; i < N(dep_wire); i++)
			if (dep_wire[i] == (enum wire_dep)w) {
				*out = (enum natmodel_dep)i;
				return 0;
			}
	return fail(err, field, "unknown value \"%.40s\" (expected %s, %s or %s)", json_string_value(v),
		    natmodel_dep_name(NATMODEL_EI), natmodel_dep_name(NATMODEL_AD),
		    natmodel_dep_name(NATMODEL_APD));
}

static int parse_ports(const json_t *v, const char *field, enum natmodel_ports *out,
		       struct natmodel_error *err)
{
	int w;

	if (!json_is_string(v))
		return fail(err, field, "must be a string");
	if ((w = wire_ports_parse(json_string_value(v))) >= 0)
		for (size_t i = 0; i < N(ports_wire); i++)
			if (ports_wire[i] == (enum wire_ports)w) {
				*out = (enum natmodel_ports)i;
				return 0;
			}
	return fail(err, field, "unknown value \"%.40s\" (expected %s, %s or %s)", json_string_value(v),
		    natmodel_ports_name(NATMODEL_PORTS_PRESERVE),
		    natmodel_ports_name(NATMODEL_PORTS_SEQUENTIAL),
		    natmodel_ports_name(NATMODEL_PORTS_RANDOM));
}

static int parse_preset(const json_t *v, const char *field, struct natmodel *out,
			struct natmodel_error *err)
{
	if (!json_is_string(v))
		return fail(err, field, "must be a string");
	if (natmodel_preset(json_string_value(v), out) < 0)
		return fail(err, field, "unknown preset \"%.40s\" (expected full-cone, restricted-cone, "
			    "port-restricted-cone or symmetric)", json_string_value(v));
	return 0;
}

/* "LOW-HIGH", 1 <= LOW <= HIGH <= 65535 */
static int parse_range(const json_t *v, const char *field, struct natmodel *m, struct natmodel_error *err)
{
	unsigned long lo, hi;
	char *end;
	const char *s;

	if (!json_is_string(v))
		return fail(err, field, "must be a string \"LOW-HIGH\" of ports");
	s = json_string_value(v);
	if (s[0] < '0' || s[0] > '9')
		goto bad;
	lo = strtoul(s, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		goto bad;
	hi = strtoul(end + 1, &end, 10);
	if (*end || lo < 1 || lo > hi || hi > 65535)
		goto bad;
	m->port_min = (uint16_t)lo;
	m->port_max = (uint16_t)hi;
	return 0;
bad:
	return fail(err, field, "\"%.40s\" is not a port range LOW-HIGH with 1 <= LOW <= HIGH <= 65535", s);
}

int natmodel_from_json(const json_t *j, struct natmodel *out, struct natmodel_error *err)
{
	struct natmodel m;
	const char *key;
	json_t *v;
	int rc;

	if (json_is_string(j)) {
		rc = parse_preset(j, "", &m, err);
		if (rc < 0)
			return rc;
		*out = m;
		return 0;
	}
	if (!json_is_object(j))
		return fail(err, "", "must be a preset name or an object");

	natmodel_preset("port-restricted-cone", &m);
	v = json_object_get(j, "preset");
	if (v && (rc = parse_preset(v, "preset", &m, err)) < 0)
		return rc;

	json_object_foreach((json_t *)j, key, v) {
		if (!strcmp(key, "preset")) {
			continue;
		} else if (!strcmp(key, "mapping") || !strcmp(key, "filtering")) {
			if ((rc = parse_dep(v, key, key[0] == 'm' ? &m.mapping : &m.filtering, err)) < 0)
				return rc;
		} else if (!strcmp(key, "port_allocation")) {
			if ((rc = parse_ports(v, key, &m.ports, err)) < 0)
				return rc;
		} else if (!strcmp(key, "hairpinning")) {
			if (!json_is_boolean(v))
				return fail(err, key, "must be true or false");
			m.hairpinning = json_is_true(v);
		} else if (!strcmp(key, "port_range")) {
			if ((rc = parse_range(v, key, &m, err)) < 0)
				return rc;
		} else if (!strcmp(key, "port_mapping")) {
			if ((rc = parse_portmap(v, key, &m.port_mapping, err)) < 0)
				return rc;
		} else if (!strcmp(key, "udp_timeout")) {
			if (!json_is_integer(v))
				return fail(err, key, "must be an integer number of seconds");
			json_int_t t = json_integer_value(v);
			if (t < 1 || t > NATMODEL_TIMEOUT_MAX)
				return fail(err, key, "%lld is out of range 1..%d seconds",
					    (long long)t, NATMODEL_TIMEOUT_MAX);
			m.udp_timeout = (uint32_t)t;
		} else {
			return fail(err, key, "unknown member (expected preset, mapping, filtering, "
				    "port_allocation, hairpinning, udp_timeout, port_range or port_mapping)");
		}
	}
	rc = natmodel_check(&m, err);
	if (rc < 0)
		return rc;
	*out = m;
	return 0;
}

int natmodel_parse(const char *spec, struct natmodel *out, struct natmodel_error *err)
{
	json_error_t jerr;
	json_t *j;
	int rc;

	if (spec[strspn(spec, " \t\n")] != '{') {
		if (natmodel_preset(spec, out) == 0)
			return 0;
		return fail(err, "", "unknown preset \"%.40s\" (expected full-cone, restricted-cone, "
			    "port-restricted-cone, symmetric or a JSON object)", spec);
	}
	j = json_loads(spec, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return fail(err, "", "bad JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	rc = natmodel_from_json(j, out, err);
	json_decref(j);
	return rc;
}

static bool default_range(const struct natmodel *m)
{
	return m->port_min == NATMODEL_PORT_MIN && m->port_max == NATMODEL_PORT_MAX;
}

/* ",pcp,upnp" (a leading comma); "" for none */
static void portmap_list(unsigned int bits, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N(portmap_names) && n < len; i++)
		if (bits & (1u << i))
			n += (size_t)snprintf(buf + n, len - n, ",%s", portmap_names[i]);
}

const char *natmodel_format(const struct natmodel *m, char *buf, size_t len)
{
	const char *name = natmodel_preset_name(m);
	char range[32] = "", pm[32], pmtext[48] = "";

	if (!default_range(m))
		snprintf(range, sizeof(range), " port_range=%u-%u", m->port_min, m->port_max);
	portmap_list(m->port_mapping, pm, sizeof(pm));
	if (pm[0])
		snprintf(pmtext, sizeof(pmtext), " port_mapping=%s", pm + 1);
	snprintf(buf, len, "%s (mapping=%s filtering=%s port_allocation=%s hairpinning=%s udp_timeout=%us%s%s)",
		 name ? name : "custom", natmodel_dep_name(m->mapping), natmodel_dep_name(m->filtering),
		 natmodel_ports_name(m->ports), m->hairpinning ? "on" : "off", m->udp_timeout, range, pmtext);
	return buf;
}

json_t *natmodel_to_json(const struct natmodel *m)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:I}",
			      "mapping", natmodel_dep_name(m->mapping),
			      "filtering", natmodel_dep_name(m->filtering),
			      "port_allocation", natmodel_ports_name(m->ports),
			      "hairpinning", m->hairpinning,
			      "udp_timeout", (json_int_t)m->udp_timeout);
	char range[16];

	if (j && !default_range(m)) {
		snprintf(range, sizeof(range), "%u-%u", m->port_min, m->port_max);
		if (json_object_set_new(j, "port_range", json_string(range)) < 0) {
			json_decref(j);
			return NULL;
		}
	}
	if (j && m->port_mapping) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < N(portmap_names); i++)
			if ((m->port_mapping & (1u << i)) && json_array_append_new(a, json_string(portmap_names[i])) < 0)
				json_decref(a), a = NULL;
		if (!a || json_object_set_new(j, "port_mapping", a) < 0) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}
