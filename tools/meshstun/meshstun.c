/* meshstun: a STUN server (RFC 8489 Binding) with the RFC 5780 NAT behaviour
 * discovery extensions. The protocol is lib/stun (stun_server_answer); this
 * file is the I/O around it: sockets through netio, the event loop, a per
 * source IP token bucket against reflection/amplification, counters.
 *
 *   meshstun --listen 203.0.113.1:3478 --listen 203.0.113.2:3478 --rfc5780
 *
 * opens 203.0.113.1:3478, 203.0.113.1:3479, 203.0.113.2:3478 and
 * 203.0.113.2:3479 (RFC 5780 section 4: primary and alternate address, each
 * with a primary and an alternate port). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "log.h"
#include "loop.h"
#include "netio.h"
#include "stun/stun.h"

#define COMPONENT "meshstun"
#define SOFTWARE "natmesh meshstun"
#define MAX_LISTEN 2
#define MAX_SOCKS 4
#define MAX_THREADS NETIO_GROUP_MAX
#define PKT_CAP 2048
/* batches read per wake-up and socket before the loop looks at the others */
#define MAX_BATCHES_PER_WAKE 16
/* rate-limiter slots (direct-mapped on a keyed hash of the source IP) */
#define BUCKET_SLOTS 16384

enum { DEFAULT_RATE = 50, DEFAULT_BURST = 100, DEFAULT_MAX_PADDING = 1400 };

struct bucket {
	uint8_t ip[16];
	uint8_t used;
	double tokens;
	uint64_t last_ms;
};

struct counters {
	uint64_t received;
	uint64_t answered;		/* success responses sent */
	uint64_t errors_sent;		/* 400/420 error responses sent */
	uint64_t ignored;		/* valid STUN that needs no answer */
	uint64_t malformed;
	uint64_t by_error[32];		/* malformed, by -(err) - 5000 */
	uint64_t rate_limited;
	uint64_t send_failed;
	uint64_t truncated;		/* larger than PKT_CAP */
};

struct server;
struct worker;

struct sock {
	struct worker *w;
	struct stun_server_cfg *cfg;	/* the group this socket serves */
	struct netio_udp *udp;
	int ip, port;			/* index in its group */
	struct sock *group[STUN_SRV_IPS][STUN_SRV_PORTS];
	union sockaddr_any local;
	/* answers waiting to leave through this socket */
	struct netio_pkt out[NETIO_BATCH_MAX];
	uint8_t out_buf[NETIO_BATCH_MAX][PKT_CAP];
	int nout;
};

/* one thread: its loop, its socket of every address, its counters and its
 * rate limiter (the kernel steers each source IP to one thread) */
struct worker {
	struct server *srv;
	int id;
	struct loop *loop;
	pthread_t thread;
	int started;
	int stop_fd;			/* eventfd: the main thread asks to stop */
	int nsocks;
	struct sock socks[MAX_SOCKS];
	struct netio_pkt in[NETIO_BATCH_MAX];
	uint8_t in_buf[NETIO_BATCH_MAX][PKT_CAP];
	struct counters c;
	struct bucket *buckets;
	/* malformed-packet log: at most one line per second and thread */
	uint64_t log_window_ms;
	uint64_t log_suppressed;
	int rc;				/* what its loop returned */
};

