/* expect: a running lab's expectations, evaluated in order, with the verdict
 * of each, the final table on stdout and report.json in the run folder.
 *
 * Path expectations read `meshctl peers -o json` in the pinging node. The
 * shape meshsim reads (extra members are ignored):
 *   [ { "name": "n2", "path": "direct" | "relayed" | "connecting",
 *       "tunnel_ip": "100.64.0.3" }, ... ]
 * or the same array as the member "peers" of an object. */
#ifndef NATMESH_SIM_EXPECT_H
#define NATMESH_SIM_EXPECT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lab.h"

enum sim_verdict { SIM_VERDICT_PASS, SIM_VERDICT_FAIL, SIM_VERDICT_SKIPPED };

struct sim_result {
	enum sim_verdict verdict;
	uint64_t time_ms;	/* until it held (or gave up) */
	uint64_t at_ms;		/* the lab clock when it was decided */
	double rtt_ms;		/* pings: the average round trip, or < 0 */
	char detail[256];
};

/* evaluates expectation i of the lab's scenario into *r */
void sim_expect_run(struct sim_lab *lab, size_t i, struct sim_result *r);

/* Finds peer name in meshctl's JSON text; fills path and tunnel_ip.
 * -ENOENT when the peer is absent, -EINVAL (with err) when the text does
 * not have the shape above. */
int sim_peers_find(const char *json, const char *name, char *path, size_t pathlen, char *tunnel_ip,
		   size_t iplen, char *err, size_t errlen);

/* "N packets transmitted, M received" and the rtt line of iputils ping;
 * -EINVAL when the counts are missing; *rtt_ms < 0 when there is no rtt line */
int sim_ping_parse(const char *out, int *sent, int *received, double *rtt_ms);

/* Runs BUILD/traversal-report on the run folder when it was built: its
 * JSON goes into *json (NULL when absent or unreadable), its text into
 * RUN/traversal.txt and its last line into summary (empty when not run). */
void sim_traversal_report(struct sim_lab *lab, json_t **json, char *summary, size_t len);

/* report.json's object; error is the lab's failure reason or NULL */
json_t *sim_report_json(const struct sim_lab *lab, const struct sim_result *results, size_t nresults,
			const char *verdict, const char *error, uint64_t duration_ms, json_t *traversal);
/* the final table on f */
void sim_report_table(FILE *f, const struct sim_lab *lab, const struct sim_result *results, size_t nresults,
		      const char *verdict, const char *error, uint64_t duration_ms, const char *traversal);

#endif
