#include "api.h"

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "validate.h"
#include "watch.h"

/* a device's last_seen is written at most this often: an eighth of the
 * offline window (15 s of the default 120 s), so a device that talks keeps
 * well inside it */
#define TOUCH_DIVISOR 8
/* a built peer list is served again to every waiter that asks for the same
 * changes, for at most this long (it carries last_seen, which moves without
 * a revision) */
#define LIST_CACHE_MS 1000
/* libmicrohttpd's pool per connection: the request head must fit; bodies
 * stream through it */
#define CONNECTION_MEMORY (8 * 1024)
#define IDLE_TIMEOUT_S 75
#define SHUTDOWN_GRACE_MS 1000
/* a chunked body beyond API_BODY_MAX is read and dropped up to this, then the
 * connection is closed */
#define API_DISCARD_MAX (16 * 1024 * 1024)
/* Group commit: a batch is committed when libmicrohttpd has no request ready,
 * or earlier, between two requests, once its first held answer has waited
 * this long or it holds this many answers: bounds on the latency that a long
 * burst would add to its first writers. */
#define GROUP_MAX_US 2000
#define GROUP_MAX_ANSWERS 256

enum route_id {
	R_HEALTHZ, R_METRICS, R_WHOAMI, R_VPCS, R_VPC, R_VPC_DEVICES, R_REGKEYS, R_REGKEY,
	R_DEVICES, R_DEVICE, R_UNKNOWN, R_COUNT
};

static const char *const route_names[R_COUNT] = {
	[R_HEALTHZ] = "/healthz", [R_METRICS] = "/metrics", [R_WHOAMI] = "/api/whoami",
	[R_VPCS] = "/api/vpcs", [R_VPC] = "/api/vpcs/{id}", [R_VPC_DEVICES] = "/api/vpcs/{id}/devices",
	[R_REGKEYS] = "/api/reg-keys", [R_REGKEY] = "/api/reg-keys/{id}", [R_DEVICES] = "/api/devices",
	[R_DEVICE] = "/api/devices/{id}", [R_UNKNOWN] = "other",
};

enum method_id { M_GET, M_POST, M_PATCH, M_DELETE, M_OTHER, M_COUNT };
static const char *const method_names[M_COUNT] = { "GET", "POST", "PATCH", "DELETE", "other" };

/* the statuses the API answers with, for the request counters */
static const unsigned codes[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 500, 503 };
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* RQ_BODY: reading the body; RQ_WAITING: a long poll, suspended in the watch;
 * RQ_HELD: answered, suspended until the batch it may rest on is committed;
 * RQ_DONE: the answer is queued */
enum request_state { RQ_BODY, RQ_WAITING, RQ_HELD, RQ_DONE };

struct request {
	enum route_id route;
	enum method_id method;
	enum request_state state;
	char id[UUID_STRLEN];	/* the {id} of the path */
	struct principal who;
	char *body;
	size_t len;
	int64_t since;		/* long poll */
	struct waiter waiter;
	bool counted;		/* /metrics counted its own answer */
	/* RQ_HELD */
	struct MHD_Connection *conn;
	struct MHD_Response *answer;
	unsigned status;
	struct request *held_next;
};

/* a set of VPC ids */
struct vpc_set {
	char (*ids)[UUID_STRLEN];
	size_t n, cap;
};

/* the last peer list built for a VPC, shared by the waiters that want it */
struct list_cache {
	char vpc_id[UUID_STRLEN];
	int64_t since, revision, built_ms;
	struct MHD_Response *response;
	struct list_cache *next;
};

struct api {
	struct MHD_Daemon *daemon;
	/* the server thread: the only user of the daemon (but for
	 * MHD_resume_connection) and of the store */
	pthread_t thread;
	int epfd;		/* the server thread's: libmicrohttpd's epoll fd and kick_fd */
	int kick_fd;		/* eventfd: another thread has work for the server thread */
	atomic_bool kicked;	/* kick_fd is written and not read yet */
	/* asked of the server thread by others, done at its next round */
	atomic_bool housekeeping, quiesce, quit;
	MHD_socket listen_fd;	/* given back by MHD_quiesce_daemon, closed at the end */
	struct store *store;
	struct store_limits limits;
	struct watch *watch;
	uint8_t admin_hash[TOKEN_HASH_BYTES];
	struct list_cache *cache;
	/* the batch: answers held until its commit, the VPCs it changed */
	struct request *held;
	unsigned nheld;
	int64_t held_since_us;
	struct vpc_set changed;
	/* VPCs of committed batches whose waiters are woken after the next
	 * MHD_run, which sends their writers' answers first */
	struct vpc_set committed;
	char **notes;		/* log lines about the batch's writes */
	size_t nnotes, notes_cap;
	bool resumed;		/* answers were released: libmicrohttpd must run again */
	uint64_t requests[R_COUNT][M_COUNT][NCODES];
	atomic_int parked;	/* long polls suspended and not yet answered */
	uint16_t port;
};

typedef enum MHD_Result (*handler_fn)(struct api *api, struct MHD_Connection *c, struct request *rq,
				      const json_t *body);

#define SCOPE(s) (1u << (s))
#define ADMIN SCOPE(TOKEN_ADMIN)
#define REGKEY SCOPE(TOKEN_REGKEY)
#define DEVICE SCOPE(TOKEN_DEVICE)
#define ANYONE (ADMIN | REGKEY | DEVICE)

