#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "service/validate.h"

#define KEY "WorOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT4="
#define UUID "0b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4b"
#define NOW 1700000000

/* a body, whether it passes, and the field named when it does not */
struct vcase {
	const char *json;
	bool ok;
	const char *field;
};

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	cr_assert_not_null(j, "test body does not parse: %s", text);
	return j;
}

static void check(const struct vcase *c, int rc, const struct verr *e)
{
	cr_expect_eq(rc == 0, c->ok, "%s: rc=%d (%s: %s)", c->json, rc, e->field, e->msg);
	if (!c->ok && rc < 0)
		cr_expect_str_eq(e->field, c->field, "%s: %s", c->json, e->msg);
}

Test(validate, vpc_create)
{
	static const struct vcase cases[] = {
		{ "{\"name\":\"lab\"}", true, NULL },
		{ "{\"name\":\"lab-1.a_b\",\"ipv4_cidr\":\"10.0.0.0/8\"}", true, NULL },
		{ "{\"name\":\"x\",\"ipv4_cidr\":\"192.168.1.0/30\"}", true, NULL },
		{ "[]", false, "" },
		{ "{}", false, "name" },
		{ "{\"name\":\"\"}", false, "name" },
		{ "{\"name\":3}", false, "name" },
		{ "{\"name\":\"with space\"}", false, "name" },
		{ "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", false, "name" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":\"10.0.0.1/8\"}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":\"10.0.0.0/31\"}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":\"10.0.0.0/7\"}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":\"fd00::/64\"}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":\"banana\"}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"ipv4_cidr\":10}", false, "ipv4_cidr" },
		{ "{\"name\":\"lab\",\"colour\":\"red\"}", false, "colour" },
		{ "{\"name\":\"lab\",\"id\":\"" UUID "\"}", false, "id" },
		{ "{\"name\":\"lab\",\"created_at\":\"2020-01-01T00:00:00Z\"}", false, "created_at" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vpc_spec spec;
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		check(&cases[i], validate_vpc_create(j, &spec, &e), &e);
		json_decref(j);
	}
}

Test(validate, vpc_default_cidr)
{
	struct vpc_spec spec;
	struct verr e;
	char buf[CIDR_STRLEN];
	json_t *j = parse("{\"name\":\"lab\"}");
	cr_assert_eq(validate_vpc_create(j, &spec, &e), 0);
	cr_expect_str_eq(cidr_format(&spec.cidr, buf, sizeof(buf)), "100.64.0.0/10");
	json_decref(j);
}

Test(validate, regkey_create)
{
	static const struct vcase cases[] = {
		{ "{\"vpc_id\":\"" UUID "\"}", true, NULL },
		{ "{\"vpc_id\":\"" UUID "\",\"single_use\":true,\"expires_at\":\"2030-01-01T00:00:00Z\",\"description\":\"ci\"}", true, NULL },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":null}", true, NULL },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":\"2030-01-01T01:00:00+01:00\"}", true, NULL },
		{ "{}", false, "vpc_id" },
		{ "{\"vpc_id\":\"not-a-uuid\"}", false, "vpc_id" },
		{ "{\"vpc_id\":\"0B9F2A4E-1C3D-4E5F-8A7B-9C0D1E2F3A4B\"}", false, "vpc_id" },
		{ "{\"vpc_id\":7}", false, "vpc_id" },
		{ "{\"vpc_id\":\"" UUID "\",\"single_use\":\"yes\"}", false, "single_use" },
		{ "{\"vpc_id\":\"" UUID "\",\"single_use\":1}", false, "single_use" },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":\"tomorrow\"}", false, "expires_at" },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":\"2030-02-30T00:00:00Z\"}", false, "expires_at" },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":\"2030-01-01 00:00:00\"}", false, "expires_at" },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":1893456000}", false, "expires_at" },
		{ "{\"vpc_id\":\"" UUID "\",\"expires_at\":\"2020-01-01T00:00:00Z\"}", false, "expires_at" },
		{ "{\"vpc_id\":\"" UUID "\",\"description\":false}", false, "description" },
		{ "{\"vpc_id\":\"" UUID "\",\"description\":\"tab\\there\"}", false, "description" },
		{ "{\"vpc_id\":\"" UUID "\",\"secret\":\"x\"}", false, "secret" },
		{ "{\"vpc_id\":\"" UUID "\",\"uses\":3}", false, "uses" },
		{ "{\"vpc_id\":\"" UUID "\",\"relay\":true}", true, NULL },
		{ "{\"vpc_id\":\"" UUID "\",\"relay\":\"yes\"}", false, "relay" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct regkey_spec spec;
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		check(&cases[i], validate_regkey_create(j, NOW, &spec, &e), &e);
		json_decref(j);
	}
}

