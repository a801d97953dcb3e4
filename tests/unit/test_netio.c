#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netio.h"
#include "rtnl.h"

Test(netio, udp_batch_round_trip_on_loopback)
{
	struct netio *io;
	struct netio_udp *a, *b;
	union sockaddr_any bind_addr, la, lb;
	uint8_t bufs[2 * NETIO_BATCH_MAX][64];
	struct netio_pkt out[NETIO_BATCH_MAX], in[NETIO_BATCH_MAX];
	int n = 32, got = 0;

	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(addr_parse("127.0.0.1:0", &bind_addr), 0);
	cr_assert_eq(netio_udp_open(io, &bind_addr, &a), 0);
	cr_assert_eq(netio_udp_open(io, &bind_addr, &b), 0);
	cr_assert_eq(netio_udp_local(io, a, &la), 0);
	cr_assert_eq(netio_udp_local(io, b, &lb), 0);
	cr_assert_neq(addr_port(&lb), 0);

	for (int i = 0; i < n; i++) {
		out[i] = (struct netio_pkt){ .data = bufs[i], .len = 8, .cap = 64, .addr = lb };
		memset(bufs[i], i, 8);
	}
	cr_assert_eq(netio_udp_send(io, a, out, n), n);

	for (int i = 0; i < NETIO_BATCH_MAX; i++)
		in[i] = (struct netio_pkt){ .data = bufs[NETIO_BATCH_MAX + i], .cap = 64 };
	while (got < n) {
		struct pollfd pfd = { .fd = netio_udp_fd(io, b), .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 2000), 1, "timed out after %d packets", got);
		int r = netio_udp_recv(io, b, in + got, NETIO_BATCH_MAX - got);
		cr_assert_geq(r, 0);
		got += r;
	}
	cr_expect_eq(got, n);
	for (int i = 0; i < n; i++) {
		cr_expect_eq(in[i].len, 8);
		cr_expect_eq(in[i].data[0], (uint8_t)i, "order kept");
		cr_expect(addr_equal(&in[i].addr, &la));
	}
	/* nothing left: a non-blocking receive says 0 */
	cr_expect_eq(netio_udp_recv(io, b, in, 4), 0);
	netio_udp_close(io, a);
	netio_udp_close(io, b);
	netio_free(io);
}

/* the send-only twin: what it sends carries the receiving socket's address,
 * everything that arrives reaches the receiving socket, the address stays
 * exclusive */
