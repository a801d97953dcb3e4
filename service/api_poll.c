/* api_poll: GET /api/vpcs/{id}/devices, the peer list and its long poll. A
 * list is the changes since a revision; one built outside a batch is cached
 * per VPC and since (a few of each VPC, least recently used out) and served
 * to every request that asks for the same changes, so a fan-out of thousands
 * builds it once and alternating since=0 and since=1 builds nothing new. A long poll is a suspended connection parked in
 * the watch until a change in its VPC or its deadline; a device token has at
 * most polls_per_token of them (429 past it), and the socket of each is
 * watched for a hang-up (EPOLLRDHUP on hup_epfd), so a client that goes away
 * is closed at once, not at its deadline in CLOSE-WAIT. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "api_internal.h"
#include "log.h"

/* a built peer list is served again to every waiter that asks for the same
 * changes, for at most this long (it carries last_seen, which moves without
 * a revision) */
#define LIST_CACHE_MS 1000

/* Filters a list for who (issue 16): the devices it may not learn of leave
 * `devices`, and their ids join `deleted` (ids only: nothing else of a
 * hidden device is told). A client behind the VPC's last policy change
 * (since older than the policy revision, and not starting over) is told what
 * the change made visible (in devices) and hidden (in deleted), when the
 * view of the policy it knew is kept; else every device it sees now and the
 * ids of all the others: whatever it was told before, its list is right
 * afterwards. */
static int filter_list(struct api *api, struct policy_view *v, const struct view_member *who, const char *vpc_id,
		       int64_t since, bool full, json_t **devices, json_t *deleted)
{
	json_t *keep = json_array(), *d, *all, *none;
	struct policy_view *old;
	size_t i, ndeleted = json_array_size(deleted);
	bool f;
	int rc = 0;

	if (!keep)
		return -ENOMEM;
	if (!full && since < api_policy_revision(v)) {
		/* the flips from the policy the client knew, when kept; else everything */
		if ((old = api_policy_prev(v, since)))
			rc = api_policy_flips(api, v, old, who, since, keep, deleted);
		if (!old || rc == -ENOENT) {
			json_array_clear(keep);
			while (json_array_size(deleted) > ndeleted)
				json_array_remove(deleted, json_array_size(deleted) - 1);
			if ((rc = store_device_changes(api->store, vpc_id, 0, &all, &none, &f)) == 0) {
				json_decref(none);
				json_decref(*devices);
				*devices = all;
			}
		}
		if (rc < 0) {
			json_decref(keep);
			return rc;
		}
	}
	json_array_foreach(*devices, i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		const struct view_member *peer = id ? api_policy_member(v, id) : NULL;

		if (peer && api_policy_sees(v, who, peer))
			rc = json_array_append(keep, d);
		else
			rc = full ? 0 : json_array_append_new(deleted, json_string(id ? id : ""));
		if (rc < 0) {
			json_decref(keep);
			return -ENOMEM;
		}
	}
	json_decref(*devices);
	*devices = keep;
	return 0;
}

int api_list_json(struct api *api, const char *vpc_id, int64_t since, int64_t revision, struct policy_view *v,
		  const struct view_member *who, json_t **out)
{
	json_t *devices, *deleted, *body;
	bool full;
	int rc;

	*out = NULL;
	if ((rc = store_device_changes(api->store, vpc_id, since, &devices, &deleted, &full)) < 0)
		return rc;
	if (who && (rc = filter_list(api, v, who, vpc_id, since, full, &devices, deleted)) < 0) {
		json_decref(devices);
		json_decref(deleted);
		return rc;
	}
	body = json_pack("{s:s, s:I, s:b, s:o, s:o}", "vpc_id", vpc_id, "revision", (json_int_t)revision,
			 "full", full, "devices", devices, "deleted", deleted);
	if (!body)
		return -ENOMEM;
	if (who && api_policy_annotate(v, who, body) < 0) {
		json_decref(body);
		return -ENOMEM;
	}
	*out = body;
	return 0;
}

static int build_list(struct api *api, const char *vpc_id, int64_t since, int64_t revision,
		      struct policy_view *v, const struct view_member *who, struct MHD_Response **out)
{
	json_t *body;
	int rc;

	*out = NULL;
	api->list_builds++;
	if ((rc = api_list_json(api, vpc_id, since, revision, v, who, &body)) < 0)
		return rc;
	*out = api_json_response(body);
	json_decref(body);
	return *out ? 0 : -ENOMEM;
}

