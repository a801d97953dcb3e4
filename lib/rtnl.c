#include "rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <string.h>
#include <time.h>

/* one request, one acknowledgement (or answer, given to cb); returns 0 or
 * the kernel's -errno */
static int rtnl_talk_cb(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int portid, seq;
	int rc = 0;
	ssize_t n;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	seq = (unsigned int)time(NULL);
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			rc = -errno;
			break;
		}
		int r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == MNL_CB_STOP)
			break;
	}
out:
	mnl_socket_close(nl);
	return rc;
}

static int rtnl_talk(struct nlmsghdr *nlh)
{
	return rtnl_talk_cb(nlh, NULL, NULL);
}

int rtnl_link_index(const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);
	return idx ? (int)idx : -ENODEV;
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, int index)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = index;
	return nlh;
}

int rtnl_link_set_up(const char *ifname, bool up)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = rtnl_link_index(ifname);
	if (idx < 0)
		return idx;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, idx);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	return rtnl_talk(nlh);
}

static int master_attr(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == IFLA_MASTER && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		*(int *)data = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int master_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), master_attr, data);
	return MNL_CB_OK;
}

int rtnl_link_master(const char *ifname)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int master = 0, rc, idx = rtnl_link_index(ifname);
	if (idx < 0)
		return idx;
	struct nlmsghdr *nlh = link_msg(buf, RTM_GETLINK, 0, idx);
	rc = rtnl_talk_cb(nlh, master_cb, &master);
	return rc < 0 ? rc : master;
}

int rtnl_link_set_mtu(const char *ifname, int mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = rtnl_link_index(ifname);
	if (idx < 0)
		return idx;
	if (mtu < 68 || mtu > 65535)
		return -EINVAL;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, idx);
	mnl_attr_put_u32(nlh, IFLA_MTU, (uint32_t)mtu);
	return rtnl_talk(nlh);
}

int rtnl_link_del(const char *ifname)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = rtnl_link_index(ifname);
	if (idx < 0)
		return idx;
	return rtnl_talk(link_msg(buf, RTM_DELLINK, 0, idx));
}

static int check_name(const char *name)
{
	size_t n = strlen(name);
	return (n == 0 || n >= IFNAMSIZ) ? -EINVAL : 0;
}

int rtnl_veth_add(const char *name, const char *peer, int peer_netns_fd)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlattr *linkinfo, *data, *peerinfo;
	struct ifinfomsg *pifi;
	if (check_name(name) < 0 || check_name(peer) < 0)
		return -EINVAL;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	peerinfo = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	pifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifi));
	memset(pifi, 0, sizeof(*pifi));
	pifi->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
	if (peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
	mnl_attr_nest_end(nlh, peerinfo);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return rtnl_talk(nlh);
}

int rtnl_bridge_add(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlattr *linkinfo;
	if (check_name(name) < 0)
		return -EINVAL;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	mnl_attr_nest_end(nlh, linkinfo);
	return rtnl_talk(nlh);
}

int rtnl_link_set_master(const char *ifname, const char *master)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = rtnl_link_index(ifname), midx = rtnl_link_index(master);
	if (idx < 0 || midx < 0)
		return -ENODEV;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, idx);
	mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)midx);
	return rtnl_talk(nlh);
}

int rtnl_link_set_netns(const char *ifname, int netns_fd)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int idx = rtnl_link_index(ifname);
	if (idx < 0)
		return idx;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, idx);
	mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	return rtnl_talk(nlh);
}

static int addr_msg(const char *ifname, const struct cidr *c, uint16_t type, uint16_t flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct ifaddrmsg *ifa;
	int idx = rtnl_link_index(ifname);
	size_t len = c->family == AF_INET6 ? 16 : 4;
	if (idx < 0)
		return idx;
	if (c->family != AF_INET && c->family != AF_INET6)
		return -EAFNOSUPPORT;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)c->family;
	ifa->ifa_prefixlen = c->prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)idx;
	mnl_attr_put(nlh, IFA_LOCAL, len, c->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, len, c->addr);
	if (c->family == AF_INET6)
		mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD); /* usable at once */
	return rtnl_talk(nlh);
}

int rtnl_addr_add(const char *ifname, const struct cidr *c)
{
	return addr_msg(ifname, c, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
}

int rtnl_addr_del(const char *ifname, const struct cidr *c)
{
	return addr_msg(ifname, c, RTM_DELADDR, 0);
}

static int route_msg(const char *ifname, const struct cidr *dst, const union sockaddr_any *gw,
		     uint16_t type, uint16_t flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct rtmsg *rtm;
	int idx = rtnl_link_index(ifname);
	size_t len = dst->family == AF_INET6 ? 16 : 4;
	if (idx < 0)
		return idx;
	if (gw && gw->sa.sa_family != dst->family)
		return -EINVAL;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)dst->family;
	rtm->rtm_dst_len = dst->prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (dst->prefix)
		mnl_attr_put(nlh, RTA_DST, len, dst->addr);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)idx);
	if (gw) {
		size_t n;
		const uint8_t *b = addr_ip_bytes(gw, &n);
		mnl_attr_put(nlh, RTA_GATEWAY, n, b);
	}
	return rtnl_talk(nlh);
}

int rtnl_route_add(const char *ifname, const struct cidr *dst, const union sockaddr_any *gw)
{
	return route_msg(ifname, dst, gw, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
}

int rtnl_route_del(const char *ifname, const struct cidr *dst, const union sockaddr_any *gw)
{
	return route_msg(ifname, dst, gw, RTM_DELROUTE, 0);
}
