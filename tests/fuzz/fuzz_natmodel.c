/* libFuzzer target for the NAT model parser: natmodel_parse on arbitrary
 * text. A model it accepts must format, render to nftnl objects, describe,
 * and survive the trip through its JSON form unchanged. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nat-models/natmodel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct natmodel m, back;
	struct natmodel_error err = { "", "" };
	struct natmodel_ruleset *rs;
	char buf[NATMODEL_STRLEN];
	char *spec = malloc(size + 1);
	json_t *j;

	if (!spec)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	if (natmodel_parse(spec, &m, &err) == 0) {
		natmodel_format(&m, buf, sizeof(buf));
		j = natmodel_to_json(&m);
		if (!j || natmodel_from_json(j, &back, &err) != 0 || back.mapping != m.mapping ||
		    back.filtering != m.filtering || back.ports != m.ports ||
		    back.hairpinning != m.hairpinning || back.udp_timeout != m.udp_timeout ||
		    back.port_min != m.port_min || back.port_max != m.port_max)
			abort();
		json_decref(j);
		/* dual-stack: both tables, 203.0.113.1 and 2001:db8::1 */
		struct natmodel_wan wan = { true, true, { htonl(0xcb007101) },
					    { .s6_addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } } };
		if (natmodel_render(&m, "wan0", &wan, &rs, &err) != 0)
			abort();
		free(natmodel_ruleset_describe(rs));
		natmodel_ruleset_free(rs);
	} else if (!err.reason[0]) {
		abort();	/* every refusal says why */
	}
	free(spec);
	return 0;
}
