/* report_seq: a pair's sequence diagram (see report_seq.h).
 *
 *   time   A        A's NAT    internet    B's NAT     B
 *          |           |           |           |        |
 *   0.08 s |--S STUN request ----->|           |        |   [inner -> mapped]
 *   0.08 s |<-S STUN answer -------|           |        |
 *   0.37 s |--H initiation -------------------------x   |   unanswered: dashed
 *   0.37 s |<=H response =============================== |
 *
 * Lanes 0..4; an address is lane 0 when it is A's, 4 when it is B's, the
 * internet otherwise (servers, relays, candidates with no host seen). */
#include "report_seq.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "report_html.h"

enum {
	SEQ_W = 1100,		/* the longest label, a dropped initiation from B with its translation */
	SEQ_ROW_H = 24,
	SEQ_TOP = 64,		/* first arrow, below the lane headings */
	SEQ_LANES = 5,
	SEQ_LABEL = 320,
};

static const int lane_x[SEQ_LANES] = { 120, 300, 480, 660, 840 };

struct arrow {
	double t;
	int from, to;
	const char *kind;
	bool dropped, won;
	char label[SEQ_LABEL];
};

struct seq {
	const json_t *report, *tr, *pair, *events;
	const char *a, *b;		/* the agents' addresses */
	const char *lane_node[SEQ_LANES]; /* node names: A, A's NAT, -, B's NAT, B */
	bool won_drawn;
};

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

bool sim_seq_mentions(const char *text, const char *word)
{
	size_t n = strlen(word);
	if (!n)
		return false;
	for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
		bool before = p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-');
		bool after = !(isalnum((unsigned char)p[n]) || p[n] == '_' || (p[n] == '-' && p[n + 1] != '>'));
		if (before && after)
			return true;
	}
	return false;
}

void sim_seq_legend(FILE *f)
{
	fputs("<p class=\"legend\">Letters: S STUN, H WireGuard handshake, D data, R through the relay. "
	      "&#x2713; answered, &#x2717; no answer seen in any capture (dashed line, ending where the last "
	      "capture that saw it was, else at the peer's NAT), &#x2605; the initiation that won. [inside &#x2192; outside] is the translation a NAT made, "
	      "from STUN's mapped address or traversal-report's translations. Times are seconds from the first "
	      "captured datagram.</p>\n", f);
}

static int lane_of(const struct seq *s, const char *addr)
{
	return !strcmp(addr, s->a) ? 0 : !strcmp(addr, s->b) ? 4 : 2;
}

/* the one outside address traversal-report saw for inner; false for none or several */
static bool outer_of(const struct seq *s, const char *inner, char *buf, size_t len)
{
	size_t i, n = 0;
	json_t *t;
	json_array_foreach(json_object_get(s->tr, "translations"), i, t) {
		if (strcmp(str(t, "inner"), inner) || !strcmp(str(t, "outer"), inner))
			continue;
		if (n && strcmp(buf, str(t, "outer")))
			return false;
		snprintf(buf, len, "%s", str(t, "outer"));
		n++;
	}
	return n > 0;
}

/* " [inner -> outer]" when the arrow leaves an agent through its NAT */
static void add_translation(const struct seq *s, struct arrow *w, const char *inner, const char *outer)
{
	char o[96];
	size_t n = strlen(w->label);
	if (w->from == 2 || w->from == w->to)
		return;
	if (!outer && outer_of(s, inner, o, sizeof(o)))
		outer = o;
	if (outer && outer[0] && strcmp(outer, inner))
		snprintf(w->label + n, sizeof(w->label) - n, " [%s \u2192 %s]", inner, outer);
}

/* the mapped address of the answer to STUN transaction tid */
static const char *stun_mapped(const struct seq *s, const char *tid)
{
	size_t i;
	json_t *e;
	json_array_foreach(s->events, i, e)
		if (!strcmp(str(e, "type"), "stun-success") && !strcmp(str(e, "tid"), tid))
			return json_object_get(e, "xor_mapped") ? str(e, "xor_mapped") : str(e, "mapped");
	return NULL;
}