struct server {
	struct netio *io;
	int ncfgs;
	struct stun_server_cfg cfgs[MAX_LISTEN];
	/* rate limiting: responses per second and burst per source IP, 0 = off */
	double rate;
	double burst;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	/* --one-socket: answers leave through the receiving socket */
	int one_socket;
	int nworkers;
	struct worker *workers;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshstun --listen IP:PORT [--listen IP:PORT] [--rfc5780]\n"
		"                [--rate N] [--burst N] [--max-padding N]\n"
		"                [--threads N] [--one-socket]\n"
		"                [--log-format text|json] [--verbose] [--help]\n"
		"\n"
		"A STUN server (RFC 8489): answers Binding requests with XOR-MAPPED-ADDRESS,\n"
		"MAPPED-ADDRESS, SOFTWARE and FINGERPRINT.\n"
		"\n"
		"  --listen IP:PORT   address to serve (IPv4 or [IPv6]); given twice, both\n"
		"  --rfc5780          NAT behaviour discovery (RFC 5780): needs two --listen\n"
		"                     addresses with different IPs of one family and the same\n"
		"                     port P; opens IP1:P, IP1:P+1, IP2:P, IP2:P+1 and serves\n"
		"                     OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST,\n"
		"                     RESPONSE-PORT and PADDING\n"
		"  --rate N           responses per second per source IP (default %d; 0: no limit)\n"
		"  --burst N          token bucket depth per source IP (default %d)\n"
		"  --max-padding N    largest PADDING echoed in a response (default %d)\n"
		"  --threads N        N threads (1..%d; default: one per CPU it may run on),\n"
		"                     each with its own socket of every address; the\n"
		"                     kernel keeps each source IP on one thread\n"
		"  --one-socket       send answers from the receiving socket instead of a\n"
		"                     send-only twin on the same address (the twin saves a\n"
		"                     wake-up per answer; this is for comparison)\n"
		"  --log-format F     text (default) or json\n"
		"  --verbose          debug logs\n"
		"\n"
		"Malformed packets are dropped and counted; counters are logged on exit.\n"
		"SIGTERM or SIGINT stop the server (exit status 0).\n",
		DEFAULT_RATE, DEFAULT_BURST, DEFAULT_MAX_PADDING, MAX_THREADS);
}

/* --- rate limiting ------------------------------------------------------- */

/* true when src may get one more response now */
static bool rate_allow(struct worker *w, const union sockaddr_any *src, uint64_t now)
{
	const struct server *s = w->srv;
	size_t n;
	const uint8_t *ip;
	uint8_t key[16] = { 0 }, h[crypto_shorthash_BYTES];

	if (s->rate <= 0)
		return true;
	ip = addr_ip_bytes(src, &n);
	if (!ip)
		return false;
	memcpy(key, ip, n);
	crypto_shorthash(h, key, sizeof(key), s->hash_key);
	uint64_t slot;
	memcpy(&slot, h, sizeof(slot));
	struct bucket *b = &w->buckets[slot % BUCKET_SLOTS];
	if (!b->used || memcmp(b->ip, key, sizeof(key))) {
		/* a new source (or one that displaced a colder one) starts full */
		memcpy(b->ip, key, sizeof(key));
		b->used = 1;
		b->tokens = s->burst;
		b->last_ms = now;
	}
	b->tokens += (double)(now - b->last_ms) * s->rate / 1000.0;
	if (b->tokens > s->burst)
		b->tokens = s->burst;
	b->last_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* --- datagrams ------------------------------------------------------------ */

static void log_malformed(struct worker *w, const union sockaddr_any *src, int err, uint64_t now)
{
	char a[ADDR_STRLEN];

	if (now < w->log_window_ms + 1000) {
		w->log_suppressed++;
		return;
	}
	log_info(COMPONENT, "dropped malformed packet src=%s reason=\"%s\" suppressed=%llu",
		 addr_format(src, a, sizeof(a)), stun_strerror(err),
		 (unsigned long long)w->log_suppressed);
	w->log_window_ms = now;
	w->log_suppressed = 0;
}

static void flush(struct worker *w, struct sock *k)
{
	if (!k->nout)
		return;
	int sent = netio_udp_send(w->srv->io, k->udp, k->out, k->nout);
	if (sent < 0)
		sent = 0;
	w->c.send_failed += (uint64_t)(k->nout - sent);
	k->nout = 0;
}

static void handle(struct worker *w, struct sock *k, struct netio_pkt *p, uint64_t now)
{
	struct stun_server_reply r;

	w->c.received++;
	if (p->len == 0) {
		w->c.truncated++;
		return;
	}
	/* which socket answers is known only after parsing (CHANGE-REQUEST):
	 * build in scratch space, then queue on that socket */
	uint8_t out[PKT_CAP];
	stun_server_answer(k->cfg, k->ip, k->port, &p->addr, p->data, p->len, out, sizeof(out), &r);
	if (r.verdict == STUN_SRV_DROP) {
		if (r.err) {
			w->c.malformed++;
			int idx = -r.err - 5000;
			if (idx >= 0 && idx < 32)
				w->c.by_error[idx]++;
			log_malformed(w, &p->addr, r.err, now);
		} else {
			w->c.ignored++;
		}
		return;
	}
	if (!rate_allow(w, &r.dst, now)) {
		w->c.rate_limited++;
		return;
	}
	struct sock *via = k->group[r.ip][r.port];
	if (!via) {
		w->c.send_failed++;
		return;
	}
	if (via->nout == NETIO_BATCH_MAX)
		flush(w, via);
	struct netio_pkt *o = &via->out[via->nout++];
	memcpy(o->data, out, r.len);
	o->len = r.len;
	o->addr = r.dst;
	if (r.is_error)
		w->c.errors_sent++;
	else
		w->c.answered++;
}

static void on_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct sock *k = arg;
	struct worker *w = k->w;
	uint64_t now = loop_now(loop);
	(void)fd;
	(void)events;

	for (int b = 0; b < MAX_BATCHES_PER_WAKE; b++) {
		for (int i = 0; i < NETIO_BATCH_MAX; i++)
			w->in[i].len = 0;
		int n = netio_udp_recv(w->srv->io, k->udp, w->in, NETIO_BATCH_MAX);
		if (n < 0) {
			log_warn(COMPONENT, "receive failed err=\"%s\"", strerror(-n));
			break;
		}
		for (int i = 0; i < n; i++)
			handle(w, k, &w->in[i], now);
		for (int i = 0; i < w->nsocks; i++)
			flush(w, &w->socks[i]);
		if (n < NETIO_BATCH_MAX)
			break;
	}
}

