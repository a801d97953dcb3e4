/* report_html: a run's page, RUN/report.html, made from report.json (and the
 * traversal-report JSON in its "traversal" member): the topology, one
 * sequence diagram per pair of agents, the expectations with failures first,
 * the captures and their damage. One file with inline SVG and CSS, no
 * script and no request outside it; links to logs and pcaps are relative to
 * the run folder. Every string from the run goes through sim_html_escape.
 * Readable without colour: each arrow and verdict carries a letter or
 * symbol, dropped arrows are dashed.
 *
 * The elements a test can count: <svg class="seq" data-pair="A-B"> per pair
 * of agents; in it <g class="arrow KIND"> per arrow, KIND being the
 * traversal event type (stun-request, handshake-initiation, ...) plus
 * "dropped" for an unanswered initiation (ending at the lane of the farthest
 * capture in its seen_in) and "won" for the winning one. */
#ifndef NATMESH_SIM_REPORT_HTML_H
#define NATMESH_SIM_REPORT_HTML_H

#include <jansson.h>
#include <stdio.h>

/* s with & < > " ' as character references; NULL writes nothing */
void sim_html_escape(FILE *f, const char *s);

/* The page for report on f. The traversal JSON is report's "traversal"
 * member; when it is absent or not an object the page says so, with note
 * (why, may be NULL). 0 or -EIO when f failed. */
int sim_report_html(FILE *f, const json_t *report, const char *note);

/* RUN_DIR/report.html, written to a temporary file and renamed; 0 or a
 * negative errno with err naming the file and the reason */
int sim_report_html_write(const char *run_dir, const json_t *report, const char *note, char *err, size_t errlen);

#endif