static bool stun_arrow(const struct seq *s, const json_t *e, struct arrow *w)
{
	const char *type = str(e, "type");
	int l = lane_of(s, str(e, "node"));
	if (l == 2)
		return false;
	if (!strcmp(type, "stun-request")) {
		json_int_t tx = json_integer_value(json_object_get(e, "transmissions"));
		w->from = l, w->to = 2;
		w->dropped = !json_is_true(json_object_get(e, "answered"));
		snprintf(w->label, sizeof(w->label), "S STUN request \u2192 %s%s%s", str(e, "server"),
			 tx > 1 ? " (sent more than once)" : "", w->dropped ? " \u2717 no answer" : "");
		add_translation(s, w, str(e, "client"), stun_mapped(s, str(e, "tid")));
	} else {
		w->from = 2, w->to = l;
		if (!strcmp(type, "stun-error"))
			snprintf(w->label, sizeof(w->label), "S STUN error %lld from %s",
				 (long long)json_integer_value(json_object_get(e, "error_code")), str(e, "from"));
		else
			snprintf(w->label, sizeof(w->label), "S STUN answer \u2713 mapped %s",
				 json_object_get(e, "xor_mapped") ? str(e, "xor_mapped") : str(e, "mapped"));
	}
	return true;
}

/* the outside interface of NAT node name, or "" */
static const char *nat_wan(const json_t *report, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(report, "nodes"), i, n)
		if (!strcmp(str(n, "name"), name))
			return str(json_object_get(n, "nat"), "wan");
	return "";
}

/* How far along its way from A to B a capture is: A 0, A's NAT inside 1 and
 * outside 2, any other node (a router) 3, B's NAT outside 4 and inside 5,
 * B 6; from B the same mirrored. */
static int capture_rank(const struct seq *s, const char *cap, bool from_a)
{
	static const int rank_in[SEQ_LANES] = { 0, 1, 3, 5, 6 };
	for (int l = 0; l < SEQ_LANES; l++) {
		const char *n = s->lane_node[from_a ? l : SEQ_LANES - 1 - l];
		size_t len = n ? strlen(n) : 0;
		if (!len || strncmp(cap, n, len) || cap[len] != '-')
			continue;
		const char *ifname = cap + len + 1, *dot = strrchr(ifname, '.'), *wan = nat_wan(s->report, n);
		bool outside = dot && wan[0] && (size_t)(dot - ifname) == strlen(wan) && !strncmp(ifname, wan, strlen(wan));
		return rank_in[l] + (l == 1 && outside) - (l == 3 && outside);
	}
	return 3;
}

/* Where an unanswered initiation ended: the lane after the farthest capture
 * that saw it (never out of A's NAT: A's NAT; out of it and no further: the
 * internet; at B's NAT's outside: B's NAT; past it: B). *cap names that
 * capture; -1 when no capture is listed. */
static int drop_lane(const struct seq *s, const json_t *seen, int from, const char **cap)
{
	static const int lane_of_rank[] = { 1, 1, 2, 2, 3, 4, 4 };
	size_t i;
	json_t *c;
	int best = -1;
	json_array_foreach(seen, i, c) {
		int r = json_is_string(c) ? capture_rank(s, json_string_value(c), from != 4) : -1;
		if (r > best) {
			best = r;
			*cap = json_string_value(c);
		}
	}
	if (best < 0)
		return -1;
	return from != 4 ? lane_of_rank[best] : SEQ_LANES - 1 - lane_of_rank[best];
}

static void initiation_arrow(struct seq *s, const json_t *e, struct arrow *w)
{
	const char *from = str(e, "from"), *cand = str(e, "candidate"), *seen = "";
	bool answered = json_is_true(json_object_get(e, "answered"));
	int drop = answered ? -1 : drop_lane(s, json_object_get(e, "seen_in"), lane_of(s, from), &seen);
	w->from = lane_of(s, from);
	w->to = lane_of(s, str(e, "to"));
	if (!answered && (w->to == 0 || w->to == 4))
		w->to = w->to == 4 ? 3 : 1;
	if (drop >= 0 && drop != w->from)
		w->to = drop;
	w->dropped = !answered;
	w->won = answered && !s->won_drawn && !strcmp(cand, str(s->pair, "winning_candidate")) &&
		 !strcmp(from, str(s->pair, "winning_initiator")) && strcmp(str(s->pair, "mode"), "relayed");
	s->won_drawn |= w->won;
	snprintf(w->label, sizeof(w->label), "H%s initiation \u2192 %s %s%s%s", w->won ? " \u2605" : "", cand,
		 answered ? "\u2713" : "\u2717 no answer", drop >= 0 ? ", last seen in " : "", drop >= 0 ? seen : "");
	add_translation(s, w, from, NULL);
}

