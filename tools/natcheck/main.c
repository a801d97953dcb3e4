/* natcheck: RFC 5780 NAT behaviour discovery against a STUN server that
 * serves OTHER-ADDRESS, CHANGE-REQUEST and RESPONSE-PORT (meshstun
 * --rfc5780). The discovery itself is lib/natdisc (sans-I/O); this file is
 * its driver (sockets through netio, the event loop) and the report, a table
 * in RFC 4787 terms plus the common name of the NAT type. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "loop.h"
#include "natdisc.h"
#include "netio.h"

#define COMPONENT "natcheck"
#define PKT_CAP 2048

enum { EXIT_OK = 0, EXIT_DISCOVERY = 1, EXIT_USAGE = 2, EXIT_SYSTEM = 3 };

struct check;

struct sock {
	struct check *c;
	int idx;
	struct netio_udp *udp;
};

struct check {
	struct loop *loop;
	struct netio *io;
	struct natdisc *nd;
	int nsocks;
	struct sock socks[NATDISC_MAX_SOCKS];
	struct loop_timer timer;
	char last_step[96];
	bool interrupted;
	int fatal;			/* negative errno that stopped the loop */
	struct netio_pkt in[NETIO_BATCH_MAX];
	uint8_t in_buf[NETIO_BATCH_MAX][PKT_CAP];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: natcheck --server HOST:PORT [--tests LIST] [--json] [options]\n"
		"\n"
		"RFC 5780 NAT behaviour discovery against a STUN server with RFC 5780\n"
		"support on two IP addresses (meshstun --rfc5780), reported in RFC 4787\n"
		"terms and as the common NAT type name.\n"
		"\n"
		"  --server HOST:PORT     the server's primary address\n"
		"  --tests LIST           comma-separated, from: mapping, filtering,\n"
		"                         hairpin, ports, lifetime, all (default: all\n"
		"                         but lifetime, which takes minutes)\n"
		"  --json                 one JSON object instead of the table\n"
		"  --rto MS               STUN retransmission timeout (default %d)\n"
		"  --rc N                 transmissions per request (default %d); an\n"
		"                         unanswered request takes about RTO * 2^(N-1)\n"
		"                         + 16 * RTO before it counts as filtered\n"
		"  --samples N            sockets sampled for port allocation (default\n"
		"                         %d, at most %d)\n"
		"  --lifetime-max S       bound of the mapping lifetime search in seconds\n"
		"                         (default %d)\n"
		"  --lifetime-res S       stop the search when the bracket is this narrow\n"
		"                         (seconds, default %d)\n"
		"  --log-format text|json progress lines on stderr (default text)\n"
		"  -q, --quiet            no progress lines\n"
		"  -h, --help             this text\n"
		"\n"
		"Exit status: 0 discovery ran; 1 it could not (no answer, or the server\n"
		"lacks RFC 5780: no OTHER-ADDRESS); 2 bad usage; 3 system error.\n",
		NATDISC_RTO_DEFAULT_MS, NATDISC_RC_DEFAULT, NATDISC_PORT_SAMPLES_DEFAULT,
		NATDISC_PORT_SAMPLES_MAX, NATDISC_LIFETIME_MAX_DEFAULT_MS / 1000,
		NATDISC_LIFETIME_RES_DEFAULT_MS / 1000);
}

/* IP:PORT, [IPv6]:PORT, or NAME:PORT through the resolver */
static int resolve(const char *s, union sockaddr_any *out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	char host[256];
	const char *colon = strrchr(s, ':');
	int rc;

	if (addr_parse(s, out) == 0)
		return 0;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen <= sizeof(*out) ? res->ai_addrlen : sizeof(*out));
	freeaddrinfo(res);
	return 0;
}

/* the local address the kernel would use towards the server */
static int route_source(const union sockaddr_any *server, union sockaddr_any *out)
{
	socklen_t len = sizeof(*out);
	int fd = socket(server->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, &server->sa, addr_len(server)) < 0 || getsockname(fd, &out->sa, &len) < 0)
		rc = -errno;
	close(fd);
	addr_set_port(out, 0);
	return rc;
}

static void pump(struct check *c);

