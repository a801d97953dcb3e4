/* sim/report_html: the page of a run from fixed report.json inputs: stable
 * output, every string from the run escaped, failures first, and a page
 * that says so when the traversal JSON is missing or damaged. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim/report_html.h"
#include "sim/report_seq.h"

/* a two-agent lab, one pair with a dropped and a winning initiation */
static const char report_text[] =
	"{\"scenario\": \"unit\", \"run_dir\": \"/r\", \"verdict\": \"FAIL\", \"duration_ms\": 1500,"
	" \"networks\": [{\"name\": \"internet\", \"cidr\": \"203.0.113.0/24\"}, {\"name\": \"site1\"}],"
	" \"nodes\": ["
	"  {\"name\": \"gw1\", \"kind\": \"nat\", \"nat\": {\"wan\": \"wan\", \"model\": \"full-cone (mapping=endpoint-independent)\"},"
	"   \"links\": [{\"ifname\": \"wan\", \"network\": \"internet\", \"address\": \"203.0.113.1/24\"},"
	"              {\"ifname\": \"lan\", \"network\": \"site1\", \"address\": \"10.0.1.1/24\", \"egress\": \"delay 50 ms\"}]},"
	"  {\"name\": \"n1\", \"kind\": \"host\", \"links\": [{\"ifname\": \"eth0\", \"network\": \"site1\", \"address\": \"10.0.1.2/24\"}]},"
	"  {\"name\": \"<script>x\", \"kind\": \"host\", \"links\": [{\"ifname\": \"eth0\", \"network\": \"internet\", \"address\": \"203.0.113.9/24\"}]}],"
	" \"processes\": [{\"node\": \"n1\", \"name\": \"meshd\", \"log\": \"/r/logs/n1-meshd.log\"},"
	"                 {\"node\": \"<script>x\", \"name\": \"meshd\", \"log\": \"/elsewhere/x.log\"},"
	"                 {\"node\": \"n1\", \"name\": \"a\", \"log\": \"javascript:alert(1)\"},"
	"                 {\"node\": \"n1\", \"name\": \"b\", \"log\": \"../up.log\"}],"
	" \"pcaps\": [\"/r/pcap/n1-eth0.pcap\", \"/r/pcap/n1-../../etc/passwd\"],"
	" \"expectations\": [{\"name\": \"ping n1 -> <script>x direct\", \"kind\": \"path\", \"verdict\": \"pass\","
	"                     \"time_ms\": 100, \"at_ms\": 900, \"detail\": \"ok\"},"
	"                    {\"name\": \"second one\", \"kind\": \"ping\", \"verdict\": \"fail\", \"time_ms\": 5000,"
	"                     \"at_ms\": 6000, \"detail\": \"0 of 1 answered\"}]%s}";

static const char traversal_text[] =
	", \"traversal\": {\"captures\": [{\"file\": \"/r/pcap/n1-eth0.pcap\", \"records\": 9, \"stun\": 2, \"wireguard\": 5,"
	"   \"resyncs\": 1, \"skipped_bytes\": 37, \"error\": null}],"
	" \"translations\": [{\"inner\": \"10.0.1.2:5000\", \"outer\": \"203.0.113.1:5000\"}],"
	" \"nodes\": [],"
	" \"pairs\": [{\"a\": \"10.0.1.2:5000\", \"b\": \"203.0.113.9:7000\", \"a_label\": \"n1\", \"b_label\": \"<script>x\","
	"   \"peers\": true, \"mode\": \"direct\", \"winning_candidate\": \"203.0.113.9:7000\","
	"   \"winning_initiator\": \"10.0.1.2:5000\", \"direct_first_data_s\": 0.5, \"relay\": null, \"events\": ["
	"   {\"t_s\": 0.1, \"type\": \"stun-request\", \"node\": \"10.0.1.2:5000\", \"tid\": \"aa\", \"server\": \"203.0.113.10:3478\","
	"    \"client\": \"10.0.1.2:5000\", \"transmissions\": 1, \"answered\": true},"
	"   {\"t_s\": 0.11, \"type\": \"stun-success\", \"node\": \"10.0.1.2:5000\", \"tid\": \"aa\", \"xor_mapped\": \"203.0.113.1:5000\"},"
	"   {\"t_s\": 0.2, \"type\": \"handshake-initiation\", \"from\": \"203.0.113.9:7000\", \"to\": \"10.0.1.2:5000\","
	"    \"candidate\": \"10.0.1.2:5000\", \"answered\": false, \"seen_in\": [\"gw1-wan.pcap\", \"core-eth0.pcap\"]},"
	"   {\"t_s\": 0.3, \"type\": \"handshake-initiation\", \"from\": \"10.0.1.2:5000\", \"to\": \"203.0.113.9:7000\","
	"    \"candidate\": \"203.0.113.9:7000\", \"answered\": true},"
	"   {\"t_s\": 0.31, \"type\": \"handshake-response\", \"from\": \"203.0.113.9:7000\", \"to\": \"10.0.1.2:5000\","
	"    \"source\": \"203.0.113.9:7000\", \"rtt_ms\": 10},"
	"   {\"t_s\": 0.5, \"type\": \"first-data\", \"from\": \"10.0.1.2:5000\", \"to\": \"203.0.113.9:7000\","
	"    \"destination\": \"203.0.113.9:7000\", \"bytes\": 128}]}]}";