Test(netio, udp_send_twin)
{
	struct netio *io;
	struct netio_udp *srv, *cli, *again;
	union sockaddr_any any, ls, lc;
	uint8_t bufs[2 * NETIO_BATCH_MAX][64];
	struct netio_pkt out[NETIO_BATCH_MAX], in[NETIO_BATCH_MAX];
	int total = 640, got = 0, answered = 0;

	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(addr_parse("127.0.0.1:0", &any), 0);
	cr_assert_eq(netio_udp_open_flags(io, &any, NETIO_UDP_SEND_TWIN, &srv), 0);
	cr_assert_eq(netio_udp_open(io, &any, &cli), 0);
	cr_assert_eq(netio_udp_local(io, srv, &ls), 0);
	cr_assert_eq(netio_udp_local(io, cli, &lc), 0);
	cr_assert_neq(addr_port(&ls), 0);

	/* the port is still ours alone, with or without SO_REUSEPORT */
	cr_expect_eq(netio_udp_open_flags(io, &ls, NETIO_UDP_SEND_TWIN, &again), -EADDRINUSE);
	cr_expect_eq(netio_udp_open(io, &ls, &again), -EADDRINUSE);

	/* client -> server: all of them arrive at the receiving socket */
	for (int sent = 0; sent < total;) {
		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			out[i] = (struct netio_pkt){ .data = bufs[i], .len = 4, .cap = 64, .addr = ls };
			memcpy(bufs[i], &(uint32_t){ (uint32_t)(sent + i) }, 4);
		}
		cr_assert_eq(netio_udp_send(io, cli, out, NETIO_BATCH_MAX), NETIO_BATCH_MAX);
		sent += NETIO_BATCH_MAX;
		for (int i = 0; i < NETIO_BATCH_MAX; i++)
			in[i] = (struct netio_pkt){ .data = bufs[NETIO_BATCH_MAX + i], .cap = 64 };
		while (got < sent) {
			struct pollfd pfd = { .fd = netio_udp_fd(io, srv), .events = POLLIN };
			cr_assert_eq(poll(&pfd, 1, 2000), 1, "timed out after %d packets", got);
			int r = netio_udp_recv(io, srv, in, NETIO_BATCH_MAX);
			cr_assert_geq(r, 0);
			for (int i = 0; i < r; i++) {
				uint32_t v;
				memcpy(&v, in[i].data, 4);
				cr_expect_eq(v, (uint32_t)(got + i), "order kept");
				cr_expect(addr_equal(&in[i].addr, &lc));
			}
			/* server -> client through the twin */
			for (int i = 0; i < r; i++)
				in[i].addr = lc;
			cr_assert_eq(netio_udp_send(io, srv, in, r), r);
			got += r;
		}
	}
	cr_expect_eq(got, total);
	while (answered < total) {
		struct pollfd pfd = { .fd = netio_udp_fd(io, cli), .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 2000), 1, "timed out after %d answers", answered);
		for (int i = 0; i < NETIO_BATCH_MAX; i++)
			in[i] = (struct netio_pkt){ .data = bufs[NETIO_BATCH_MAX + i], .cap = 64 };
		int r = netio_udp_recv(io, cli, in, NETIO_BATCH_MAX);
		cr_assert_geq(r, 0);
		for (int i = 0; i < r; i++)
			cr_expect(addr_equal(&in[i].addr, &ls), "answers come from the server's address");
		answered += r;
	}
	netio_udp_close(io, srv);
	netio_udp_close(io, cli);
	/* closed: the address is free again */
	cr_expect_eq(netio_udp_open(io, &ls, &again), 0);
	netio_udp_close(io, again);
	netio_free(io);
}

/* read whatever is waiting on each of n sockets (up to 200 ms of quiet);
 * count[i][src] = datagrams socket i got from 127.0.0.src */
static int drain_group(struct netio *io, struct netio_udp **g, int n, int count[][32])
{
	uint8_t bufs[NETIO_BATCH_MAX][64];
	struct netio_pkt in[NETIO_BATCH_MAX];
	int total = 0;

	for (;;) {
		struct pollfd pfd[8];
		for (int i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = netio_udp_fd(io, g[i]), .events = POLLIN };
		if (poll(pfd, (nfds_t)n, 200) <= 0)
			return total;
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < NETIO_BATCH_MAX; j++)
				in[j] = (struct netio_pkt){ .data = bufs[j], .cap = 64 };
			int r = netio_udp_recv(io, g[i], in, NETIO_BATCH_MAX);
			for (int j = 0; j < r; j++) {
				size_t len;
				const uint8_t *ip = addr_ip_bytes(&in[j].addr, &len);
				int src = (len == 4 && ip[3] < 32) ? ip[3] : 0;
				count[i][src]++;
				total++;
			}
		}
	}
}

/* a group of receivers: one source IP always reaches the same socket, the
 * sources spread over the group, nothing is lost, the twins get nothing */
