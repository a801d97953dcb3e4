/* api: the endpoint table's one lookup, routes, and the log lines held for a
 * group commit (never lost, even past their maximum) */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "service/api_internal.h"

#define UUID "0b9c5a3e-2f41-4d7a-9c1e-5f6a7b8c9d0e"

Test(api, endpoint_lookup_finds_each_route_and_method_once)
{
	static const struct {
		enum route_id route;
		enum method_id method;
		bool found, body;
		const char *allow;
	} cases[] = {
		{ R_HEALTHZ, M_GET, true, false, "GET" },
		{ R_VPCS, M_POST, true, true, "POST, GET" },
		{ R_VPCS, M_GET, true, false, "POST, GET" },
		{ R_VPC, M_PATCH, false, false, "GET, DELETE" },
		{ R_VPC_DEVICES, M_POST, false, false, "GET" },
		{ R_DEVICE, M_PATCH, true, true, "GET, PATCH, DELETE" },
		{ R_DEVICES, M_OTHER, false, false, "POST, GET" },
		{ R_UNKNOWN, M_GET, false, false, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char allow[64];
		const struct endpoint *ep = api_endpoint_find(cases[i].route, cases[i].method, allow,
							      sizeof(allow));
		cr_expect_eq(ep != NULL, cases[i].found, "case %zu", i);
		cr_expect_str_eq(allow, cases[i].allow, "case %zu", i);
		if (ep) {
			cr_expect_eq(ep->route, cases[i].route, "case %zu", i);
			cr_expect_eq(ep->method, cases[i].method, "case %zu", i);
			cr_expect_eq(ep->body, cases[i].body, "case %zu", i);
			cr_expect_not_null(ep->fn, "case %zu", i);
		}
	}
}

Test(api, endpoint_lookup_every_route_has_an_endpoint)
{
	for (int r = 0; r < R_UNKNOWN; r++) {
		char allow[64];
		api_endpoint_find((enum route_id)r, M_OTHER, allow, sizeof(allow));
		cr_expect_neq(allow[0], 0, "route %s has no method", api_route_names[r]);
	}
}

Test(api, endpoint_lookup_allow_is_cut_not_overrun)
{
	char allow[8];
	memset(allow, 'x', sizeof(allow));
	cr_expect_not_null(api_endpoint_find(R_DEVICE, M_DELETE, allow, sizeof(allow)));
	cr_expect_str_eq(allow, "GET, PA");
	cr_expect_not_null(api_endpoint_find(R_DEVICE, M_GET, NULL, 0));
}

Test(api, routes)
{
	static const struct {
		const char *url;
		enum route_id route;
		const char *id;
	} cases[] = {
		{ "/healthz", R_HEALTHZ, "" },
		{ "/api/vpcs", R_VPCS, "" },
		{ "/api/vpcs/" UUID, R_VPC, UUID },
		{ "/api/vpcs/" UUID "/devices", R_VPC_DEVICES, UUID },
		{ "/api/devices/" UUID, R_DEVICE, UUID },
		{ "/api/reg-keys/" UUID "/devices", R_UNKNOWN, NULL },
		{ "/api/vpcs/not-a-uuid", R_UNKNOWN, NULL },
		{ "/api/vpcs/" UUID "x", R_UNKNOWN, NULL },
		{ "/api/vpcsx", R_UNKNOWN, NULL },
		{ "/", R_UNKNOWN, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char id[UUID_STRLEN];
		cr_expect_eq(api_route_of(cases[i].url, id), cases[i].route, "%s", cases[i].url);
		if (cases[i].id)
			cr_expect_str_eq(id, cases[i].id, "%s", cases[i].url);
	}
	cr_expect_eq(api_method_of("PATCH"), M_PATCH);
	cr_expect_eq(api_method_of("PUT"), M_OTHER);
}

/* stderr, where the log goes, into a pipe while the test writes */
static int saved_fd = -1, pipe_fd[2];

static void capture_begin(void)
{
	cr_assert_eq(pipe(pipe_fd), 0);
	fflush(stderr);
	saved_fd = dup(2);
	dup2(pipe_fd[1], 2);
}

static void capture_end(char *buf, size_t cap)
{
	ssize_t n;
	fflush(stderr);
	dup2(saved_fd, 2);
	close(saved_fd);
	close(pipe_fd[1]);
	n = read(pipe_fd[0], buf, cap - 1);
	buf[n > 0 ? n : 0] = 0;
	close(pipe_fd[0]);
}

static void note(struct api_notes *n, bool pending, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	api_notes_add(n, pending, fmt, ap);
	va_end(ap);
}

Test(api, log_lines_wait_for_the_commit)
{
	struct api_notes n;
	char buf[2048];

	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	api_notes_init(&n, 4);
	capture_begin();
	note(&n, true, "vpc created id=%d", 1);
	note(&n, true, "vpc created id=%d", 2);
	capture_end(buf, sizeof(buf));
	cr_expect_str_eq(buf, "", "nothing is written before the commit");

	capture_begin();
	api_notes_flush(&n, true);
	note(&n, false, "outside a batch id=%d", 3);
	capture_end(buf, sizeof(buf));
	cr_expect_str_eq(buf, "info api: vpc created id=1\ninfo api: vpc created id=2\n"
			      "info api: outside a batch id=3\n");

	capture_begin();
	note(&n, true, "reg-key deleted id=%d", 4);
	api_notes_flush(&n, false);
	api_notes_flush(&n, true);
	capture_end(buf, sizeof(buf));
	cr_expect_str_eq(buf, "", "a batch that failed takes its lines with it");
	cr_expect_eq(n.early, 0);
	api_notes_free(&n);
}

Test(api, log_lines_past_the_maximum_are_written_at_once_and_counted)
{
	struct api_notes n;
	char buf[2048];

	log_setup(LOG_FORMAT_TEXT, LOG_INFO);
	api_notes_init(&n, 2);
	capture_begin();
	for (int i = 1; i <= 4; i++)
		note(&n, true, "device deleted id=%d", i);
	capture_end(buf, sizeof(buf));
	cr_expect_not_null(strstr(buf, "info api: device deleted id=3 committed=pending held=2\n"), "%s", buf);
	cr_expect_not_null(strstr(buf, "info api: device deleted id=4 committed=pending held=2\n"), "%s", buf);
	cr_expect_not_null(strstr(buf, "log lines held for a commit"), "the vec names itself: %s", buf);
	cr_expect_null(strstr(buf, "id=1"), "%s", buf);
	cr_expect_eq(n.early, 2);
	cr_expect_eq(n.lines.refused, 2);

	capture_begin();
	api_notes_flush(&n, true);
	capture_end(buf, sizeof(buf));
	cr_expect_str_eq(buf, "info api: device deleted id=1\ninfo api: device deleted id=2\n");
	api_notes_free(&n);
}

Test(api, per_address_limit_defaults_to_a_share_of_the_connections)
{
	static const struct {
		unsigned max_connections, per_address, want;
	} cases[] = {
		{ 19936, 0, API_PER_ADDRESS_DEFAULT },	/* a large limit: the default */
		{ 192, 0, 96 },				/* a small one: half of it */
		{ 1, 0, 1 },				/* never 0 */
		{ 192, 500, 500 },			/* an explicit value is kept */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_config cfg = { .max_connections = cases[i].max_connections,
					  .per_address = cases[i].per_address };
		cr_expect_eq(api_per_address_limit(&cfg), cases[i].want, "case %zu", i);
	}
}

Test(api, log_limit_lets_a_burst_through_then_one_interval_at_a_time)
{
	static const struct {
		int64_t now_ms;
		bool pass;
		uint64_t suppressed;
	} steps[] = {
		{ 0, true, 0 }, { 1, true, 0 }, { 2, true, 0 },	/* the burst */
		{ 3, false, 1 }, { 5000, false, 2 },		/* then quiet */
		{ API_LOG_INTERVAL_MS, true, 2 },		/* a new interval */
		{ API_LOG_INTERVAL_MS + 1, true, 2 },
	};
	struct log_limit l = { 0 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		cr_expect_eq(api_log_limit_pass(&l, steps[i].now_ms), steps[i].pass, "step %zu", i);
		cr_expect_eq(l.suppressed, steps[i].suppressed, "step %zu", i);
	}
}