static void on_timer(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)loop;
	(void)t;
	pump(arg);
}

static void on_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct sock *s = arg;
	struct check *c = s->c;
	int n;

	(void)fd;
	(void)events;
	for (int i = 0; i < NETIO_BATCH_MAX; i++) {
		c->in[i].data = c->in_buf[i];
		c->in[i].cap = PKT_CAP;
	}
	while ((n = netio_udp_recv(c->io, s->udp, c->in, NETIO_BATCH_MAX)) > 0)
		for (int i = 0; i < n; i++)
			natdisc_receive(c->nd, s->idx, &c->in[i].addr, c->in[i].data, c->in[i].len,
					loop_now(loop));
	if (n < 0)
		log_warn(COMPONENT, "receive failed sock=%d err=%s", s->idx, strerror(-n));
	pump(c);
}

static void on_signal(struct loop *loop, int signo, void *arg)
{
	struct check *c = arg;

	log_warn(COMPONENT, "interrupted signal=%d", signo);
	c->interrupted = true;
	loop_stop(loop);
}

/* send what is due, report progress, wait for the next deadline */
static void pump(struct check *c)
{
	uint64_t now = loop_now(c->loop), dl;
	int rc;
	struct natdisc_send s;

	while (natdisc_poll(c->nd, now, &s) == 1) {
		struct netio_pkt p = { .data = (uint8_t *)s.buf, .len = s.len, .cap = s.len, .addr = s.dst };
		rc = netio_udp_send(c->io, c->socks[s.sock].udp, &p, 1);

		/* a lost send is what retransmission is for; log it only */
		if (rc < 0) {
			char a[ADDR_STRLEN];

			log_warn(COMPONENT, "send failed sock=%d dst=%s err=%s", s.sock,
				 addr_format(&s.dst, a, sizeof(a)), strerror(-rc));
		}
	}
	if (strcmp(c->last_step, natdisc_step(c->nd))) {
		snprintf(c->last_step, sizeof(c->last_step), "%s", natdisc_step(c->nd));
		if (!natdisc_done(c->nd))
			log_info(COMPONENT, "%s", c->last_step);
	}
	if (natdisc_done(c->nd)) {
		loop_stop(c->loop);
		return;
	}
	dl = natdisc_deadline(c->nd);
	if ((rc = loop_timer_arm(c->loop, &c->timer, dl > now ? dl - now : 0, 0)) < 0) {
		/* nothing would wake discovery again: stop rather than hang */
		c->fatal = rc;
		loop_stop(c->loop);
	}
}

/* --- report -------------------------------------------------------------- */

static const char *tri_name(enum natdisc_tri t)
{
	switch (t) {
	case NATDISC_YES: return "yes";
	case NATDISC_NO: return "no";
	case NATDISC_NOT_APPLICABLE: return "not applicable";
	default: return "not tested";
	}
}

static void row(const char *what, const char *result, const char *evidence)
{
	printf("  %-18s %-30s %s\n", what, result, evidence);
}

/* One line in nat-models' vocabulary (natmodel_format), with what was
 * decided only, so a scenario can hold it against a model's declaration. */
static void print_findings(const struct natdisc_result *r)
{
	printf("findings:");
	if (r->mapping != NATDISC_DEP_UNKNOWN)
		printf(" mapping=%s", natdisc_dep_name(r->mapping));
	if (r->filtering != NATDISC_DEP_UNKNOWN)
		printf(" filtering=%s", natdisc_dep_name(r->filtering));
	if (r->ports != NATDISC_PORTS_UNKNOWN)
		printf(" port_allocation=%s", natdisc_ports_name(r->ports));
	if (r->hairpin == NATDISC_YES || r->hairpin == NATDISC_NO)
		printf(" hairpinning=%s", r->hairpin == NATDISC_YES ? "on" : "off");
	if (r->lifetime == NATDISC_YES && r->lifetime_dead_ms)
		printf(" udp_timeout=%.1f..%.1fs", r->lifetime_alive_ms / 1000.0, r->lifetime_dead_ms / 1000.0);
	else if (r->lifetime == NATDISC_YES)
		printf(" udp_timeout=>%.1fs", r->lifetime_alive_ms / 1000.0);
	if (r->alg)
		printf(" alg=rewrites");
	printf("\n");
}

