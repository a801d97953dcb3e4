/* portmapd: a NAT gateway that answers port mapping requests. When a node's
 * NAT model declares "port_mapping" (nat-models/natmodel.h), the gateway runs
 * Debian's miniupnpd (miniupnpd-nftables 2.3.1, /usr/sbin/miniupnpd) as two
 * lab processes of its own, added to the scenario when it is parsed, so that
 * readiness, logs, steps and teardown are the lab's (sim/proc.c):
 *
 *   NODE/portmap-stun  meshstun --listen WAN_IP:3478 --listen 127.0.0.1:3478
 *                      --rfc5780: the STUN server miniupnpd asks at start
 *   NODE/miniupnpd     miniupnpd -d -f RUN/portmap/NODE.conf (foreground,
 *                      logs in RUN/logs/NODE-miniupnpd.log), after the STUN
 *                      server; ready when its last start enabled port
 *                      forwarding and listens for what the model declares
 *
 * Why the STUN server: miniupnpd 2.3.1 disables port forwarding when the WAN
 * address is reserved (the lab's internet is TEST-NET: 203.0.113.0/24,
 * 198.51.100.0/24), refuses ext_ip= with a reserved address, and has no
 * option to allow one; ext_perform_stun=yes is its way out: it sends four
 * binding requests (RFC 5780 CHANGE-REQUEST: none, port, address, both) and
 * enables forwarding when all four are answered with the WAN address and its
 * own ports. The server sits in the gateway (requests go to WAN_IP over lo),
 * so no scenario needs one and no model's filtering drops the answers.
 *
 * nftables: miniupnpd-nftables only adds rules to chains that exist; the
 * gateway gets table inet natmesh_pm beside the model's ip natmesh_nat:
 *
 *   table inet natmesh_pm {
 *     chain prerouting (nat prerouting -110): jump prerouting_miniupnpd
 *     chain postrouting (nat postrouting 90): jump postrouting_miniupnpd
 *     chain forward (filter forward -10, policy accept): jump miniupnpd
 *     chain prerouting_miniupnpd, postrouting_miniupnpd, miniupnpd  (miniupnpd's rules)
 *     [only one of pcp, nat-pmp] chain input (filter input -10):
 *         udp dport 5351 @th,64,8 VERSION drop   (0 NAT-PMP, 2 PCP: the one not declared)
 *   }
 *
 * A mapping's DNAT comes first (-110, before the model's dstnat at -100:
 * the first nat chain that binds a connection decides it), and the model's
 * forward drop spares connections with `ct status dnat`, so a mapped port is
 * reachable from outside; every other packet meets the model as before. */
#ifndef NATMESH_SIM_PORTMAPD_H
#define NATMESH_SIM_PORTMAPD_H

#include <jansson.h>
#include <stddef.h>

#include "expect.h"
#include "lab.h"

#define SIM_PORTMAPD_BIN "/usr/sbin/miniupnpd"
#define SIM_PORTMAPD_PROC "miniupnpd"
#define SIM_PORTMAPD_STUN_PROC "portmap-stun"
#define SIM_PORTMAPD_TABLE "natmesh_pm"
#define SIM_PORTMAPD_HTTP_PORT 5000	/* UPnP description and control (SOAP) */

enum {
	SIM_PORTMAPD_NPROCS = 2,	/* the processes a port mapping gateway adds */
	SIM_PORTMAPD_STUN_PORT = 3478,
	SIM_PORTMAPD_PMP_PORT = 5351,	/* RFC 6886 3, RFC 6887 19.1: both on one socket */
	SIM_PORTMAPD_READY_MS = 15000,	/* STUN alone may take 3 s per try */
};

/* How many processes node v (its JSON object) will gain: the parser sizes
 * its tables before it reads the models. */
size_t sim_portmapd_nprocs(const json_t *v);
/* the same for a parsed node: SIM_PORTMAPD_NPROCS when its model declares port mapping */
size_t sim_portmapd_nprocs_of(const struct sim_node *n);
/* Appends the two processes to node v's "processes" (made when absent);
 * bits: enum natmodel_portmap. 0 or -ENOMEM. */
int sim_portmapd_add_procs(json_t *v, const char *node, const char *wan_ifname, unsigned int bits);

/* Writes RUN/portmap/NODE.conf and creates the nftables table in the node;
 * a no-op (0) for a node without port mapping. lab->err says why not. */
int sim_portmapd_setup(struct sim_lab *lab, size_t node);

/* The step {"reboot": "NODE"}: stops the gateway's miniupnpd, reapplies its
 * NAT model (empty mapping sets), flushes miniupnpd's chains and the
 * namespace's conntrack table, and starts miniupnpd again (a new PCP and
 * NAT-PMP epoch, no mapping left). e->from is the node, e->proc miniupnpd. */
void sim_portmapd_reboot(struct sim_lab *lab, const struct sim_expect *e, struct sim_result *r);

#endif
