/* grid: a pair run's cell of the NAT pair grid, read from its report.json
 * (see grid.h). The page is written by grid_html.c. */
#include "grid.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static const json_t *node_named(const json_t *report, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(report, "nodes"), i, n)
		if (!strcmp(str(n, "name"), name))
			return n;
	return NULL;
}

/* The model of the NAT in front of agent name (a nat node with a link on
 * the agent's first network that is not its outside interface), as its
 * first word ("symmetric" of "symmetric (mapping=...)"); "none" without one. */
static int model_of(const json_t *report, const char *name, char *buf, size_t len, char *err, size_t errlen)
{
	const json_t *agent = node_named(report, name);
	const char *net = str(json_array_get(json_object_get(agent, "links"), 0), "network");
	size_t i, k;
	json_t *n, *l;
	if (!agent || !net[0]) {
		snprintf(err, errlen, "agent \"%s\" is not among nodes[] or has no link", name);
		return -EINVAL;
	}
	snprintf(buf, len, "none");
	json_array_foreach(json_object_get(report, "nodes"), i, n) {
		const json_t *nat = json_object_get(n, "nat");
		if (!json_is_object(nat))
			continue;
		json_array_foreach(json_object_get(n, "links"), k, l) {
			if (strcmp(str(l, "network"), net) || !strcmp(str(l, "ifname"), str(nat, "wan")))
				continue;
			const char *m = str(nat, "model");
			if (!m[0]) {
				snprintf(err, errlen, "nodes[%zu] (\"%s\"): nat has no model", i, str(n, "name"));
				return -EINVAL;
			}
			snprintf(buf, len, "%.*s", (int)strcspn(m, " "), m);
			return 0;
		}
	}
	return 0;
}

/* Whether addr is an address the agent at inner was told of by STUN or
 * that a NAT gave it (traversal-report's translations). */
static bool reflexive_of(const json_t *tr, const json_t *pair, const char *inner, const char *addr)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(tr, "translations"), i, x)
		if (!strcmp(str(x, "inner"), inner) && !strcmp(str(x, "outer"), addr))
			return true;
	json_array_foreach(json_object_get(pair, "events"), i, x)
		if (!strcmp(str(x, "type"), "stun-success") && !strcmp(str(x, "node"), inner) &&
		    (!strcmp(str(x, "xor_mapped"), addr) || !strcmp(str(x, "mapped"), addr)))
			return true;
	return false;
}

/* what the winning candidate was to the agent it reached */
static const char *technique(const json_t *tr, const json_t *pair)
{
	const char *w = str(pair, "winning_candidate"), *from = str(pair, "winning_initiator");
	const char *peer = !strcmp(from, str(pair, "a")) ? str(pair, "b") : str(pair, "a");
	if (!w[0])
		return "-";
	if (!strcmp(w, peer))
		return "local";
	return reflexive_of(tr, pair, peer, w) ? "reflexive" : "peer-reflexive";
}

static double seconds(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : -1;
}

/* the one pair of agents traversal-report found; NULL with err otherwise */
static const json_t *the_pair(const json_t *tr, char *err, size_t errlen)
{
	const json_t *found = NULL;
	size_t i, n = 0;
	json_t *p;
	json_array_foreach(json_object_get(tr, "pairs"), i, p)
		if (json_is_true(json_object_get(p, "peers"))) {
			found = p;
			n++;
		}
	if (n != 1) {
		snprintf(err, errlen, "traversal.pairs has %zu pairs of agents, a pair run has one", n);
		return NULL;
	}
	return found;
}

int sim_grid_from_report(const json_t *report, struct sim_grid_run *r, char *err, size_t errlen)
{
	const json_t *tr = json_object_get(report, "traversal"), *pair;
	memset(r, 0, sizeof(*r));
	if (!json_is_object(report) || !json_is_string(json_object_get(report, "scenario"))) {
		snprintf(err, errlen, "no \"scenario\" string: not a meshsim report");
		return -EINVAL;
	}
	if (!json_is_object(tr)) {
		snprintf(err, errlen, "no \"traversal\" object (traversal-report did not run; see traversal.txt)");
		return -EINVAL;
	}
	if (!(pair = the_pair(tr, err, errlen)))
		return -EINVAL;
	if (model_of(report, str(pair, "a_label"), r->model_a, sizeof(r->model_a), err, errlen) ||
	    model_of(report, str(pair, "b_label"), r->model_b, sizeof(r->model_b), err, errlen))
		return -EINVAL;
	snprintf(r->scenario, sizeof(r->scenario), "%s", str(report, "scenario"));
	r->passed = !strcmp(str(report, "verdict"), "PASS");
	r->direct_s = seconds(pair, "direct_first_data_s");
	r->relay_s = seconds(json_object_get(pair, "relay"), "first_data_s");
	const char *mode = str(pair, "mode");
	if (!strcmp(mode, "direct") || !strcmp(mode, "upgraded")) {
		r->outcome = SIM_GRID_DIRECT;
		r->upgraded = !strcmp(mode, "upgraded");
		snprintf(r->technique, sizeof(r->technique), "%s", technique(tr, pair));
	} else if (!strcmp(mode, "relayed")) {
		r->outcome = SIM_GRID_RELAYED;
		snprintf(r->technique, sizeof(r->technique), "relay");
	} else {
		r->outcome = SIM_GRID_FAILED;
		snprintf(r->technique, sizeof(r->technique), "-");
	}
	return 0;
}

/* to, a path, relative to the directory from (both absolute and real) */
static int relative_path(const char *from, const char *to, char *out, size_t len)
{
	size_t i = 0, base = 0, ups = 0, n = 0;
	while (from[i] && from[i] == to[i])
		if (to[i++] == '/')
			base = i;
	if (!from[i] && to[i] == '/')
		base = i + 1;	/* from is a folder above to */
	for (const char *p = from + base; *p; p++)
		ups += p == from + base || (*p == '/' && p[1] && p[-1] != '/');
	out[0] = '\0';
	while (ups--)
		n += (size_t)snprintf(out + n, n < len ? len - n : 0, "../");
	n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s", to + base);
	return n < len ? 0 : -ENAMETOOLONG;
}

int sim_grid_read(const char *run_dir, const char *page_dir, struct sim_grid_run *r, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], real[PATH_MAX], page[PATH_MAX], why[512];
	json_error_t jerr;
	int rc;
	snprintf(path, sizeof(path), "%s/report.json", run_dir);
	json_t *report = json_load_file(path, 0, &jerr);
	if (!report) {
		/* jansson's "unable to open PATH: ..." names the file already */
		if (jerr.line > 0)
			snprintf(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
		else if (strstr(jerr.text, path))
			snprintf(err, errlen, "%s", jerr.text);
		else
			snprintf(err, errlen, "%s: %s", path, jerr.text);
		return -EINVAL;
	}
	rc = sim_grid_from_report(report, r, why, sizeof(why));
	json_decref(report);
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, why);
		return rc;
	}
	if (!realpath(run_dir, real) || !realpath(page_dir, page)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", realpath(run_dir, real) ? page_dir : run_dir, strerror(-rc));
		return rc;
	}
	size_t n = strlen(real);
	if (n + sizeof("/report.html") > sizeof(real)) {
		snprintf(err, errlen, "%s: path too long", run_dir);
		return -ENAMETOOLONG;
	}
	memcpy(real + n, "/report.html", sizeof("/report.html"));
	if (relative_path(page, real, r->href, sizeof(r->href))) {
		snprintf(err, errlen, "%s: path too long", run_dir);
		return -ENAMETOOLONG;
	}
	return 0;
}