Test(validate, regkey_long_description)
{
	char body[600];
	struct regkey_spec spec;
	struct verr e;
	json_t *j;
	snprintf(body, sizeof(body), "{\"vpc_id\":\"" UUID "\",\"description\":\"%0256d\"}", 0);
	j = parse(body);
	cr_expect_eq(validate_regkey_create(j, NOW, &spec, &e), -EINVAL);
	cr_expect_str_eq(e.field, "description");
	json_decref(j);
}

Test(validate, device_register)
{
	static const struct vcase cases[] = {
		{ "{\"public_key\":\"" KEY "\"}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"vpc_id\":\"" UUID "\",\"hostname\":\"node-1.lab\",\"os\":\"linux\","
		  "\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.2:51820\"},"
		  "{\"source\":\"stun:stun.example.org:3478\",\"address\":\"203.0.113.9:40000\"},"
		  "{\"source\":\"stun:[2001:db8::1]:3478\",\"address\":\"[2001:db8::9]:40000\"},"
		  "{\"source\":\"relay\",\"address\":\"198.51.100.1:51820\"},"
		  "{\"source\":\"portmap\",\"address\":\"198.51.100.7:40001\"}],"
		  "\"relay\":false,\"symmetric_nat\":true,"
		  "\"nat\":{\"mapping\":\"address-and-port-dependent\",\"filtering\":\"endpoint-independent\",\"hairpinning\":false}}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"nat\":null}", true, NULL },
		{ "{}", false, "public_key" },
		{ "{\"public_key\":\"abc\"}", false, "public_key" },
		{ "{\"public_key\":\"" KEY "=\"}", false, "public_key" },
		{ "{\"public_key\":\"!orOPF9k79TagGkila8IBvWts2WEqk/p3KfNsFdcAT4=\"}", false, "public_key" },
		{ "{\"public_key\":42}", false, "public_key" },
		{ "{\"public_key\":\"" KEY "\",\"vpc_id\":\"x\"}", false, "vpc_id" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"-bad\"}", false, "hostname" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"a..b\"}", false, "hostname" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"has space\"}", false, "hostname" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"\"}", false, "hostname" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":[]}", false, "hostname" },
		{ "{\"public_key\":\"" KEY "\",\"os\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", false, "os" },
		{ "{\"public_key\":\"" KEY "\",\"os\":1}", false, "os" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":{}}", false, "endpoints" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[1]}", false, "endpoints[0]" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"address\":\"1.2.3.4:5\"}]}", false, "endpoints[0].source" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"carrier-pigeon\",\"address\":\"1.2.3.4:5\"}]}", false, "endpoints[0].source" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"stun:host\",\"address\":\"1.2.3.4:5\"}]}", false, "endpoints[0].source" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"stun:host:0\",\"address\":\"1.2.3.4:5\"}]}", false, "endpoints[0].source" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"stun:host:70000\",\"address\":\"1.2.3.4:5\"}]}", false, "endpoints[0].source" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"1.2.3.4\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"1.2.3.4:0\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"1.2.3.4:65536\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"0.0.0.0:5\"}]}", false, "endpoints[0].address" },
		/* issue 15, point 5: loopback, unspecified, multicast, broadcast and link-local */
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"127.0.0.1:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"127.255.255.254:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[::1]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[::]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"224.0.0.1:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"239.255.255.250:1900\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"255.255.255.255:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[ff02::1]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"169.254.169.254:80\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[fe80::1]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[febf::1]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[::ffff:127.0.0.1]:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[::ffff:169.254.169.254]:80\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"126.255.255.255:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"128.0.0.1:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"169.253.255.255:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"223.255.255.255:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"255.255.255.254:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[fec0::1]:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[2001:db8::1]:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"[::ffff:192.0.2.1]:5\"}]}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"999.1.1.1:5\"}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":5}]}", false, "endpoints[0].address" },
		{ "{\"public_key\":\"" KEY "\",\"endpoints\":[{\"source\":\"local\",\"address\":\"1.2.3.4:5\",\"x\":1}]}", false, "endpoints[0].x" },
		{ "{\"public_key\":\"" KEY "\",\"relay\":\"true\"}", false, "relay" },
		{ "{\"public_key\":\"" KEY "\",\"symmetric_nat\":0}", false, "symmetric_nat" },
		{ "{\"public_key\":\"" KEY "\",\"nat\":\"cone\"}", false, "nat" },
		{ "{\"public_key\":\"" KEY "\",\"nat\":{\"mapping\":\"full-cone\"}}", false, "nat.mapping" },
		{ "{\"public_key\":\"" KEY "\",\"nat\":{\"filtering\":1}}", false, "nat.filtering" },
		{ "{\"public_key\":\"" KEY "\",\"nat\":{\"hairpinning\":\"no\"}}", false, "nat.hairpinning" },
		{ "{\"public_key\":\"" KEY "\",\"nat\":{\"type\":\"x\"}}", false, "nat.type" },
		{ "{\"public_key\":\"" KEY "\",\"tunnel_ip\":\"100.64.0.9\"}", false, "tunnel_ip" },
		{ "{\"public_key\":\"" KEY "\",\"allowed_ips\":[]}", false, "allowed_ips" },
		{ "{\"public_key\":\"" KEY "\",\"revision\":1}", false, "revision" },
		{ "{\"public_key\":\"" KEY "\",\"online\":true}", false, "online" },
		{ "{\"public_key\":\"" KEY "\",\"last_seen\":null}", false, "last_seen" },
		{ "{\"public_key\":\"" KEY "\",\"id\":\"" UUID "\"}", false, "id" },
		{ "{\"public_key\":\"" KEY "\",\"favourite\":1}", false, "favourite" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct device_spec spec;
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		int rc = validate_device_register(j, &spec, &e);
		check(&cases[i], rc, &e);
		if (rc == 0)
			device_spec_clear(&spec);
		json_decref(j);
	}
}

