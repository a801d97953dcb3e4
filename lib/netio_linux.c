/* The Linux backend of netio: UDP sockets with recvmmsg/sendmmsg, TUN devices
 * from /dev/net/tun, and links/addresses/routes through rtnetlink (rtnl.c). */
#include "netio.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "log.h"
#include "netio_tso.h"
#include "rtnl.h"

struct netio_udp {
	int fd;		/* receives (and is what the event loop watches) */
	int tx_fd;	/* sends: fd itself, or the send-only twin */
	int family;
	bool gso;	/* NETIO_UDP_OFFLOAD, until the path refuses it */
	bool gro;	/* UDP_GRO is on: a received datagram may be a run */
};

/* a GSO train: at most this many segments, this many bytes */
#define GSO_SEGS_MAX 64
#define GSO_BYTES_MAX 65000

/* netio_tso.h speaks the kernel's virtio_net_hdr */
_Static_assert(sizeof(struct virtio_net_hdr) == NETIO_VNET_HDR_LEN, "virtio_net_hdr");
_Static_assert(VIRTIO_NET_HDR_F_NEEDS_CSUM == NETIO_VNET_F_NEEDS_CSUM && VIRTIO_NET_HDR_GSO_TCPV4 ==
	       NETIO_VNET_GSO_TCPV4 && VIRTIO_NET_HDR_GSO_TCPV6 == NETIO_VNET_GSO_TCPV6 &&
	       VIRTIO_NET_HDR_GSO_ECN == NETIO_VNET_GSO_ECN, "virtio_net_hdr values");

/* one read from a TUN with offloads: the header and the largest IP packet
 * (IPv6: 40 + 65535), plus a byte that makes a longer one visible */
#define TUN_RX_MAX (NETIO_VNET_HDR_LEN + 40 + 65535)
#define TUN_RX_BUF (TUN_RX_MAX + 1)

struct netio_tun {
	int fd;
	char name[IFNAMSIZ];
	bool vnet;		/* IFF_VNET_HDR: every read and write has the header */
	uint8_t *rx;		/* vnet: the read being cut */
	struct netio_tso left;	/* ... checked; its packets from left_next on */
	int left_next;		/* are still to hand out */
	struct netio_tun_stats st;
};

/* a UDP socket of family with the buffer sizes, SO_REUSEPORT if asked */
static int udp_socket(int family, int reuseport, int rcvbuf, int sndbuf)
{
	int fd, zero = 0, one = 1;

	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	/* big buffers absorb bursts; FORCE works as root, plain is the fallback */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return fd;
}

