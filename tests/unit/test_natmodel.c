#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "nat-models/natmodel.h"

#define EI NATMODEL_EI
#define AD NATMODEL_AD
#define APD NATMODEL_APD
#define PRES NATMODEL_PORTS_PRESERVE
#define SEQ NATMODEL_PORTS_SEQUENTIAL
#define RND NATMODEL_PORTS_RANDOM

static bool same(const struct natmodel *a, const struct natmodel *b)
{
	return a->mapping == b->mapping && a->filtering == b->filtering && a->ports == b->ports &&
	       a->hairpinning == b->hairpinning && a->udp_timeout == b->udp_timeout &&
	       a->port_min == b->port_min && a->port_max == b->port_max && a->port_mapping == b->port_mapping;
}

/* the default port range */
#define DR NATMODEL_PORT_MIN, NATMODEL_PORT_MAX, 0

struct good_case {
	const char *in;
	struct natmodel want;
	const char *name;	/* natmodel_preset_name, NULL for custom */
};

Test(natmodel, presets_and_good_json)
{
	static const struct good_case cases[] = {
		{ "full-cone", { EI, EI, PRES, false, 120, DR }, "full-cone" },
		{ "restricted-cone", { EI, AD, PRES, false, 120, DR }, "restricted-cone" },
		{ "port-restricted-cone", { EI, APD, PRES, false, 120, DR }, "port-restricted-cone" },
		{ "symmetric", { APD, APD, RND, false, 120, DR }, "symmetric" },
		{ "{}", { EI, APD, PRES, false, 120, DR }, "port-restricted-cone" },
		{ " {\"preset\": \"symmetric\"}", { APD, APD, RND, false, 120, DR }, "symmetric" },
		{ "{\"filtering\": \"address-dependent\"}", { EI, AD, PRES, false, 120, DR }, "restricted-cone" },
		{ "{\"preset\": \"full-cone\", \"hairpinning\": true, \"udp_timeout\": 30}",
		  { EI, EI, PRES, true, 30, DR }, NULL },
		{ "{\"udp_timeout\": 3, \"preset\": \"full-cone\"}", { EI, EI, PRES, false, 3, DR }, NULL },
		{ "{\"mapping\": \"address-dependent\", \"filtering\": \"endpoint-independent\", "
		  "\"port_allocation\": \"sequential\"}", { AD, EI, SEQ, false, 120, DR }, NULL },
		{ "{\"preset\": \"symmetric\", \"port_allocation\": \"sequential\", \"udp_timeout\": 86400}",
		  { APD, APD, SEQ, false, 86400, DR }, NULL },
		{ "{\"preset\": \"port-restricted-cone\", \"port_allocation\": \"random\", "
		  "\"hairpinning\": false, \"udp_timeout\": 1}", { EI, APD, RND, false, 1, DR }, NULL },
		{ "{\"port_range\": \"2000-2001\", \"port_allocation\": \"random\"}",
		  { EI, APD, RND, false, 120, 2000, 2001, 0 }, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct natmodel m;
		struct natmodel_error err = { "", "" };
		int rc = natmodel_parse(cases[i].in, &m, &err);
		cr_assert_eq(rc, 0, "%s: rc %d %s: %s", cases[i].in, rc, err.field, err.reason);
		cr_expect_eq(m.mapping, cases[i].want.mapping, "%s", cases[i].in);
		cr_expect_eq(m.filtering, cases[i].want.filtering, "%s", cases[i].in);
		cr_expect_eq(m.ports, cases[i].want.ports, "%s", cases[i].in);
		cr_expect_eq(m.hairpinning, cases[i].want.hairpinning, "%s", cases[i].in);
		cr_expect_eq(m.udp_timeout, cases[i].want.udp_timeout, "%s", cases[i].in);
		cr_expect_eq(m.port_min, cases[i].want.port_min, "%s", cases[i].in);
		cr_expect_eq(m.port_max, cases[i].want.port_max, "%s", cases[i].in);
		const char *name = natmodel_preset_name(&m);
		if (cases[i].name)
			cr_expect(name && !strcmp(name, cases[i].name), "%s: %s", cases[i].in, name);
		else
			cr_expect_null(name, "%s: %s", cases[i].in, name);
	}
}

struct bad_case {
	const char *in;
	int rc;
	const char *field;
	const char *reason;	/* a part of the reason */
};

Test(natmodel, bad_input_names_field_and_reason)
{
	static const struct bad_case cases[] = {
		{ "", -EINVAL, "", "unknown preset \"\"" },
		{ "cone", -EINVAL, "", "unknown preset \"cone\"" },
		{ "Full-Cone", -EINVAL, "", "unknown preset" },
		{ "{", -EINVAL, "", "bad JSON at line 1" },
		{ "{\"mapping\": \"a\", \"mapping\": \"b\"}", -EINVAL, "", "duplicate" },
		{ "{} {}", -EINVAL, "", "bad JSON" },
		{ "[1]", -EINVAL, "", "or a JSON object" },
		{ "{\"preset\": \"nope\"}", -EINVAL, "preset", "unknown preset \"nope\"" },
		{ "{\"preset\": 3}", -EINVAL, "preset", "must be a string" },
		{ "{\"mapping\": \"eim\"}", -EINVAL, "mapping",
		  "unknown value \"eim\" (expected endpoint-independent, address-dependent or "
		  "address-and-port-dependent)" },
		{ "{\"mapping\": 1}", -EINVAL, "mapping", "must be a string" },
		{ "{\"filtering\": \"port-dependent\"}", -EINVAL, "filtering", "unknown value" },
		{ "{\"filtering\": null}", -EINVAL, "filtering", "must be a string" },
		{ "{\"port_allocation\": \"odd\"}", -EINVAL, "port_allocation",
		  "expected preserve, sequential or random" },
		{ "{\"hairpinning\": \"yes\"}", -EINVAL, "hairpinning", "must be true or false" },
		{ "{\"hairpinning\": 1}", -EINVAL, "hairpinning", "must be true or false" },
		{ "{\"udp_timeout\": 0}", -EINVAL, "udp_timeout", "0 is out of range 1..86400" },
		{ "{\"udp_timeout\": -5}", -EINVAL, "udp_timeout", "out of range" },
		{ "{\"udp_timeout\": 86401}", -EINVAL, "udp_timeout", "out of range" },
		{ "{\"udp_timeout\": \"30\"}", -EINVAL, "udp_timeout", "must be an integer" },
		{ "{\"udp_timeout\": 1.5}", -EINVAL, "udp_timeout", "must be an integer" },
		{ "{\"colour\": \"red\"}", -EINVAL, "colour", "unknown member" },
		{ "{\"port_range\": \"0-10\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"20-10\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"1-65536\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"10-\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"-10\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"10-20x\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": \"10 - 20\"}", -EINVAL, "port_range", "is not a port range" },
		{ "{\"port_range\": [10, 20]}", -EINVAL, "port_range", "must be a string" },
		{ "{\"mapping\": \"address-dependent\"}", -EOPNOTSUPP, "port_allocation",
		  "preserve needs endpoint-independent mapping" },
		{ "{\"preset\": \"symmetric\", \"port_allocation\": \"preserve\"}", -EOPNOTSUPP,
		  "port_allocation", "address-and-port-dependent mapping cannot also preserve" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct natmodel m = { APD, APD, RND, true, 7, 20000, 20099, 0 }, before = m;
		struct natmodel_error err = { "x", "x" };
		int rc = natmodel_parse(cases[i].in, &m, &err);
		cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].in, rc);
		cr_expect_str_eq(err.field, cases[i].field, "%s", cases[i].in);
		cr_expect(strstr(err.reason, cases[i].reason), "%s: reason \"%s\"", cases[i].in, err.reason);
		cr_expect(same(&m, &before), "%s: output changed on failure", cases[i].in);
	}
}

