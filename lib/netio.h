/* netio: the swappable network abstraction (ARCHITECTURE.md). Programs reach
 * the network only through a struct netio: batched UDP send/receive, TUN
 * devices, and link/address/route changes. netio_linux_new() gives the Linux
 * backend (sockets with recvmmsg/sendmmsg, /dev/net/tun, rtnetlink through
 * libmnl); an in-process backend with virtual links can implement the same
 * operations. Readiness of the objects is watched with the event loop through
 * their file descriptors (netio_udp_fd, netio_tun_fd). */
#ifndef NATMESH_NETIO_H
#define NATMESH_NETIO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* One packet of a batch. data points at cap bytes owned by the caller; on
 * receive, len is set (and addr to the source), on send len bytes go to addr.
 * seg, on receive from a socket opened with NETIO_UDP_OFFLOAD only: when not
 * 0, data holds a run of datagrams from addr of seg bytes each (the last may
 * be shorter) that the kernel coalesced (UDP GRO); netio_pkt_split() cuts it
 * apart. Always 0 otherwise, and ignored on send. */
struct netio_pkt {
	uint8_t *data;
	size_t len;
	size_t cap;
	union sockaddr_any addr;
	size_t seg;
};

/* The datagrams of p (one unless p->seg says it is a run), as packets that
 * point into p's buffer, at most max (NETIO_SEGS_MAX always suffices: the
 * kernel coalesces no more); returns how many. */
#define NETIO_SEGS_MAX 64
static inline int netio_pkt_split(const struct netio_pkt *p, struct netio_pkt *out, int max)
{
	size_t seg = p->seg && p->seg < p->len ? p->seg : p->len, off = 0;
	int n = 0;

	if (max < 1)
		return 0;
	do {
		size_t len = p->len - off < seg ? p->len - off : seg;
		out[n++] = (struct netio_pkt){ .data = p->data + off, .len = len, .cap = len, .addr = p->addr };
		off += len;
	} while (n < max && off < p->len);
	return n;
}

#define NETIO_BATCH_MAX 64

struct netio;
struct netio_udp;
struct netio_tun;
struct netio_tun_stats;

struct netio_ops {
	int (*udp_open_group)(struct netio *io, const union sockaddr_any *bind, unsigned flags, int n,
			      struct netio_udp **out);
	void (*udp_close)(struct netio_udp *u);
	int (*udp_fd)(const struct netio_udp *u);
	int (*udp_local)(const struct netio_udp *u, union sockaddr_any *out);
	int (*udp_recv)(struct netio_udp *u, struct netio_pkt *pkts, int n);
	int (*udp_send)(struct netio_udp *u, const struct netio_pkt *pkts, int n);

	int (*tun_open)(struct netio *io, const char *name, unsigned flags, struct netio_tun **out);
	void (*tun_close)(struct netio_tun *t);
	int (*tun_fd)(const struct netio_tun *t);
	const char *(*tun_name)(const struct netio_tun *t);
	int (*tun_read)(struct netio_tun *t, struct netio_pkt *pkts, int n);
	int (*tun_write)(struct netio_tun *t, const struct netio_pkt *pkts, int n);
	/* optional (NETIO_TUN_OFFLOAD) */
	bool (*tun_pending)(const struct netio_tun *t);
	void (*tun_stats)(const struct netio_tun *t, struct netio_tun_stats *out);

	int (*link_up)(struct netio *io, const char *ifname, int mtu);
	int (*link_del)(struct netio *io, const char *ifname);
	int (*addr_add)(struct netio *io, const char *ifname, const struct cidr *c);
	int (*addr_del)(struct netio *io, const char *ifname, const struct cidr *c);
	int (*route_add)(struct netio *io, const char *ifname, const struct cidr *dst);
	int (*route_del)(struct netio *io, const char *ifname, const struct cidr *dst);
	/* every usable (up, non-loopback, global) address of the host */
	int (*local_addrs)(struct netio *io, union sockaddr_any *out, int max);
	/* a descriptor that turns readable when an address or a link changes */
	int (*addr_watch_fd)(struct netio *io);
	/* reads what made it readable; true when something changed (or the
	 * notifications overflowed: look again) */
	bool (*addr_watch_drain)(struct netio *io);

