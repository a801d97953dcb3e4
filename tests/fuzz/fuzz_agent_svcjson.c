/* libFuzzer target: the service's answers as meshd reads them (JSON text from
 * the network) through every svcjson parser: a device, a registration
 * answer, a change list and each device in it; and the raw bytes as a key. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/meshd/svcjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sealed[SVC_SEALED_MAX], b64[SVC_KEY_B64LEN + 8];
	uint8_t key[SVC_KEY_LEN];
	struct svc_device dev;
	struct svc_err err;
	struct cidr cidr;
	json_error_t jerr;
	json_t *body, *devices, *deleted, *j;
	int64_t rev;
	bool has_cidr, full;
	size_t i, n;

	n = size < sizeof(b64) - 1 ? size : sizeof(b64) - 1;
	memcpy(b64, data, n);
	b64[n] = 0;
	if (svcjson_key_parse(b64, key) == 0) {
		char back[SVC_KEY_B64LEN];
		svcjson_key_format(key, back);
	}

	body = json_loadb((const char *)data, size, 0, &jerr);
	if (!body)
		return 0;
	svcjson_parse_device(body, &dev, &err);
	svcjson_parse_registration(body, &dev, sealed, &cidr, &has_cidr, &err);
	svcjson_parse_challenge(body, dev.public_key, key, &err);
	if (svcjson_parse_changes(body, &rev, &devices, &deleted, &full, &err) == 0) {
		json_array_foreach(devices, i, j)
			svcjson_parse_device(j, &dev, &err);
	}
	json_decref(body);
	return 0;
}
