#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "impairline.h"
#include "loop.h"
#include "nat-models/natmodel.h"
#include "netns.h"
#include "portmapd.h"
#include "rtnl.h"

volatile sig_atomic_t sim_stop_requested;

static const char bridge_name[] = "br0";

int sim_strf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

uint64_t sim_lab_clock(const struct sim_lab *lab)
{
	return clock_now_ms() - lab->t0;
}

void sim_lab_progress(const struct sim_lab *lab, const char *fmt, ...)
{
	va_list ap;
	uint64_t t = sim_lab_clock(lab);
	fprintf(stderr, "[%4llu.%02llus] ", (unsigned long long)(t / 1000), (unsigned long long)(t % 1000 / 10));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void sim_lab_ns_name(const char *lab_id, const char *name, char *buf, size_t len)
{
	sim_strf(buf, len, "%s-%s", lab_id, name);
}

static int lab_fail(struct sim_lab *lab, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lab_fail(struct sim_lab *lab, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(lab->err, sizeof(lab->err), fmt, ap);
	va_end(ap);
	return rc < 0 ? rc : -EIO;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	sim_strf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* the directory of /proc/self/exe: where meshsvc, meshstun, meshd live */
static void build_dir_of_self(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0) {
		sim_strf(buf, len, ".");
		return;
	}
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
}

int sim_lab_new(const struct sim_scenario *sc, const char *run_dir, bool detached, struct sim_lab **out)
{
	struct sim_lab *lab;
	uint16_t r;
	int rc;

	*out = NULL;
	lab = calloc(1, sizeof(*lab));
	if (!lab)
		return -ENOMEM;
	lab->sc = sc;
	lab->detached = detached;
	lab->t0 = clock_now_ms();
	lab->self_ns = -1;
	lab->ns_fd = malloc((sc->nnodes + sc->nnets + 1) * sizeof(int));
	lab->capture_pid = calloc(sc->nnets + 1, sizeof(pid_t));
	lab->impair_pid = calloc(sc->nlinks + 1, sizeof(pid_t));
	lab->procs = calloc(sc->nprocs + 1, sizeof(*lab->procs));
	lab->tls_made = calloc(sc->nnodes + 1, sizeof(bool));
	if (!lab->ns_fd || !lab->capture_pid || !lab->impair_pid || !lab->procs || !lab->tls_made) {
		rc = -ENOMEM;
		goto err;
	}
	for (size_t i = 0; i < sc->nnodes + sc->nnets; i++)
		lab->ns_fd[i] = -1;
	build_dir_of_self(lab->build_dir, sizeof(lab->build_dir));
	/* a lab id nobody uses yet */
	for (int tries = 0;; tries++) {
		char probe[PATH_MAX];
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint16_t)(getpid() ^ clock_now_ms());
		sim_strf(lab->id, sizeof(lab->id), SIM_LAB_PREFIX "%04x", r);
		sim_strf(probe, sizeof(probe), SIM_STATE_DIR "/%s.json", lab->id);
		char **names;
		size_t n;
		char prefix[SIM_LAB_ID_MAX + 1];
		sim_strf(prefix, sizeof(prefix), "%s-", lab->id);
		if (netns_list(prefix, &names, &n) < 0)
			n = 0;
		else
			netns_list_free(names, n);
		if ((n == 0 && access(probe, F_OK) < 0) || tries > 100)
			break;
	}
	if (run_dir)
		sim_strf(lab->run_dir, sizeof(lab->run_dir), "%s", run_dir);
	else
		sim_strf(lab->run_dir, sizeof(lab->run_dir), "/tmp/meshsim/%s-%s", sc->name, lab->id);
	rc = mkdir_p(lab->run_dir);
	if (rc) {
		lab_fail(lab, rc, "cannot make run folder %s: %s", lab->run_dir, strerror(-rc));
		fprintf(stderr, "meshsim: %s\n", lab->err);
		goto err;
	}
	/* absolute, so that the state file and `meshsim exec` work from anywhere */
	char abs[PATH_MAX];
	if (realpath(lab->run_dir, abs))
		sim_strf(lab->run_dir, sizeof(lab->run_dir), "%s", abs);
	char sub[PATH_MAX + 8];
	sim_strf(sub, sizeof(sub), "%s/logs", lab->run_dir);
	mkdir_p(sub);
	sim_strf(sub, sizeof(sub), "%s/pcap", lab->run_dir);
	mkdir_p(sub);
	lab->self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (lab->self_ns < 0) {
		rc = -errno;
		goto err;
	}
	*out = lab;
	return 0;
err:
	sim_lab_free(lab);
	return rc;
}

void sim_lab_free(struct sim_lab *lab)
{
	if (!lab)
		return;
	for (size_t i = 0; lab->ns_fd && i < lab->sc->nnodes + lab->sc->nnets; i++)
		if (lab->ns_fd[i] >= 0)
			close(lab->ns_fd[i]);
	if (lab->self_ns >= 0)
		close(lab->self_ns);
	free(lab->ns_fd);
	free(lab->capture_pid);
	free(lab->impair_pid);
	free(lab->procs);
	free(lab->tls_made);
	free(lab);
}

/* --- build ---------------------------------------------------------------- */

static const char *ns_label(const struct sim_lab *lab, size_t i)
{
	return i < lab->sc->nnodes ? lab->sc->nodes[i].name : lab->sc->nets[i - lab->sc->nnodes].name;
}

/* enter the namespace of node or network i (i >= nnodes: network) */
static int enter(struct sim_lab *lab, size_t i)
{
	int rc = netns_enter(lab->ns_fd[i]);
	if (rc)
		lab_fail(lab, rc, "cannot enter namespace of %s: %s", ns_label(lab, i), strerror(-rc));
	return rc;
}

static void leave(struct sim_lab *lab)
{
	netns_enter(lab->self_ns);
}

static bool lab_has_v6(const struct sim_scenario *sc)
{
	for (size_t i = 0; i < sc->nlinks; i++)
		if (sc->links[i].addr.family == AF_INET6)
			return true;
	return false;
}

static int make_namespaces(struct sim_lab *lab)
{
	const struct sim_scenario *sc = lab->sc;
	bool v6 = lab_has_v6(sc);
	for (size_t i = 0; i < sc->nnodes + sc->nnets; i++) {
		char name[64];
		int rc;
		sim_lab_ns_name(lab->id, ns_label(lab, i), name, sizeof(name));
		rc = netns_add(name);
		if (rc)
			return lab_fail(lab, rc, "cannot create namespace %s: %s", name, strerror(-rc));
		lab->ns_fd[i] = netns_open(name);
		if (lab->ns_fd[i] < 0)
			return lab_fail(lab, lab->ns_fd[i], "cannot open namespace %s: %s", name, strerror(-lab->ns_fd[i]));
		if ((rc = enter(lab, i)))
			return rc;
		/* no router solicitations or MLD reports in the captures */
		if (!v6) {
			netns_sysctl("net.ipv6.conf.all.disable_ipv6", "1");
			netns_sysctl("net.ipv6.conf.default.disable_ipv6", "1");
		} else {
			/* before the links exist, which take the defaults: an
			 * address under duplicate address detection is tentative
			 * for a second or two, and neither answers nor can be
			 * bound; addresses and routes are the scenario's alone */
			static const char *const v6_off[] = { "accept_dad", "accept_ra", "autoconf" };
			char key[64];
			for (size_t k = 0; k < sizeof(v6_off) / sizeof(v6_off[0]) && !rc; k++)
				for (int d = 0; d < 2 && !rc; d++) {
					sim_strf(key, sizeof(key), "net.ipv6.conf.%s.%s", d ? "default" : "all", v6_off[k]);
					if ((rc = netns_sysctl(key, "0")))
						lab_fail(lab, rc, "%s: cannot set %s: %s", name, key, strerror(-rc));
				}
		}
		if (!rc && i < sc->nnodes && sc->nodes[i].kind != SIM_NODE_HOST &&
		    (rc = netns_sysctl("net.ipv4.ip_forward", "1")))
			lab_fail(lab, rc, "%s: cannot enable ip_forward: %s", name, strerror(-rc));
		/* a NAT66 gateway forwards too */
		if (!rc && v6 && i < sc->nnodes &&
		    (sc->nodes[i].kind == SIM_NODE_ROUTER || sc->nodes[i].kind == SIM_NODE_NAT) &&
		    (rc = netns_sysctl("net.ipv6.conf.all.forwarding", "1")))
			lab_fail(lab, rc, "%s: cannot enable IPv6 forwarding: %s", name, strerror(-rc));
		if (!rc && i >= sc->nnodes) {
			rc = rtnl_bridge_add(bridge_name);
			if (!rc)
				rc = rtnl_link_set_up(bridge_name, true);
			if (rc)
				lab_fail(lab, rc, "%s: cannot make bridge: %s", name, strerror(-rc));
		}
		leave(lab);
		if (rc)
			return rc;
	}
	return 0;
}

static int make_link(struct sim_lab *lab, const struct sim_link *k)
{
	size_t index = (size_t)(k - lab->sc->links);
	const struct sim_scenario *sc = lab->sc;
	const char *node = sc->nodes[k->node].name;
	size_t net_ns = sc->nnodes + k->network;
	struct natmodel_error nerr = { { 0 }, { 0 } };
	int rc;

	/* switch side: the port is named after the node */
	if ((rc = enter(lab, net_ns)))
		return rc;
	if (k->impaired) {
		rc = sim_lab_impair_link(lab, index);
	} else {
		rc = rtnl_veth_add(node, k->ifname, lab->ns_fd[k->node]);
		if (!rc)
			rc = rtnl_link_set_master(node, bridge_name);
		if (!rc)
			rc = rtnl_link_set_up(node, true);
	}
	if (!rc && k->loss_percent)
		rc = natmodel_loss_apply(node, (unsigned)k->loss_percent, &nerr);
	leave(lab);
	if (rc && lab->err[0])
		return rc;
	if (rc)
		return lab_fail(lab, rc, "link %s/%s to %s: %s", node, k->ifname, sc->nets[k->network].name,
				nerr.reason[0] ? nerr.reason : strerror(-rc));
	if ((rc = enter(lab, k->node)))
		return rc;
	rc = rtnl_addr_add(k->ifname, &k->addr);
	/* frames into the delay line at most the MTU: decisions per packet */
	if (!rc && k->impaired)
		rc = impair_offloads_off(k->ifname);
	if (!rc)
		rc = rtnl_link_set_up(k->ifname, true);
	if (!rc && k->impaired && impair_receive_threaded(k->ifname) < 0)
		sim_lab_progress(lab, "impair %s/%s: no threaded receive (slower, still right)", node, k->ifname);
	if (!rc && k->loss_percent)
		rc = natmodel_loss_apply(k->ifname, (unsigned)k->loss_percent, &nerr);
	leave(lab);
	if (rc)
		return lab_fail(lab, rc, "link %s/%s: %s", node, k->ifname, nerr.reason[0] ? nerr.reason : strerror(-rc));
	return 0;
}

static int node_routes_and_nat(struct sim_lab *lab, size_t i)
{
	const struct sim_node *n = &lab->sc->nodes[i];
	struct natmodel_error nerr = { { 0 }, { 0 } };
	int rc = 0;

	if (!n->nroutes && n->kind != SIM_NODE_NAT)
		return 0;
	if ((rc = enter(lab, i)))
		return rc;
	for (size_t r = 0; r < n->nroutes && !rc; r++) {
		char dst[CIDR_STRLEN], via[ADDR_STRLEN];
		rc = rtnl_route_add(n->routes[r].dev, &n->routes[r].dst, &n->routes[r].via);
		if (rc)
			lab_fail(lab, rc, "%s: route %s via %s: %s", n->name,
				 cidr_format(&n->routes[r].dst, dst, sizeof(dst)),
				 addr_format_ip(&n->routes[r].via, via, sizeof(via)), strerror(-rc));
	}
	if (!rc && n->kind == SIM_NODE_NAT) {
		struct natmodel m;
		char desc[NATMODEL_STRLEN];
		rc = natmodel_from_json(n->nat, &m, &nerr);
		if (!rc)
			rc = natmodel_apply(&m, n->wan, NULL, &nerr);
		if (rc)
			lab_fail(lab, rc, "%s: NAT model: %s%s%s", n->name, nerr.field, nerr.field[0] ? ": " : "",
				 nerr.reason[0] ? nerr.reason : strerror(-rc));
		else
			sim_lab_progress(lab, "nat %s on %s: %s", n->name, n->wan, natmodel_format(&m, desc, sizeof(desc)));
	}
	leave(lab);
	return rc;
}

int sim_lab_build(struct sim_lab *lab)
{
	const struct sim_scenario *sc = lab->sc;
	int rc;

	if (lab->state != SIM_LAB_NEW)
		return -EALREADY;
	/* the state file first, so that a crash halfway leaves a lab `down` knows */
	rc = sim_lab_save(lab);
	if (rc)
		return lab_fail(lab, rc, "cannot write the lab's state under " SIM_STATE_DIR ": %s", strerror(-rc));
	rc = make_namespaces(lab);
	for (size_t i = 0; !rc && i < sc->nlinks; i++)
		rc = make_link(lab, &sc->links[i]);
	for (size_t i = 0; !rc && i < sc->nnodes; i++)
		rc = node_routes_and_nat(lab, i);
	/* miniupnpd's configuration and table; its processes start with the rest */
	for (size_t i = 0; !rc && i < sc->nnodes; i++)
		rc = sim_portmapd_setup(lab, i);
	if (rc)
		return rc;
	sim_lab_progress(lab, "lab %s: %zu namespaces, %zu links", lab->id, sc->nnodes + sc->nnets, sc->nlinks);
	lab->state = SIM_LAB_BUILT;
	return 0;
}

int sim_lab_capture(struct sim_lab *lab)
{
	if (lab->state != SIM_LAB_BUILT)
		return -EALREADY;
	if (lab->no_capture) {
		sim_lab_progress(lab, "no captures (--no-capture)");
		lab->state = SIM_LAB_CAPTURING;
		return 0;
	}
	int *ready = malloc((lab->sc->nnets + 1) * sizeof(int));
	int rc = ready ? 0 : -ENOMEM;
	size_t started = 0;
	for (; !rc && started < lab->sc->nnets; started++)
		rc = sim_capture_spawn(lab, started, &lab->capture_pid[started], &ready[started]);
	if (rc)
		started--;
	for (size_t i = 0; i < started; i++) {
		int r = sim_capture_wait(lab, i, ready[i]);
		rc = rc ? rc : r;
	}
	free(ready);
	if (rc)
		return rc;
	sim_lab_progress(lab, "capturing %zu links into %s/pcap", lab->sc->nlinks, lab->run_dir);
	lab->state = SIM_LAB_CAPTURING;
	return 0;
}

/* --- teardown and state files -------------------------------------------- */

static void state_path(const char *lab_id, char *buf, size_t len)
{
	sim_strf(buf, len, SIM_STATE_DIR "/%s.json", lab_id);
}

int sim_lab_save(const struct sim_lab *lab)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	int rc = mkdir_p(SIM_STATE_DIR);
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b}", "lab", lab->id, "scenario", lab->sc->name, "file",
			      lab->sc->file, "run_dir", lab->run_dir, "pid", (int)getpid(), "detached", lab->detached);
	if (!j)
		return -ENOMEM;
	state_path(lab->id, path, sizeof(path));
	sim_strf(tmp, sizeof(tmp), "%s.tmp", path);
	rc = json_dump_file(j, tmp, JSON_INDENT(2)) < 0 ? -EIO : 0;
	json_decref(j);
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	return rc;
}