struct endpoint {
	enum route_id route;
	enum method_id method;
	unsigned scopes;	/* 0: no authentication */
	bool body;		/* a JSON object is required */
	handler_fn fn;
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* wakes the server thread, whose epoll does not see connections resumed by
 * other threads; once per round, however many (a fan-out resumes thousands) */
static void kick(struct api *api)
{
	uint64_t one = 1;
	if (!atomic_exchange(&api->kicked, true) && write(api->kick_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_warn("api", "cannot wake the server thread: %s", strerror(errno));
}

/* --- responses ------------------------------------------------------------------- */

static void count(struct api *api, const struct request *rq, unsigned status)
{
	for (size_t i = 0; i < NCODES; i++) {
		if (codes[i] == status) {
			api->requests[rq->route][rq->method][i]++;
			return;
		}
	}
}

/* queues the answer (taken) now */
static enum MHD_Result deliver(struct api *api, struct MHD_Connection *c, struct request *rq,
			       unsigned status, struct MHD_Response *resp)
{
	enum MHD_Result ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	if (!rq->counted)
		count(api, rq, status);
	rq->state = RQ_DONE;
	return ret;
}

/* Answers rq with resp (taken; NULL is an allocation failure). While the
 * store's batch is pending, an answer may rest on writes that are not durable
 * yet (the request's own, or ones its reads saw), so it is held, the
 * connection suspended, until batch_end has committed them. */
static enum MHD_Result queue(struct api *api, struct MHD_Connection *c, struct request *rq,
			     unsigned status, struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	if (!store_batch_pending(api->store))
		return deliver(api, c, rq, status, resp);
	if (!api->held)
		api->held_since_us = now_us();
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

static struct MHD_Response *json_response(json_t *body)
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
static enum MHD_Result send_json(struct api *api, struct MHD_Connection *c, struct request *rq,
				 unsigned status, json_t *body)
{
	struct MHD_Response *resp = body ? json_response(body) : NULL;
	json_decref(body);
	if (resp && status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"meshsvc\"");
	return queue(api, c, rq, status, resp);
}

__attribute__((format(printf, 6, 7)))
static enum MHD_Result send_error(struct api *api, struct MHD_Connection *c, struct request *rq,
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
	return send_json(api, c, rq, status, body);
}

static enum MHD_Result send_verr(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const struct verr *e)
{
	return send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, e->field, "%s", e->msg);
}

static enum MHD_Result send_internal(struct api *api, struct MHD_Connection *c, struct request *rq, int rc)
{
	log_error("api", "request failed route=%s method=%s: %s", route_names[rq->route],
		  method_names[rq->method], strerror(-rc));
	return send_error(api, c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "internal error");
}

static enum MHD_Result send_empty(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	return queue(api, c, rq, MHD_HTTP_NO_CONTENT,
		     MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

/* --- authorization helpers ------------------------------------------------------------ */

/* A device sees only its own VPC: anything of another VPC does not exist for it. */
static bool may_read_vpc(const struct request *rq, const char *vpc_id)
{
	return rq->who.scope == TOKEN_ADMIN || !strcmp(rq->who.vpc_id, vpc_id);
}

static int vpc_set_add(struct vpc_set *set, const char *vpc_id)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->ids[i], vpc_id))
			return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		char (*grown)[UUID_STRLEN] = realloc(set->ids, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		set->ids = grown;
		set->cap = cap;
	}
	snprintf(set->ids[set->n++], UUID_STRLEN, "%s", vpc_id);
	return 0;
}

/* The VPC's revision rose: its waiters are woken once that is committed.
 * Should the set not grow, they are woken now, which is safe too: what they
 * are answered while the batch is pending is held. */
static void vpc_changed(struct api *api, const char *vpc_id)
{
	if (!store_batch_pending(api->store) || vpc_set_add(&api->changed, vpc_id) < 0)
		watch_notify(api->watch, vpc_id);
}

/* A log line about a write. While the batch is pending it waits, like the
 * answer, for the commit: the log tells only of what is durable. */
__attribute__((format(printf, 2, 3)))
static void log_write(struct api *api, const char *fmt, ...)
{
	char *line = NULL, **grown;
	va_list ap;

	va_start(ap, fmt);
	if (!store_batch_pending(api->store)) {
		log_vmsg(LOG_INFO, "api", fmt, ap);
		va_end(ap);
		return;
	}
	if (api->nnotes == api->notes_cap) {
		size_t cap = api->notes_cap ? api->notes_cap * 2 : 64;
		if ((grown = realloc(api->notes, cap * sizeof(*grown)))) {
			api->notes = grown;
			api->notes_cap = cap;
		}
	}
	if (api->nnotes < api->notes_cap && vasprintf(&line, fmt, ap) >= 0)
		api->notes[api->nnotes++] = line;
	va_end(ap);
}

static void notify_if_changed(struct api *api, const char *vpc_id, int64_t before)
{
	int64_t after;
	if (store_vpc_revision(api->store, vpc_id, &after) < 0 || after != before)
		vpc_changed(api, vpc_id);
}

static void cache_drop(struct api *api, const char *vpc_id)
{
	for (struct list_cache **p = &api->cache; *p; p = &(*p)->next) {
		if (!strcmp((*p)->vpc_id, vpc_id)) {
			struct list_cache *e = *p;
			*p = e->next;
			MHD_destroy_response(e->response);
			free(e);
			return;
		}
	}
}

/* --- handlers ----------------------------------------------------------------------- */

static enum MHD_Result h_healthz(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	(void)body;
	return send_json(api, c, rq, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result h_metrics(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	struct MHD_Response *resp;
	struct store_stats stats;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)body;
	if (!f)
		return MHD_NO;
	/* this request is answered after the text is built; count it first */
	count(api, rq, MHD_HTTP_OK);
	rq->counted = true;
	store_stats(api->store, &stats);
	fputs("# HELP meshsvc_http_requests_total HTTP requests answered, by route, method and status.\n"
	      "# TYPE meshsvc_http_requests_total counter\n", f);
	for (int r = 0; r < R_COUNT; r++)
		for (int m = 0; m < M_COUNT; m++)
			for (size_t i = 0; i < NCODES; i++)
				if (api->requests[r][m][i])
					fprintf(f, "meshsvc_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
						route_names[r], method_names[m], codes[i],
						(unsigned long long)api->requests[r][m][i]);
	fprintf(f, "# HELP meshsvc_devices Registered devices.\n# TYPE meshsvc_devices gauge\n"
		   "meshsvc_devices %llu\n"
		   "# HELP meshsvc_vpcs VPCs.\n# TYPE meshsvc_vpcs gauge\nmeshsvc_vpcs %llu\n"
		   "# HELP meshsvc_watch_waiters Long polls waiting for a change.\n"
		   "# TYPE meshsvc_watch_waiters gauge\nmeshsvc_watch_waiters %zu\n",
		(unsigned long long)store_device_count(api->store),
		(unsigned long long)store_vpc_count(api->store), watch_count(api->watch));
	fprintf(f, "# HELP meshsvc_commits_total Database transactions committed with writes (an fsync each).\n"
		   "# TYPE meshsvc_commits_total counter\nmeshsvc_commits_total %llu\n"
		   "# HELP meshsvc_writes_total Writes those commits made durable (group commit: several a commit).\n"
		   "# TYPE meshsvc_writes_total counter\nmeshsvc_writes_total %llu\n"
		   "# HELP meshsvc_commit_failures_total Commits that failed; their writes were answered with 500.\n"
		   "# TYPE meshsvc_commit_failures_total counter\nmeshsvc_commit_failures_total %llu\n",
		(unsigned long long)stats.commits, (unsigned long long)stats.writes,
		(unsigned long long)stats.failed_commits);
	if (fclose(f) != 0) {
		free(text);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	return queue(api, c, rq, MHD_HTTP_OK, resp);
}

static enum MHD_Result h_whoami(struct api *api, struct MHD_Connection *c, struct request *rq,
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
	return send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_vpc_create(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	struct vpc_spec spec;
	struct verr e;
	json_t *out;
	int rc;

	if (validate_vpc_create(body, &spec, &e) < 0)
		return send_verr(api, c, rq, &e);
	rc = store_vpc_create(api->store, &spec, now_s(), &out);
	if (rc == -EEXIST)
		return send_error(api, c, rq, MHD_HTTP_CONFLICT, "name", "a VPC named %s exists", spec.name);
	if (rc < 0)
		return send_internal(api, c, rq, rc);
	log_write(api, "vpc created id=%s name=%s cidr=%s", json_string_value(json_object_get(out, "id")),
		  spec.name, json_string_value(json_object_get(out, "ipv4_cidr")));
	return send_json(api, c, rq, MHD_HTTP_CREATED, out);
}

static enum MHD_Result h_vpc_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const json_t *body)
{
	json_t *out;
	int rc = store_vpc_list(api->store, &out);
	(void)body;
	return rc < 0 ? send_internal(api, c, rq, rc) : send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_vpc_get(struct api *api, struct MHD_Connection *c, struct request *rq,
				 const json_t *body)
{
	json_t *out;
	int rc;
	(void)body;
	if (!may_read_vpc(rq, rq->id))
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	rc = store_vpc_get(api->store, rq->id, &out);
	if (rc == -ENOENT)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	return rc < 0 ? send_internal(api, c, rq, rc) : send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_vpc_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	int rc = store_vpc_delete(api->store, rq->id);
	(void)body;
	if (rc == -ENOENT)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (rc == -ENOTEMPTY)
		return send_error(api, c, rq, MHD_HTTP_CONFLICT, NULL, "the VPC still has devices; delete them first");
	if (rc < 0)
		return send_internal(api, c, rq, rc);
	log_write(api, "vpc deleted id=%s", rq->id);
	cache_drop(api, rq->id);
	vpc_changed(api, rq->id);
	return send_empty(api, c, rq);
}

/* The devices changed after since, as {vpc_id, revision, full, devices,
 * deleted}; full when the answer is the whole list (since 0, a since from the
 * future, or one from before the tombstones kept: the client starts over). */
static int build_list(struct api *api, const char *vpc_id, int64_t since, int64_t revision,
		      struct MHD_Response **out)
{
	json_t *devices, *deleted, *body;
	bool full;
	int rc;

	*out = NULL;
	if ((rc = store_device_changes(api->store, vpc_id, since, &devices, &deleted, &full)) < 0)
		return rc;
	body = json_pack("{s:s, s:I, s:b, s:o, s:o}", "vpc_id", vpc_id, "revision", (json_int_t)revision,
			 "full", full, "devices", devices, "deleted", deleted);
	if (!body)
		return -ENOMEM;
	*out = json_response(body);
	json_decref(body);
	return *out ? 0 : -ENOMEM;
}

/* The peer list for rq. A list built while the batch is pending may hold
 * writes that are not committed, so it is this request's alone (held with
 * it), never cached. */
static enum MHD_Result send_list(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	int64_t revision, now = watch_now_ms();
	struct list_cache *e;
	enum MHD_Result ret;
	int rc;

	if (!may_read_vpc(rq, rq->id) || store_vpc_revision(api->store, rq->id, &revision) < 0)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (store_batch_pending(api->store)) {
		struct MHD_Response *resp;
		if ((rc = build_list(api, rq->id, rq->since, revision, &resp)) < 0)
			return send_internal(api, c, rq, rc);
		return queue(api, c, rq, MHD_HTTP_OK, resp);
	}
	for (e = api->cache; e; e = e->next)
		if (!strcmp(e->vpc_id, rq->id))
			break;
	if (!e || e->since != rq->since || e->revision != revision || now - e->built_ms > LIST_CACHE_MS) {
		struct MHD_Response *resp;
		if ((rc = build_list(api, rq->id, rq->since, revision, &resp)) < 0)
			return send_internal(api, c, rq, rc);
		if (!e) {
			if (!(e = calloc(1, sizeof(*e)))) {
				MHD_destroy_response(resp);
				return MHD_NO;
			}
			memcpy(e->vpc_id, rq->id, UUID_STRLEN);
			e->next = api->cache;
			api->cache = e;
		} else {
			MHD_destroy_response(e->response);
		}
		e->response = resp;
		e->since = rq->since;
		e->revision = revision;
		e->built_ms = now;
	}
	/* the cache keeps its reference */
	ret = MHD_queue_response(c, MHD_HTTP_OK, e->response);
	count(api, rq, MHD_HTTP_OK);
	rq->state = RQ_DONE;
	return ret;
}

static enum MHD_Result h_vpc_devices(struct api *api, struct MHD_Connection *c, struct request *rq,
				     const json_t *body)
{
	const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
	const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	int64_t revision;
	int wait_s = 0, rc;
	struct verr e;

	(void)body;
	if (since && validate_since(since, &rq->since, &e) < 0)
		return send_verr(api, c, rq, &e);
	if (wait && validate_wait(wait, &wait_s, &e) < 0)
		return send_verr(api, c, rq, &e);
	if (!may_read_vpc(rq, rq->id) || store_vpc_revision(api->store, rq->id, &revision) < 0)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such VPC");
	if (!since || wait_s == 0 || rq->since != revision)
		return send_list(api, c, rq);
	/* Suspend first, then park: a wake may come from the timer thread at once. */
	MHD_suspend_connection(c);
	rq->state = RQ_WAITING;
	atomic_fetch_add(&api->parked, 1);
	rc = watch_add(api->watch, &rq->waiter, rq->id, watch_now_ms() + (int64_t)wait_s * 1000, c);
	if (rc < 0) {
		/* answered at once, as if the wait were over */
		MHD_resume_connection(c);
		api->resumed = true;
	}
	return MHD_YES;
}

static enum MHD_Result h_regkey_create(struct api *api, struct MHD_Connection *c, struct request *rq,
				       const json_t *body)
{
	char secret[TOKEN_STRLEN];
	uint8_t hash[TOKEN_HASH_BYTES];
	struct regkey_spec spec;
	struct verr e;
	json_t *out;
	int rc;

	if (validate_regkey_create(body, now_s(), &spec, &e) < 0)
		return send_verr(api, c, rq, &e);
	token_generate(TOKEN_REGKEY, secret);
	token_hash(secret, hash);
	rc = store_regkey_create(api->store, &spec, hash, now_s(), &out);
	if (rc == -ENOENT) {
		sodium_memzero(secret, sizeof(secret));
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, "vpc_id", "no such VPC");
	}
	if (rc < 0) {
		sodium_memzero(secret, sizeof(secret));
		return send_internal(api, c, rq, rc);
	}
	/* the only time the secret leaves the service */
	json_object_set_new(out, "secret", json_string(secret));
	sodium_memzero(secret, sizeof(secret));
	log_write(api, "reg-key created id=%s vpc=%s single_use=%d",
		  json_string_value(json_object_get(out, "id")), spec.vpc_id, spec.single_use);
	return send_json(api, c, rq, MHD_HTTP_CREATED, out);
}

static enum MHD_Result h_regkey_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				     const json_t *body)
{
	json_t *out;
	int rc = store_regkey_list(api->store, &out);
	(void)body;
	return rc < 0 ? send_internal(api, c, rq, rc) : send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_regkey_get(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	json_t *out;
	int rc = store_regkey_get(api->store, rq->id, &out);
	(void)body;
	if (rc == -ENOENT)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such registration key");
	return rc < 0 ? send_internal(api, c, rq, rc) : send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_regkey_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
				       const json_t *body)
{
	int rc = store_regkey_delete(api->store, rq->id);
	(void)body;
	if (rc == -ENOENT)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such registration key");
	if (rc < 0)
		return send_internal(api, c, rq, rc);
	log_write(api, "reg-key deleted id=%s", rq->id);
	return send_empty(api, c, rq);
}

static enum MHD_Result h_device_register(struct api *api, struct MHD_Connection *c, struct request *rq,
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
		return send_verr(api, c, rq, &e);
	token_generate(TOKEN_DEVICE, token);
	/* sealed before anything is stored: a key that cannot be sealed to changes nothing */
	if (token_seal(token, spec.public_key, sealed) < 0) {
		ret = send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "public_key",
				 "not a usable X25519 public key");
		goto out;
	}
	token_hash(token, hash);
	store_vpc_revision(api->store, rq->who.vpc_id, &before);
	rc = store_device_register(api->store, rq->who.id, &spec, hash, now_s(), &out, &created);
	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		ret = send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key no longer exists");
		goto out;
	case -EKEYEXPIRED:
		ret = send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key expired");
		goto out;
	case -EKEYREVOKED:
		ret = send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL,
				 "single-use registration key was already used by another device");
		goto out;
	case -EXDEV:
		ret = send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, "vpc_id",
				 "the registration key belongs to another VPC");
		goto out;
	case -ENOSPC:
		ret = send_error(api, c, rq, MHD_HTTP_CONFLICT, NULL, "the VPC has no free tunnel address");
		goto out;
	default:
		ret = send_internal(api, c, rq, rc);
		goto out;
	}
	/* the agent learns its VPC's prefix here, for its interface route */
	if (store_vpc_get(api->store, rq->who.vpc_id, &vpc) == 0)
		json_object_set_new(out, "vpc", vpc);
	json_object_set_new(out, "device_token", json_string(sealed));
	if (created)
		log_write(api, "device registered id=%s vpc=%s tunnel_ip=%s",
			  json_string_value(json_object_get(out, "id")), rq->who.vpc_id,
			  json_string_value(json_object_get(out, "tunnel_ip")));
	/* new, or back online */
	notify_if_changed(api, rq->who.vpc_id, before);
	ret = send_json(api, c, rq, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, out);
out:
	sodium_memzero(token, sizeof(token));
	device_spec_clear(&spec);
	return ret;
}