static char *page_of(const char *traversal, const char *note)
{
	char text[sizeof(report_text) + sizeof(traversal_text) + 64];
	char *buf = NULL;
	size_t len = 0;
	json_error_t jerr;
	snprintf(text, sizeof(text), report_text, traversal);
	json_t *report = json_loads(text, 0, &jerr);
	cr_assert_not_null(report, "%s", jerr.text);
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(sim_report_html(f, report, note), 0);
	fclose(f);
	json_decref(report);
	return buf;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

Test(report_html, escape)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" },
		{ "a&b \"q\"", "a&amp;b &quot;q&quot;" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		sim_html_escape(f, cases[i].in);
		fclose(f);
		cr_assert_str_eq(buf, cases[i].out);
		free(buf);
	}
}

Test(report_html, stable_and_escaped)
{
	char *p1 = page_of(traversal_text, NULL), *p2 = page_of(traversal_text, NULL);
	cr_assert_str_eq(p1, p2);
	cr_assert_eq(count(p1, "<script"), 0, "a name from the run reached the page unescaped");
	cr_assert_geq(count(p1, "&lt;script&gt;x"), 4);
	cr_assert_eq(count(p1, "<svg class=\"seq\""), 1);
	cr_assert_eq(count(p1, "class=\"arrow stun-request\""), 1);
	cr_assert_eq(count(p1, "class=\"arrow handshake-initiation dropped\""), 1);
	cr_assert_eq(count(p1, "class=\"arrow handshake-initiation won\""), 1);
	cr_assert_eq(count(p1, "class=\"arrow first-data\""), 1);
	/* B's initiation reached gw1's outside and no further: it ends at A's NAT lane */
	const char *drop = strstr(p1, "class=\"arrow handshake-initiation dropped\"");
	cr_assert(drop && strstr(drop, "x2=\"300\"") && strstr(drop, "x2=\"300\"") < strstr(drop, "</g>"));
	cr_assert_eq(count(p1, "no answer, last seen in gw1-wan.pcap"), 1);
	/* the NAT's translation on the arrow that leaves n1, the NAT lane named */
	cr_assert_geq(count(p1, "[10.0.1.2:5000 \u2192 203.0.113.1:5000]"), 2);
	cr_assert_eq(count(p1, ">gw1</text><text x=\"300\""), 1);
	/* files of the run by relative path; one outside it is not linked */
	cr_assert_eq(count(p1, "<a href=\"logs/n1-meshd.log\">"), 2);	/* node table, evidence */
	cr_assert_eq(count(p1, "<a href=\"pcap/n1-eth0.pcap\">"), 2);
	cr_assert_eq(count(p1, "href=\"/elsewhere"), 0);
	cr_assert_eq(count(p1, "href=\"javascript"), 0);
	cr_assert_eq(count(p1, "href=\"../"), 0);
	cr_assert_eq(count(p1, "damaged: 1 record headers skipped over (37 bytes)"), 1);
	cr_assert_eq(count(p1, "egress delay 50 ms"), 1);
	free(p1);
	free(p2);
}

Test(report_html, failure_first)
{
	char *p = page_of(traversal_text, NULL);
	const char *fail = strstr(p, "<tr class=\"fail\"><td>2</td>"), *pass = strstr(p, "<tr class=\"pass\"><td>1</td>");
	cr_assert(fail && pass && fail < pass, "the failed expectation is not listed first");
	cr_assert_not_null(strstr(p, "&#x2717; FAIL"));
	/* evidence: the pair's diagram and the logs of the nodes it names */
	const char *row = strstr(p, "<tr class=\"pass\"><td>1</td>"), *end = strstr(row, "</tr>");
	const char *seq = strstr(row, "<a href=\"#pair-n1-&lt;script&gt;x\">sequence</a>");
	const char *log = strstr(row, "<a href=\"logs/n1-meshd.log\">");
	cr_assert(seq && seq < end && log && log < end);
	free(p);
}

Test(report_html, traversal_missing_or_damaged)
{
	static const char *const bad[] = { "", ", \"traversal\": \"garbage\"", ", \"traversal\": [1, 2]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = page_of(bad[i], "traversal-report printed no JSON");
		cr_assert_not_null(strstr(p, "id=\"no-traversal\""), "case %zu", i);
		cr_assert_not_null(strstr(p, "traversal-report printed no JSON"));
		cr_assert_eq(count(p, "<svg class=\"seq\""), 0);
		cr_assert_not_null(strstr(p, "</html>"));
		free(p);
	}
}

Test(report_html, mentions)
{
	cr_assert(sim_seq_mentions("ping n1 -> n2 direct", "n1"));
	cr_assert(sim_seq_mentions("ping n1 -> n2 direct", "n2"));
	cr_assert_not(sim_seq_mentions("ping n10 -> n2", "n1"));
	cr_assert_not(sim_seq_mentions("ping gw-n1", "n1"));
	cr_assert_not(sim_seq_mentions("anything", ""));
}
