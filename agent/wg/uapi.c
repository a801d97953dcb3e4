#include "uapi.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"
#include "loop.h"

#define UAPI_DIR "/var/run/wireguard"

/* ---- config --------------------------------------------------------------- */

void wg_uapi_config_clear(struct wg_uapi_config *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
		free(c->peers[i].allowed_ips);
	if (c->peers)
		sodium_memzero(c->peers, c->cap_peers * sizeof(*c->peers));
	free(c->peers);
	sodium_memzero(c, sizeof(*c));
}

struct wg_uapi_peer *wg_uapi_config_add_peer(struct wg_uapi_config *c)
{
	if (c->n_peers == c->cap_peers) {
		size_t cap = c->cap_peers ? 2 * c->cap_peers : 4;
		struct wg_uapi_peer *p = calloc(cap, sizeof(*p));
		if (!p)
			return NULL;
		if (c->peers) {
			memcpy(p, c->peers, c->n_peers * sizeof(*p));
			/* the old array held preshared keys */
			sodium_memzero(c->peers, c->cap_peers * sizeof(*p));
			free(c->peers);
		}
		c->peers = p;
		c->cap_peers = cap;
	}
	struct wg_uapi_peer *p = &c->peers[c->n_peers++];
	memset(p, 0, sizeof(*p));
	p->endpoint.sa.sa_family = AF_UNSPEC;
	return p;
}

int wg_uapi_peer_add_allowed_ip(struct wg_uapi_peer *p, const struct cidr *ip)
{
	if (p->n_allowed_ips == p->cap_allowed_ips) {
		size_t cap = p->cap_allowed_ips ? 2 * p->cap_allowed_ips : 4;
		struct cidr *a = realloc(p->allowed_ips, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		p->allowed_ips = a;
		p->cap_allowed_ips = cap;
	}
	p->allowed_ips[p->n_allowed_ips++] = *ip;
	return 0;
}

/* ---- set: parsing ---------------------------------------------------------- */

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* the boolean keys take exactly "true" (wireguard-tools writes nothing else;
 * wireguard-go also accepts "false" as a no-op) */
static int parse_flag(const char *v, uint32_t *flags, uint32_t bit)
{
	if (!strcmp(v, "true")) {
		*flags |= bit;
		return 0;
	}
	return strcmp(v, "false") ? -EINVAL : 0;
}

static int parse_device_key(struct wg_uapi_config *c, const char *k, const char *v)
{
	uint64_t n;
	if (!strcmp(k, "private_key")) {
		if (wg_key_from_hex(c->private_key, v) < 0)
			return -EINVAL;
		c->flags |= WG_UAPI_HAS_PRIVATE_KEY;
	} else if (!strcmp(k, "listen_port")) {
		if (parse_uint(v, 65535, &n) < 0)
			return -EINVAL;
		c->listen_port = (uint16_t)n;
		c->flags |= WG_UAPI_HAS_LISTEN_PORT;
	} else if (!strcmp(k, "fwmark")) {
		if (parse_uint(v, UINT32_MAX, &n) < 0)
			return -EINVAL;
		c->fwmark = (uint32_t)n;
		c->flags |= WG_UAPI_HAS_FWMARK;
	} else if (!strcmp(k, "replace_peers")) {
		return parse_flag(v, &c->flags, WG_UAPI_REPLACE_PEERS);
	} else {
		return -EINVAL;
	}
	return 0;
}

static int parse_peer_key(struct wg_uapi_peer *p, const char *k, const char *v)
{
	uint64_t n;
	if (!strcmp(k, "remove")) {
		return parse_flag(v, &p->flags, WG_UAPI_PEER_REMOVE);
	} else if (!strcmp(k, "update_only")) {
		return parse_flag(v, &p->flags, WG_UAPI_PEER_UPDATE_ONLY);
	} else if (!strcmp(k, "preshared_key")) {
		if (wg_key_from_hex(p->preshared_key, v) < 0)
			return -EINVAL;
		p->flags |= WG_UAPI_PEER_HAS_PRESHARED_KEY;
	} else if (!strcmp(k, "endpoint")) {
		/* wg resolves names itself and sends numeric IP:PORT or [IP6]:PORT */
		if (addr_parse(v, &p->endpoint) < 0)
			return -EINVAL;
		addr_unmap_v4(&p->endpoint);
		p->flags |= WG_UAPI_PEER_HAS_ENDPOINT;
	} else if (!strcmp(k, "persistent_keepalive_interval")) {
		if (parse_uint(v, 65535, &n) < 0)
			return -EINVAL;
		p->persistent_keepalive = (uint16_t)n;
		p->flags |= WG_UAPI_PEER_HAS_KEEPALIVE;
	} else if (!strcmp(k, "replace_allowed_ips")) {
		return parse_flag(v, &p->flags, WG_UAPI_PEER_REPLACE_ALLOWED_IPS);
	} else if (!strcmp(k, "allowed_ip")) {
		struct cidr ip;
		/* the kernel and wireguard-go mask host bits rather than refuse them */
		if (cidr_parse(v, true, &ip) < 0)
			return -EINVAL;
		return wg_uapi_peer_add_allowed_ip(p, &ip);
	} else if (!strcmp(k, "protocol_version")) {
		if (strcmp(v, "1"))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}

int wg_uapi_parse_set(const char *body, size_t len, struct wg_uapi_config *out, size_t *line_no)
{
	struct wg_uapi_peer *peer = NULL;
	char line[512];
	size_t pos = 0, no = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		const char *nl = memchr(body + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (body + pos)) : len - pos;
		char *eq;

		no++;
		if (n == 0 || n >= sizeof(line) || memchr(body + pos, 0, n)) {
			rc = -EINVAL;
			break;
		}
		memcpy(line, body + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		eq = strchr(line, '=');
		if (!eq || eq == line) {
			rc = -EINVAL;
			break;
		}
		*eq = 0;
		if (!strcmp(line, "public_key")) {
			peer = wg_uapi_config_add_peer(out);
			if (!peer) {
				rc = -ENOMEM;
				break;
			}
			if (wg_key_from_hex(peer->public_key, eq + 1) < 0)
				rc = -EINVAL;
		} else if (peer) {
			rc = parse_peer_key(peer, line, eq + 1);
		} else {
			rc = parse_device_key(out, line, eq + 1);
		}
		if (rc < 0)
			break;
	}
	sodium_memzero(line, sizeof(line));
	if (rc < 0) {
		wg_uapi_config_clear(out);
		if (line_no)
			*line_no = no;
	}
	return rc;
}

/* ---- get: formatting ------------------------------------------------------- */

struct strbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->len + (size_t)n < b->cap)
			break;
		size_t cap = 2 * b->cap + (size_t)n + 1;
		char *q = malloc(cap);
		if (!q) {
			b->err = -ENOMEM;
			return;
		}
		memcpy(q, b->p, b->len);
		/* the buffer may hold the private key already */
		sodium_memzero(b->p, b->cap);
		free(b->p);
		b->p = q;
		b->cap = cap;
	}
	b->len += (size_t)n;
}

