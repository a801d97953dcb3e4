/* report_html: the page of a run (see report_html.h). The sequence diagrams
 * are in report_seq.c; this file writes the frame, the topology, the
 * expectations and the captures.
 *
 * Topology drawing: the networks are horizontal buses, one per row, in the
 * scenario's order; the nodes are boxes in a row above them, each with a
 * stem down to the buses it has a link on (a dot and its address there). */
#include "report_html.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_seq.h"

enum {
	TOPO_COL_W = 130,	/* one node's column */
	TOPO_LEFT = 150,	/* the networks' names */
	TOPO_BOX_H = 46,
	TOPO_BUS0 = 110,	/* the first network's row */
	TOPO_BUS_H = 56,
	TOPO_RIGHT = 90,	/* the last column's address label */
	TOPO_BOX_CHARS = 17,	/* monospace 11px in a box */
};

static const char page_css[] =
	"body{font-family:sans-serif;margin:1em 2em;color:#111;background:#fff}\n"
	"h1{font-size:1.4em}h2{font-size:1.2em;border-bottom:1px solid #888;margin-top:2em}\n"
	"table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;padding:2px 6px;"
	"text-align:left;vertical-align:top;font-size:.9em}\n"
	"tr.fail td{background:#fdd;font-weight:bold}tr.pass td.v{background:#dfd}\n"
	"svg{font-family:monospace;font-size:11px;max-width:100%;height:auto}\n"
	"svg text{fill:#111}.bus{stroke:#333;stroke-width:3}.stem{stroke:#555;stroke-width:1.5}\n"
	".box{fill:#eef;stroke:#335}.box.nat{fill:#ffe9c6}.box.agent{fill:#dfe}.lane{stroke:#999;"
	"stroke-dasharray:4 3}\n"
	".arrow line{stroke:#124;stroke-width:1.4}.arrow.dropped line{stroke:#a00;stroke-dasharray:6 4}\n"
	".arrow.won line{stroke-width:3}.arrow.stun-request line,.arrow.stun-success line{stroke:#567}\n"
	".arrow.relayed-data line{stroke:#850}.warn{font-weight:bold}\n"
	".legend{font-size:.9em}\n"
	"@media print{body{margin:0}h2{page-break-after:avoid}svg.seq{page-break-inside:avoid}}\n";

void sim_html_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* open, escaped text, close */
static void elem(FILE *f, const char *open, const char *text, const char *close)
{
	fputs(open, f);
	sim_html_escape(f, text);
	fputs(close, f);
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* path relative to the run folder, or NULL when it is not below it */
static const char *run_relative(const json_t *report, const char *path)
{
	const char *run = str(report, "run_dir");
	size_t n = strlen(run);
	if (!path || !path[0])
		return NULL;
	/* a scheme ("javascript:") or a way out of the folder is no file of the run */
	if (strchr(path, ':') || strstr(path, ".."))
		return NULL;
	if (path[0] != '/')
		return path;
	if (!n || strncmp(path, run, n) || path[n] != '/')
		return NULL;
	return path + n + 1;
}

/* a link to a file of the run folder, or its name as text */
static void file_link(FILE *f, const json_t *report, const char *path)
{
	const char *rel = run_relative(report, path);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!rel) {
		elem(f, "<code>", path, "</code>");
		return;
	}
	elem(f, "<a href=\"", rel, "\">");
	elem(f, "", base, "</a>");
}

/* what a node does, from the processes it ran and the relays traversal-report knew */
static const char *node_role(const json_t *report, const json_t *node)
{
	const char *name = str(node, "name");
	const char *role = str(node, "kind");
	size_t i;
	json_t *p, *tn;
	json_array_foreach(json_object_get(report, "processes"), i, p) {
		if (strcmp(str(p, "node"), name))
			continue;
		if (!strcmp(str(p, "name"), "meshstun"))
			role = "STUN";
		else if (!strcmp(str(p, "name"), "meshsvc"))
			role = "service";
		else if (!strcmp(str(p, "name"), "meshd"))
			role = "agent";
	}
	json_array_foreach(json_object_get(json_object_get(report, "traversal"), "nodes"), i, tn)
		if (json_is_true(json_object_get(tn, "relay")) && !strcmp(str(tn, "label"), name))
			role = "relay";
	return role;
}

