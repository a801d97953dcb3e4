/* api: the server thread of meshsvc's HTTP(S) front (api.h), its rounds of
 * libmicrohttpd work in external epoll mode, a request's states from its
 * first call to its completion, and start and stop. Routing is in
 * api_route.c, group commit in api_batch.c, the handlers in api_vpc.c,
 * api_regkey.c, api_device.c and api_poll.c. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "log.h"

/* libmicrohttpd's pool per connection: the request head must fit; bodies
 * stream through it */
#define CONNECTION_MEMORY (8 * 1024)
#define SHUTDOWN_GRACE_MS 1000
/* a chunked body beyond API_BODY_MAX is read and dropped up to this, then the
 * connection is closed */
#define API_DISCARD_MAX (16 * 1024 * 1024)

int64_t api_now_s(void)
{
	return (int64_t)time(NULL);
}

int64_t api_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* wakes the server thread, whose epoll does not see connections resumed by
 * other threads; once per round, however many (a fan-out resumes thousands) */
void api_kick(struct api *api)
{
	uint64_t one = 1;
	if (!atomic_exchange(&api->kicked, true) && write(api->kick_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		log_warn("api", "cannot wake the server thread: %s", strerror(errno));
}

static enum MHD_Result handle(struct api *api, struct MHD_Connection *c, const char *url,
			      const char *method, const char *upload_data, size_t *upload_data_size,
			      void **req_cls)
{
	struct request *rq = *req_cls;
	struct MHD_Response *resp;

	if (!rq) {
		api_batch_cut_if_due(api);
		api_guard_head_done(api, c);
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		*req_cls = rq;
		return api_begin_request(api, c, rq, url, method);
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
			return api_send_error(api, c, rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
					      "body larger than %d bytes", API_BODY_MAX);
		return api_dispatch(api, c, rq);
	case RQ_WAITING:
		/* resumed: by a change in the VPC, the deadline, shutdown, or the
		 * client's hang-up (closed) */
		api_poll_leave(api, rq);
		if (rq->gone) {
			rq->state = RQ_DONE;
			return MHD_NO;
		}
		return api_send_list(api, c, rq);
	case RQ_HELD:
		/* resumed by api_batch_end. An answer given before the body was read
		 * goes out once the body is read and dropped. */
		if (*upload_data_size) {
			rq->len += *upload_data_size;
			*upload_data_size = 0;
			return rq->len > API_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		resp = rq->answer;
		rq->answer = NULL;
		return resp ? api_deliver(api, c, rq, rq->status, resp) : MHD_NO;
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
	api_kick(api);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api *api = cls;
	struct request *rq = *req_cls;
	(void)toe;
	api_guard_answered(api, c);
	if (!rq)
		return;
	if (rq->state == RQ_WAITING) { /* closed before its answer: only at shutdown */
		watch_cancel(api->watch, &rq->waiter);
		api_poll_leave(api, rq);
	}
	/* released by api_batch_end, closed before it went out */
	if (rq->answer)
		MHD_destroy_response(rq->answer);
	free(rq->body);
	free(rq);
	*req_cls = NULL;
}

static void wake_connection(void *arg, void *conn)
{
	MHD_resume_connection(conn);
	api_kick(arg);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		api_guard_started(cls, c, socket_context);
	else
		api_guard_closed(cls, socket_context);
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = 0;
	api_guard_mhd_log(cls, msg);
}

/* One round: libmicrohttpd handles every request that is ready, their writes
 * in one batch; the batch is committed and their answers released. Returns
 * how long the next epoll_wait may block (ms, -1 for ever). */
static int run_round(struct api *api)
{
	MHD_UNSIGNED_LONG_LONG ms;
	int64_t now, head;

	api->resumed = false;
	if (atomic_exchange(&api->quiesce, false))
		api->listen_fd = MHD_quiesce_daemon(api->daemon);
	/* outside the batch: its own transaction, and waiters woken after it */
	if (atomic_exchange(&api->housekeeping, false))
		store_housekeeping(api->store, api_now_s(), &api->limits, on_vpc_changed, api);
	if (api->hup_ready)
		api_poll_hangups(api);
	store_batch_begin(api->store);
	MHD_run(api->daemon);
	for (size_t i = 0; i < api->committed.len; i++)
		watch_notify(api->watch, vec_at(&api->committed, i));
	vec_truncate(&api->committed, 0);
	api_batch_end(api);
	/* every round, so that a busy server closes late heads too */
	now = api_now_us() / 1000;
	head = api_guard_sweep(api, now);
	/* released answers go out, and woken waiters are answered, in the next MHD_run */
	if (api->resumed || api->committed.len)
		return 0;
	if (MHD_get_timeout(api->daemon, &ms) == MHD_NO)
		ms = head < 0 ? ULLONG_MAX : (MHD_UNSIGNED_LONG_LONG)(head - now);
	else if (head >= 0 && (MHD_UNSIGNED_LONG_LONG)(head - now) < ms)
		ms = (MHD_UNSIGNED_LONG_LONG)(head - now);
	if (ms == ULLONG_MAX)
		return -1;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* the server thread: libmicrohttpd in external epoll mode, so that a round
 * ends where the requests that are ready do */
static void *serve(void *arg)
{
	struct api *api = arg;
	struct epoll_event ev[3];
	int timeout = 0, n;
	uint64_t kicks;

	while (!atomic_load(&api->quit)) {
		n = epoll_wait(api->epfd, ev, 3, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("api", "epoll_wait failed: %s", strerror(errno));
			usleep(10 * 1000);
		}
		/* read, then cleared, before the round: a connection resumed
		 * before the clear is seen by the round, one after it kicks again */
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == api->hup_epfd)
				api->hup_ready = true;
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

unsigned api_per_address_limit(const struct api_config *cfg)
{
	unsigned n = cfg->per_address ? cfg->per_address : API_PER_ADDRESS_DEFAULT;
	unsigned share = cfg->max_connections / API_PER_ADDRESS_SHARE;
	if (!cfg->per_address && n > share)
		n = share;
	return n ? n : 1;
}

/* libmicrohttpd in external epoll mode, listening as cfg says; 0 or -EIO */
static int start_daemon(struct api *api, const struct api_config *cfg)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	struct MHD_OptionItem opts[16];
	size_t n = 0;

	/* [::] serves IPv4 too (IPv4-mapped), as a dual-stack host expects */
	if (cfg->listen.sa.sa_family == AF_INET6)
		flags |= IN6_IS_ADDR_UNSPECIFIED(&cfg->listen.in6.sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
	if (cfg->tls_cert_pem)
		flags |= MHD_USE_TLS;
	/* first, so that MHD's own complaints about later options reach our log */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, api };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, (void *)&cfg->listen };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, api->guard.per_address, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, api };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, API_IDLE_TIMEOUT_S, NULL };
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
		return -EIO;
	}
	di = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
	api->port = di ? di->port : addr_port(&cfg->listen);
	return 0;
}

int api_start(const struct api_config *cfg, struct store *st, struct api **out)
{
	const union MHD_DaemonInfo *di;
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
	api->guard.max_connections = cfg->max_connections;
	api->guard.per_address = api_per_address_limit(cfg);
	api->guard.header_timeout_s = cfg->header_timeout_s ? cfg->header_timeout_s : API_HEADER_TIMEOUT_S;
	api->polls_per_token = cfg->polls_per_token ? cfg->polls_per_token : API_POLLS_PER_TOKEN;
	memcpy(api->admin_hash, cfg->admin_hash, TOKEN_HASH_BYTES);
	ownaddr_init(&api->own, &cfg->listen, api_now_us() / 1000);
	if ((rc = challenge_table_new(0, (int64_t)(cfg->challenge_ttl_s ? cfg->challenge_ttl_s
									: CHALLENGE_TTL_S_DEFAULT) * 1000,
				      &api->challenges)) < 0) {
		free(api);
		return rc;
	}
	api_batch_init(api);
	if ((api->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = -errno;
		log_error("api", "cannot create an eventfd: %s", strerror(errno));
		goto err_kick;
	}
	if ((rc = watch_new(wake_connection, api, cfg->max_connections, &api->watch)) < 0)
		goto err_watch;
	if ((api->hup_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		log_error("api", "cannot create an epoll instance: %s", strerror(errno));
		goto err_hup;
	}
	if ((rc = start_daemon(api, cfg)) < 0)
		goto err_daemon;

	di = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if ((api->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		rc = -errno;
		log_error("api", "cannot create an epoll instance: %s", strerror(errno));
		goto err_epoll;
	}
	if (!di || (rc = epoll_add(api->epfd, di->epoll_fd)) < 0 ||
	    (rc = epoll_add(api->epfd, api->kick_fd)) < 0 || (rc = epoll_add(api->epfd, api->hup_epfd)) < 0) {
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
	close(api->hup_epfd);
err_hup:
	watch_free(api->watch);
err_watch:
	close(api->kick_fd);
err_kick:
	api_batch_fini(api);
	challenge_table_free(api->challenges);
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
	api_kick(api);
	watch_stop(api->watch);
	for (int i = 0; i < SHUTDOWN_GRACE_MS / 10 && atomic_load(&api->parked) > 0; i++)
		usleep(10 * 1000);
	usleep(50 * 1000);
	atomic_store(&api->quit, true);
	api_kick(api);
	pthread_join(api->thread, NULL);
	close(api->epfd);
	MHD_stop_daemon(api->daemon);
	if (api->listen_fd != MHD_INVALID_SOCKET)
		close(api->listen_fd);
	close(api->hup_epfd);
	watch_free(api->watch);
	close(api->kick_fd);
	api_cache_free(api);
	api_batch_fini(api);
	challenge_table_free(api->challenges);
	free(api);
}
