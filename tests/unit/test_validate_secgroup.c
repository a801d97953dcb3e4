/* the bodies of /api/security-groups and the device fields of issue 16:
 * every field accepted as it may be, and refused, with its name, as it may
 * not */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service/validate.h"

#define VPC "11111111-1111-4111-8111-111111111111"

static json_t *body(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	cr_assert_not_null(j, "%s: %s", text, e.text);
	return j;
}

Test(validate_secgroup, accepts_and_normalises)
{
	struct secgroup_spec s;
	struct verr e;
	json_t *b = body("{\"vpc_id\":\"" VPC "\",\"name\":\"web-1\",\"description\":\"the web\","
			 "\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,"
			 "\"ip_ranges\":[\"10.0.0.0/8\",\"10.1.0.1-10.1.0.9\",\"fd00::1\"],\"groups\":[\"clients\"]}]}");

	cr_assert_eq(validate_secgroup_create(b, &s, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect_str_eq(s.vpc_id, VPC);
	cr_expect_str_eq(s.name, "web-1");
	cr_expect_str_eq(s.description, "the web");
	cr_expect_eq(s.set, SG_VPC_ID | SG_NAME | SG_DESCRIPTION | SG_INBOUND | SG_OUTBOUND);
	cr_expect_eq(json_array_size(s.outbound), 0, "absent rules: none");
	char *in = json_dumps(s.inbound, JSON_COMPACT);
	cr_expect_str_eq(in, "[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,\"ip_ranges\":"
			     "[\"10.0.0.0/8\",\"10.1.0.1-10.1.0.9\",\"fd00::1\"],\"groups\":[\"clients\"]}]");
	free(in);
	secgroup_spec_clear(&s);
	json_decref(b);
}

Test(validate_secgroup, refuses_each_field_by_name)
{
	static const struct {
		const char *body, *field;
	} cases[] = {
		{ "[]", "" },
		{ "{\"name\":\"a\"}", "vpc_id" },
		{ "{\"vpc_id\":\"" VPC "\"}", "name" },
		{ "{\"vpc_id\":\"nope\",\"name\":\"a\"}", "vpc_id" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"\"}", "name" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a b\"}", "name" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "name" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"" VPC "\"}", "name" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"description\":7}", "description" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"description\":\"a\\nb\"}", "description" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"id\":\"x\"}", "id" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"revision\":1}", "revision" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"colour\":1}", "colour" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":{}}", "inbound_rules" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[7]}", "outbound_rules[0]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{\"ip_protocol\":\"gre\"}]}",
		  "inbound_rules[0].ip_protocol" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{\"ip_protocol\":\"udp\",\"from_port\":-1}]}",
		  "inbound_rules[0].from_port" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{\"ip_protocol\":\"udp\",\"to_port\":65536}]}",
		  "inbound_rules[0].to_port" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{\"ip_protocol\":\"udp\",\"from_port\":\"80\"}]}",
		  "inbound_rules[0].from_port" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{},{\"ip_protocol\":\"tcp\",\"from_port\":9,\"to_port\":8}]}",
		  "inbound_rules[1].from_port" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"inbound_rules\":[{\"ip_protocol\":\"any\",\"to_port\":8}]}",
		  "inbound_rules[0].from_port" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":[\"10.0.0.1/8\"]}]}",
		  "outbound_rules[0].ip_ranges[0]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":[\"10.0.0.0/33\"]}]}",
		  "outbound_rules[0].ip_ranges[0]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":[\"10.0.0.0/8\",\"10.0.0.1-fd00::1\"]}]}",
		  "outbound_rules[0].ip_ranges[1]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":[\"10.0.0.9-10.0.0.1\"]}]}",
		  "outbound_rules[0].ip_ranges[0]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":[\"host.example\"]}]}",
		  "outbound_rules[0].ip_ranges[0]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"ip_ranges\":\"10.0.0.0/8\"}]}",
		  "outbound_rules[0].ip_ranges" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"groups\":[\"web\",\"\"]}]}",
		  "outbound_rules[0].groups[1]" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"groups\":\"web\"}]}",
		  "outbound_rules[0].groups" },
		{ "{\"vpc_id\":\"" VPC "\",\"name\":\"a\",\"outbound_rules\":[{\"group_addresses\":[]}]}",
		  "outbound_rules[0].group_addresses" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct secgroup_spec s;
		struct verr e;
		json_t *b = body(cases[i].body);

		cr_expect_eq(validate_secgroup_create(b, &s, &e), -EINVAL, "case %zu accepted", i);
		cr_expect_str_eq(e.field, cases[i].field, "case %zu: %s", i, e.msg);
		cr_expect_null(s.inbound, "case %zu: nothing kept", i);
		json_decref(b);
	}
}

/* a body of n rules, each with m ranges */
static json_t *many(const char *key, size_t n, size_t m)
{
	json_t *b = json_pack("{s:s, s:s}", "vpc_id", VPC, "name", "big"), *rules = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *ranges = json_array();
		char buf[32];

		for (size_t k = 0; k < m; k++) {
			snprintf(buf, sizeof(buf), "10.%zu.%zu.0/24", k / 256, k % 256);
			json_array_append_new(ranges, json_string(buf));
		}
		json_array_append_new(rules, json_pack("{s:o}", "ip_ranges", ranges));
	}
	json_object_set_new(b, key, rules);
	return b;
}

Test(validate_secgroup, limits)
{
	struct secgroup_spec s;
	struct verr e;
	json_t *b;

	b = many("inbound_rules", 256, 1);
	cr_expect_eq(validate_secgroup_create(b, &s, &e), 0, "256 rules");
	secgroup_spec_clear(&s);
	json_decref(b);
	b = many("inbound_rules", 257, 1);
	cr_expect_eq(validate_secgroup_create(b, &s, &e), -EINVAL);
	cr_expect_str_eq(e.field, "inbound_rules");
	json_decref(b);
	b = many("outbound_rules", 1, 64);
	cr_expect_eq(validate_secgroup_create(b, &s, &e), 0, "64 ranges");
	secgroup_spec_clear(&s);
	json_decref(b);
	b = many("outbound_rules", 1, 65);
	cr_expect_eq(validate_secgroup_create(b, &s, &e), -EINVAL);
	cr_expect_str_eq(e.field, "outbound_rules[0].ip_ranges");
	json_decref(b);
}

Test(validate_secgroup, patch)
{
	struct secgroup_spec s;
	struct verr e;
	json_t *b = body("{\"inbound_rules\":[]}");

	cr_expect_eq(validate_secgroup_patch(b, &s, &e), 0);
	cr_expect_eq(s.set, SG_INBOUND, "only what the body names");
	secgroup_spec_clear(&s);
	json_decref(b);
	b = body("{}");
	cr_expect_eq(validate_secgroup_patch(b, &s, &e), -EINVAL, "nothing to change");
	json_decref(b);
	b = body("{\"vpc_id\":\"" VPC "\"}");
	cr_expect_eq(validate_secgroup_patch(b, &s, &e), -EINVAL, "a group stays in its VPC");
	cr_expect_str_eq(e.field, "vpc_id");
	json_decref(b);
}

Test(validate_secgroup, device_fields)
{
	struct device_spec d;
	struct verr e;
	json_t *b;

	b = body("{\"security_group_id\":\"web\"}");
	cr_expect_eq(validate_device_patch(b, &d, &e), 0);
	cr_expect_eq(d.set, DEV_SECURITY_GROUP);
	cr_expect_str_eq(d.security_group, "web");
	device_spec_clear(&d);
	json_decref(b);
	b = body("{\"security_group_id\":\"\"}");
	cr_expect_eq(validate_device_patch(b, &d, &e), -EINVAL);
	cr_expect_str_eq(e.field, "security_group_id");
	json_decref(b);
	b = body("{\"enforces_policy\":false}");
	cr_expect_eq(validate_device_patch(b, &d, &e), -EINVAL, "reported at registration only");
	cr_expect_str_eq(e.field, "enforces_policy");
	json_decref(b);
	b = body("{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"enforces_policy\":false}");
	cr_expect_eq(validate_device_register(b, &d, &e), 0, "%s: %s", e.field, e.msg);
	cr_expect(d.set & DEV_ENFORCES_POLICY);
	cr_expect(!d.enforces_policy);
	device_spec_clear(&d);
	json_decref(b);
	b = body("{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"enforces_policy\":1}");
	cr_expect_eq(validate_device_register(b, &d, &e), -EINVAL);
	cr_expect_str_eq(e.field, "enforces_policy");
	json_decref(b);
	b = body("{\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"security_group_id\":\"web\"}");
	cr_expect_eq(validate_device_register(b, &d, &e), -EINVAL, "the admin places a device, not the device");
	cr_expect_str_eq(e.field, "security_group_id");
	json_decref(b);
}