static void on_stop(struct loop *loop, int fd, uint32_t events, void *arg)
{
	uint64_t v;
	(void)events;
	(void)arg;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn(COMPONENT, "stop eventfd read failed err=\"%s\"", strerror(errno));
	loop_stop(loop);
}

/* every loop: the first one here, the others through their eventfd */
static void stop_all(struct server *s)
{
	uint64_t one = 1;

	for (int i = 1; i < s->nworkers; i++)
		if (write(s->workers[i].stop_fd, &one, sizeof(one)) < 0)
			log_warn(COMPONENT, "cannot stop thread %d err=\"%s\"", i, strerror(errno));
	loop_stop(s->workers[0].loop);
}

static void on_signal(struct loop *loop, int signo, void *arg)
{
	(void)loop;
	log_info(COMPONENT, "stopping signal=%s", signo == SIGTERM ? "TERM" : "INT");
	stop_all(arg);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->rc = loop_run(w->loop);
	return NULL;
}

/* --- setup and teardown --------------------------------------------------- */

/* one address: a group of one socket per thread */
static int open_addr(struct server *s, struct stun_server_cfg *cfg, int ip, int port)
{
	struct netio_udp *udps[MAX_THREADS];
	char a[ADDR_STRLEN];
	int rc;

	rc = netio_udp_open_group(s->io, &cfg->addrs[ip][port], s->one_socket ? 0 : NETIO_UDP_SEND_TWIN,
				  s->nworkers, udps);
	if (rc < 0) {
		log_error(COMPONENT, "cannot open socket addr=%s err=\"%s\"",
			  addr_format(&cfg->addrs[ip][port], a, sizeof(a)), strerror(-rc));
		return rc;
	}
	for (int t = 0; t < s->nworkers; t++) {
		struct worker *w = &s->workers[t];
		struct sock *k = &w->socks[w->nsocks];

		memset(k, 0, sizeof(*k));
		k->w = w;
		k->cfg = cfg;
		k->ip = ip;
		k->port = port;
		k->udp = udps[t];
		netio_udp_local(s->io, k->udp, &k->local);
		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			k->out[i].data = k->out_buf[i];
			k->out[i].cap = PKT_CAP;
		}
		rc = loop_add_fd(w->loop, netio_udp_fd(s->io, k->udp), LOOP_READ, on_readable, k);
		if (rc < 0) {
			/* the sockets not yet handed to a worker */
			for (int u = t; u < s->nworkers; u++)
				netio_udp_close(s->io, udps[u]);
			return rc;
		}
		w->nsocks++;
	}
	/* port 0 in --listen: the kernel's choice is the address we serve */
	cfg->addrs[ip][port] = s->workers[0].socks[s->workers[0].nsocks - 1].local;
	log_info(COMPONENT, "listening addr=%s", addr_format(&cfg->addrs[ip][port], a, sizeof(a)));
	return 0;
}

