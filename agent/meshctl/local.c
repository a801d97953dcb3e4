/* local: meshctl status | peers | ping against meshd's control socket. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "vec.h"

/* the largest answer read from meshd; more is refused, never cut */
#define ANSWER_MAX (16 << 20)
#define TIMEOUT_MS 5000

static const char *const commands[] = { "status", "peers", "ping" };

/* options of meshctl (local and admin) that take a value */
static bool takes_value(const char *opt)
{
	static const char *const with_value[] = {
		"-o", "--output", "--ifname", "--control", "--service", "--token-file", "--ca",
	};
	for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
		if (!strcmp(opt, with_value[i]))
			return true;
	return false;
}

static const char *command_of(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') {
			if (takes_value(argv[i]))
				i++;
			continue;
		}
		for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
			if (!strcmp(argv[i], commands[k]))
				return commands[k];
		return NULL;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meshctl [--ifname NAME | --control PATH] [-o table|json] status\n"
		"       meshctl [--ifname NAME | --control PATH] [-o table|json] peers\n"
		"       meshctl [--ifname NAME | --control PATH] [-o table|json] ping PEER\n"
		"\n"
		"Ask the agent (meshd) on this host through its control socket\n"
		"(default /run/meshd/mesh0.sock; --ifname NAME picks /run/meshd/NAME.sock).\n"
		"PEER is a name, a device id or a tunnel IP.\n");
}

/* one request, one answer line; NULL with a message on stderr */
static json_t *request(const char *path, const char *req)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vec buf = VEC_INIT(char, ANSWER_MAX, "meshctl answer");
	json_error_t jerr;
	json_t *ans = NULL;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "meshctl: control socket path too long: %s\n", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "meshctl: cannot reach meshd at %s: %s (is it running?)\n", path, strerror(errno));
		goto out;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		fprintf(stderr, "meshctl: %s: cannot send the request: %s\n", path, strerror(errno));
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		if (poll(&p, 1, TIMEOUT_MS) <= 0) {
			fprintf(stderr, "meshctl: %s: no answer within %d ms\n", path, TIMEOUT_MS);
			goto out;
		}
		int rc = vec_reserve(&buf, 4096 + 1);
		if (rc < 0) {
			if (rc == -ENOSPC)
				fprintf(stderr, "meshctl: %s: answer too large (over %d bytes)\n", path, ANSWER_MAX);
			else
				fprintf(stderr, "meshctl: %s: %s\n", path, strerror(-rc));
			goto out;
		}
		n = recv(fd, (char *)vec_at(&buf, buf.len), buf.cap - buf.len - 1, 0);
		if (n < 0) {
			fprintf(stderr, "meshctl: %s: %s\n", path, strerror(errno));
			goto out;
		}
		buf.len += (size_t)n;
		if (n == 0 || (buf.len && VEC_PTR(&buf, char, buf.len - 1) == '\n'))
			break;
	}
	ans = buf.len ? json_loadb(buf.items, buf.len, 0, &jerr) : NULL;
	if (!ans)
		fprintf(stderr, "meshctl: %s: the answer is not JSON\n", path);
out:
	if (fd >= 0)
		close(fd);
	vec_free(&buf);
	return ans;
}

static const char *str(const json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

static void fmt_bytes(json_int_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
}

static void fmt_ago(json_int_t t, char *buf, size_t len)
{
	time_t now = time(NULL);

	if (t <= 0)
		snprintf(buf, len, "never");
	else if (now - t < 0)
		snprintf(buf, len, "just now");
	else
		snprintf(buf, len, "%llds ago", (long long)(now - t));
}

/* one line of counters under head, those of keys that s has (an older meshd
 * has none of them, and gets no line) */
static void print_counters(const json_t *s, const char *head, const char *const (*keys)[2], size_t n)
{
	bool any = false;

	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(s, keys[i][0]);
		if (!json_is_integer(v))
			continue;
		printf("%s%s: %lld", any ? ", " : head, keys[i][1], (long long)json_integer_value(v));
		any = true;
	}
	if (any)
		printf("\n");
}

/* issue 16: the security group meshd enforces, its rules with the packets
 * each let through, and the drops (the "policy" object of meshd's status) */