static enum MHD_Result h_device_list(struct api *api, struct MHD_Connection *c, struct request *rq,
				     const json_t *body)
{
	json_t *out;
	int rc = store_device_list(api->store, &out);
	(void)body;
	return rc < 0 ? send_internal(api, c, rq, rc) : send_json(api, c, rq, MHD_HTTP_OK, out);
}

/* The device of the path, if the caller may see it: 404 for devices of
 * another VPC; 403 when it may see but not change it (write). */
static enum MHD_Result load_device(struct api *api, struct MHD_Connection *c, struct request *rq,
				   bool write, json_t **out)
{
	char vpc_id[UUID_STRLEN];
	int rc = store_device_get(api->store, rq->id, out, vpc_id);

	if (rc == -ENOENT || (rc == 0 && !may_read_vpc(rq, vpc_id))) {
		json_decref(*out);
		*out = NULL;
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
	}
	if (rc < 0) {
		*out = NULL;
		return send_internal(api, c, rq, rc);
	}
	if (write && rq->who.scope == TOKEN_DEVICE && strcmp(rq->who.id, rq->id)) {
		json_decref(*out);
		*out = NULL;
		return send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL, "a device may change only itself");
	}
	return MHD_YES;
}

static enum MHD_Result h_device_get(struct api *api, struct MHD_Connection *c, struct request *rq,
				    const json_t *body)
{
	json_t *out;
	enum MHD_Result ret = load_device(api, c, rq, false, &out);
	(void)body;
	return out ? send_json(api, c, rq, MHD_HTTP_OK, out) : ret;
}