static void print_text(const struct natdisc_cfg *cfg, const struct natdisc_result *r, unsigned tests)
{
	char a1[ADDR_STRLEN], a2[ADDR_STRLEN], a3[ADDR_STRLEN], ev[256], res[64];
	const char *name = natdisc_common_name(r);

	printf("natcheck: RFC 5780 discovery against %s", addr_format(&cfg->server, a1, sizeof(a1)));
	if (r->other.sa.sa_family)
		printf(" (other address %s)", addr_format(&r->other, a2, sizeof(a2)));
	printf("\n\n");
	row("test", "result", "evidence");
	row("local address", addr_format(&r->local, a1, sizeof(a1)), "the socket of tests I-III");
	row("mapped address", addr_format(&r->mapped1, a1, sizeof(a1)), "test I, XOR-MAPPED-ADDRESS");
	row("NAT", r->nat ? "yes" : "none detected",
	    r->nat ? "mapped address differs from the local address"
		   : "mapped address = local address");

	if (!(tests & NATDISC_TEST_MAPPING)) {
		row("mapping", "not tested", "");
	} else if (r->mapping == NATDISC_DEP_UNKNOWN) {
		row("mapping", "unknown", natdisc_strerror(r->mapping_err));
	} else {
		if (r->mapping == NATDISC_DEP_EI)
			snprintf(ev, sizeof(ev), "test II (other IP) mapped %s, as test I",
				 addr_format(&r->mapped2, a1, sizeof(a1)));
		else
			snprintf(ev, sizeof(ev), "test I %s, II %s, III %s",
				 addr_format(&r->mapped1, a1, sizeof(a1)), addr_format(&r->mapped2, a2, sizeof(a2)),
				 addr_format(&r->mapped3, a3, sizeof(a3)));
		row("mapping", natdisc_dep_name(r->mapping), ev);
	}

	if (!(tests & NATDISC_TEST_FILTERING)) {
		row("filtering", "not tested", "");
	} else if (r->filtering == NATDISC_DEP_UNKNOWN) {
		row("filtering", "unknown", natdisc_strerror(r->filtering_err));
	} else {
		switch (r->filtering) {
		case NATDISC_DEP_EI:
			snprintf(ev, sizeof(ev), "test II: answer from %s (other IP and port) arrived",
				 addr_format(&r->other, a1, sizeof(a1)));
			break;
		case NATDISC_DEP_AD:
			snprintf(ev, sizeof(ev), "test II blocked; test III (other port) arrived");
			break;
		default:
			snprintf(ev, sizeof(ev), "tests II (other IP and port) and III (other port) blocked");
		}
		row("filtering", natdisc_dep_name(r->filtering), ev);
	}

	if (!(tests & NATDISC_TEST_HAIRPIN)) {
		row("hairpinning", "not tested", "");
	} else {
		if (r->hairpin == NATDISC_NOT_APPLICABLE)
			snprintf(ev, sizeof(ev), "no NAT");
		else if (r->hairpin == NATDISC_NOT_TESTED)
			snprintf(ev, sizeof(ev), "the mappings were not learned");
		else
			snprintf(ev, sizeof(ev), "requests to each other's mapping %s and %s %s",
				 addr_format(&r->hair_a, a1, sizeof(a1)), addr_format(&r->hair_b, a2, sizeof(a2)),
				 r->hairpin == NATDISC_YES ? "came back in" : "did not come back");
		row("hairpinning", tri_name(r->hairpin), ev);
	}

	if (!(tests & NATDISC_TEST_PORTS)) {
		row("port allocation", "not tested", "");
	} else if (r->ports == NATDISC_PORTS_UNKNOWN) {
		row("port allocation", "unknown", "fewer than two samples answered");
	} else {
		size_t off = (size_t)snprintf(ev, sizeof(ev), "%d/%d kept their port, span %u:",
					      r->preserved, r->nsamples, r->port_span);
		for (int i = 0; i < r->nsamples && off < sizeof(ev); i++)
			if (r->samples[i].answered)
				off += (size_t)snprintf(ev + off, sizeof(ev) - off, " %u>%u",
							r->samples[i].local, r->samples[i].mapped);
		row("port allocation", natdisc_ports_name(r->ports), ev);
	}

	if (!(tests & NATDISC_TEST_LIFETIME)) {
		row("mapping lifetime", "not tested", "(--tests lifetime)");
	} else if (r->lifetime == NATDISC_NOT_APPLICABLE) {
		row("mapping lifetime", "not applicable", "no NAT");
	} else if (r->lifetime != NATDISC_YES) {
		row("mapping lifetime", "unknown", natdisc_strerror(r->lifetime_err));
	} else {
		if (!r->lifetime_dead_ms)
			snprintf(res, sizeof(res), "> %.1f s", r->lifetime_alive_ms / 1000.0);
		else
			snprintf(res, sizeof(res), "%.1f .. %.1f s", r->lifetime_alive_ms / 1000.0,
				 r->lifetime_dead_ms / 1000.0);
		snprintf(ev, sizeof(ev), "%d trials, RESPONSE-PORT probes after idle time", r->lifetime_trials);
		row("mapping lifetime", res, ev);
	}

	if (r->alg) {
		snprintf(ev, sizeof(ev), "MAPPED-ADDRESS %s, XOR-MAPPED-ADDRESS %s: an ALG rewrites addresses",
			 addr_format(&r->alg_mapped, a1, sizeof(a1)), addr_format(&r->alg_xor_mapped, a2, sizeof(a2)));
		row("ALG", "address rewriting", ev);
	} else {
		row("ALG", "none seen", "MAPPED-ADDRESS = XOR-MAPPED-ADDRESS in every answer");
	}

	printf("\n");
	if (r->mapping != NATDISC_DEP_UNKNOWN || r->filtering != NATDISC_DEP_UNKNOWN)
		printf("result: %s mapping / %s filtering", natdisc_dep_name(r->mapping),
		       natdisc_dep_name(r->filtering));
	else
		printf("result: %s", r->nat ? "NAT" : "no NAT detected");
	if (name && !r->nat)
		printf(", no NAT detected%s\n", r->filtering != NATDISC_DEP_EI ? " (a firewall filters)" : "");
	else if (name)
		printf(": %s\n", name);
	else
		printf("\n");
	print_findings(r);
}

