/* ctl: the local control socket (see ctl.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "loop.h"

struct ctl_conn {
	struct ctl *ctl;
	int fd;
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool dispatched;	/* the request went to the handler */
	bool watching;		/* fd is in the loop */
	struct ctl_conn *prev, *next;
};

struct ctl {
	struct loop *loop;
	int lfd;
	char path[108];
	ctl_handler handler;
	void *arg;
	struct ctl_conn *conns;
};

static void conn_free(struct ctl_conn *c)
{
	struct ctl *ctl = c->ctl;

	if (c->watching)
		loop_del_fd(ctl->loop, c->fd);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c);
}

static void conn_flush(struct ctl_conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN)
			return;	/* the loop says when it drains */
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	conn_free(c);
}

static void dispatch(struct ctl_conn *c)
{
	json_error_t jerr;
	json_t *req = json_loadb(c->in, c->inlen, 0, &jerr);
	const char *cmd;

	c->dispatched = true;
	/* stop reading: one request per connection */
	if (c->watching) {
		loop_del_fd(c->ctl->loop, c->fd);
		c->watching = false;
	}
	if (!req || !json_is_object(req)) {
		json_decref(req);
		ctl_reply_error(c, "request is not a JSON object");
		return;
	}
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd) {
		json_decref(req);
		ctl_reply_error(c, "request has no \"cmd\" string");
		return;
	}
	c->ctl->handler(c->ctl->arg, c, cmd, req);
	json_decref(req);
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct ctl_conn *c = arg;
	char buf[4096];
	ssize_t n;
	(void)loop;

	if (c->dispatched) {
		/* writable again: go on with the answer */
		if (events & (LOOP_WRITE | LOOP_ERROR | LOOP_HUP))
			conn_flush(c);
		return;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		if (c->inlen)
			dispatch(c);	/* a request without its newline */
		else
			conn_free(c);
		return;
	}
	if (c->inlen + (size_t)n > CTL_REQUEST_MAX) {
		log_warn("ctl", "request over %d bytes refused", CTL_REQUEST_MAX);
		c->dispatched = true;
		ctl_reply_error(c, "request too large");
		return;
	}
	char *in = realloc(c->in, c->inlen + (size_t)n + 1);
	if (!in) {
		conn_free(c);
		return;
	}
	c->in = in;
	memcpy(c->in + c->inlen, buf, (size_t)n);
	c->inlen += (size_t)n;
	c->in[c->inlen] = 0;
	if (memchr(buf, '\n', (size_t)n))
		dispatch(c);
}

static void on_listen(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct ctl *ctl = arg;
	struct ctl_conn *c;
	int cfd;
	(void)events;

	while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (!(c = calloc(1, sizeof(*c)))) {
			close(cfd);
			continue;
		}
		c->ctl = ctl;
		c->fd = cfd;
		c->next = ctl->conns;
		if (ctl->conns)
			ctl->conns->prev = c;
		ctl->conns = c;
		if (loop_add_fd(loop, cfd, LOOP_READ, on_conn, c) < 0) {
			conn_free(c);
			continue;
		}
		c->watching = true;
	}
}

void ctl_reply(struct ctl_conn *c, json_t *answer)
{
	char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;

	json_decref(answer);
	if (!text) {
		conn_free(c);
		return;
	}
	c->outlen = strlen(text);
	c->out = realloc(text, c->outlen + 1);
	if (!c->out) {
		free(text);
		conn_free(c);
		return;
	}
	c->out[c->outlen++] = '\n';
	c->outoff = 0;
	c->dispatched = true;
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			if (!c->watching && loop_add_fd(c->ctl->loop, c->fd, LOOP_WRITE, on_conn, c) == 0)
				c->watching = true;
			else if (c->watching)
				loop_mod_fd(c->ctl->loop, c->fd, LOOP_WRITE);
			if (c->watching)
				return;
			break;
		}
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	conn_free(c);
}

void ctl_reply_error(struct ctl_conn *c, const char *msg)
{
	ctl_reply(c, json_pack("{s:s}", "error", msg));
}

int ctl_new(struct loop *loop, const char *path, ctl_handler h, void *arg, struct ctl **out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[sizeof(sun.sun_path)];
	struct ctl *ctl;
	char *slash;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	if (!(ctl = calloc(1, sizeof(*ctl))))
		return -ENOMEM;
	ctl->loop = loop;
	ctl->handler = h;
	ctl->arg = arg;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->lfd < 0) {
		rc = -errno;
		goto err_free;
	}
	/* a socket left by a meshd that died; a live one would answer connect() */
	if (connect(ctl->lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		rc = -EADDRINUSE;
		goto err_close;
	}
	close(ctl->lfd);
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->lfd < 0) {
		rc = -errno;
		goto err_free;
	}
	unlink(path);
	if (bind(ctl->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(path, 0660) < 0 ||
	    listen(ctl->lfd, 16) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if ((rc = loop_add_fd(loop, ctl->lfd, LOOP_READ, on_listen, ctl)) < 0)
		goto err_unlink;
	*out = ctl;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(ctl->lfd);
err_free:
	free(ctl);
	return rc;
}

void ctl_free(struct ctl *ctl)
{
	if (!ctl)
		return;
	while (ctl->conns)
		conn_free(ctl->conns);
	loop_del_fd(ctl->loop, ctl->lfd);
	close(ctl->lfd);
	unlink(ctl->path);
	free(ctl);
}
