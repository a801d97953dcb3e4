/* api_device: the handlers of /api/devices and /api/devices/{id}: a
 * registration key registers a device (its token sealed to its WireGuard
 * key), a device reads and changes itself, the admin sees and deletes any. */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "api_internal.h"

enum MHD_Result api_device_register(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	char token[TOKEN_STRLEN], sealed[TOKEN_SEALED_B64LEN];
	uint8_t hash[TOKEN_HASH_BYTES];
	struct device_spec spec;
	bool created = false;
	enum MHD_Result ret;
	int64_t before = 0;
	json_t *out = NULL, *vpc;
	struct verr e;
	int rc;

	if (validate_device_register(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	token_generate(TOKEN_DEVICE, token);
	/* sealed before anything is stored: a key that cannot be sealed to changes nothing */
	if (token_seal(token, spec.public_key, sealed) < 0) {
		ret = api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "public_key",
				     "not a usable X25519 public key");
		goto out;
	}
	token_hash(token, hash);
	store_vpc_revision(api->store, rq->who.vpc_id, &before);
	rc = store_device_register(api->store, rq->who.id, &spec, hash, api_now_s(), &out, &created);
	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		ret = api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key no longer exists");
		goto out;
	case -EKEYEXPIRED:
		ret = api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key expired");
		goto out;
	case -EKEYREVOKED:
		ret = api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL,
				     "single-use registration key was already used by another device");
		goto out;
	case -EXDEV:
		ret = api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "vpc_id",
				     "the registration key belongs to another VPC");
		goto out;
	case -ENOSPC:
		ret = api_send_error(api, c, rq, MHD_HTTP_CONFLICT, NULL, "the VPC has no free tunnel address");
		goto out;
	default:
		ret = api_send_internal(api, c, rq, rc);
		goto out;
	}
	/* the agent learns its VPC's prefix here, for its interface route */
	if (store_vpc_get(api->store, rq->who.vpc_id, &vpc) == 0)
		json_object_set_new(out, "vpc", vpc);
	json_object_set_new(out, "device_token", json_string(sealed));
	if (created)
		api_log_write(api, "device registered id=%s vpc=%s tunnel_ip=%s",
			      json_string_value(json_object_get(out, "id")), rq->who.vpc_id,
			      json_string_value(json_object_get(out, "tunnel_ip")));
	/* new, or back online */
	api_notify_if_changed(api, rq->who.vpc_id, before);
	ret = api_send_json(api, c, rq, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, out);
out:
	sodium_memzero(token, sizeof(token));
	device_spec_clear(&spec);
	return ret;
}

enum MHD_Result api_device_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				const json_t *body)
{
	json_t *out;
	int rc = store_device_list(api->store, &out);
	(void)body;
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

/* The device of the path, if the caller may see it: 404 for devices of
 * another VPC; 403 when it may see but not change it (write). */
static enum MHD_Result load_device(struct api *api, struct MHD_Connection *c, struct request *rq,
				   bool write, json_t **out)
{
	char vpc_id[UUID_STRLEN];
	int rc = store_device_get(api->store, rq->id, out, vpc_id);

	if (rc == -ENOENT || (rc == 0 && !api_may_read_vpc(rq, vpc_id))) {
		json_decref(*out);
		*out = NULL;
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
	}
	if (rc < 0) {
		*out = NULL;
		return api_send_internal(api, c, rq, rc);
	}
	if (write && rq->who.scope == TOKEN_DEVICE && strcmp(rq->who.id, rq->id)) {
		json_decref(*out);
		*out = NULL;
		return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL, "a device may change only itself");
	}
	return MHD_YES;
}

enum MHD_Result api_device_get(struct api *api, struct MHD_Connection *c, struct request *rq,
			       const json_t *body)
{
	json_t *out;
	enum MHD_Result ret = load_device(api, c, rq, false, &out);
	(void)body;
	return out ? api_send_json(api, c, rq, MHD_HTTP_OK, out) : ret;
}

enum MHD_Result api_device_patch(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	struct device_spec spec;
	enum MHD_Result ret;
	int64_t before = 0;
	json_t *out;
	struct verr e;
	int rc;

	ret = load_device(api, c, rq, true, &out);
	if (!out)
		return ret;
	json_decref(out);
	if (validate_device_patch(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	store_vpc_revision(api->store, rq->who.vpc_id, &before);
	rc = store_device_patch(api->store, rq->id, &spec, api_now_s(), &out);
	device_spec_clear(&spec);
	if (rc < 0)
		return rc == -ENOENT ? api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device")
				     : api_send_internal(api, c, rq, rc);
	api_notify_if_changed(api, rq->who.vpc_id, before);
	return api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_device_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const json_t *body)
{
	char vpc_id[UUID_STRLEN];
	enum MHD_Result ret;
	json_t *out;
	int rc;

	(void)body;
	ret = load_device(api, c, rq, true, &out);
	if (!out)
		return ret;
	json_decref(out);
	rc = store_device_delete(api->store, rq->id, api_now_s(), vpc_id);
	if (rc == -ENOENT)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	api_log_write(api, "device deleted id=%s vpc=%s", rq->id, vpc_id);
	api_vpc_changed(api, vpc_id);
	return api_send_empty(api, c, rq);
}