static void print_policy(const json_t *pol)
{
	static const char *const dirs[] = { "inbound_rules", "outbound_rules" };
	const json_t *g = json_object_get(pol, "group"), *r;
	const char *source = str(pol, "source", "?");
	size_t i;

	if (!pol)
		return;
	if (!json_is_true(json_object_get(pol, "enforced"))) {
		printf("policy:       not enforced (%s)\n",
		       !strcmp(source, "off") ? "--no-policy" : "the nftables table is not in place");
		return;
	}
	if (!strcmp(source, "absent"))
		printf("policy:       everything allowed (the service has no security groups)\n");
	else if (!g || json_is_null(g))
		printf("policy:       nothing allowed yet (waiting for the service to send this device's group)\n");
	else
		printf("policy:       group %s (id %s, revision %lld%s)\n", str(g, "name", "?"), str(g, "id", "?"),
		       (long long)json_integer_value(json_object_get(g, "revision")),
		       !strcmp(source, "saved") ? ", kept from the last run" : "");
	for (size_t d = 0; d < 2 && strcmp(source, "absent"); d++) {
		const json_t *rules = json_object_get(pol, dirs[d]);
		printf("  %s:%s\n", d ? "outbound" : "inbound", json_array_size(rules) ? "" : " none");
		json_array_foreach(rules, i, r) {
			const json_t *n = json_object_get(r, "packets");
			if (json_is_integer(n))
				printf("    [%zu] %s (%lld packets)\n", i, str(r, "rule", "?"), (long long)json_integer_value(n));
			else
				printf("    [%zu] %s\n", i, str(r, "rule", "?"));
		}
	}
	printf("  dropped:    %lld inbound, %lld outbound", (long long)json_integer_value(json_object_get(pol, "inbound_drops")),
	       (long long)json_integer_value(json_object_get(pol, "outbound_drops")));
	if (json_object_get(pol, "relay_policy_drops"))
		printf(", %lld relayed", (long long)json_integer_value(json_object_get(pol, "relay_policy_drops")));
	printf("; spoofed sources %lld\n", (long long)json_integer_value(json_object_get(pol, "spoofed_sources")));
}

/* issue 18: which protocol mapped what, and when it renews */
static void print_portmap(const json_t *pm)
{
	const char *state = str(pm, "state", NULL);

	if (!state)
		return;
	if (!strcmp(state, "off")) {
		printf("port mapping: off (--no-port-mapping)\n");
	} else if (!strcmp(state, "mapped")) {
		printf("port mapping: %s at gateway %s: udp %lld -> %s, lifetime %lld s, renewal in %lld s\n",
		       str(pm, "protocol", "?"), str(pm, "gateway", "?"),
		       (long long)json_integer_value(json_object_get(pm, "internal_port")), str(pm, "external", "?"),
		       (long long)json_integer_value(json_object_get(pm, "lifetime_s")),
		       (long long)json_integer_value(json_object_get(pm, "renew_in_s")));
	} else {
		printf("port mapping: %s (gateway %s)\n", state, str(pm, "gateway", "none"));
	}
}

static void print_status(const json_t *s)
{
	/* issue 15: what the agent refused or held back */
	static const char *const limits[][2] = {
		{ "initiations_limited", "initiations limited" },
		{ "stun_limited", "STUN limited" },
		{ "relay_outside_vpc", "outside VPC" },
	};
	static const char *const lost[][2] = {
		{ "lost_session_handshakes", "lost-session handshakes" },
		{ "lost_refused", "refused" },
	};
	const json_t *svc = json_object_get(s, "service"), *eps = json_object_get(s, "endpoints"), *e;
	const json_t *nat = json_object_get(s, "nat");
	size_t i;

	printf("device:       %s\n", str(s, "device", "?"));
	printf("public key:   %s\n", str(s, "public_key", "?"));
	printf("tunnel IP:    %s (VPC %s)\n", str(s, "tunnel_ip", "none yet"), str(s, "vpc_cidr", "unknown"));
	printf("listen port:  %lld\n", (long long)json_integer_value(json_object_get(s, "listen_port")));
	/* RFC 5780 findings (meshd's natdisc runs, one per family) when there
	 * are any; a meshd from before the per-family runs has only the top level */
	if (json_object_get(nat, "ipv4") || json_object_get(nat, "ipv6")) {
		static const struct { const char *key, *label; } fam[] = {
			{ "ipv4", "NAT (IPv4):   " }, { "ipv6", "NAT (IPv6):   " },
		};
		for (i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
			const json_t *f = json_object_get(nat, fam[i].key);
			if (json_is_string(json_object_get(f, "summary")))
				printf("%s%s%s\n", fam[i].label, str(f, "summary", "?"),
				       json_is_true(json_object_get(f, "running")) ? " (discovery running)" : "");
		}
	} else if (json_is_string(json_object_get(nat, "summary"))) {
		printf("NAT:          %s%s\n", str(nat, "summary", "?"),
		       json_is_true(json_object_get(nat, "running")) ? " (discovery running)" : "");
	}
	printf("%s %s\n", json_is_string(json_object_get(nat, "summary")) ? "STUN:        " : "NAT:         ",
	       json_is_true(json_object_get(s, "symmetric_nat"))
		       ? "symmetric (the mapping differs per destination)"
		       : "not symmetric (the same mapping for every STUN server)");
	printf("endpoints:   ");
	if (!json_array_size(eps))
		printf(" none");
	json_array_foreach(eps, i, e)
		printf(" %s=%s", str(e, "source", "?"), str(e, "address", "?"));
	printf("\n");
	printf("service:      %s, %s, %s\n", str(svc, "url", "?"),
	       json_is_true(json_object_get(svc, "reachable")) ? "reachable" : "unreachable",
	       json_is_true(json_object_get(svc, "registered")) ? "registered" : "not registered");
	printf("role:         %s\n", json_is_true(json_object_get(s, "relay")) ? "relay" : "agent");
	printf("relay in use: %s\n", str(s, "relay_in_use", "none"));
	printf("peers:        %lld\n", (long long)json_integer_value(json_object_get(s, "peers")));
	print_counters(s, "held back:    ", limits, sizeof(limits) / sizeof(limits[0]));
	print_counters(s, "sessions:     ", lost, sizeof(lost) / sizeof(lost[0]));
	print_policy(json_object_get(s, "policy"));
	print_portmap(json_object_get(s, "port_mapping"));
}

