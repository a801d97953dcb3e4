/* svcload: load generator and test client for meshsvc, over plain HTTP/1.1 on
 * raw non-blocking sockets and one epoll (no thread or libcurl handle per
 * request, so 10,000 concurrent long polls are cheap).
 *
 *   svcload register URL REGKEY_FILE N CONCURRENCY OUT_FILE
 *       registers N fresh X25519 (WireGuard) keys, CONCURRENCY at a time, and
 *       appends one line per acknowledged device to OUT_FILE as soon as the
 *       answer arrives: "id tunnel_ip public_key private_key device_token".
 *   svcload watch URL ADMIN_TOKEN_FILE VPC_ID DEVICES_FILE N [GROUP_ID BODY]
 *       opens N long polls (each with its own device's token from a register
 *       OUT_FILE, from source addresses 127.2.x.y on loopback, so meshsvc's
 *       per-address limit holds), waits until meshsvc reports them all
 *       parked, PATCHes the first device (or, with GROUP_ID, that security
 *       group with BODY, as the admin: a policy change, which answers every
 *       poll), and reports how long each poll took to answer.
 *   svcload poll URL TOKEN_FILE VPC_ID CONCURRENCY OUT_FILE
 *       long-polls the VPC's peer list on CONCURRENCY connections, each asking
 *       again with the revision of its last answer, until the service goes
 *       away, and appends the id of every device an answer showed to OUT_FILE.
 *   svcload open-token PRIVATE_KEY_FILE SEALED
 *       opens a device token sealed to a WireGuard key (as `wg genkey` writes
 *       it) and prints it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "service/token.h"

#define MAX_RESPONSE (8 * 1024 * 1024)
#define CONNECTS_IN_FLIGHT 256

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	fprintf(stderr, "svcload: %s\n", what);
	exit(1);
}

/* one HTTP/1.1 exchange on its own connection */
struct conn {
	int fd;
	bool sent;		/* the request went out (watch counts it once) */
	int ep;
	bool want_out;		/* EPOLLOUT is armed */
	char *out;
	size_t out_len, out_off;
	char *in;
	size_t in_len, in_cap;
	int status;
	size_t body_off;	/* where the body starts, once the head is in */
	size_t body_len;
	int64_t t_done;
	size_t job;
	bool spread;		/* from its own loopback source address (watch) */
};

static union sockaddr_any server;
static char host_header[ADDR_STRLEN];

static void parse_url(const char *url)
{
	if (strncmp(url, "http://", 7))
		die("only http://IP:PORT URLs");
	snprintf(host_header, sizeof(host_header), "%s", url + 7);
	host_header[strcspn(host_header, "/")] = 0;
	if (addr_parse(host_header, &server) < 0)
		die("the URL must be http://IP:PORT");
}

static char *read_token_file(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		die("cannot read a token file");
	fclose(f);
	buf[strcspn(buf, " \r\n")] = 0;
	return buf;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void conn_request(struct conn *c, const char *method, const char *path, const char *token,
			 const char *body)
{
	size_t blen = body ? strlen(body) : 0;
	free(c->out);
	c->out_len = (size_t)asprintf(&c->out,
				      "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
				      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
				      method, path, host_header, token, blen, body ? body : "");
	c->out_off = 0;
	c->in_len = 0;
	if (c->in)
		c->in[0] = 0; /* the last answer must not be parsed again */
	c->status = 0;
	c->body_off = 0;
}

static int conn_open(struct conn *c, int ep)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
	int one = 1;
	c->fd = socket(server.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->spread && server.sa.sa_family == AF_INET && (ntohl(server.in.sin_addr.s_addr) >> 24) == 127) {
		/* 128 connections per source address: under meshsvc's per-address limit */
		struct sockaddr_in src = { .sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(0x7f020001u + (uint32_t)(c->job / 128)) };
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			int rc = -errno;
			close(c->fd);
			c->fd = -1;
			return rc;
		}
	}
	c->sent = false;
	c->ep = ep;
	c->want_out = true;
	if (connect(c->fd, &server.sa, addr_len(&server)) < 0 && errno != EINPROGRESS) {
		int rc = -errno;
		close(c->fd);
		c->fd = -1;
		return rc;
	}
	return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* 1 when the whole response is in, 0 for more, <0 on failure */