static enum MHD_Result h_device_patch(struct api *api, struct MHD_Connection *c, struct request *rq,
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
		return send_verr(api, c, rq, &e);
	store_vpc_revision(api->store, rq->who.vpc_id, &before);
	rc = store_device_patch(api->store, rq->id, &spec, now_s(), &out);
	device_spec_clear(&spec);
	if (rc < 0)
		return rc == -ENOENT ? send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device")
				     : send_internal(api, c, rq, rc);
	notify_if_changed(api, rq->who.vpc_id, before);
	return send_json(api, c, rq, MHD_HTTP_OK, out);
}

static enum MHD_Result h_device_delete(struct api *api, struct MHD_Connection *c, struct request *rq,
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
	rc = store_device_delete(api->store, rq->id, now_s(), vpc_id);
	if (rc == -ENOENT)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such device");
	if (rc < 0)
		return send_internal(api, c, rq, rc);
	log_write(api, "device deleted id=%s vpc=%s", rq->id, vpc_id);
	vpc_changed(api, vpc_id);
	return send_empty(api, c, rq);
}

static const struct endpoint endpoints[] = {
	{ R_HEALTHZ, M_GET, 0, false, h_healthz },
	{ R_METRICS, M_GET, ADMIN, false, h_metrics },
	{ R_WHOAMI, M_GET, ANYONE, false, h_whoami },
	{ R_VPCS, M_POST, ADMIN, true, h_vpc_create },
	{ R_VPCS, M_GET, ADMIN, false, h_vpc_list },
	{ R_VPC, M_GET, ADMIN | DEVICE, false, h_vpc_get },
	{ R_VPC, M_DELETE, ADMIN, false, h_vpc_delete },
	{ R_VPC_DEVICES, M_GET, ADMIN | DEVICE, false, h_vpc_devices },
	{ R_REGKEYS, M_POST, ADMIN, true, h_regkey_create },
	{ R_REGKEYS, M_GET, ADMIN, false, h_regkey_list },
	{ R_REGKEY, M_GET, ADMIN, false, h_regkey_get },
	{ R_REGKEY, M_DELETE, ADMIN, false, h_regkey_delete },
	{ R_DEVICES, M_POST, REGKEY, true, h_device_register },
	{ R_DEVICES, M_GET, ADMIN, false, h_device_list },
	{ R_DEVICE, M_GET, ADMIN | DEVICE, false, h_device_get },
	{ R_DEVICE, M_PATCH, DEVICE, true, h_device_patch },
	{ R_DEVICE, M_DELETE, ADMIN | DEVICE, false, h_device_delete },
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* --- the request path ------------------------------------------------------------------- */

static enum method_id method_of(const char *m)
{
	for (int i = 0; i < M_OTHER; i++)
		if (!strcmp(m, method_names[i]))
			return (enum method_id)i;
	return M_OTHER;
}

/* the route of a path and its {id}; R_UNKNOWN if none matches */
static enum route_id route_of(const char *url, char id[UUID_STRLEN])
{
	static const struct {
		const char *prefix;
		enum route_id bare, with_id;
	} roots[] = {
		{ "/api/vpcs", R_VPCS, R_VPC },
		{ "/api/reg-keys", R_REGKEYS, R_REGKEY },
		{ "/api/devices", R_DEVICES, R_DEVICE },
	};

	id[0] = 0;
	if (!strcmp(url, "/healthz"))
		return R_HEALTHZ;
	if (!strcmp(url, "/metrics"))
		return R_METRICS;
	if (!strcmp(url, "/api/whoami"))
		return R_WHOAMI;
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

static enum MHD_Result check_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
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
		rc = store_regkey_auth(api->store, hash, now_s(), who);
		break;
	default:
		rc = store_device_auth(api->store, hash, who);
		if (rc == 0 && (!who->online ||
				now_s() - who->last_seen >= api->limits.offline_after_s / TOUCH_DIVISOR) &&
		    store_device_touch(api->store, who, now_s()) > 0) {
			log_write(api, "device online id=%s vpc=%s", who->id, who->vpc_id);
			vpc_changed(api, who->vpc_id);
		}
		break;
	}
	if (rc == -ENOENT)
		return -EACCES;
	return rc;
}