Test(netio, udp_group_steers_by_source_ip)
{
	struct netio *io;
	struct netio_udp *g[4], *src[16], *other[2];
	union sockaddr_any any, at;
	uint8_t buf[8] = { 0 };
	int count[4][32] = { { 0 } }, per = 20;

	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(addr_parse("127.0.0.1:0", &any), 0);
	cr_expect_eq(netio_udp_open_group(io, &any, 0, 0, g), -EINVAL);
	cr_expect_eq(netio_udp_open_group(io, &any, 0, NETIO_GROUP_MAX + 1, g), -EINVAL);
	cr_assert_eq(netio_udp_open_group(io, &any, NETIO_UDP_SEND_TWIN, 4, g), 0);
	cr_assert_eq(netio_udp_local(io, g[0], &at), 0);
	for (int i = 1; i < 4; i++) {
		union sockaddr_any l;
		cr_assert_eq(netio_udp_local(io, g[i], &l), 0);
		cr_expect(addr_equal(&l, &at), "every member is on the same address");
	}
	/* the group holds the address alone */
	cr_expect_eq(netio_udp_open_group(io, &at, 0, 2, other), -EADDRINUSE);
	cr_expect_eq(netio_udp_open(io, &at, &other[0]), -EADDRINUSE);

	for (int s = 0; s < 16; s++) {
		char a[32];
		union sockaddr_any sa;
		snprintf(a, sizeof(a), "127.0.0.%d:0", s + 1);
		cr_assert_eq(addr_parse(a, &sa), 0);
		cr_assert_eq(netio_udp_open(io, &sa, &src[s]), 0);
		for (int k = 0; k < per; k++) {
			struct netio_pkt p = { .data = buf, .len = sizeof(buf), .cap = sizeof(buf), .addr = at };
			cr_assert_eq(netio_udp_send(io, src[s], &p, 1), 1);
		}
	}
	cr_expect_eq(drain_group(io, g, 4, count), 16 * per, "every datagram reaches a receiver");
	int used = 0;
	for (int i = 0; i < 4; i++) {
		int any_here = 0;
		for (int s = 1; s <= 16; s++) {
			if (count[i][s])
				cr_expect_eq(count[i][s], per, "source 127.0.0.%d split over sockets", s);
			any_here |= count[i][s] > 0;
		}
		used += any_here;
	}
	cr_expect_geq(used, 2, "16 sources on one socket of 4");

	/* each member answers from the group's address (through its twin) */
	for (int i = 0; i < 4; i++) {
		union sockaddr_any l;
		cr_assert_eq(netio_udp_local(io, src[0], &l), 0);
		struct netio_pkt p = { .data = buf, .len = sizeof(buf), .cap = sizeof(buf), .addr = l };
		cr_assert_eq(netio_udp_send(io, g[i], &p, 1), 1);
	}
	int back = 0;
	while (back < 4) {
		uint8_t b[64];
		struct netio_pkt in[4];
		for (int j = 0; j < 4; j++)
			in[j] = (struct netio_pkt){ .data = b, .cap = sizeof(b) };
		struct pollfd pfd = { .fd = netio_udp_fd(io, src[0]), .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 2000), 1, "answer %d missing", back);
		int r = netio_udp_recv(io, src[0], in, 4);
		for (int j = 0; j < r; j++)
			cr_expect(addr_equal(&in[j].addr, &at));
		back += r;
	}
	for (int s = 0; s < 16; s++)
		netio_udp_close(io, src[s]);
	for (int i = 0; i < 4; i++)
		netio_udp_close(io, g[i]);
	cr_expect_eq(netio_udp_open(io, &at, &other[0]), 0, "closed: the address is free again");
	netio_udp_close(io, other[0]);

	/* IPv6 takes the other branch of the program */
	cr_assert_eq(addr_parse("[::1]:0", &any), 0);
	cr_assert_eq(netio_udp_open_group(io, &any, NETIO_UDP_SEND_TWIN, 3, g), 0);
	cr_assert_eq(netio_udp_local(io, g[0], &at), 0);
	cr_assert_eq(netio_udp_open(io, &any, &src[0]), 0);
	for (int k = 0; k < per; k++) {
		struct netio_pkt p = { .data = buf, .len = sizeof(buf), .cap = sizeof(buf), .addr = at };
		cr_assert_eq(netio_udp_send(io, src[0], &p, 1), 1);
	}
	memset(count, 0, sizeof(count));
	cr_expect_eq(drain_group(io, g, 3, count), per, "IPv6: every datagram reaches a receiver");
	int holders = 0;
	for (int i = 0; i < 3; i++)
		holders += count[i][0] > 0;
	cr_expect_eq(holders, 1, "IPv6: one source, one socket");
	netio_udp_close(io, src[0]);
	for (int i = 0; i < 3; i++)
		netio_udp_close(io, g[i]);
	netio_free(io);
}

