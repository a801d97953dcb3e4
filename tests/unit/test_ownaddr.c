/* ownaddr: endpoints at the service's own addresses refused (issue 15 point
 * 5), table-driven: a listen address, a wildcard's interfaces, the request's
 * local address, any port, IPv4-mapped IPv6, and the field named. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "service/ownaddr.h"

static union sockaddr_any sa(const char *s)
{
	union sockaddr_any a;

	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

/* the endpoints of a device body, as validate.h leaves them */
static json_t *endpoints(const char *a0, const char *a1)
{
	json_t *l = json_array();

	json_array_append_new(l, json_pack("{s:s, s:s}", "source", "local", "address", a0));
	if (a1)
		json_array_append_new(l, json_pack("{s:s, s:s}", "source", "stun:198.51.100.1:3478", "address", a1));
	return l;
}

Test(ownaddr, check_endpoints)
{
	static const struct {
		const char *name;
		const char *listen;
		const char *extra;	/* ownaddr_add'ed (a wildcard's interface), NULL: none */
		const char *local;	/* the request's local address, NULL: unknown */
		const char *ep0, *ep1;
		const char *field;	/* NULL: accepted */
	} cases[] = {
		{ "another address", "192.0.2.1:8443", NULL, NULL, "192.0.2.2:51820", NULL, NULL },
		{ "the listen address, another port", "192.0.2.1:8443", NULL, NULL, "192.0.2.1:51820", NULL,
		  "endpoints[0].address" },
		{ "the listen address, its port", "192.0.2.1:8443", NULL, NULL, "192.0.2.1:8443", NULL,
		  "endpoints[0].address" },
		{ "the second endpoint named", "192.0.2.1:8443", NULL, NULL, "192.0.2.2:1", "192.0.2.1:2",
		  "endpoints[1].address" },
		{ "IPv4-mapped listen address", "[::ffff:192.0.2.1]:8443", NULL, NULL, "192.0.2.1:1", NULL,
		  "endpoints[0].address" },
		{ "IPv6 listen address", "[2001:db8::1]:8443", NULL, NULL, "[2001:db8::1]:51820", NULL,
		  "endpoints[0].address" },
		{ "IPv6, another address", "[2001:db8::1]:8443", NULL, NULL, "[2001:db8::2]:51820", NULL, NULL },
		{ "a wildcard's interface address", "0.0.0.0:8443", "203.0.113.9:0", NULL, "203.0.113.9:4000", NULL,
		  "endpoints[0].address" },
		{ "a dual-stack wildcard's IPv4 interface", "[::]:8443", "203.0.113.9:0", NULL, "203.0.113.9:4000",
		  NULL, "endpoints[0].address" },
		{ "a wildcard, another address", "0.0.0.0:8443", "203.0.113.9:0", NULL, "203.0.113.10:4000", NULL,
		  NULL },
		{ "the request's local address", "0.0.0.0:8443", NULL, "198.51.100.7:8443", "198.51.100.7:9",
		  NULL, "endpoints[0].address" },
		{ "the request's local address, IPv4-mapped", "[::]:8443", NULL, "[::ffff:198.51.100.7]:8443",
		  "198.51.100.7:9", NULL, "endpoints[0].address" },
		{ "not the request's local address", "0.0.0.0:8443", NULL, "198.51.100.7:8443", "198.51.100.8:9",
		  NULL, NULL },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		union sockaddr_any listen = sa(cases[c].listen), local, extra;
		json_t *eps = endpoints(cases[c].ep0, cases[c].ep1);
		struct ownaddr *o = calloc(1, sizeof(*o));
		struct verr e = { { 0 }, { 0 } };
		int rc;

		cr_assert_not_null(o);
		ownaddr_init(o, &listen, 0);
		if (cases[c].extra) {
			extra = sa(cases[c].extra);
			cr_assert_eq(ownaddr_add(o, &extra), 0);
		}
		if (cases[c].local)
			local = sa(cases[c].local);
		rc = ownaddr_check_endpoints(o, cases[c].local ? &local : NULL, eps, &e);
		if (!cases[c].field) {
			cr_expect_eq(rc, 0, "%s: refused (%s %s)", cases[c].name, e.field, e.msg);
		} else {
			cr_expect_eq(rc, -EINVAL, "%s: accepted", cases[c].name);
			cr_expect_str_eq(e.field, cases[c].field, "%s", cases[c].name);
			cr_expect(strstr(e.msg, "the service's own address"), "%s: %s", cases[c].name, e.msg);
		}
		json_decref(eps);
		free(o);
	}
}

/* a wildcard knows the host's addresses from the start: loopback at least */
Test(ownaddr, wildcard_loads_the_interfaces)
{
	union sockaddr_any any4 = sa("0.0.0.0:0"), one = sa("192.0.2.1:80"), lo = sa("127.0.0.1:5");
	struct ownaddr *o = calloc(1, sizeof(*o));

	cr_assert_not_null(o);
	cr_assert_eq(ownaddr_init(o, &any4, 1000), 0);
	cr_expect(o->wildcard);
	cr_expect(ownaddr_has(o, NULL, &lo), "127.0.0.1 from getifaddrs");
	cr_expect_eq(o->loaded_ms, 1000);
	ownaddr_refresh(o, 1000 + OWNADDR_REFRESH_MS - 1);
	cr_expect_eq(o->loaded_ms, 1000, "not loaded again within OWNADDR_REFRESH_MS");
	ownaddr_refresh(o, 1000 + OWNADDR_REFRESH_MS);
	cr_expect_eq(o->loaded_ms, 1000 + OWNADDR_REFRESH_MS, "loaded again after it");
	cr_expect(ownaddr_has(o, NULL, &lo));

	/* a listen address is the only one: no interfaces, no refresh */
	cr_assert_eq(ownaddr_init(o, &one, 1000), 0);
	cr_expect(!o->wildcard);
	cr_expect_eq(o->n, 1);
	cr_expect(!ownaddr_has(o, NULL, &lo));
	ownaddr_refresh(o, 1000000);
	cr_expect_eq(o->n, 1);
	free(o);
}

Test(ownaddr, bounded)
{
	union sockaddr_any one = sa("192.0.2.1:80"), a;
	struct ownaddr *o = calloc(1, sizeof(*o));
	char s[64];

	cr_assert_not_null(o);
	ownaddr_init(o, &one, 0);
	for (int i = 1; i < OWNADDR_MAX; i++) {
		snprintf(s, sizeof(s), "10.%d.%d.1:0", i / 256, i % 256);
		a = sa(s);
		cr_assert_eq(ownaddr_add(o, &a), 0);
	}
	cr_expect_eq(ownaddr_add(o, &one), 0, "one it has: no room needed");
	a = sa("10.255.255.1:0");
	cr_expect_eq(ownaddr_add(o, &a), -ENOSPC);
	cr_expect_eq(o->n, OWNADDR_MAX);
	free(o);
}
