/* api_secgroup: the handlers of /api/security-groups and
 * /api/security-groups/{id} (issue 16): the admin creates, lists, reads,
 * changes and deletes a VPC's groups; a device reads its own group. Each
 * change is a new policy for the VPC: its long polls wake. */
#include <errno.h>
#include <string.h>

#include "api_internal.h"

static enum MHD_Result refused(struct api *api, struct MHD_Connection *c, struct request *rq, int rc,
			       const struct verr *e)
{
	switch (rc) {
	case -ENOENT:
		if (!strcmp(e->field, "vpc_id"))
			return api_send_verr(api, c, rq, e);
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such security group");
	case -ESRCH:
		return api_send_verr(api, c, rq, e);
	case -EEXIST:
	case -EPERM:
	case -EBUSY:
	case -ENOSPC:
		return api_send_error(api, c, rq, MHD_HTTP_CONFLICT, e->field[0] ? e->field : NULL, "%s", e->msg);
	default:
		return api_send_internal(api, c, rq, rc);
	}
}

enum MHD_Result api_secgroup_create(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	struct secgroup_spec spec;
	struct verr e = { "", "" };
	json_t *out;
	int rc;

	if (validate_secgroup_create(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	rc = store_secgroup_create(api->store, &spec, api_now_s(), &out, &e);
	secgroup_spec_clear(&spec);
	if (rc < 0)
		return refused(api, c, rq, rc, &e);
	api_log_write(api, "security group created id=%s vpc=%s name=%s", json_string_value(json_object_get(out, "id")),
		      spec.vpc_id, spec.name);
	api_vpc_changed(api, spec.vpc_id);
	return api_send_json(api, c, rq, MHD_HTTP_CREATED, out);
}

enum MHD_Result api_secgroup_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const json_t *body)
{
	const char *vpc_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "vpc_id");
	json_t *out;
	int rc;

	(void)body;
	if (vpc_id && !validate_uuid(vpc_id))
		return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "vpc_id", "must be a VPC id (a lowercase UUID)");
	rc = store_secgroup_list(api->store, vpc_id, &out);
	return rc < 0 ? api_send_internal(api, c, rq, rc) : api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

/* a device reads its own group alone: another VPC's does not exist for it,
 * another of its VPC is forbidden */
enum MHD_Result api_secgroup_get(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	json_t *out = NULL, *dev = NULL;
	int rc;

	(void)body;
	rc = store_secgroup_get(api->store, rq->id, &out);
	if (rc == -ENOENT || (rc == 0 && !api_may_read_vpc(rq, json_string_value(json_object_get(out, "vpc_id"))))) {
		json_decref(out);
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such security group");
	}
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	if (rq->who.scope == TOKEN_DEVICE) {
		bool own = store_device_get(api->store, rq->who.id, &dev, NULL) == 0 &&
			   !strcmp(json_string_value(json_object_get(dev, "security_group_id")), rq->id);

		json_decref(dev);
		if (!own) {
			json_decref(out);
			return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL,
					      "a device may read only its own security group");
		}
	}
	return api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_secgroup_patch(struct api *api, struct MHD_Connection *c, struct request *rq,
				   const json_t *body)
{
	struct secgroup_spec spec;
	struct verr e = { "", "" };
	json_t *out;
	int rc;

	if (validate_secgroup_patch(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	rc = store_secgroup_update(api->store, rq->id, &spec, api_now_s(), &out, &e);
	secgroup_spec_clear(&spec);
	if (rc < 0)
		return refused(api, c, rq, rc, &e);
	api_log_write(api, "security group changed id=%s vpc=%s", rq->id, json_string_value(json_object_get(out, "vpc_id")));
	api_vpc_changed(api, json_string_value(json_object_get(out, "vpc_id")));
	return api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

enum MHD_Result api_secgroup_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	char vpc_id[UUID_STRLEN];
	struct verr e = { "", "" };
	int rc;

	(void)body;
	rc = store_secgroup_delete(api->store, rq->id, vpc_id, &e);
	if (rc < 0)
		return refused(api, c, rq, rc, &e);
	api_log_write(api, "security group deleted id=%s vpc=%s", rq->id, vpc_id);
	api_vpc_changed(api, vpc_id);
	return api_send_empty(api, c, rq);
}
