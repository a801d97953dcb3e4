/* The JSON of meshd <-> meshsvc: bodies and checked answers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "agent/meshd/svcjson.h"

static const char *KEY = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";

static json_t *J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	cr_assert_not_null(j, "%s: %s", s, e.text);
	return j;
}

Test(svcjson, key_round_trip)
{
	uint8_t k[SVC_KEY_LEN];
	char b[SVC_KEY_B64LEN];

	cr_assert_eq(svcjson_key_parse(KEY, k), 0);
	svcjson_key_format(k, b);
	cr_assert_str_eq(b, KEY);
	cr_assert_lt(svcjson_key_parse("short", k), 0);
	cr_assert_lt(svcjson_key_parse("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8yk!=", k), 0);
	cr_assert_lt(svcjson_key_parse(NULL, k), 0);
}

Test(svcjson, bodies)
{
	struct svc_report r = { .nep = 2, .symmetric_nat = true, .relay = false };
	uint8_t k[SVC_KEY_LEN];
	json_t *b;
	char *s;

	strcpy(r.hostname, "n1");
	strcpy(r.ep[0].source, "local");
	cr_assert_eq(addr_parse("10.0.0.2:51820", &r.ep[0].addr), 0);
	strcpy(r.ep[1].source, "stun:203.0.113.1:3478");
	cr_assert_eq(addr_parse("192.0.2.10:40000", &r.ep[1].addr), 0);
	cr_assert_eq(svcjson_key_parse(KEY, k), 0);
	b = svcjson_register_body(k, "linux", &r);
	s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_str_eq(s, "{\"endpoints\":[{\"address\":\"10.0.0.2:51820\",\"source\":\"local\"},"
			    "{\"address\":\"192.0.2.10:40000\",\"source\":\"stun:203.0.113.1:3478\"}],"
			    "\"hostname\":\"n1\",\"os\":\"linux\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\","
			    "\"relay\":false,\"symmetric_nat\":true}");
	free(s);
	json_decref(b);
	b = svcjson_patch_body(&r);
	cr_assert_eq(json_array_size(json_object_get(b, "endpoints")), 2);
	cr_assert(json_is_true(json_object_get(b, "symmetric_nat")));
	cr_assert_null(json_object_get(b, "public_key"));
	cr_assert_null(json_object_get(b, "nat"), "nothing known about the NAT: no object");
	json_decref(b);
}

Test(svcjson, nat_object)
{
#define EI WIRE_DEP_EI
#define AD WIRE_DEP_AD
#define APD WIRE_DEP_APD
#define UNK WIRE_DEP_UNKNOWN
	static const struct {
		const char *name;
		struct svc_nat v4, v6;
		const char *want;	/* NULL: no object */
	} cases[] = {
		{ "nothing known", { UNK, UNK, SVC_NAT_TRI_UNKNOWN }, { UNK, UNK, SVC_NAT_TRI_UNKNOWN }, NULL },
		{ "IPv4 mapping only", { EI, UNK, SVC_NAT_TRI_UNKNOWN }, { UNK, UNK, SVC_NAT_TRI_UNKNOWN },
		  "{\"ipv4\":{\"mapping\":\"endpoint-independent\"}}" },
		{ "IPv4 cone", { EI, AD, SVC_NAT_TRI_UNKNOWN }, { UNK, UNK, SVC_NAT_TRI_UNKNOWN },
		  "{\"ipv4\":{\"filtering\":\"address-dependent\",\"mapping\":\"endpoint-independent\"}}" },
		{ "IPv4 symmetric, no hairpinning", { APD, APD, SVC_NAT_TRI_NO }, { UNK, UNK, SVC_NAT_TRI_UNKNOWN },
		  "{\"ipv4\":{\"filtering\":\"address-and-port-dependent\",\"hairpinning\":false,"
		  "\"mapping\":\"address-and-port-dependent\"}}" },
		{ "IPv4 hairpinning only", { UNK, UNK, SVC_NAT_TRI_YES }, { UNK, UNK, SVC_NAT_TRI_UNKNOWN },
		  "{\"ipv4\":{\"hairpinning\":true}}" },
		{ "IPv6 only (an IPv6-only host)", { UNK, UNK, SVC_NAT_TRI_UNKNOWN }, { EI, APD, SVC_NAT_TRI_UNKNOWN },
		  "{\"ipv6\":{\"filtering\":\"address-and-port-dependent\",\"mapping\":\"endpoint-independent\"}}" },
		{ "both families, different", { EI, APD, SVC_NAT_TRI_NO }, { EI, EI, SVC_NAT_TRI_YES },
		  "{\"ipv4\":{\"filtering\":\"address-and-port-dependent\",\"hairpinning\":false,"
		  "\"mapping\":\"endpoint-independent\"},"
		  "\"ipv6\":{\"filtering\":\"endpoint-independent\",\"hairpinning\":true,"
		  "\"mapping\":\"endpoint-independent\"}}" },
	};
