/* libFuzzer target for the PCP codec (RFC 6887): pcp_parse on arbitrary
 * bytes against an ANNOUNCE and a MAP request. Beyond not crashing: a parsed
 * MAP answer with opcode data carries the request's nonce, protocol and
 * internal port; every refusal has a name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pcp_request q = { .opcode = PCP_OP_MAP, .protocol = 17, .internal_port = 51820 };
	struct pcp_response r;
	uint8_t *copy = malloc(size ? size : 1), out[PCP_MAX_LEN];
	int err;

	if (!copy)
		return 0;
	memcpy(copy, data, size);	/* exact size: ASan sees reads past the end */
	addr_parse_ip("10.0.0.2", 0, &q.client);
	/* the nonce the input carries where a MAP answer has it, so mutations
	 * get past the nonce check */
	if (size >= PCP_HDR_LEN + PCP_NONCE_LEN)
		memcpy(q.nonce, data + PCP_HDR_LEN, PCP_NONCE_LEN);
	err = pcp_parse(copy, size, &q, &r);
	if (!pcp_strerror(err) || (err == 0 && r.has_map &&
				   (memcmp(r.nonce, q.nonce, PCP_NONCE_LEN) != 0 || r.protocol != 17 ||
				    r.internal_port != 51820)))
		abort();
	if (err == 0 && r.result <= 13 && !pcp_result_name(r.result))
		abort();
	q.opcode = PCP_OP_ANNOUNCE;
	err = pcp_parse(copy, size, &q, &r);
	if (!pcp_strerror(err) || (err == 0 && r.has_map))
		abort();
	if (pcp_build(&q, out, sizeof(out)) != PCP_HDR_LEN)
		abort();
	free(copy);
	return 0;
}