static uint16_t csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static bool has_addr(const char *ifname, const char *ip)
{
	struct ifaddrs *ifa, *p;
	char buf[INET6_ADDRSTRLEN];
	bool found = false;
	if (getifaddrs(&ifa) < 0)
		return false;
	for (p = ifa; p; p = p->ifa_next) {
		if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET || strcmp(p->ifa_name, ifname))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, buf, sizeof(buf));
		if (!strcmp(buf, ip))
			found = true;
	}
	freeifaddrs(ifa);
	return found;
}

/* Topology (a namespace of the test's own, made with unshare):
 *   kernel stack 10.9.0.1/24 on nmtun0 <-> TUN fd held by the test, which plays
 *   host 10.9.0.2 and the route 10.10.0.0/16. */
Test(netio, tun_created_addressed_and_up_in_namespace)
{
	struct netio *io;
	struct netio_tun *t;
	struct cidr c, route;
	uint8_t buf[2048], reply[2048];
	struct netio_pkt pkt;
	union sockaddr_any dst;

	if (geteuid() != 0)
		cr_skip("needs root for a network namespace");
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(netio_tun_open(io, "nmtun0", &t), 0);
	cr_expect_str_eq(netio_tun_name(io, t), "nmtun0");
	cr_assert_eq(cidr_parse("10.9.0.1/24", true, &c), 0);
	memcpy(c.addr, (uint8_t[]){ 10, 9, 0, 1 }, 4);
	cr_assert_eq(netio_addr_add(io, "nmtun0", &c), 0);
	cr_expect_eq(netio_addr_add(io, "nmtun0", &c), -EEXIST);
	cr_assert_eq(netio_link_up(io, "nmtun0", 1420), 0);
	cr_assert_eq(cidr_parse("10.10.0.0/16", false, &route), 0);
	cr_assert_eq(netio_route_add(io, "nmtun0", &route), 0);
	cr_expect(has_addr("nmtun0", "10.9.0.1"));
	cr_expect_eq(netio_link_up(io, "nosuchdev", 0), -ENODEV);

	/* a datagram routed into 10.10.0.0/16 comes out of the TUN as bare IPv4 */
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(s, 0);
	cr_assert_eq(addr_parse("10.10.3.4:999", &dst), 0);
	cr_assert_eq(sendto(s, "hello", 5, 0, &dst.sa, sizeof(dst.in)), 5);
	close(s);
	pkt = (struct netio_pkt){ .data = buf, .cap = sizeof(buf) };
	struct pollfd pfd = { .fd = netio_tun_fd(io, t), .events = POLLIN };
	int got = 0;
	for (int tries = 0; tries < 20 && !got; tries++) {
		cr_assert_geq(poll(&pfd, 1, 1000), 0);
		got = netio_tun_read(io, t, &pkt, 1);
		if (got == 1 && (buf[0] >> 4 != 4 || buf[9] != IPPROTO_UDP))
			got = 0; /* e.g. IPv6 router solicitations */
	}
	cr_assert_eq(got, 1);
	cr_expect_eq(pkt.len, 20 + 8 + 5);
	cr_expect(!memcmp(buf + 16, (uint8_t[]){ 10, 10, 3, 4 }, 4));

	/* an ICMP echo written into the TUN from 10.9.0.2 is answered by the kernel */
	struct iphdr *ip = (struct iphdr *)buf;
	struct icmphdr *icmp = (struct icmphdr *)(buf + 20);
	memset(buf, 0, 64);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(20 + 8 + 8);
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	memcpy(&ip->saddr, (uint8_t[]){ 10, 9, 0, 2 }, 4);
	memcpy(&ip->daddr, (uint8_t[]){ 10, 9, 0, 1 }, 4);
	ip->check = csum(ip, 20);
	icmp->type = ICMP_ECHO;
	icmp->un.echo.id = htons(77);
	icmp->un.echo.sequence = htons(1);
	memcpy(buf + 28, "natmesh!", 8);
	icmp->checksum = csum(icmp, 16);
	pkt = (struct netio_pkt){ .data = buf, .len = 36, .cap = sizeof(buf) };
	cr_assert_eq(netio_tun_write(io, t, &pkt, 1), 1);
	got = 0;
	struct netio_pkt rp = { .data = reply, .cap = sizeof(reply) };
	for (int tries = 0; tries < 20 && !got; tries++) {
		cr_assert_geq(poll(&pfd, 1, 1000), 0);
		got = netio_tun_read(io, t, &rp, 1);
		if (got == 1 && (reply[0] >> 4 != 4 || reply[9] != IPPROTO_ICMP))
			got = 0;
	}
	cr_assert_eq(got, 1);
	cr_expect_eq(reply[20], ICMP_ECHOREPLY);
	cr_expect(!memcmp(reply + 28, "natmesh!", 8));

	cr_expect_eq(netio_route_del(io, "nmtun0", &route), 0);
	netio_tun_close(io, t);
	cr_expect_eq(rtnl_link_index("nmtun0"), -ENODEV, "closing the TUN removes the link");
	netio_free(io);
}

