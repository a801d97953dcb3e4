/* api_internal: what the files of the API share, and nothing else includes.
 * api.c runs the server thread and its rounds; api_route.c routes,
 * authenticates and dispatches a request; api_batch.c holds answers, log
 * lines and VPC wake-ups for the group commit; api_reply.c builds answers;
 * api_vpc.c, api_regkey.c and api_device.c are the handlers per resource;
 * api_poll.c serves peer lists and long polls; api_challenge.c hands out
 * key challenges and checks their proofs; api_metrics.c counts and
 * reports; api_guard.c bounds what one client holds. The state of the server is one struct api, used by the server
 * thread alone (but for what is atomic). */
#ifndef NATMESH_SVC_API_INTERNAL_H
#define NATMESH_SVC_API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "challenge.h"
#include "ownaddr.h"
#include "vec.h"
#include "watch.h"

enum route_id {
	R_HEALTHZ, R_METRICS, R_WHOAMI, R_VPCS, R_VPC, R_VPC_DEVICES, R_REGKEYS, R_REGKEY,
	R_DEVICES, R_DEVICE, R_DEVICE_CHALLENGE, R_SECGROUPS, R_SECGROUP, R_UNKNOWN, R_COUNT
};
extern const char *const api_route_names[R_COUNT];

enum method_id { M_GET, M_POST, M_PATCH, M_DELETE, M_OTHER, M_COUNT };
extern const char *const api_method_names[M_COUNT];

/* how many statuses the API answers with (api_metrics.c lists them) */
#define API_NCODES 13

/* RQ_BODY: reading the body; RQ_WAITING: a long poll, suspended in the watch;
 * RQ_HELD: answered, suspended until the batch it may rest on is committed;
 * RQ_DONE: the answer is queued */
enum request_state { RQ_BODY, RQ_WAITING, RQ_HELD, RQ_DONE };

struct endpoint;
struct policy_view;	/* api_policy.c */
struct view_member;

struct request {
	enum route_id route;
	enum method_id method;
	enum request_state state;
	const struct endpoint *ep;	/* set when routed: in RQ_BODY and after */
	char id[UUID_STRLEN];	/* the {id} of the path */
	struct principal who;
	char *body;
	size_t len;
	int64_t since;		/* long poll */
	struct waiter waiter;
	bool counted;		/* /metrics counted its own answer */
	bool token_counted;	/* RQ_WAITING: counted against its token's long polls */
	bool gone;		/* RQ_WAITING: the client hung up */
	/* RQ_WAITING and RQ_HELD */
	struct MHD_Connection *conn;
	struct MHD_Response *answer;
	unsigned status;
	struct request *held_next;
};

/* a peer list built for a VPC and a since, shared by the requests that want
 * it; a VPC keeps API_LIST_CACHE_PER_VPC of them, the least recently used
 * going first, so that clients asking different since (an agent's full list
 * and its changes) do not evict each other's */
#define API_LIST_CACHE_PER_VPC 32
/* who a list is for: "admin" (unfiltered), "relay:GROUP-ID" (sees all; its
 * own group with it), "group:ID" (every member of the group sees the same),
 * "device:ID" */
#define API_CLASS_LEN (UUID_STRLEN + 8)
struct list_cache {
	char vpc_id[UUID_STRLEN];
	char cls[API_CLASS_LEN];
	int64_t since, revision, built_ms, used;
	struct MHD_Response *response;
	struct list_cache *next;
};

/* Log lines about the writes of a batch, held until its commit. A line that
 * cannot be held (at the maximum, or without memory) is logged at once, marked
 * as not committed yet, and counted in `early`: never lost. */
struct api_notes {
	struct vec lines;	/* char *, each malloc'd */
	uint64_t early;
};

/* the span of a log limit: at most a few lines about connections per span */
#define API_LOG_INTERVAL_MS 10000

struct log_limit {
	int64_t next_ms;
	unsigned burst;
	uint64_t suppressed;
};

struct conn_head;
/* the connections waiting for their request head, by deadline */
struct head_fifo {
	struct conn_head *first, *last;
};

/* api_guard.c's state */
struct api_guard {
	unsigned max_connections, per_address, header_timeout_s;
	struct head_fifo fresh;	/* new connections: the header timeout */
	struct head_fifo kept;	/* kept alive after an answer: the idle timeout */
	uint64_t refused, head_timeouts;
	int64_t refused_log_ms;	/* no line about refusals before this */
	struct log_limit log;	/* libmicrohttpd's lines and head timeouts */
};

