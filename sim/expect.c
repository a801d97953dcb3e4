#include "expect.h"
#include "portmapd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "loop.h"
#include "nat-models/natmodel.h"

enum {
	RETRY_PAUSE_MS = 200,
	PING_WAIT_S = 1,		/* ping -W: seconds per reply */
	COMMAND_DEFAULT_TIMEOUT_MS = 30000,
	COND_TIMEOUT_MS = 10000,	/* an action's "if" command */
};

static const char *const verdict_names[] = { "pass", "FAIL", "skipped" };

static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int sim_ping_parse(const char *out, int *sent, int *received, double *rtt_ms)
{
	const char *p = strstr(out, " packets transmitted, ");
	double mn, avg;
	*rtt_ms = -1;
	if (!p)
		return -EINVAL;
	while (p > out && p[-1] >= '0' && p[-1] <= '9')
		p--;
	if (sscanf(p, "%d packets transmitted, %d received", sent, received) != 2)
		return -EINVAL;
	const char *r = strstr(out, "rtt min/avg/max/mdev = ");
	if (r && sscanf(r, "rtt min/avg/max/mdev = %lf/%lf/", &mn, &avg) == 2)
		*rtt_ms = avg;
	return 0;
}

int sim_peers_find(const char *json, const char *name, char *path, size_t pathlen, char *tunnel_ip, size_t iplen,
		   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loads(json, 0, &jerr), *arr, *peer;
	size_t i;
	int rc = -ENOENT;

	if (!root) {
		snprintf(err, errlen, "meshctl peers -o json: line %d: %s", jerr.line, jerr.text);
		return -EINVAL;
	}
	arr = json_is_object(root) ? json_object_get(root, "peers") : root;
	if (!json_is_array(arr)) {
		snprintf(err, errlen, "meshctl peers -o json: not an array of peers");
		json_decref(root);
		return -EINVAL;
	}
	json_array_foreach(arr, i, peer) {
		const char *n = json_string_value(json_object_get(peer, "name"));
		if (!n || strcmp(n, name))
			continue;
		const char *p = json_string_value(json_object_get(peer, "path"));
		const char *ip = json_string_value(json_object_get(peer, "tunnel_ip"));
		if (!p || !ip) {
			snprintf(err, errlen, "meshctl peers -o json: peer %s lacks %s", name, p ? "tunnel_ip" : "path");
			rc = -EINVAL;
		} else {
			snprintf(path, pathlen, "%s", p);
			snprintf(tunnel_ip, iplen, "%s", ip);
			rc = 0;
		}
		break;
	}
	json_decref(root);
	return rc;
}

/* NODE, NODE/IFNAME or an IP, as an address string */
static void target_ip(const struct sim_lab *lab, const char *to, char *buf, size_t len)
{
	const struct sim_link *k;
	union sockaddr_any a;
	snprintf(buf, len, "%s", to);
	if (sim_scenario_ref(lab->sc, to, strlen(to), &k) < 0)
		return;
	sim_link_ip(k, &a);
	addr_format_ip(&a, buf, len);
}

/* one round of count pings from node to ip: 0 when ping ran (*received
 * answers; why says what ping printed when it printed no counts), or the
 * error of running it */
static int ping_once(struct sim_lab *lab, size_t node, const char *ip, int count, int *received, double *rtt,
		     char *why, size_t whylen)
{
	char c[16], w[16];
	char *out = NULL;
	int st, sent = 0;
	snprintf(c, sizeof(c), "%d", count);
	snprintf(w, sizeof(w), "%d", PING_WAIT_S);
	char *argv[] = { "ping", "-n", "-q", "-c", c, "-i", "0.2", "-W", w, (char *)ip, NULL };
	int rc = sim_lab_run(lab, node, argv, (count + 2) * 1000 + PING_WAIT_S * 1000, &out, &st);
	*received = 0;
	*rtt = -1;
	why[0] = '\0';
	if (rc == 0 && sim_ping_parse(out ? out : "", &sent, received, rtt) < 0) {
		char *nl = out ? strchr(out, '\n') : NULL;
		if (nl)
			*nl = '\0';
		snprintf(why, whylen, "%s", out && out[0] ? out : "ping printed nothing");
	} else if (rc) {
		snprintf(why, whylen, "ping: %s", strerror(-rc));
	}
	free(out);
	return rc;
}