/* rtnl: veth pair and bridge in a namespace of the test's own */
Test(rtnl, veth_bridge_master)
{
	if (geteuid() != 0)
		cr_skip("needs root for a network namespace");
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(rtnl_veth_add("nmva", "nmvb", -1), 0);
	cr_expect_eq(rtnl_veth_add("nmva", "nmvc", -1), -EEXIST);
	cr_assert_eq(rtnl_bridge_add("nmbr"), 0);
	cr_assert_eq(rtnl_link_set_master("nmva", "nmbr"), 0);
	cr_expect_eq(rtnl_link_set_up("nmva", true), 0);
	cr_expect_eq(rtnl_link_set_up("nmbr", true), 0);
	cr_expect_eq(rtnl_link_master("nmva"), rtnl_link_index("nmbr"));
	cr_expect_eq(rtnl_link_master("nmvb"), 0);
	cr_expect_eq(rtnl_link_del("nmva"), 0);
	cr_expect_eq(rtnl_link_index("nmvb"), -ENODEV, "deleting one end removes the pair");
	cr_expect_eq(rtnl_link_del("nmbr"), 0);
	cr_expect_eq(rtnl_veth_add("this-name-is-too-long", "x", -1), -EINVAL);
}

/* address-change notifications: quiet until an address or a link changes */
Test(netio, addr_watch_in_namespace)
{
	struct netio *io;
	struct cidr c;

	if (geteuid() != 0)
		cr_skip("needs root for a network namespace");
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(rtnl_veth_add("nmwa", "nmwb", -1), 0);
	cr_assert_eq(netio_linux_new(&io), 0);
	int fd = netio_addr_watch_fd(io);
	cr_assert_geq(fd, 0);
	cr_expect_eq(netio_addr_watch_fd(io), fd, "one descriptor per netio");
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&pfd, 1, 100), 0, "nothing changed yet");
	cr_expect(!netio_addr_watch_drain(io));

	cr_assert_eq(cidr_parse("10.77.0.1/24", true, &c), 0);
	memcpy(c.addr, (uint8_t[]){ 10, 77, 0, 1 }, 4);
	cr_assert_eq(netio_addr_add(io, "nmwa", &c), 0);
	cr_assert_eq(poll(&pfd, 1, 1000), 1, "an address added is notified");
	cr_expect(netio_addr_watch_drain(io));
	cr_expect_eq(poll(&pfd, 1, 100), 0, "drained");

	cr_assert_eq(netio_link_up(io, "nmwa", 0), 0);
	cr_assert_eq(poll(&pfd, 1, 1000), 1, "a link going up is notified");
	cr_expect(netio_addr_watch_drain(io));
	cr_assert_eq(netio_addr_del(io, "nmwa", &c), 0);
	cr_assert_eq(poll(&pfd, 1, 1000), 1, "an address removed is notified");
	cr_expect(netio_addr_watch_drain(io));
	cr_expect_eq(rtnl_link_del("nmwa"), 0);
	netio_free(io);
}