/* First call of a request: route, authenticate and authorize before any of
 * the body is read, so a refused request costs no upload. */
static enum MHD_Result begin_request(struct api *api, struct MHD_Connection *c, struct request *rq,
				     const char *url, const char *method)
{
	const struct endpoint *ep = NULL;
	const char *bad = NULL, *length;
	char allow[64] = "";
	int rc;

	rq->route = route_of(url, rq->id);
	rq->method = method_of(method);
	if (rq->route == R_UNKNOWN)
		return send_error(api, c, rq, MHD_HTTP_NOT_FOUND, NULL, "no such resource: %.100s", url);
	for (size_t i = 0; i < NENDPOINTS; i++) {
		if (endpoints[i].route != rq->route)
			continue;
		if (endpoints[i].method == rq->method)
			ep = &endpoints[i];
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", *allow ? ", " : "",
			 method_names[endpoints[i].method]);
	}
	if (!ep) {
		struct MHD_Response *resp;
		json_t *body = json_pack("{s:s}", "error", "method not allowed");
		if (!body || !(resp = json_response(body))) {
			json_decref(body);
			return MHD_NO;
		}
		json_decref(body);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
		return queue(api, c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
	}
	if (ep->scopes) {
		rc = authenticate(api, c, &rq->who);
		if (rc == -EKEYEXPIRED)
			return send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL, "registration key expired");
		if (rc == -EACCES)
			return send_error(api, c, rq, MHD_HTTP_UNAUTHORIZED, NULL,
					  "a valid bearer token is required");
		if (rc < 0)
			return send_internal(api, c, rq, rc);
		if (!(ep->scopes & SCOPE(rq->who.scope)))
			return send_error(api, c, rq, MHD_HTTP_FORBIDDEN, NULL,
					  "this token's scope may not %s %s", method, route_names[rq->route]);
	}
	length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length && strtoull(length, NULL, 10) > API_BODY_MAX)
		return send_error(api, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				  "body larger than %d bytes", API_BODY_MAX);
	if (rq->route != R_VPC_DEVICES && MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0)
		return send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL, "this resource takes no query parameters");
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, check_query_arg, &bad);
	if (bad)
		return send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, bad, "unknown query parameter");
	rq->state = RQ_BODY;
	return MHD_YES;
}