Test(natmodel, from_json_value_kinds)
{
	struct natmodel m;
	struct natmodel_error err;
	json_t *j = json_string("restricted-cone");

	cr_assert_eq(natmodel_from_json(j, &m, &err), 0);
	cr_expect_eq(m.filtering, AD);
	json_decref(j);
	j = json_integer(4);
	cr_expect_eq(natmodel_from_json(j, &m, &err), -EINVAL);
	cr_expect_str_eq(err.field, "");
	cr_expect_str_eq(err.reason, "must be a preset name or an object");
	json_decref(j);
	j = json_string("cgnat");
	cr_expect_eq(natmodel_from_json(j, &m, NULL), -EINVAL);	/* err may be NULL */
	json_decref(j);
}

Test(natmodel, check_rejects_invalid_structs)
{
	static const struct natmodel bad[] = {
		{ (enum natmodel_dep)3, EI, PRES, false, 120, DR },
		{ EI, (enum natmodel_dep)-1, PRES, false, 120, DR },
		{ EI, EI, (enum natmodel_ports)9, false, 120, DR },
		{ EI, EI, PRES, false, 0, DR },
		{ EI, EI, PRES, false, NATMODEL_TIMEOUT_MAX + 1, DR },
		{ EI, EI, PRES, false, 120, 0, 10, 0 },
		{ EI, EI, PRES, false, 120, 11, 10, 0 },
	};
	static const char *const fields[] = { "mapping", "filtering", "port_allocation", "udp_timeout", "udp_timeout",
					      "port_range", "port_range" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct natmodel_error err = { "", "" };
		cr_expect_eq(natmodel_check(&bad[i], &err), -EINVAL, "case %zu", i);
		cr_expect_str_eq(err.field, fields[i], "case %zu", i);
	}
	for (int map = EI; map <= APD; map++) {
		for (int ports = PRES; ports <= RND; ports++) {
			struct natmodel m = { (enum natmodel_dep)map, APD, (enum natmodel_ports)ports, true, 60,
					       NATMODEL_PORT_MIN, NATMODEL_PORT_MAX, 0 };
			int want = map != EI && ports == PRES ? -EOPNOTSUPP : 0;
			cr_expect_eq(natmodel_check(&m, NULL), want, "mapping %d ports %d", map, ports);
		}
	}
}

