/* impairdev: the veth ends either side of a delay line (sim/impairline.h):
 * segmentation and receive offloads off on the ends that feed it, threaded
 * receive on an end it feeds, and the names the lab gives them. */
#ifndef NATMESH_SIM_IMPAIRDEV_H
#define NATMESH_SIM_IMPAIRDEV_H

#include <net/if.h>
#include <stddef.h>

/* turns segmentation and receive offloads off on ifname (ETHTOOL_SFEATURES) */
int impair_offloads_off(const char *ifname);
/* GRO on and threaded NAPI for a veth end the line sends into: the receiving
 * stack then runs in a kernel thread of its own, not in the line's sendmmsg
 * (1.3-2x the throughput on two CPUs); forks a child with a mount
 * namespace of its own to reach /sys/class/net/IFNAME/threaded */
int impair_receive_threaded(const char *ifname);

/* the two interfaces the lab puts either side of link k's delay line */
void impair_lab_devs(size_t k, char a[IFNAMSIZ], char b[IFNAMSIZ]);

#endif