static enum MHD_Result dispatch(struct api *api, struct MHD_Connection *c, struct request *rq)
{
	const struct endpoint *ep = NULL;
	json_error_t jerr;
	json_t *body = NULL;
	enum MHD_Result ret;

	for (size_t i = 0; i < NENDPOINTS && !ep; i++)
		if (endpoints[i].route == rq->route && endpoints[i].method == rq->method)
			ep = &endpoints[i];
	if (ep->body) {
		if (!rq->len)
			return send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL, "a JSON body is required");
		body = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!body)
			return send_error(api, c, rq, MHD_HTTP_BAD_REQUEST, NULL,
					  "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
					  jerr.text);
	}
	ret = ep->fn(api, c, rq, body);
	json_decref(body);
	return ret;
}

/* Ends the batch: commits it, then releases the answers held for it (each a
 * 500 if the commit failed: none of its writes is durable), and has the
 * waiters of the VPCs it changed woken. */
static void batch_end(struct api *api)
{
	int rc = store_batch_commit(api->store);
	struct request *rq, *next;

	if (rc < 0)
		log_error("api", "commit failed, answering the batch's %u requests with 500: %s", api->nheld,
			  strerror(-rc));
	for (rq = api->held; rq; rq = next) {
		next = rq->held_next;
		rq->held_next = NULL;
		if (rc < 0) {
			json_t *body = json_pack("{s:s}", "error", "internal error: not committed");
			MHD_destroy_response(rq->answer);
			rq->answer = body ? json_response(body) : NULL;
			rq->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			json_decref(body);
		}
		MHD_resume_connection(rq->conn);
		api->resumed = true;
	}
	api->held = NULL;
	api->nheld = 0;
	for (size_t i = 0; i < api->nnotes; i++) {
		if (rc >= 0)
			log_info("api", "%s", api->notes[i]);
		free(api->notes[i]);
	}
	api->nnotes = 0;
	for (size_t i = 0; rc >= 0 && i < api->changed.n; i++)
		if (vpc_set_add(&api->committed, api->changed.ids[i]) < 0)
			watch_notify(api->watch, api->changed.ids[i]);
	api->changed.n = 0;
}

