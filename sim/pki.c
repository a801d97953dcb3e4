/* A throwaway certificate authority per run (RUN/tls/ca.pem) and, for each
 * node that asks, a server certificate for the node's name and addresses
 * (RUN/tls/NODE.pem, NODE.key), made with the openssl command line tool.
 * The CA's key stays in the run folder; nothing is trusted system-wide. */
#include "lab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* runs argv with output to RUN/tls/openssl.log; 0 on exit status 0 */
static int openssl(struct sim_lab *lab, char *const argv[])
{
	char log[PATH_MAX];
	pid_t pid;
	int st;
	if (sim_strf(log, sizeof(log), "%s/tls/openssl.log", lab->run_dir))
		return -ENAMETOOLONG;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		FILE *f = freopen(log, "a", stdout);
		if (f)
			dup2(fileno(f), 2);
		execvp("openssl", argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		sim_strf(lab->err, sizeof(lab->err), "openssl %s failed; see %s", argv[1], log);
		return -EIO;
	}
	return 0;
}

int sim_pki_ca(struct sim_lab *lab)
{
	char dir[PATH_MAX], key[PATH_MAX], pem[PATH_MAX], subj[64];
	if (sim_strf(dir, sizeof(dir), "%s/tls", lab->run_dir) || sim_strf(key, sizeof(key), "%s/ca.key", dir) ||
	    sim_strf(pem, sizeof(pem), "%s/ca.pem", dir))
		return -ENAMETOOLONG;
	if (access(pem, R_OK) == 0)
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	sim_strf(subj, sizeof(subj), "/CN=meshsim %s CA", lab->id);
	char *const argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
			       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", pem, "-days", "2",
			       "-subj", subj, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
			       "keyUsage=critical,keyCertSign,cRLSign", NULL };
	return openssl(lab, argv);
}

int sim_pki_node(struct sim_lab *lab, size_t node)
{
	const struct sim_scenario *sc = lab->sc;
	const char *name = sc->nodes[node].name;
	char dir[PATH_MAX], key[PATH_MAX], csr[PATH_MAX], pem[PATH_MAX], ca[PATH_MAX], cakey[PATH_MAX];
	char subj[64], san[1024], ext[PATH_MAX];
	int rc;

	if (lab->tls_made[node])
		return 0;
	rc = sim_pki_ca(lab);
	if (rc)
		return rc;
	if (sim_strf(dir, sizeof(dir), "%s/tls", lab->run_dir) || sim_strf(key, sizeof(key), "%s/%s.key", dir, name) ||
	    sim_strf(csr, sizeof(csr), "%s/%s.csr", dir, name) || sim_strf(pem, sizeof(pem), "%s/%s.pem", dir, name) ||
	    sim_strf(ca, sizeof(ca), "%s/ca.pem", dir) || sim_strf(cakey, sizeof(cakey), "%s/ca.key", dir) ||
	    sim_strf(ext, sizeof(ext), "%s/%s.ext", dir, name))
		return -ENAMETOOLONG;
	/* subjectAltName: the node's name and every address it has */
	size_t off = (size_t)snprintf(san, sizeof(san), "subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1", name);
	for (size_t i = 0; i < sc->nlinks && off < sizeof(san); i++) {
		char ip[ADDR_STRLEN];
		union sockaddr_any a;
		if (sc->links[i].node != node)
			continue;
		sim_link_ip(&sc->links[i], &a);
		off += (size_t)snprintf(san + off, sizeof(san) - off, ",IP:%s", addr_format_ip(&a, ip, sizeof(ip)));
	}
	FILE *f = fopen(ext, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n", san);
	fclose(f);
	sim_strf(subj, sizeof(subj), "/CN=%s", name);
	char *const req[] = { "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
			      "-nodes", "-keyout", key, "-out", csr, "-subj", subj, NULL };
	char *const sign[] = { "openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
			       "-out", pem, "-days", "2", "-extfile", ext, NULL };
	rc = openssl(lab, req);
	if (!rc)
		rc = openssl(lab, sign);
	if (!rc)
		lab->tls_made[node] = true;
	return rc;
}
