/* reportcli: `meshsim report RUN_DIR`. report.json gives everything but the
 * traversal when it lacks one (a run with an older meshsim, or one whose
 * traversal-report failed); then BUILD/traversal-report --json reads the
 * captures. Without report.json the page is made from the captures alone. */
#include "reportcli.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report_html.h"

enum {
	REPORT_OUT_MAX = 64 << 20,	/* traversal-report's JSON for a large lab is a few MB */
	REPORT_HINTS_MAX = 256,		/* --name and --relay values */
};

const char sim_report_usage[] =
	"usage: meshsim report RUN_DIR\n"
	"Rebuilds RUN_DIR/report.html from RUN_DIR/report.json, running traversal-report on the\n"
	"captures below RUN_DIR when report.json has no traversal (or there is no report.json:\n"
	"then the page is made from the captures alone). Prints the page's path.\n"
	"Exit status: 0 written, 1 the page could not be written, 2 bad arguments.\n";

/* stdout of argv, at most REPORT_OUT_MAX bytes; *out NUL-terminated, free()d by the caller */
static int run_capture(char *const *argv, char **out)
{
	int fds[2], st;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	*out = NULL;
	if (pipe(fds) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		if (cap - len < 65536 + 1) {
			char *nb = cap >= REPORT_OUT_MAX ? NULL : realloc(buf, cap ? cap * 2 : 65536 * 2);
			if (!nb)
				break;
			buf = nb;
			cap = cap ? cap * 2 : 65536 * 2;
		}
		ssize_t n = read(fds[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!buf)
		return -ENOMEM;
	buf[len] = '\0';
	*out = buf;
	return WIFEXITED(st) && WEXITSTATUS(st) == 127 ? -ENOENT : 0;
}

/* What meshsim run told traversal-report, as far as report.json has it:
 * --name for each node with a process (its first address), --relay for the
 * relays (in a full mesh any agent's traffic can look forwarded). Without
 * the agents' keys mac1 names nobody. Returns the number of arguments. */
static size_t hint_args(const json_t *report, char **argv, char hints[][96])
{
	size_t i, k, n = 0, nh = 0;
	json_t *p, *node;
	json_array_foreach(json_object_get(report, "processes"), i, p) {
		const char *name = json_string_value(json_object_get(p, "node")), *addr = NULL;
		json_array_foreach(json_object_get(report, "nodes"), k, node)
			if (name && !strcmp(json_string_value(json_object_get(node, "name")) ?: "", name))
				addr = json_string_value(json_object_get(json_array_get(json_object_get(node, "links"), 0), "address"));
		if (!addr || nh + 2 > REPORT_HINTS_MAX)
			continue;
		int plen = (int)strcspn(addr, "/");
		if (json_is_true(json_object_get(p, "relay"))) {
			snprintf(hints[nh], sizeof(hints[nh]), "%.*s", plen, addr);
			argv[n++] = "--relay";
			argv[n++] = hints[nh++];
		}
		snprintf(hints[nh], sizeof(hints[nh]), "%.*s=%.15s", plen, addr, name);
		argv[n++] = "--name";
		argv[n++] = hints[nh++];
	}
	return n;
}

/* traversal-report --json on run_dir into report's "traversal"; note says why not */
static void add_traversal(json_t *report, const char *run_dir, char *note, size_t len)
{
	char exe[PATH_MAX], *out = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
	if (!slash) {
		snprintf(note, len, "cannot find meshsim's build directory");
		return;
	}
	strcpy(slash + 1, "traversal-report");
	char *argv[3 + 2 * REPORT_HINTS_MAX], hints[REPORT_HINTS_MAX][96];
	size_t nargs = 0;
	argv[nargs++] = exe;
	argv[nargs++] = "--json";
	nargs += hint_args(report, argv + nargs, hints);
	argv[nargs++] = (char *)run_dir;
	argv[nargs] = NULL;
	int rc = run_capture(argv, &out);
	json_error_t jerr;
	json_t *tr = rc ? NULL : json_loads(out, 0, &jerr);
	if (rc)
		snprintf(note, len, "%s: %s", exe, strerror(-rc));
	else if (!json_is_object(tr))
		snprintf(note, len, "%s --json %s: output is not a JSON object: %s", exe, run_dir,
			 tr ? "another JSON type" : jerr.text);
	else
		json_object_set(report, "traversal", tr);
	json_decref(tr);
	free(out);
}

/* what report.json would hold, from the folder alone */
static json_t *report_from_folder(const char *run_dir, const char *why)
{
	const char *base = strrchr(run_dir, '/');
	json_t *r = json_pack("{s:s, s:s, s:s}", "scenario", base && base[1] ? base + 1 : run_dir, "run_dir",
			      run_dir, "error", why);
	json_t *pcaps = json_array();
	char pat[PATH_MAX + 16];
	glob_t g;
	snprintf(pat, sizeof(pat), "%s/pcap/*.pcap", run_dir);
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			json_array_append_new(pcaps, json_string(g.gl_pathv[i]));
		globfree(&g);
	}
	json_object_set_new(r, "pcaps", pcaps);
	return r;
}

int sim_report_main(int argc, char **argv)
{
	char path[PATH_MAX], run[PATH_MAX], note[2 * PATH_MAX + 256] = "", err[PATH_MAX + 128], why[PATH_MAX + 256];
	json_error_t jerr;
	if (argc != 2 || argv[1][0] == '-') {
		fputs(sim_report_usage, stderr);
		return 2;
	}
	if (!realpath(argv[1], run)) {
		fprintf(stderr, "meshsim: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	snprintf(path, sizeof(path), "%.*s/report.json", PATH_MAX - 16, run);
	json_t *report = json_load_file(path, 0, &jerr);
	if (!json_is_object(report)) {
		snprintf(why, sizeof(why), "no report.json (%s): this page is made from the captures alone", jerr.text);
		fprintf(stderr, "meshsim: %s\n", why);
		json_decref(report);
		report = report_from_folder(run, why);
	}
	if (!json_is_object(json_object_get(report, "traversal")))
		add_traversal(report, run, note, sizeof(note));
	int rc = sim_report_html_write(run, report, note[0] ? note : NULL, err, sizeof(err));
	json_decref(report);
	if (rc) {
		fprintf(stderr, "meshsim: %s\n", err);
		return 1;
	}
	printf("%s/report.html\n", run);
	return 0;
}