#undef EI
#undef AD
#undef APD
#undef UNK
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_report r = { .nep = 0, .nat = { cases[i].v4, cases[i].v6 } };
		json_t *b = svcjson_patch_body(&r), *n = json_object_get(b, "nat");
		cr_assert_not_null(b);
		if (!cases[i].want) {
			cr_expect_null(n, "%s", cases[i].name);
		} else {
			char *s = json_dumps(n, JSON_COMPACT | JSON_SORT_KEYS);
			cr_expect_str_eq(s, cases[i].want, "%s", cases[i].name);
			free(s);
		}
		json_decref(b);
	}
	cr_expect_null(svcjson_nat_dep_name(WIRE_DEP_UNKNOWN));
	cr_expect_null(svcjson_nat_dep_name((enum wire_dep)42));
	cr_expect_str_eq(svcjson_family_name(SVC_FAM_IPV4), "ipv4");
	cr_expect_str_eq(svcjson_family_name(SVC_FAM_IPV6), "ipv6");
	cr_expect_null(svcjson_family_name(SVC_FAMILIES));
}

#define DEV(extra) "{\"id\":\"d1\",\"vpc_id\":\"v1\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"," \
	"\"hostname\":\"n1\",\"tunnel_ip\":\"100.64.0.1\",\"relay\":false,\"revision\":3" extra "}"

Test(svcjson, device_good)
{
	struct svc_device d;
	struct svc_err e;
	json_t *j = J(DEV(",\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.2:51820\"},"
			  "{\"source\":\"relay\",\"address\":\"[2001:db8::1]:7\"}],\"symmetric_nat\":true,"
			  "\"online\":true,\"nat\":null,\"last_seen\":null,\"allowed_ips\":[\"100.64.0.1/32\"]"));

	cr_assert_eq(svcjson_parse_device(j, &d, &e), 0, "%s %s", e.field, e.msg);
	cr_assert_str_eq(d.id, "d1");
	cr_assert_str_eq(d.vpc_id, "v1");
	cr_assert_str_eq(d.hostname, "n1");
	cr_assert_eq(d.nep, 2);
	cr_assert_str_eq(d.ep[1].source, "relay");
	cr_assert_eq(d.ep[1].addr.sa.sa_family, AF_INET6);
	cr_assert(d.symmetric_nat);
	cr_assert(d.online);
	cr_assert_eq(d.revision, 3);
	json_decref(j);
}

