#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/lab.h"
#include "sim/scenario.h"

/* two nodes on a LAN; no namespaces are made: only naming and variables */
static const char doc[] =
	"{\"name\": \"vars\", \"networks\": [{\"name\": \"lan\", \"cidr\": \"10.9.0.0/24\"}],"
	" \"nodes\": [{\"name\": \"gw\", \"kind\": \"router\", \"links\": [{\"network\": \"lan\", \"ifname\": \"lan0\"}]},"
	"            {\"name\": \"h\", \"links\": [{\"network\": \"lan\", \"address\": \"10.9.0.7\"}],"
	"             \"processes\": [{\"argv\": [\"x\", \"--peer\", \"${ip:gw/lan0}:99\", \"${run}/${node}.log\"]}]}]}";

struct var_case {
	size_t node;		/* SIZE_MAX: outside any node */
	const char *in;
	int rc;
	const char *out;	/* %R: the run folder, %L: the lab id */
};

static void fill(char *buf, size_t len, const char *pattern, const struct sim_lab *lab)
{
	size_t o = 0;
	for (const char *p = pattern; *p && o + 1 < len; p++) {
		if (p[0] == '%' && (p[1] == 'R' || p[1] == 'L')) {
			o += (size_t)snprintf(buf + o, len - o, "%s", p[1] == 'R' ? lab->run_dir : lab->id);
			p++;
		} else {
			buf[o++] = *p;
		}
	}
	buf[o] = '\0';
}

Test(sim_lab, variables)
{
	static const struct var_case cases[] = {
		{ 1, "${ip}", 0, "10.9.0.7" },
		{ 1, "${ip:gw}:3478", 0, "10.9.0.1:3478" },
		{ 1, "${ip:gw/lan0}", 0, "10.9.0.1" },
		{ 1, "${node}@${ns}", 0, "h@%L-h" },
		{ 1, "${run}/x ${lab}", 0, "%R/x %L" },
		{ 0, "no variables", 0, "no variables" },
		{ SIZE_MAX, "${run}", 0, "%R" },
		{ SIZE_MAX, "${node}", -EINVAL, NULL },
		{ 1, "${ip:nobody}", -ENOENT, NULL },
		{ 1, "${ip:gw/wlan9}", -ENOENT, NULL },
		{ 1, "${colour}", -EINVAL, NULL },
	};
	struct sim_scenario *sc;
	struct sim_lab *lab;
	char err[SIM_ERR_MAX], dir[] = "/tmp/test_lab.XXXXXX", want[PATH_MAX * 2];

	cr_assert_eq(sim_scenario_parse("vars.json", doc, &sc, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(sim_lab_new(sc, dir, false, &lab), 0);
	cr_assert(!strncmp(lab->id, SIM_LAB_PREFIX, strlen(SIM_LAB_PREFIX)) && strlen(lab->id) == 7, "%s", lab->id);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		int rc = sim_lab_expand(lab, cases[i].node, cases[i].in, &out);
		cr_expect_eq(rc, cases[i].rc, "case %zu (%s): %d", i, cases[i].in, rc);
		if (cases[i].out) {
			fill(want, sizeof(want), cases[i].out, lab);
			cr_expect_str_eq(out ? out : "(null)", want, "case %zu", i);
		} else {
			cr_expect_null(out, "case %zu", i);
		}
		free(out);
	}
	/* the run's CA and a certificate for h's name and address, made on demand */
	char *ca = NULL, *cert = NULL, cmd[PATH_MAX * 3];
	cr_assert_eq(sim_lab_expand(lab, SIZE_MAX, "${ca}", &ca), 0, "%s", lab->err);
	cr_assert_eq(sim_lab_expand(lab, 1, "${tls_cert}", &cert), 0, "%s", lab->err);
	fill(want, sizeof(want), "%R/tls/h.pem", lab);
	cr_expect_str_eq(cert, want);
	snprintf(cmd, sizeof(cmd), "openssl verify -CAfile %s %s >/dev/null && "
		 "openssl x509 -noout -ext subjectAltName -in %s | grep -q 'DNS:h, .*IP Address:10.9.0.7'", ca, cert, cert);
	cr_expect_eq(system(cmd), 0, "%s", cmd);
	free(ca);
	free(cert);
	sim_lab_free(lab);
	sim_scenario_free(sc);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* IPv6: ${ip...} is the bare address (a scenario writes [${ip}]:PORT), and a
 * node's certificate names its IPv6 address */
Test(sim_lab, variables_ipv6)
{
	static const char doc6[] =
		"{\"name\": \"vars6\", \"networks\": [{\"name\": \"lan\", \"cidr\": \"2001:db8:1::/64\"}],"
		" \"nodes\": [{\"name\": \"gw\", \"kind\": \"router\", \"links\": [{\"network\": \"lan\"}]},"
		"            {\"name\": \"h\", \"links\": [{\"network\": \"lan\", \"address\": \"2001:db8:1::7\"}]}]}";
	static const struct var_case cases[] = {
		{ 1, "${ip}", 0, "2001:db8:1::7" },
		{ 1, "[${ip:gw}]:3478", 0, "[2001:db8:1::1]:3478" },
		{ 0, "${ip:h/eth0}", 0, "2001:db8:1::7" },
	};
	struct sim_scenario *sc;
	struct sim_lab *lab;
	char err[SIM_ERR_MAX], dir[] = "/tmp/test_lab.XXXXXX", cmd[PATH_MAX * 3];
	char *cert = NULL;

	cr_assert_eq(sim_scenario_parse("vars6.json", doc6, &sc, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(sim_lab_new(sc, dir, false, &lab), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		cr_expect_eq(sim_lab_expand(lab, cases[i].node, cases[i].in, &out), cases[i].rc, "case %zu", i);
		cr_expect_str_eq(out ? out : "(null)", cases[i].out, "case %zu", i);
		free(out);
	}
	cr_assert_eq(sim_lab_expand(lab, 1, "${tls_cert}", &cert), 0, "%s", lab->err);
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -ext subjectAltName -in %s | grep -q 'DNS:h, .*IP Address:2001:DB8:1:0:0:0:0:7'",
		 cert);
	cr_expect_eq(system(cmd), 0, "%s", cmd);
	free(cert);
	sim_lab_free(lab);
	sim_scenario_free(sc);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}
