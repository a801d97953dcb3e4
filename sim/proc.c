/* Processes of a lab: started in their node's namespace in dependency order,
 * watched for readiness, stopped by process group. */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "netns.h"

enum {
	PROC_STOP_GRACE_MS = 3000,
	READY_POLL_MS = 25,
	READY_COMMAND_TIMEOUT_MS = 2000,
};

/* --- variables ------------------------------------------------------------ */

static int link_ref(struct sim_lab *lab, const char *ref, size_t len, char *buf, size_t buflen)
{
	const struct sim_link *k;
	union sockaddr_any a;
	int rc = sim_scenario_ref(lab->sc, ref, len, &k);
	if (rc)
		return -ENOENT;
	sim_link_ip(k, &a);
	addr_format_ip(&a, buf, buflen);
	return 0;
}

int sim_lab_expand(struct sim_lab *lab, size_t node, const char *s, char **out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc = 0;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	while (*s && !rc) {
		const char *v = strstr(s, "${"), *end = v ? strchr(v, '}') : NULL;
		if (!v || !end) {
			fputs(s, m);
			break;
		}
		fwrite(s, 1, (size_t)(v - s), m);
		const char *name = v + 2;
		size_t n = (size_t)(end - name);
		char tmp[PATH_MAX + 64];
		bool has_node = node < lab->sc->nnodes;
		const char *nname = has_node ? lab->sc->nodes[node].name : "";
#define IS(x) (n == strlen(x) && !memcmp(name, x, n))
		if (IS("run"))
			fputs(lab->run_dir, m);
		else if (IS("build"))
			fputs(lab->build_dir, m);
		else if (IS("lab"))
			fputs(lab->id, m);
		else if (IS("node") && has_node)
			fputs(nname, m);
		else if (IS("ns") && has_node) {
			sim_lab_ns_name(lab->id, nname, tmp, sizeof(tmp));
			fputs(tmp, m);
		} else if (IS("ip") && has_node) {
			if (!(rc = link_ref(lab, nname, strlen(nname), tmp, sizeof(tmp))))
				fputs(tmp, m);
		} else if (n > 3 && !memcmp(name, "ip:", 3)) {
			if (!(rc = link_ref(lab, name + 3, n - 3, tmp, sizeof(tmp))))
				fputs(tmp, m);
		} else if (IS("ca")) {
			rc = sim_pki_ca(lab);
			fprintf(m, "%s/tls/ca.pem", lab->run_dir);
		} else if ((IS("tls_cert") || IS("tls_key")) && has_node) {
			rc = sim_pki_node(lab, node);
			fprintf(m, "%s/tls/%s.%s", lab->run_dir, nname, IS("tls_key") ? "key" : "pem");
		} else {
			rc = -EINVAL;
		}
#undef IS
		s = end + 1;
	}
	fclose(m);
	if (rc)
		free(buf);
	else
		*out = buf;
	return rc;
}

static void argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int argv_expand(struct sim_lab *lab, size_t node, const struct sim_argv *in, char ***out)
{
	char **v = calloc(in->n + 1, sizeof(char *));
	*out = NULL;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		int rc = sim_lab_expand(lab, node, in->v[i], &v[i]);
		if (rc) {
			argv_free(v);
			return rc;
		}
	}
	*out = v;
	return 0;
}

/* --- the child side ------------------------------------------------------- */

int sim_lab_enter_node(const char *lab_id, const char *node, const char *run_dir, const char *build_dir)
{
	char ns[64], path[PATH_MAX + 64];
	int fd, rc;

	sim_lab_ns_name(lab_id, node, ns, sizeof(ns));
	fd = netns_open(ns);
	if (fd < 0)
		return fd;
	rc = netns_enter(fd);
	close(fd);
	if (rc)
		return rc;
	/* as `ip netns exec` does: a mount namespace whose /sys shows this
	 * network namespace; and a host name of the node's own */
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS) < 0)
		return -errno;
	if (mount("", "/", "none", MS_SLAVE | MS_REC, NULL) < 0)
		return -errno;
	if (umount2("/sys", MNT_DETACH) == 0)
		mount(ns, "/sys", "sysfs", 0, NULL);
	if (sethostname(node, strlen(node)) < 0)
		return -errno;
	/* each node has its own /run/meshd (meshd's control sockets) */
	const char *const parts[] = { "nodes", node, "run-meshd" };
	if (sim_strf(path, sizeof(path), "%s", run_dir))
		return -ENAMETOOLONG;
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(path);
		if (sim_strf(path + n, sizeof(path) - n, "/%s", parts[i]))
			return -ENAMETOOLONG;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir("/run/meshd", 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount(path, "/run/meshd", "none", MS_BIND, NULL) < 0)
		return -errno;
	const char *old = getenv("PATH");
	sim_strf(path, sizeof(path), "%s:%s", build_dir, old ? old : "/usr/sbin:/usr/bin:/sbin:/bin");
	setenv("PATH", path, 1);
	setenv("MESHSIM_LAB", lab_id, 1);
	setenv("MESHSIM_NODE", node, 1);
	setenv("MESHSIM_RUN", run_dir, 1);
	return 0;
}