static void close_socks(struct server *s, struct worker *w)
{
	while (w->nsocks > 0) {
		struct sock *k = &w->socks[--w->nsocks];
		loop_del_fd(w->loop, netio_udp_fd(s->io, k->udp));
		netio_udp_close(s->io, k->udp);
	}
}

/* link each socket of a worker to the sockets of its group, by [ip][port] */
static void link_groups(struct worker *w)
{
	for (int i = 0; i < w->nsocks; i++)
		for (int j = 0; j < w->nsocks; j++)
			if (w->socks[j].cfg == w->socks[i].cfg)
				w->socks[i].group[w->socks[j].ip][w->socks[j].port] = &w->socks[j];
}

static int worker_init(struct server *s, struct worker *w, int id)
{
	int rc;

	w->srv = s;
	w->id = id;
	w->buckets = calloc(BUCKET_SLOTS, sizeof(*w->buckets));
	if (!w->buckets)
		return -ENOMEM;
	for (int i = 0; i < NETIO_BATCH_MAX; i++) {
		w->in[i].data = w->in_buf[i];
		w->in[i].cap = PKT_CAP;
	}
	if ((rc = loop_new(&w->loop)) < 0)
		return rc;
	if (id > 0) {
		w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->stop_fd < 0)
			return -errno;
		if ((rc = loop_add_fd(w->loop, w->stop_fd, LOOP_READ, on_stop, w)) < 0)
			return rc;
	}
	return 0;
}

static void worker_free(struct server *s, struct worker *w)
{
	if (w->loop) {
		close_socks(s, w);
		if (w->stop_fd >= 0)
			loop_del_fd(w->loop, w->stop_fd);
		loop_free(w->loop);
	}
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	free(w->buckets);
}

static void log_counters(const struct server *s)
{
	struct counters c = { 0 };

	for (int t = 0; t < s->nworkers; t++) {
		const struct counters *x = &s->workers[t].c;
		c.received += x->received;
		c.answered += x->answered;
		c.errors_sent += x->errors_sent;
		c.ignored += x->ignored;
		c.malformed += x->malformed;
		c.rate_limited += x->rate_limited;
		c.send_failed += x->send_failed;
		c.truncated += x->truncated;
		for (int i = 0; i < 32; i++)
			c.by_error[i] += x->by_error[i];
	}
	log_info(COMPONENT, "counters received=%llu answered=%llu errors_sent=%llu ignored=%llu "
		 "malformed=%llu rate_limited=%llu send_failed=%llu truncated=%llu",
		 (unsigned long long)c.received, (unsigned long long)c.answered,
		 (unsigned long long)c.errors_sent, (unsigned long long)c.ignored,
		 (unsigned long long)c.malformed, (unsigned long long)c.rate_limited,
		 (unsigned long long)c.send_failed, (unsigned long long)c.truncated);
	for (int t = 0; s->nworkers > 1 && t < s->nworkers; t++)
		log_info(COMPONENT, "thread counters thread=%d received=%llu answered=%llu", t,
			 (unsigned long long)s->workers[t].c.received,
			 (unsigned long long)s->workers[t].c.answered);
	for (int i = 0; i < 32; i++)
		if (c.by_error[i])
			log_info(COMPONENT, "malformed reason=\"%s\" count=%llu",
				 stun_strerror(-5000 - i), (unsigned long long)c.by_error[i]);
}

