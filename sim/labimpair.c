/* The lab's impaired links: the two veth pairs either side of a delay line
 * (sim/impairline.h) in the network's namespace, the line's process, and
 * the steps that change it during a run.
 *
 *   node ns            network ns
 *   IFNAME ==veth== imp.K.n [line] imp.K.b ==veth== NODE (port of br0)
 *
 * The bridge port keeps the node's name, so the capture of the link (on
 * that port) sees what the network sees: egress after the line, ingress
 * before it. */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "impairline.h"
#include "netns.h"
#include "rtnl.h"

static void on_term(int sig)
{
	(void)sig;
	impair_line_stop = 1;
}

/* the child: the line in the namespace the parent's thread is in */
static int line_main(struct sim_lab *lab, size_t k, int ready_fd)
{
	const struct sim_scenario *sc = lab->sc;
	const struct sim_link *l = &sc->links[k];
	struct impair_line_opts o = { .seed = sc->seed, .ready_fd = ready_fd };
	impair_lab_devs(k, o.dev_a, o.dev_b);
	sim_strf(o.name, sizeof(o.name), "%s/%s", sc->nodes[l->node].name, l->ifname);
	memcpy(o.dir, l->impair, sizeof(o.dir));
	return impair_line_run(&o) ? 1 : 0;
}

static int spawn_line(struct sim_lab *lab, size_t k)
{
	const struct sim_link *l = &lab->sc->links[k];
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_term };
		char log[PATH_MAX];
		int null = open("/dev/null", O_RDWR), fd = -1;
		close(pfd[0]);
		if (!sim_strf(log, sizeof(log), "%s/logs/impair-%s-%s.log", lab->run_dir, lab->sc->nodes[l->node].name,
			      l->ifname))
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		dup2(null, 0);
		dup2(fd >= 0 ? fd : null, 1);
		dup2(fd >= 0 ? fd : null, 2);
		if (lab->detached) {
			setsid();
		} else {
			setpgid(0, 0);
			prctl(PR_SET_PDEATHSIG, SIGTERM);
		}
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGINT, SIG_IGN);	/* the parent decides when to stop */
		prctl(PR_SET_NAME, "meshsim-impair");
		_exit(line_main(lab, k, pfd[1]));
	}
	close(pfd[1]);
	char c;
	ssize_t r;
	while ((r = read(pfd[0], &c, 1)) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (r != 1) {
		waitpid(pid, NULL, 0);
		sim_strf(lab->err, sizeof(lab->err), "link %s/%s: the delay line did not start; see %s/logs/impair-%s-%s.log",
			 lab->sc->nodes[l->node].name, l->ifname, lab->run_dir, lab->sc->nodes[l->node].name, l->ifname);
		return -EIO;
	}
	lab->impair_pid[k] = pid;
	return 0;
}

/* in the network's namespace: the two veth pairs, the bridge port, offloads
 * off on the three ends here, the line */
int sim_lab_impair_link(struct sim_lab *lab, size_t k)
{
	const struct sim_scenario *sc = lab->sc;
	const struct sim_link *l = &sc->links[k];
	const char *node = sc->nodes[l->node].name;
	char a[IFNAMSIZ], b[IFNAMSIZ], e[160], i[160];
	int rc;

	impair_lab_devs(k, a, b);
	rc = rtnl_veth_add(a, l->ifname, lab->ns_fd[l->node]);
	if (!rc)
		rc = rtnl_veth_add(node, b, lab->ns_fd[sc->nnodes + l->network]);
	if (!rc)
		rc = rtnl_link_set_master(node, "br0");
	const char *const ends[] = { node, a, b };
	for (size_t n = 0; !rc && n < 3; n++)
		if (!(rc = impair_offloads_off(ends[n])))
			rc = rtnl_link_set_up(ends[n], true);
	/* not impair_receive_threaded() on the bridge port, though the egress
	 * output would gain the same: its GRO would merge TCP segments in the
	 * capture, and libpcap sizes a capture ring's frames for 64 KiB when
	 * any offload is on (15 frames in 1 MiB), which drops under load */
	if (!rc)
		rc = spawn_line(lab, k);
	if (rc)
		return rc;
	sim_lab_progress(lab, "impair %s/%s: egress %s; ingress %s", node, l->ifname,
			 impair_conf_format(&l->impair[IMPAIR_EGRESS], e, sizeof(e)),
			 impair_conf_format(&l->impair[IMPAIR_INGRESS], i, sizeof(i)));
	return 0;
}

int sim_lab_impair_ctl(struct sim_lab *lab, size_t k, const char *update, char **reply)
{
	const struct sim_link *l = &lab->sc->links[k];
	char a[IFNAMSIZ], b[IFNAMSIZ];
	int rc;

	*reply = NULL;
	impair_lab_devs(k, a, b);
	rc = netns_enter(lab->ns_fd[lab->sc->nnodes + l->network]);
	if (!rc)
		rc = impair_ctl(a, update, 2000, reply);
	netns_enter(lab->self_ns);
	return rc;
}

json_t *sim_lab_impair_report(struct sim_lab *lab)
{
	json_t *arr = json_array();
	for (size_t k = 0; arr && k < lab->sc->nlinks; k++) {
		char *reply = NULL;
		if (!lab->sc->links[k].impaired || sim_lab_impair_ctl(lab, k, "{}", &reply) < 0)
			continue;
		json_t *j = json_loads(reply, 0, NULL);
		if (j)
			json_array_append_new(arr, j);
		free(reply);
	}
	return arr;
}
