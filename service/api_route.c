/* api_route: a request's way in. The path names a route and its {id}; the
 * route and method name an endpoint, which says who may call it (the scopes
 * of the bearer token, checked before any body is read, so a refused request
 * costs no upload) and whether it takes a JSON body; then its handler runs.
 * Authentication also keeps a device's presence: a request from a device
 * moves its last_seen, and one from an offline device brings it online. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "log.h"

/* a device's last_seen is written at most this often: an eighth of the
 * offline window (15 s of the default 120 s), so a device that talks keeps
 * well inside it */
#define TOUCH_DIVISOR 8

#define ADMIN SCOPE(TOKEN_ADMIN)
#define REGKEY SCOPE(TOKEN_REGKEY)
#define DEVICE SCOPE(TOKEN_DEVICE)
#define ANYONE (ADMIN | REGKEY | DEVICE)

const char *const api_route_names[R_COUNT] = {
	[R_HEALTHZ] = "/healthz", [R_METRICS] = "/metrics", [R_WHOAMI] = "/api/whoami",
	[R_VPCS] = "/api/vpcs", [R_VPC] = "/api/vpcs/{id}", [R_VPC_DEVICES] = "/api/vpcs/{id}/devices",
	[R_REGKEYS] = "/api/reg-keys", [R_REGKEY] = "/api/reg-keys/{id}", [R_DEVICES] = "/api/devices",
	[R_DEVICE] = "/api/devices/{id}", [R_DEVICE_CHALLENGE] = "/api/devices/challenge",
	[R_SECGROUPS] = "/api/security-groups", [R_SECGROUP] = "/api/security-groups/{id}", [R_UNKNOWN] = "other",
};

const char *const api_method_names[M_COUNT] = { "GET", "POST", "PATCH", "DELETE", "other" };

static const struct endpoint endpoints[] = {
	{ R_HEALTHZ, M_GET, 0, false, api_healthz },
	{ R_METRICS, M_GET, ADMIN, false, api_metrics },
	{ R_WHOAMI, M_GET, ANYONE, false, api_whoami },
	{ R_VPCS, M_POST, ADMIN, true, api_vpc_create },
	{ R_VPCS, M_GET, ADMIN, false, api_vpc_list },
	{ R_VPC, M_GET, ADMIN | DEVICE, false, api_vpc_get },
	{ R_VPC, M_DELETE, ADMIN, false, api_vpc_delete },
	{ R_VPC_DEVICES, M_GET, ADMIN | DEVICE, false, api_vpc_devices },
	{ R_REGKEYS, M_POST, ADMIN, true, api_regkey_create },
	{ R_REGKEYS, M_GET, ADMIN, false, api_regkey_list },
	{ R_REGKEY, M_GET, ADMIN, false, api_regkey_get },
	{ R_REGKEY, M_DELETE, ADMIN, false, api_regkey_delete },
	{ R_DEVICES, M_POST, REGKEY | DEVICE, true, api_device_register },
	{ R_DEVICES, M_GET, ADMIN, false, api_device_list },
	{ R_DEVICE, M_GET, ADMIN | DEVICE, false, api_device_get },
	{ R_DEVICE, M_PATCH, ADMIN | DEVICE, true, api_device_patch },
	{ R_DEVICE, M_DELETE, ADMIN | DEVICE, false, api_device_delete },
	{ R_DEVICE_CHALLENGE, M_POST, REGKEY, true, api_device_challenge },
	{ R_SECGROUPS, M_POST, ADMIN, true, api_secgroup_create },
	{ R_SECGROUPS, M_GET, ADMIN, false, api_secgroup_list },
	{ R_SECGROUP, M_GET, ADMIN | DEVICE, false, api_secgroup_get },
	{ R_SECGROUP, M_PATCH, ADMIN, true, api_secgroup_patch },
	{ R_SECGROUP, M_DELETE, ADMIN, false, api_secgroup_delete },
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

const struct endpoint *api_endpoint_find(enum route_id route, enum method_id method, char *allow,
					 size_t allow_size)
{
	const struct endpoint *ep = NULL;
	size_t used = 0;

	if (allow_size)
		allow[0] = 0;
	for (size_t i = 0; i < NENDPOINTS; i++) {
		if (endpoints[i].route != route)
			continue;
		if (endpoints[i].method == method)
			ep = &endpoints[i];
		if (used < allow_size)
			used += (size_t)snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
						 api_method_names[endpoints[i].method]);
	}
	return ep;
}

