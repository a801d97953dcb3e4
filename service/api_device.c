/* api_device: the handlers of /api/devices and /api/devices/{id}: a
 * registration key registers a device (its token sealed to its WireGuard
 * key) and a device registers again with its token; a device reads and
 * changes itself; the admin sees and deletes any, and grants or takes
 * relaying. */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>

#include "api_internal.h"

/* a device registers again only as itself: the body names its own key */
static bool own_key(struct api *api, const struct request *rq, const json_t *body)
{
	const char *named = json_string_value(json_object_get(body, "public_key"));
	json_t *dev = NULL;
	bool same;

	if (!named || store_device_get(api->store, rq->who.id, &dev, NULL) < 0)
		return false;
	same = !strcmp(named, json_string_value(json_object_get(dev, "public_key")));
	json_decref(dev);
	return same;
}

/* issue 15 point 5: no endpoint at the service itself (ownaddr.h); the
 * address this request came in on counts, whatever the last interface list */
static int endpoints_not_own(struct api *api, struct MHD_Connection *c, const struct device_spec *spec,
			     struct verr *e)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	union sockaddr_any local;
	socklen_t len = sizeof(local);
	bool has_local;

	if (!(spec->set & DEV_ENDPOINTS))
		return 0;
	has_local = ci && getsockname(ci->connect_fd, &local.sa, &len) == 0;
	ownaddr_refresh(&api->own, api_now_us() / 1000);
	return ownaddr_check_endpoints(&api->own, has_local ? &local : NULL, spec->endpoints, e);
}

static enum MHD_Result register_refused(struct api *api, struct MHD_Connection *c, struct request *rq, int rc)
{
	switch (rc) {
	case -ENOENT:
		if (rq->who.scope == TOKEN_DEVICE)
			return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "the device no longer exists");
		return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key no longer exists");
	case -EKEYEXPIRED:
		return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key expired");
	case -EKEYREVOKED:
		return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL,
				      "single-use registration key was already used");
	case -EDQUOT:
		return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL,
				      "the registration key registered its max_devices devices");
	case -EEXIST:
		return api_send_error(api, c, rq, MHD_HTTP_CONFLICT, "public_key",
				      "a device with this public key is registered: it registers again with its "
				      "device token, or with the key and a key proof (POST /api/devices/challenge)");
	case -EACCES:
		return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, "public_key",
				      "a device registers again only with its own public key");
	case -EXDEV:
		return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "vpc_id",
				      "the registration key belongs to another VPC");
	case -ENOSPC:
		return api_send_error(api, c, rq, MHD_HTTP_CONFLICT, NULL, "the VPC has no free tunnel address");
	case -EPERM:
		return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, "relay",
				      "relaying is granted by the admin: register with a key that mints relays");
	default:
		return api_send_internal(api, c, rq, rc);
	}
}

/* With a registration key: a new device (201). With a device token: that
 * device again, proven by the token it holds (200): the public key alone is
 * known to the whole VPC and proves nothing. */