static int conn_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
		return -ECONNRESET;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n < 0)
			break;
		c->out_off += (size_t)n;
	}
	/* level-triggered: ask for writability only while something waits to go */
	bool want_out = c->out_off < c->out_len;
	if (want_out != c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c };
		epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want_out;
	}
	if (want_out)
		return 0;
	bool eof = false;
	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
			if (c->in_cap > MAX_RESPONSE || !(c->in = realloc(c->in, c->in_cap)))
				return -EFBIG;
		}
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
		if (n == 0) {
			eof = true;
			break;
		}
		if (n < 0) {
			if (errno != EAGAIN)
				return -errno;
			break;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = 0;
	}
	if (!c->body_off) {
		char *end = strstr(c->in, "\r\n\r\n"), *cl;
		if (!end)
			return eof ? -ECONNRESET : 0;
		*end = 0;
		c->status = atoi(c->in + 9);
		cl = strcasestr(c->in, "\r\nContent-Length:");
		c->body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
		*end = '\r';
		c->body_off = (size_t)(end + 4 - c->in);
	}
	if (c->in_len < c->body_off + c->body_len)
		return eof ? -ECONNRESET : 0;
	c->t_done = now_us();
	return 1;
}

static void conns_free(struct conn *conns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		conn_close(&conns[i]);
		free(conns[i].out);
		free(conns[i].in);
	}
	free(conns);
}

static const char *conn_body(const struct conn *c)
{
	return c->in + c->body_off;
}

/* the value of "key":"value" in a flat JSON text, into out */
static bool json_field(const char *json, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t n;
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (!(p = strstr(json, pat)))
		return false;
	p += strlen(pat);
	n = strcspn(p, "\"");
	if (n >= len)
		return false;
	memcpy(out, p, n);
	out[n] = 0;
	return true;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* --- register ------------------------------------------------------------------- */

struct keypair {
	uint8_t pk[32], sk[32];
};

static void start_registration(struct conn *c, const struct keypair *kp, const char *regkey, size_t job)
{
	char pub[WG_KEY_B64LEN], body[160];
	wgkey_format(kp->pk, pub);
	snprintf(body, sizeof(body), "{\"public_key\":\"%s\",\"hostname\":\"load-%zu\",\"os\":\"linux\"}", pub, job);
	conn_request(c, "POST", "/api/devices", regkey, body);
	c->job = job;
}

/* the acknowledged device, as one line of OUT_FILE */
static int record(FILE *out, const struct conn *c, const struct keypair *kp)
{
	char id[64], ip[64], sealed[TOKEN_SEALED_B64LEN], token[TOKEN_STRLEN];
	char pub[WG_KEY_B64LEN], priv[WG_KEY_B64LEN];
	if (!json_field(conn_body(c), "id", id, sizeof(id)) ||
	    !json_field(conn_body(c), "tunnel_ip", ip, sizeof(ip)) ||
	    !json_field(conn_body(c), "device_token", sealed, sizeof(sealed)) ||
	    token_open(sealed, kp->pk, kp->sk, token) < 0)
		return -EBADMSG;
	wgkey_format(kp->pk, pub);
	wgkey_format(kp->sk, priv);
	fprintf(out, "%s %s %s %s %s\n", id, ip, pub, priv, token);
	return 0;
}

static int cmd_register(int argc, char **argv)
{
	if (argc != 7)
		die("usage: svcload register URL REGKEY_FILE N CONCURRENCY OUT_FILE");
	parse_url(argv[2]);
	const char *regkey = read_token_file(argv[3]);
	size_t n = strtoul(argv[4], NULL, 10), conc = strtoul(argv[5], NULL, 10), next = 0, done = 0;
	size_t ok = 0, failed = 0, by_status[600] = { 0 };
	FILE *out = fopen(argv[6], "a");
	struct keypair *keys = calloc(n, sizeof(*keys));
	struct conn *conns = calloc(conc, sizeof(*conns));
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!out || !keys || !conns || ep < 0 || !n || !conc)
		die("cannot start");
	for (size_t i = 0; i < conc; i++)
		conns[i].fd = -1;
	setvbuf(out, NULL, _IOLBF, 0);
	for (size_t i = 0; i < n; i++)
		crypto_box_keypair(keys[i].pk, keys[i].sk);
	int64_t t0 = now_us();
	for (size_t i = 0; i < conc && next < n; i++) {
		conns[i].fd = -1;
		start_registration(&conns[i], &keys[next], regkey, next);
		next++;
		if (conn_open(&conns[i], ep) < 0) {
			failed++;
			done++;
		}
	}
	while (done < n) {
		int k = epoll_wait(ep, evs, 256, 5000);
		if (k == 0)
			die("no progress for 5 s");
		for (int e = 0; e < k; e++) {
			struct conn *c = evs[e].data.ptr;
			uint32_t events = evs[e].events;
			int rc;
			/* a kept-alive connection sends the next request at once, and
			 * its answer may be read in the same call */
			while ((rc = conn_event(c, events)) != 0) {
				done++;
				if (rc > 0 && c->status > 0 && c->status < 600)
					by_status[c->status]++;
				if (rc > 0 && (c->status == 201 || c->status == 200) && record(out, c, &keys[c->job]) == 0) {
					ok++;
				} else {
					failed++;
					if (failed <= 3)
						fprintf(stderr, "svcload: registration failed: %s\n",
							rc < 0 ? strerror(-rc) : conn_body(c));
				}
				if (next >= n)
					break;
				/* a failed connection, or the server's wish to close, ends it */
				bool reopen = rc < 0 || strcasestr(c->in, "\r\nConnection: close");
				start_registration(c, &keys[next], regkey, next);
				next++;
				events = EPOLLOUT;
				if (reopen) {
					conn_close(c);
					if (conn_open(c, ep) < 0) {
						failed++;
						done++;
					}
					break;
				}
			}
		}
	}
	double secs = (double)(now_us() - t0) / 1e6;
	printf("registered=%zu failed=%zu seconds=%.3f per_second=%.0f", ok, failed, secs, (double)ok / secs);
	for (int s = 100; s < 600; s++)
		if (by_status[s])
			printf(" status_%d=%zu", s, by_status[s]);
	printf("\n");
	fclose(out);
	sodium_memzero(keys, n * sizeof(*keys));
	free(keys);
	conns_free(conns, conc);
	close(ep);
	return failed ? 1 : 0;
}