static uint64_t elapsed(uint64_t since)
{
	return clock_now_ms() - since;
}

static void expect_ping(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	char ip[ADDR_STRLEN], why[200] = "";
	uint64_t t0 = clock_now_ms();
	int got = 0;
	target_ip(lab, e->to, ip, sizeof(ip));
	for (;;) {
		double rtt;
		int rc = ping_once(lab, e->from, ip, e->count, &got, &rtt, why, sizeof(why));
		if (rc == 0 && e->reachable && got == e->count) {
			r->verdict = SIM_VERDICT_PASS;
			r->rtt_ms = rtt;
			sim_strf(r->detail, sizeof(r->detail), "%s answered %d/%d, rtt %.3f ms", ip, got, e->count, rtt);
			break;
		}
		if (rc == 0 && !e->reachable) {
			r->verdict = got == 0 ? SIM_VERDICT_PASS : SIM_VERDICT_FAIL;
			sim_strf(r->detail, sizeof(r->detail), "%s answered %d/%d%s%s%s", ip, got, e->count,
				 got ? ", but it should stay unreachable" : "", why[0] ? ": " : "", why);
			break;
		}
		if (rc && rc != -ETIMEDOUT) {
			r->verdict = SIM_VERDICT_FAIL;
			sim_strf(r->detail, sizeof(r->detail), "%s", why);
			break;
		}
		if (elapsed(t0) >= (uint64_t)e->within_ms || sim_stop_requested) {
			r->verdict = SIM_VERDICT_FAIL;
			sim_strf(r->detail, sizeof(r->detail), "%s not answered within %d ms (last: %d/%d)%s%s", ip,
				 e->within_ms, got, e->count, why[0] ? "; " : "", why);
			break;
		}
		pause_ms(RETRY_PAUSE_MS);
	}
	r->time_ms = elapsed(t0);
}