/* every bad field is refused and named */
Test(svcjson, device_bad_fields)
{
	static const struct { const char *json, *field; } cases[] = {
		{ "[]", "" },
		{ "{\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\",\"tunnel_ip\":\"100.64.0.1\"}", "id" },
		{ "{\"id\":7,\"public_key\":\"x\",\"tunnel_ip\":\"100.64.0.1\"}", "id" },
		{ "{\"id\":\"\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\",\"tunnel_ip\":\"100.64.0.1\"}", "id" },
		{ "{\"id\":\"d\",\"public_key\":\"nope\",\"tunnel_ip\":\"100.64.0.1\"}", "public_key" },
		{ "{\"id\":\"d\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\",\"tunnel_ip\":\"300.1.1.1\"}", "tunnel_ip" },
		{ "{\"id\":\"d\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\",\"tunnel_ip\":\"fd00::1\"}", "tunnel_ip" },
		{ "{\"id\":\"d\",\"public_key\":\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"}", "tunnel_ip" },
		{ DEV(",\"relay\":\"yes\""), "relay" },
		{ DEV(",\"revision\":\"3\""), "revision" },
		{ DEV(",\"endpoints\":{}"), "endpoints" },
		{ DEV(",\"endpoints\":[1]"), "endpoints[0]" },
		{ DEV(",\"endpoints\":[{\"source\":\"local\"}]"), "endpoints[0].address" },
		{ DEV(",\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.1\"}]"), "endpoints[0]" },
		{ DEV(",\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.1:0\"}]"), "endpoints[0]" },
		{ DEV(",\"hostname\":\"" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""), "hostname" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svc_device d;
		struct svc_err e;
		memset(&e, 0, sizeof(e));
		json_t *j = J(cases[i].json);
		/* DEV() sets relay and revision first; a later duplicate key wins in jansson */
		cr_assert_lt(svcjson_parse_device(j, &d, &e), 0, "case %zu accepted", i);
		cr_assert_str_eq(e.field, cases[i].field, "case %zu: field %s (%s)", i, e.field, e.msg);
		json_decref(j);
	}
}

Test(svcjson, registration)
{
	struct svc_device d;
	struct svc_err e;
	struct cidr c;
	char sealed[SVC_SEALED_MAX];
	bool has;
	json_t *j = J(DEV(",\"device_token\":\"abc\""));

	cr_assert_eq(svcjson_parse_registration(j, &d, sealed, &c, &has, &e), 0);
	cr_assert_str_eq(sealed, "abc");
	cr_assert_not(has);
	json_decref(j);
	j = J(DEV(",\"device_token\":\"abc\",\"vpc\":{\"ipv4_cidr\":\"100.64.0.0/10\"}"));
	cr_assert_eq(svcjson_parse_registration(j, &d, sealed, &c, &has, &e), 0);
	cr_assert(has);
	cr_assert_eq(c.prefix, 10);
	json_decref(j);
	j = J(DEV(",\"device_token\":\"abc\",\"ipv4_cidr\":\"100.64.0.1/10\""));
	cr_assert_lt(svcjson_parse_registration(j, &d, sealed, &c, &has, &e), 0);
	cr_assert_str_eq(e.field, "ipv4_cidr");
	json_decref(j);
	j = J(DEV(""));
	cr_assert_lt(svcjson_parse_registration(j, &d, sealed, &c, &has, &e), 0);
	cr_assert_str_eq(e.field, "device_token");
	json_decref(j);
}

/* issue 15 point 6: the service does not choose the host's routes. A VPC
 * prefix shorter than /8, a tunnel address outside it or not a host address
 * of it refuses the registration answer, naming the field. */
Test(svcjson, registration_bounds)
{
	static const struct {
		const char *cidr, *tip, *field;	/* field NULL: accepted */
	} v[] = {
		{ "100.64.0.0/10", "100.64.0.1", NULL },
		{ "10.0.0.0/8", "10.255.255.254", NULL },
		{ "100.64.0.0/30", "100.64.0.2", NULL },
		{ "100.64.0.0/31", "100.64.0.0", NULL },	/* RFC 3021: both are hosts */
		{ "100.64.0.0/32", "100.64.0.0", NULL },
		{ "0.0.0.0/1", "100.64.0.1", "ipv4_cidr" },
		{ "0.0.0.0/0", "100.64.0.1", "ipv4_cidr" },
		{ "96.0.0.0/7", "100.64.0.1", "ipv4_cidr" },
		{ "100.64.0.0/24", "100.64.1.1", "tunnel_ip" },
		{ "192.168.0.0/16", "100.64.0.1", "tunnel_ip" },
		{ "100.64.0.0/24", "100.64.0.0", "tunnel_ip" },	/* the network address */
		{ "100.64.0.0/24", "100.64.0.255", "tunnel_ip" },	/* broadcast */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char buf[512];
		struct svc_device d;
		struct svc_err e;
		struct cidr c;
		char sealed[SVC_SEALED_MAX];
		bool has;
		json_t *j;
		int rc;

		snprintf(buf, sizeof(buf), "{\"id\":\"d1\",\"vpc_id\":\"v1\",\"public_key\":\"%s\","
			 "\"tunnel_ip\":\"%s\",\"device_token\":\"abc\",\"vpc\":{\"ipv4_cidr\":\"%s\"}}",
			 KEY, v[i].tip, v[i].cidr);
		j = J(buf);
		rc = svcjson_parse_registration(j, &d, sealed, &c, &has, &e);
		if (!v[i].field) {
			cr_expect_eq(rc, 0, "%s in %s: %s %s", v[i].tip, v[i].cidr, e.field, e.msg);
		} else {
			cr_expect_lt(rc, 0, "%s in %s refused", v[i].tip, v[i].cidr);
			cr_expect_str_eq(e.field, v[i].field, "%s in %s: field", v[i].tip, v[i].cidr);
		}
		json_decref(j);
	}
}

/* a device list longer than the agent takes is refused whole */
Test(svcjson, changes_bounded)
{
	struct svc_err e;
	json_t *dev, *del, *j = json_pack("{s:i, s:[]}", "revision", 1, "devices");
	int64_t rev;
	bool full;

	cr_assert_not_null(j);
	for (int i = 0; i < SVC_DEVICES_MAX; i++)
		json_array_append_new(json_object_get(j, "devices"), json_object());
	cr_expect_eq(svcjson_parse_changes(j, &rev, &dev, &del, &full, &e), 0);
	json_array_append_new(json_object_get(j, "devices"), json_object());
	cr_expect_lt(svcjson_parse_changes(j, &rev, &dev, &del, &full, &e), 0);
	cr_expect_str_eq(e.field, "devices");
	json_array_clear(json_object_get(j, "devices"));
	json_object_set_new(j, "deleted", json_array());
	for (int i = 0; i <= SVC_DEVICES_MAX; i++)
		json_array_append_new(json_object_get(j, "deleted"), json_string("x"));
	cr_expect_lt(svcjson_parse_changes(j, &rev, &dev, &del, &full, &e), 0);
	cr_expect_str_eq(e.field, "deleted");
	json_decref(j);
}

Test(svcjson, changes)
{
	struct svc_err e;
	json_t *dev, *del;
	int64_t rev;
	bool full;
	json_t *j = J("{\"revision\":9,\"devices\":[{}],\"deleted\":[\"a\"],\"full\":true}");

	cr_assert_eq(svcjson_parse_changes(j, &rev, &dev, &del, &full, &e), 0);
	cr_assert(full);
	cr_assert_eq(rev, 9);
	cr_assert_eq(json_array_size(dev), 1);
	cr_assert_eq(json_array_size(del), 1);
	json_decref(j);
	static const char *bad[] = { "[]", "{\"devices\":[]}", "{\"revision\":-1,\"devices\":[]}",
				     "{\"revision\":1}", "{\"revision\":1,\"devices\":[],\"deleted\":3}",
				     "{\"revision\":1,\"devices\":[],\"full\":1}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = J(bad[i]);
		cr_assert_lt(svcjson_parse_changes(j, &rev, &dev, &del, &full, &e), 0, "%s", bad[i]);
		json_decref(j);
	}
}

/* the long poll's answers merged into the id -> device map */
Test(svcjson, merge_changes)
{
	static const struct {
		const char *name;
		const char *devices, *deleted;	/* JSON arrays; deleted may be NULL */
		bool full;
		int skipped;
		const char *ids;	/* the map's ids after it, in insertion order */
	} cases[] = {
		{ "added", "[{\"id\":\"c\"}]", NULL, false, 0, "a b c" },
		{ "updated", "[{\"id\":\"a\",\"v\":2}]", NULL, false, 0, "a b" },
		{ "deleted", "[]", "[\"a\", 7]", false, 0, "b" },
		{ "full replaces", "[{\"id\":\"c\"}]", NULL, true, 0, "c" },
		{ "no id: left out", "[{\"x\":1}, {\"id\":3}, {\"id\":\"c\"}]", NULL, false, 2, "a b c" },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		json_t *map = json_pack("{s:{s:s}, s:{s:s}}", "a", "id", "a", "b", "id", "b");
		json_t *dev = json_loads(cases[c].devices, 0, NULL);
		json_t *del = cases[c].deleted ? json_loads(cases[c].deleted, 0, NULL) : NULL;
		char ids[64] = "";
		const char *k;
		json_t *v;

		cr_assert_not_null(dev);
		struct svc_merge mr;
		svcjson_merge_changes(map, dev, del, cases[c].full, SVC_DEVICES_MAX, &mr);
		cr_expect_eq(mr.no_id, cases[c].skipped, "%s", cases[c].name);
		cr_expect_eq(mr.refused, 0, "%s", cases[c].name);
		json_object_foreach(map, k, v)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s", ids[0] ? " " : "", k);
		cr_expect_str_eq(ids, cases[c].ids, "%s", cases[c].name);
		if (!strcmp(cases[c].name, "updated"))
			cr_expect_eq(json_integer_value(json_object_get(json_object_get(map, "a"), "v")), 2);
		json_decref(map);
		json_decref(dev);
		json_decref(del);
	}
}

/* issue 15 point 7: incremental answers cannot grow the map past
 * SVC_DEVICES_MAX: new ids past it are refused (counted), known ones still
 * update, and deletions make room, within the same answer too */
Test(svcjson, merge_capped)
{
	json_t *map = json_object(), *dev = json_array(), *del = json_array();
	struct svc_merge mr;
	char id[32];

	cr_assert(map && dev && del);
	/* two answers, each within the per-answer bound, together past the map's */
	for (int round = 0; round < 2; round++) {
		json_array_clear(dev);
		for (int i = 0; i < SVC_DEVICES_MAX / 2 + 1; i++) {
			snprintf(id, sizeof(id), "d%d-%d", round, i);
			json_array_append_new(dev, json_pack("{s:s}", "id", id));
		}
		svcjson_merge_changes(map, dev, NULL, false, SVC_DEVICES_MAX, &mr);
		cr_expect_eq(mr.refused, round == 0 ? 0 : 2, "round %d refused %d", round, mr.refused);
	}
	cr_expect_eq(json_object_size(map), SVC_DEVICES_MAX, "the map stops at SVC_DEVICES_MAX (%zu)",
		     json_object_size(map));
	cr_expect_null(json_object_get(map, "d1-8192"), "the last new ids are the refused ones");

	/* at the cap: an update of a known device still lands, a new one does not */
	json_array_clear(dev);
	json_array_append_new(dev, json_pack("{s:s, s:i}", "id", "d0-0", "v", 2));
	json_array_append_new(dev, json_pack("{s:s}", "id", "new"));
	svcjson_merge_changes(map, dev, NULL, false, SVC_DEVICES_MAX, &mr);
	cr_expect_eq(mr.refused, 1);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(map, "d0-0"), "v")), 2);
	cr_expect_null(json_object_get(map, "new"));

	/* a deletion in the same answer makes room for the new one */
	json_array_append_new(del, json_string("d0-1"));
	svcjson_merge_changes(map, dev, del, false, SVC_DEVICES_MAX, &mr);
	cr_expect_eq(mr.refused, 0);
	cr_expect_not_null(json_object_get(map, "new"));
	cr_expect_null(json_object_get(map, "d0-1"));
	cr_expect_eq(json_object_size(map), SVC_DEVICES_MAX);

	/* an id both updated and deleted in one answer is gone */
	json_array_clear(del);
	json_array_append_new(del, json_string("d0-0"));
	svcjson_merge_changes(map, dev, del, false, SVC_DEVICES_MAX, &mr);
	cr_expect_null(json_object_get(map, "d0-0"));
	json_decref(map);
	json_decref(dev);
	json_decref(del);
}

