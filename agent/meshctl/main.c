/* meshctl: see meshctl.h (admin commands) and local.h (agent commands) */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "local.h"
#include "meshctl.h"
#include "svcurl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: meshctl [--service URL] [--token-file FILE] [--ca FILE] [--insecure-http]\n"
		   "               [-o table|json] COMMAND ...\n"
		   "\n"
		   "  --service URL      meshsvc's address, e.g. https://svc.example:8080 (env MESHCTL_SERVICE);\n"
		   "                     several replicas: repeat it or a comma list, tried in order\n"
		   "  --token-file FILE  the admin token (meshsvc writes it on first start; env MESHCTL_TOKEN_FILE)\n"
		   "  --ca FILE          CA certificate(s) to trust for HTTPS\n"
		   "  --insecure-http    allow an http:// service URL (the admin token then\n"
		   "                     travels in clear)\n"
		   "  -o table|json      a table for people (default) or JSON for programs\n"
		   "\n"
		   "admin commands (meshsvc):\n");
	for (size_t i = 0; i < admin_ncommands; i++)
		fputs(admin_commands[i].usage, f);
	fprintf(f, "\n"
		   "agent commands (meshd on this host, over its control socket):\n"
		   "  meshctl [--ifname NAME | --control PATH] [-o table|json] status | peers | ping PEER\n");
}

/* a cell of a table: strings as they are, arrays of endpoints as addresses */
static char *cell(const json_t *v)
{
	char *s = NULL;
	if (!v || json_is_null(v))
		return strdup("-");
	if (json_is_string(v))
		return strdup(json_string_value(v));
	if (json_is_true(v))
		return strdup("yes");
	if (json_is_false(v))
		return strdup("no");
	if (json_is_integer(v)) {
		if (asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
			return NULL;
		return s;
	}
	if (json_is_array(v)) {
		size_t i, len = 0;
		FILE *f = open_memstream(&s, &len);
		json_t *e;
		if (!f)
			return NULL;
		json_array_foreach(v, i, e) {
			const json_t *a = json_is_object(e) ? json_object_get(e, "address") : e;
			fprintf(f, "%s%s", i ? "," : "", json_is_string(a) ? json_string_value(a) : "?");
		}
		if (!json_array_size(v))
			fputs("-", f);
		fclose(f);
		return s;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void output(const struct ctl *ctl, const json_t *rows, const struct column *cols, size_t ncols)
{
	size_t width[16] = { 0 }, nrows, r, c;
	const json_t *list = rows;
	json_t *one = NULL;

	if (ctl->json) {
		char *s = json_dumps(rows, JSON_INDENT(2) | JSON_ENCODE_ANY);
		if (s)
			puts(s);
		free(s);
		return;
	}
	if (!json_is_array(rows))
		list = one = json_pack("[O]", rows);
	nrows = json_array_size(list);
	char **cells = calloc((nrows + 1) * ncols, sizeof(*cells));
	if (!cells || ncols > 16)
		goto out;
	for (c = 0; c < ncols; c++)
		cells[c] = strdup(cols[c].title);
	for (r = 0; r < nrows; r++)
		for (c = 0; c < ncols; c++)
			cells[(r + 1) * ncols + c] = cell(json_object_get(json_array_get(list, r), cols[c].key));
	for (r = 0; r <= nrows; r++)
		for (c = 0; c < ncols; c++)
			if (cells[r * ncols + c] && strlen(cells[r * ncols + c]) > width[c])
				width[c] = strlen(cells[r * ncols + c]);
	for (r = 0; r <= nrows; r++) {
		for (c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c] ? cells[r * ncols + c] : "?";
			if (c + 1 < ncols)
				printf("%-*s  ", (int)width[c], s);
			else
				printf("%s\n", s);
		}
	}
	for (r = 0; r < (nrows + 1) * ncols; r++)
		free(cells[r]);
out:
	free(cells);
	json_decref(one);
}

/* 0 to go on, else the exit status: the admin token must not travel in
 * clear unless --insecure-http says so (and then a warning says it does) */
static int check_service(const char *list, bool insecure_http)
{
	char why[SVCURL_LEN + 256], http_url[SVCURL_LEN];

	if (svcurl_check(list, insecure_http, "the admin token", http_url, sizeof(http_url), why, sizeof(why)) < 0) {
		fprintf(stderr, "meshctl: %s\n", why);
		return 2;
	}
	if (http_url[0])
		fprintf(stderr, "meshctl: warning: the service URL %s is not encrypted (--insecure-http): "
			"the admin token travels in clear\n", http_url);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, 's' },
		{ "token-file", required_argument, NULL, 't' },
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .service = getenv("MESHCTL_SERVICE"), .token_file = getenv("MESHCTL_TOKEN_FILE") };
	static char services[SVCURL_LIST_LEN];	/* every --service, comma-joined */
	bool insecure_http = false;
	int opt, rc;

	/* the agent's commands (local.c) first; the rest are the service's */
	if ((rc = meshctl_local_dispatch(argc, argv)) >= 0)
		return rc;
	/* "+": stop at the command; its own options follow it */
	while ((opt = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (svcurl_append(services, sizeof(services), optarg) < 0) {
				fprintf(stderr, "meshctl: --service: the URLs are longer than %zu bytes in all\n",
					sizeof(services) - 1);
				return 2;
			}
			ctl.service = services;
			break;
		case 't': ctl.token_file = optarg; break;
		case 'c': ctl.ca = optarg; break;
		case 'I': insecure_http = true; break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table")) {
				fprintf(stderr, "meshctl: -o wants table or json, not %s\n", optarg);
				return 2;
			}
			ctl.json = !strcmp(optarg, "json");
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (ctl.service && (rc = check_service(ctl.service, insecure_http)) != 0)
		return rc;
	for (size_t i = 0; i < admin_ncommands; i++) {
		if (strcmp(argv[optind], admin_commands[i].name))
			continue;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = admin_commands[i].run(&ctl, argc - optind, argv + optind);
		curl_global_cleanup();
		return rc;
	}
	fprintf(stderr, "meshctl: no command %s (meshctl --help lists them)\n", argv[optind]);
	return 2;
}
