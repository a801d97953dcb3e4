/* api_vpc: the handlers of /api/vpcs and /api/vpcs/{id} (admin; a device may
 * read its own VPC). */
#include <errno.h>

#include "api_internal.h"

enum MHD_Result api_vpc_create(struct api *api, struct MHD_Connection *c, struct request *rq,
			       const json_t *body)
{
	struct vpc_spec spec;
	struct verr e;
	json_t *out;
	int rc;

	if (validate_vpc_create(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	rc = store_vpc_create(api->store, &spec, api_now_s(), &out);
	if (rc == -EEXIST)
		return api_send_error(api, c, rq, MHD_HTTP_CONFLICT, "name", "a VPC named %s exists", spec.name);
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	api_log_write(api, "vpc created id=%s name=%s cidr=%s", json_string_value(json_object_get(out, "id")),
		      spec.name, json_string_value(json_object_get(out, "ipv4_cidr")));
	return api_send_json(api, c, rq, MHD_HTTP_CREATED, out);
}

enum MHD_Result api_vpc_list(struct api *api, struct MHD_Connection *c, struct request *rq,
			     const json_t *body)
{
	json_t *out;
	int rc = store_vpc_list(api->store, &out);
	(void)body;
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_vpc_get(struct api *api, struct MHD_Connection *c, struct request *rq,
			    const json_t *body)
{
	json_t *out;
	int rc;
	(void)body;
	if (!api_may_read_vpc(rq, rq->id))
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	rc = store_vpc_get(api->store, rq->id, &out);
	if (rc == -ENOENT)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_vpc_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
			       const json_t *body)
{
	int rc = store_vpc_delete(api->store, rq->id);
	(void)body;
	if (rc == -ENOENT)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (rc == -ENOTEMPTY)
		return api_send_error(api, c, rq, MHD_HTTP_CONFLICT, NULL, "the VPC still has devices; delete them first");
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	api_log_write(api, "vpc deleted id=%s", rq->id);
	api_cache_drop(api, rq->id);
	api_vpc_changed(api, rq->id);
	return api_send_empty(api, c, rq);
}