/* udp_socket() bound to a: the fd, or a negative errno with nothing open */
static int udp_bound(const union sockaddr_any *a, int reuseport, int rcvbuf, int sndbuf)
{
	int fd = udp_socket(a->sa.sa_family, reuseport, rcvbuf, sndbuf);

	if (fd >= 0 && bind(fd, &a->sa, addr_len(a)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* The program that picks a group member for each arriving datagram (it sees
 * the packet from the network header at SKF_NET_OFF): n == 1 is "return 0",
 * the receiving socket (the twins come after the receivers in the group and
 * so never get data); n > 1 is the IPv4 source address, or the XOR of the
 * four words of the IPv6 one, modulo n. */
static int attach_steering(int fd, int n)
{
	struct sock_filter first[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_filter by_src[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, (uint32_t)SKF_NET_OFF),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 0, 2),
		/* IPv4: the source address */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_JUMP(BPF_JMP | BPF_JA, 13, 0, 0),
		/* IPv6: the source address, folded to 32 bits */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8),
		BPF_STMT(BPF_ST, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_LDX | BPF_MEM, 0),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ST, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 16),
		BPF_STMT(BPF_LDX | BPF_MEM, 0),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ST, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 20),
		BPF_STMT(BPF_LDX | BPF_MEM, 0),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		/* both: modulo the group size */
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, (uint32_t)n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (n == 1)
		prog = (struct sock_fprog){ .len = 1, .filter = first };
	else
		prog = (struct sock_fprog){ .len = sizeof(by_src) / sizeof(by_src[0]), .filter = by_src };
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

static void lx_udp_close(struct netio_udp *u);

static int lx_udp_open_group(struct netio *io, const union sockaddr_any *bind_addr, unsigned flags, int n,
			     struct netio_udp **out)
{
	union sockaddr_any at = *bind_addr;
	int fd, rc, made, bufsz = 4 << 20, twin = !!(flags & NETIO_UDP_SEND_TWIN), shared = twin || n > 1;
	(void)io;
	if (n < 1 || n > NETIO_GROUP_MAX)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		out[i] = NULL;
	if (shared) {
		/* SO_REUSEPORT would let us share a port that another socket of
		 * this user holds with SO_REUSEPORT (and pick such a port for port
		 * 0): claim the address alone first, so that "in use" stays an
		 * error, then reopen it for the group */
		fd = udp_bound(bind_addr, 0, 4096, 4096);
		if (fd < 0)
			return fd;
		socklen_t len = sizeof(at);
		rc = getsockname(fd, &at.sa, &len) < 0 ? -errno : 0;
		close(fd);
		if (rc < 0)
			return rc;
	}
	for (made = 0; made < n; made++) {
		struct netio_udp *u = calloc(1, sizeof(*u));
		if (!u) {
			rc = -ENOMEM;
			goto err;
		}
		fd = udp_bound(&at, shared, bufsz, bufsz);
		if (fd < 0) {
			free(u);
			rc = fd;
			goto err;
		}
		u->fd = u->tx_fd = fd;
		u->family = bind_addr->sa.sa_family;
		if (flags & NETIO_UDP_OFFLOAD) {
			int one = 1;
			u->gso = true;
			u->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
		}
		out[made] = u;
	}
	if (shared && (rc = attach_steering(out[0]->fd, n)) < 0) {
		if (n > 1)
			goto err;
		/* one receiver: fine without the program, but then no twin */
		log_debug("netio", "no steering program, sending from the receiving socket err=%s",
			  strerror(-rc));
		twin = 0;
	}
	/* the send-only twins join the group after every receiver, so the
	 * steering program never picks them */
	for (int i = 0; twin && i < n; i++) {
		int tx = udp_bound(&at, 1, 4096, bufsz);
		if (tx < 0) {
			log_debug("netio", "no send-only twin socket, sending from the receiving one err=%s",
				  strerror(-tx));
			break;
		}
		out[i]->tx_fd = tx;
	}
	return 0;

err:
	while (made > 0) {
		made--;
		lx_udp_close(out[made]);
		out[made] = NULL;
	}
	return rc;
}

static void lx_udp_close(struct netio_udp *u)
{
	if (u->tx_fd != u->fd)
		close(u->tx_fd);
	close(u->fd);
	free(u);
}

static int lx_udp_fd(const struct netio_udp *u)
{
	return u->fd;
}

static int lx_udp_local(const struct netio_udp *u, union sockaddr_any *out)
{
	socklen_t len = sizeof(*out);
	memset(out, 0, sizeof(*out));
	if (getsockname(u->fd, &out->sa, &len) < 0)
		return -errno;
	addr_unmap_v4(out);
	return 0;
}

static int lx_udp_recv(struct netio_udp *u, struct netio_pkt *pkts, int n)
{
	struct mmsghdr msgs[NETIO_BATCH_MAX];
	struct iovec iov[NETIO_BATCH_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl[NETIO_BATCH_MAX];
	int got;

	if (n > NETIO_BATCH_MAX)
		n = NETIO_BATCH_MAX;
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = pkts[i].data;
		iov[i].iov_len = pkts[i].cap;
		memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &pkts[i].addr;
		msgs[i].msg_hdr.msg_namelen = sizeof(pkts[i].addr);
		if (u->gro) {
			msgs[i].msg_hdr.msg_control = ctl[i].buf;
			msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
		}
	}
	got = recvmmsg(u->fd, msgs, (unsigned)n, MSG_DONTWAIT, NULL);
	if (got < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
	for (int i = 0; i < got; i++) {
		/* a datagram larger than the buffer is cut: mark it empty */
		pkts[i].len = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : msgs[i].msg_len;
		pkts[i].seg = 0;
		addr_unmap_v4(&pkts[i].addr);
		if (!u->gro || !pkts[i].len)
			continue;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
		     cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm)) {
			int v;
			if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO)
				continue;
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			if (v > 0 && (size_t)v < pkts[i].len)
				pkts[i].seg = (size_t)v;
		}
	}
	return got;
}

/* an IPv4 destination on a dual-stack IPv6 socket needs the v4-mapped form */
static void dest_for(const struct netio_udp *u, const union sockaddr_any *in, union sockaddr_any *out)
{
	*out = *in;
	if (u->family == AF_INET6 && in->sa.sa_family == AF_INET) {
		memset(out, 0, sizeof(*out));
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = in->in.sin_port;
		out->in6.sin6_addr.s6_addr[10] = 0xff;
		out->in6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->in6.sin6_addr.s6_addr[12], &in->in.sin_addr, 4);
	}
}