/* argv[0] without a '/' is looked up in the build directory first */
static void resolve(const struct sim_lab *lab, const char *arg0, char *buf, size_t len)
{
	sim_strf(buf, len, "%s/%s", lab->build_dir, arg0);
	if (strchr(arg0, '/') || access(buf, X_OK) < 0)
		sim_strf(buf, len, "%s", arg0);
}

/* fork a child into node with stdout/stderr on out_fd; exec errors come back
 * through a close-on-exec pipe */
static int spawn(struct sim_lab *lab, size_t node, char **argv, int out_fd, pid_t *pid_out)
{
	char exe[PATH_MAX];
	int pfd[2], err = 0;
	pid_t pid;

	int rc;
	resolve(lab, argv[0], exe, sizeof(exe));
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return rc;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (lab->detached)
			setsid();
		else
			setpgid(0, 0);
		if (!lab->detached)
			prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		rc = node < lab->sc->nnodes
			     ? sim_lab_enter_node(lab->id, lab->sc->nodes[node].name, lab->run_dir, lab->build_dir)
			     : 0;
		if (!rc) {
			dup2(null, 0);
			dup2(out_fd, 1);
			dup2(out_fd, 2);
			if (strchr(exe, '/'))
				execv(exe, argv);
			else
				execvp(exe, argv);
			rc = -errno;
		}
		err = -rc;
		if (write(pfd[1], &err, sizeof(err)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	setpgid(pid, pid);
	ssize_t n;
	while ((n = read(pfd[0], &err, sizeof(err))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n == sizeof(err)) {
		waitpid(pid, NULL, 0);
		return -err;
	}
	*pid_out = pid;
	return 0;
}

static void kill_group(pid_t pid, int grace_ms, int *status)
{
	int st = 0;
	kill(-pid, SIGTERM);
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			break;
		if (waited == grace_ms)
			kill(-pid, SIGKILL);
		usleep(10000);
	}
	/* whatever else is left in its group */
	kill(-pid, SIGKILL);
	if (status)
		*status = st;
}

int sim_lab_run(struct sim_lab *lab, size_t node, char *const *argv_in, int timeout_ms, char **output,
		int *status)
{
	char **argv = NULL;
	int pfd[2], rc;
	pid_t pid;
	size_t n = 0;
	for (; argv_in[n]; n++)
		;
	struct sim_argv a = { (char **)argv_in, n };
	rc = argv_expand(lab, node, &a, &argv);
	if (rc)
		return rc;
	if (output)
		*output = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		argv_free(argv);
		return -errno;
	}
	rc = spawn(lab, node, argv, pfd[1], &pid);
	close(pfd[1]);
	argv_free(argv);
	if (rc) {
		close(pfd[0]);
		return rc;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	uint64_t deadline = clock_now_ms() + (uint64_t)timeout_ms;
	bool timed_out = false;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = (int64_t)(deadline - clock_now_ms());
		if (left <= 0 || sim_stop_requested) {
			timed_out = true;
			break;
		}
		int r = poll(&p, 1, (int)(left > 100 ? 100 : left));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		char chunk[4096];
		ssize_t got = read(pfd[0], chunk, sizeof(chunk));
		if (got <= 0)
			break;
		if (m && len < (1u << 20))
			fwrite(chunk, 1, (size_t)got, m);
	}
	close(pfd[0]);
	if (m)
		fclose(m);
	int st = 0;
	if (timed_out) {
		kill_group(pid, 0, &st);
	} else {
		kill(-pid, SIGKILL);	/* background children that kept the pipe */
		waitpid(pid, &st, 0);
	}
	if (status)
		*status = st;
	if (output)
		*output = buf;
	else
		free(buf);
	return timed_out ? -ETIMEDOUT : 0;
}

/* --- long-running processes ------------------------------------------------ */

int sim_lab_proc_start(struct sim_lab *lab, size_t i)
{
	const struct sim_proc *p = &lab->sc->procs[i];
	struct sim_proc_run *r = &lab->procs[i];
	const char *node = lab->sc->nodes[p->node].name;
	char **argv = NULL;
	int fd, rc;

	if (r->state == SIM_PROC_STARTING || r->state == SIM_PROC_READY)
		return -EALREADY;
	rc = argv_expand(lab, p->node, &p->argv, &argv);
	if (rc) {
		sim_strf(lab->err, sizeof(lab->err), "%s/%s: cannot expand argv: %s", node, p->name, strerror(-rc));
		return rc;
	}
	sim_strf(r->log, sizeof(r->log), "%s/logs/%s-%s.log", lab->run_dir, node, p->name);
	fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		argv_free(argv);
		sim_strf(lab->err, sizeof(lab->err), "%s: %s", r->log, strerror(-rc));
		return rc;
	}
	rc = spawn(lab, p->node, argv, fd, &r->pid);
	close(fd);
	if (rc) {
		sim_strf(lab->err, sizeof(lab->err), "%s/%s: cannot run %s: %s", node, p->name, argv[0], strerror(-rc));
		argv_free(argv);
		r->state = SIM_PROC_FAILED;
		return rc;
	}
	argv_free(argv);
	r->start_ms = sim_lab_clock(lab);
	r->status = 0;
	r->state = SIM_PROC_STARTING;
	return 0;
}