static json_t *jaddr(const union sockaddr_any *a)
{
	char buf[ADDR_STRLEN];

	return a->sa.sa_family ? json_string(addr_format(a, buf, sizeof(buf))) : json_null();
}

static json_t *jdep(enum natdisc_dep d)
{
	return d == NATDISC_DEP_UNKNOWN ? json_null() : json_string(natdisc_dep_name(d));
}

static json_t *jtri(enum natdisc_tri t)
{
	return t == NATDISC_YES ? json_true() : t == NATDISC_NO ? json_false() : json_null();
}

static void print_json(const struct natdisc_cfg *cfg, const struct natdisc_result *r)
{
	json_t *o = json_object(), *samples = json_array(), *life = json_object();
	const char *name = natdisc_common_name(r);

	json_object_set_new(o, "server", jaddr(&cfg->server));
	json_object_set_new(o, "other_address", jaddr(&r->other));
	json_object_set_new(o, "error", r->error ? json_string(natdisc_strerror(r->error)) : json_null());
	json_object_set_new(o, "local", jaddr(&r->local));
	json_object_set_new(o, "mapped", jaddr(&r->mapped1));
	json_object_set_new(o, "nat", json_boolean(r->nat));
	json_object_set_new(o, "mapping", jdep(r->mapping));
	json_object_set_new(o, "mapping_test2", r->has_mapped2 ? jaddr(&r->mapped2) : json_null());
	json_object_set_new(o, "mapping_test3", r->has_mapped3 ? jaddr(&r->mapped3) : json_null());
	json_object_set_new(o, "filtering", jdep(r->filtering));
	json_object_set_new(o, "hairpinning", jtri(r->hairpin));
	json_object_set_new(o, "port_allocation",
			    r->ports == NATDISC_PORTS_UNKNOWN ? json_null() : json_string(natdisc_ports_name(r->ports)));
	for (int i = 0; i < r->nsamples; i++) {
		json_t *s = json_object();

		json_object_set_new(s, "local", json_integer(r->samples[i].local));
		json_object_set_new(s, "mapped", r->samples[i].answered ? json_integer(r->samples[i].mapped) : json_null());
		json_array_append_new(samples, s);
	}
	json_object_set_new(o, "port_samples", samples);
	json_object_set_new(o, "port_span", json_integer(r->port_span));
	json_object_set_new(life, "tested", json_boolean(r->lifetime == NATDISC_YES));
	json_object_set_new(life, "alive_s", json_real(r->lifetime_alive_ms / 1000.0));
	json_object_set_new(life, "dead_s", r->lifetime_dead_ms ? json_real(r->lifetime_dead_ms / 1000.0) : json_null());
	json_object_set_new(life, "trials", json_integer(r->lifetime_trials));
	json_object_set_new(o, "lifetime", life);
	json_object_set_new(o, "alg", json_boolean(r->alg));
	if (r->alg) {
		json_object_set_new(o, "alg_mapped", jaddr(&r->alg_mapped));
		json_object_set_new(o, "alg_xor_mapped", jaddr(&r->alg_xor_mapped));
	}
	json_object_set_new(o, "type", name ? json_string(name) : json_null());
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	printf("\n");
	json_decref(o);
}

