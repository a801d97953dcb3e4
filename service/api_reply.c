/* api_reply: the answers of the API, JSON bodies and {"error", "field"}
 * refusals; each goes out through api_queue, which holds it while the batch
 * it may rest on is pending (api_batch.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "log.h"

/* queues the answer (taken) now */
enum MHD_Result api_deliver(struct api *api, struct MHD_Connection *c, struct request *rq,
			    unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	if (!rq->counted)
		api_count(api, rq, status);
	rq->state = RQ_DONE;
	return ret;
}

struct MHD_Response *api_json_response(json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	struct MHD_Response *resp;
	size_t n;

	if (!text)
		return NULL;
	n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room: the NUL becomes the newline */
	resp = MHD_create_response_from_buffer(n + 1, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return resp;
}

/* answers with body (consumed); a NULL body is an allocation failure */
enum MHD_Result api_send_json(struct api *api, struct MHD_Connection *c, struct request *rq,
			      unsigned status, json_t *body)
{
	struct MHD_Response *resp = body ? api_json_response(body) : NULL;
	json_decref(body);
	if (resp && status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"meshsvc\"");
	return api_queue(api, c, rq, status, resp);
}

__attribute__((format(printf, 6, 7)))
enum MHD_Result api_send_error(struct api *api, struct MHD_Connection *c, struct request *rq,
			       unsigned status, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *body = json_pack("{s:s}", "error", msg);
	if (body && field && *field)
		json_object_set_new(body, "field", json_string(field));
	return api_send_json(api, c, rq, status, body);
}

enum MHD_Result api_send_verr(struct api *api, struct MHD_Connection *c, struct request *rq,
			      const struct verr *e)
{
	return api_send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, e->field, "%s", e->msg);
}

/* a failed request: 503 while the database does not answer (the client
 * may try again, or another replica), else 500 */
enum MHD_Result api_send_internal(struct api *api, struct MHD_Connection *c, struct request *rq, int rc)
{
	log_error("api", "request failed route=%s method=%s: %s", api_route_names[rq->route],
		  api_method_names[rq->method], strerror(-rc));
	if (!store_available(api->store))
		return api_send_error(api, c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "the database is unavailable");
	return api_send_error(api, c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "internal error");
}

enum MHD_Result api_send_empty(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	return api_queue(api, c, rq, MHD_HTTP_NO_CONTENT,
			 MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}
