/* grid_html: the NAT pair grid page (see grid.h).
 *
 *                 full-cone   restricted-cone   ...   (B's model)
 *   full-cone     D 0.41 s    D 0.52 s
 *                 reflexive   reflexive
 *   symmetric     D ...                         R 3.1 s relay
 *   (A's model)
 *
 * A run fills the cell of its two models both ways round; several runs of
 * one pair of models share the cell. Models are in the order of the
 * presets, then any other in the order met. */
#include "grid.h"

#include <errno.h>
#include <string.h>

#include "report_html.h"

static const char grid_css[] =
	"body{font-family:sans-serif;margin:1em 2em;color:#111;background:#fff}\n"
	"h1{font-size:1.4em}table{border-collapse:collapse}\n"
	"td,th{border:1px solid #777;padding:4px 8px;vertical-align:top;font-size:.9em}\n"
	"th{background:#eee}td.empty{background:#fff;color:#777}\n"
	"td.direct{background:#cfc}td.relayed{background:#fe9}td.failed{background:#f99}\n"
	".letter{font-size:1.4em;font-weight:bold;font-family:monospace}.warn{font-weight:bold}\n"
	"td a{color:#003;display:block}\n"
	"@media print{body{margin:0}td.direct,td.relayed,td.failed{-webkit-print-color-adjust:exact;"
	"print-color-adjust:exact}}\n";

static const char *const preset_order[] = { "full-cone", "restricted-cone", "port-restricted-cone", "symmetric", "none" };

static const char *const outcome_word[] = {
	[SIM_GRID_FAILED] = "failed", [SIM_GRID_DIRECT] = "direct", [SIM_GRID_RELAYED] = "relayed",
};
static const char outcome_letter[] = { [SIM_GRID_FAILED] = 'F', [SIM_GRID_DIRECT] = 'D', [SIM_GRID_RELAYED] = 'R' };

struct models {
	const char *name[SIM_GRID_MODELS_MAX];
	size_t n;
	size_t dropped;		/* runs whose model did not fit */
};

static bool models_has(const struct models *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->name[i], name))
			return true;
	return false;
}

static bool models_add(struct models *m, const char *name)
{
	if (models_has(m, name))
		return true;
	if (m->n == SIM_GRID_MODELS_MAX)
		return false;
	m->name[m->n++] = name;
	return true;
}

/* the axes: the presets met, in their order, then the others as met */
static void axes(const struct sim_grid_run *runs, size_t n, struct models *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t p = 0; p < sizeof(preset_order) / sizeof(preset_order[0]); p++)
		for (size_t i = 0; i < n; i++)
			if (!strcmp(runs[i].model_a, preset_order[p]) || !strcmp(runs[i].model_b, preset_order[p])) {
				models_add(m, preset_order[p]);
				break;
			}
	for (size_t i = 0; i < n; i++)
		if (!models_add(m, runs[i].model_a) || !models_add(m, runs[i].model_b))
			m->dropped++;
}

static void run_cell(FILE *f, const struct sim_grid_run *r)
{
	fputs("<a href=\"", f);
	sim_html_escape(f, r->href);
	fprintf(f, "\"><span class=\"letter\">%c</span> %s", outcome_letter[r->outcome], outcome_word[r->outcome]);
	if (r->outcome == SIM_GRID_DIRECT) {
		if (r->direct_s >= 0)
			fprintf(f, " at %.2f s", r->direct_s);
		if (r->upgraded)
			fputs(" (after the relay)", f);
	} else if (r->outcome == SIM_GRID_RELAYED && r->relay_s >= 0) {
		fprintf(f, " at %.2f s", r->relay_s);
	}
	fputs("<br>by ", f);
	sim_html_escape(f, r->technique);
	fputs("<br><small>", f);
	sim_html_escape(f, r->scenario);
	fputs("</small>", f);
	if (!r->passed)
		fputs("<br><span class=\"warn\">&#x2717; expectation failed</span>", f);
	fputs("</a>", f);
}