/* the entry of the VPC's cache for since and class, or a slot for it: a new
 * one, or its least recently used while the VPC has API_LIST_CACHE_PER_VPC;
 * NULL without memory. An empty slot has no response. */
static struct list_cache *cache_slot(struct api *api, const char *vpc_id, int64_t since, const char *cls)
{
	struct list_cache *e, *lru = NULL;
	unsigned n = 0;

	for (e = api->cache; e; e = e->next) {
		if (strcmp(e->vpc_id, vpc_id))
			continue;
		if (e->since == since && !strcmp(e->cls, cls))
			return e;
		if (!lru || e->used < lru->used)
			lru = e;
		n++;
	}
	if (n >= API_LIST_CACHE_PER_VPC) {
		MHD_destroy_response(lru->response);
		lru->response = NULL;
		lru->since = since;
		snprintf(lru->cls, sizeof(lru->cls), "%s", cls);
		return lru;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return NULL;
	memcpy(e->vpc_id, vpc_id, UUID_STRLEN);
	e->since = since;
	snprintf(e->cls, sizeof(e->cls), "%s", cls);
	e->next = api->cache;
	api->cache = e;
	return e;
}

/* The peer list for rq. A list built while the batch is pending may hold
 * writes that are not committed, so it is this request's alone (held with
 * it), never cached. Every since that gets the whole list (0, or one from
 * the future) shares the entry of 0. A device's list is filtered by policy:
 * the cache is per class of requester (api_policy_class: the admin, relays,
 * the members of one group), never one device's view served to another
 * that may see otherwise. */
enum MHD_Result api_send_list(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	int64_t revision, since, now = watch_now_ms();
	const struct view_member *who = NULL;
	struct policy_view *v = NULL;
	char cls[API_CLASS_LEN] = "admin";
	struct MHD_Response *resp;
	struct list_cache *e;
	enum MHD_Result ret;
	int rc;

	if (!api_may_read_vpc(rq, rq->id) || store_vpc_revision(api->store, rq->id, &revision) < 0)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (rq->who.scope == TOKEN_DEVICE) {
		if ((rc = api_policy_view(api, rq->id, &v)) < 0)
			return api_send_internal(api, c, rq, rc);
		if (!(who = api_policy_member(v, rq->who.id))) {
			api_policy_view_put(v);
			return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
		}
		api_policy_class(v, who, rq->since <= 0 || rq->since > revision ? 0 : rq->since, cls);
	}
	if (store_batch_pending(api->store)) {
		rc = build_list(api, rq->id, rq->since, revision, v, who, &resp);
		api_policy_view_put(v);
		if (rc < 0)
			return api_send_internal(api, c, rq, rc);
		return api_queue(api, c, rq, MHD_HTTP_OK, resp);
	}
	since = rq->since <= 0 || rq->since > revision ? 0 : rq->since;
	if (!(e = cache_slot(api, rq->id, since, cls))) {
		api_policy_view_put(v);
		return MHD_NO;
	}
	if (e->response && e->revision == revision && now - e->built_ms <= LIST_CACHE_MS) {
		api->list_hits++;
	} else {
		rc = build_list(api, rq->id, since, revision, v, who, &resp);
		if (rc < 0) {
			api_policy_view_put(v);
			return api_send_internal(api, c, rq, rc);
		}
		if (e->response)
			MHD_destroy_response(e->response);
		e->response = resp;
		e->revision = revision;
		e->built_ms = now;
	}
	api_policy_view_put(v);
	e->used = ++api->cache_uses;
	/* the cache keeps its reference */
	ret = MHD_queue_response(c, MHD_HTTP_OK, e->response);
	api_count(api, rq, MHD_HTTP_OK);
	rq->state = RQ_DONE;
	return ret;
}

static struct poll_count **poll_slot(struct api *api, const char *device_id)
{
	unsigned h = 2166136261u; /* FNV-1a */
	struct poll_count **p;
	for (const char *q = device_id; *q; q++)
		h = (h ^ (unsigned char)*q) * 16777619u;
	for (p = &api->polls[h % API_POLL_BUCKETS]; *p; p = &(*p)->next)
		if (!strcmp((*p)->device_id, device_id))
			break;
	return p;
}

/* counts a long poll against its device token: 0, -EBUSY at the limit, or
 * -ENOMEM. The admin's are not limited. */
static int poll_take(struct api *api, struct request *rq)
{
	struct poll_count **p, *e;

	if (rq->who.scope != TOKEN_DEVICE)
		return 0;
	p = poll_slot(api, rq->who.id);
	if (!(e = *p)) {
		if (!(e = calloc(1, sizeof(*e))))
			return -ENOMEM;
		memcpy(e->device_id, rq->who.id, UUID_STRLEN);
		*p = e;
	}
	if (e->n >= api->polls_per_token)
		return -EBUSY;
	e->n++;
	rq->token_counted = true;
	return 0;
}

static void poll_release(struct api *api, struct request *rq)
{
	struct poll_count **p, *e;

	if (!rq->token_counted)
		return;
	rq->token_counted = false;
	p = poll_slot(api, rq->who.id);
	if (!(e = *p))
		return;
	if (--e->n == 0) {
		*p = e->next;
		free(e);
	}
}

static enum MHD_Result send_too_many(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	char retry[16];
	struct MHD_Response *resp;
	json_t *body = json_pack("{s:s}", "error", "too many long polls waiting for this token");

	api->polls_refused++;
	resp = body ? api_json_response(body) : NULL;
	json_decref(body);
	if (!resp)
		return MHD_NO;
	snprintf(retry, sizeof(retry), "%d", API_POLL_RETRY_S);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	return api_queue(api, c, rq, MHD_HTTP_TOO_MANY_REQUESTS, resp);
}

/* the suspended socket, watched for the client's hang-up; without it the poll
 * still ends at its deadline */
static void hup_watch(struct api *api, struct request *rq)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct epoll_event ev = { .events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = rq };