static void print_peers(const json_t *a)
{
	const json_t *list = json_object_get(a, "peers"), *p;
	size_t i;

	printf("%-20s %-15s %-10s %-22s %-12s %10s %10s %8s %8s\n", "NAME", "TUNNEL IP", "PATH", "ENDPOINT",
	       "HANDSHAKE", "RX", "TX", "RTT", "HS-RTT");
	json_array_foreach(list, i, p) {
		char hs[32], rx[32], tx[32], rtt[32], hrtt[32], name[32];
		const json_t *r = json_object_get(p, "rtt_ms"), *h = json_object_get(p, "handshake_rtt_ms");
		fmt_ago(json_integer_value(json_object_get(p, "last_handshake")), hs, sizeof(hs));
		fmt_bytes(json_integer_value(json_object_get(p, "rx_bytes")), rx, sizeof(rx));
		fmt_bytes(json_integer_value(json_object_get(p, "tx_bytes")), tx, sizeof(tx));
		if (json_is_number(r))
			snprintf(rtt, sizeof(rtt), "%.2fms", json_number_value(r));
		else
			snprintf(rtt, sizeof(rtt), "-");
		if (json_is_number(h))
			snprintf(hrtt, sizeof(hrtt), "%.2fms", json_number_value(h));
		else
			snprintf(hrtt, sizeof(hrtt), "-");
		/* the relay this agent routes the VPC through */
		snprintf(name, sizeof(name), "%.18s%s", str(p, "name", "?"),
			 json_is_true(json_object_get(p, "relay_in_use")) ? " *" : "");
		printf("%-20.20s %-15s %-10s %-22s %-12s %10s %10s %8s %8s\n", name,
		       str(p, "tunnel_ip", "?"), str(p, "path", "?"), str(p, "endpoint", "-"), hs, rx, tx, rtt, hrtt);
	}
}

int meshctl_local_dispatch(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "control", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = command_of(argc, argv), *control = NULL, *peer = NULL;
	char path[108], req[512];
	bool as_json = false;
	json_t *ans, *err;
	int opt, rc = 0;

	if (!cmd)
		return -1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			if (!optarg[0] || strlen(optarg) >= IFNAMSIZ || strchr(optarg, '/')) {
				fprintf(stderr, "meshctl: bad --ifname: %s\n", optarg);
				return 2;
			}
			snprintf(path, sizeof(path), "/run/meshd/%s.sock", optarg);
			control = path;
			break;
		case 'c':
			control = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				as_json = true;
			else if (strcmp(optarg, "table")) {
				fprintf(stderr, "meshctl: bad -o: %s (table or json)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* optind is at the command */
	if (!strcmp(cmd, "ping")) {
		if (argc - optind != 2) {
			fprintf(stderr, "meshctl: ping needs exactly one PEER\n");
			return 2;
		}
		peer = argv[optind + 1];
	} else if (argc - optind != 1) {
		fprintf(stderr, "meshctl: %s takes no arguments\n", cmd);
		return 2;
	}
	if (!control)
		control = "/run/meshd/mesh0.sock";
	if (peer) {
		json_t *r = json_pack("{s:s, s:s}", "cmd", "ping", "peer", peer);
		char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
		json_decref(r);
		if (!t || strlen(t) + 2 > sizeof(req)) {
			free(t);
			fprintf(stderr, "meshctl: PEER too long\n");
			return 2;
		}
		snprintf(req, sizeof(req), "%s\n", t);
		free(t);
	} else {
		snprintf(req, sizeof(req), "{\"cmd\":\"%s\"}\n", cmd);
	}
	if (!(ans = request(control, req)))
		return 1;
	err = json_object_get(ans, "error");
	if (err) {
		fprintf(stderr, "meshctl: %s%s%s\n", peer ? peer : "", peer ? ": " : "", json_string_value(err));
		rc = 1;
	}
	if (as_json) {
		json_dumpf(ans, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("\n");
	} else if (!err) {
		if (!strcmp(cmd, "status"))
			print_status(ans);
		else if (!strcmp(cmd, "peers"))
			print_peers(ans);
		else
			printf("%s: reply in %.3f ms via %s\n", str(ans, "peer", peer),
			       json_number_value(json_object_get(ans, "rtt_ms")), str(ans, "path", "?"));
	}
	json_decref(ans);
	return rc;
}