enum MHD_Result api_device_register(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	char token[TOKEN_STRLEN], sealed[TOKEN_SEALED_B64LEN];
	bool again = rq->who.scope == TOKEN_DEVICE;
	uint8_t hash[TOKEN_HASH_BYTES];
	struct device_spec spec;
	enum MHD_Result ret;
	int64_t before = 0;
	json_t *out = NULL, *vpc;
	const char *why;
	struct verr e;
	int rc;

	if (again && !own_key(api, rq, body))
		return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, "public_key",
				      "a device registers again only with its own public key");
	if (validate_device_register(body, &spec, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	if (endpoints_not_own(api, c, &spec, &e) < 0) {
		device_spec_clear(&spec);
		return api_send_verr(api, c, rq, &e);
	}
	/* a key proof (api_challenge.c) lets a registration key reclaim a
	 * registered public key; a device with its token needs none */
	if ((spec.set & DEV_PROOF) && (again || api_proof_check(api, rq, &spec, &why) < 0)) {
		ret = api_send_error(api, c, rq, again ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_FORBIDDEN, "proof", "%s",
				     again ? "a device registering with its token gives no proof" : why);
		device_spec_clear(&spec);
		return ret;
	}
	token_generate(TOKEN_DEVICE, token);
	/* sealed before anything is stored: a key that cannot be sealed to changes nothing */
	if (token_seal(token, spec.public_key, sealed) < 0) {
		ret = api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "public_key",
				     "not a usable X25519 public key");
		goto out;
	}
	token_hash(token, hash);
	store_vpc_revision(api->store, rq->who.vpc_id, &before);
	if (again)
		rc = store_device_reregister(api->store, rq->who.id, &spec, hash, api_now_s(), &out);
	else if (spec.set & DEV_PROOF)
		rc = store_device_reclaim(api->store, rq->who.id, &spec, hash, api_now_s(), &out);
	else
		rc = store_device_register(api->store, rq->who.id, &spec, hash, api_now_s(), &out);
	if (rc < 0) {
		ret = register_refused(api, c, rq, rc);
		goto out;
	}
	/* the agent learns its VPC's prefix here, for its interface route */
	if (store_vpc_get(api->store, rq->who.vpc_id, &vpc) == 0)
		json_object_set_new(out, "vpc", vpc);
	json_object_set_new(out, "device_token", json_string(sealed));
	/* the device's own group, resolved, and every group of the VPC for a
	 * relay: what the agent enforces (issue 16) */
	int arc = api_policy_annotate_device(api, out);
	if (arc < 0) {
		json_decref(out);
		ret = api_send_internal(api, c, rq, arc);
		goto out;
	}
	if (!again)
		api_log_write(api, "device %s id=%s vpc=%s tunnel_ip=%s",
			      rc == 1 ? "reclaimed with a key proof" : "registered",
			      json_string_value(json_object_get(out, "id")), rq->who.vpc_id,
			      json_string_value(json_object_get(out, "tunnel_ip")));
	if (rc == 1) {
		api->reclaims++;
		again = true;	/* the same device: 200 */
	}
	/* new, or back online */
	api_notify_if_changed(api, rq->who.vpc_id, before);
	ret = api_send_json(api, c, rq, again ? MHD_HTTP_OK : MHD_HTTP_CREATED, out);
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
				   bool write, json_t **out, char vpc_id[UUID_STRLEN])
{
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

/* may the requesting device learn of device id (issue 16)? itself, and the
 * peers its peer list would show */
static int may_see(struct api *api, const struct request *rq, const char *vpc_id, bool *yes)
{
	const struct view_member *who, *peer;
	struct policy_view *v;
	int rc;

	*yes = rq->who.scope != TOKEN_DEVICE || !strcmp(rq->who.id, rq->id);
	if (*yes)
		return 0;
	if ((rc = api_policy_view(api, vpc_id, &v)) < 0)
		return rc;
	who = api_policy_member(v, rq->who.id);
	peer = api_policy_member(v, rq->id);
	*yes = who && peer && api_policy_sees(v, who, peer);
	api_policy_view_put(v);
	return 0;
}

enum MHD_Result api_device_get(struct api *api, struct MHD_Connection *c, struct request *rq,
			       const json_t *body)
{
	char vpc_id[UUID_STRLEN];
	json_t *out;
	enum MHD_Result ret = load_device(api, c, rq, false, &out, vpc_id);
	bool visible;
	int rc;

	(void)body;
	if (!out)
		return ret;
	/* a peer that policy hides does not exist for the device */
	if ((rc = may_see(api, rq, vpc_id, &visible)) < 0 || !visible) {
		json_decref(out);
		return rc < 0 ? api_send_internal(api, c, rq, rc)
			      : api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
	}
	return api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

/* The admin grants or takes relaying and moves a device to another security
 * group, and changes nothing else; a device changes what it reports, its
 * relay flag only by naming the one it has, and never its group. */
static bool patch_allowed(struct api *api, struct MHD_Connection *c, struct request *rq,
			  const struct device_spec *spec, const json_t *device, enum MHD_Result *ret)
{
	if (rq->who.scope == TOKEN_ADMIN && (spec->set & ~(unsigned)(DEV_RELAY | DEV_SECURITY_GROUP))) {
		*ret = api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL,
				      "the admin changes only relay and security_group_id; a device reports the rest itself");
		return false;
	}
	if (rq->who.scope == TOKEN_DEVICE && (spec->set & DEV_SECURITY_GROUP)) {
		*ret = api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, "security_group_id",
				      "a device's security group is set by the admin");
		return false;
	}
	if (rq->who.scope == TOKEN_DEVICE && (spec->set & DEV_RELAY) &&
	    spec->relay != json_is_true(json_object_get(device, "relay"))) {
		*ret = api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, "relay",
				      "relaying is granted by the admin, not claimed by a device");
		return false;
	}
	return true;
}

enum MHD_Result api_device_patch(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	char vpc_id[UUID_STRLEN];
	struct device_spec spec;
	enum MHD_Result ret;
	int64_t before = 0;
	unsigned set;
	json_t *out;
	struct verr e;
	int rc;

	ret = load_device(api, c, rq, true, &out, vpc_id);
	if (!out)
		return ret;
	if (validate_device_patch(body, &spec, &e) < 0 || endpoints_not_own(api, c, &spec, &e) < 0) {
		json_decref(out);
		device_spec_clear(&spec);
		return api_send_verr(api, c, rq, &e);
	}
	if (!patch_allowed(api, c, rq, &spec, out, &ret)) {
		json_decref(out);
		device_spec_clear(&spec);
		return ret;
	}
	json_decref(out);
	store_vpc_revision(api->store, vpc_id, &before);
	set = spec.set;
	rc = store_device_patch(api->store, rq->id, &spec, api_now_s(), &out);
	device_spec_clear(&spec);
	if (rc == -ESRCH)
		return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "security_group_id",
				      "no security group \"%s\" in the device's VPC", spec.security_group);
	if (rc < 0)
		return rc == -ENOENT ? api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device")
				     : api_send_internal(api, c, rq, rc);
	if (rq->who.scope == TOKEN_ADMIN && (set & DEV_RELAY))
		api_log_write(api, "device relay set id=%s vpc=%s relay=%d", rq->id, vpc_id, spec.relay);
	if (set & DEV_SECURITY_GROUP)
		api_log_write(api, "device security group set id=%s vpc=%s security_group_id=%s", rq->id, vpc_id,
			      json_string_value(json_object_get(out, "security_group_id")));
	api_notify_if_changed(api, vpc_id, before);
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
	ret = load_device(api, c, rq, true, &out, vpc_id);
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
