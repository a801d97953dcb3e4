/* libFuzzer target: the UAPI `set` body parser (text that wg(8), or anyone
 * who can open the root-owned socket, writes), and the `get` formatter on
 * whatever the parser accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/wg/uapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_uapi_config c;
	char *text;
	size_t len, line = 0;

	if (wg_uapi_parse_set((const char *)data, size, &c, &line) == 0) {
		if (wg_uapi_format_get(&c, &text, &len) == 0) {
			if (strlen(text) != len)
				abort();
			free(text);
		}
	}
	wg_uapi_config_clear(&c);
	return 0;
}
