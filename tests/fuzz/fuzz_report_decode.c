/* libFuzzer target for traversal-report's packet decoder: the first input
 * byte picks the link type, the rest is the captured frame. The decoded
 * payload must lie inside the frame and agree with the lengths it claims. */
#include <errno.h>
#include <pcap/dlt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pktdecode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int linktypes[] = {
	DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, 101, DLT_IPV4, DLT_IPV6,
	DLT_NULL, DLT_LOOP, 9999,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_decoded d;
	uint8_t *copy;
	int lt, rc;

	if (size < 1)
		return 0;
	lt = linktypes[data[0] % (sizeof(linktypes) / sizeof(linktypes[0]))];
	/* an exact-size heap copy, so ASan sees any read past the end */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	rc = pkt_decode(lt, copy, size - 1, &d);
	if (rc == 0 && d.kind >= PKT_UDP) {
		if (d.payload < copy || d.payload + d.payload_len > copy + size - 1)
			abort();
		if (!d.truncated && d.payload_len != d.udp_len)
			abort();
		if (d.kind == PKT_WG && (d.wg.type < 1 || d.wg.type > 4))
			abort();
		if (d.kind == PKT_STUN && (d.payload_len < 20 || d.stun.cls > 3))
			abort();
	}
	if (rc != 0 && rc != -EBADMSG && rc != -EPROTONOSUPPORT)
		abort();
	free(copy);
	return 0;
}
