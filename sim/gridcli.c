/* gridcli: `meshsim grid [--out FILE] RUN_DIR...` (see gridcli.h). A run
 * that cannot be read is named on stderr with the reason and listed on the
 * page; the others are still drawn. */
#include "gridcli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grid.h"

enum { GRID_REFUSED_MAX = 16384 };	/* the reasons listed on the page */

const char sim_grid_usage[] =
	"usage: meshsim grid [--out FILE] RUN_DIR...\n"
	"Writes the NAT pair grid of the given runs of pair scenarios (scenarios/pair-*.json) to FILE\n"
	"(default ./grid.html): the two agents' NAT models on both axes, each cell the outcome\n"
	"(D direct, R relayed, F failed), the time of the first data, the technique that won and a\n"
	"link to the run's report.html. Reads each RUN_DIR/report.json. Prints the page's path.\n"
	"Exit status: 0 written, 1 a run could not be read (named on stderr; the others are drawn)\n"
	"or the page could not be written, 2 bad arguments.\n";

static int write_page(const char *out, const struct sim_grid_run *runs, size_t n, const char *refused)
{
	char tmp[PATH_MAX + 8];
	int rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "meshsim: %s: %s\n", tmp, strerror(errno));
		return -errno;
	}
	rc = sim_grid_html(f, runs, n, refused);
	if (fclose(f) && !rc)
		rc = errno ? -errno : -EIO;
	if (!rc && rename(tmp, out) < 0)
		rc = -errno;
	if (rc) {
		fprintf(stderr, "meshsim: %s: %s\n", out, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

int sim_grid_main(int argc, char **argv)
{
	const char *out = "grid.html";
	char dir[PATH_MAX], err[PATH_MAX + 600], *refused = calloc(1, GRID_REFUSED_MAX);
	struct sim_grid_run *runs = calloc(SIM_GRID_RUNS_MAX, sizeof(*runs));
	size_t n = 0, nref = 0, used = 0;
	int i = 1, rc = 2;
	if (!runs || !refused) {
		fprintf(stderr, "meshsim: grid: %s\n", strerror(ENOMEM));
		goto out;
	}
	if (argc > 2 && !strcmp(argv[1], "--out")) {
		out = argv[2];
		i = 3;
	}
	if (i >= argc || argv[i][0] == '-' || !out[0]) {
		fputs(sim_grid_usage, stderr);
		goto out;
	}
	if (argc - i > SIM_GRID_RUNS_MAX) {
		fprintf(stderr, "meshsim: grid: %d runs, at most %d\n", argc - i, SIM_GRID_RUNS_MAX);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", out);
	const char *page_dir = dirname(dir);
	for (; i < argc; i++) {
		if (sim_grid_read(argv[i], page_dir, &runs[n], err, sizeof(err)) == 0) {
			n++;
			continue;
		}
		fprintf(stderr, "meshsim: %s\n", err);
		nref++;
		used += (size_t)snprintf(refused + used, used < GRID_REFUSED_MAX ? GRID_REFUSED_MAX - used : 0, "%s\n", err);
		used = used < GRID_REFUSED_MAX ? used : GRID_REFUSED_MAX - 1;
	}
	rc = 1;
	if (!n) {
		fprintf(stderr, "meshsim: grid: no run could be read; %s not written\n", out);
		goto out;
	}
	if (write_page(out, runs, n, refused) == 0) {
		printf("%s\n", out);
		rc = nref ? 1 : 0;
	}
out:
	free(runs);
	free(refused);
	return rc;
}