/* issue 16: the group a device is in (sent to relays), and the policy an
 * answer carries, taken as it is (lib/policy checks the groups) */
Test(svcjson, security_groups)
{
	struct svc_device d;
	struct svc_err e;
	json_t *j = J(DEV(",\"security_group_id\":\"sg-web\""));
	json_t *a, *p;

	cr_assert_eq(svcjson_parse_device(j, &d, &e), 0, "%s %s", e.field, e.msg);
	cr_expect_str_eq(d.security_group_id, "sg-web");
	json_decref(j);
	j = J(DEV(""));
	cr_assert_eq(svcjson_parse_device(j, &d, &e), 0);
	cr_expect_str_eq(d.security_group_id, "", "not said: empty");
	json_decref(j);
	j = J(DEV(",\"security_group_id\":7"));
	cr_expect_eq(svcjson_parse_device(j, &d, &e), -EINVAL);
	cr_expect_str_eq(e.field, "security_group_id");
	json_decref(j);

	a = J("{\"revision\":1,\"devices\":[]}");
	cr_expect_null(svcjson_policy(a), "a service without groups: nothing");
	json_decref(a);
	a = J("{\"revision\":1,\"devices\":[],\"security_group\":null}");
	cr_expect_null(svcjson_policy(a));
	json_decref(a);
	a = J("{\"revision\":1,\"devices\":[],\"security_group\":{\"id\":\"g\"},\"security_groups\":[{\"id\":\"g\"}]}");
	p = svcjson_policy(a);
	cr_assert_not_null(p);
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(p, "security_group"), "id")), "g");
	cr_expect_eq(json_array_size(json_object_get(p, "security_groups")), 1);
	json_decref(p);
	json_decref(a);
}