int wg_uapi_format_get(const struct wg_uapi_config *c, char **out, size_t *out_len)
{
	struct strbuf b = { .cap = 1024 };
	char hex[WG_KEY_HEX_LEN], buf[ADDR_STRLEN];

	*out = NULL;
	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	b.p[0] = 0;
	if (c->has_private_key) {
		wg_key_to_hex(hex, c->private_key);
		sb_printf(&b, "private_key=%s\n", hex);
	}
	if (c->listen_port)
		sb_printf(&b, "listen_port=%u\n", c->listen_port);
	if (c->fwmark)
		sb_printf(&b, "fwmark=%" PRIu32 "\n", c->fwmark);
	for (size_t i = 0; i < c->n_peers; i++) {
		const struct wg_uapi_peer *p = &c->peers[i];
		wg_key_to_hex(hex, p->public_key);
		sb_printf(&b, "public_key=%s\n", hex);
		wg_key_to_hex(hex, p->preshared_key);
		sb_printf(&b, "preshared_key=%s\nprotocol_version=1\n", hex);
		if (p->endpoint.sa.sa_family == AF_INET || p->endpoint.sa.sa_family == AF_INET6)
			sb_printf(&b, "endpoint=%s\n", addr_format(&p->endpoint, buf, sizeof(buf)));
		sb_printf(&b, "last_handshake_time_sec=%" PRId64 "\nlast_handshake_time_nsec=%" PRId64 "\n",
			  p->last_handshake_sec, p->last_handshake_nsec);
		sb_printf(&b, "tx_bytes=%" PRIu64 "\nrx_bytes=%" PRIu64 "\n", p->tx_bytes, p->rx_bytes);
		sb_printf(&b, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
		for (size_t j = 0; j < p->n_allowed_ips; j++)
			sb_printf(&b, "allowed_ip=%s\n", cidr_format(&p->allowed_ips[j], buf, sizeof(buf)));
	}
	sodium_memzero(hex, sizeof(hex));
	if (b.err) {
		sodium_memzero(b.p, b.cap);
		free(b.p);
		return b.err;
	}
	*out = b.p;
	if (out_len)
		*out_len = b.len;
	return 0;
}

/* ---- server ---------------------------------------------------------------- */

struct uapi_conn {
	struct wg_uapi_server *srv;
	int fd;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off;
	bool closing;		/* close once out is written */
	struct uapi_conn *next;
};

struct wg_uapi_server {
	struct loop *loop;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct wg_uapi_ops *ops;
	void *arg;
	struct uapi_conn *conns;
};

int wg_uapi_socket_path(const char *ifname, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.sock", UAPI_DIR, ifname);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static void wipe_free(char *p, size_t n)
{
	if (p)
		sodium_memzero(p, n);
	free(p);
}

static void conn_free(struct uapi_conn *c)
{
	struct uapi_conn **pp;
	for (pp = &c->srv->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_del_fd(c->srv->loop, c->fd);
	close(c->fd);
	wipe_free(c->in, c->in_cap);
	wipe_free(c->out, c->out_len);
	free(c);
}

/* appends to the pending output */
static int conn_queue(struct uapi_conn *c, const char *data, size_t n)
{
	size_t pending = c->out_len - c->out_off, len = pending + n;
	char *q = malloc(len);
	if (!q)
		return -ENOMEM;
	if (pending)
		memcpy(q, c->out + c->out_off, pending);
	memcpy(q + pending, data, n);
	wipe_free(c->out, c->out_len);
	c->out = q;
	c->out_len = len;
	c->out_off = 0;
	return 0;
}

static int conn_reply(struct uapi_conn *c, const char *body, size_t body_len, int err)
{
	char tail[32];
	int n = snprintf(tail, sizeof(tail), "errno=%d\n\n", err < 0 ? -err : err);
	int rc = body_len ? conn_queue(c, body, body_len) : 0;
	return rc < 0 ? rc : conn_queue(c, tail, (size_t)n);
}

static int do_get(struct uapi_conn *c)
{
	struct wg_uapi_config cfg = { 0 };
	char *text = NULL;
	size_t len = 0;
	int rc = c->srv->ops->get(c->srv->arg, &cfg);
	if (rc == 0)
		rc = wg_uapi_format_get(&cfg, &text, &len);
	wg_uapi_config_clear(&cfg);
	rc = conn_reply(c, rc == 0 ? text : NULL, rc == 0 ? len : 0, rc);
	wipe_free(text, len);
	return rc;
}

static int do_set(struct uapi_conn *c, const char *body, size_t len)
{
	struct wg_uapi_config cfg;
	size_t line_no = 0;
	int rc = wg_uapi_parse_set(body, len, &cfg, &line_no);
	if (rc < 0)
		log_warn("uapi", "set refused line=%zu reason=\"%s\"", line_no, strerror(-rc));
	else
		rc = c->srv->ops->set(c->srv->arg, &cfg);
	wg_uapi_config_clear(&cfg);
	return conn_reply(c, NULL, 0, rc);
}

size_t wg_uapi_next_request(const char *buf, size_t len, struct wg_uapi_request *req)
{
	size_t end, req_len;

	/* the request ends at the first "\n\n" (a get is "get=1\n\n") */
	for (end = 0; end + 1 < len; end++)
		if (buf[end] == '\n' && buf[end + 1] == '\n')
			break;
	if (end + 1 >= len)
		return 0;
	req_len = end + 1;	/* through the first \n */
	memset(req, 0, sizeof(*req));
	if (req_len == 6 && !memcmp(buf, "get=1\n", 6)) {
		req->op = WG_UAPI_OP_GET;
	} else if (req_len >= 6 && !memcmp(buf, "set=1\n", 6)) {
		req->op = WG_UAPI_OP_SET;
		req->body = buf + 6;
		req->body_len = req_len - 6;
	} else {
		req->op = WG_UAPI_OP_UNKNOWN;
	}
	return req_len + 1;
}

/* Handles every complete request in the input buffer. */
static void conn_process(struct uapi_conn *c)
{
	struct wg_uapi_request req;
	size_t start = 0, n;

	while (!c->closing && (n = wg_uapi_next_request(c->in + start, c->in_len - start, &req))) {
		int rc;
		switch (req.op) {
		case WG_UAPI_OP_GET:
			rc = do_get(c);
			break;
		case WG_UAPI_OP_SET:
			rc = do_set(c, req.body, req.body_len);
			break;
		default:
			log_warn("uapi", "unknown operation, closing");
			rc = conn_reply(c, NULL, 0, -EINVAL);
			c->closing = true;
			break;
		}
		if (rc < 0)
			c->closing = true;
		start += n;
	}
	if (start) {
		sodium_memzero(c->in, start);
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
}

static void conn_flush(struct uapi_conn *c);

static void conn_cb(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct uapi_conn *c = arg;
	(void)loop;
	(void)fd;
	if (events & LOOP_READ) {
		for (;;) {
			if (c->in_cap - c->in_len < 4096) {
				size_t cap = c->in_cap ? 2 * c->in_cap : 8192;
				if (cap > WG_UAPI_MAX_REQUEST) {
					log_warn("uapi", "request too large, closing");
					conn_free(c);
					return;
				}
				char *q = malloc(cap);
				if (!q) {
					conn_free(c);
					return;
				}
				if (c->in)
					memcpy(q, c->in, c->in_len);
				wipe_free(c->in, c->in_cap);
				c->in = q;
				c->in_cap = cap;
			}
			ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (n > 0) {
				c->in_len += (size_t)n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			/* EOF or error: answer what is complete, then go */
			c->closing = true;
			break;
		}
		bool was_closing = c->closing;
		c->closing = false;
		conn_process(c);
		c->closing |= was_closing;
	} else if (events & (LOOP_ERROR | LOOP_HUP)) {
		c->closing = true;
	}
	conn_flush(c);
}

static void conn_flush(struct uapi_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_mod_fd(c->srv->loop, c->fd, LOOP_READ | LOOP_WRITE);
				return;
			}
			conn_free(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	wipe_free(c->out, c->out_len);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->closing) {
		conn_free(c);
		return;
	}
	loop_mod_fd(c->srv->loop, c->fd, LOOP_READ);
}

static void accept_cb(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct wg_uapi_server *s = arg;
	(void)events;
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("uapi", "accept failed reason=\"%s\"", strerror(errno));
			if (errno == EINTR)
				continue;
			return;
		}
		struct uapi_conn *c = calloc(1, sizeof(*c));
		if (!c || loop_add_fd(loop, cfd, LOOP_READ, conn_cb, c) < 0) {
			free(c);
			close(cfd);
			continue;
		}
		c->srv = s;
		c->fd = cfd;
		c->next = s->conns;
		s->conns = c;
	}
}

int wg_uapi_server_new(struct loop *loop, const char *path, const struct wg_uapi_ops *ops, void *arg,
		       struct wg_uapi_server **out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct wg_uapi_server *s;
	char dir[sizeof(sun.sun_path)];
	char *slash;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->ops = ops;
	s->arg = arg;
	strcpy(s->path, path);
	strcpy(sun.sun_path, path);

	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			goto err_free;
		}
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		goto err_free;
	}
	/* a socket file left by a dead daemon: wg would connect to nothing */
	unlink(path);
	mode_t old = umask(0077);
	rc = bind(s->fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc < 0 || listen(s->fd, 16) < 0) {
		rc = -errno;
		goto err_close;
	}
	rc = loop_add_fd(loop, s->fd, LOOP_READ, accept_cb, s);
	if (rc < 0)
		goto err_unlink;
	*out = s;
	return 0;

err_unlink:
	unlink(path);
err_close:
	close(s->fd);
err_free:
	free(s);
	return rc;
}

void wg_uapi_server_free(struct wg_uapi_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_free(s->conns);
	loop_del_fd(s->loop, s->fd);
	close(s->fd);
	unlink(s->path);
	free(s);
}
