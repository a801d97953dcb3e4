/* libFuzzer target for meshd's SSDP answer reader (ssdp_location): any
 * bytes; a LOCATION it returns starts with http:// and holds only printable
 * characters without spaces, and fits its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/meshd/portmap_ssdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1), out[128];

	if (!copy)
		return 0;
	memcpy(copy, data, size);	/* exact size: ASan sees reads past the end */
	if (ssdp_location(copy, size, out, sizeof(out)) == 0) {
		size_t n = strlen(out);
		if (n >= sizeof(out) || strncasecmp(out, "http://", 7))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)out[i] <= ' ' || (unsigned char)out[i] >= 0x7f)
				abort();
	}
	free(copy);
	return 0;
}