enum method_id api_method_of(const char *m)
{
	for (int i = 0; i < M_OTHER; i++)
		if (!strcmp(m, api_method_names[i]))
			return (enum method_id)i;
	return M_OTHER;
}

/* the route of a path and its {id}; R_UNKNOWN if none matches */
enum route_id api_route_of(const char *url, char id[UUID_STRLEN])
{
	static const struct {
		const char *prefix;
		enum route_id bare, with_id;
	} roots[] = {
		{ "/api/vpcs", R_VPCS, R_VPC },
		{ "/api/reg-keys", R_REGKEYS, R_REGKEY },
		{ "/api/devices", R_DEVICES, R_DEVICE },
		{ "/api/security-groups", R_SECGROUPS, R_SECGROUP },
	};

	id[0] = 0;
	if (!strcmp(url, "/healthz"))
		return R_HEALTHZ;
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	if (!strcmp(url, "/api/whoami"))
		return R_WHOAMI;
	if (!strcmp(url, "/api/devices/challenge"))
		return R_DEVICE_CHALLENGE;
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		size_t n = strlen(roots[i].prefix);
		const char *rest = url + n;
		if (strncmp(url, roots[i].prefix, n))
			continue;
		if (!*rest)
			return roots[i].bare;
		if (*rest != '/' || strlen(rest + 1) < UUID_STRLEN - 1)
			return R_UNKNOWN;
		memcpy(id, rest + 1, UUID_STRLEN - 1);
		id[UUID_STRLEN - 1] = 0;
		if (!validate_uuid(id))
			return R_UNKNOWN;
		rest += UUID_STRLEN;
		if (!*rest)
			return roots[i].with_id;
		if (roots[i].with_id == R_VPC && !strcmp(rest, "/devices"))
			return R_VPC_DEVICES;
		return R_UNKNOWN;
	}
	return R_UNKNOWN;
}

enum MHD_Result api_query_arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	const char **bad = cls;
	(void)kind;
	(void)value;
	if (strcmp(key, "since") && strcmp(key, "wait")) {
		*bad = key;
		return MHD_NO;
	}
	return MHD_YES;
}

/* the list of security groups takes vpc_id alone */
static enum MHD_Result secgroup_arg_check(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	const char **bad = cls;

	(void)kind;
	(void)value;
	if (strcmp(key, "vpc_id")) {
		*bad = key;
		return MHD_NO;
	}
	return MHD_YES;
}

/* 0, or -EACCES when the token is missing, malformed or unknown, -EKEYEXPIRED */
static int authenticate(struct api *api, struct MHD_Connection *c, struct principal *who)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	uint8_t hash[TOKEN_HASH_BYTES];
	enum token_scope scope;
	int rc;

	memset(who, 0, sizeof(*who));
	if (!h || strncasecmp(h, "Bearer ", 7))
		return -EACCES;
	h += 7;
	while (*h == ' ')
		h++;
	if (token_scope_of(h, &scope) < 0)
		return -EACCES;
	token_hash(h, hash);
	switch (scope) {
	case TOKEN_ADMIN:
		if (sodium_memcmp(hash, api->admin_hash, TOKEN_HASH_BYTES) != 0)
			return -EACCES;
		who->scope = TOKEN_ADMIN;
		return 0;
	case TOKEN_REGKEY:
		rc = store_regkey_auth(api->store, hash, api_now_s(), who);
		break;
	default:
		rc = store_device_auth(api->store, hash, who);
		if (rc == 0 && (!who->online ||
				api_now_s() - who->last_seen >= api->limits.offline_after_s / TOUCH_DIVISOR) &&
		    store_device_touch(api->store, who, api_now_s()) > 0) {
			api_log_write(api, "device online id=%s vpc=%s", who->id, who->vpc_id);
			api_vpc_changed(api, who->vpc_id);
		}
		break;
	}
	if (rc == -ENOENT)
		return -EACCES;
	return rc;
}