/* "full-cone" of "full-cone (mapping=...)" */
static void nat_short(const json_t *node, char *buf, size_t len)
{
	const char *m = str(json_object_get(node, "nat"), "model");
	const char *sp = strchr(m, ' ');
	snprintf(buf, len, "%.*s", sp ? (int)(sp - m) : (int)strlen(m), m);
}

static int net_index(const json_t *report, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(report, "networks"), i, n)
		if (!strcmp(str(n, "name"), name))
			return (int)i;
	return -1;
}

static void topo_node(FILE *f, const json_t *report, const json_t *node, size_t col)
{
	int x = TOPO_LEFT + (int)col * TOPO_COL_W, cx = x + TOPO_COL_W / 2 - 5;
	const char *role = node_role(report, node);
	char nat[64] = "";
	size_t i;
	json_t *k;
	if (json_object_get(node, "nat"))
		nat_short(node, nat, sizeof(nat));
	json_array_foreach(json_object_get(node, "links"), i, k) {
		int row = net_index(report, str(k, "network"));
		int y = TOPO_BUS0 + row * TOPO_BUS_H;
		bool impaired = json_object_get(k, "egress") || json_object_get(k, "ingress") ||
				json_object_get(k, "loss_percent");
		if (row < 0)
			continue;
		fprintf(f, "<line class=\"stem\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", cx, 10 + TOPO_BOX_H, cx, y);
		/* odd columns' labels below the line, so neighbours' addresses do not overlap */
		fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"4\"/><text x=\"%d\" y=\"%d\">", cx, y, cx + 4,
			col % 2 ? y + 14 : y - 5);
		sim_html_escape(f, str(k, "ifname"));
		fputc(' ', f);
		sim_html_escape(f, str(k, "address"));
		fputs(impaired ? " ~</text>\n" : "</text>\n", f);
	}
	elem(f, "<a href=\"#node-", str(node, "name"), "\">");
	/* the whole model in RFC 4787 words when the pointer rests on the box */
	if (json_object_get(node, "nat"))
		elem(f, "<title>", str(json_object_get(node, "nat"), "model"), "</title>");
	fprintf(f, "<rect class=\"box %s\" x=\"%d\" y=\"10\" width=\"%d\" height=\"%d\" rx=\"4\"/>", !strcmp(role, "nat") ? "nat" :
		!strcmp(role, "agent") ? "agent" : "", x, TOPO_COL_W - 10, TOPO_BOX_H);
	fprintf(f, "<text x=\"%d\" y=\"26\" font-weight=\"bold\">", x + 5);
	sim_html_escape(f, str(node, "name"));
	fprintf(f, "</text><text x=\"%d\" y=\"40\">", x + 5);
	sim_html_escape(f, role);
	/* a long preset ("port-restricted-cone") squeezed into the box */
	if (strlen(nat) > TOPO_BOX_CHARS)
		fprintf(f, "</text><text x=\"%d\" y=\"52\" textLength=\"%d\" lengthAdjust=\"spacingAndGlyphs\">", x + 5,
			TOPO_COL_W - 20);
	else
		fprintf(f, "</text><text x=\"%d\" y=\"52\">", x + 5);
	sim_html_escape(f, nat);
	fputs("</text></a>\n", f);
}

