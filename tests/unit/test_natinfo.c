/* natinfo: natdisc findings into the service's nat object and the status
 * line, for every combination meshd can meet, including unfinished runs and
 * failed ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "agent/meshd/natinfo.h"

Test(natinfo, table)
{
	static const struct {
		const char *name;
		enum natdisc_error error;
		unsigned done;
		bool nat;
		enum natdisc_dep mapping, filtering;
		enum wire_dep want_m, want_f;
		const char *line;
	} cases[] = {
		{ "full cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_EI, WIRE_DEP_EI, WIRE_DEP_EI,
		  "endpoint-independent mapping, endpoint-independent filtering (full cone)" },
		{ "restricted cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_AD, WIRE_DEP_EI, WIRE_DEP_AD,
		  "endpoint-independent mapping, address-dependent filtering (restricted cone)" },
		{ "port-restricted cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true,
		  NATDISC_DEP_EI, NATDISC_DEP_APD, WIRE_DEP_EI, WIRE_DEP_APD,
		  "endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone)" },
		{ "symmetric", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_APD,
		  NATDISC_DEP_APD, WIRE_DEP_APD, WIRE_DEP_APD,
		  "address-and-port-dependent mapping, address-and-port-dependent filtering (symmetric)" },
		{ "no NAT", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, false, NATDISC_DEP_EI,
		  NATDISC_DEP_EI, WIRE_DEP_EI, WIRE_DEP_EI,
		  "endpoint-independent mapping, endpoint-independent filtering (no NAT)" },
		{ "filtering still running", NATDISC_OK, NATDISC_TEST_MAPPING, true, NATDISC_DEP_AD,
		  NATDISC_DEP_UNKNOWN, WIRE_DEP_AD, WIRE_DEP_UNKNOWN,
		  "address-dependent mapping, unknown filtering" },
		{ "a verdict not yet done is not taken", NATDISC_OK, 0, true, NATDISC_DEP_EI, NATDISC_DEP_EI,
		  WIRE_DEP_UNKNOWN, WIRE_DEP_UNKNOWN, "unknown" },
		{ "filtering lost", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_UNKNOWN, WIRE_DEP_EI, WIRE_DEP_UNKNOWN,
		  "endpoint-independent mapping, unknown filtering" },
		{ "no RFC 5780", NATDISC_E_NO_RFC5780, 0, false, NATDISC_DEP_UNKNOWN, NATDISC_DEP_UNKNOWN,
		  WIRE_DEP_UNKNOWN, WIRE_DEP_UNKNOWN,
		  "unknown (the server does not support RFC 5780 (no OTHER-ADDRESS in its answer))" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct natdisc_result r;
		struct svc_nat n;
		char line[192];

		memset(&r, 0, sizeof(r));
		r.error = cases[i].error;
		r.tests_done = cases[i].done;
		r.nat = cases[i].nat;
		r.mapping = cases[i].mapping;
		r.filtering = cases[i].filtering;
		natinfo_from_result(&r, &n);
		cr_expect_eq(n.mapping, cases[i].want_m, "%s: mapping", cases[i].name);
		cr_expect_eq(n.filtering, cases[i].want_f, "%s: filtering", cases[i].name);
		cr_expect_eq(n.hairpinning, SVC_NAT_TRI_UNKNOWN, "%s: hairpinning not tested", cases[i].name);
		natinfo_describe(&r, line, sizeof(line));
		cr_expect_str_eq(line, cases[i].line, "%s", cases[i].name);
	}
}

Test(natinfo, short_buffer)
{
	struct natdisc_result r;
	char line[8];

	memset(&r, 0, sizeof(r));
	r.tests_done = NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING;
	r.nat = true;
	r.mapping = r.filtering = NATDISC_DEP_EI;
	natinfo_describe(&r, line, sizeof(line));
	cr_expect_str_eq(line, "endpoin");
	natinfo_describe(&r, line, 0);
}

/* which --stun server each family's run asks: the first of that family, the
 * IPv6 one only from a dual-stack socket */