/* A device sees only its own VPC: anything of another VPC does not exist for it. */
bool api_may_read_vpc(const struct request *rq, const char *vpc_id)
{
	return rq->who.scope == TOKEN_ADMIN || !strcmp(rq->who.vpc_id, vpc_id);
}

enum MHD_Result api_whoami(struct api *api, struct MHD_Connection *c, struct request *rq,
			   const json_t *body)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char source[ADDR_STRLEN] = "";
	union sockaddr_any sa;
	json_t *out;

	(void)body;
	if (ci && ci->client_addr) {
		memset(&sa, 0, sizeof(sa));
		memcpy(&sa, ci->client_addr, ci->client_addr->sa_family == AF_INET6
						     ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		addr_unmap_v4(&sa);
		addr_format(&sa, source, sizeof(source));
	}
	switch (rq->who.scope) {
	case TOKEN_ADMIN:
		out = json_pack("{s:s, s:s}", "scope", "admin", "source_address", source);
		break;
	case TOKEN_REGKEY:
		out = json_pack("{s:s, s:s, s:s, s:s}", "scope", "reg_key", "reg_key_id", rq->who.id,
				"vpc_id", rq->who.vpc_id, "source_address", source);
		break;
	default:
		out = json_pack("{s:s, s:s, s:s, s:s}", "scope", "device", "device_id", rq->who.id,
				"vpc_id", rq->who.vpc_id, "source_address", source);
		break;
	}
	return api_send_json(api, c, rq, MHD_HTTP_OK, out);
}

/* First call of a request: route, authenticate and authorize before any of
 * the body is read, so a refused request costs no upload. */
enum MHD_Result api_begin_request(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const char *url, const char *method)
{
	const struct endpoint *ep;
	const char *bad = NULL, *length;
	char allow[64];
	int rc;

	rq->route = api_route_of(url, rq->id);
	rq->method = api_method_of(method);
	if (rq->route == R_UNKNOWN)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such resource: %.100s", url);
	if (!(ep = api_endpoint_find(rq->route, rq->method, allow, sizeof(allow)))) {
		struct MHD_Response *resp;
		json_t *body = json_pack("{s:s}", "error", "method not allowed");
		if (!body || !(resp = api_json_response(body))) {
			json_decref(body);
			return MHD_NO;
		}
		json_decref(body);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
		return api_queue(api, c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	}
	if (ep->scopes) {
		rc = authenticate(api, c, &rq->who);
		if (rc == -EKEYEXPIRED)
			return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key expired");
		if (rc == -EACCES)
			return api_send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL,
					      "a valid bearer token is required");
		if (rc < 0)
			return api_send_internal(api, c, rq, rc);
		if (!(ep->scopes & SCOPE(rq->who.scope)))
			return api_send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL,
					      "this token's scope may not %s %s", method, api_route_names[rq->route]);
	}
	length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length && strtoull(length, NULL, 10) > API_BODY_MAX)
		return api_send_error(api, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				      "body larger than %d bytes", API_BODY_MAX);
	if (rq->route == R_SECGROUPS) {
		/* GET /api/security-groups?vpc_id=ID */
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, secgroup_arg_check, &bad);
	} else {
		if (rq->route != R_VPC_DEVICES && MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
			return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL,
					      "this resource takes no query parameters");
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, api_query_arg_check, &bad);
	}
	if (bad)
		return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, bad, "unknown query parameter");
	rq->ep = ep;
	rq->state = RQ_BODY;
	return MHD_YES;
}

/* rq->ep was found by api_begin_request, the only way into RQ_BODY */
enum MHD_Result api_dispatch(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	const struct endpoint *ep = rq->ep;
	json_error_t jerr;
	json_t *body = NULL;
	enum MHD_Result ret;

	if (!ep)
		return api_send_internal(api, c, rq, -EINVAL);
	if (ep->body) {
		if (!rq->len)
			return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL, "a JSON body is required");
		body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!body)
			return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL,
					      "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
					      jerr.text);
	}
	ret = ep->fn(api, c, rq, body);
	json_decref(body);
	return ret;
}
