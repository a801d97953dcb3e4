/* netio_tso: the packets of a TUN with offloads (IFF_VNET_HDR), without the
 * OS, so unit tests and the fuzzer reach them without a device. Every read
 * from such a TUN is a virtio_net_hdr (virtio 1.x 5.1.6, without
 * num_buffers: 10 bytes) and a packet that may be
 *   - a TCP super-packet (gso_type TCPV4 or TCPV6): one IP and TCP header
 *     and up to 64 KiB of payload, to be cut into segments of gso_size
 *     payload bytes each (what a NIC does for TSO), and/or
 *   - a packet whose checksum is partial (flags NEEDS_CSUM): the one's
 *     complement sum from csum_start to the end, to be stored at
 *     csum_start + csum_offset (the field holds the pseudo-header sum).
 * netio_tso_parse() checks a read and says how many ordinary IP packets it
 * makes; netio_tso_segment() writes each, every checksum complete. Reads are
 * outside bytes: every malformation has its own error.
 *
 * Writes go the other way (netio_gro_plan): a batch of packets becomes a
 * list of writes, each one packet as it is (behind a header that asks for
 * nothing) or a run of in-order TCP segments of one flow as one super-packet,
 * which the kernel takes as if a NIC had coalesced them (GRO), so its stack
 * handles the run once. */
#ifndef NATMESH_NETIO_TSO_H
#define NATMESH_NETIO_TSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netio.h"

/* virtio 1.x 5.1.6 */
#define NETIO_VNET_HDR_LEN 10
enum {
	NETIO_VNET_F_NEEDS_CSUM = 1,
	NETIO_VNET_GSO_NONE = 0,
	NETIO_VNET_GSO_TCPV4 = 1,
	NETIO_VNET_GSO_UDP = 3,
	NETIO_VNET_GSO_TCPV6 = 4,
	NETIO_VNET_GSO_UDP_L4 = 5,
	NETIO_VNET_GSO_ECN = 0x80,	/* flag: the super-packet has CWR set */
};

struct netio_vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;	/* a hint (the kernel's linear part); only checked */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

/* The kernel's TUN speaks the legacy layout (no TUNSETVNETLE/BE): the 16-bit
 * fields are in the host's byte order. */
void netio_vnet_hdr_decode(const uint8_t *b, struct netio_vnet_hdr *h);
void netio_vnet_hdr_encode(const struct netio_vnet_hdr *h, uint8_t *b);

/* Why netio_tso_parse() or netio_tso_segment() refused a packet. Negative and
 * below -4095, so they never collide with a -errno; netio_tso_strerror()
 * names both. */
enum netio_tso_error {
	NETIO_TSO_E_GSO_TYPE = -6001,	/* gso_type not NONE, TCPV4 or TCPV6 */
	NETIO_TSO_E_GSO_SIZE = -6002,	/* a super-packet with gso_size 0 */
	NETIO_TSO_E_HDR_LEN = -6003,	/* hdr_len longer than the packet */
	NETIO_TSO_E_CSUM = -6004,	/* csum_start/csum_offset outside the packet, or not
					 * at the TCP checksum of a super-packet */
	NETIO_TSO_E_SHORT = -6005,	/* IP or TCP headers longer than the packet */
	NETIO_TSO_E_IP = -6006,		/* not the IP version of gso_type, IHL < 5, not TCP */
	NETIO_TSO_E_IP_LEN = -6007,	/* IP total/payload length is not the packet's */
	NETIO_TSO_E_FRAG = -6008,	/* an IPv4 fragment */
	NETIO_TSO_E_IP6_EXT = -6009,	/* an IPv6 routing or fragment header, or too many */
	NETIO_TSO_E_TCP = -6010,	/* TCP data offset below 5 */
	NETIO_TSO_E_NOSPACE = -6011,	/* a packet longer than the buffer given for it */
};
const char *netio_tso_strerror(int err);

/* one read, checked by netio_tso_parse(); points into the read */
struct netio_tso {
	const uint8_t *pkt;
	size_t len;
	size_t mss;		/* payload bytes per segment; 0: the read is one packet */
	size_t l4;		/* TCP header (super-packets) */
	size_t hlen;		/* IP and TCP headers, copied into every segment */
	bool csum;		/* one packet with a partial checksum: */
	size_t csum_start;	/* where the sum starts */
	size_t csum_at;		/* and where it goes */
	int nsegs;		/* packets the read makes; 0 when refused */
	uint8_t ipv;		/* 4 or 6 (super-packets) */
};

/* Checks the read (h, and pkt of len bytes, which must stay untouched while
 * out is used): the number of packets it makes (>= 1), or a netio_tso_error
 * (and out->nsegs 0). */
int netio_tso_parse(const struct netio_vnet_hdr *h, const uint8_t *pkt, size_t len, struct netio_tso *out);

/* Writes packet i (0 <= i < nsegs) of t to dst, which holds cap bytes: an
 * ordinary IP packet with every checksum complete. For a super-packet: the
 * headers of the read, with the IPv4 total length, ID (+i) and header
 * checksum or the IPv6 payload length, the TCP sequence number (+i * mss),
 * FIN and PSH only on the last segment and CWR only on the first, and the
 * TCP checksum over the pseudo-header. Returns the length, or
 * NETIO_TSO_E_NOSPACE (or -EINVAL for an i out of range). */
int netio_tso_segment(const struct netio_tso *t, int i, uint8_t *dst, size_t cap);

/* The writes for a batch of packets. A run is TCP segments of one flow
 * (addresses and ports), each in sequence after the one before, with flags
 * ACK (and PSH on the last only), all but the last with the same payload
 * length and the last with no more, IPv4 without options or IPv6 without
 * extension headers, every checksum valid, at most 65535 bytes together,
 * and all with the same IP fields (IPv4 TOS, flags, TTL, and IDs +1 apart
 * unless DF is set; IPv6 class, label, hop limit) and the same ACK number,
 * reserved bits, window, urgent pointer and TCP options: so that cutting
 * the super-packet (netio_tso_segment, or the kernel) gives them back.
 * Anything else (SYN, FIN, RST, URG, ECE, CWR, no payload, other protocols,
 * a bad checksum) is a write of its own, left for the kernel to judge.
 * Packets of one flow stay in order; flows may pass one another. */
struct netio_gro {
	int nwrites;
	int first[NETIO_BATCH_MAX];	/* the first packet of each write, in write order */
	int next[NETIO_BATCH_MAX];	/* the packet after pkts[i] in its write, or -1 */
	int count[NETIO_BATCH_MAX];	/* packets in each write */
};
/* n is at most NETIO_BATCH_MAX (more are left out) */
void netio_gro_plan(struct netio_gro *g, const struct netio_pkt *pkts, int n);

/* The largest head netio_gro_head() writes: IPv6 and a TCP header with 40
 * bytes of options. */
#define NETIO_GRO_HEAD_MAX (40 + 60)
/* For write w of more than one packet: the virtio_net_hdr and the IP and TCP
 * headers of the super-packet (those of its first packet, with the lengths,
 * the IPv4 header checksum, PSH of the last packet, and the TCP checksum field
 * holding the pseudo-header sum, as a partial checksum wants). Returns the
 * headers' length L: the write is hdr, head[0..L), then bytes L.. of every
 * packet of the run in order. */
size_t netio_gro_head(const struct netio_gro *g, const struct netio_pkt *pkts, int w, struct netio_vnet_hdr *h,
		      uint8_t *head);

#endif
