/* sim/grid: a pair run's cell read from fixed report.json inputs (models,
 * outcome, technique), the refusals naming what is missing, the files'
 * errors naming the file, and the page: stable, escaped, letters as well as
 * colours, each run in its cell both ways round. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/grid.h"

/* n1 behind gw1 (model %s), n2 behind gw2 (model %s); the pair's mode,
 * winning initiator and candidate; the scenario's name */
static const char report_fmt[] =
	"{\"scenario\": \"%s\", \"verdict\": \"%s\","
	" \"nodes\": ["
	"  {\"name\": \"gw1\", \"nat\": {\"wan\": \"wan\", \"model\": \"%s (mapping=x)\"}, \"links\": ["
	"    {\"ifname\": \"wan\", \"network\": \"internet\"}, {\"ifname\": \"lan\", \"network\": \"site1\"}]},"
	"  {\"name\": \"gw2\", \"nat\": {\"wan\": \"wan\", \"model\": \"%s\"}, \"links\": ["
	"    {\"ifname\": \"wan\", \"network\": \"internet\"}, {\"ifname\": \"lan\", \"network\": \"site2\"}]},"
	"  {\"name\": \"n1\", \"links\": [{\"ifname\": \"eth0\", \"network\": \"site1\"}]},"
	"  {\"name\": \"n2\", \"links\": [{\"ifname\": \"eth0\", \"network\": \"site2\"}]},"
	"  {\"name\": \"pub\", \"links\": [{\"ifname\": \"eth0\", \"network\": \"internet\"}]}],"
	" \"traversal\": {\"translations\": [{\"inner\": \"10.0.1.2:1000\", \"outer\": \"203.0.113.1:1000\"}],"
	"  \"pairs\": [{\"a\": \"10.0.1.2:1000\", \"b\": \"10.0.2.2:2000\", \"a_label\": \"n1\", \"b_label\": \"%s\","
	"   \"peers\": true, \"mode\": \"%s\", \"winning_initiator\": \"%s\", \"winning_candidate\": \"%s\","
	"   \"direct_first_data_s\": 0.5, \"relay\": {\"first_data_s\": 3.25}, \"events\": ["
	"    {\"type\": \"stun-success\", \"node\": \"10.0.2.2:2000\", \"xor_mapped\": \"203.0.113.2:2222\"}]}]}}";

struct params {
	const char *scenario, *verdict, *model1, *model2, *b_label, *mode, *initiator, *candidate;
};

static json_t *report_of(const struct params *p)
{
	char text[sizeof(report_fmt) + 512];
	json_error_t jerr;
	snprintf(text, sizeof(text), report_fmt, p->scenario, p->verdict, p->model1, p->model2, p->b_label, p->mode,
		 p->initiator, p->candidate);
	json_t *r = json_loads(text, 0, &jerr);
	cr_assert_not_null(r, "%s", jerr.text);
	return r;
}

static const struct params base = { "pair-fc-sym", "PASS", "full-cone", "symmetric", "n2", "direct",
				    "10.0.1.2:1000", "203.0.113.2:2222" };

