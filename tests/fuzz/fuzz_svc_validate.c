/* libFuzzer target: request bodies of the control-plane API, as meshsvc reads
 * them (JSON text from the network), through every validator (security
 * groups' too). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "service/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	struct verr err;
	char param[64];
	int64_t since;
	int wait;

	/* the query parameters are short strings */
	size_t n = size < sizeof(param) - 1 ? size : sizeof(param) - 1;
	memcpy(param, data, n);
	param[n] = 0;
	validate_since(param, &since, &err);
	validate_wait(param, &wait, &err);

	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return 0;
	struct vpc_spec vpc;
	struct regkey_spec key;
	struct device_spec dev;
	validate_vpc_create(body, &vpc, &err);
	validate_regkey_create(body, 1700000000, &key, &err);
	memset(&dev, 0, sizeof(dev));
	validate_device_register(body, &dev, &err);
	device_spec_clear(&dev);
	memset(&dev, 0, sizeof(dev));
	validate_device_patch(body, &dev, &err);
	device_spec_clear(&dev);
	validate_challenge_request(body, dev.public_key, &err);
	/* security groups: the rules through lib/policy, written back */
	struct secgroup_spec sg;
	if (validate_secgroup_create(body, &sg, &err) == 0)
		secgroup_spec_clear(&sg);
	if (validate_secgroup_patch(body, &sg, &err) == 0)
		secgroup_spec_clear(&sg);
	json_decref(body);
	return 0;
}