	if (ci && epoll_ctl(api->hup_epfd, EPOLL_CTL_ADD, ci->connect_fd, &ev) < 0)
		log_warn("api", "cannot watch a long poll for its hang-up: %s", strerror(errno));
}

void api_poll_leave(struct api *api, struct request *rq)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	atomic_fetch_sub(&api->parked, 1);
	poll_release(api, rq);
	if (ci)
		epoll_ctl(api->hup_epfd, EPOLL_CTL_DEL, ci->connect_fd, NULL);
}

void api_poll_hangups(struct api *api)
{
	struct epoll_event ev[64];
	int n;

	api->hup_ready = false;
	while ((n = epoll_wait(api->hup_epfd, ev, 64, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			struct request *rq = ev[i].data.ptr;
			/* one-shot: no second event; a waiter woken meanwhile is
			 * answered, and its write fails */
			if (!watch_cancel(api->watch, &rq->waiter))
				continue;
			rq->gone = true;
			api->polls_hung_up++;
			MHD_resume_connection(rq->conn);
			api->resumed = true;
		}
	}
}

enum MHD_Result api_vpc_devices(struct api *api, struct MHD_Connection *c, struct request *rq,
				const json_t *body)
{
	const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
	const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	int64_t revision;
	int wait_s = 0, rc;
	struct verr e;

	(void)body;
	if (since && validate_since(since, &rq->since, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	if (wait && validate_wait(wait, &wait_s, &e) < 0)
		return api_send_verr(api, c, rq, &e);
	if (!api_may_read_vpc(rq, rq->id) || store_vpc_revision(api->store, rq->id, &revision) < 0)
		return api_send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (!since || wait_s == 0 || rq->since != revision)
		return api_send_list(api, c, rq);
	if ((rc = poll_take(api, rq)) == -EBUSY)
		return send_too_many(api, c, rq);
	if (rc < 0)
		return api_send_internal(api, c, rq, rc);
	/* Suspend first, then park: a wake may come from the timer thread at once. */
	MHD_suspend_connection(c);
	rq->state = RQ_WAITING;
	rq->conn = c;
	atomic_fetch_add(&api->parked, 1);
	hup_watch(api, rq);
	rc = watch_add(api->watch, &rq->waiter, rq->id, watch_now_ms() + (int64_t)wait_s * 1000, c);
	if (rc < 0) {
		/* answered at once, as if the wait were over */
		MHD_resume_connection(c);
		api->resumed = true;
	}
	return MHD_YES;
}

void api_cache_drop(struct api *api, const char *vpc_id)
{
	api_policy_drop(api, vpc_id);
	struct list_cache **p = &api->cache;
	while (*p) {
		struct list_cache *e = *p;
		if (strcmp(e->vpc_id, vpc_id)) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		if (e->response)
			MHD_destroy_response(e->response);
		free(e);
	}
}

void api_cache_free(struct api *api)
{
	api_policy_free(api);
	while (api->cache) {
		struct list_cache *e = api->cache;
		api->cache = e->next;
		if (e->response)
			MHD_destroy_response(e->response);
		free(e);
	}
}
