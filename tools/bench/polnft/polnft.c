/* polnft: meshd's security-group renderer (agent/meshd/policy_nft.c) driven
 * from the command line, for tools/bench/policy_nft.sh and
 * tests/netns/agent_policy.sh. Not installed.
 *
 *   polnft apply GROUP.json IFNAME     render and commit, as meshd does
 *   polnft text GROUP.json IFNAME      the same ruleset as `nft -f` input
 *   polnft change OLD.json NEW.json IFNAME
 *                                      from OLD (in the kernel) to NEW in
 *                                      one batch that keeps unchanged sets
 *   polnft counters GROUP.json         per-rule packets and the drops
 *   polnft remove
 *   polnft bench RULES RANGES RUNS IFNAME TEXTFILE
 *       a generated group of RULES inbound rules of RANGES ranges each
 *       (IPv4 ranges A-B, IPv4 and IPv6 CIDRs; tcp port ranges, udp, icmp,
 *       any), parsed once, then rendered and committed RUNS times: prints
 *       the median milliseconds per change; then RUNS changes of one rule
 *       (its ranges moved), alternating, with policy_nft_commit_change;
 *       TEXTFILE gets the `nft -f` text of the ruleset (replace form)
 *
 * GROUP.json is a group in the service's resolved form ("-": none, the
 * ruleset meshd installs before the service answers). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "agent/meshd/policy_nft.h"
#include "policy.h"

static int load(const char *path, struct policy_group *g, bool *has)
{
	char err[POLICY_ERR_MAX];
	json_error_t je;
	json_t *j;
	int rc;

	*has = false;
	if (strcmp(path, "-") == 0)
		return 0;
	if (!(j = json_load_file(path, 0, &je))) {
		fprintf(stderr, "polnft: %s:%d: %s\n", path, je.line, je.text);
		return -EINVAL;
	}
	rc = policy_group_parse(j, POLICY_PARSE_RESOLVED, g, err, sizeof(err));
	json_decref(j);
	if (rc < 0)
		fprintf(stderr, "polnft: %s: %s\n", path, err);
	*has = rc == 0;
	return rc;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* this process's CPU time, user and system (the kernel's work on the batch
 * runs inside our sendmsg): what a change costs whatever else the host runs */