/* one cell: every run of the two models, either way round */
static void cell(FILE *f, const struct sim_grid_run *runs, size_t n, const char *row, const char *col)
{
	size_t k = 0, first = 0;
	for (size_t i = 0; i < n; i++)
		if ((!strcmp(runs[i].model_a, row) && !strcmp(runs[i].model_b, col)) ||
		    (!strcmp(runs[i].model_a, col) && !strcmp(runs[i].model_b, row)))
			if (!k++)
				first = i;
	if (!k) {
		fputs("<td class=\"empty\">&#x2013; no run</td>", f);
		return;
	}
	fprintf(f, "<td class=\"%s\">", outcome_word[runs[first].outcome]);
	for (size_t i = 0, shown = 0; i < n; i++)
		if ((!strcmp(runs[i].model_a, row) && !strcmp(runs[i].model_b, col)) ||
		    (!strcmp(runs[i].model_a, col) && !strcmp(runs[i].model_b, row))) {
			fputs(shown++ ? "<hr>" : "", f);
			run_cell(f, &runs[i]);
		}
	fputs("</td>", f);
}

static void grid_table(FILE *f, const struct sim_grid_run *runs, size_t n, const struct models *m)
{
	fputs("<table class=\"grid\"><tr><th>NAT of one agent &#x2193; / of the other &#x2192;</th>", f);
	for (size_t c = 0; c < m->n; c++) {
		fputs("<th>", f);
		sim_html_escape(f, m->name[c]);
		fputs("</th>", f);
	}
	fputs("</tr>\n", f);
	for (size_t r = 0; r < m->n; r++) {
		fputs("<tr><th>", f);
		sim_html_escape(f, m->name[r]);
		fputs("</th>", f);
		for (size_t c = 0; c < m->n; c++)
			cell(f, runs, n, m->name[r], m->name[c]);
		fputs("</tr>\n", f);
	}
	fputs("</table>\n", f);
}

int sim_grid_html(FILE *f, const struct sim_grid_run *runs, size_t n, const char *refused)
{
	struct models m;
	size_t counts[3] = { 0 };
	axes(runs, n, &m);
	for (size_t i = 0; i < n; i++)
		counts[runs[i].outcome]++;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	      "<title>meshsim: NAT pair grid</title>\n", f);
	fprintf(f, "<style>\n%s</style></head><body>\n<h1>NAT pair grid: %zu runs</h1>\n", grid_css, n);
	fprintf(f, "<p>D direct: %zu, R relayed: %zu, F failed: %zu.</p>\n", counts[SIM_GRID_DIRECT],
		counts[SIM_GRID_RELAYED], counts[SIM_GRID_FAILED]);
	fputs("<p class=\"legend\">Each cell is a run of two agents behind these NAT models (RFC 4787 presets): "
	      "<b>D</b> direct (green), <b>R</b> relayed (amber), <b>F</b> failed, no data between them (red); "
	      "the time of the first direct or relayed data in seconds from the run's first captured datagram; "
	      "the technique of the winning candidate: <i>local</i> the peer's own address, <i>reflexive</i> an "
	      "address STUN or its NAT gave it, <i>peer-reflexive</i> one only the handshake showed, <i>relay</i>. "
	      "Each cell links to its run's report.html.</p>\n", f);
	grid_table(f, runs, n, &m);
	if (m.dropped)
		fprintf(f, "<p class=\"warn\">&#x26A0; %zu runs not shown: more than %d models.</p>\n", m.dropped,
			SIM_GRID_MODELS_MAX);
	if (refused && refused[0]) {
		fputs("<h2>Runs not shown</h2>\n<pre class=\"warn\">", f);
		sim_html_escape(f, refused);
		fputs("</pre>\n", f);
	}
	fputs("</body></html>\n", f);
	return ferror(f) ? -EIO : 0;
}
