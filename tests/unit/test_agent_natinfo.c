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
		enum svc_nat_dep want_m, want_f;
		const char *line;
	} cases[] = {
		{ "full cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_EI, SVC_NAT_EI, SVC_NAT_EI,
		  "endpoint-independent mapping, endpoint-independent filtering (full cone)" },
		{ "restricted cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_AD, SVC_NAT_EI, SVC_NAT_AD,
		  "endpoint-independent mapping, address-dependent filtering (restricted cone)" },
		{ "port-restricted cone", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true,
		  NATDISC_DEP_EI, NATDISC_DEP_APD, SVC_NAT_EI, SVC_NAT_APD,
		  "endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone)" },
		{ "symmetric", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_APD,
		  NATDISC_DEP_APD, SVC_NAT_APD, SVC_NAT_APD,
		  "address-and-port-dependent mapping, address-and-port-dependent filtering (symmetric)" },
		{ "no NAT", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, false, NATDISC_DEP_EI,
		  NATDISC_DEP_EI, SVC_NAT_EI, SVC_NAT_EI,
		  "endpoint-independent mapping, endpoint-independent filtering (no NAT)" },
		{ "filtering still running", NATDISC_OK, NATDISC_TEST_MAPPING, true, NATDISC_DEP_AD,
		  NATDISC_DEP_UNKNOWN, SVC_NAT_AD, SVC_NAT_UNKNOWN,
		  "address-dependent mapping, unknown filtering" },
		{ "a verdict not yet done is not taken", NATDISC_OK, 0, true, NATDISC_DEP_EI, NATDISC_DEP_EI,
		  SVC_NAT_UNKNOWN, SVC_NAT_UNKNOWN, "unknown" },
		{ "filtering lost", NATDISC_OK, NATDISC_TEST_MAPPING | NATDISC_TEST_FILTERING, true, NATDISC_DEP_EI,
		  NATDISC_DEP_UNKNOWN, SVC_NAT_EI, SVC_NAT_UNKNOWN,
		  "endpoint-independent mapping, unknown filtering" },
		{ "no RFC 5780", NATDISC_E_NO_RFC5780, 0, false, NATDISC_DEP_UNKNOWN, NATDISC_DEP_UNKNOWN,
		  SVC_NAT_UNKNOWN, SVC_NAT_UNKNOWN,
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