static double cpu_ms(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* rule i: a protocol shape and `ranges` peer ranges of three kinds */
static json_t *gen_rule(int i, int ranges, int shift)
{
	static const char *const protos[] = { "tcp", "udp", "icmp", "any" };
	const char *proto = protos[i % 4];
	json_t *r = json_object(), *a = json_array();
	char buf[96];

	json_object_set_new(r, "ip_protocol", json_string(proto));
	if (i % 4 < 2) {
		json_object_set_new(r, "from_port", json_integer(1000 + i));
		json_object_set_new(r, "to_port", json_integer(1000 + i + (i % 3) * 10));
	}
	for (int k = 0; k < ranges; k++) {
		switch (k % 3) {
		case 0:
			snprintf(buf, sizeof(buf), "10.%d.%d.1-10.%d.%d.99", i % 256, k + shift, i % 256, k + shift);
			break;
		case 1:
			snprintf(buf, sizeof(buf), "172.%d.%d.0/24", 16 + i % 16, k + (i / 16) * 64 % 192);
			break;
		default:
			snprintf(buf, sizeof(buf), "fd00:%x:%x::/64", i, k);
			break;
		}
		json_array_append_new(a, json_string(buf));
	}
	json_object_set_new(r, "ip_ranges", a);
	return r;
}

static int gen_group(int nrules, int ranges, int shift, struct policy_group *g, char *err, size_t errlen)
{
	json_t *j = json_object(), *in = json_array();
	int rc;

	for (int i = 0; i < nrules; i++)
		json_array_append_new(in, gen_rule(i, ranges, i == 0 ? shift : 0));
	json_object_set_new(j, "id", json_string("bench"));
	json_object_set_new(j, "inbound_rules", in);
	rc = policy_group_parse(j, POLICY_PARSE_RESOLVED, g, err, errlen);
	json_decref(j);
	return rc;
}

static void report(const char *what, double *t, double *tc, int runs)
{
	qsort(t, (size_t)runs, sizeof(double), cmp_d);
	qsort(tc, (size_t)runs, sizeof(double), cmp_d);
	printf(" %s_median_ms=%.2f %s_min_ms=%.2f %s_max_ms=%.2f %s_cpu_median_ms=%.2f", what, t[runs / 2], what, t[0],
	       what, t[runs - 1], what, tc[runs / 2]);
}

static int bench(int nrules, int ranges, int runs, const char *ifname, const char *textfile)
{
	struct policy_group g[2];
	char err[POLICY_NFT_ERR_MAX];
	double *t = calloc((size_t)runs, sizeof(double)), *tr = calloc((size_t)runs, sizeof(double));
	double *tc = calloc((size_t)runs, sizeof(double));
	struct policy_nft *r = NULL, *prev = NULL;
	FILE *f;
	char *text;
	int rc = 0;

	if (!t || !tr || !tc || gen_group(nrules, ranges, 0, &g[0], err, sizeof(err)) < 0 ||
	    gen_group(nrules, ranges, 100, &g[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "polnft: generated group: %s\n", t && tr && tc ? err : "out of memory");
		free(t);
		free(tr);
		free(tc);
		return 1;
	}
	/* whole rulesets, each replacing the table */
	for (int i = 0; i < runs && rc == 0; i++) {
		double t0 = now_ms(), c0 = cpu_ms();
		policy_nft_free(r);
		if ((rc = policy_nft_render(&g[0], ifname, &r)) == 0) {
			tr[i] = now_ms() - t0;
			rc = policy_nft_commit(r, err, sizeof(err));
		}
		t[i] = now_ms() - t0;
		tc[i] = cpu_ms() - c0;
	}
	if (rc < 0) {
		fprintf(stderr, "polnft: commit: %s\n", err);
		goto out;
	}
	printf("rules=%d ranges=%d nft_rules=%zu runs=%d", nrules, ranges, policy_nft_rule_count(r), runs);
	report("full", t, tc, runs);
	qsort(tr, (size_t)runs, sizeof(double), cmp_d);
	printf(" render_median_ms=%.2f", tr[runs / 2]);
	text = policy_nft_text(r, true);
	if (!text || !(f = fopen(textfile, "w")) || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "polnft: cannot write %s\n", textfile);
		rc = -EIO;
	}
	free(text);
	/* changes of one rule: its ranges move, the other sets stay */
	for (int i = 0; i < runs && rc == 0; i++) {
		double t0 = now_ms(), c0 = cpu_ms();
		policy_nft_free(prev);
		prev = r;
		r = NULL;
		if ((rc = policy_nft_render(&g[(i + 1) % 2], ifname, &r)) == 0)
			rc = policy_nft_commit_change(prev, r, err, sizeof(err));
		t[i] = now_ms() - t0;
		tc[i] = cpu_ms() - c0;
	}
	if (rc < 0)
		fprintf(stderr, "polnft: change: %s\n", err);
	else
		report("change", t, tc, runs);
	printf("\n");
out:
	policy_nft_free(prev);
	policy_nft_free(r);
	policy_group_free(&g[0]);
	policy_group_free(&g[1]);
	free(t);
	free(tr);
	free(tc);
	return rc < 0;
}

static int change(const char *from, const char *to, const char *ifname)
{
	struct policy_group g[2];
	struct policy_nft *r[2] = { NULL, NULL };
	char err[POLICY_NFT_ERR_MAX] = "";
	bool has[2];
	int rc = -EINVAL;

	memset(g, 0, sizeof(g));
	if (load(from, &g[0], &has[0]) == 0 && load(to, &g[1], &has[1]) == 0 &&
	    policy_nft_render(has[0] ? &g[0] : NULL, ifname, &r[0]) == 0 &&
	    policy_nft_render(has[1] ? &g[1] : NULL, ifname, &r[1]) == 0) {
		rc = policy_nft_commit_change(r[0], r[1], err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "polnft: change: %s\n", err);
	}
	for (int i = 0; i < 2; i++) {
		policy_nft_free(r[i]);
		policy_group_free(&g[i]);
	}
	return rc < 0;
}

static int counters(const char *path)
{
	struct policy_group g = { 0 };
	struct policy_nft_counters c;
	bool has;
	int rc;

	if (load(path, &g, &has) < 0)
		return 1;
	if ((rc = policy_nft_counters(g.nin, g.nout, &c)) < 0) {
		fprintf(stderr, "polnft: counters: %s\n", strerror(-rc));
		policy_group_free(&g);
		return 1;
	}
	for (size_t i = 0; i < c.nin; i++)
		printf("inbound_rules[%zu] %" PRIu64 "\n", i, c.in_pkts[i]);
	for (size_t i = 0; i < c.nout; i++)
		printf("outbound_rules[%zu] %" PRIu64 "\n", i, c.out_pkts[i]);
	printf("inbound_drop %" PRIu64 "\noutbound_drop %" PRIu64 "\n", c.in_drop_pkts, c.out_drop_pkts);
	policy_nft_counters_free(&c);
	policy_group_free(&g);
	return 0;
}

int main(int argc, char **argv)
{
	struct policy_group g = { 0 };
	struct policy_nft *r;
	char err[POLICY_NFT_ERR_MAX] = "";
	bool has;
	int rc;

	if (argc == 7 && strcmp(argv[1], "bench") == 0)
		return bench(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]) > 0 ? atoi(argv[4]) : 1, argv[5], argv[6]);
	if (argc == 5 && strcmp(argv[1], "change") == 0)
		return change(argv[2], argv[3], argv[4]);
	if (argc == 3 && strcmp(argv[1], "counters") == 0)
		return counters(argv[2]);
	if (argc == 2 && strcmp(argv[1], "remove") == 0) {
		rc = policy_nft_remove(err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "polnft: remove: %s\n", err);
		return rc < 0;
	}
	if (argc != 4 || (strcmp(argv[1], "apply") && strcmp(argv[1], "text"))) {
		fprintf(stderr, "usage: polnft apply|text GROUP.json IFNAME | change OLD.json NEW.json IFNAME |\n"
				"       counters GROUP.json | remove |\n"
				"       bench RULES RANGES RUNS IFNAME TEXTFILE\n");
		return 2;
	}
	if (load(argv[2], &g, &has) < 0)
		return 1;
	if ((rc = policy_nft_render(has ? &g : NULL, argv[3], &r)) < 0) {
		fprintf(stderr, "polnft: render: %s\n", strerror(-rc));
		policy_group_free(&g);
		return 1;
	}
	if (strcmp(argv[1], "text") == 0) {
		char *text = policy_nft_text(r, false);
		rc = text ? 0 : -ENOMEM;
		if (text)
			fputs(text, stdout);
		free(text);
	} else if ((rc = policy_nft_commit(r, err, sizeof(err))) < 0) {
		fprintf(stderr, "polnft: commit: %s\n", err);
	}
	policy_nft_free(r);
	policy_group_free(&g);
	return rc < 0;
}