Test(natmodel, format)
{
	static const struct { struct natmodel m; const char *text; } cases[] = {
		{ { EI, APD, PRES, false, 120, DR },
		  "port-restricted-cone (mapping=endpoint-independent filtering=address-and-port-dependent "
		  "port_allocation=preserve hairpinning=off udp_timeout=120s)" },
		{ { APD, APD, RND, false, 120, DR },
		  "symmetric (mapping=address-and-port-dependent filtering=address-and-port-dependent "
		  "port_allocation=random hairpinning=off udp_timeout=120s)" },
		{ { AD, EI, SEQ, true, 3, DR },
		  "custom (mapping=address-dependent filtering=endpoint-independent "
		  "port_allocation=sequential hairpinning=on udp_timeout=3s)" },
	};
	char buf[NATMODEL_STRLEN];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_str_eq(natmodel_format(&cases[i].m, buf, sizeof(buf)), cases[i].text);
		cr_expect_lt(strlen(buf), sizeof(buf) - 1, "NATMODEL_STRLEN leaves room");
	}
}

Test(natmodel, json_round_trip)
{
	for (int map = EI; map <= APD; map++)
		for (int filt = EI; filt <= APD; filt++)
			for (int ports = SEQ; ports <= RND; ports++) {
				struct natmodel m = { (enum natmodel_dep)map, (enum natmodel_dep)filt,
						      (enum natmodel_ports)ports, (map + filt) % 2 == 0,
						      (uint32_t)(1 + map * 10 + filt),
						      (uint16_t)(ports == RND ? 40000 : NATMODEL_PORT_MIN),
						      (uint16_t)(ports == RND ? 40009 : NATMODEL_PORT_MAX), 0 }, back;
				struct natmodel_error err;
				json_t *j = natmodel_to_json(&m);
				cr_assert_not_null(j);
				cr_expect_eq(natmodel_from_json(j, &back, &err), 0, "%s: %s", err.field, err.reason);
				cr_expect(same(&m, &back), "mapping %d filtering %d ports %d", map, filt, ports);
				json_decref(j);
			}
}

Test(natmodel, preset_lookup)
{
	struct natmodel m;
	int n = 0;

	for (const char *const *p = natmodel_preset_names; *p; p++, n++) {
		cr_expect_eq(natmodel_preset(*p, &m), 0, "%s", *p);
		cr_expect_str_eq(natmodel_preset_name(&m), *p);
		cr_expect_eq(natmodel_check(&m, NULL), 0, "%s renders", *p);
	}
	cr_expect_eq(n, 4);
	cr_expect_eq(natmodel_preset("cgnat", &m), -ENOENT);
}

Test(natmodel, port_range)
{
	struct natmodel m;
	struct natmodel_error err;
	char buf[NATMODEL_STRLEN];

	cr_assert_eq(natmodel_parse("symmetric", &m, &err), 0);
	cr_expect_eq(m.port_min, NATMODEL_PORT_MIN, "presets take the default range");
	cr_expect_eq(m.port_max, NATMODEL_PORT_MAX);
	cr_expect_null(strstr(natmodel_format(&m, buf, sizeof(buf)), "port_range"), "%s", buf);

	cr_assert_eq(natmodel_parse("{\"preset\": \"symmetric\", \"port_range\": \"40000-40009\"}", &m, &err), 0);
	cr_expect_eq(m.port_min, 40000);
	cr_expect_eq(m.port_max, 40009);
	cr_expect_str_eq(natmodel_format(&m, buf, sizeof(buf)),
			 "custom (mapping=address-and-port-dependent filtering=address-and-port-dependent "
			 "port_allocation=random hairpinning=off udp_timeout=120s port_range=40000-40009)");
	cr_expect_null(natmodel_preset_name(&m), "a preset has the default range");
	json_t *j = natmodel_to_json(&m);
	cr_assert_not_null(j);
	cr_expect_str_eq(json_string_value(json_object_get(j, "port_range")), "40000-40009");
	json_decref(j);

	cr_assert_eq(natmodel_parse("{\"port_range\": \"7-7\"}", &m, &err), 0, "one port is a range");
	m.port_min = 8;
	cr_expect_eq(natmodel_check(&m, &err), -EINVAL, "min above max");
	cr_expect_str_eq(err.field, "port_range");
}