/* the arrow of event e; false for an event this diagram does not draw */
static bool event_arrow(struct seq *s, const json_t *e, struct arrow *w)
{
	const char *type = str(e, "type");
	memset(w, 0, sizeof(*w));
	w->t = json_number_value(json_object_get(e, "t_s"));
	w->kind = type;
	if (!strncmp(type, "stun-", 5))
		return stun_arrow(s, e, w);
	if (!strcmp(type, "handshake-initiation")) {
		initiation_arrow(s, e, w);
		return w->from != w->to;
	}
	w->from = lane_of(s, str(e, "from"));
	w->to = lane_of(s, str(e, "to"));
	if (!strcmp(type, "handshake-response"))
		snprintf(w->label, sizeof(w->label), "H response \u2713 from %s (%.3f ms)", str(e, "source"),
			 json_number_value(json_object_get(e, "rtt_ms")));
	else if (!strcmp(type, "cookie-reply"))
		snprintf(w->label, sizeof(w->label), "H cookie reply (under load)");
	else if (!strcmp(type, "first-data"))
		snprintf(w->label, sizeof(w->label), "D first data \u2192 %s (%lld bytes)", str(e, "destination"),
			 (long long)json_integer_value(json_object_get(e, "bytes")));
	else if (!strcmp(type, "relayed-data"))
		snprintf(w->label, sizeof(w->label), "R data through relay %s (%lld forwarded)", str(e, "relay"),
			 (long long)json_integer_value(json_object_get(e, "forwarded")));
	else if (!strcmp(type, "data-without-handshake"))
		snprintf(w->label, sizeof(w->label), "D data without a captured handshake (%lld)",
			 (long long)json_integer_value(json_object_get(e, "messages")));
	else
		snprintf(w->label, sizeof(w->label), "%s", type);
	if (!strcmp(type, "first-data"))
		add_translation(s, w, str(e, "from"), NULL);
	return w->from != w->to;
}

static void draw_arrow(FILE *f, const struct arrow *w, int y, size_t n)
{
	int x1 = lane_x[w->from], x2 = lane_x[w->to], lx = (x1 < x2 ? x1 : x2) + 6;
	fputs("<g class=\"arrow ", f);
	sim_html_escape(f, w->kind);
	fprintf(f, "%s%s\"><text x=\"4\" y=\"%d\">%.3f s</text>", w->dropped ? " dropped" : "", w->won ? " won" : "",
		y + 4, w->t);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" marker-end=\"url(#ah%zu)\"/>", x1, y, x2, y, n);
	if (w->dropped)
		fprintf(f, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">&#x2717;</text>", x2 + (x2 > x1 ? 4 : -12), y + 4);
	fprintf(f, "<text x=\"%d\" y=\"%d\">", lx, y - 4);
	sim_html_escape(f, w->label);
	fputs("</text></g>\n", f);
}

/* the NAT in front of agent label: a nat node with a link on the agent's
 * first network that is not its outside interface */
static const char *nat_of(const json_t *report, const char *label)
{
	size_t i, k;
	json_t *n, *l;
	const char *net = NULL;
	json_array_foreach(json_object_get(report, "nodes"), i, n)
		if (!strcmp(str(n, "name"), label))
			net = str(json_array_get(json_object_get(n, "links"), 0), "network");
	if (!net || !net[0])
		return NULL;
	json_array_foreach(json_object_get(report, "nodes"), i, n) {
		const json_t *nat = json_object_get(n, "nat");
		if (!nat)
			continue;
		json_array_foreach(json_object_get(n, "links"), k, l)
			if (!strcmp(str(l, "network"), net) && strcmp(str(l, "ifname"), str(nat, "wan")))
				return str(n, "name");
	}
	return NULL;
}

static void lane_heading(FILE *f, int lane, const char *name, const char *sub)
{
	fprintf(f, "<text x=\"%d\" y=\"16\" text-anchor=\"middle\" font-weight=\"bold\">", lane_x[lane]);
	sim_html_escape(f, name);
	fprintf(f, "</text><text x=\"%d\" y=\"30\" text-anchor=\"middle\">", lane_x[lane]);
	sim_html_escape(f, sub);
	fputs("</text>\n", f);
}

/* literal text, then s escaped */
static void elem_to(FILE *f, const char *text, const char *s)
{
	fputs(text, f);
	sim_html_escape(f, s);
}