/* NETIO_UDP_OFFLOAD: runs to one address leave as GSO trains; a plain socket
 * receives ordinary datagrams, an offload socket the train coalesced (GRO),
 * which netio_pkt_split() cuts back into the datagrams that were sent */
static int recv_all(struct netio *io, struct netio_udp *u, struct netio_pkt *in, int want_bytes)
{
	int got = 0, bytes = 0;

	while (bytes < want_bytes) {
		struct pollfd pfd = { .fd = netio_udp_fd(io, u), .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 2000), 1, "timed out after %d bytes", bytes);
		int r = netio_udp_recv(io, u, in + got, NETIO_BATCH_MAX - got);
		cr_assert_geq(r, 0);
		for (int i = got; i < got + r; i++)
			bytes += (int)in[i].len;
		got += r;
	}
	return got;
}

Test(netio, udp_offload_trains_and_gro)
{
	static uint8_t txbuf[16][1000], rxbuf[NETIO_BATCH_MAX][65536];
	struct netio *io;
	struct netio_udp *s, *a, *b;
	union sockaddr_any any, la, lb, ls;
	struct netio_pkt out[16], in[NETIO_BATCH_MAX], segs[NETIO_SEGS_MAX];
	int n = 0, got, k = 0;

	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(addr_parse("127.0.0.1:0", &any), 0);
	cr_assert_eq(netio_udp_open_flags(io, &any, NETIO_UDP_OFFLOAD, &s), 0);
	cr_assert_eq(netio_udp_open_flags(io, &any, NETIO_UDP_OFFLOAD, &a), 0);
	cr_assert_eq(netio_udp_open(io, &any, &b), 0);
	cr_assert_eq(netio_udp_local(io, a, &la), 0);
	cr_assert_eq(netio_udp_local(io, b, &lb), 0);
	cr_assert_eq(netio_udp_local(io, s, &ls), 0);

	/* 10 x 1000 + 300 to A (one train), 3 x 500 to B, 2 x 1000 to A */
	for (int i = 0; i < 16; i++) {
		size_t len = i < 10 ? 1000 : i == 10 ? 300 : i < 14 ? 500 : 1000;
		memset(txbuf[i], 'a' + i, len);
		out[n++] = (struct netio_pkt){ .data = txbuf[i], .len = len, .cap = 1000,
					       .addr = i >= 11 && i < 14 ? lb : la };
	}
	cr_assert_eq(netio_udp_send(io, s, out, n), n, "every packet counted as sent");

	for (int i = 0; i < NETIO_BATCH_MAX; i++)
		in[i] = (struct netio_pkt){ .data = rxbuf[i], .cap = sizeof(rxbuf[i]) };
	got = recv_all(io, b, in, 1500);
	cr_assert_eq(got, 3, "the plain socket gets 3 datagrams");
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(in[i].len, 500);
		cr_expect_eq(in[i].seg, 0);
		cr_expect_eq(in[i].data[0], 'a' + 11 + i);
		cr_expect(addr_equal(&in[i].addr, &ls));
	}

	for (int i = 0; i < NETIO_BATCH_MAX; i++)
		in[i] = (struct netio_pkt){ .data = rxbuf[i], .cap = sizeof(rxbuf[i]) };
	got = recv_all(io, a, in, 12300);
	cr_expect_eq(in[0].len, 10300, "the first train arrives whole");
	cr_expect_eq(in[0].seg, 1000);
	for (int i = 0; i < got; i++) {
		int m = netio_pkt_split(&in[i], segs, NETIO_SEGS_MAX);
		for (int j = 0; j < m; j++, k++) {
			int idx = k < 11 ? k : k + 3;	/* B's three are not here */
			cr_assert_lt(idx, 16);
			cr_expect_eq(segs[j].len, out[idx].len, "datagram %d: %zu bytes", k, segs[j].len);
			cr_expect_eq(segs[j].data[0], 'a' + idx);
			cr_expect_eq(segs[j].data[segs[j].len - 1], 'a' + idx);
			cr_expect(addr_equal(&segs[j].addr, &ls));
		}
	}
	cr_expect_eq(k, 13, "13 datagrams to A");
	netio_udp_close(io, s);
	netio_udp_close(io, a);
	netio_udp_close(io, b);
	netio_free(io);
}