/* a burst has made the batch's first answers wait long enough: commit it
 * between two requests, and go on with a new one */
static void batch_cut_if_due(struct api *api)
{
	if (!api->held || (api->nheld < GROUP_MAX_ANSWERS && now_us() - api->held_since_us < GROUP_MAX_US))
		return;
	batch_end(api);
	store_batch_begin(api->store);
}

static enum MHD_Result handle(struct api *api, struct MHD_Connection *c, const char *url,
			       const char *method, const char *upload_data, size_t *upload_data_size,
			       void **req_cls)
{
	struct request *rq = *req_cls;
	struct MHD_Response *resp;

	if (!rq) {
		batch_cut_if_due(api);
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		*req_cls = rq;
		return begin_request(api, c, rq, url, method);
	}
	switch (rq->state) {
	case RQ_BODY:
		if (*upload_data_size) {
			size_t n = *upload_data_size;
			*upload_data_size = 0;
			if (rq->len + n > API_BODY_MAX) {
				/* A body without Content-Length grew too large. libmicrohttpd
				 * answers only once the upload is over, so the rest is read
				 * and dropped, up to a bound, and then it is 413. */
				free(rq->body);
				rq->body = NULL;
				rq->len += n;
				return rq->len > API_DISCARD_MAX ? MHD_NO : MHD_YES;
			}
			char *b = realloc(rq->body, rq->len + n);
			if (!b)
				return MHD_NO;
			memcpy(b + rq->len, upload_data, n);
			rq->body = b;
			rq->len += n;
			return MHD_YES;
		}
		if (rq->len > API_BODY_MAX)
			return send_error(api, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
					  "body larger than %d bytes", API_BODY_MAX);
		return dispatch(api, c, rq);
	case RQ_WAITING:
		/* resumed: by a change in the VPC, the deadline, or shutdown */
		atomic_fetch_sub(&api->parked, 1);
		return send_list(api, c, rq);
	case RQ_HELD:
		/* resumed by batch_end. An answer given before the body was read
		 * goes out once the body is read and dropped. */
		if (*upload_data_size) {
			rq->len += *upload_data_size;
			*upload_data_size = 0;
			return rq->len > API_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		resp = rq->answer;
		rq->answer = NULL;
		return resp ? deliver(api, c, rq, rq->status, resp) : MHD_NO;
	case RQ_DONE:
		break;
	}
	return MHD_YES;
}

/* called by libmicrohttpd inside MHD_run, in the server thread's round */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	(void)version;
	return handle(cls, c, url, method, upload_data, upload_data_size, req_cls);
}

static void on_vpc_changed(void *arg, const char *vpc_id)
{
	struct api *api = arg;
	watch_notify(api->watch, vpc_id);
}

void api_housekeeping(struct api *api)
{
	atomic_store(&api->housekeeping, true);
	kick(api);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct request *rq = *req_cls;
	(void)c;
	(void)toe;
	if (!rq)
		return;
	if (rq->state == RQ_WAITING) { /* closed before its answer: only at shutdown */
		watch_cancel(api->watch, &rq->waiter);
		atomic_fetch_sub(&api->parked, 1);
	}
	/* released by batch_end, closed before it went out */
	if (rq->answer)
		MHD_destroy_response(rq->answer);
	free(rq->body);
	free(rq);
	*req_cls = NULL;
}

static void wake_connection(void *arg, void *conn)
{
	MHD_resume_connection(conn);
	kick(arg);
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = 0;
	log_warn("http", "%s", msg);
}

/* One round: libmicrohttpd handles every request that is ready, their writes
 * in one batch; the batch is committed and their answers released. Returns
 * how long the next epoll_wait may block (ms, -1 for ever). */
