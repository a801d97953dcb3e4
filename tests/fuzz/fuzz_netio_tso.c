/* libFuzzer target: what a TUN with offloads hands netio (netio_tso.h). The
 * input's first byte picks the side:
 *   even: a read, a virtio_net_hdr (10 bytes) and the packet; every packet
 *         netio_tso_parse() accepts is cut into buffers of a size the input
 *         picks, and each must be no longer than its buffer, a segment no
 *         longer than the headers and gso_size, and its TCP checksum valid;
 *   odd:  a write batch, packets prefixed by a 16-bit length and a control
 *         byte that may have the packet follow the one before (its headers
 *         copied, sequence and ID advanced), its IP length and checksums
 *         made right, so runs are within the fuzzer's reach; every run
 *         netio_gro_plan() makes is turned into its super-packet, which
 *         netio_tso must cut back into exactly the packets of the run (but
 *         for checksum fields, which may read 0xffff for 0, and for the IPv4
 *         IDs of DF packets, which may differ). A mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netio_tso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t seg[70000];
static uint8_t pkt[70000];

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* the folded sum of the TCP pseudo-header and segment of an IPv4/IPv6
 * packet with its TCP header at l4 */
static uint16_t tcp_sum(const uint8_t *ip, size_t len, size_t l4)
{
	uint32_t sum = 6 + (uint32_t)(len - l4);
	const uint8_t *a = ip[0] >> 4 == 4 ? ip + 12 : ip + 8;
	size_t alen = ip[0] >> 4 == 4 ? 8 : 32;

	for (size_t i = 0; i < alen; i += 2)
		sum += be16(a + i);
	for (size_t i = l4; i + 1 < len; i += 2)
		sum += be16(ip + i);
	if ((len - l4) & 1)
		sum += (uint32_t)ip[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static int tcp_ok(const uint8_t *ip, size_t len, size_t l4)
{
	return tcp_sum(ip, len, l4) == 0xffff;
}

static void read_side(const uint8_t *data, size_t size)
{
	struct netio_vnet_hdr h;
	struct netio_tso t;
	size_t cap;
	int n;

	if (size < NETIO_VNET_HDR_LEN + 2)
		return;
	/* a buffer size from the input: small ones reach NOSPACE */
	cap = (size_t)be16(data) + 1;
	netio_vnet_hdr_decode(data + 2, &h);
	memcpy(pkt, data + 2 + NETIO_VNET_HDR_LEN, size - 2 - NETIO_VNET_HDR_LEN);
	n = netio_tso_parse(&h, pkt, size - 2 - NETIO_VNET_HDR_LEN, &t);
	for (int i = 0; i < n; i++) {
		int len = netio_tso_segment(&t, i, seg, cap);
		if (len == NETIO_TSO_E_NOSPACE)
			break;
		if (len < 0 || (size_t)len > cap)
			abort();
		if (t.mss && ((size_t)len > t.hlen + t.mss || !tcp_ok(seg, (size_t)len, t.l4)))
			abort();
	}
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t l4_of(const uint8_t *p, size_t len)
{
	if (len >= 20 && p[0] >> 4 == 4)
		return (size_t)(p[0] & 15) * 4;
	return len >= 40 && p[0] >> 4 == 6 ? 40 : 0;
}

/* control byte c: 2 follow prev (headers copied, seq and ID advanced), 1 the
 * IP length, 4 the checksums */
static void shape(uint8_t *p, size_t len, const uint8_t *prev, size_t prev_len, uint8_t c)
{
	size_t l4 = l4_of(p, len), hl;

	if ((c & 2) && prev && (l4 = l4_of(prev, prev_len)) && l4 + 20 <= prev_len &&
	    (hl = l4 + (size_t)(prev[l4 + 12] >> 4) * 4) <= prev_len && hl <= len) {
		uint32_t seq = (uint32_t)prev[l4 + 4] << 24 | (uint32_t)prev[l4 + 5] << 16 |
			       (uint32_t)prev[l4 + 6] << 8 | prev[l4 + 7];
		memcpy(p, prev, hl);
		seq += (uint32_t)(prev_len - hl);
		p[l4 + 4] = (uint8_t)(seq >> 24);
		p[l4 + 5] = (uint8_t)(seq >> 16);
		p[l4 + 6] = (uint8_t)(seq >> 8);
		p[l4 + 7] = (uint8_t)seq;
		if (p[0] >> 4 == 4)
			put16(p + 4, be16(p + 4) + 1u);
	}
	l4 = l4_of(p, len);
	if (!l4)
		return;
	if (c & 1)
		put16(p + (p[0] >> 4 == 4 ? 2 : 4), (uint32_t)(p[0] >> 4 == 4 ? len : len - 40));
	if ((c & 4) && l4 <= len) {
		if (p[0] >> 4 == 4) {
			uint32_t sum = 0;
			put16(p + 10, 0);
			for (size_t i = 0; i + 1 < l4; i += 2)
				sum += be16(p + i);
			while (sum >> 16)
				sum = (sum & 0xffff) + (sum >> 16);
			put16(p + 10, ~sum & 0xffff);
		}
		if (l4 + 18 <= len) {
			put16(p + l4 + 16, 0);
			put16(p + l4 + 16, ~(uint32_t)tcp_sum(p, len, l4) & 0xffff);
		}
	}
}

static void write_side(const uint8_t *data, size_t size)
{
	static uint8_t bufs[NETIO_BATCH_MAX][2048];
	struct netio_pkt pkts[NETIO_BATCH_MAX];
	struct netio_gro g;
	int n = 0;

	while (n < NETIO_BATCH_MAX && size >= 3) {
		size_t len = be16(data) % sizeof(bufs[0]);
		uint8_t c = data[2];
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(bufs[n], data, len);
		shape(bufs[n], len, n ? bufs[n - 1] : NULL, n ? pkts[n - 1].len : 0, c);
		pkts[n] = (struct netio_pkt){ .data = bufs[n], .len = len, .cap = sizeof(bufs[n]) };
		n++;
		data += len;
		size -= len;
	}
	netio_gro_plan(&g, pkts, n);
	int seen = 0;
	for (int w = 0; w < g.nwrites; w++) {
		struct netio_vnet_hdr h;
		uint8_t head[NETIO_GRO_HEAD_MAX];
		struct netio_tso t;
		size_t hlen, len;
		int i = 0;

		seen += g.count[w];
		if (g.count[w] == 1)
			continue;
		hlen = netio_gro_head(&g, pkts, w, &h, head);
		memcpy(pkt, head, hlen);
		len = hlen;
		for (int j = g.first[w]; j >= 0; j = g.next[j]) {
			memcpy(pkt + len, pkts[j].data + hlen, pkts[j].len - hlen);
			len += pkts[j].len - hlen;
		}
		if (netio_tso_parse(&h, pkt, len, &t) != g.count[w])
			abort();
		for (int j = g.first[w]; j >= 0; j = g.next[j], i++) {
			const uint8_t *o = pkts[j].data;
			int k = netio_tso_segment(&t, i, seg, sizeof(seg));
			if (k != (int)pkts[j].len)
				abort();
			/* the checksum fields aside (and DF packets' IDs), byte for byte */
			memset(seg + t.l4 + 16, o[t.l4 + 16], 1);
			memset(seg + t.l4 + 17, o[t.l4 + 17], 1);
			if (t.ipv == 4) {
				memcpy(seg + 10, o + 10, 2);
				if (o[6] & 0x40)
					memcpy(seg + 4, o + 4, 2);
			}
			if (memcmp(seg, o, (size_t)k))
				abort();
		}
	}
	if (seen != n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1)
		write_side(data + 1, size - 1);
	else
		read_side(data + 1, size - 1);
	return 0;
}