int sim_lab_proc_stop(struct sim_lab *lab, size_t i)
{
	struct sim_proc_run *r = &lab->procs[i];
	if (r->state != SIM_PROC_STARTING && r->state != SIM_PROC_READY)
		return -EALREADY;
	kill_group(r->pid, PROC_STOP_GRACE_MS, &r->status);
	r->pid = 0;
	r->state = SIM_PROC_STOPPED;
	return 0;
}

int sim_lab_reap(struct sim_lab *lab)
{
	int failed = 0;
	for (size_t i = 0; i < lab->sc->nprocs; i++) {
		struct sim_proc_run *r = &lab->procs[i];
		int st;
		if ((r->state != SIM_PROC_STARTING && r->state != SIM_PROC_READY) || r->pid <= 0)
			continue;
		if (waitpid(r->pid, &st, WNOHANG) != r->pid)
			continue;
		kill(-r->pid, SIGKILL);
		r->status = st;
		r->pid = 0;
		if (lab->sc->procs[i].oneshot && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			r->ready_ms = sim_lab_clock(lab);
			r->state = SIM_PROC_DONE;
		} else {
			r->state = SIM_PROC_FAILED;
			failed++;
		}
	}
	return failed;
}

/* a socket on port in the process's namespace: /proc/PID/net/{udp,tcp}[6]
 * show the namespace of PID; TCP must be listening (state 0A) */
static bool port_open(pid_t pid, bool tcp, int port)
{
	for (int v6 = 0; v6 < 2; v6++) {
		char path[64], line[512];
		sim_strf(path, sizeof(path), "/proc/%d/net/%s%s", (int)pid, tcp ? "tcp" : "udp", v6 ? "6" : "");
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char local[64];
			unsigned st;
			if (sscanf(line, " %*d: %63s %*s %x", local, &st) != 2)
				continue;
			char *colon = strrchr(local, ':');
			if (colon && (int)strtol(colon + 1, NULL, 16) == port && (!tcp || st == 0x0A)) {
				fclose(f);
				return true;
			}
		}
		fclose(f);
	}
	return false;
}

static bool proc_ready(struct sim_lab *lab, size_t i)
{
	const struct sim_proc *p = &lab->sc->procs[i];
	const struct sim_ready *rd = &p->ready;
	struct sim_proc_run *r = &lab->procs[i];
	char *path;
	bool ok = false;
	int st;

	switch (rd->kind) {
	case SIM_READY_NONE:
		return true;
	case SIM_READY_UDP:
	case SIM_READY_TCP:
		return port_open(r->pid, rd->kind == SIM_READY_TCP, rd->port);
	case SIM_READY_FILE:
		if (sim_lab_expand(lab, p->node, rd->path, &path) == 0)
			ok = access(path, F_OK) == 0;
		free(path);
		return ok;
	case SIM_READY_COMMAND:
		return sim_lab_run(lab, p->node, rd->argv.v, READY_COMMAND_TIMEOUT_MS, NULL, &st) == 0 &&
		       WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	return false;
}

static bool deps_done(const struct sim_lab *lab, size_t i)
{
	const struct sim_proc *p = &lab->sc->procs[i];
	for (size_t d = 0; d < p->nafter; d++) {
		enum sim_proc_state s = lab->procs[p->after[d]].state;
		if (s != SIM_PROC_READY && s != SIM_PROC_DONE)
			return false;
	}
	return true;
}

static void log_tail(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, size > (long)len - 1 ? size - (long)len + 1 : 0, SEEK_SET);
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *nl = strrchr(buf, '\n');
	if (nl)
		memmove(buf, nl + 1, strlen(nl + 1) + 1);
}