/* how many of pkts[0..n) go in one GSO train: same destination, one size but
 * the last, within the kernel's limits */
static int gso_run(const struct netio_pkt *pkts, int n)
{
	size_t total = pkts[0].len;
	int j = 1;

	while (j < n && j < GSO_SEGS_MAX && pkts[j - 1].len == pkts[0].len && pkts[j].len <= pkts[0].len &&
	       pkts[j].len > 0 && total + pkts[j].len <= GSO_BYTES_MAX && addr_equal(&pkts[j].addr, &pkts[0].addr))
		total += pkts[j++].len;
	return j;
}

static int lx_udp_send(struct netio_udp *u, const struct netio_pkt *pkts, int n)
{
	struct mmsghdr msgs[NETIO_BATCH_MAX];
	struct iovec iov[NETIO_BATCH_MAX];
	union sockaddr_any dst[NETIO_BATCH_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[NETIO_BATCH_MAX];
	int first[NETIO_BATCH_MAX + 1];	/* message k carries pkts[first[k]..first[k+1]) */
	int nmsg = 0, done = 0;

	if (n > NETIO_BATCH_MAX)
		n = NETIO_BATCH_MAX;
	for (int i = 0; i < n; nmsg++) {
		int run = u->gso ? gso_run(pkts + i, n - i) : 1;
		struct msghdr *h = &msgs[nmsg].msg_hdr;

		dest_for(u, &pkts[i].addr, &dst[nmsg]);
		memset(h, 0, sizeof(*h));
		for (int k = 0; k < run; k++) {
			iov[i + k].iov_base = pkts[i + k].data;
			iov[i + k].iov_len = pkts[i + k].len;
		}
		h->msg_iov = &iov[i];
		h->msg_iovlen = (size_t)run;
		h->msg_name = &dst[nmsg];
		h->msg_namelen = addr_len(&dst[nmsg]);
		if (run > 1) {
			uint16_t seg = (uint16_t)pkts[i].len;
			h->msg_control = ctl[nmsg].buf;
			h->msg_controllen = sizeof(ctl[nmsg].buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
		first[nmsg] = i;
		i += run;
	}
	first[nmsg] = n;
	while (done < nmsg) {
		int rc = sendmmsg(u->tx_fd, msgs + done, (unsigned)(nmsg - done), MSG_DONTWAIT);
		if (rc > 0) {
			done += rc;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			break;
		if (msgs[done].msg_hdr.msg_iovlen > 1 &&
		    (errno == EMSGSIZE || errno == EIO || errno == EINVAL || errno == ENOPROTOOPT ||
		     errno == EOPNOTSUPP)) {
			/* a train the path refuses goes out singly: segments over
			 * the MTU (EMSGSIZE; single sends fragment or fail on
			 * their own), or no GSO on this path at all (no checksum
			 * offload, say: EIO), which turns it off for good */
			int a = first[done], b = first[done + 1], k;
			bool keep = errno == EMSGSIZE && u->gso;
			if (!keep && u->gso)
				log_info("netio", "UDP GSO refused, sending datagrams singly err=\"%s\"",
					 strerror(errno));
			u->gso = false;
			k = lx_udp_send(u, pkts + a, b - a);
			u->gso = keep;
			if (k < b - a)
				return a + (k < 0 ? 0 : k);
			done++;
			continue;
		}
		/* one unreachable destination must not hold back the rest */
		char a[ADDR_STRLEN];
		log_debug("netio", "udp send failed dst=%s err=%s",
			  addr_format(&pkts[first[done]].addr, a, sizeof(a)), strerror(errno));
		done++;
	}
	return first[done];
}

/* /dev/net/tun attached to name with flags: the descriptor, or a -errno */
static int tun_attach(const char *name, short flags, char *ifname)
{
	struct ifreq ifr;
	int fd, rc;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = flags;
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	return fd;
}

/* IFF_VNET_HDR, then what the kernel may hand over: partial checksums and
 * TCP super-packets (no UDP segmentation: nothing here would send it). The
 * descriptor; -EOPNOTSUPP (with the reason in *why) when the kernel refuses
 * the header or the offloads, or another -errno from TUNSETIFF. */
static int tun_attach_offload(const char *name, char *ifname, int *why)
{
	int fd, sz = NETIO_VNET_HDR_LEN;

	fd = tun_attach(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, ifname);
	if (fd == -EINVAL) {
		*why = EINVAL;
		return -EOPNOTSUPP;
	}
	if (fd < 0)
		return fd;
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
		*why = errno;
		close(fd);
		return -EOPNOTSUPP;
	}
	return fd;
}

static int lx_tun_open(struct netio *io, const char *name, unsigned flags, struct netio_tun **out)
{
	struct netio_tun *t;
	int rc;
	(void)io;
	*out = NULL;
	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fd = -1;
	if (flags & NETIO_TUN_OFFLOAD) {
		int why = 0;

		t->rx = malloc(TUN_RX_BUF);
		if (!t->rx) {
			rc = -ENOMEM;
			goto err_free;
		}
		t->fd = tun_attach_offload(name, t->name, &why);
		if (t->fd < 0 && t->fd != -EOPNOTSUPP) {
			rc = t->fd;
			goto err_free;
		}
		if (t->fd < 0) {
			/* the device works without: closing the descriptor removed
			 * what TUNSETIFF made, so it starts over plain */
			log_info("netio", "TUN offload refused, plain TUN dev=%s err=\"%s\"", name,
				 strerror(why));
			free(t->rx);
			t->rx = NULL;
		}
	}
	t->vnet = t->fd >= 0;
	if (!t->vnet && (t->fd = tun_attach(name, IFF_TUN | IFF_NO_PI, t->name)) < 0) {
		rc = t->fd;
		goto err_free;
	}
	*out = t;
	return 0;

err_free:
	free(t->rx);
	free(t);
	return rc;
}

static void lx_tun_close(struct netio_tun *t)
{
	close(t->fd);
	free(t->rx);
	free(t);
}

static int lx_tun_fd(const struct netio_tun *t)
{
	return t->fd;
}

static const char *lx_tun_name(const struct netio_tun *t)
{
	return t->name;
}

/* a read the kernel should never have made: counted, and logged for the
 * first and then at every power of two */
static void tun_drop(struct netio_tun *t, int why)
{
	uint64_t n = ++t->st.rx_bad;

	if (!(n & (n - 1)))
		log_warn("netio", "TUN read dropped dev=%s reason=\"%s\" dropped=%llu", t->name,
			 netio_tso_strerror(why), (unsigned long long)n);
}

/* the packets of t->left not handed out yet, into pkts[0..n) */
static int tun_emit(struct netio_tun *t, struct netio_pkt *pkts, int n)
{
	int k = 0;

	while (k < n && t->left_next < t->left.nsegs) {
		int len = netio_tso_segment(&t->left, t->left_next, pkts[k].data, pkts[k].cap);
		if (len < 0) {
			tun_drop(t, len);
			t->left_next = t->left.nsegs;
			break;
		}
		t->left_next++;
		pkts[k].len = (size_t)len;
		pkts[k].seg = 0;
		k++;
	}
	return k;
}

/* one read from the device: the bytes read, -EAGAIN when nothing waits, or
 * another -errno */
static ssize_t tun_read_raw(int fd, void *buf, size_t cap)
{
	ssize_t r;

	do
		r = read(fd, buf, cap);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return r;
}

static int tun_read_vnet(struct netio_tun *t, struct netio_pkt *pkts, int n)
{
	struct netio_vnet_hdr h;
	int got = 0, rc;

	if (t->left_next < t->left.nsegs)
		return tun_emit(t, pkts, n);
	while (got < n) {
		ssize_t r = tun_read_raw(t->fd, t->rx, TUN_RX_BUF);
		if (r == -EAGAIN)
			break;
		if (r < 0)
			return got ? got : (int)r;
		if ((uint64_t)r > t->st.rx_largest)
			t->st.rx_largest = (uint64_t)r;
		if (r < NETIO_VNET_HDR_LEN || r > TUN_RX_MAX) {
			tun_drop(t, NETIO_TSO_E_SHORT);
			continue;
		}
		netio_vnet_hdr_decode(t->rx, &h);
		rc = netio_tso_parse(&h, t->rx + NETIO_VNET_HDR_LEN, (size_t)r - NETIO_VNET_HDR_LEN, &t->left);
		if (rc < 0) {
			tun_drop(t, rc);
			continue;
		}
		if (t->left.mss) {
			t->st.rx_super++;
			t->st.rx_segs += (uint64_t)rc;
		} else if (t->left.csum) {
			t->st.rx_csum++;
		}
		t->left_next = 0;
		got += tun_emit(t, pkts + got, n - got);
	}
	return got;
}

static int lx_tun_read(struct netio_tun *t, struct netio_pkt *pkts, int n)
{
	int got = 0;

	if (t->vnet)
		return tun_read_vnet(t, pkts, n);
	while (got < n) {
		ssize_t r = tun_read_raw(t->fd, pkts[got].data, pkts[got].cap);
		if (r == -EAGAIN)
			break;
		if (r < 0)
			return got ? got : (int)r;
		pkts[got].len = (size_t)r;
		got++;
	}
	return got;
}

/* one packet behind a header that asks for nothing (no segmentation, the
 * checksums complete): 0, or a -errno */
static int tun_write_one(struct netio_tun *t, const struct netio_pkt *p)
{
	static const uint8_t plain[NETIO_VNET_HDR_LEN];
	struct iovec iov[2] = {
		{ .iov_base = (void *)plain, .iov_len = sizeof(plain) },
		{ .iov_base = p->data, .iov_len = p->len },
	};
	ssize_t r;

	do
		r = writev(t->fd, iov, 2);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* With IFF_VNET_HDR: the packets as netio_gro_plan() groups them, a run of
 * TCP segments as one super-packet, anything else alone. At most
 * NETIO_BATCH_MAX; how many were written (with the device full, not always
 * the first ones). */
static int tun_write_vnet(struct netio_tun *t, const struct netio_pkt *pkts, int n)
{
	struct iovec iov[NETIO_BATCH_MAX + 2];
	uint8_t vh[NETIO_VNET_HDR_LEN], head[NETIO_GRO_HEAD_MAX];
	struct netio_gro g;
	int done = 0;

	if (n > NETIO_BATCH_MAX)
		n = NETIO_BATCH_MAX;
	netio_gro_plan(&g, pkts, n);
	for (int w = 0; w < g.nwrites; w++) {
		int f = g.first[w], k = 0, rc;

		if (g.count[w] > 1) {
			struct netio_vnet_hdr h;
			size_t hlen = netio_gro_head(&g, pkts, w, &h, head);
			ssize_t r;

			netio_vnet_hdr_encode(&h, vh);
			iov[k++] = (struct iovec){ .iov_base = vh, .iov_len = sizeof(vh) };
			iov[k++] = (struct iovec){ .iov_base = head, .iov_len = hlen };
			for (int j = f; j >= 0; j = g.next[j])
				iov[k++] = (struct iovec){ .iov_base = pkts[j].data + hlen,
							   .iov_len = pkts[j].len - hlen };
			do
				r = writev(t->fd, iov, k);
			while (r < 0 && errno == EINTR);
			if (r >= 0) {
				t->st.tx_super++;
				done += g.count[w];
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* a kernel that will not take the super-packet takes its
			 * packets one by one */
			log_debug("netio", "tun coalesced write failed dev=%s packets=%d err=%s", t->name,
				  g.count[w], strerror(errno));
		}
		for (int j = f; j >= 0; j = g.next[j]) {
			rc = tun_write_one(t, &pkts[j]);
			if (rc == -EAGAIN || rc == -EWOULDBLOCK)
				return done;
			/* a packet the kernel refuses (e.g. malformed) is dropped alone */
			if (rc < 0)
				log_debug("netio", "tun write failed dev=%s err=%s", t->name, strerror(-rc));
			done++;
		}
	}
	return done;
}

static int lx_tun_write(struct netio_tun *t, const struct netio_pkt *pkts, int n)
{
	int done = 0;

	if (t->vnet) {
		while (done < n) {
			int k = n - done < NETIO_BATCH_MAX ? n - done : NETIO_BATCH_MAX;
			int w = tun_write_vnet(t, pkts + done, k);
			done += w;
			if (w < k)
				break;
		}
		return done;
	}
	while (done < n) {
		ssize_t r = write(t->fd, pkts[done].data, pkts[done].len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			/* a packet the kernel refuses (e.g. malformed) is dropped alone */
			log_debug("netio", "tun write failed dev=%s err=%s", t->name, strerror(errno));
		}
		done++;
	}
	return done;
}

static bool lx_tun_pending(const struct netio_tun *t)
{
	return t->left_next < t->left.nsegs;
}

static void lx_tun_stats(const struct netio_tun *t, struct netio_tun_stats *out)
{
	*out = t->st;
	out->offload = t->vnet;
}

static int lx_link_up(struct netio *io, const char *ifname, int mtu)
{
	int rc;
	(void)io;
	if (mtu > 0 && (rc = rtnl_link_set_mtu(ifname, mtu)) < 0)
		return rc;
	return rtnl_link_set_up(ifname, true);
}

static int lx_link_del(struct netio *io, const char *ifname)
{
	(void)io;
	return rtnl_link_del(ifname);
}

static int lx_addr_add(struct netio *io, const char *ifname, const struct cidr *c)
{
	(void)io;
	return rtnl_addr_add(ifname, c);
}

static int lx_addr_del(struct netio *io, const char *ifname, const struct cidr *c)
{
	(void)io;
	return rtnl_addr_del(ifname, c);
}

static int lx_route_add(struct netio *io, const char *ifname, const struct cidr *dst)
{
	(void)io;
	return rtnl_route_add(ifname, dst, NULL);
}

static int lx_route_del(struct netio *io, const char *ifname, const struct cidr *dst)
{
	(void)io;
	return rtnl_route_del(ifname, dst, NULL);
}

static int lx_local_addrs(struct netio *io, union sockaddr_any *out, int max)
{
	struct ifaddrs *ifa, *p;
	int n = 0;
	(void)io;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (p = ifa; p && n < max; p = p->ifa_next) {
		if (!p->ifa_addr || !(p->ifa_flags & IFF_UP) || (p->ifa_flags & IFF_LOOPBACK))
			continue;
		if (p->ifa_addr->sa_family == AF_INET) {
			memset(&out[n], 0, sizeof(out[n]));
			memcpy(&out[n].in, p->ifa_addr, sizeof(struct sockaddr_in));
			n++;
		} else if (p->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)p->ifa_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
				continue;
			memset(&out[n], 0, sizeof(out[n]));
			memcpy(&out[n].in6, s6, sizeof(*s6));
			n++;
		}
	}
	freeifaddrs(ifa);
	return n;
}

/* the backend's state behind struct netio */
struct lx_netio {
	struct netio io;
	struct mnl_socket *watch;	/* rtnetlink notifications, opened on demand */
};

static int lx_addr_watch_fd(struct netio *io)
{
	struct lx_netio *x = (struct lx_netio *)io;

	if (!x->watch) {
		struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (!nl)
			return -errno;
		if (mnl_socket_bind(nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
				    MNL_SOCKET_AUTOPID) < 0) {
			int rc = -errno;
			mnl_socket_close(nl);
			return rc;
		}
		x->watch = nl;
	}
	return mnl_socket_get_fd(x->watch);
}

static bool lx_addr_watch_drain(struct netio *io)
{
	struct lx_netio *x = (struct lx_netio *)io;
	uint8_t buf[MNL_SOCKET_BUFFER_SIZE];
	bool changed = false;

	if (!x->watch)
		return false;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(x->watch, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* ENOBUFS: notifications were lost; anything may have changed */
			if (errno == ENOBUFS)
				changed = true;
			return changed;
		}
		if (n == 0)
			return changed;
		int left = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(h, left);
		     h = mnl_nlmsg_next(h, &left))
			if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR ||
			    h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK)
				changed = true;
	}
}

static void lx_free(struct netio *io)
{
	struct lx_netio *x = (struct lx_netio *)io;

	if (x->watch)
		mnl_socket_close(x->watch);
	free(x);
}

static const struct netio_ops linux_ops = {
	.udp_open_group = lx_udp_open_group,
	.udp_close = lx_udp_close,
	.udp_fd = lx_udp_fd,
	.udp_local = lx_udp_local,
	.udp_recv = lx_udp_recv,
	.udp_send = lx_udp_send,
	.tun_open = lx_tun_open,
	.tun_close = lx_tun_close,
	.tun_fd = lx_tun_fd,
	.tun_name = lx_tun_name,
	.tun_read = lx_tun_read,
	.tun_write = lx_tun_write,
	.tun_pending = lx_tun_pending,
	.tun_stats = lx_tun_stats,
	.link_up = lx_link_up,
	.link_del = lx_link_del,
	.addr_add = lx_addr_add,
	.addr_del = lx_addr_del,
	.route_add = lx_route_add,
	.route_del = lx_route_del,
	.local_addrs = lx_local_addrs,
	.addr_watch_fd = lx_addr_watch_fd,
	.addr_watch_drain = lx_addr_watch_drain,
	.free = lx_free,
};

int netio_linux_new(struct netio **out)
{
	struct lx_netio *x = calloc(1, sizeof(*x));
	*out = NULL;
	if (!x)
		return -ENOMEM;
	x->io.ops = &linux_ops;
	*out = &x->io;
	return 0;
}