Test(grid, from_report)
{
	static const struct {
		const char *mode, *initiator, *candidate;
		enum sim_grid_outcome outcome;
		const char *technique;
	} cases[] = {
		{ "direct", "10.0.1.2:1000", "203.0.113.2:2222", SIM_GRID_DIRECT, "reflexive" },	/* n2's STUN answer */
		{ "direct", "10.0.2.2:2000", "203.0.113.1:1000", SIM_GRID_DIRECT, "reflexive" },	/* gw1's translation */
		{ "direct", "10.0.1.2:1000", "10.0.2.2:2000", SIM_GRID_DIRECT, "local" },
		{ "upgraded", "10.0.1.2:1000", "203.0.113.2:4444", SIM_GRID_DIRECT, "peer-reflexive" },
		{ "relayed", "", "", SIM_GRID_RELAYED, "relay" },
		{ "none", "", "", SIM_GRID_FAILED, "-" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct params p = base;
		struct sim_grid_run r;
		char err[256] = "";
		p.mode = cases[i].mode, p.initiator = cases[i].initiator, p.candidate = cases[i].candidate;
		json_t *rep = report_of(&p);
		cr_assert_eq(sim_grid_from_report(rep, &r, err, sizeof(err)), 0, "case %zu: %s", i, err);
		cr_assert_str_eq(r.model_a, "full-cone");
		cr_assert_str_eq(r.model_b, "symmetric");
		cr_assert_eq(r.outcome, cases[i].outcome, "case %zu", i);
		cr_assert_str_eq(r.technique, cases[i].technique, "case %zu", i);
		cr_assert_eq(r.upgraded, !strcmp(cases[i].mode, "upgraded"));
		cr_assert(r.passed);
		cr_assert_float_eq(r.relay_s, 3.25, 1e-9);
		json_decref(rep);
	}
	/* an agent on the internet has no NAT */
	struct params p = base;
	struct sim_grid_run r;
	char err[256];
	p.b_label = "pub";
	json_t *rep = report_of(&p);
	cr_assert_eq(sim_grid_from_report(rep, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(r.model_b, "none");
	json_decref(rep);
}

Test(grid, refusals)
{
	static const struct {
		const char *json, *reason;
	} cases[] = {
		{ "[]", "not a meshsim report" },
		{ "{\"scenario\": 3}", "not a meshsim report" },
		{ "{\"scenario\": \"s\"}", "no \"traversal\" object" },
		{ "{\"scenario\": \"s\", \"traversal\": \"x\"}", "no \"traversal\" object" },
		{ "{\"scenario\": \"s\", \"traversal\": {\"pairs\": []}}", "0 pairs of agents" },
		{ "{\"scenario\": \"s\", \"traversal\": {\"pairs\": [{\"peers\": true}, {\"peers\": true}]}}",
		  "2 pairs of agents" },
		{ "{\"scenario\": \"s\", \"traversal\": {\"pairs\": [{\"peers\": true, \"a_label\": \"n1\"}]}}",
		  "agent \"n1\" is not among nodes[]" },
		{ "{\"scenario\": \"s\", \"nodes\": [{\"name\": \"n1\", \"links\": [{\"network\": \"l\"}]},"
		  " {\"name\": \"g\", \"nat\": {\"wan\": \"w\"}, \"links\": [{\"ifname\": \"i\", \"network\": \"l\"}]}],"
		  " \"traversal\": {\"pairs\": [{\"peers\": true, \"a_label\": \"n1\"}]}}",
		  "nodes[1] (\"g\"): nat has no model" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sim_grid_run r;
		char err[256] = "";
		json_t *rep = json_loads(cases[i].json, 0, NULL);
		cr_assert_not_null(rep, "case %zu", i);
		cr_assert_eq(sim_grid_from_report(rep, &r, err, sizeof(err)), -EINVAL, "case %zu", i);
		cr_assert_not_null(strstr(err, cases[i].reason), "case %zu: %s", i, err);
		json_decref(rep);
	}
}

static char *page_of(const struct sim_grid_run *runs, size_t n, const char *refused)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(sim_grid_html(f, runs, n, refused), 0);
	fclose(f);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

Test(grid, page_stable_and_escaped)
{
	static const struct params runs_p[] = {
		{ "pair-fc-sym", "PASS", "full-cone", "symmetric", "n2", "direct", "10.0.1.2:1000", "203.0.113.2:2222" },
		{ "<script>alert(1)</script>", "FAIL", "symmetric", "weird<b>", "n2", "relayed", "", "" },
		{ "pair-fc-fc", "PASS", "full-cone", "full-cone", "n2", "none", "", "" },
	};
	struct sim_grid_run runs[3];
	char err[256];
	for (size_t i = 0; i < 3; i++) {
		json_t *rep = report_of(&runs_p[i]);
		cr_assert_eq(sim_grid_from_report(rep, &runs[i], err, sizeof(err)), 0, "%s", err);
		snprintf(runs[i].href, sizeof(runs[i].href), "%s\"/report.html", runs_p[i].scenario);
		json_decref(rep);
	}
	char *p1 = page_of(runs, 3, "x/report.json: <bad>\n"), *p2 = page_of(runs, 3, "x/report.json: <bad>\n");
	cr_assert_str_eq(p1, p2);
	cr_assert_eq(count(p1, "<script"), 0, "a string from a run reached the page unescaped");
	cr_assert_eq(count(p1, "<b>D</b> direct"), 1);	/* the legend, not a cell */
	cr_assert_eq(count(p1, "weird<b>"), 0);
	cr_assert_eq(count(p1, "<th>weird&lt;b&gt;</th>"), 2);
	cr_assert_eq(count(p1, "&lt;bad&gt;"), 1);
	cr_assert_eq(count(p1, "href=\"pair-fc-sym&quot;/report.html\""), 2);	/* both ways round */
	cr_assert_eq(count(p1, "href=\"pair-fc-fc&quot;/report.html\""), 1);	/* the diagonal once */
	cr_assert_eq(count(p1, "<span class=\"letter\">D</span> direct at 0.50 s<br>by reflexive"), 2);
	cr_assert_eq(count(p1, "<span class=\"letter\">R</span> relayed at 3.25 s<br>by relay"), 2);
	cr_assert_eq(count(p1, "<td class=\"failed\"><a href=\"pair-fc-fc&quot;/report.html\"><span class=\"letter\">F"), 1);
	cr_assert_eq(count(p1, "expectation failed"), 2);
	/* presets first, in their order, then the others */
	const char *fc = strstr(p1, "<th>full-cone</th>"), *sym = strstr(p1, "<th>symmetric</th>");
	const char *weird = strstr(p1, "<th>weird&lt;b&gt;</th>");
	cr_assert(fc && sym && weird && fc < sym && sym < weird);
	cr_assert_eq(count(p1, "<td class=\"empty\">"), 4);	/* fc-weird, weird-fc, sym-sym, weird-weird */
	cr_assert_eq(count(p1, "<script"), 0);
	cr_assert_not_null(strstr(p1, "default-src 'none'"));
	free(p1);
	free(p2);
}

Test(grid, read_files)
{
	char dir[] = "/tmp/test_grid.XXXXXX", path[128], err[512];
	struct sim_grid_run r;
	cr_assert_not_null(mkdtemp(dir));
	/* no report.json: the error names the file */
	cr_assert_lt(sim_grid_read(dir, "/tmp", &r, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/report.json", dir);
	cr_assert_not_null(strstr(err, path), "%s", err);
	/* a broken one: the file and the line */
	FILE *f = fopen(path, "w");
	fputs("{\n\"scenario\": \n", f);
	fclose(f);
	cr_assert_lt(sim_grid_read(dir, "/tmp", &r, err, sizeof(err)), 0);
	cr_assert(strstr(err, path) && strstr(err, "line "), "%s", err);
	/* a good one: href relative to the page's folder, either way */
	json_t *rep = report_of(&base);
	cr_assert_eq(json_dump_file(rep, path, 0), 0);
	json_decref(rep);
	cr_assert_eq(sim_grid_read(dir, "/tmp", &r, err, sizeof(err)), 0, "%s", err);
	char want[128];
	snprintf(want, sizeof(want), "%s/report.html", dir + 5);
	cr_assert_str_eq(r.href, want);
	cr_assert_eq(sim_grid_read(dir, dir, &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(r.href, "report.html");
	cr_assert_eq(sim_grid_read(dir, "/usr/share", &r, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strncmp(r.href, "../../tmp/test_grid.", 20), 0, "%s", r.href);
	unlink(path);
	rmdir(dir);
}
