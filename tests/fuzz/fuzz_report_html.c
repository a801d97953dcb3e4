/* libFuzzer target for meshsim's page of a run: sim_report_html on arbitrary
 * report.json text (`meshsim report` reads it from a run folder; a run of
 * the demo makes a good seed). Whatever the JSON holds, the page is written
 * whole, and nothing from the input reaches it as markup: every '<' in the
 * page starts one of the page's own tags, never "<script" or "<iframe". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sim/report_html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *report = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	char *page = NULL;
	size_t len = 0;
	FILE *f;

	if (!report)
		return 0;
	f = open_memstream(&page, &len);
	if (!f)
		abort();
	if (sim_report_html(f, report, "fuzz note <b>") < 0)
		abort();
	fclose(f);
	if (!strstr(page, "</html>\n") || strcasestr(page, "<script") || strcasestr(page, "<iframe") ||
	    strstr(page, "<b>"))
		abort();
	free(page);
	json_decref(report);
	return 0;
}
