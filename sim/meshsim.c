/* meshsim: builds a scenario's lab of network namespaces, NAT gateways and
 * processes, captures every link, checks the scenario's expectations and
 * tears it all down. See sim/scenario.h for the file format. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop.h"
#include "nat-models/natmodel.h"
#include "sim/expect.h"
#include "sim/gridcli.h"
#include "sim/impaircli.h"
#include "sim/lab.h"
#include "sim/netns.h"
#include "sim/report_html.h"
#include "sim/reportcli.h"
#include "sim/scenario.h"

enum exit_code {
	EXIT_PASS = 0,
	EXIT_MISMATCH = 1,	/* an expectation failed */
	EXIT_USAGE = 2,		/* bad arguments or an invalid scenario */
	EXIT_LAB = 3,		/* the lab could not be built or started */
	EXIT_INTERRUPTED = 130,
};

static const char usage_text[] =
	"usage: meshsim VERB ...\n"
	"  run FILE [--out DIR] [--keep] [--no-capture]\n"
	"                                  build the lab, check the expectations, tear down\n"
	"  up FILE [--out DIR] [--no-capture]\n"
	"                                  build the lab and start its processes, then return\n"
	"  exec LAB NODE -- CMD...         run CMD inside NODE of a lab that is up\n"
	"  down LAB                        stop a lab's processes and remove its namespaces\n"
	"  list                            the labs on this machine\n"
	"  nat NETNS MODEL --wan IFNAME    apply a NAT model (preset or JSON) in a namespace\n"
	"  impair run|set|show NETNS --dev A ...\n"
	"                                  delay, jitter, loss, duplication, reordering, rate\n"
	"                                  between two interfaces of a namespace\n"
	"  clean                           remove labs whose meshsim is gone\n"
	"  validate FILE                   check a scenario file\n"
	"  report RUN_DIR                  rebuild a kept run folder's report.html\n"
	"  grid [--out FILE] RUN_DIR...    the NAT pair grid (grid.html) of pair runs\n"
	"Every verb takes --help. The scenario format is described in sim/scenario.h.\n";

static const struct {
	const char *verb, *help;
} verb_help[] = {
	{ "run", "usage: meshsim run FILE [--out DIR] [--keep] [--no-capture]\n"
		 "Builds FILE's lab (namespaces named nmsXXXX-NAME), captures every link into DIR/pcap,\n"
		 "starts the processes in dependency order, checks the expectations in order, prints a\n"
		 "table and writes DIR/report.json and DIR/report.html. DIR defaults to /tmp/meshsim/SCENARIO-LAB.\n"
		 "The lab is torn down at the end, on a timeout (the scenario's timeout_s) and on\n"
		 "SIGINT/SIGTERM, unless --keep leaves it up (remove it with `meshsim down LAB`).\n"
		 "--no-capture records no pcaps (for large labs and benchmarks).\n"
		 "Exit status: 0 every expectation held, 1 one did not, 2 bad file or arguments,\n"
		 "3 the lab could not be built or a process not started, 130 interrupted.\n" },
	{ "up", "usage: meshsim up FILE [--out DIR] [--no-capture]\n"
		"Builds FILE's lab and starts its processes and captures, prints the lab's name and\n"
		"returns, leaving everything running. `meshsim exec LAB NODE -- CMD` or\n"
		"`ip netns exec LAB-NODE CMD` work inside it; `meshsim down LAB` removes it.\n" },
	{ "exec", "usage: meshsim exec LAB NODE -- CMD [ARG...]\n"
		  "Runs CMD in NODE's namespace of LAB with the node's host name, its own /run/meshd\n"
		  "and the build directory first in PATH; exits with CMD's status.\n" },
	{ "down", "usage: meshsim down LAB\n"
		  "Stops every process in LAB's namespaces (captures flush their files), then deletes\n"
		  "the namespaces; the run folder stays.\n" },
	{ "list", "usage: meshsim list\nLists the labs on this machine: name, scenario, namespaces, owner, run folder.\n" },
	{ "nat", "usage: meshsim nat NETNS MODEL --wan IFNAME\n"
		 "       meshsim nat NETNS --remove\n"
		 "Applies a NAT model to the existing namespace NETNS (a name under /run/netns), with\n"
		 "IFNAME as the outside interface: NAT44 to its first IPv4 address, NAT66 to its first\n"
		 "global IPv6 address. MODEL is a preset (full-cone, restricted-cone,\n"
		 "port-restricted-cone, symmetric) or JSON such as\n"
		 "'{\"preset\":\"full-cone\",\"hairpinning\":true,\"udp_timeout\":30}'.\n" },
	{ "impair", sim_impair_usage },
	{ "report", sim_report_usage },
	{ "grid", sim_grid_usage },
	{ "clean", "usage: meshsim clean\n"
		   "Removes every lab (namespaces nmsXXXX-*, their processes and state files) that no\n"
		   "running `meshsim run` owns: leftovers of crashes and forgotten `meshsim up` labs.\n" },
	{ "validate", "usage: meshsim validate FILE...\n"
		      "Checks scenario files; an error names the file, the JSON path and the reason.\n" },
};