/* the long polls a device token has waiting (api_poll.c) */
struct poll_count {
	char device_id[UUID_STRLEN];
	unsigned n;
	struct poll_count *next;
};
#define API_POLL_BUCKETS 256

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
	int64_t cache_uses;	/* the clock of the cache's LRU */
	struct policy_view *views;	/* api_policy.c: one per VPC, of its current revision */
	uint64_t policy_builds;
	/* the batch: answers held until its commit, the VPCs it changed */
	struct request *held;
	unsigned nheld;
	int64_t held_since_us;
	struct vec changed;	/* char[UUID_STRLEN] */
	/* VPCs of committed batches whose waiters are woken after the next
	 * MHD_run, which sends their writers' answers first */
	struct vec committed;	/* char[UUID_STRLEN] */
	struct api_notes notes;
	bool resumed;		/* answers were released: libmicrohttpd must run again */
	uint64_t requests[R_COUNT][M_COUNT][API_NCODES];
	atomic_int parked;	/* long polls suspended and not yet answered */
	struct api_guard guard;
	/* long polls: those of each device token, and the sockets of the
	 * suspended ones, watched for a hang-up */
	struct poll_count *polls[API_POLL_BUCKETS];
	unsigned polls_per_token;
	int hup_epfd;
	bool hup_ready;		/* hup_epfd has events */
	uint64_t polls_refused, polls_hung_up;
	uint64_t list_builds, list_hits;	/* peer lists built, and served from the cache */
	uint16_t port;
	struct ownaddr own;	/* no endpoint may be at these (api_device.c) */
	struct challenge_table *challenges;	/* key proofs (api_challenge.c) */
	uint64_t reclaims;	/* devices reclaimed with a key proof */
};

typedef enum MHD_Result (*handler_fn)(struct api *api, struct MHD_Connection *c, struct request *rq,
				      const json_t *body);

#define SCOPE(s) (1u << (s))

struct endpoint {
	enum route_id route;
	enum method_id method;
	unsigned scopes;	/* 0: no authentication */
	bool body;		/* a JSON object is required */
	handler_fn fn;
};

/* api.c */
int64_t api_now_s(void);
int64_t api_now_us(void);
/* wakes the server thread (from any thread) */
void api_kick(struct api *api);

/* api_route.c */
/* The endpoint of route and method, or NULL; allow gets the methods the route
 * has (for a 405's Allow header), ", "-separated. */
const struct endpoint *api_endpoint_find(enum route_id route, enum method_id method, char *allow,
					 size_t allow_size);
enum route_id api_route_of(const char *url, char id[UUID_STRLEN]);
/* an MHD_KeyValueIterator over a request's query arguments: the first key
 * that is not a long poll's (since, wait) goes to *(const char **)cls and
 * stops the walk */
enum MHD_Result api_query_arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value);
enum method_id api_method_of(const char *m);
/* the first call of a request: route, authenticate, authorize */
enum MHD_Result api_begin_request(struct api *api, struct MHD_Connection *c, struct request *rq,
				  const char *url, const char *method);
/* the body is read: parse it and run the handler */
enum MHD_Result api_dispatch(struct api *api, struct MHD_Connection *c, struct request *rq);
/* a device sees only its own VPC: anything of another VPC does not exist for it */
bool api_may_read_vpc(const struct request *rq, const char *vpc_id);

/* api_reply.c: each answers rq (taken bodies; NULL is an allocation failure) */
struct MHD_Response *api_json_response(json_t *body);
enum MHD_Result api_deliver(struct api *api, struct MHD_Connection *c, struct request *rq,
			    unsigned status, struct MHD_Response *resp);
enum MHD_Result api_send_json(struct api *api, struct MHD_Connection *c, struct request *rq,
			      unsigned status, json_t *body);