/* --- main ---------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno || end == s || *end || *out > max || *s == '-') ? -EINVAL : 0;
}

static int parse_seconds_ms(const char *s, uint32_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v <= 0 || v > 86400)
		return -EINVAL;
	*out = (uint32_t)(v * 1000 + 0.5);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "tests", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "rto", required_argument, NULL, 'R' },
		{ "rc", required_argument, NULL, 'C' },
		{ "samples", required_argument, NULL, 'S' },
		{ "lifetime-max", required_argument, NULL, 'L' },
		{ "lifetime-res", required_argument, NULL, 'E' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct natdisc_cfg cfg = { 0 };
	struct check c = { 0 };
	enum log_format lf = LOG_FORMAT_TEXT;
	bool json = false, quiet = false, have_server = false;
	union sockaddr_any src;
	const struct natdisc_result *r;
	int opt, rc, ret = EXIT_SYSTEM;
	unsigned long v;

	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		const char *bad = NULL;

		switch (opt) {
		case 's':
			if (resolve(optarg, &cfg.server) < 0) {
				fprintf(stderr, "natcheck: --server %s: expected HOST:PORT\n", optarg);
				return EXIT_USAGE;
			}
			have_server = true;
			break;
		case 't':
			if (natdisc_parse_tests(optarg, &cfg.tests, &bad) < 0) {
				fprintf(stderr, "natcheck: --tests: unknown test \"%s\" (mapping, filtering, hairpin, ports, lifetime, all)\n",
					bad ? bad : optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'R':
			if (parse_uint(optarg, 60000, &v) < 0 || !v) {
				fprintf(stderr, "natcheck: --rto %s: milliseconds, 1..60000\n", optarg);
				return EXIT_USAGE;
			}
			cfg.rto_ms = (uint32_t)v;
			break;
		case 'C':
			if (parse_uint(optarg, 20, &v) < 0 || !v) {
				fprintf(stderr, "natcheck: --rc %s: 1..20\n", optarg);
				return EXIT_USAGE;
			}
			cfg.rc = (uint32_t)v;
			break;
		case 'S':
			if (parse_uint(optarg, NATDISC_PORT_SAMPLES_MAX, &v) < 0 || v < 2) {
				fprintf(stderr, "natcheck: --samples %s: 2..%d\n", optarg, NATDISC_PORT_SAMPLES_MAX);
				return EXIT_USAGE;
			}
			cfg.port_samples = (int)v;
			break;
		case 'L':
			if (parse_seconds_ms(optarg, &cfg.lifetime_max_ms) < 0) {
				fprintf(stderr, "natcheck: --lifetime-max %s: seconds\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'E':
			if (parse_seconds_ms(optarg, &cfg.lifetime_res_ms) < 0) {
				fprintf(stderr, "natcheck: --lifetime-res %s: seconds\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'F':
			if (log_parse_format(optarg, &lf) < 0) {
				fprintf(stderr, "natcheck: --log-format %s: text or json\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!have_server || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	log_setup(lf, quiet ? LOG_WARN : LOG_INFO);

	if ((rc = route_source(&cfg.server, &src)) < 0) {
		log_error(COMPONENT, "no route to the server err=%s", strerror(-rc));
		return EXIT_SYSTEM;
	}
	if ((rc = natdisc_new(&cfg, &c.nd)) < 0) {
		log_error(COMPONENT, "discovery setup failed err=%s", strerror(-rc));
		return EXIT_SYSTEM;
	}
	if ((rc = netio_linux_new(&c.io)) < 0) {
		log_error(COMPONENT, "network setup failed err=%s", strerror(-rc));
		goto err_nd;
	}
	if ((rc = loop_new(&c.loop)) < 0) {
		log_error(COMPONENT, "event loop setup failed err=%s", strerror(-rc));
		goto err_io;
	}
	loop_timer_init(&c.timer, on_timer, &c);
	c.nsocks = natdisc_nsocks(c.nd);
	for (int i = 0; i < c.nsocks; i++) {
		union sockaddr_any local;

		c.socks[i].c = &c;
		c.socks[i].idx = i;
		if ((rc = netio_udp_open(c.io, &src, &c.socks[i].udp)) < 0 ||
		    (rc = netio_udp_local(c.io, c.socks[i].udp, &local)) < 0 ||
		    (rc = loop_add_fd(c.loop, netio_udp_fd(c.io, c.socks[i].udp), LOOP_READ, on_readable,
				      &c.socks[i])) < 0) {
			log_error(COMPONENT, "socket %d failed err=%s", i, strerror(-rc));
			goto err_socks;
		}
		natdisc_set_local(c.nd, i, &local);
	}
	if ((rc = loop_signal(c.loop, SIGINT, on_signal, &c)) < 0 ||
	    (rc = loop_signal(c.loop, SIGTERM, on_signal, &c)) < 0) {
		log_error(COMPONENT, "signal setup failed err=%s", strerror(-rc));
		goto err_socks;
	}
	if ((rc = natdisc_start(c.nd, loop_now(c.loop))) < 0) {
		log_error(COMPONENT, "start failed err=%s", strerror(-rc));
		goto err_socks;
	}
	pump(&c);
	if (!natdisc_done(c.nd) && (rc = loop_run(c.loop)) < 0) {
		log_error(COMPONENT, "event loop failed err=%s", strerror(-rc));
		goto err_socks;
	}
	if (c.fatal) {
		log_error(COMPONENT, "cannot arm the discovery timer err=%s", strerror(-c.fatal));
		goto err_socks;
	}

	r = natdisc_result(c.nd);
	if (c.interrupted) {
		fprintf(stderr, "natcheck: interrupted during %s\n", natdisc_step(c.nd));
		ret = EXIT_DISCOVERY;
	} else if (r->error) {
		char a[ADDR_STRLEN];

		fprintf(stderr, "natcheck: %s: %s\n", addr_format(&cfg.server, a, sizeof(a)),
			natdisc_strerror(r->error));
		ret = EXIT_DISCOVERY;
	} else {
		ret = EXIT_OK;
	}
	if (!c.interrupted && (!r->error || json)) {
		if (json)
			print_json(&cfg, r);
		else
			print_text(&cfg, r, cfg.tests ? cfg.tests : (NATDISC_TEST_ALL & ~NATDISC_TEST_LIFETIME));
	}

err_socks:
	loop_timer_cancel(c.loop, &c.timer);
	for (int i = c.nsocks - 1; i >= 0; i--) {
		if (!c.socks[i].udp)
			continue;
		loop_del_fd(c.loop, netio_udp_fd(c.io, c.socks[i].udp));
		netio_udp_close(c.io, c.socks[i].udp);
	}
	loop_free(c.loop);
err_io:
	netio_free(c.io);
err_nd:
	natdisc_free(c.nd);
	return ret;
}