	void (*free)(struct netio *io);
};

struct netio {
	const struct netio_ops *ops;
};

int netio_linux_new(struct netio **out);
static inline void netio_free(struct netio *io) { if (io) io->ops->free(io); }

/* UDP. recv returns the number of packets read (0 when none is waiting) or a
 * negative errno; send returns how many were sent (a short count means the
 * socket is full) or a negative errno. */
static inline int netio_udp_open(struct netio *io, const union sockaddr_any *bind, struct netio_udp **out)
{ return io->ops->udp_open_group(io, bind, 0, 1, out); }
/* NETIO_UDP_SEND_TWIN: sends leave through a second, send-only socket bound
 * to the same address, which no event loop watches. Each datagram the kernel
 * frees after sending wakes the watchers of the socket that sent it (a
 * write-space wake-up through epoll's wait queue); with the twin nobody is
 * waiting there. Worth it for a socket that answers at high rates (meshstun).
 * A backend without the notion ignores the flag. */
#define NETIO_UDP_SEND_TWIN 1u
/* NETIO_UDP_OFFLOAD: UDP segmentation offload both ways where the kernel has
 * it. Sends: a run of packets to one address, all of one size but the last
 * (which may be shorter), leaves as one datagram train (UDP GSO) that the
 * kernel or the NIC cuts; the receiver sees ordinary datagrams. Receives:
 * UDP GRO, so a packet may be a run (netio_pkt.seg); buffers should then hold
 * 65535 bytes, as a run longer than its buffer is cut and reported empty. A
 * path that refuses GSO turns it off for the socket; nothing is lost. */
#define NETIO_UDP_OFFLOAD 2u
static inline int netio_udp_open_flags(struct netio *io, const union sockaddr_any *bind, unsigned flags,
				       struct netio_udp **out)
{ return io->ops->udp_open_group(io, bind, flags, 1, out); }
/* n sockets on one address, for n threads: the kernel hands each arriving
 * datagram to out[f(source IP) % n], so one source IP always reaches the same
 * socket (and a per-source limit kept by its thread stays exact). The address
 * is exclusive to the group: "in use" is still an error. n is 1 to
 * NETIO_GROUP_MAX; on failure nothing stays open. */
#define NETIO_GROUP_MAX 64
static inline int netio_udp_open_group(struct netio *io, const union sockaddr_any *bind, unsigned flags,
				       int n, struct netio_udp **out)
{ return io->ops->udp_open_group(io, bind, flags, n, out); }
void netio_udp_close(struct netio *io, struct netio_udp *u);
static inline int netio_udp_fd(struct netio *io, const struct netio_udp *u) { return io->ops->udp_fd(u); }
static inline int netio_udp_local(struct netio *io, const struct netio_udp *u, union sockaddr_any *out)
{ return io->ops->udp_local(u, out); }
static inline int netio_udp_recv(struct netio *io, struct netio_udp *u, struct netio_pkt *p, int n)
{ return io->ops->udp_recv(u, p, n); }
static inline int netio_udp_send(struct netio *io, struct netio_udp *u, const struct netio_pkt *p, int n)
{ return io->ops->udp_send(u, p, n); }

/* TUN (IFF_TUN | IFF_NO_PI: packets are bare IP). A read gives IP packets, a
 * write takes them; neither ever sees anything else. */
static inline int netio_tun_open(struct netio *io, const char *name, struct netio_tun **out)
{ return io->ops->tun_open(io, name, 0, out); }
/* NETIO_TUN_OFFLOAD: the kernel hands the TUN TCP super-packets of up to
 * 64 KiB (TSO) and leaves checksums to it (IFF_VNET_HDR with TUN_F_CSUM,
 * TUN_F_TSO4, TUN_F_TSO6), which spares the sender's stack the work per
 * segment and the reader a read per segment; and a write batch's in-order
 * TCP segments of one flow go to the kernel as one super-packet (GRO), which
 * its stack then handles once. netio does the cutting and the coalescing
 * (netio_tso.h), so callers still read and write ordinary IP packets: reads
 * give packets no longer than the MTU with every checksum complete, the
 * packets of one read in order; writes keep the order within each TCP flow
 * (not across flows). On reads:
 *   - one read from the device may fill many packets; a super-packet whose
 *     segments do not all fit into the n packets of netio_tun_read() keeps
 *     the rest for the next call, which returns them, and only them. The
 *     descriptor does not signal them: while netio_tun_pending() says so, a
 *     reader must read again before it waits on the descriptor (a read that
 *     returns fewer than n packets leaves nothing behind);
 *   - the device's read lands in netio's own 64 KiB buffer and is copied out
 *     packet by packet, so the caller's buffers need only hold what the MTU
 *     allows, as without the flag; a packet longer than its buffer is
 *     dropped and counted.
 * A kernel that refuses the offloads gets a plain TUN and one log line;
 * netio_tun_stats() tells which. */