static int run_round(struct api *api)
{
	MHD_UNSIGNED_LONG_LONG ms;

	api->resumed = false;
	if (atomic_exchange(&api->quiesce, false))
		api->listen_fd = MHD_quiesce_daemon(api->daemon);
	/* outside the batch: its own transaction, and waiters woken after it */
	if (atomic_exchange(&api->housekeeping, false))
		store_housekeeping(api->store, now_s(), &api->limits, on_vpc_changed, api);
	store_batch_begin(api->store);
	MHD_run(api->daemon);
	for (size_t i = 0; i < api->committed.n; i++)
		watch_notify(api->watch, api->committed.ids[i]);
	api->committed.n = 0;
	batch_end(api);
	/* released answers go out, and woken waiters are answered, in the next MHD_run */
	if (api->resumed || api->committed.n)
		return 0;
	if (MHD_get_timeout(api->daemon, &ms) == MHD_NO)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* the server thread: libmicrohttpd in external epoll mode, so that a round
 * ends where the requests that are ready do */
static void *serve(void *arg)
{
	struct api *api = arg;
	struct epoll_event ev[2];
	int timeout = 0, n;
	uint64_t kicks;

	while (!atomic_load(&api->quit)) {
		n = epoll_wait(api->epfd, ev, 2, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("api", "epoll_wait failed: %s", strerror(errno));
			usleep(10 * 1000);
		}
		/* read, then cleared, before the round: a connection resumed
		 * before the clear is seen by the round, one after it kicks again */
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd != api->kick_fd)
				continue;
			if (read(api->kick_fd, &kicks, sizeof(kicks)) < 0 && errno != EAGAIN)
				log_warn("api", "cannot read the wake-up counter: %s", strerror(errno));
			atomic_store(&api->kicked, false);
		}
		timeout = run_round(api);
	}
	return NULL;
}

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int api_start(const struct api_config *cfg, struct store *st, struct api **out)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	struct MHD_OptionItem opts[16];
	size_t n = 0;
	struct api *api;
	int rc;

	*out = NULL;
	if (!(api = calloc(1, sizeof(*api))))
		return -ENOMEM;
	api->store = st;
	api->limits = cfg->limits;
	if (!api->limits.offline_after_s)
		api->limits.offline_after_s = DEVICE_ONLINE_WINDOW_S;
	if (!api->limits.tombstone_ttl_s)
		api->limits.tombstone_ttl_s = TOMBSTONE_TTL_S;
	api->listen_fd = MHD_INVALID_SOCKET;
	memcpy(api->admin_hash, cfg->admin_hash, TOKEN_HASH_BYTES);
	if ((api->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = -errno;
		log_error("api", "cannot create an eventfd: %s", strerror(errno));
		goto err_kick;
	}
	if ((rc = watch_new(wake_connection, api, &api->watch)) < 0)
		goto err_watch;

	/* [::] serves IPv4 too (IPv4-mapped), as a dual-stack host expects */
	if (cfg->listen.sa.sa_family == AF_INET6)
		flags |= IN6_IS_ADDR_UNSPECIFIED(&cfg->listen.in6.sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	if (cfg->tls_cert_pem)
		flags |= MHD_USE_TLS;
	/* first, so that MHD's own complaints about later options reach our log */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)&cfg->listen };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, api };
	if (cfg->tls_cert_pem) {
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key_pem };
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	api->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, api, MHD_OPTION_ARRAY, opts,
				       MHD_OPTION_END);
	if (!api->daemon) {
		log_error("api", "cannot start the HTTP server (the line above says why)");
		rc = -EIO;
		goto err_daemon;
	}
	di = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = di ? di->port : addr_port(&cfg->listen);

	di = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if ((api->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		log_error("api", "cannot create an epoll instance: %s", strerror(errno));
		goto err_epoll;
	}
	if (!di || (rc = epoll_add(api->epfd, di->epoll_fd)) < 0 ||
	    (rc = epoll_add(api->epfd, api->kick_fd)) < 0) {
		rc = rc < 0 ? rc : -EIO;
		log_error("api", "cannot watch the HTTP server's descriptors: %s", strerror(-rc));
		goto err_thread;
	}
	if ((rc = pthread_create(&api->thread, NULL, serve, api)) != 0) {
		log_error("api", "cannot start the server thread: %s", strerror(rc));
		rc = -rc;
		goto err_thread;
	}
	*out = api;
	return 0;

err_thread:
	close(api->epfd);
err_epoll:
	MHD_stop_daemon(api->daemon);
err_daemon:
	watch_free(api->watch);
err_watch:
	close(api->kick_fd);
err_kick:
	free(api);
	return rc;
}

uint16_t api_port(const struct api *api)
{
	return api->port;
}

void api_stop(struct api *api)
{
	if (!api)
		return;
	/* no new connections; the waiters are answered (for up to a second, and
	 * a moment to send); then the server thread ends its last round (which
	 * commits and releases its batch) and the daemon stops */
	atomic_store(&api->quiesce, true);
	kick(api);
	watch_stop(api->watch);
	for (int i = 0; i < SHUTDOWN_GRACE_MS / 10 && atomic_load(&api->parked) > 0; i++)
		usleep(10 * 1000);
	usleep(50 * 1000);
	atomic_store(&api->quit, true);
	kick(api);
	pthread_join(api->thread, NULL);
	close(api->epfd);
	MHD_stop_daemon(api->daemon);
	if (api->listen_fd != MHD_INVALID_SOCKET)
		close(api->listen_fd);
	watch_free(api->watch);
	close(api->kick_fd);
	while (api->cache) {
		struct list_cache *e = api->cache;
		api->cache = e->next;
		MHD_destroy_response(e->response);
		free(e);
	}
	free(api->changed.ids);
	free(api->committed.ids);
	free(api->notes);
	free(api);
}
