/* rtnl: rtnetlink through libmnl. Links (up, MTU, delete, veth pairs,
 * bridges, master, move to a namespace), addresses and routes. Every call
 * opens its own netlink socket in the calling thread's current network
 * namespace, sends one request and waits for the kernel's acknowledgement,
 * so errors come back as negative errnos (-EEXIST, -ENODEV, ...). */
#ifndef NATMESH_RTNL_H
#define NATMESH_RTNL_H

#include <stdbool.h>

#include "addr.h"

int rtnl_link_index(const char *ifname);	/* > 0, or -ENODEV */
int rtnl_link_set_up(const char *ifname, bool up);
int rtnl_link_set_mtu(const char *ifname, int mtu);
int rtnl_link_del(const char *ifname);
/* a veth pair; peer_netns_fd >= 0 creates the peer end in that namespace */
int rtnl_veth_add(const char *name, const char *peer, int peer_netns_fd);
int rtnl_bridge_add(const char *name);
int rtnl_link_set_master(const char *ifname, const char *master);
/* the master's ifindex, 0 when none */
int rtnl_link_master(const char *ifname);
/* move a link into the namespace open at netns_fd */
int rtnl_link_set_netns(const char *ifname, int netns_fd);
/* c->addr is the host address, c->prefix the subnet length */
int rtnl_addr_add(const char *ifname, const struct cidr *c);
int rtnl_addr_del(const char *ifname, const struct cidr *c);
/* dst via the link (gw NULL) or via gw; the default route is 0.0.0.0/0 */
int rtnl_route_add(const char *ifname, const struct cidr *dst, const union sockaddr_any *gw);
int rtnl_route_del(const char *ifname, const struct cidr *dst, const union sockaddr_any *gw);

#endif