/* a verb's usage: on stdout for --help, on stderr for bad arguments */
static void help_of(const char *verb, FILE *f)
{
	for (size_t i = 0; i < sizeof(verb_help) / sizeof(verb_help[0]); i++)
		if (!strcmp(verb_help[i].verb, verb))
			fputs(verb_help[i].help, f);
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

static void on_signal(int sig)
{
	(void)sig;
	sim_stop_requested = 1;
}

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	sim_stop_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int need_root(void)
{
	if (geteuid() == 0)
		return 0;
	fprintf(stderr, "meshsim: this verb makes network namespaces and needs root\n");
	return EXIT_USAGE;
}

/* "nms1a2b", "nms1a2b-" or "nms1a2b-node" -> "nms1a2b" */
static int lab_id_of(const char *s, char *out, size_t len)
{
	size_t n = strlen(SIM_LAB_PREFIX);
	if (strncmp(s, SIM_LAB_PREFIX, n))
		return -EINVAL;
	for (size_t i = 0; i < 4; i++)
		if (!isxdigit((unsigned char)s[n + i]))
			return -EINVAL;
	if (s[n + 4] && s[n + 4] != '-')
		return -EINVAL;
	snprintf(out, len, "%.*s", (int)n + 4, s);
	return 0;
}

static int load(const char *file, struct sim_scenario **sc)
{
	char err[SIM_ERR_MAX];
	if (sim_scenario_load(file, sc, err, sizeof(err)) < 0) {
		fprintf(stderr, "meshsim: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_validate(int argc, char **argv)
{
	int rc = 0;
	if (argc < 2) {
		help_of("validate", stderr);
		return EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++) {
		struct sim_scenario *sc;
		if (load(argv[i], &sc)) {
			rc = EXIT_USAGE;
			continue;
		}
		printf("%s: ok: %zu networks, %zu nodes, %zu links, %zu processes, %zu expectations\n", argv[i],
		       sc->nnets, sc->nnodes, sc->nlinks, sc->nprocs, sc->nexpects);
		sim_scenario_free(sc);
	}
	return rc;
}

struct run_opts {
	const char *file;
	const char *out;
	bool keep;
	bool no_capture;
};

static int parse_run_opts(int argc, char **argv, bool allow_keep, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-capture", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
		if (c == 'o')
			o->out = optarg;
		else if (c == 'n')
			o->no_capture = true;
		else if (c == 'k' && allow_keep)
			o->keep = true;
		else
			return -EINVAL;
	}
	if (optind != argc - 1)
		return -EINVAL;
	o->file = argv[optind];
	return 0;
}

/* run and up share the way up: build, capture, start */
static int lab_up(struct sim_lab *lab)
{
	int rc = sim_lab_build(lab);
	if (!rc)
		rc = sim_lab_capture(lab);
	if (!rc)
		rc = sim_lab_start(lab);
	return rc;
}

/* why a run has no traversal JSON, for the page */
static const char *traversal_note(const struct sim_lab *lab)
{
	return lab->no_capture ? "the run had no captures (--no-capture)"
			       : "traversal-report did not run or did not print JSON (see traversal.txt)";
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct sim_scenario *sc = NULL;
	struct sim_lab *lab = NULL;
	struct sim_result *results = NULL;
	size_t nresults = 0;
	const char *verdict = "PASS", *error = NULL;
	int code = EXIT_PASS, rc;

	if (parse_run_opts(argc, argv, true, &o) < 0) {
		help_of("run", stderr);
		return EXIT_USAGE;
	}
	if ((code = need_root()) || (code = load(o.file, &sc)))
		return code;
	install_signals();
	rc = sim_lab_new(sc, o.out, o.keep, &lab);
	if (rc) {
		sim_scenario_free(sc);
		return EXIT_LAB;
	}
	lab->no_capture = o.no_capture;
	sim_lab_progress(lab, "scenario %s (%s), run folder %s", sc->name, o.file, lab->run_dir);
	alarm((unsigned)(sc->timeout_ms / 1000));
	results = calloc(sc->nexpects + 1, sizeof(*results));
	rc = results ? lab_up(lab) : -ENOMEM;
	if (rc) {
		error = lab->err[0] ? lab->err : strerror(-rc);
		verdict = "ERROR";
		code = EXIT_LAB;
		sim_lab_progress(lab, "error: %s", error);
	}
	for (size_t i = 0; !rc && i < sc->nexpects && !sim_stop_requested; i++) {
		sim_lab_progress(lab, "expect %zu/%zu: %s", i + 1, sc->nexpects, sc->expects[i].label);
		sim_expect_run(lab, i, &results[i]);
		results[i].at_ms = sim_lab_clock(lab);
		nresults = i + 1;
		sim_lab_progress(lab, "  %s (%.2f s) %s", results[i].verdict == SIM_VERDICT_PASS      ? "pass"
				 : results[i].verdict == SIM_VERDICT_SKIPPED ? "skip"
									     : "FAIL",
				 (double)results[i].time_ms / 1000, results[i].detail);
		if (results[i].verdict == SIM_VERDICT_FAIL) {
			verdict = "FAIL";
			code = EXIT_MISMATCH;
		}
	}
	if (!rc && sim_lab_reap(lab) > 0) {
		verdict = "FAIL";
		error = "a process exited while the expectations ran";
		code = EXIT_MISMATCH;
	}
	alarm(0);
	if (timed_out) {
		verdict = "TIMEOUT";
		error = "the scenario's timeout_s ran out";
		code = EXIT_MISMATCH;
	} else if (sim_stop_requested) {
		verdict = "INTERRUPTED";
		error = "interrupted by a signal";
		code = EXIT_INTERRUPTED;
	}
	static char errcopy[SIM_ERR_MAX];
	if (error == lab->err) {
		snprintf(errcopy, sizeof(errcopy), "%s", lab->err);
		error = errcopy;
	}
	/* the delay lines' counters, while they still run */
	json_t *impairments = rc ? NULL : sim_lab_impair_report(lab);
	if (o.keep && !sim_stop_requested) {
		sim_lab_progress(lab, "lab %s kept; remove it with: meshsim down %s", lab->id, lab->id);
	} else {
		sim_lab_teardown(lab);
	}
	json_t *traversal = NULL;
	char summary[256];
	sim_traversal_report(lab, &traversal, summary, sizeof(summary));
	uint64_t duration = sim_lab_clock(lab);
	json_t *report = sim_report_json(lab, results, nresults, verdict, error, duration, traversal);
	json_decref(traversal);
	if (report && json_array_size(impairments))
		json_object_set(report, "impairments", impairments);
	json_decref(impairments);
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/report.json", lab->run_dir);
	if (!report || json_dump_file(report, path, JSON_INDENT(2)) < 0)
		fprintf(stderr, "meshsim: cannot write %s\n", path);
	char herr[PATH_MAX + 128];
	/* the page is a view of report.json: without it the run still stands */
	if (report && sim_report_html_write(lab->run_dir, report, traversal_note(lab), herr, sizeof(herr)) < 0)
		fprintf(stderr, "meshsim: cannot write the page: %s\n", herr);
	json_decref(report);
	sim_report_table(stdout, lab, results, nresults, verdict, error, duration, summary);
	free(results);
	sim_lab_free(lab);
	sim_scenario_free(sc);
	return code;
}

static int cmd_up(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct sim_scenario *sc = NULL;
	struct sim_lab *lab = NULL;
	int code, rc;

	if (parse_run_opts(argc, argv, false, &o) < 0) {
		help_of("up", stderr);
		return EXIT_USAGE;
	}
	if ((code = need_root()) || (code = load(o.file, &sc)))
		return code;
	install_signals();
	rc = sim_lab_new(sc, o.out, true, &lab);
	if (rc) {
		sim_scenario_free(sc);
		return EXIT_LAB;
	}
	lab->no_capture = o.no_capture;
	alarm((unsigned)(sc->timeout_ms / 1000));
	rc = lab_up(lab);
	alarm(0);
	if (rc) {
		fprintf(stderr, "meshsim: %s\n", lab->err[0] ? lab->err : strerror(-rc));
		sim_lab_teardown(lab);
		code = sim_stop_requested ? EXIT_INTERRUPTED : EXIT_LAB;
	} else {
		printf("%s\n", lab->id);
		fprintf(stderr, "lab %s is up; run folder %s\n", lab->id, lab->run_dir);
		for (size_t i = 0; i < sc->nnodes; i++)
			fprintf(stderr, "  meshsim exec %s %s -- CMD     (or: ip netns exec %s-%s CMD)\n", lab->id,
				sc->nodes[i].name, lab->id, sc->nodes[i].name);
		fprintf(stderr, "  meshsim down %s\n", lab->id);
	}
	sim_lab_free(lab);
	sim_scenario_free(sc);
	return code;
}

static json_t *read_state(const char *lab_id)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), SIM_STATE_DIR "/%s.json", lab_id);
	return json_load_file(path, 0, NULL);
}