Test(validate, too_many_endpoints)
{
	char body[4096];
	size_t n = (size_t)snprintf(body, sizeof(body), "{\"public_key\":\"" KEY "\",\"endpoints\":[");
	for (int i = 0; i <= WIRE_ENDPOINTS_MAX; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s{\"source\":\"local\",\"address\":\"10.0.0.%d:1\"}",
				      i ? "," : "", i + 1);
	snprintf(body + n, sizeof(body) - n, "]}");
	struct device_spec spec;
	struct verr e;
	json_t *j = parse(body);
	cr_expect_eq(validate_device_register(j, &spec, &e), -EINVAL);
	cr_expect_str_eq(e.field, "endpoints");
	json_decref(j);
}

Test(validate, device_normalizes)
{
	struct device_spec spec;
	struct verr e;
	json_t *j = parse("{\"public_key\":\"" KEY "\",\"endpoints\":[{\"address\":\"[2001:DB8::1]:7\",\"source\":\"local\"}],"
			  "\"nat\":{\"hairpinning\":true,\"mapping\":\"endpoint-independent\"}}");
	cr_assert_eq(validate_device_register(j, &spec, &e), 0);
	char *eps = json_dumps(spec.endpoints, JSON_COMPACT), *nat = json_dumps(spec.nat, JSON_COMPACT);
	cr_expect_str_eq(eps, "[{\"source\":\"local\",\"address\":\"[2001:db8::1]:7\"}]");
	cr_expect_str_eq(nat, "{\"mapping\":\"endpoint-independent\",\"hairpinning\":true}");
	cr_expect_eq(spec.set, DEV_PUBLIC_KEY | DEV_ENDPOINTS | DEV_NAT);
	free(eps);
	free(nat);
	device_spec_clear(&spec);
	json_decref(j);
}

/* the nat object per address family: good bodies and what is stored (the
 * top level filled in from IPv4, else IPv6), bad ones and the field and
 * words of the refusal; the same for registration and PATCH */
Test(validate, device_nat_families)
{
#define EI "\"endpoint-independent\""
#define AD "\"address-dependent\""
#define APD "\"address-and-port-dependent\""
	static const struct {
		const char *nat;
		const char *want;	/* stored text, or NULL: refused */
		const char *field, *msg;	/* the refusal's field and a part of its message */
	} cases[] = {
		{ "{\"mapping\":" EI ",\"filtering\":" APD "}", "{\"mapping\":" EI ",\"filtering\":" APD "}", NULL, NULL },
		{ "{}", "{}", NULL, NULL },
		{ "{\"ipv4\":{\"filtering\":" APD ",\"mapping\":" EI ",\"hairpinning\":false}}",
		  "{\"mapping\":" EI ",\"filtering\":" APD ",\"hairpinning\":false,"
		  "\"ipv4\":{\"mapping\":" EI ",\"filtering\":" APD ",\"hairpinning\":false}}", NULL, NULL },
		{ "{\"ipv6\":{\"mapping\":" EI ",\"filtering\":" AD "}}",
		  "{\"mapping\":" EI ",\"filtering\":" AD ",\"ipv6\":{\"mapping\":" EI ",\"filtering\":" AD "}}", NULL, NULL },
		{ "{\"ipv6\":{\"mapping\":" EI ",\"filtering\":" EI "},\"ipv4\":{\"mapping\":" EI ",\"filtering\":" APD "}}",
		  "{\"mapping\":" EI ",\"filtering\":" APD ",\"ipv4\":{\"mapping\":" EI ",\"filtering\":" APD "},"
		  "\"ipv6\":{\"mapping\":" EI ",\"filtering\":" EI "}}", NULL, NULL },
		/* a device listing's object sent back as it is */
		{ "{\"mapping\":" EI ",\"filtering\":" APD ",\"ipv4\":{\"mapping\":" EI ",\"filtering\":" APD "},"
		  "\"ipv6\":{\"filtering\":" EI "}}",
		  "{\"mapping\":" EI ",\"filtering\":" APD ",\"ipv4\":{\"mapping\":" EI ",\"filtering\":" APD "},"
		  "\"ipv6\":{\"filtering\":" EI "}}", NULL, NULL },
		{ "{\"filtering\":" EI ",\"ipv4\":{\"filtering\":" APD "},\"ipv6\":{\"filtering\":" EI "}}", NULL,
		  "nat.filtering", "must equal nat.ipv4.filtering" },
		{ "{\"mapping\":" EI ",\"ipv6\":{\"filtering\":" EI "}}", NULL, "nat.mapping", "must equal nat.ipv6.mapping" },
		{ "{\"ipv4\":null}", NULL, "nat.ipv4", "must be an object" },
		{ "{\"ipv4\":{}}", NULL, "nat.ipv4", "some of mapping, filtering, hairpinning" },
		{ "{\"ipv6\":[]}", NULL, "nat.ipv6", "must be an object" },
		{ "{\"ipv4\":{\"mapping\":\"full-cone\"}}", NULL, "nat.ipv4.mapping", "must be \"endpoint-independent\"" },
		/* wire.h's name for "not measured" is no behaviour */
		{ "{\"filtering\":\"unknown\"}", NULL, "nat.filtering", "must be \"endpoint-independent\"" },
		{ "{\"ipv6\":{\"hairpinning\":1}}", NULL, "nat.ipv6.hairpinning", "true or false" },
		{ "{\"ipv4\":{\"ipv4\":{\"mapping\":" EI "}}}", NULL, "nat.ipv4.ipv4", "unknown field" },
		{ "{\"ipv4\":{\"type\":\"x\"}}", NULL, "nat.ipv4.type", "unknown field" },
		{ "{\"ip4\":{\"mapping\":" EI "}}", NULL, "nat.ip4", "unknown field" },
		{ "{\"mapping\":\"cone\",\"ipv4\":{\"mapping\":" EI "}}", NULL, "nat.mapping", "must be \"endpoint-independent\"" },
	};
#undef EI
#undef AD
#undef APD
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int patch = 0; patch < 2; patch++) {
			char body[1024];
			struct device_spec spec;
			struct verr e = { "", "" };
			json_t *j;
			int rc;

			snprintf(body, sizeof(body), patch ? "{\"nat\":%s}" : "{\"public_key\":\"" KEY "\",\"nat\":%s}",
				 cases[i].nat);
			j = parse(body);
			rc = patch ? validate_device_patch(j, &spec, &e) : validate_device_register(j, &spec, &e);
			if (cases[i].want) {
				cr_expect_eq(rc, 0, "%s: rc=%d (%s: %s)", body, rc, e.field, e.msg);
				if (rc == 0) {
					char *got = json_dumps(spec.nat, JSON_COMPACT | JSON_PRESERVE_ORDER);
					cr_expect_str_eq(got, cases[i].want, "%s", body);
					free(got);
					device_spec_clear(&spec);
				}
			} else {
				cr_expect_eq(rc, -EINVAL, "%s: accepted", body);
				cr_expect_str_eq(e.field, cases[i].field, "%s: %s", body, e.msg);
				cr_expect(strstr(e.msg, cases[i].msg) != NULL, "%s: message \"%s\"", body, e.msg);
			}
			json_decref(j);
		}
	}
}

