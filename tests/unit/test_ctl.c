/* The control socket: one JSON line in, one out; deferred answers; bad input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/meshd/ctl.h"
#include "loop.h"

struct env {
	struct loop *loop;
	struct ctl *ctl;
	struct ctl_conn *pending;
	int calls;
};

static void handler(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req)
{
	struct env *e = arg;

	e->calls++;
	if (!strcmp(cmd, "echo"))
		ctl_reply(c, json_pack("{s:O}", "you_said", json_object_get(req, "x")));
	else if (!strcmp(cmd, "later"))
		e->pending = c;
	else
		ctl_reply_error(c, "unknown command");
}

static char path[64];

static int client(const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sun.sun_path, path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	return fd;
}

/* runs the loop until fd has a whole line to read */
static json_t *answer(struct env *e, int fd)
{
	char buf[70000];
	size_t len = 0;

	for (int i = 0; i < 200; i++) {
		ssize_t n;
		loop_run_once(e->loop, 10);
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n > 0)
			len += (size_t)n;
		if (len && buf[len - 1] == '\n')
			break;
	}
	buf[len] = 0;
	close(fd);
	return json_loads(buf, 0, NULL);
}

static void setup(struct env *e)
{
	snprintf(path, sizeof(path), "/tmp/nmt-ctl-%d/x.sock", getpid());
	cr_assert_eq(loop_new(&e->loop), 0);
	cr_assert_eq(ctl_new(e->loop, path, handler, e, &e->ctl), 0);
}

static void teardown(struct env *e)
{
	ctl_free(e->ctl);
	loop_free(e->loop);
	path[strlen(path) - 7] = 0;
	rmdir(path);
}

Test(ctl, answers_a_request)
{
	struct env e = { 0 };
	json_t *a;

	setup(&e);
	a = answer(&e, client("{\"cmd\":\"echo\",\"x\":[1,2]}\n"));
	cr_assert_not_null(a);
	cr_assert_eq(json_array_size(json_object_get(a, "you_said")), 2);
	json_decref(a);
	teardown(&e);
}

/* each bad request gets its error, and the socket serves the next one */
Test(ctl, refuses_bad_requests)
{
	static char big[CTL_REQUEST_MAX + 100];
	static const struct {
		const char *req;	/* NULL: one larger than CTL_REQUEST_MAX */
		const char *error;
	} cases[] = {
		{ "{\"cmd\":\"nope\"}\n", "unknown command" },
		{ "garbage\n", "request is not a JSON object" },
		{ "{\"x\":1}\n", "request has no \"cmd\" string" },
		{ NULL, "request too large" },
	};
	struct env e = { 0 };
	json_t *a;

	setup(&e);
	memset(big, 'x', sizeof(big) - 1);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		a = answer(&e, client(cases[c].req ? cases[c].req : big));
		cr_expect_str_eq(json_string_value(json_object_get(a, "error")), cases[c].error, "%s",
				 cases[c].req ? cases[c].req : "(too large)");
		json_decref(a);
	}
	a = answer(&e, client("{\"cmd\":\"echo\",\"x\":[1]}\n"));
	cr_expect_eq(json_array_size(json_object_get(a, "you_said")), 1, "still serving");
	json_decref(a);
	teardown(&e);
}

/* the handler keeps the connection and answers later */
static int deferred(struct env *e)
{
	int fd = client("{\"cmd\":\"later\"}\n");

	e->pending = NULL;
	for (int i = 0; i < 50 && !e->pending; i++)
		loop_run_once(e->loop, 10);
	cr_assert_not_null(e->pending, "the handler got the request");
	return fd;
}

Test(ctl, answers_later)
{
	struct env e = { 0 };
	json_t *a;
	int fd;

	setup(&e);
	fd = deferred(&e);
	ctl_reply(e.pending, json_pack("{s:b}", "done", 1));
	a = answer(&e, fd);
	cr_assert(json_is_true(json_object_get(a, "done")));
	json_decref(a);
	teardown(&e);
}

/* a client that goes away before its deferred answer costs nothing: the
 * answer is dropped and the socket serves the next request */
Test(ctl, client_gone_before_the_answer)
{
	struct env e = { 0 };
	json_t *a;

	setup(&e);
	close(deferred(&e));
	ctl_reply(e.pending, json_pack("{s:b}", "done", 1));
	for (int i = 0; i < 5; i++)
		loop_run_once(e.loop, 10);
	a = answer(&e, client("{\"cmd\":\"echo\",\"x\":[1,2,3]}\n"));
	cr_expect_eq(json_array_size(json_object_get(a, "you_said")), 3, "still serving");
	json_decref(a);
	teardown(&e);
}

Test(ctl, one_meshd_per_socket)
{
	struct env e = { 0 };
	struct ctl *other;

	setup(&e);
	/* a second meshd on the same socket is refused */
	cr_assert_eq(ctl_new(e.loop, path, handler, &e, &other), -EADDRINUSE);
	ctl_free(e.ctl);
	cr_assert_neq(access(path, F_OK), 0, "socket removed");
	/* the path can be served again after ctl_free */
	cr_assert_eq(ctl_new(e.loop, path, handler, &e, &e.ctl), 0);
	teardown(&e);
}