int sim_lab_destroy(const char *lab_id)
{
	char prefix[SIM_LAB_ID_MAX + 2], path[PATH_MAX];
	int deleted = 0;

	snprintf(prefix, sizeof(prefix), "%s-", lab_id);
	/* again until none is listed: a listing of /run/netns taken while
	 * others add and remove namespaces there has been seen to miss entries */
	for (int round = 0; round < 5; round++) {
		char **names;
		size_t n;
		if (netns_list(prefix, &names, &n) < 0)
			return -EIO;
		/* processes first (captures flush their files on SIGTERM), then namespaces */
		netns_kill_all(names, n, 2000);
		for (size_t i = 0; i < n; i++)
			deleted += netns_del(names[i]) == 0;
		netns_list_free(names, n);
		if (n == 0)
			break;
	}
	state_path(lab_id, path, sizeof(path));
	unlink(path);
	return deleted;
}

void sim_lab_teardown(struct sim_lab *lab)
{
	const struct sim_scenario *sc = lab->sc;
	if (lab->state == SIM_LAB_DOWN)
		return;
	/* processes in dependency order reversed, then the captures last so
	 * that they see the processes' final packets */
	for (size_t i = sc->nprocs; i-- > 0;)
		sim_lab_proc_stop(lab, i);
	for (size_t i = 0; i < sc->nnets; i++)
		if (lab->capture_pid[i] > 0)
			kill(lab->capture_pid[i], SIGTERM);
	for (size_t i = 0; i < sc->nnets; i++) {
		if (lab->capture_pid[i] <= 0)
			continue;
		for (int t = 0; t < 200 && waitpid(lab->capture_pid[i], NULL, WNOHANG) == 0; t++)
			usleep(10000);
		lab->capture_pid[i] = 0;
	}
	for (size_t i = 0; i < sc->nnodes + sc->nnets; i++)
		if (lab->ns_fd[i] >= 0) {
			close(lab->ns_fd[i]);
			lab->ns_fd[i] = -1;
		}
	int n = sim_lab_destroy(lab->id);
	sim_lab_progress(lab, "lab %s down: %d namespaces removed", lab->id, n < 0 ? 0 : n);
	lab->state = SIM_LAB_DOWN;
}