static void topology_svg(FILE *f, const json_t *report)
{
	const json_t *nets = json_object_get(report, "networks"), *nodes = json_object_get(report, "nodes");
	size_t nn = json_array_size(nodes), i;
	int w = TOPO_LEFT + (int)(nn ? nn : 1) * TOPO_COL_W + TOPO_RIGHT, h = TOPO_BUS0 + (int)json_array_size(nets) * TOPO_BUS_H;
	json_t *x;
	fprintf(f, "<svg class=\"topology\" role=\"img\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">\n"
		   "<title>topology: networks as horizontal lines, nodes as boxes linked to them</title>\n", w, h, w, h);
	json_array_foreach(nets, i, x) {
		int y = TOPO_BUS0 + (int)i * TOPO_BUS_H;
		fprintf(f, "<line class=\"bus\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/><text x=\"4\" y=\"%d\">", TOPO_LEFT - 10,
			y, w - 4, y, y + 4);
		sim_html_escape(f, str(x, "name"));
		fprintf(f, "</text><text x=\"4\" y=\"%d\">", y + 16);
		sim_html_escape(f, str(x, "cidr"));
		fputs("</text>\n", f);
	}
	json_array_foreach(nodes, i, x)
		topo_node(f, report, x, i);
	fputs("</svg>\n", f);
}

/* logs of the node's processes and the pcaps of its interfaces */
static void node_files(FILE *f, const json_t *report, const char *name)
{
	size_t i, n = strlen(name);
	json_t *x;
	json_array_foreach(json_object_get(report, "processes"), i, x)
		if (!strcmp(str(x, "node"), name)) {
			file_link(f, report, str(x, "log"));
			fputc(' ', f);
		}
	json_array_foreach(json_object_get(report, "pcaps"), i, x) {
		const char *p = json_string_value(x), *base = p ? strrchr(p, '/') : NULL;
		base = base ? base + 1 : p;
		if (base && !strncmp(base, name, n) && base[n] == '-') {
			file_link(f, report, p);
			fputc(' ', f);
		}
	}
}

static void nodes_table(FILE *f, const json_t *report)
{
	size_t i, k;
	json_t *x, *l;
	fputs("<table class=\"nodes\"><tr><th>node</th><th>role</th><th>links (network, address, impairment)</th>"
	      "<th>NAT (RFC 4787)</th><th>logs and captures</th></tr>\n", f);
	json_array_foreach(json_object_get(report, "nodes"), i, x) {
		elem(f, "<tr id=\"node-", str(x, "name"), "\">");
		elem(f, "<td>", str(x, "name"), "</td>");
		elem(f, "<td>", node_role(report, x), "</td><td>");
		json_array_foreach(json_object_get(x, "links"), k, l) {
			elem(f, "", str(l, "ifname"), " ");
			elem(f, "", str(l, "network"), " ");
			sim_html_escape(f, str(l, "address"));
			if (json_object_get(l, "loss_percent"))
				fprintf(f, "; ~ loss %lld%%", (long long)json_integer_value(json_object_get(l, "loss_percent")));
			if (json_object_get(l, "egress"))
				elem(f, "; ~ egress ", str(l, "egress"), "");
			if (json_object_get(l, "ingress"))
				elem(f, "; ~ ingress ", str(l, "ingress"), "");
			fputs("<br>", f);
		}
		if (!json_object_get(x, "links"))
			json_array_foreach(json_object_get(x, "addresses"), k, l)
				elem(f, "", json_string_value(l), "<br>");
		fputs("</td><td>", f);
		if (json_object_get(x, "nat")) {
			sim_html_escape(f, str(json_object_get(x, "nat"), "model"));
			elem(f, " (outside: ", str(json_object_get(x, "nat"), "wan"), ")");
		}
		fputs("</td><td>", f);
		node_files(f, report, str(x, "name"));
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
}

/* the pair whose two agents the expectation's name mentions, as an anchor */
static bool evidence_pair(const json_t *report, const char *label, char *buf, size_t len)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(json_object_get(report, "traversal"), "pairs"), i, p) {
		const char *a = str(p, "a_label"), *b = str(p, "b_label");
		if (json_is_true(json_object_get(p, "peers")) && a[0] && b[0] && sim_seq_mentions(label, a) &&
		    sim_seq_mentions(label, b)) {
			snprintf(buf, len, "pair-%s-%s", a, b);
			return true;
		}
	}
	return false;
}

