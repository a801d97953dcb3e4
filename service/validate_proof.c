/* validate_proof: the bodies of the key challenge (challenge.h): the
 * request for one, and the "proof" a registration answers it with. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "validate_internal.h"

/* a string member of obj, base64 (with padding) of exactly 32 bytes */
static int b64_32(const json_t *obj, const char *parent, const char *member, uint8_t out[32],
		  struct verr *err)
{
	const json_t *v = json_object_get(obj, member);
	char field[64];
	size_t n;

	snprintf(field, sizeof(field), "%s.%s", parent, member);
	if (!v)
		return validate_fail(err, field, "required field is missing");
	if (!json_is_string(v) || json_string_length(v) != 44 ||
	    sodium_base642bin(out, 32, json_string_value(v), 44, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != 32)
		return validate_fail(err, field, "must be base64 of 32 bytes");
	return 0;
}

int validate_dev_proof(const char *name, const json_t *v, void *spec, struct verr *err)
{
	struct device_spec *s = spec;
	const char *key;
	json_t *member;
	int rc;

	if (!json_is_object(v))
		return validate_fail(err, name, "must be an object: {\"challenge\", \"mac\"}");
	json_object_foreach((json_t *)v, key, member) {
		if (strcmp(key, "challenge") && strcmp(key, "mac")) {
			char field[64];
			snprintf(field, sizeof(field), "%s.%.40s", name, key);
			return validate_fail(err, field, "unknown field");
		}
	}
	if ((rc = b64_32(v, name, "challenge", s->proof_challenge, err)) < 0 ||
	    (rc = b64_32(v, name, "mac", s->proof_mac, err)) < 0)
		return rc;
	return 0;
}

int validate_challenge_request(const json_t *body, uint8_t public_key[WG_KEY_BYTES], struct verr *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body))
		return validate_fail(err, NULL, "body must be a JSON object");
	json_object_foreach((json_t *)body, key, v)
		if (strcmp(key, "public_key"))
			return validate_fail(err, key, "unknown field");
	v = json_object_get(body, "public_key");
	if (!v)
		return validate_fail(err, "public_key", "required field is missing");
	if (!json_is_string(v) || wgkey_parse(json_string_value(v), public_key) < 0)
		return validate_fail(err, "public_key", "must be a WireGuard public key: base64 of 32 bytes");
	return 0;
}