static void pair_summary(FILE *f, const json_t *pair, const char *a, const char *b)
{
	const char *mode = str(pair, "mode");
	const json_t *relay = json_object_get(pair, "relay");
	fputs("<p class=\"path\">", f);
	if (!strcmp(mode, "direct") || !strcmp(mode, "upgraded")) {
		fprintf(f, "&#x2605; Path: direct%s; won by the initiation from ", !strcmp(mode, "upgraded") ?
			" (after the relay)" : "");
		sim_html_escape(f, !strcmp(str(pair, "winning_initiator"), str(pair, "a")) ? a : b);
		elem_to(f, " to ", str(pair, "winning_candidate"));
		fprintf(f, ", first direct data at %.3f s", json_number_value(json_object_get(pair, "direct_first_data_s")));
	} else if (!strcmp(mode, "relayed")) {
		elem_to(f, "R Path: relayed through ", str(relay, "address"));
		fprintf(f, " from %.3f s", json_number_value(json_object_get(relay, "first_data_s")));
		elem_to(f, ". Why: ", str(relay, "reason"));
	} else {
		fputs("&#x2717; Path: none, no data between them was captured", f);
	}
	fputs(".</p>\n", f);
}

void sim_seq_pair(FILE *f, const json_t *report, const json_t *tr, const json_t *pair, size_t n)
{
	struct seq s = { .report = report, .tr = tr, .pair = pair, .events = json_object_get(pair, "events"),
			 .a = str(pair, "a"), .b = str(pair, "b") };
	const char *al = str(pair, "a_label"), *bl = str(pair, "b_label");
	const char *an = nat_of(report, al), *bn = nat_of(report, bl);
	s.lane_node[0] = al, s.lane_node[1] = an, s.lane_node[3] = bn, s.lane_node[4] = bl;
	size_t i, rows = 0, skipped = 0;
	json_t *e;
	struct arrow w;
	al = al[0] ? al : s.a;
	bl = bl[0] ? bl : s.b;
	json_array_foreach(s.events, i, e)
		rows += event_arrow(&s, e, &w);
	s.won_drawn = false;
	if (rows > SIM_SEQ_ROWS_MAX) {
		skipped = rows - SIM_SEQ_ROWS_MAX;
		rows = SIM_SEQ_ROWS_MAX;
	}
	int h = SEQ_TOP + (int)rows * SEQ_ROW_H;
	fputs("<h3 id=\"pair-", f);
	sim_html_escape(f, al);
	fputc('-', f);
	sim_html_escape(f, bl);
	fputs("\">", f);
	sim_html_escape(f, al);
	fputs(" &#x2194; ", f);
	sim_html_escape(f, bl);
	fputs("</h3>\n", f);
	pair_summary(f, pair, al, bl);
	fputs("<svg class=\"seq\" role=\"img\" data-pair=\"", f);
	sim_html_escape(f, al);
	fputc('-', f);
	sim_html_escape(f, bl);
	fprintf(f, "\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\">\n<title>sequence of ", SEQ_W, h, SEQ_W, h);
	sim_html_escape(f, al);
	fputs(" and ", f);
	sim_html_escape(f, bl);
	fprintf(f, "</title>\n<defs><marker id=\"ah%zu\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" "
		   "markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0L10 5L0 10z\"/></marker></defs>\n", n);
	lane_heading(f, 0, al, s.a);
	lane_heading(f, 1, an ? an : "(no NAT)", "A's NAT");
	lane_heading(f, 2, "internet", "STUN, relay, service");
	lane_heading(f, 3, bn ? bn : "(no NAT)", "B's NAT");
	lane_heading(f, 4, bl, s.b);
	for (int l = 0; l < SEQ_LANES; l++)
		fprintf(f, "<line class=\"lane\" x1=\"%d\" y1=\"38\" x2=\"%d\" y2=\"%d\"/>\n", lane_x[l], lane_x[l], h);
	size_t row = 0;
	json_array_foreach(s.events, i, e)
		if (row < rows && event_arrow(&s, e, &w)) {
			draw_arrow(f, &w, SEQ_TOP + (int)row * SEQ_ROW_H, n);
			row++;
		}
	fputs("</svg>\n", f);
	if (skipped)
		fprintf(f, "<p class=\"warn\">&#x26A0; %zu more events not drawn (at most %d per pair); "
			   "see traversal.txt.</p>\n", skipped, SIM_SEQ_ROWS_MAX);
}
