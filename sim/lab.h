/* lab: a scenario made real. Every node and every network gets a network
 * namespace named LAB-NAME (LAB is "nms" plus four hex digits, so `meshsim
 * clean` finds leftovers by prefix); a network is a bridge "br0" in its own
 * namespace, and a link is a veth pair between that bridge (port named after
 * the node) and the node (named by the link's ifname). Nothing is created in
 * the caller's namespace. NAT models and loss come from nat-models; every
 * link is captured into RUN/pcap/NODE-IFNAME.pcap; processes run in their
 * node's namespace with logs in RUN/logs/NODE-PROC.log.
 *
 * The run is a state machine (enum sim_lab_state); each sim_lab_* step checks
 * the state it expects and sets the next one last. sim_lab_teardown() works
 * from any state. */
#ifndef NATMESH_SIM_LAB_H
#define NATMESH_SIM_LAB_H

#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "scenario.h"

#define SIM_LAB_PREFIX "nms"
#define SIM_LAB_ID_MAX 16
#define SIM_STATE_DIR "/run/meshsim"

/* set from a SIGINT/SIGTERM handler: every wait in the lab gives up early */
extern volatile sig_atomic_t sim_stop_requested;

enum sim_lab_state {
	SIM_LAB_NEW,
	SIM_LAB_BUILT,		/* namespaces, links, addresses, routes, NAT, loss */
	SIM_LAB_CAPTURING,	/* a capture process per network */
	SIM_LAB_RUNNING,	/* every process started and ready */
	SIM_LAB_DOWN,		/* torn down */
};

enum sim_proc_state {
	SIM_PROC_IDLE,		/* not started yet */
	SIM_PROC_STARTING,	/* started, readiness not seen yet */
	SIM_PROC_READY,
	SIM_PROC_DONE,		/* oneshot exited 0 */
	SIM_PROC_STOPPED,	/* stopped by an expectation step or teardown */
	SIM_PROC_FAILED,	/* exited when it should not, or never got ready */
};

struct sim_proc_run {
	enum sim_proc_state state;
	pid_t pid;
	int status;		/* wait status once it ended */
	uint64_t start_ms, ready_ms;	/* on the lab clock */
	char log[PATH_MAX];
};

struct sim_lab {
	const struct sim_scenario *sc;
	enum sim_lab_state state;
	char id[SIM_LAB_ID_MAX];	/* "nms1a2b" */
	char run_dir[PATH_MAX];
	char build_dir[PATH_MAX];
	bool detached;			/* `up`: processes outlive meshsim */
	bool no_capture;		/* --no-capture: no pcaps */
	int self_ns;			/* the caller's namespace, to come back to */
	int *ns_fd;			/* nodes, then networks; -1 when absent */
	pid_t *capture_pid;		/* per network */
	pid_t *impair_pid;		/* per link: its delay line, 0 when none */
	struct sim_proc_run *procs;
	bool *tls_made;			/* per node: its certificate exists */
	uint64_t t0;
	char err[SIM_ERR_MAX];		/* the reason of the last failure */
};

int sim_lab_new(const struct sim_scenario *sc, const char *run_dir, bool detached, struct sim_lab **out);
void sim_lab_free(struct sim_lab *lab);

/* snprintf for paths and messages: 0, or -ENAMETOOLONG when cut short */
int sim_strf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* milliseconds since the lab was made */
uint64_t sim_lab_clock(const struct sim_lab *lab);
/* "[  1.23s] ..." on stderr */
void sim_lab_progress(const struct sim_lab *lab, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "LAB-NAME" */
void sim_lab_ns_name(const char *lab_id, const char *name, char *buf, size_t len);

int sim_lab_build(struct sim_lab *lab);		/* NEW -> BUILT */
int sim_lab_capture(struct sim_lab *lab);	/* BUILT -> CAPTURING */
int sim_lab_start(struct sim_lab *lab);		/* CAPTURING -> RUNNING */
/* stops processes and captures, deletes namespaces and the state file */
void sim_lab_teardown(struct sim_lab *lab);	/* any -> DOWN */

/* processes (sim/proc.c) */
int sim_lab_proc_start(struct sim_lab *lab, size_t i);
int sim_lab_proc_stop(struct sim_lab *lab, size_t i);
/* waits until process i is ready (or done, for a oneshot); 0, or -EIO with
 * lab->err naming the process, its log and the log's last line */
int sim_lab_proc_wait(struct sim_lab *lab, size_t i);
/* reaps exited processes; a process that ended on its own is marked FAILED
 * (or DONE, for a oneshot that exited 0). Returns how many newly failed. */
int sim_lab_reap(struct sim_lab *lab);
/* Runs argv (expanded) in node's namespace (SIZE_MAX: meshsim's own) and waits up to timeout_ms.
 * *output (if not NULL) gets stdout and stderr, malloc'd; *status the wait
 * status. -ETIMEDOUT when it had to be killed. */
int sim_lab_run(struct sim_lab *lab, size_t node, char *const *argv, int timeout_ms, char **output, int *status);
/* ${...} in s expanded for node (SIZE_MAX: no node); malloc'd into *out */
int sim_lab_expand(struct sim_lab *lab, size_t node, const char *s, char **out);
/* the child side of a process in node: namespace, mounts, hostname, env;
 * returns only on failure (negative errno) */
int sim_lab_enter_node(const char *lab_id, const char *node, const char *run_dir, const char *build_dir);

/* captures (sim/capture.c): one process per network writes its ports'
 * pcaps. spawn forks it (*ready_fd reports when its ports are live); wait
 * reads that, so that many captures start side by side. */
int sim_capture_spawn(struct sim_lab *lab, size_t net, pid_t *out, int *ready_fd);
int sim_capture_wait(struct sim_lab *lab, size_t net, int ready_fd);

/* impaired links (sim/labimpair.c). impair_link runs in the network's
 * namespace: the veth pairs either side of link k's delay line and the
 * line's process (lab->err says why it did not start). impair_ctl sends an
 * update (JSON text, "{}" for none) to the line and gets its state. */
int sim_lab_impair_link(struct sim_lab *lab, size_t k);
int sim_lab_impair_ctl(struct sim_lab *lab, size_t k, const char *update, char **reply);
/* every line's state and counters, for report.json */
json_t *sim_lab_impair_report(struct sim_lab *lab);

/* a throwaway CA for the run and certificates for nodes (sim/pki.c) */
int sim_pki_ca(struct sim_lab *lab);
int sim_pki_node(struct sim_lab *lab, size_t node);

/* lab state files and removal by name (for down, list, clean) */
int sim_lab_save(const struct sim_lab *lab);
/* removes every namespace LAB-* (processes first) and the state file;
 * returns the number of namespaces deleted */
int sim_lab_destroy(const char *lab_id);

#endif