static int parse_count(const char *s, const char *what, double *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 100000000) {
		fprintf(stderr, "meshstun: bad %s: %s\n", what, s);
		return -EINVAL;
	}
	*out = (double)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "rfc5780", no_argument, NULL, '5' },
		{ "rate", required_argument, NULL, 'r' },
		{ "one-socket", no_argument, NULL, '1' },
		{ "threads", required_argument, NULL, 't' },
		{ "burst", required_argument, NULL, 'b' },
		{ "max-padding", required_argument, NULL, 'p' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct server s;
	union sockaddr_any listen[MAX_LISTEN];
	int nlisten = 0, rfc5780 = 0, opt, rc;
	double max_padding = DEFAULT_MAX_PADDING;
	enum log_format fmt = LOG_FORMAT_TEXT;
	enum log_level level = LOG_INFO;

	s.rate = DEFAULT_RATE;
	s.burst = DEFAULT_BURST;
	s.nworkers = 0; /* 0: one per online CPU */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (nlisten == MAX_LISTEN) {
				fprintf(stderr, "meshstun: at most %d --listen\n", MAX_LISTEN);
				return 2;
			}
			if (addr_parse(optarg, &listen[nlisten]) < 0) {
				fprintf(stderr, "meshstun: bad --listen address: %s\n", optarg);
				return 2;
			}
			nlisten++;
			break;
		case '5':
			rfc5780 = 1;
			break;
		case '1':
			s.one_socket = 1;
			break;
		case 't': {
			double n;
			if (parse_count(optarg, "--threads", &n) < 0)
				return 2;
			if (n < 1 || n > MAX_THREADS) {
				fprintf(stderr, "meshstun: bad --threads: %s (1..%d)\n", optarg, MAX_THREADS);
				return 2;
			}
			s.nworkers = (int)n;
			break;
		}
		case 'r':
			if (parse_count(optarg, "--rate", &s.rate) < 0)
				return 2;
			break;
		case 'b':
			if (parse_count(optarg, "--burst", &s.burst) < 0)
				return 2;
			break;
		case 'p':
			if (parse_count(optarg, "--max-padding", &max_padding) < 0 || max_padding > 65000)
				return 2;
			break;
		case 'f':
			if (log_parse_format(optarg, &fmt) < 0) {
				fprintf(stderr, "meshstun: bad --log-format: %s\n", optarg);
				return 2;
			}
			break;
		case 'v':
			level = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || nlisten == 0) {
		usage(stderr);
		return 2;
	}
	if (s.burst < 1)
		s.burst = 1;
	if (s.nworkers == 0) {	/* the CPUs this process may run on (taskset) */
		cpu_set_t set;
		long ncpu = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
									   : sysconf(_SC_NPROCESSORS_ONLN);
		s.nworkers = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
	}
	if (rfc5780) {
		/* OTHER-ADDRESS and RESPONSE-ORIGIN name the sockets: no wildcards */
		for (int i = 0; i < nlisten; i++) {
			size_t n;
			const uint8_t *ip = addr_ip_bytes(&listen[i], &n);
			static const uint8_t zero[16];
			if (ip && !memcmp(ip, zero, n)) {
				fprintf(stderr, "meshstun: --rfc5780 needs specific addresses, not a wildcard\n");
				return 2;
			}
		}
		if (nlisten != 2 || listen[0].sa.sa_family != listen[1].sa.sa_family ||
		    addr_ip_equal(&listen[0], &listen[1]) ||
		    addr_port(&listen[0]) != addr_port(&listen[1]) ||
		    addr_port(&listen[0]) == 0 || addr_port(&listen[0]) == 65535) {
			fprintf(stderr, "meshstun: --rfc5780 needs two --listen addresses with different "
				"IPs of one family and the same port (1..65534)\n");
			return 2;
		}
	}
	log_setup(fmt, level);

	if (sodium_init() < 0) {
		log_error(COMPONENT, "libsodium init failed");
		return 1;
	}
	randombytes_buf(s.hash_key, sizeof(s.hash_key));
	s.workers = calloc((size_t)s.nworkers, sizeof(*s.workers));
	if (!s.workers) {
		log_error(COMPONENT, "out of memory");
		return 1;
	}
	for (int t = 0; t < s.nworkers; t++)
		s.workers[t].stop_fd = -1;
	for (int t = 0; t < s.nworkers; t++)
		if ((rc = worker_init(&s, &s.workers[t], t)) < 0) {
			log_error(COMPONENT, "cannot set up thread %d err=\"%s\"", t, strerror(-rc));
			goto out;
		}
	rc = netio_linux_new(&s.io);
	if (rc < 0) {
		log_error(COMPONENT, "cannot open network backend err=\"%s\"", strerror(-rc));
		goto out;
	}
	if (rfc5780) {
		struct stun_server_cfg *cfg = &s.cfgs[s.ncfgs++];
		cfg->rfc5780 = true;
		cfg->software = SOFTWARE;
		cfg->max_padding = (uint16_t)max_padding;
		for (int ip = 0; ip < STUN_SRV_IPS; ip++)
			for (int port = 0; port < STUN_SRV_PORTS; port++) {
				cfg->addrs[ip][port] = listen[ip];
				addr_set_port(&cfg->addrs[ip][port], (uint16_t)(addr_port(&listen[0]) + port));
			}
		for (int ip = 0; ip < STUN_SRV_IPS; ip++)
			for (int port = 0; port < STUN_SRV_PORTS; port++)
				if ((rc = open_addr(&s, cfg, ip, port)) < 0)
					goto out;
	} else {
		for (int i = 0; i < nlisten; i++) {
			struct stun_server_cfg *cfg = &s.cfgs[s.ncfgs++];
			cfg->software = SOFTWARE;
			cfg->addrs[0][0] = listen[i];
			if ((rc = open_addr(&s, cfg, 0, 0)) < 0)
				goto out;
		}
	}
	for (int t = 0; t < s.nworkers; t++)
		link_groups(&s.workers[t]);
	/* the signals are blocked before the threads start, so they inherit the
	 * mask and only the first thread's signalfd sees them */
	if ((rc = loop_signal(s.workers[0].loop, SIGTERM, on_signal, &s)) < 0 ||
	    (rc = loop_signal(s.workers[0].loop, SIGINT, on_signal, &s)) < 0) {
		log_error(COMPONENT, "cannot handle signals err=\"%s\"", strerror(-rc));
		goto out;
	}
	for (int t = 1; t < s.nworkers; t++) {
		int e = pthread_create(&s.workers[t].thread, NULL, worker_main, &s.workers[t]);
		if (e) {
			log_error(COMPONENT, "cannot start thread %d err=\"%s\"", t, strerror(e));
			rc = -e;
			stop_all(&s);
			goto join;
		}
		s.workers[t].started = 1;
	}
	log_info(COMPONENT, "started rfc5780=%s rate=%.0f burst=%.0f threads=%d", rfc5780 ? "yes" : "no",
		 s.rate, s.burst, s.nworkers);

	rc = loop_run(s.workers[0].loop);
	if (rc < 0) {
		log_error(COMPONENT, "event loop failed err=\"%s\"", strerror(-rc));
		stop_all(&s);
	}
join:
	for (int t = 1; t < s.nworkers; t++)
		if (s.workers[t].started) {
			pthread_join(s.workers[t].thread, NULL);
			if (s.workers[t].rc < 0) {
				log_error(COMPONENT, "thread %d: event loop failed err=\"%s\"", t,
					  strerror(-s.workers[t].rc));
				rc = s.workers[t].rc;
			}
		}
	log_counters(&s);
out:
	for (int t = 0; t < s.nworkers; t++)
		worker_free(&s, &s.workers[t]);
	netio_free(s.io);
	free(s.workers);
	return rc < 0 ? 1 : 0;
}