static int cmd_exec(int argc, char **argv)
{
	char id[SIM_LAB_ID_MAX], ns[64], build[PATH_MAX];
	if (argc < 5 || strcmp(argv[3], "--") || lab_id_of(argv[1], id, sizeof(id)) < 0) {
		help_of("exec", stderr);
		return EXIT_USAGE;
	}
	if (need_root())
		return EXIT_USAGE;
	sim_lab_ns_name(id, argv[2], ns, sizeof(ns));
	int fd = netns_open(ns);
	if (fd < 0) {
		fprintf(stderr, "meshsim: lab %s has no node %s (no namespace %s)\n", id, argv[2], ns);
		return EXIT_USAGE;
	}
	close(fd);
	json_t *st = read_state(id);
	const char *run = json_string_value(json_object_get(st, "run_dir"));
	ssize_t n = readlink("/proc/self/exe", build, sizeof(build) - 1);
	build[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(build, '/');
	if (slash)
		*slash = '\0';
	int rc = sim_lab_enter_node(id, argv[2], run ? run : "/tmp", build);
	json_decref(st);
	if (rc) {
		fprintf(stderr, "meshsim: cannot enter %s: %s\n", ns, strerror(-rc));
		return EXIT_LAB;
	}
	execvp(argv[4], argv + 4);
	fprintf(stderr, "meshsim: %s: %s\n", argv[4], strerror(errno));
	return 127;
}

static int cmd_down(int argc, char **argv)
{
	char id[SIM_LAB_ID_MAX];
	if (argc != 2 || lab_id_of(argv[1], id, sizeof(id)) < 0) {
		help_of("down", stderr);
		return EXIT_USAGE;
	}
	if (need_root())
		return EXIT_USAGE;
	int n = sim_lab_destroy(id);
	if (n <= 0) {
		fprintf(stderr, "meshsim: no lab %s\n", id);
		return EXIT_USAGE;
	}
	printf("lab %s down: %d namespaces removed\n", id, n);
	return 0;
}

/* lab ids present on the machine: from namespaces and state files */
static size_t lab_ids(char ids[][SIM_LAB_ID_MAX], size_t max)
{
	char **names;
	size_t n, count = 0;
	if (netns_list(SIM_LAB_PREFIX, &names, &n) < 0)
		return 0;
	for (size_t i = 0; i < n && count < max; i++) {
		char id[SIM_LAB_ID_MAX];
		bool seen = false;
		if (lab_id_of(names[i], id, sizeof(id)) < 0 || !strchr(names[i], '-'))
			continue;
		for (size_t j = 0; j < count; j++)
			seen = seen || !strcmp(ids[j], id);
		if (!seen)
			snprintf(ids[count++], SIM_LAB_ID_MAX, "%s", id);
	}
	netns_list_free(names, n);
	return count;
}

static size_t lab_ns_count(const char *id)
{
	char prefix[SIM_LAB_ID_MAX + 2], **names;
	size_t n;
	snprintf(prefix, sizeof(prefix), "%s-", id);
	if (netns_list(prefix, &names, &n) < 0)
		return 0;
	netns_list_free(names, n);
	return n;
}

/* the `meshsim run` that made the lab still runs */
static bool owner_alive(json_t *st)
{
	json_int_t pid = json_integer_value(json_object_get(st, "pid"));
	char path[64], comm[32] = "";
	if (pid <= 0 || json_is_true(json_object_get(st, "detached")))
		return false;
	snprintf(path, sizeof(path), "/proc/%lld/comm", (long long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "meshsim", 7);
}

static int cmd_list(int argc, char **argv)
{
	char ids[256][SIM_LAB_ID_MAX];
	(void)argv;
	if (argc != 1) {
		help_of("list", stderr);
		return EXIT_USAGE;
	}
	size_t n = lab_ids(ids, 256);
	if (!n) {
		printf("no labs\n");
		return 0;
	}
	printf("%-8s %-28s %5s  %-9s %s\n", "LAB", "SCENARIO", "NS", "OWNER", "RUN FOLDER");
	for (size_t i = 0; i < n; i++) {
		json_t *st = read_state(ids[i]);
		const char *scen = json_string_value(json_object_get(st, "scenario"));
		const char *run = json_string_value(json_object_get(st, "run_dir"));
		const char *owner = !st ? "unknown" : owner_alive(st) ? "run" :
			json_is_true(json_object_get(st, "detached")) ? "up" : "gone";
		printf("%-8s %-28s %5zu  %-9s %s\n", ids[i], scen ? scen : "?", lab_ns_count(ids[i]), owner,
		       run ? run : "?");
		json_decref(st);
	}
	return 0;
}

static int cmd_clean(int argc, char **argv)
{
	char ids[256][SIM_LAB_ID_MAX];
	(void)argv;
	if (argc != 1) {
		help_of("clean", stderr);
		return EXIT_USAGE;
	}
	if (need_root())
		return EXIT_USAGE;
	size_t n = lab_ids(ids, 256), removed = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *st = read_state(ids[i]);
		bool busy = st && owner_alive(st);
		json_decref(st);
		if (busy) {
			printf("lab %s: kept, its meshsim run is still running\n", ids[i]);
			continue;
		}
		int d = sim_lab_destroy(ids[i]);
		printf("lab %s: %d namespaces removed\n", ids[i], d < 0 ? 0 : d);
		removed++;
	}
	printf("%zu lab%s removed\n", removed, removed == 1 ? "" : "s");
	return 0;
}

static int cmd_nat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "wan", required_argument, NULL, 'w' },
		{ "remove", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *wan = NULL;
	bool remove = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'w')
			wan = optarg;
		else if (c == 'r')
			remove = true;
		else
			goto usage;
	}
	if (remove ? (optind != argc - 1 || wan) : (optind != argc - 2 || !wan))
		goto usage;
	if (need_root())
		return EXIT_USAGE;
	struct natmodel m;
	struct natmodel_error err = { { 0 }, { 0 } };
	if (!remove && natmodel_parse(argv[optind + 1], &m, &err) < 0) {
		fprintf(stderr, "meshsim: NAT model %s: %s%s%s\n", argv[optind + 1], err.field, err.field[0] ? ": " : "",
			err.reason);
		return EXIT_USAGE;
	}
	int fd = netns_open(argv[optind]);
	if (fd < 0 || netns_enter(fd) < 0) {
		fprintf(stderr, "meshsim: namespace %s: %s\n", argv[optind], strerror(fd < 0 ? -fd : errno));
		return EXIT_USAGE;
	}
	close(fd);
	int rc = remove ? natmodel_remove(&err) : natmodel_apply(&m, wan, NULL, &err);
	if (rc < 0) {
		fprintf(stderr, "meshsim: %s: %s\n", argv[optind], err.reason[0] ? err.reason : strerror(-rc));
		return EXIT_LAB;
	}
	char desc[NATMODEL_STRLEN];
	if (remove)
		printf("%s: NAT removed\n", argv[optind]);
	else
		printf("%s: %s on %s\n", argv[optind], natmodel_format(&m, desc, sizeof(desc)), wan);
	return 0;
usage:
	help_of("nat", stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(int, char **);
	} verbs[] = {
		{ "run", cmd_run },   { "up", cmd_up },	      { "exec", cmd_exec },	    { "down", cmd_down },
		{ "list", cmd_list }, { "nat", cmd_nat },     { "clean", cmd_clean }, { "validate", cmd_validate },
		{ "impair", sim_impair_main }, { "report", sim_report_main },
		{ "grid", sim_grid_main },
	};
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].verb))
			continue;
		/* exec passes everything after -- to the command */
		if (wants_help(argc - 2, argv + 2)) {
			help_of(verbs[i].verb, stdout);
			return 0;
		}
		return verbs[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "meshsim: unknown verb \"%s\"\n%s", argv[1], usage_text);
	return EXIT_USAGE;
}