Test(validate, device_patch)
{
	static const struct vcase cases[] = {
		{ "{\"endpoints\":[]}", true, NULL },
		{ "{\"symmetric_nat\":true,\"relay\":true,\"hostname\":\"h\",\"nat\":null}", true, NULL },
		{ "{}", false, "" },
		{ "{\"public_key\":\"" KEY "\"}", false, "public_key" },
		{ "{\"vpc_id\":\"" UUID "\"}", false, "vpc_id" },
		{ "{\"os\":\"linux\"}", false, "os" },
		{ "{\"tunnel_ip\":\"100.64.0.1\"}", false, "tunnel_ip" },
		{ "{\"endpoints\":[{\"source\":\"local\",\"address\":\"1.2.3.4:99999\"}]}", false, "endpoints[0].address" },
		{ "{\"relay\":null}", false, "relay" },
		{ "{\"bogus\":true}", false, "bogus" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct device_spec spec;
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		int rc = validate_device_patch(j, &spec, &e);
		check(&cases[i], rc, &e);
		if (rc == 0)
			device_spec_clear(&spec);
		json_decref(j);
	}
}

Test(validate, long_poll_parameters)
{
	int64_t since;
	int wait;
	struct verr e;
	cr_expect_eq(validate_since("0", &since, &e), 0);
	cr_expect_eq(validate_since("123456", &since, &e), 0);
	cr_expect_eq(since, 123456);
	cr_expect_eq(validate_since("", &since, &e), -EINVAL);
	cr_expect_eq(validate_since("-1", &since, &e), -EINVAL);
	cr_expect_eq(validate_since("1e3", &since, &e), -EINVAL);
	cr_expect_eq(validate_since("99999999999999999999", &since, &e), -EINVAL);
	cr_expect_eq(validate_wait("0", &wait, &e), 0);
	cr_expect_eq(validate_wait("300", &wait, &e), 0);
	cr_expect_eq(wait, 300);
	cr_expect_eq(validate_wait("301", &wait, &e), -EINVAL);
	cr_expect_str_eq(e.field, "wait");
	cr_expect_eq(validate_wait("x", &wait, &e), -EINVAL);
}

Test(validate, uuid_and_time)
{
	char id[UUID_STRLEN], t[TIME_STRLEN];
	int64_t v;
	uuid_generate(id);
	cr_expect(validate_uuid(id), "%s", id);
	cr_expect_eq(id[14], '4', "version 4");
	cr_expect(!validate_uuid("0b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4"));
	cr_expect(!validate_uuid("0b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4bb"));
	cr_expect(!validate_uuid("0b9f2a4e_1c3d-4e5f-8a7b-9c0d1e2f3a4b"));
	cr_expect(!validate_uuid("0b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4g"));
	cr_assert_eq(time_parse("2024-02-29T12:00:00Z", &v), 0);
	time_format(v, t);
	cr_expect_str_eq(t, "2024-02-29T12:00:00Z");
	cr_assert_eq(time_parse("2024-02-29T14:00:00.250+02:00", &v), 0);
	time_format(v, t);
	cr_expect_str_eq(t, "2024-02-29T12:00:00Z");
	cr_expect_eq(time_parse("2023-02-29T12:00:00Z", &v), -EINVAL);
	cr_expect_eq(time_parse("2024-13-01T00:00:00Z", &v), -EINVAL);
	cr_expect_eq(time_parse("2024-01-01T24:00:00Z", &v), -EINVAL);
	cr_expect_eq(time_parse("2024-01-01T00:00:00", &v), -EINVAL);
	cr_expect_eq(time_parse("2024-01-01T00:00:00Zjunk", &v), -EINVAL);
}

/* a registration's key proof (challenge.h) and the request for a challenge */
#define B32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="	/* bytes 0..31 */
Test(validate, key_proof)
{
	static const struct vcase cases[] = {
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"" B32 "\",\"mac\":\"" KEY "\"}}", true, NULL },
		{ "{\"public_key\":\"" KEY "\",\"proof\":\"" B32 "\"}", false, "proof" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":null}", false, "proof" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"mac\":\"" B32 "\"}}", false, "proof.challenge" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"" B32 "\"}}", false, "proof.mac" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"AAEC\",\"mac\":\"" B32 "\"}}", false, "proof.challenge" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"" B32 "\",\"mac\":1}}", false, "proof.mac" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"" B32 "\",\"mac\":\"" B32 "\",\"x\":1}}", false, "proof.x" },
		{ "{\"public_key\":\"" KEY "\",\"proof\":{\"challenge\":\"!AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\",\"mac\":\"" B32 "\"}}", false, "proof.challenge" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct device_spec spec;
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		int rc = validate_device_register(j, &spec, &e);
		check(&cases[i], rc, &e);
		if (rc == 0) {
			cr_expect_eq(spec.set, DEV_PUBLIC_KEY | DEV_PROOF);
			for (int b = 0; b < 32; b++)
				cr_expect_eq(spec.proof_challenge[b], b);
			cr_expect_eq(spec.proof_mac[0], spec.public_key[0]);
			device_spec_clear(&spec);
		}
		json_decref(j);
	}
	/* a PATCH carries no proof */
	struct device_spec spec;
	struct verr e;
	json_t *j = parse("{\"proof\":{\"challenge\":\"" B32 "\",\"mac\":\"" B32 "\"}}");
	cr_expect_eq(validate_device_patch(j, &spec, &e), -EINVAL);
	cr_expect_str_eq(e.field, "proof");
	json_decref(j);
}

Test(validate, challenge_request)
{
	static const struct vcase cases[] = {
		{ "{\"public_key\":\"" KEY "\"}", true, NULL },
		{ "{}", false, "public_key" },
		{ "[]", false, "" },
		{ "{\"public_key\":\"" KEY "=\"}", false, "public_key" },
		{ "{\"public_key\":7}", false, "public_key" },
		{ "{\"public_key\":\"" KEY "\",\"hostname\":\"a\"}", false, "hostname" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t pub[WG_KEY_BYTES];
		struct verr e = { "", "" };
		json_t *j = parse(cases[i].json);
		check(&cases[i], validate_challenge_request(j, pub, &e), &e);
		json_decref(j);
	}
}