/* --- watch ----------------------------------------------------------------------- */

/* a blocking GET on a fresh connection; the body into out (malloc'd) */
static int simple_request(const char *method, const char *path, const char *token, const char *body,
			  char **out)
{
	struct conn c = { .fd = -1 };
	struct epoll_event ev;
	int ep = epoll_create1(EPOLL_CLOEXEC), rc = 0;
	conn_request(&c, method, path, token, body);
	if (conn_open(&c, ep) < 0)
		die("cannot connect");
	while (rc == 0) {
		if (epoll_wait(ep, &ev, 1, 10000) != 1)
			die("request timed out");
		rc = conn_event(&c, ev.events);
	}
	if (rc < 0)
		die("request failed");
	*out = strdup(conn_body(&c));
	conn_close(&c);
	close(ep);
	free(c.out);
	free(c.in);
	return c.status;
}

static long metric(const char *text, const char *name)
{
	char pat[128];
	const char *p;
	snprintf(pat, sizeof(pat), "\n%s ", name);
	return (p = strstr(text, pat)) ? atol(p + strlen(pat)) : -1;
}

static int cmd_watch(int argc, char **argv)
{
	if (argc != 7 && argc != 9)
		die("usage: svcload watch URL ADMIN_TOKEN_FILE VPC_ID DEVICES_FILE N [GROUP_ID BODY]");
	const char *group = argc == 9 ? argv[7] : NULL;
	parse_url(argv[2]);
	char admin[256];
	snprintf(admin, sizeof(admin), "%s", read_token_file(argv[3]));
	const char *vpc = argv[4];
	size_t n = strtoul(argv[6], NULL, 10), opened = 0, answered = 0, failed = 0, parked = 0, connecting = 0;
	char (*tokens)[TOKEN_STRLEN] = calloc(n, TOKEN_STRLEN), id0[64] = "", line[512], path[256], *text;
	struct conn *conns = calloc(n, sizeof(*conns));
	int64_t *lat = calloc(n, sizeof(*lat));
	struct epoll_event evs[512];
	FILE *f = fopen(argv[5], "r");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t have = 0;

	if (!tokens || !conns || !lat || !f || ep < 0 || !n)
		die("cannot start");
	while (have < n && fgets(line, sizeof(line), f)) {
		char id[64], ip[64], pub[64], priv[64], tok[64];
		if (sscanf(line, "%63s %63s %63s %63s %63s", id, ip, pub, priv, tok) != 5 ||
		    strlen(tok) != TOKEN_STRLEN - 1)
			continue;
		if (!have)
			memcpy(id0, id, sizeof(id));
		memcpy(tokens[have++], tok, TOKEN_STRLEN);
	}
	fclose(f);
	if (have < n)
		die("the devices file has fewer devices than N");

	snprintf(path, sizeof(path), "/api/vpcs/%s/devices", vpc);
	if (simple_request("GET", path, tokens[0], NULL, &text) != 200)
		die("cannot read the peer list");
	long rev = strstr(text, "\"revision\":") ? atol(strstr(text, "\"revision\":") + 11) : -1;
	free(text);
	snprintf(path, sizeof(path), "/api/vpcs/%s/devices?since=%ld&wait=120", vpc, rev);

	/* open the polls, a bounded number of handshakes at a time */
	int64_t t_open = now_us();
	while (parked < n) {
		while (opened < n && connecting < CONNECTS_IN_FLIGHT) {
			conns[opened].fd = -1;
			conn_request(&conns[opened], "GET", path, tokens[opened], NULL);
			conns[opened].job = opened;
			conns[opened].spread = true;
			if (conn_open(&conns[opened], ep) < 0)
				die("cannot open a connection (ulimit -n?)");
			opened++;
			connecting++;
		}
		int k = epoll_wait(ep, evs, 512, 10000);
		if (k <= 0)
			die("opening the polls stalled");
		for (int e = 0; e < k; e++) {
			struct conn *c = evs[e].data.ptr;
			int rc = conn_event(c, evs[e].events);
			if (rc != 0) {
				fprintf(stderr, "svcload: a poll ended early: %s\n", rc < 0 ? strerror(-rc) : conn_body(c));
				exit(1);
			}
			if (c->out_off == c->out_len && !c->sent) {
				c->sent = true;
				connecting--;
				parked++;
			}
		}
	}
	/* sent is not parked: ask the service until it holds them all */
	for (int tries = 0;; tries++) {
		long w;
		simple_request("GET", "/metrics", admin, NULL, &text);
		w = metric(text, "meshsvc_watch_waiters");
		free(text);
		if (w >= (long)n)
			break;
		if (tries > 600)
			die("the service never held all the polls");
		usleep(50000);
	}
	fprintf(stderr, "svcload: %zu polls parked in %.2f s\n", n, (double)(now_us() - t_open) / 1e6);

	/* the change that every poll waits for: a device's, or a policy change
	 * (each answer then names every device, seen or in deleted) */
	struct conn patch = { .fd = -1 };
	char body[256];
	unsigned port = 1024 + (unsigned)(now_us() % 60000);
	if (group) {
		snprintf(path, sizeof(path), "/api/security-groups/%s", group);
		conn_request(&patch, "PATCH", path, admin, argv[8]);
	} else {
		snprintf(body, sizeof(body), "{\"endpoints\":[{\"source\":\"local\",\"address\":\"192.0.2.1:%u\"}]}",
			 port);
		snprintf(path, sizeof(path), "/api/devices/%s", id0);
		conn_request(&patch, "PATCH", path, tokens[0], body);
	}
	int64_t t0 = now_us();
	if (conn_open(&patch, ep) < 0)
		die("cannot connect for the PATCH");
	int64_t t_patch = 0;
	while (answered + failed < n || !t_patch) {
		int k = epoll_wait(ep, evs, 512, 10000);
		if (k <= 0)
			die("answers stalled");
		for (int e = 0; e < k; e++) {
			struct conn *c = evs[e].data.ptr;
			int rc = conn_event(c, evs[e].events);
			if (rc == 0)
				continue;
			conn_close(c);
			if (c == &patch) {
				if (rc < 0 || c->status != 200)
					die("the PATCH failed");
				t_patch = c->t_done - t0;
				continue;
			}
			/* a device's change names it in every answer; a policy
			 * change answers each poll with what it changed for it */
			if (rc > 0 && c->status == 200 && (group || strstr(conn_body(c), id0)))
				lat[answered++] = c->t_done - t0;
			else
				failed++;
		}
	}
	qsort(lat, answered, sizeof(*lat), cmp_i64);
	printf("waiters=%zu answered=%zu failed=%zu patch_ms=%.1f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", n,
	       answered, failed, (double)t_patch / 1e3, answered ? (double)lat[answered / 2] / 1e3 : -1.0,
	       answered ? (double)lat[(answered * 99) / 100] / 1e3 : -1.0,
	       answered ? (double)lat[answered - 1] / 1e3 : -1.0);
	conns_free(conns, n);
	free(patch.out);
	free(patch.in);
	free(tokens);
	free(lat);
	close(ep);
	return failed ? 1 : 0;
}