Test(natinfo, pick_servers)
{
	static const struct {
		const char *name;
		const char *srv[4];
		int sock_family;
		int want4, want6;
	} cases[] = {
		{ "none", { NULL }, AF_INET6, -1, -1 },
		{ "IPv4 only", { "203.0.113.1:3478", "203.0.113.2:3478" }, AF_INET6, 0, -1 },
		{ "IPv6 only", { "[2001:db8::1]:3478", "[2001:db8::2]:3478" }, AF_INET6, -1, 0 },
		{ "IPv6 first, then IPv4", { "[2001:db8::1]:3478", "203.0.113.1:3478", "[2001:db8::2]:3478",
					     "203.0.113.2:3478" }, AF_INET6, 1, 0 },
		{ "IPv4 first, then IPv6", { "203.0.113.2:3478", "[2001:db8::2]:3478", "203.0.113.1:3478" },
		  AF_INET6, 0, 1 },
		{ "v4-mapped is IPv4", { "[2001:db8::1]:3478", "[::ffff:203.0.113.1]:3478" }, AF_INET6, 1, 0 },
		{ "an IPv4 socket runs no IPv6", { "[2001:db8::1]:3478", "203.0.113.1:3478" }, AF_INET, 1, -1 },
		{ "an IPv4 socket, IPv6 servers only", { "[2001:db8::1]:3478" }, AF_INET, -1, -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		union sockaddr_any a[4];
		int n = 0, idx[SVC_FAMILIES];

		while (n < 4 && cases[i].srv[n]) {
			cr_assert_eq(addr_parse(cases[i].srv[n], &a[n]), 0, "%s: %s", cases[i].name, cases[i].srv[n]);
			n++;
		}
		natinfo_pick_servers(a, n, cases[i].sock_family, idx);
		cr_expect_eq(idx[SVC_FAM_IPV4], cases[i].want4, "%s: IPv4 server", cases[i].name);
		cr_expect_eq(idx[SVC_FAM_IPV6], cases[i].want6, "%s: IPv6 server", cases[i].name);
	}
}

/* the local address of a family's run, and which family the top level shows */
Test(natinfo, pick_local_and_first)
{
	static const struct {
		const char *name;
		const char *local[3];
		int want4, want6;
	} cases[] = {
		{ "no address", { NULL }, -1, -1 },
		{ "IPv4 only", { "10.1.0.2:51820", "192.168.1.2:51820" }, 0, -1 },
		{ "IPv6 only", { "[2001:db8::11]:51820" }, -1, 0 },
		{ "dual-stack, IPv6 listed first", { "[2001:db8::13]:51820", "203.0.113.13:51820",
						     "[2001:db8::99]:51820" }, 1, 0 },
	};
	static const struct {
		bool has4, has6;
		int want;
	} first[] = {
		{ false, false, -1 }, { true, false, SVC_FAM_IPV4 }, { false, true, SVC_FAM_IPV6 },
		{ true, true, SVC_FAM_IPV4 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		union sockaddr_any a[3];
		int n = 0;

		while (n < 3 && cases[i].local[n]) {
			cr_assert_eq(addr_parse(cases[i].local[n], &a[n]), 0, "%s", cases[i].name);
			n++;
		}
		cr_expect_eq(natinfo_pick_local(a, n, SVC_FAM_IPV4), cases[i].want4, "%s: IPv4", cases[i].name);
		cr_expect_eq(natinfo_pick_local(a, n, SVC_FAM_IPV6), cases[i].want6, "%s: IPv6", cases[i].name);
	}
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		bool has[SVC_FAMILIES] = { first[i].has4, first[i].has6 };
		cr_expect_eq(natinfo_first(has), first[i].want, "first family of %d/%d", first[i].has4,
			     first[i].has6);
	}
	cr_expect_eq(natinfo_family(&(union sockaddr_any){ .sa.sa_family = AF_UNIX }), -1);
}