static void expect_path(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	const char *peer = lab->sc->nodes[e->to_node].name;
	char path[32] = "", ip[64] = "", err[200] = "no answer from meshctl";
	uint64_t t0 = clock_now_ms();
	char *argv[] = { "meshctl", "peers", "-o", "json", NULL };
	r->verdict = SIM_VERDICT_FAIL;
	for (;;) {
		char *out = NULL;
		int st, got = 0;
		double rtt;
		int rc = sim_lab_run(lab, e->from, argv, 5000, &out, &st);
		if (rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			rc = sim_peers_find(out ? out : "", peer, path, sizeof(path), ip, sizeof(ip), err, sizeof(err));
			if (rc == -ENOENT)
				snprintf(err, sizeof(err), "meshctl on %s does not list %s", lab->sc->nodes[e->from].name,
					 peer);
		} else if (rc == 0) {
			snprintf(err, sizeof(err), "meshctl peers exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		}
		free(out);
		if (rc == 0 && !strcmp(path, e->path) &&
		    ping_once(lab, e->from, ip, e->count, &got, &rtt, err, sizeof(err)) == 0 && got == e->count) {
			r->verdict = SIM_VERDICT_PASS;
			r->rtt_ms = rtt;
			sim_strf(r->detail, sizeof(r->detail), "%s via %s, rtt %.3f ms", ip, path, rtt);
			break;
		}
		if (rc == 0 && strcmp(path, e->path))
			snprintf(err, sizeof(err), "path is %s", path);
		else if (rc == 0 && !err[0])
			snprintf(err, sizeof(err), "path is %s but %s answered %d/%d pings", path, ip, got,
				 e->count);
		if (elapsed(t0) >= (uint64_t)e->within_ms || sim_stop_requested) {
			sim_strf(r->detail, sizeof(r->detail), "not %s within %d ms: %s", e->path, e->within_ms, err);
			break;
		}
		pause_ms(RETRY_PAUSE_MS);
	}
	r->time_ms = elapsed(t0);
}

static void expect_command(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	uint64_t t0 = clock_now_ms();
	for (;;) {
		char *out = NULL;
		int st = 0;
		int left = e->within_ms ? (int)(e->within_ms - (int)elapsed(t0)) : COMMAND_DEFAULT_TIMEOUT_MS;
		int rc = sim_lab_run(lab, e->from, e->argv.v, left > 100 ? left : 100, &out, &st);
		int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		bool exit_ok = rc == 0 && code == e->expect_exit;
		bool out_ok = !e->has_regex || (out && regexec(&e->regex, out, 0, NULL, 0) == 0);
		/* the last line of output goes into the detail */
		char *last = out ? out + strlen(out) : NULL;
		while (last && last > out && (last[-1] == '\n' || last[-1] == ' '))
			*--last = '\0';
		char *nl = out ? strrchr(out, '\n') : NULL;
		if (exit_ok && out_ok) {
			r->verdict = SIM_VERDICT_PASS;
			sim_strf(r->detail, sizeof(r->detail), "exit %d%s%.100s", code,
				 out && out[0] ? ": " : "", nl ? nl + 1 : out ? out : "");
		} else {
			r->verdict = SIM_VERDICT_FAIL;
			if (rc)
				sim_strf(r->detail, sizeof(r->detail), "%s; last output: %.120s",
					 rc == -ETIMEDOUT ? "timed out" : strerror(-rc), nl ? nl + 1 : out ? out : "");
			else
				sim_strf(r->detail, sizeof(r->detail), "exit %d (want %d)%s; last output: %.120s", code,
					 e->expect_exit, out_ok ? "" : ", output does not match", nl ? nl + 1 : out ? out : "");
		}
		free(out);
		if (r->verdict == SIM_VERDICT_PASS || elapsed(t0) + RETRY_PAUSE_MS >= (uint64_t)e->within_ms ||
		    sim_stop_requested)
			break;
		pause_ms(RETRY_PAUSE_MS);
	}
	r->time_ms = elapsed(t0);
}

static void expect_action(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	uint64_t t0 = clock_now_ms();
	int rc = 0, st = 0;
	if (e->has_cond) {
		rc = sim_lab_run(lab, e->from, e->argv.v, COND_TIMEOUT_MS, NULL, &st);
		if (rc || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			r->verdict = SIM_VERDICT_SKIPPED;
			sim_strf(r->detail, sizeof(r->detail), "skipped: the condition %s",
				 rc ? strerror(-rc) : WIFEXITED(st) ? "exited non-zero" : "was killed");
			r->time_ms = elapsed(t0);
			return;
		}
	}
	if (e->kind == SIM_EXPECT_STOP || e->kind == SIM_EXPECT_RESTART)
		rc = sim_lab_proc_stop(lab, e->proc);
	if (rc == -EALREADY && e->kind == SIM_EXPECT_RESTART)
		rc = 0;
	if (!rc && (e->kind == SIM_EXPECT_START || e->kind == SIM_EXPECT_RESTART)) {
		rc = sim_lab_proc_start(lab, e->proc);
		if (!rc)
			rc = sim_lab_proc_wait(lab, e->proc);
	}
	r->verdict = rc ? SIM_VERDICT_FAIL : SIM_VERDICT_PASS;
	if (rc == -EALREADY)
		sim_strf(r->detail, sizeof(r->detail), "the process is already %s",
			 e->kind == SIM_EXPECT_STOP ? "stopped" : "running");
	else if (rc)
		sim_strf(r->detail, sizeof(r->detail), "%s", lab->err[0] ? lab->err : strerror(-rc));
	else if (e->kind != SIM_EXPECT_STOP)
		sim_strf(r->detail, sizeof(r->detail), "pid %d", (int)lab->procs[e->proc].pid);
	r->time_ms = elapsed(t0);
}

/* sends the step's update to the link's delay line; the line refuses what
 * it cannot take (the parser checked it already) */
static void expect_impair(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r)
{
	const struct sim_link *k = &lab->sc->links[e->link];
	uint64_t t0 = clock_now_ms();
	char *reply = NULL;
	int rc = sim_lab_impair_ctl(lab, e->link, e->update, &reply);
	json_t *j = reply ? json_loads(reply, 0, NULL) : NULL;
	const char *err = json_string_value(json_object_get(j, "error"));
	r->verdict = rc || !j || err ? SIM_VERDICT_FAIL : SIM_VERDICT_PASS;
	if (rc)
		sim_strf(r->detail, sizeof(r->detail), "the delay line of %s/%s: %s", lab->sc->nodes[k->node].name,
			 k->ifname, strerror(-rc));
	else if (!j || err)
		sim_strf(r->detail, sizeof(r->detail), "the delay line refused it: %s", err ? err : "no JSON answer");
	else
		sim_strf(r->detail, sizeof(r->detail), "%s/%s now %.150s", lab->sc->nodes[k->node].name, k->ifname,
			 e->update);
	json_decref(j);
	free(reply);
	r->time_ms = elapsed(t0);
}

void sim_expect_run(struct sim_lab *lab, size_t i, struct sim_result *r)
{
	const struct sim_expect *e = &lab->sc->expects[i];
	memset(r, 0, sizeof(*r));
	r->rtt_ms = -1;
	switch (e->kind) {
	case SIM_EXPECT_PING:
		expect_ping(lab, e, r);
		break;
	case SIM_EXPECT_PATH:
		expect_path(lab, e, r);
		break;
	case SIM_EXPECT_COMMAND:
		expect_command(lab, e, r);
		break;
	case SIM_EXPECT_SLEEP:
		pause_ms(e->sleep_ms);
		r->time_ms = (uint64_t)e->sleep_ms;
		r->verdict = SIM_VERDICT_PASS;
		break;
	case SIM_EXPECT_STOP:
	case SIM_EXPECT_START:
	case SIM_EXPECT_RESTART:
		expect_action(lab, e, r);
		break;
	case SIM_EXPECT_IMPAIR:
		expect_impair(lab, e, r);
		break;
	case SIM_EXPECT_REBOOT:
		sim_portmapd_reboot(lab, e, r);
		break;
	}
}

/* --- report --------------------------------------------------------------- */

#define SIM_REPORT_NAMES 64
#define SIM_KEY_B64 45			/* a WireGuard key in base64, with the NUL */

/* the public key of the agent whose --state-dir (unexpanded) is dir, from its
 * private.key, base64 into out; 0 or a negative errno (no key there yet: the
 * agent never started) */
static int agent_public_key(struct sim_lab *lab, size_t node, const char *dir, char out[SIM_KEY_B64])
{
	char *path = NULL, *file = NULL, b64[64] = { 0 };
	uint8_t priv[crypto_scalarmult_SCALARBYTES], pub[crypto_scalarmult_BYTES];
	size_t n = 0;
	FILE *f = NULL;
	int rc = sim_lab_expand(lab, node, dir, &path);

	if (rc < 0)
		return rc;
	if (asprintf(&file, "%s/private.key", path) < 0) {
		file = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (!(f = fopen(file, "r"))) {
		rc = -errno;
		goto out;
	}
	rc = -EINVAL;
	if (!fgets(b64, sizeof(b64), f) ||
	    sodium_base642bin(priv, sizeof(priv), b64, strcspn(b64, "\r\n"), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || n != sizeof(priv) ||
	    crypto_scalarmult_base(pub, priv) != 0)
		goto out;
	sodium_bin2base64(out, SIM_KEY_B64, pub, sizeof(pub), sodium_base64_VARIANT_ORIGINAL);
	rc = 0;
out:
	if (f)
		fclose(f);
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(b64, sizeof(b64));
	free(file);
	free(path);
	return rc;
}

void sim_traversal_report(struct sim_lab *lab, json_t **json, char *summary, size_t len)
{
	char exe[PATH_MAX], txt[PATH_MAX];
	char *out = NULL;
	int st;
	*json = NULL;
	summary[0] = '\0';
	if (sim_strf(exe, sizeof(exe), "%s/traversal-report", lab->build_dir) || access(exe, X_OK) < 0 ||
	    sim_strf(txt, sizeof(txt), "%s/traversal.txt", lab->run_dir))
		return;
	/* what the lab knows and the captures cannot tell for sure: which nodes
	 * run the relay (with pings in a full mesh, any peer's traffic can look
	 * forwarded), the names of the agents and their public keys (which
	 * prove, by mac1, whom an unanswered handshake initiation was for) */
	char *argv[2 + 6 * SIM_REPORT_NAMES + 2];
	char names[SIM_REPORT_NAMES][SIM_NAME_MAX * 2 + 16];
	char keys[SIM_REPORT_NAMES][SIM_KEY_B64 + 1 + SIM_NAME_MAX];
	size_t nargs = 0, nnames = 0, nkeys = 0;
	argv[nargs++] = exe;
	argv[nargs++] = "--json";
	for (size_t i = 0; i < lab->sc->nprocs && nnames < SIM_REPORT_NAMES; i++) {
		const struct sim_proc *p = &lab->sc->procs[i];
		const char *prog = p->argv.n ? strrchr(p->argv.v[0], '/') : NULL;
		prog = prog ? prog + 1 : p->argv.n ? p->argv.v[0] : "";
		if (strcmp(prog, "meshd"))
			continue;
		bool relay = false;
		for (size_t k = 1; k < p->argv.n; k++)
			relay |= !strcmp(p->argv.v[k], "--relay");
		const char *node = lab->sc->nodes[p->node].name;
		if (relay) {
			argv[nargs++] = "--relay";
			snprintf(names[nnames], sizeof(names[nnames]), "${ip:%s}", node);
			argv[nargs++] = names[nnames++];
		}
		if (nnames < SIM_REPORT_NAMES) {
			argv[nargs++] = "--name";
			snprintf(names[nnames], sizeof(names[nnames]), "${ip:%s}=%s", node, node);
			argv[nargs++] = names[nnames++];
		}
		for (size_t k = 1; k + 1 < p->argv.n && nkeys < SIM_REPORT_NAMES; k++) {
			char pub[SIM_KEY_B64];
			if (strcmp(p->argv.v[k], "--state-dir") || agent_public_key(lab, p->node, p->argv.v[k + 1], pub) < 0)
				continue;
			snprintf(keys[nkeys], sizeof(keys[nkeys]), "%s=%s", pub, node);
			argv[nargs++] = "--key";
			argv[nargs++] = keys[nkeys++];
			break;
		}
	}
	argv[nargs++] = "${run}";
	argv[nargs] = NULL;
	/* the text report: the same arguments without --json */
	char *text_argv[sizeof(argv) / sizeof(argv[0])];
	text_argv[0] = exe;
	memcpy(text_argv + 1, argv + 2, (nargs - 1) * sizeof(char *));
	char **json_argv = argv;
	if (sim_lab_run(lab, SIZE_MAX, text_argv, 30000, &out, &st) == 0 && out) {
		FILE *f = fopen(txt, "w");
		if (f) {
			fputs(out, f);
			fclose(f);
		}
		char *end = out + strlen(out);
		while (end > out && end[-1] == '\n')
			*--end = '\0';
		char *nl = strrchr(out, '\n');
		snprintf(summary, len, "%s", nl ? nl + 1 : out);
	}
	free(out);
	out = NULL;
	if (sim_lab_run(lab, SIZE_MAX, json_argv, 30000, &out, &st) == 0 && out && WIFEXITED(st))
		*json = json_loads(out, 0, NULL);
	free(out);
}

static const char *proc_state_name(enum sim_proc_state s)
{
	static const char *const names[] = { "idle", "starting", "ready", "done", "stopped", "failed" };
	return names[s];
}

static const char *kind_name(enum sim_expect_kind k)
{
	static const char *const names[] = { "ping", "path", "command", "stop", "start", "restart", "sleep",
					     "impair", "reboot" };
	return names[k];
}

/* a meshd started with --relay: meshsim report names it to traversal-report */
static bool proc_is_relay(const struct sim_proc *p)
{
	const char *prog = p->argv.n ? strrchr(p->argv.v[0], '/') : NULL;
	bool relay = false;
	prog = prog ? prog + 1 : p->argv.n ? p->argv.v[0] : "";
	for (size_t k = 1; k < p->argv.n && !strcmp(prog, "meshd"); k++)
		relay |= !strcmp(p->argv.v[k], "--relay");
	return relay;
}

static const char *const node_kind_names[] = { "host", "router", "nat" };

static json_t *networks_json(const struct sim_scenario *sc)
{
	json_t *a = json_array();
	for (size_t i = 0; i < sc->nnets; i++) {
		char c[CIDR_STRLEN];
		json_t *o = json_pack("{s:s}", "name", sc->nets[i].name);
		if (sc->nets[i].has_cidr)
			json_object_set_new(o, "cidr", json_string(cidr_format(&sc->nets[i].cidr, c, sizeof(c))));
		json_array_append_new(a, o);
	}
	return a;
}

/* the model in RFC 4787 words, as the lab applied it */
static json_t *nat_json(const struct sim_node *n)
{
	struct natmodel m;
	struct natmodel_error err = { { 0 }, { 0 } };
	char desc[NATMODEL_STRLEN];
	json_t *o = json_pack("{s:s}", "wan", n->wan);
	if (natmodel_from_json(n->nat, &m, &err) == 0)
		json_object_set_new(o, "model", json_string(natmodel_format(&m, desc, sizeof(desc))));
	return o;
}

static json_t *link_json(const struct sim_scenario *sc, const struct sim_link *k)
{
	char c[CIDR_STRLEN], d[128];
	json_t *o = json_pack("{s:s, s:s, s:s}", "ifname", k->ifname, "network", sc->nets[k->network].name,
			      "address", cidr_format(&k->addr, c, sizeof(c)));
	if (k->loss_percent)
		json_object_set_new(o, "loss_percent", json_integer(k->loss_percent));
	for (int dir = 0; k->impaired && dir < IMPAIR_NDIRS; dir++)
		if (impair_conf_active(&k->impair[dir]))
			json_object_set_new(o, impair_dir_name(dir), json_string(impair_conf_format(&k->impair[dir], d, sizeof(d))));
	return o;
}

json_t *sim_report_json(const struct sim_lab *lab, const struct sim_result *results, size_t nresults,
			const char *verdict, const char *error, uint64_t duration_ms, json_t *traversal)
{
	const struct sim_scenario *sc = lab->sc;
	json_t *j = json_object(), *nodes = json_array(), *procs = json_array(), *exps = json_array(),
	       *pcaps = json_array();
	if (!j || !nodes || !procs || !exps || !pcaps)
		goto nomem;
	json_object_set_new(j, "scenario", json_string(sc->name));
	json_object_set_new(j, "file", json_string(sc->file));
	if (sc->description)
		json_object_set_new(j, "description", json_string(sc->description));
	json_object_set_new(j, "lab", json_string(lab->id));
	json_object_set_new(j, "run_dir", json_string(lab->run_dir));
	json_object_set_new(j, "verdict", json_string(verdict));
	if (error)
		json_object_set_new(j, "error", json_string(error));
	json_object_set_new(j, "duration_ms", json_integer((json_int_t)duration_ms));
	json_object_set_new(j, "networks", networks_json(sc));
	for (size_t i = 0; i < sc->nnodes; i++) {
		json_t *n = json_object(), *addrs = json_array(), *links = json_array();
		char ns[64];
		sim_lab_ns_name(lab->id, sc->nodes[i].name, ns, sizeof(ns));
		json_object_set_new(n, "name", json_string(sc->nodes[i].name));
		json_object_set_new(n, "namespace", json_string(ns));
		json_object_set_new(n, "kind", json_string(node_kind_names[sc->nodes[i].kind]));
		if (sc->nodes[i].kind == SIM_NODE_NAT)
			json_object_set_new(n, "nat", nat_json(&sc->nodes[i]));
		for (size_t k = 0; k < sc->nlinks; k++) {
			char c[CIDR_STRLEN], buf[CIDR_STRLEN + IFNAMSIZ + 4];
			if (sc->links[k].node != i)
				continue;
			snprintf(buf, sizeof(buf), "%s %s", sc->links[k].ifname,
				 cidr_format(&sc->links[k].addr, c, sizeof(c)));
			json_array_append_new(addrs, json_string(buf));
			json_array_append_new(links, link_json(sc, &sc->links[k]));
		}
		json_object_set_new(n, "addresses", addrs);
		json_object_set_new(n, "links", links);
		json_array_append_new(nodes, n);
	}
	json_object_set_new(j, "nodes", nodes);
	for (size_t i = 0; i < sc->nprocs; i++) {
		const struct sim_proc_run *r = &lab->procs[i];
		json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:I}", "node", sc->nodes[sc->procs[i].node].name, "name",
				      sc->procs[i].name, "state", proc_state_name(r->state), "log", r->log,
				      "started_at_ms", (json_int_t)r->start_ms);
		if (p && proc_is_relay(&sc->procs[i]))
			json_object_set_new(p, "relay", json_true());
		if (p && r->ready_ms >= r->start_ms && (r->state == SIM_PROC_READY || r->state == SIM_PROC_DONE ||
							r->state == SIM_PROC_STOPPED))
			json_object_set_new(p, "ready_ms", json_integer((json_int_t)(r->ready_ms - r->start_ms)));
		json_array_append_new(procs, p);
	}
	json_object_set_new(j, "processes", procs);
	for (size_t i = 0; i < sc->nlinks && !lab->no_capture; i++) {
		char path[PATH_MAX + 64];
		snprintf(path, sizeof(path), "%s/pcap/%s-%s.pcap", lab->run_dir, sc->nodes[sc->links[i].node].name,
			 sc->links[i].ifname);
		json_array_append_new(pcaps, json_string(path));
	}
	json_object_set_new(j, "pcaps", pcaps);
	for (size_t i = 0; i < sc->nexpects; i++) {
		json_t *x = json_pack("{s:s, s:s}", "name", sc->expects[i].label, "kind", kind_name(sc->expects[i].kind));
		const struct sim_result *r = i < nresults ? &results[i] : NULL;
		json_object_set_new(x, "verdict", json_string(r ? (r->verdict == SIM_VERDICT_FAIL ? "fail" :
								   verdict_names[r->verdict])
								 : "skipped"));
		if (r) {
			json_object_set_new(x, "time_ms", json_integer((json_int_t)r->time_ms));
			json_object_set_new(x, "at_ms", json_integer((json_int_t)r->at_ms));
			if (r->rtt_ms >= 0)
				json_object_set_new(x, "rtt_ms", json_real(r->rtt_ms));
			json_object_set_new(x, "detail", json_string(r->detail));
		}
		json_array_append_new(exps, x);
	}
	json_object_set_new(j, "expectations", exps);
	if (traversal)
		json_object_set(j, "traversal", traversal);
	return j;
nomem:
	json_decref(j);
	json_decref(nodes);
	json_decref(procs);
	json_decref(exps);
	json_decref(pcaps);
	return NULL;
}

void sim_report_table(FILE *f, const struct sim_lab *lab, const struct sim_result *results, size_t nresults,
		      const char *verdict, const char *error, uint64_t duration_ms, const char *traversal)
{
	const struct sim_scenario *sc = lab->sc;
	fprintf(f, "scenario %s: %s in %.1f s (lab %s)\n", sc->name, verdict, (double)duration_ms / 1000, lab->id);
	if (error)
		fprintf(f, "  error: %s\n", error);
	if (sc->nexpects) {
		int w = 11;
		for (size_t i = 0; i < sc->nexpects; i++)
			if ((int)strlen(sc->expects[i].label) > w)
				w = (int)strlen(sc->expects[i].label);
		fprintf(f, "  %-3s %-7s %8s  %-*s  %s\n", "#", "result", "time", w, "expectation", "detail");
		for (size_t i = 0; i < sc->nexpects; i++) {
			const struct sim_result *r = i < nresults ? &results[i] : NULL;
			char t[32] = "-";
			if (r)
				snprintf(t, sizeof(t), "%.2f s", (double)r->time_ms / 1000);
			fprintf(f, "  %-3zu %-7s %8s  %-*s  %s\n", i + 1, r ? verdict_names[r->verdict] : "skipped", t, w,
				sc->expects[i].label, r ? r->detail : "");
		}
	}
	for (size_t i = 0; i < sc->nprocs; i++)
		if (lab->procs[i].state == SIM_PROC_FAILED)
			fprintf(f, "  process %s/%s failed; log %s\n", sc->nodes[sc->procs[i].node].name,
				sc->procs[i].name, lab->procs[i].log);
	if (traversal && traversal[0])
		fprintf(f, "  traversal-report: %s (%s/traversal.txt)\n", traversal, lab->run_dir);
	fprintf(f, "  captures and logs: %s\n", lab->run_dir);
}
