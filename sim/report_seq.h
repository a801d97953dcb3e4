/* report_seq: one pair of agents' sequence diagram for report.html (see
 * report_html.h): lanes for agent A, A's NAT, the internet (STUN, relay,
 * service), B's NAT and agent B; one arrow per event of traversal-report's
 * pair, with its time. */
#ifndef NATMESH_SIM_REPORT_SEQ_H
#define NATMESH_SIM_REPORT_SEQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* the most arrows drawn per pair; the rest are counted in a line below it */
#define SIM_SEQ_ROWS_MAX 400

/* the key to the letters and line styles */
void sim_seq_legend(FILE *f);
/* pair (an element of traversal's "pairs") as a heading, a summary of the
 * path that won and an <svg class="seq">; n numbers the pairs on the page */
void sim_seq_pair(FILE *f, const json_t *report, const json_t *traversal, const json_t *pair, size_t n);
/* word occurs in text delimited by non-name characters ("n1" in "ping n1 -> n2") */
bool sim_seq_mentions(const char *text, const char *word);

#endif