/* --- poll -------------------------------------------------------------------------- */

/* the ids of the devices in a peer list, one a line ("vpc_id" does not match) */
static size_t record_ids(FILE *out, const char *body)
{
	const char *p = body;
	size_t n = 0, len;
	while ((p = strstr(p, "\"id\":\""))) {
		p += 6;
		len = strcspn(p, "\"");
		fprintf(out, "%.*s\n", (int)len, p);
		p += len;
		n++;
	}
	return n;
}

static void start_poll(struct conn *c, const char *token, const char *vpc, long rev)
{
	char path[256];
	if (rev < 0)
		snprintf(path, sizeof(path), "/api/vpcs/%s/devices", vpc);
	else
		snprintf(path, sizeof(path), "/api/vpcs/%s/devices?since=%ld&wait=5", vpc, rev);
	conn_request(c, "GET", path, token, NULL);
}

static int cmd_poll(int argc, char **argv)
{
	if (argc != 7)
		die("usage: svcload poll URL TOKEN_FILE VPC_ID CONCURRENCY OUT_FILE");
	parse_url(argv[2]);
	char token[256];
	snprintf(token, sizeof(token), "%s", read_token_file(argv[3]));
	const char *vpc = argv[4];
	size_t conc = strtoul(argv[5], NULL, 10), live = 0, polls = 0, shown = 0;
	FILE *out = fopen(argv[6], "a");
	struct conn *conns = calloc(conc, sizeof(*conns));
	long *rev = calloc(conc, sizeof(*rev));
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!out || !conns || !rev || ep < 0 || !conc)
		die("cannot start");
	setvbuf(out, NULL, _IOLBF, 0);
	for (size_t i = 0; i < conc; i++) {
		conns[i].fd = -1;
		conns[i].job = i;
		rev[i] = -1;
		start_poll(&conns[i], token, vpc, rev[i]);
		if (conn_open(&conns[i], ep) == 0)
			live++;
	}
	while (live > 0) {
		int k = epoll_wait(ep, evs, 256, 10000);
		if (k == 0)
			die("no answer for 10 s");
		for (int e = 0; e < k; e++) {
			struct conn *c = evs[e].data.ptr;
			uint32_t events = evs[e].events;
			int rc;
			while ((rc = conn_event(c, events)) > 0 && c->status == 200) {
				const char *r = strstr(conn_body(c), "\"revision\":");
				shown += record_ids(out, conn_body(c));
				polls++;
				if (r)
					rev[c->job] = atol(r + 11);
				start_poll(c, token, vpc, rev[c->job]);
				events = EPOLLOUT;
			}
			/* the service went away (or refused): this poller is done */
			if (rc != 0) {
				conn_close(c);
				live--;
			}
		}
	}
	printf("polls=%zu shown=%zu\n", polls, shown);
	fclose(out);
	conns_free(conns, conc);
	free(rev);
	close(ep);
	return 0;
}

/* --- open-token ---------------------------------------------------------------- */

static int cmd_open_token(int argc, char **argv)
{
	uint8_t sk[32], pk[32];
	char token[TOKEN_STRLEN];
	if (argc != 4)
		die("usage: svcload open-token PRIVATE_KEY_FILE SEALED");
	if (wgkey_parse(read_token_file(argv[2]), sk) < 0)
		die("not a WireGuard private key");
	crypto_scalarmult_base(pk, sk);
	if (token_open(argv[3], pk, sk, token) < 0)
		die("the token does not open with this key");
	printf("%s\n", token);
	sodium_memzero(sk, sizeof(sk));
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		die("libsodium failed to initialize");
	raise_nofile();
	if (argc >= 2 && !strcmp(argv[1], "register"))
		return cmd_register(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "watch"))
		return cmd_watch(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "poll"))
		return cmd_poll(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "open-token"))
		return cmd_open_token(argc, argv);
	die("usage: svcload register|watch|poll|open-token ... (see the top of svcload.c)");
	return 2;
}
