/* api_batch: the API's side of group commit (api.h). While the store's batch
 * is pending, answers are held on their suspended connections, log lines
 * about writes are held, and the VPCs that changed are gathered; the batch's
 * end commits, then releases all three. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "log.h"

/* Group commit: a batch is committed when libmicrohttpd has no request ready,
 * or earlier, between two requests, once its first held answer has waited
 * this long or it holds this many answers: bounds on the latency that a long
 * burst would add to its first writers. */
#define GROUP_MAX_US 2000
#define GROUP_MAX_ANSWERS 256
/* The most VPCs a batch, or the batches between two rounds, remember as
 * changed: a batch is cut at GROUP_MAX_ANSWERS answers, and a request
 * changes at most two VPCs (its device's presence and its write). Past it,
 * waiters are woken at once, which is safe too: what they are answered
 * while the batch is pending is held. */
#define CHANGED_MAX (4 * GROUP_MAX_ANSWERS)

void api_batch_init(struct api *api)
{
	vec_init(&api->changed, UUID_STRLEN, CHANGED_MAX, "meshsvc VPCs changed in a batch");
	vec_init(&api->committed, UUID_STRLEN, CHANGED_MAX, "meshsvc VPCs committed in a round");
	api_notes_init(&api->notes, API_NOTES_MAX);
}

void api_batch_fini(struct api *api)
{
	vec_free(&api->changed);
	vec_free(&api->committed);
	api_notes_free(&api->notes);
}

/* Answers rq with resp (taken; NULL is an allocation failure). While the
 * store's batch is pending, an answer may rest on writes that are not durable
 * yet (the request's own, or ones its reads saw), so it is held, the
 * connection suspended, until api_batch_end has committed them. */
enum MHD_Result api_queue(struct api *api, struct MHD_Connection *c, struct request *rq,
			  unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	if (!store_batch_pending(api->store))
		return api_deliver(api, c, rq, status, resp);
	if (!api->held)
		api->held_since_us = api_now_us();
	rq->conn = c;
	rq->answer = resp;
	rq->status = status;
	rq->state = RQ_HELD;
	rq->held_next = api->held;
	api->held = rq;
	api->nheld++;
	MHD_suspend_connection(c);
	return MHD_YES;
}

/* 0, or -ENOSPC/-ENOMEM (the vec logs and counts it) */
static int vpc_set_add(struct vec *set, const char *vpc_id)
{
	for (size_t i = 0; i < set->len; i++)
		if (!strcmp(vec_at(set, i), vpc_id))
			return 0;
	char *id = vec_push(set);
	if (!id)
		return -errno;
	snprintf(id, UUID_STRLEN, "%s", vpc_id);
	return 0;
}

/* Should the set not grow, the waiters are woken now, which is safe too:
 * what they are answered while the batch is pending is held. */
void api_vpc_changed(struct api *api, const char *vpc_id)
{
	if (!store_batch_pending(api->store) || vpc_set_add(&api->changed, vpc_id) < 0)
		watch_notify(api->watch, vpc_id);
}

void api_notify_if_changed(struct api *api, const char *vpc_id, int64_t before)
{
	int64_t after;
	if (store_vpc_revision(api->store, vpc_id, &after) < 0 || after != before)
		api_vpc_changed(api, vpc_id);
}

void api_notes_init(struct api_notes *n, size_t max)
{
	vec_init(&n->lines, sizeof(char *), max, "meshsvc log lines held for a commit");
	n->early = 0;
}

/* While the batch is pending a line waits, like the answer, for the commit:
 * the log tells only of what is durable. A line that cannot wait is written
 * now, saying so, rather than lost. */
void api_notes_add(struct api_notes *n, bool pending, const char *fmt, va_list ap)
{
	char *line, now[512];
	va_list again;

	if (!pending) {
		log_vmsg(LOG_INFO, "api", fmt, ap);
		return;
	}
	va_copy(again, ap);
	if (vasprintf(&line, fmt, ap) >= 0) {
		if (vec_append(&n->lines, &line) == 0) {
			va_end(again);
			return;
		}
		free(line);
	}
	vsnprintf(now, sizeof(now), fmt, again);
	va_end(again);
	n->early++;
	log_info("api", "%s committed=pending held=%zu", now, n->lines.len);
}

void api_notes_flush(struct api_notes *n, bool committed)
{
	for (size_t i = 0; i < n->lines.len; i++) {
		char *line = VEC_PTR(&n->lines, char *, i);
		if (committed)
			log_info("api", "%s", line);
		free(line);
	}
	vec_truncate(&n->lines, 0);
}

void api_notes_free(struct api_notes *n)
{
	api_notes_flush(n, false);
	vec_free(&n->lines);
}

void api_log_write(struct api *api, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	api_notes_add(&api->notes, store_batch_pending(api->store), fmt, ap);
	va_end(ap);
}

/* Ends the batch: commits it, then releases the answers held for it (each a
 * 500 if the commit failed: none of its writes is durable), and has the
 * waiters of the VPCs it changed woken. */
void api_batch_end(struct api *api)
{
	int rc = store_batch_commit(api->store);
	bool down = rc < 0 && !store_available(api->store);
	struct request *rq, *next;

	if (rc < 0)
		log_error("api", "commit failed, answering the batch's %u requests with %d: %s", api->nheld,
			  down ? 503 : 500, strerror(-rc));
	for (rq = api->held; rq; rq = next) {
		next = rq->held_next;
		rq->held_next = NULL;
		if (rc < 0) {
			json_t *body = json_pack("{s:s}", "error", down ? "the database is unavailable: not committed"
									     : "internal error: not committed");
			MHD_destroy_response(rq->answer);
			rq->answer = body ? api_json_response(body) : NULL;
			rq->status = down ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR;
			json_decref(body);
		}
		MHD_resume_connection(rq->conn);
		api->resumed = true;
	}
	api->held = NULL;
	api->nheld = 0;
	api_notes_flush(&api->notes, rc >= 0);
	for (size_t i = 0; rc >= 0 && i < api->changed.len; i++)
		if (vpc_set_add(&api->committed, vec_at(&api->changed, i)) < 0)
			watch_notify(api->watch, vec_at(&api->changed, i));
	vec_truncate(&api->changed, 0);
}

/* a burst has made the batch's first answers wait long enough: commit it
 * between two requests, and go on with a new one */
void api_batch_cut_if_due(struct api *api)
{
	if (!api->held ||
	    (api->nheld < GROUP_MAX_ANSWERS && api_now_us() - api->held_since_us < GROUP_MAX_US))
		return;
	api_batch_end(api);
	store_batch_begin(api->store);
}
