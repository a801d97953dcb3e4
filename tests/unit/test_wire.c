#include <criterion/criterion.h>
#include <errno.h>

#include "wire.h"

Test(wire, names_round_trip)
{
	static const char *const deps[] = {
		"endpoint-independent", "address-dependent", "address-and-port-dependent",
	};
	static const char *const ports[] = { "preserve", "sequential", "random" };

	for (int i = 0; i < 3; i++) {
		cr_expect_eq(wire_dep_parse(deps[i]), WIRE_DEP_EI + i);
		cr_expect_str_eq(wire_dep_name(WIRE_DEP_EI + i), deps[i]);
		cr_expect_eq(wire_ports_parse(ports[i]), WIRE_PORTS_PRESERVE + i);
		cr_expect_str_eq(wire_ports_name(WIRE_PORTS_PRESERVE + i), ports[i]);
	}
}

Test(wire, refusals)
{
	static const char *const bad[] = {
		"unknown", "", "Endpoint-Independent", "endpoint-independent ", "symmetric",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(wire_dep_parse(bad[i]), -EINVAL, "%s", bad[i]);
		cr_expect_eq(wire_ports_parse(bad[i]), -EINVAL, "%s", bad[i]);
	}
	cr_expect_eq(wire_dep_parse(NULL), -EINVAL);
	cr_expect_str_eq(wire_dep_name(WIRE_DEP_UNKNOWN), "unknown");
	cr_expect_str_eq(wire_dep_name((enum wire_dep)42), "unknown");
	cr_expect_str_eq(wire_ports_name(WIRE_PORTS_UNKNOWN), "unknown");
}