enum MHD_Result api_send_error(struct api *api, struct MHD_Connection *c, struct request *rq,
			       unsigned status, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
enum MHD_Result api_send_verr(struct api *api, struct MHD_Connection *c, struct request *rq,
			      const struct verr *e);
enum MHD_Result api_send_internal(struct api *api, struct MHD_Connection *c, struct request *rq, int rc);
enum MHD_Result api_send_empty(struct api *api, struct MHD_Connection *c, struct request *rq);

/* api_batch.c */
void api_batch_init(struct api *api);
void api_batch_fini(struct api *api);
/* queues resp now, or holds it while the store's batch is pending */
enum MHD_Result api_queue(struct api *api, struct MHD_Connection *c, struct request *rq,
			  unsigned status, struct MHD_Response *resp);
/* the VPC's revision rose: its waiters are woken once that is committed */
void api_vpc_changed(struct api *api, const char *vpc_id);
void api_notify_if_changed(struct api *api, const char *vpc_id, int64_t before);
/* a log line about a write, written once the write is committed */
void api_log_write(struct api *api, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* commits the batch, releases its answers, has its waiters woken */
void api_batch_end(struct api *api);
/* commits between two requests when the batch's first answer waited long enough */
void api_batch_cut_if_due(struct api *api);
/* the most log lines a batch holds */
#define API_NOTES_MAX 1024
void api_notes_init(struct api_notes *n, size_t max);
/* the line, held while pending, else logged now */
void api_notes_add(struct api_notes *n, bool pending, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* logs the held lines if their batch was committed, else drops them */
void api_notes_flush(struct api_notes *n, bool committed);
void api_notes_free(struct api_notes *n);

/* api_guard.c */
/* a line of libmicrohttpd's: refusals counted, the rest rate-limited */
void api_guard_mhd_log(struct api *api, const char *msg);
/* MHD_OPTION_NOTIFY_CONNECTION: a connection's head deadline, set and freed */
void api_guard_started(struct api *api, struct MHD_Connection *c, void **socket_context);
void api_guard_closed(struct api *api, void **socket_context);
/* the first call of a request: its head is complete */
void api_guard_head_done(struct api *api, struct MHD_Connection *c);
/* a request is over: the connection's next head is due */
void api_guard_answered(struct api *api, struct MHD_Connection *c);
/* closes the connections past their deadline; the next deadline, or -1 */
int64_t api_guard_sweep(struct api *api, int64_t now_ms);
bool api_log_limit_pass(struct log_limit *l, int64_t now_ms);

/* api_metrics.c */
void api_count(struct api *api, const struct request *rq, unsigned status);

/* api_poll.c */
/* The devices of the VPC changed after since, as {vpc_id, revision, full,
 * devices, deleted}; full when the answer is the whole list (since 0, a
 * since from the future, or one from before the tombstones kept: the client
 * starts over). For a device (who, in the view v; NULL for the admin: no
 * filter) the devices it may not learn of are only ids in deleted, and the
 * answer carries its security group (api_policy_annotate). */
int api_list_json(struct api *api, const char *vpc_id, int64_t since, int64_t revision, struct policy_view *v,
		  const struct view_member *who, json_t **out);
enum MHD_Result api_send_list(struct api *api, struct MHD_Connection *c, struct request *rq);
/* a long poll leaves RQ_WAITING: woken, hung up or closed */
void api_poll_leave(struct api *api, struct request *rq);
/* the suspended long polls whose clients hung up are resumed, to be closed */
void api_poll_hangups(struct api *api);
void api_cache_drop(struct api *api, const char *vpc_id);
void api_cache_free(struct api *api);

/* api_challenge.c: the registration's key proof, checked against the
 * challenge it answers (which is used up): 0, or a negative errno
 * (challenge_take) with the reason in why */
int api_proof_check(struct api *api, const struct request *rq, const struct device_spec *spec,
		    const char **why);
/* api_policy.c: a VPC's groups and members at its current revision, and
 * who may learn of whom */
/* the view of the VPC's current revision; release it with api_policy_view_put */
int api_policy_view(struct api *api, const char *vpc_id, struct policy_view **out);
void api_policy_view_put(struct policy_view *v);
void api_policy_drop(struct api *api, const char *vpc_id);
void api_policy_free(struct api *api);
int64_t api_policy_revision(const struct policy_view *v);
/* the view of the previous policy, when it is what a client at since knew */
struct policy_view *api_policy_prev(struct policy_view *v, int64_t since);
/* What the policy change from old to v changed for who, of the devices
 * unchanged since since: those it sees now and did not appended to shown
 * (their objects), those it saw and does not to hidden (ids). -ENOENT when
 * old does not know who or one of them (then the caller tells everything). */
int api_policy_flips(struct api *api, struct policy_view *v, struct policy_view *old,
		     const struct view_member *who, int64_t since, json_t *shown, json_t *hidden);
/* the device in the view, or NULL */
const struct view_member *api_policy_member(const struct policy_view *v, const char *device_id);
/* may who learn of peer: either is a relay, or policy_visible */
bool api_policy_sees(struct policy_view *v, const struct view_member *who, const struct view_member *peer);
/* the members that get the same peer list since since share a class */
void api_policy_class(struct policy_view *v, const struct view_member *who, int64_t since,
		      char out[API_CLASS_LEN]);
/* adds who's resolved "security_group" to answer, and "security_groups"
 * (every group of the VPC) when who is a relay; nothing for NULL */
int api_policy_annotate(const struct policy_view *v, const struct view_member *who, json_t *answer);
/* the same for a device object (the registration answer), from its
 * security_group_id and relay; reads only the groups it needs */
int api_policy_annotate_device(struct api *api, json_t *device);

/* the handlers, one per endpoint */
#define HANDLER(name) enum MHD_Result name(struct api *api, struct MHD_Connection *c, \
					   struct request *rq, const json_t *body)
HANDLER(api_healthz);
HANDLER(api_metrics);
HANDLER(api_whoami);
HANDLER(api_vpc_create);
HANDLER(api_vpc_list);
HANDLER(api_vpc_get);
HANDLER(api_vpc_delete);
HANDLER(api_vpc_devices);
HANDLER(api_regkey_create);
HANDLER(api_regkey_list);
HANDLER(api_regkey_get);
HANDLER(api_regkey_delete);
HANDLER(api_device_register);
HANDLER(api_device_list);
HANDLER(api_device_get);
HANDLER(api_device_patch);
HANDLER(api_device_delete);
HANDLER(api_device_challenge);
HANDLER(api_secgroup_create);
HANDLER(api_secgroup_list);
HANDLER(api_secgroup_get);
HANDLER(api_secgroup_patch);
HANDLER(api_secgroup_delete);
#undef HANDLER

#endif
