/* libFuzzer target for the NAT-PMP codec (RFC 6886): natpmp_parse on
 * arbitrary bytes against an address request and a UDP map request. Beyond
 * not crashing: a parsed map answer with a body carries the request's
 * internal port; every refusal has a name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "natpmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct natpmp_request q = { .opcode = NATPMP_OP_MAP_UDP, .internal_port = 51820, .lifetime = 7200 };
	struct natpmp_response r;
	uint8_t *copy = malloc(size ? size : 1);
	int err;

	if (!copy)
		return 0;
	memcpy(copy, data, size);	/* exact size: ASan sees reads past the end */
	err = natpmp_parse(copy, size, &q, &r);
	if (!natpmp_strerror(err) || (err == 0 && r.has_body && r.internal_port != 51820))
		abort();
	q.opcode = NATPMP_OP_ADDRESS;
	err = natpmp_parse(copy, size, &q, &r);
	if (!natpmp_strerror(err) || (err == 0 && r.has_body && r.external.sa.sa_family != AF_INET))
		abort();
	free(copy);
	return 0;
}