Test(natmodel, port_mapping)
{
	static const struct { const char *in; unsigned int bits; const char *text; } good[] = {
		{ "{\"port_mapping\": [\"pcp\"]}", NATMODEL_PM_PCP, "port_mapping=pcp)" },
		{ "{\"port_mapping\": [\"upnp\", \"nat-pmp\"]}", NATMODEL_PM_UPNP | NATMODEL_PM_NATPMP,
		  "port_mapping=nat-pmp,upnp)" },
		{ "{\"preset\": \"symmetric\", \"port_mapping\": [\"nat-pmp\", \"upnp\", \"pcp\"]}",
		  NATMODEL_PM_PCP | NATMODEL_PM_NATPMP | NATMODEL_PM_UPNP, "port_mapping=pcp,nat-pmp,upnp)" },
	};
	static const struct { const char *in; const char *field, *reason; } bad[] = {
		{ "{\"port_mapping\": []}", "port_mapping", "must be a non-empty array" },
		{ "{\"port_mapping\": \"pcp\"}", "port_mapping", "must be a non-empty array" },
		{ "{\"port_mapping\": {\"pcp\": true}}", "port_mapping", "must be a non-empty array" },
		{ "{\"port_mapping\": [\"pcp\", \"pcp\"]}", "port_mapping[1]", "\"pcp\" is listed twice" },
		{ "{\"port_mapping\": [\"upnp\", \"igd\"]}", "port_mapping[1]", "unknown protocol \"igd\"" },
		{ "{\"port_mapping\": [\"PCP\"]}", "port_mapping[0]", "unknown protocol \"PCP\"" },
		{ "{\"port_mapping\": [6887]}", "port_mapping[0]", "must be a string" },
		{ "{\"port_mapping\": [null]}", "port_mapping[0]", "must be a string" },
	};
	char buf[NATMODEL_STRLEN];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct natmodel m, back;
		struct natmodel_error err = { "", "" };
		cr_assert_eq(natmodel_parse(good[i].in, &m, &err), 0, "%s: %s: %s", good[i].in, err.field, err.reason);
		cr_expect_eq(m.port_mapping, good[i].bits, "%s", good[i].in);
		natmodel_format(&m, buf, sizeof(buf));
		cr_expect(strstr(buf, good[i].text), "%s: %s", good[i].in, buf);
		json_t *j = natmodel_to_json(&m);
		cr_assert_not_null(j);
		cr_expect_eq(natmodel_from_json(j, &back, &err), 0, "%s", good[i].in);
		cr_expect(same(&m, &back), "%s: round trip", good[i].in);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct natmodel m = { APD, APD, RND, true, 7, 20000, 20099, NATMODEL_PM_UPNP }, before = m;
		struct natmodel_error err = { "x", "x" };
		cr_expect_eq(natmodel_parse(bad[i].in, &m, &err), -EINVAL, "%s", bad[i].in);
		cr_expect_str_eq(err.field, bad[i].field, "%s", bad[i].in);
		cr_expect(strstr(err.reason, bad[i].reason), "%s: reason \"%s\"", bad[i].in, err.reason);
		cr_expect(same(&m, &before), "%s: output changed on failure", bad[i].in);
	}
	/* a preset keeps its name with port mapping; without it, none is listed */
	struct natmodel m;
	cr_assert_eq(natmodel_parse("{\"preset\": \"symmetric\", \"port_mapping\": [\"pcp\"]}", &m, NULL), 0);
	cr_expect_str_eq(natmodel_preset_name(&m), "symmetric");
	cr_assert_eq(natmodel_parse("symmetric", &m, NULL), 0);
	cr_expect_eq(m.port_mapping, 0u);
	cr_expect_null(strstr(natmodel_format(&m, buf, sizeof(buf)), "port_mapping"), "%s", buf);
	json_t *j = natmodel_to_json(&m);
	cr_expect_null(json_object_get(j, "port_mapping"));
	json_decref(j);
	cr_expect_str_eq(natmodel_portmap_name(NATMODEL_PM_NATPMP), "nat-pmp");
	cr_expect_null(natmodel_portmap_name(NATMODEL_PM_PCP | NATMODEL_PM_UPNP));
}
