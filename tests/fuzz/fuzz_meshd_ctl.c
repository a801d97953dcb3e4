/* libFuzzer target: meshd's control socket (agent/meshd/ctl.c) as a client
 * reaches it, over a real unix socket and event loop: the framing (bytes
 * gathered read by read up to a newline, or up to the client's end of
 * writing; CTL_REQUEST_MAX), the JSON request parse and the dispatch to the
 * handler, answers given at once, later (ping waits for its echo) or not at
 * all. The first input byte sets the size of the pieces the client writes
 * (0: all at once); the second whether the client then shuts its side, a
 * template the rest goes into (none; {"cmd":"REST"}; {"cmd":"ping",
 * "peer":REST}; {"cmd":REST} without a newline), which spares the fuzzer
 * finding the shape of a request, and how many times the rest is repeated
 * (to go past CTL_REQUEST_MAX). Beyond not crashing: the handler runs at most once per
 * connection, with the request's "cmd" string; a request written at once is
 * handed on exactly when it is a JSON object with a "cmd" string; whatever
 * comes back is one JSON object on one line, and {"error": ...} when the
 * handler was not reached; a complete request (a newline, or the client's
 * end) always gets an answer unless the handler chose to give none; and
 * every connection is closed afterwards (no descriptor left open). */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/meshd/ctl.h"
#include "log.h"
#include "loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { STREAM_MAX = CTL_REQUEST_MAX + 8192, ANSWER_MAX = 4096 };

static struct loop *loop;
static struct ctl *ctl;
static struct sockaddr_un sun = { .sun_family = AF_UNIX };
static struct ctl_conn *pending;	/* a ping's answer, given one loop turn later */
static int calls;
static char last_cmd[256];
static bool silent;			/* the handler closed without an answer */

static void handler(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req)
{
	const char *again = json_string_value(json_object_get(req, "cmd"));

	(void)arg;
	if (++calls > 1 || !json_is_object(req) || !again || strcmp(again, cmd))
		abort();
	snprintf(last_cmd, sizeof(last_cmd), "%s", cmd);
	if (!strcmp(cmd, "ping")) {
		pending = c;
	} else if (!strcmp(cmd, "peers")) {
		silent = true;
		ctl_reply(c, NULL);	/* an answer that could not be built */
	} else if (!strcmp(cmd, "status")) {
		ctl_reply(c, json_pack("{s:s}", "cmd", cmd));
	} else {
		ctl_reply_error(c, "unknown command (status, peers, ping)");
	}
}

static void cleanup(void)
{
	ctl_free(ctl);
	loop_free(loop);
	unlink(sun.sun_path);
	*strrchr(sun.sun_path, '/') = 0;
	rmdir(sun.sun_path);
}

static void setup(void)
{
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/nmfz-ctl-%d/x.sock", getpid());
	log_setup(LOG_FORMAT_TEXT, LOG_ERROR);
	if (loop_new(&loop) < 0 || ctl_new(loop, sun.sun_path, handler, NULL, &ctl) < 0)
		abort();
	atexit(cleanup);
}

/* one turn of the loop; a pending ping is answered on the turn after */
static void turn(void)
{
	struct ctl_conn *c = pending;

	loop_run_once(loop, 0);
	if (c && c == pending) {
		pending = NULL;
		ctl_reply(c, json_pack("{s:b}", "pong", 1));
	}
}

/* reads what has come; true once the server closed */
static bool drain(int fd, char *ans, size_t *len)
{
	for (;;) {
		ssize_t n = recv(fd, ans + *len, ANSWER_MAX - *len, MSG_DONTWAIT);
		if (n > 0) {
			*len += (size_t)n;
			if (*len == ANSWER_MAX)
				abort();	/* no answer here is that long */
			continue;
		}
		return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
	}
}

static void check_answer(const char *ans, size_t len)
{
	json_error_t jerr;
	json_t *j;

	if (!len)
		return;
	if (ans[len - 1] != '\n' || memchr(ans, '\n', len - 1))
		abort();	/* one line */
	if (!(j = json_loadb(ans, len - 1, 0, &jerr)) || !json_is_object(j))
		abort();
	if (!calls && !json_is_string(json_object_get(j, "error")))
		abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char stream[STREAM_MAX];
	static char ans[ANSWER_MAX];
	size_t piece, total = 0, sent = 0, alen = 0;
	static const char *const templates[4][2] = {
		{ "", "" }, { "{\"cmd\":\"", "\"}\n" }, { "{\"cmd\":\"ping\",\"peer\":", "}\n" }, { "{\"cmd\":", "}" },
	};
	bool shut, closed = false, complete;
	int fd, reps, low, tmpl;

	if (size < 2)
		return 0;
	if (!loop)
		setup();
	piece = data[0] ? data[0] : SIZE_MAX;
	shut = data[1] & 1;
	tmpl = (data[1] >> 1) & 3;
	reps = 1 + (data[1] >> 3);
	data += 2;
	size -= 2;
	total = strlen(templates[tmpl][0]);
	memcpy(stream, templates[tmpl][0], total);
	for (int r = 0; r < reps && total + size + 16 <= sizeof(stream); r++) {
		memcpy(stream + total, data, size);
		total += size;
	}
	memcpy(stream + total, templates[tmpl][1], strlen(templates[tmpl][1]));
	total += strlen(templates[tmpl][1]);
	calls = 0;
	silent = false;
	last_cmd[0] = 0;

	low = dup(2);
	close(low);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		abort();
	turn();	/* accepted */

	for (int spins = 0; sent < total && !closed; spins++) {
		size_t n = piece < total - sent ? piece : total - sent;
		ssize_t w = send(fd, stream + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			sent += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			break;	/* the server answered and went */
		turn();
		closed = drain(fd, ans, &alen);
		if (spins > 100000)
			abort();	/* the server neither reads nor answers */
	}
	if (shut)
		shutdown(fd, SHUT_WR);
	for (int i = 0; i < 64 && !closed; i++) {
		turn();
		closed = drain(fd, ans, &alen);
	}

	complete = (shut && sent) || memchr(stream, '\n', sent) || sent > CTL_REQUEST_MAX;
	if (complete && !closed)
		abort();	/* a complete request was left unanswered */
	if (complete && !alen && !silent)
		abort();
	check_answer(ans, alen);
	/* one write of what fits one read: the request is exactly the bytes */
	if (piece >= total && total <= 4096 && memchr(stream, '\n', total)) {
		json_error_t jerr;
		json_t *j = json_loadb(stream, total, 0, &jerr);
		const char *cmd = j && json_is_object(j) ? json_string_value(json_object_get(j, "cmd")) : NULL;
		if (!cmd != !calls || (cmd && strcmp(cmd, last_cmd) && strlen(cmd) < sizeof(last_cmd)))
			abort();
		json_decref(j);
	}

	close(fd);
	/* the server sees the client gone and lets go of the connection */
	for (int i = 0; i < 4; i++)
		turn();
	if (pending)
		abort();
	fd = dup(2);
	close(fd);
	if (fd != low)
		abort();	/* a descriptor was left open */
	return 0;
}