Test(netio, pkt_split)
{
	uint8_t buf[2500];
	struct netio_pkt p = { .data = buf, .len = 2500, .seg = 1000 }, out[NETIO_SEGS_MAX];

	cr_assert_eq(netio_pkt_split(&p, out, NETIO_SEGS_MAX), 3);
	cr_expect_eq(out[0].len, 1000);
	cr_expect_eq(out[1].data, buf + 1000);
	cr_expect_eq(out[2].len, 500);
	cr_expect_eq(netio_pkt_split(&p, out, 2), 2, "max holds");
	p.seg = 0;
	cr_expect_eq(netio_pkt_split(&p, out, NETIO_SEGS_MAX), 1, "not a run");
	cr_expect_eq(out[0].len, 2500);
	p.seg = 4000;
	cr_expect_eq(netio_pkt_split(&p, out, NETIO_SEGS_MAX), 1, "seg beyond len: one");
	p.len = 0;
	cr_expect_eq(netio_pkt_split(&p, out, NETIO_SEGS_MAX), 1, "an empty datagram stays one");
	cr_expect_eq(out[0].len, 0);
}

/* a GSO train the path refuses (here: segments larger than the device's
 * MTU, EMSGSIZE; a device without checksum offload says EIO) costs nothing:
 * netio sends its datagrams singly instead */
Test(netio, udp_offload_refused_falls_back)
{
	static uint8_t txbuf[8][1400], rxbuf[NETIO_BATCH_MAX][2048];
	struct netio *io;
	struct netio_udp *s, *r;
	union sockaddr_any any, lr;
	struct netio_pkt out[8], in[NETIO_BATCH_MAX];

	if (geteuid() != 0)
		cr_skip("needs root for a network namespace");
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(netio_linux_new(&io), 0);
	cr_assert_eq(netio_link_up(io, "lo", 1280), 0);
	cr_assert_eq(addr_parse("127.0.0.1:0", &any), 0);
	cr_assert_eq(netio_udp_open_flags(io, &any, NETIO_UDP_OFFLOAD, &s), 0);
	cr_assert_eq(netio_udp_open(io, &any, &r), 0);
	cr_assert_eq(netio_udp_local(io, r, &lr), 0);

	/* the precondition: this path does refuse a GSO send */
	{
		uint16_t seg = 1400;
		char cbuf[CMSG_SPACE(sizeof(seg))] = { 0 };
		struct iovec iov = { .iov_base = txbuf[0], .iov_len = 2800 };
		struct msghdr h = { .msg_name = &lr, .msg_namelen = sizeof(struct sockaddr_in), .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		cr_assert_lt(sendmsg(fd, &h, 0), 0, "GSO should be refused here");
		cr_assert_eq(errno, EMSGSIZE, "refused with %s", strerror(errno));
		close(fd);
	}

	for (int i = 0; i < 8; i++) {
		memset(txbuf[i], 'a' + i, 1400);
		out[i] = (struct netio_pkt){ .data = txbuf[i], .len = 1400, .cap = 1400, .addr = lr };
	}
	cr_assert_eq(netio_udp_send(io, s, out, 8), 8);
	cr_assert_eq(netio_udp_send(io, s, out, 8), 8, "and again");
	for (int i = 0; i < NETIO_BATCH_MAX; i++)
		in[i] = (struct netio_pkt){ .data = rxbuf[i], .cap = sizeof(rxbuf[i]) };
	int got = recv_all(io, r, in, 16 * 1400);
	cr_expect_eq(got, 16, "all 16 datagrams arrive (fragmented by IP, whole to UDP)");
	for (int i = 0; i < got; i++) {
		cr_expect_eq(in[i].len, 1400);
		cr_expect_eq(in[i].data[0], 'a' + i % 8, "in order");
	}
	netio_udp_close(io, s);
	netio_udp_close(io, r);
	netio_free(io);
}
