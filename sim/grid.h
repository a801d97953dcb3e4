/* grid: the NAT pair grid, grid.html, from a set of runs of pair scenarios
 * (scenarios/pair-*.json: agent n1 behind one NAT model, n2 behind
 * another). Each run's report.json gives the two models (the NAT in front
 * of each agent of the run's one pair of agents), the outcome from
 * traversal-report's pair (direct, relayed, failed), the time of the first
 * direct or relayed data and the technique that won, which is read from the
 * winning candidate: the peer's own address (local), an address STUN or a
 * NAT translation gave it (reflexive), one only the handshake revealed
 * (peer-reflexive), or the relay.
 *
 * The page: models on both axes, a cell per pair of models with a letter
 * (D, R, F) as well as a colour, the times, the technique and a link to the
 * run's report.html. Same rules as report.html: inline CSS, no script, no
 * request outside the file, every string escaped. */
#ifndef NATMESH_SIM_GRID_H
#define NATMESH_SIM_GRID_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

enum {
	SIM_GRID_RUNS_MAX = 256,
	SIM_GRID_MODELS_MAX = 16,
};

enum sim_grid_outcome {
	SIM_GRID_FAILED,	/* no data between the two agents was captured */
	SIM_GRID_DIRECT,
	SIM_GRID_RELAYED,
};

struct sim_grid_run {
	char scenario[96];
	char model_a[48], model_b[48];	/* "full-cone"; "none" for an agent with no NAT */
	enum sim_grid_outcome outcome;
	bool upgraded;			/* direct after a time on the relay */
	bool passed;			/* the run's verdict */
	double direct_s, relay_s;	/* first direct / relayed data, s from the first datagram; < 0: none */
	char technique[32];		/* local, reflexive, peer-reflexive, relay, - */
	char href[4096];		/* the run's report.html, relative to the page */
};

/* r from a run's report.json; 0, or -EINVAL with err saying what is missing
 * (the caller names the file). href is left empty. */
int sim_grid_from_report(const json_t *report, struct sim_grid_run *r, char *err, size_t errlen);

/* r from RUN_DIR/report.json, href relative to page_dir; 0 or a negative
 * errno with err naming the file and the reason */
int sim_grid_read(const char *run_dir, const char *page_dir, struct sim_grid_run *r, char *err, size_t errlen);

/* the page for runs[0..n) on f; refused (may be NULL) lists runs not shown,
 * one reason per line. 0 or -EIO. */
int sim_grid_html(FILE *f, const struct sim_grid_run *runs, size_t n, const char *refused);

#endif
