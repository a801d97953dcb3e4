/* Captures: one child process per network, inside the network's namespace,
 * records every port of its bridge (one port per link) with libpcap into
 * RUN/pcap/NODE-IFNAME.pcap. Each port sees both directions of its link.
 * The child flushes after every batch and closes its files on SIGTERM. */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"

/* a 1 MiB ring per port: lab traffic is light and immediate mode drains it
 * at once; 152 links of a 50-site lab then need about 150 MiB */
enum { CAPTURE_SNAPLEN = 65535, CAPTURE_BUFFER = 1 << 20 };

static volatile sig_atomic_t capture_stop;

static void on_term(int sig)
{
	(void)sig;
	capture_stop = 1;
}

struct port {
	pcap_t *pcap;
	pcap_dumper_t *dump;
};

static void *close_port(void *pcap)
{
	pcap_close(pcap);
	return NULL;
}

static void capture_batch(struct port *p)
{
	if (pcap_dispatch(p->pcap, -1, pcap_dump, (u_char *)p->dump) > 0)
		pcap_dump_flush(p->dump);
}

/* the child: returns its exit code; writes one byte to ready_fd once every
 * port is live (or an error line to stderr and nothing) */
static int capture_main(struct sim_lab *lab, size_t net, int ready_fd)
{
	const struct sim_scenario *sc = lab->sc;
	struct port *ports = calloc(sc->nlinks + 1, sizeof(*ports));
	struct pollfd *pfd = calloc(sc->nlinks + 1, sizeof(*pfd));
	char err[PCAP_ERRBUF_SIZE], path[PATH_MAX];
	size_t n = 0;
	int rc = 1;

	if (!ports || !pfd || netns_enter(lab->ns_fd[sc->nnodes + net]) < 0)
		goto out;
	for (size_t i = 0; i < sc->nlinks; i++) {
		const struct sim_link *k = &sc->links[i];
		const char *node = sc->nodes[k->node].name;
		struct port *p = &ports[n];
		if (k->network != net)
			continue;
		err[0] = '\0';
		p->pcap = pcap_create(node, err);
		if (!p->pcap || pcap_set_snaplen(p->pcap, CAPTURE_SNAPLEN) || pcap_set_immediate_mode(p->pcap, 1) ||
		    pcap_set_buffer_size(p->pcap, CAPTURE_BUFFER) || pcap_activate(p->pcap) < 0 ||
		    pcap_setnonblock(p->pcap, 1, err) < 0) {
			fprintf(stderr, "meshsim: capture %s/%s: %s\n", node, k->ifname,
				p->pcap ? pcap_geterr(p->pcap) : err);
			goto out;
		}
		if (sim_strf(path, sizeof(path), "%s/pcap/%s-%s.pcap", lab->run_dir, node, k->ifname) ||
		    !(p->dump = pcap_dump_open(p->pcap, path))) {
			fprintf(stderr, "meshsim: capture %s: %s\n", path, pcap_geterr(p->pcap));
			goto out;
		}
		pfd[n].fd = pcap_get_selectable_fd(p->pcap);
		pfd[n].events = POLLIN;
		n++;
	}
	if (write(ready_fd, "", 1) != 1)
		goto out;
	close(ready_fd);
	while (!capture_stop) {
		int r = poll(pfd, n, 200);
		if (r < 0 && errno != EINTR)
			break;
		for (size_t i = 0; r > 0 && i < n; i++)
			if (pfd[i].revents)
				capture_batch(&ports[i]);
	}
	/* what the kernel still holds */
	for (size_t i = 0; i < n; i++)
		capture_batch(&ports[i]);
	rc = 0;
out:
	for (size_t i = 0; ports && i < sc->nlinks; i++)
		if (ports[i].dump)
			pcap_dump_close(ports[i].dump);
	/* closing a packet socket waits for an RCU grace period (packet_release
	 * calls synchronize_net); closing them side by side shares the waits,
	 * which takes a 50-port network down in one grace period, not fifty */
	pthread_t *closers = ports ? calloc(sc->nlinks + 1, sizeof(pthread_t)) : NULL;
	bool *threaded = ports ? calloc(sc->nlinks + 1, sizeof(bool)) : NULL;
	for (size_t i = 0; ports && i < sc->nlinks; i++)
		if (ports[i].pcap)
			threaded[i] = closers && threaded &&
				      pthread_create(&closers[i], NULL, close_port, ports[i].pcap) == 0;
	for (size_t i = 0; ports && i < sc->nlinks; i++) {
		if (threaded && threaded[i])
			pthread_join(closers[i], NULL);
		else if (ports[i].pcap)
			pcap_close(ports[i].pcap);
	}
	free(closers);
	free(threaded);
	free(ports);
	free(pfd);
	return rc;
}

int sim_capture_spawn(struct sim_lab *lab, size_t net, pid_t *out, int *ready_fd)
{
	int pfd[2];
	pid_t pid;

	*out = 0;
	*ready_fd = -1;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_term };
		sigset_t none;
		char log[PATH_MAX];
		int null = open("/dev/null", O_RDWR), fd = -1;
		close(pfd[0]);
		/* nothing of the caller's stdio: `lab=$(meshsim up ...)` must see EOF */
		if (!sim_strf(log, sizeof(log), "%s/logs/capture-%s.log", lab->run_dir, lab->sc->nets[net].name))
			fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		dup2(null, 0);
		dup2(fd >= 0 ? fd : null, 1);
		dup2(fd >= 0 ? fd : null, 2);
		if (lab->detached)
			setsid();
		else
			setpgid(0, 0);
		if (!lab->detached)
			prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGINT, SIG_IGN);	/* the parent decides when to stop */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_NAME, "meshsim-pcap");
		_exit(capture_main(lab, net, pfd[1]));
	}
	close(pfd[1]);
	*out = pid;
	*ready_fd = pfd[0];
	return 0;
}

int sim_capture_wait(struct sim_lab *lab, size_t net, int ready_fd)
{
	ssize_t r;
	char c;
	while ((r = read(ready_fd, &c, 1)) < 0 && errno == EINTR)
		;
	close(ready_fd);
	if (r == 1)
		return 0;
	waitpid(lab->capture_pid[net], NULL, 0);
	lab->capture_pid[net] = 0;
	sim_strf(lab->err, sizeof(lab->err), "cannot capture the links of network %s; see %s/logs/capture-%s.log",
		 lab->sc->nets[net].name, lab->run_dir, lab->sc->nets[net].name);
	return -EIO;
}
