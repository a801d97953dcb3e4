/* api_regkey: the handlers of /api/reg-keys and /api/reg-keys/{id} (admin).
 * A key's secret is shown once, in the answer that creates it. */
#include <errno.h>
#include <sodium.h>

#include "api_internal.h"

enum MHD_Result api_regkey_create(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const json_t *body)
{
	char secret[TOKEN_STRLEN];
	uint8_t hash[TOKEN_HASH_BYTES];
	struct regkey_spec spec;
	struct verr e;
	json_t *out;
	int rc;

	if (validate_regkey_create(body, api_now_s(), &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	token_generate(TOKEN_REGKEY, secret);
	token_hash(secret, hash);
	rc = store_regkey_create(api->store, &spec, hash, api_now_s(), &out);
	if (rc == -ENOENT) {
		sodium_memzero(secret, sizeof(secret));
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, "vpc_id", "no such VPC");
	}
	if (rc < 0) {
		sodium_memzero(secret, sizeof(secret));
		return api_send_internal(api, c, rq, rc);
	}
	/* the only time the secret leaves the service */
	json_object_set_new(out, "secret", json_string(secret));
	sodium_memzero(secret, sizeof(secret));
	api_log_write(api, "reg-key created id=%s vpc=%s single_use=%d relay=%d max_devices=%lld",
		      json_string_value(json_object_get(out, "id")), spec.vpc_id, spec.single_use, spec.relay,
		      (long long)spec.max_devices);
	return api_send_json(api, c, rq, MHD_HTTP_CREATED, out);
}

enum MHD_Result api_regkey_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				const json_t *body)
{
	json_t *out;
	int rc = store_regkey_list(api->store, &out);
	(void)body;
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_regkey_get(struct api *api, struct MHD_Connection *c, struct request *rq,
			       const json_t *body)
{
	json_t *out;
	int rc = store_regkey_get(api->store, rq->id, &out);
	(void)body;
	if (rc == -ENOENT)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such registration key");
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_regkey_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const json_t *body)
{
	int rc = store_regkey_delete(api->store, rq->id);
	(void)body;
	if (rc == -ENOENT)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such registration key");
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	api_log_write(api, "reg-key deleted id=%s", rq->id);
	return api_send_empty(api, c, rq);
}