static void expectation_row(FILE *f, const json_t *report, const json_t *x, size_t num)
{
	const char *v = str(x, "verdict");
	bool fail = !strcmp(v, "fail");
	char anchor[96];
	size_t i;
	json_t *p;
	fprintf(f, "<tr class=\"%s\"><td>%zu</td><td class=\"v\">%s</td>", fail ? "fail" : !strcmp(v, "pass") ? "pass" : "skip",
		num, fail ? "&#x2717; FAIL" : !strcmp(v, "pass") ? "&#x2713; pass" : "&#x2013; skipped");
	if (json_object_get(x, "time_ms"))
		fprintf(f, "<td>%.2f s</td><td>%.2f s</td>", (double)json_integer_value(json_object_get(x, "time_ms")) / 1000,
			(double)json_integer_value(json_object_get(x, "at_ms")) / 1000);
	else
		fputs("<td>-</td><td>-</td>", f);
	elem(f, "<td>", str(x, "name"), "</td>");
	elem(f, "<td>", str(x, "kind"), "</td>");
	elem(f, "<td>", str(x, "detail"), "</td><td>");
	if (evidence_pair(report, str(x, "name"), anchor, sizeof(anchor)))
		elem(f, "<a href=\"#", anchor, "\">sequence</a> ");
	json_array_foreach(json_object_get(report, "processes"), i, p)
		if (sim_seq_mentions(str(x, "name"), str(p, "node"))) {
			file_link(f, report, str(p, "log"));
			fputc(' ', f);
		}
	if (json_object_get(report, "traversal"))
		fputs("<a href=\"traversal.txt\">traversal.txt</a>", f);
	fputs("</td></tr>\n", f);
}

/* failures first, then the rest in the order they ran */
static void expectations_table(FILE *f, const json_t *report)
{
	const json_t *exps = json_object_get(report, "expectations");
	size_t i;
	json_t *x;
	if (!json_array_size(exps)) {
		fputs("<p>No expectations.</p>\n", f);
		return;
	}
	fputs("<table class=\"expectations\"><tr><th>#</th><th>result</th><th>took</th><th>decided at</th>"
	      "<th>expectation</th><th>kind</th><th>detail</th><th>evidence</th></tr>\n", f);
	for (int pass = 0; pass < 2; pass++)
		json_array_foreach(exps, i, x)
			if ((pass == 0) == !strcmp(str(x, "verdict"), "fail"))
				expectation_row(f, report, x, i + 1);
	fputs("</table>\n", f);
}

static void captures_table(FILE *f, const json_t *report, const json_t *tr)
{
	size_t i, damaged = 0;
	json_t *c;
	fputs("<table class=\"captures\"><tr><th>capture</th><th>records</th><th>STUN</th><th>WireGuard</th>"
	      "<th>state</th></tr>\n", f);
	json_array_foreach(json_object_get(tr, "captures"), i, c) {
		const json_t *err = json_object_get(c, "error");
		json_int_t resyncs = json_integer_value(json_object_get(c, "resyncs"));
		fputs("<tr><td>", f);
		file_link(f, report, str(c, "file"));
		fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>",
			(long long)json_integer_value(json_object_get(c, "records")),
			(long long)json_integer_value(json_object_get(c, "stun")),
			(long long)json_integer_value(json_object_get(c, "wireguard")));
		if (json_is_object(err)) {
			fprintf(f, "<span class=\"warn\">&#x26A0; damaged: read stopped at byte %lld: ",
				(long long)json_integer_value(json_object_get(err, "offset")));
			elem(f, "", str(err, "reason"), "</span> ");
		}
		if (resyncs > 0)
			fprintf(f, "<span class=\"warn\">&#x26A0; damaged: %lld record headers skipped over (%lld bytes)</span>",
				(long long)resyncs, (long long)json_integer_value(json_object_get(c, "skipped_bytes")));
		if (!json_is_object(err) && resyncs <= 0)
			fputs("read whole", f);
		else
			damaged++;
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
	if (damaged)
		fprintf(f, "<p class=\"warn\">&#x26A0; %zu damaged capture%s: what could be read is shown.</p>\n", damaged,
			damaged == 1 ? "" : "s");
}