static int proc_failed(struct sim_lab *lab, size_t i, const char *why)
{
	const struct sim_proc *p = &lab->sc->procs[i];
	const struct sim_proc_run *r = &lab->procs[i];
	char tail[160], how[48] = "";
	log_tail(r->log, tail, sizeof(tail));
	if (r->state == SIM_PROC_FAILED && WIFEXITED(r->status))
		sim_strf(how, sizeof(how), " (exit %d)", WEXITSTATUS(r->status));
	else if (r->state == SIM_PROC_FAILED && WIFSIGNALED(r->status))
		sim_strf(how, sizeof(how), " (signal %d)", WTERMSIG(r->status));
	sim_strf(lab->err, sizeof(lab->err), "%s/%s %s%s; log %s%s%s", lab->sc->nodes[p->node].name, p->name, why,
		 how, r->log, tail[0] ? ": " : "", tail);
	return -EIO;
}

int sim_lab_proc_wait(struct sim_lab *lab, size_t i)
{
	const struct sim_proc *p = &lab->sc->procs[i];
	struct sim_proc_run *r = &lab->procs[i];
	for (;;) {
		sim_lab_reap(lab);
		if (r->state == SIM_PROC_FAILED)
			return proc_failed(lab, i, p->oneshot ? "failed" : "exited before it was ready");
		if (r->state == SIM_PROC_READY || r->state == SIM_PROC_DONE)
			return 0;
		if (r->state != SIM_PROC_STARTING)
			return -EINVAL;
		if (!p->oneshot && proc_ready(lab, i)) {
			r->ready_ms = sim_lab_clock(lab);
			r->state = SIM_PROC_READY;
			return 0;
		}
		if (sim_lab_clock(lab) - r->start_ms > (uint64_t)p->ready.timeout_ms)
			return proc_failed(lab, i, p->oneshot ? "did not finish in time" : "not ready in time");
		if (sim_stop_requested)
			return -EINTR;
		usleep(READY_POLL_MS * 1000);
	}
}

/* Starts every idle process whose dependencies are ready, then waits until
 * all are ready; independent processes start together. */
int sim_lab_start(struct sim_lab *lab)
{
	const struct sim_scenario *sc = lab->sc;
	uint64_t deadline_all = clock_now_ms() + (uint64_t)sc->timeout_ms;

	if (lab->state != SIM_LAB_CAPTURING)
		return -EALREADY;
	for (;;) {
		size_t pending = 0;
		for (size_t i = 0; i < sc->nprocs; i++) {
			struct sim_proc_run *r = &lab->procs[i];
			if (r->state == SIM_PROC_IDLE && deps_done(lab, i)) {
				int rc = sim_lab_proc_start(lab, i);
				if (rc)
					return rc;
				sim_lab_progress(lab, "started %s/%s pid %d", sc->nodes[sc->procs[i].node].name,
						 sc->procs[i].name, (int)r->pid);
			}
		}
		sim_lab_reap(lab);
		for (size_t i = 0; i < sc->nprocs; i++) {
			struct sim_proc_run *r = &lab->procs[i];
			const struct sim_proc *p = &sc->procs[i];
			if (r->state == SIM_PROC_FAILED)
				return proc_failed(lab, i, p->oneshot ? "failed" : "exited before it was ready");
			if (r->state == SIM_PROC_STARTING && !p->oneshot && proc_ready(lab, i)) {
				r->ready_ms = sim_lab_clock(lab);
				r->state = SIM_PROC_READY;
				sim_lab_progress(lab, "ready %s/%s (%llu ms)", sc->nodes[p->node].name, p->name,
						 (unsigned long long)(r->ready_ms - r->start_ms));
			}
			if (r->state == SIM_PROC_STARTING &&
			    sim_lab_clock(lab) - r->start_ms > (uint64_t)p->ready.timeout_ms)
				return proc_failed(lab, i, p->oneshot ? "did not finish in time" : "not ready in time");
			pending += r->state == SIM_PROC_IDLE || r->state == SIM_PROC_STARTING;
		}
		if (!pending)
			break;
		if (sim_stop_requested) {
			sim_strf(lab->err, sizeof(lab->err), "interrupted");
			return -EINTR;
		}
		if (clock_now_ms() > deadline_all) {
			sim_strf(lab->err, sizeof(lab->err), "scenario timeout while starting processes");
			return -ETIMEDOUT;
		}
		usleep(READY_POLL_MS * 1000);
	}
	if (sc->nprocs)
		sim_lab_progress(lab, "%zu processes running", sc->nprocs);
	lab->state = SIM_LAB_RUNNING;
	return 0;
}
