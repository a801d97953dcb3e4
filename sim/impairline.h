/* impairline: the delay line, the I/O half of sim/impair.h. One process
 * joins two interfaces of one namespace (A: towards the node, B: towards the
 * network) and moves every frame between them through impair_dir decisions:
 * frames A -> B are "egress", B -> A "ingress".
 *
 * Mechanism: an AF_PACKET socket per interface (PACKET_IGNORE_OUTGOING,
 * PACKET_QDISC_BYPASS, PACKET_VNET_HDR so that a frame whose checksum the
 * sender left to offload goes on as such), recvmmsg/sendmmsg in batches of
 * 64, a ring of IMPAIR_QUEUE_PACKETS_MAX 2 KiB slots per direction (mapped
 * MAP_NORESERVE: memory only for what is in flight) in the order frames
 * leave, and one timerfd armed at the earliest due time (timer slack 1 ns),
 * in one epoll loop. Segmentation offloads (TSO, GSO, UDP GSO, GRO) are
 * turned off on the four ends of the two veth pairs by the lab
 * (impair_offloads_off), so frames are at most the MTU and every decision
 * is per packet; a larger frame is counted in "overflow" and dropped.
 *
 * Control: an abstract unix datagram socket "@natmesh-impair/A" in the
 * namespace (abstract names are per network namespace, so labs never
 * collide and nothing is left on disk); datagrams from users other than
 * root and the line's own (SO_PASSCRED) are dropped. A datagram is an update object as
 * impair_update() reads it ({} asks for nothing); the answer is the
 * current state: {"link": NAME, "egress": {...conf, "counters": {...}},
 * "ingress": {...}} or {"error": "PATH: reason"}. */
#ifndef NATMESH_SIM_IMPAIRLINE_H
#define NATMESH_SIM_IMPAIRLINE_H

#include <net/if.h>
#include <signal.h>
#include <stdint.h>

#include "impair.h"
#include "impairdev.h"

#define IMPAIR_CTL_PREFIX "natmesh-impair/"

struct impair_line_opts {
	char dev_a[IFNAMSIZ], dev_b[IFNAMSIZ];
	char name[64];			/* the link's name: seeds the generator */
	uint64_t seed;
	struct impair_conf dir[IMPAIR_NDIRS];
	int ready_fd;			/* gets one byte once the line forwards; -1: none */
};

/* set by a signal handler: the line stops and prints its counters */
extern volatile sig_atomic_t impair_line_stop;

/* runs the line in the calling thread's namespace until impair_line_stop;
 * 0, or a negative errno with a line on stderr naming what failed */
int impair_line_run(const struct impair_line_opts *o);

/* Sends an update (JSON text) to the line on dev_a in the calling thread's
 * namespace and puts its answer (malloc'd JSON text) in *reply. 0, or
 * -ECONNREFUSED when no line runs there, -ETIMEDOUT without an answer. */
int impair_ctl(const char *dev_a, const char *request, int timeout_ms, char **reply);

#endif