static void traversal_section(FILE *f, const json_t *report, const char *note)
{
	const json_t *tr = json_object_get(report, "traversal");
	size_t i, n = 0;
	json_t *p;
	fputs("<h2 id=\"sequences\">Sequence per pair of agents</h2>\n", f);
	if (!json_is_object(tr)) {
		fputs("<p class=\"warn\" id=\"no-traversal\">&#x26A0; No traversal-report JSON for this run", f);
		elem(f, note ? ": " : "", note, "");
		fputs(". There is no sequence diagram.</p>\n", f);
		return;
	}
	sim_seq_legend(f);
	json_array_foreach(json_object_get(tr, "pairs"), i, p)
		if (json_is_true(json_object_get(p, "peers")))
			sim_seq_pair(f, report, tr, p, n++);
	if (!n)
		fputs("<p>traversal-report found no pair of agents in the captures.</p>\n", f);
	fputs("<h2 id=\"captures\">Captures</h2>\n", f);
	captures_table(f, report, tr);
}

static void header(FILE *f, const json_t *report)
{
	const char *v = str(report, "verdict");
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
	      "img-src data:\">\n", f);
	elem(f, "<title>meshsim: ", str(report, "scenario"), "</title>\n");
	fprintf(f, "<style>\n%s</style></head><body>\n", page_css);
	elem(f, "<h1>Scenario ", str(report, "scenario"), ": ");
	fprintf(f, "%s ", !strcmp(v, "PASS") ? "&#x2713;" : "&#x2717;");
	sim_html_escape(f, v[0] ? v : "no verdict");
	fprintf(f, " in %.1f s</h1>\n", (double)json_integer_value(json_object_get(report, "duration_ms")) / 1000);
	if (json_object_get(report, "error"))
		elem(f, "<p class=\"warn\">&#x26A0; error: ", str(report, "error"), "</p>\n");
	if (json_object_get(report, "description"))
		elem(f, "<p>", str(report, "description"), "</p>\n");
	elem(f, "<p>Lab ", str(report, "lab"), ", ");
	elem(f, "scenario file <code>", str(report, "file"), "</code>. ");
	fputs("Files: <a href=\"report.json\">report.json</a>, <a href=\"traversal.txt\">traversal.txt</a>, "
	      "<a href=\"logs/\">logs/</a>, <a href=\"pcap/\">pcap/</a>.</p>\n"
	      "<p><a href=\"#expectations\">Expectations</a> &middot; <a href=\"#topology\">Topology</a> &middot; "
	      "<a href=\"#sequences\">Sequences</a> &middot; <a href=\"#captures\">Captures</a></p>\n", f);
}

int sim_report_html(FILE *f, const json_t *report, const char *note)
{
	header(f, report);
	fputs("<h2 id=\"expectations\">Expectations (failures first)</h2>\n", f);
	expectations_table(f, report);
	fputs("<h2 id=\"topology\">Topology</h2>\n<p class=\"legend\">Boxes are nodes (name, role, NAT model); "
	      "lines are networks; a dot is a node's address on a network, ~ marks an impaired link. "
	      "Each box links to the node's row below, with its logs and captures.</p>\n", f);
	topology_svg(f, report);
	nodes_table(f, report);
	traversal_section(f, report, note);
	fputs("</body></html>\n", f);
	return ferror(f) ? -EIO : 0;
}

int sim_report_html_write(const char *run_dir, const json_t *report, const char *note, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int rc = 0;
	if (snprintf(path, sizeof(path), "%s/report.html", run_dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%s/report.html: path too long", run_dir);
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return rc;
	}
	rc = sim_report_html(f, report, note);
	if (fclose(f) && !rc)
		rc = errno ? -errno : -EIO;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}