#define NETIO_TUN_OFFLOAD 1u
static inline int netio_tun_open_flags(struct netio *io, const char *name, unsigned flags,
				       struct netio_tun **out)
{ return io->ops->tun_open(io, name, flags, out); }
void netio_tun_close(struct netio *io, struct netio_tun *t);
static inline int netio_tun_fd(struct netio *io, const struct netio_tun *t) { return io->ops->tun_fd(t); }
static inline const char *netio_tun_name(struct netio *io, const struct netio_tun *t)
{ return io->ops->tun_name(t); }
/* up to n packets; 0 when none is waiting, or a negative errno */
static inline int netio_tun_read(struct netio *io, struct netio_tun *t, struct netio_pkt *p, int n)
{ return io->ops->tun_read(t, p, n); }
/* how many were written (a short count means the device is full; with
 * NETIO_TUN_OFFLOAD not always the first ones) */
static inline int netio_tun_write(struct netio *io, struct netio_tun *t, const struct netio_pkt *p, int n)
{ return io->ops->tun_write(t, p, n); }
static inline bool netio_tun_pending(struct netio *io, const struct netio_tun *t)
{ return io->ops->tun_pending ? io->ops->tun_pending(t) : false; }

struct netio_tun_stats {
	bool offload;		/* NETIO_TUN_OFFLOAD is on */
	uint64_t rx_super;	/* reads that were TCP super-packets */
	uint64_t rx_segs;	/* packets cut from them */
	uint64_t rx_csum;	/* partial checksums completed (single packets) */
	uint64_t rx_bad;	/* reads dropped: malformed (netio_tso_parse), or a
				 * packet longer than its buffer */
	uint64_t rx_largest;	/* bytes of the largest read */
	uint64_t tx_super;	/* writes that were runs of TCP segments coalesced */
};
void netio_tun_stats(struct netio *io, const struct netio_tun *t, struct netio_tun_stats *out);

/* Links, addresses, routes (rtnetlink in the Linux backend). */
static inline int netio_link_up(struct netio *io, const char *ifname, int mtu)
{ return io->ops->link_up(io, ifname, mtu); }
static inline int netio_link_del(struct netio *io, const char *ifname)
{ return io->ops->link_del(io, ifname); }
static inline int netio_addr_add(struct netio *io, const char *ifname, const struct cidr *c)
{ return io->ops->addr_add(io, ifname, c); }
static inline int netio_addr_del(struct netio *io, const char *ifname, const struct cidr *c)
{ return io->ops->addr_del(io, ifname, c); }
static inline int netio_route_add(struct netio *io, const char *ifname, const struct cidr *dst)
{ return io->ops->route_add(io, ifname, dst); }
static inline int netio_route_del(struct netio *io, const char *ifname, const struct cidr *dst)
{ return io->ops->route_del(io, ifname, dst); }
static inline int netio_local_addrs(struct netio *io, union sockaddr_any *out, int max)
{ return io->ops->local_addrs(io, out, max); }
/* Address and link changes (rtnetlink notifications in the Linux backend):
 * watch the descriptor with the event loop, drain it when readable, then read
 * netio_local_addrs again. A negative errno when the backend cannot notify
 * (poll netio_local_addrs instead). The descriptor belongs to io. */
static inline int netio_addr_watch_fd(struct netio *io)
{ return io->ops->addr_watch_fd ? io->ops->addr_watch_fd(io) : -EOPNOTSUPP; }
static inline bool netio_addr_watch_drain(struct netio *io)
{ return io->ops->addr_watch_drain ? io->ops->addr_watch_drain(io) : false; }

#endif
