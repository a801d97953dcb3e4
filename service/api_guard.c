/* api_guard: what keeps one client from holding the server (issue 15, point
 * 3). libmicrohttpd limits the connections per address; this file gives each
 * connection a deadline for its request head, total and not idle (a line a
 * second does not keep a head alive), closes the connections past it, counts
 * the refusals libmicrohttpd reports and keeps its complaints from flooding
 * the log. Used by the server thread alone.
 *
 * A connection's head deadline runs from its start (the header timeout) or
 * from its previous answer (the idle timeout: a kept-alive connection has as
 * long as before to start its next request, and no longer to finish its head)
 * to the first call of its request. Each kind of deadline is a FIFO, since
 * every deadline of one kind is now plus the same span. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api_internal.h"
#include "log.h"

/* at most this many lines about connections in a row, then one a LOG_INTERVAL */
#define LOG_BURST 3

struct conn_head {
	struct MHD_Connection *conn;
	struct head_fifo *fifo;	/* NULL: in a request, no deadline */
	int64_t deadline_ms;
	struct conn_head *prev, *next;
};

static void fifo_remove(struct conn_head *h)
{
	struct head_fifo *f = h->fifo;
	if (!f)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else
		f->first = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		f->last = h->prev;
	h->prev = h->next = NULL;
	h->fifo = NULL;
}

static void fifo_append(struct head_fifo *f, struct conn_head *h, int64_t deadline_ms)
{
	fifo_remove(h);
	h->deadline_ms = deadline_ms;
	h->fifo = f;
	h->prev = f->last;
	h->next = NULL;
	if (f->last)
		f->last->next = h;
	else
		f->first = h;
	f->last = h;
}

/* true when a line may be logged now; else the line is counted as suppressed */
bool api_log_limit_pass(struct log_limit *l, int64_t now_ms)
{
	if (now_ms >= l->next_ms) {
		l->burst = 0;
		l->next_ms = now_ms + API_LOG_INTERVAL_MS;
	}
	if (l->burst < LOG_BURST) {
		l->burst++;
		return true;
	}
	l->suppressed++;
	return false;
}

/* a suffix naming the lines suppressed since the last one logged */
static const char *suppressed_note(struct log_limit *l, char *buf, size_t size)
{
	buf[0] = 0;
	if (l->suppressed)
		snprintf(buf, size, " (%llu similar lines suppressed)", (unsigned long long)l->suppressed);
	l->suppressed = 0;
	return buf;
}

void api_guard_mhd_log(struct api *api, const char *msg)
{
	int64_t now = api_now_us() / 1000;
	char note[64];

	/* libmicrohttpd says this when it refuses a connection at its total or
	 * per-address limit; it has no counter of its own */
	if (strstr(msg, "reached connection limit")) {
		api->guard.refused++;
		if (now >= api->guard.refused_log_ms) {
			api->guard.refused_log_ms = now + API_LOG_INTERVAL_MS;
			log_warn("api", "connections refused at the connection limit total=%u per_address=%u refused_total=%llu",
				 api->guard.max_connections, api->guard.per_address,
				 (unsigned long long)api->guard.refused);
		}
		return;
	}
	if (api_log_limit_pass(&api->guard.log, now))
		log_warn("http", "%s%s", msg, suppressed_note(&api->guard.log, note, sizeof(note)));
}

void api_guard_started(struct api *api, struct MHD_Connection *c, void **socket_context)
{
	struct conn_head *h = calloc(1, sizeof(*h));
	*socket_context = h;
	if (!h) /* without a deadline, as before: the idle timeout still holds */
		return;
	h->conn = c;
	fifo_append(&api->guard.fresh, h, api_now_us() / 1000 + (int64_t)api->guard.header_timeout_s * 1000);
}

void api_guard_closed(struct api *api, void **socket_context)
{
	struct conn_head *h = *socket_context;
	(void)api;
	if (!h)
		return;
	fifo_remove(h);
	free(h);
	*socket_context = NULL;
}

static struct conn_head *head_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void api_guard_head_done(struct api *api, struct MHD_Connection *c)
{
	struct conn_head *h = head_of(c);
	(void)api;
	if (h)
		fifo_remove(h);
}

void api_guard_answered(struct api *api, struct MHD_Connection *c)
{
	struct conn_head *h = head_of(c);
	if (h)
		fifo_append(&api->guard.kept, h, api_now_us() / 1000 + API_IDLE_TIMEOUT_S * 1000);
}

/* shut down: libmicrohttpd sees the end of the stream and closes it */
static void head_expire(struct api *api, struct conn_head *h)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(h->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	char note[64];

	fifo_remove(h);
	api->guard.head_timeouts++;
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
	if (api_log_limit_pass(&api->guard.log, api_now_us() / 1000))
		log_warn("api", "request head not complete in time, connection closed timeouts_total=%llu%s",
			 (unsigned long long)api->guard.head_timeouts,
			 suppressed_note(&api->guard.log, note, sizeof(note)));
}

int64_t api_guard_sweep(struct api *api, int64_t now_ms)
{
	struct head_fifo *fifos[] = { &api->guard.fresh, &api->guard.kept };
	int64_t next = -1;

	for (size_t i = 0; i < sizeof(fifos) / sizeof(fifos[0]); i++) {
		while (fifos[i]->first && fifos[i]->first->deadline_ms <= now_ms)
			head_expire(api, fifos[i]->first);
		if (fifos[i]->first && (next < 0 || fifos[i]->first->deadline_ms < next))
			next = fifos[i]->first->deadline_ms;
	}
	return next;
}
