/* netio_tso: cutting TCP super-packets read from a TUN with offloads,
 * completing partial checksums, refusing malformed reads, and coalescing
 * writes; then the same through a real TUN in a namespace of the test's own.
 * Every checksum is checked with the test's own routine (RFC 1071, summed a
 * big-endian word at a time), not with the one under test. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netio.h"
#include "netio_tso.h"

/* ---- the test's own checksum ------------------------------------------------ */

static uint32_t ref_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* the pseudo-header of the IPv4 or IPv6 packet ip, for l4len bytes of proto */
static uint32_t ref_pseudo(const uint8_t *ip, size_t l4len, uint8_t proto)
{
	uint32_t sum = ip[0] >> 4 == 4 ? ref_add(0, ip + 12, 8) : ref_add(0, ip + 8, 32);
	return sum + proto + (uint32_t)l4len;
}

static bool ref_ip4_ok(const uint8_t *ip)
{
	return ref_fold(ref_add(0, ip, (size_t)(ip[0] & 15) * 4)) == 0xffff;
}

static bool ref_l4_ok(const uint8_t *ip, size_t len, size_t l4, uint8_t proto)
{
	return ref_fold(ref_add(ref_pseudo(ip, len - l4, proto), ip + l4, len - l4)) == 0xffff;
}

static void ref_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t ref_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t ref_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- packets ---------------------------------------------------------------- */

enum { F_FIN = 1, F_SYN = 2, F_RST = 4, F_PSH = 8, F_ACK = 16, F_URG = 32, F_ECE = 64, F_CWR = 128 };

struct spec {
	uint8_t ipv;		/* 4 or 6 */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	bool ts;		/* NOP NOP timestamps (12 bytes of options) */
	uint32_t tsval;
	size_t payload;
	uint8_t fill;		/* payload byte i is fill + i */
	uint16_t id;
	bool df;
	uint8_t ttl;
	uint8_t tos;
	bool ip4opt;		/* 4 bytes of IPv4 options (NOPs) */
	uint8_t ip6ext;		/* an 8-byte IPv6 extension header of this type before TCP (0: none) */
	uint8_t proto;		/* 0: TCP */
};

static const struct spec base4 = {
	.ipv = 4, .sport = 40000, .dport = 5201, .seq = 0xfffff000u, .ack = 777, .flags = F_ACK,
	.win = 512, .ts = true, .tsval = 99, .payload = 1000, .fill = 1, .id = 0xfffe, .ttl = 64,
};

/* writes the packet of s into b, its checksums right; its length */
static size_t build(uint8_t *b, const struct spec *s)
{
	size_t l3 = s->ipv == 4 ? (s->ip4opt ? 24 : 20) : 40 + (s->ip6ext ? 8 : 0);
	size_t thl = 20 + (s->ts ? 12 : 0), len = l3 + thl + s->payload;
	uint8_t proto = s->proto ? s->proto : IPPROTO_TCP;
	uint8_t *t = b + l3;

	memset(b, 0, l3 + thl);
	if (s->ipv == 4) {
		b[0] = s->ip4opt ? 0x46 : 0x45;
		b[1] = s->tos;
		ref_put16(b + 2, (uint16_t)len);
		ref_put16(b + 4, s->id);
		ref_put16(b + 6, s->df ? 0x4000 : 0);
		b[8] = s->ttl;
		b[9] = proto;
		memcpy(b + 12, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
		if (s->ip4opt)
			memset(b + 20, 1, 4);
		ref_put16(b + 10, (uint16_t)~ref_fold(ref_add(0, b, l3)));
	} else {
		b[0] = 0x60;
		b[1] = 0x02;	/* a traffic class and flow label to keep */
		b[3] = 0x34;
		ref_put16(b + 4, (uint16_t)(len - 40));
		b[6] = s->ip6ext ? s->ip6ext : proto;
		b[7] = s->ttl;
		b[8] = 0xfd;
		b[23] = 1;
		b[24] = 0xfd;
		b[39] = 2;
		if (s->ip6ext) {
			b[40] = proto;
			b[41] = 0;
			b[42] = 1;	/* PadN, 4 bytes */
			b[43] = 4;
		}
	}
	ref_put16(t, s->sport);
	ref_put16(t + 2, s->dport);
	t[4] = (uint8_t)(s->seq >> 24);
	t[5] = (uint8_t)(s->seq >> 16);
	t[6] = (uint8_t)(s->seq >> 8);
	t[7] = (uint8_t)s->seq;
	t[8] = (uint8_t)(s->ack >> 24);
	t[9] = (uint8_t)(s->ack >> 16);
	t[10] = (uint8_t)(s->ack >> 8);
	t[11] = (uint8_t)s->ack;
	t[12] = (uint8_t)(thl / 4 << 4);
	t[13] = s->flags;
	ref_put16(t + 14, s->win);
	if (s->ts) {
		t[20] = 1;
		t[21] = 1;
		t[22] = 8;
		t[23] = 10;
		t[24] = (uint8_t)(s->tsval >> 24);
		t[27] = (uint8_t)s->tsval;
	}
	for (size_t i = 0; i < s->payload; i++)
		t[thl + i] = (uint8_t)(s->fill + i);
	ref_put16(t + 16, (uint16_t)~ref_fold(ref_add(ref_pseudo(b, len - l3, proto), t, len - l3)));
	return len;
}

static void vnet_tso(struct netio_vnet_hdr *h, uint8_t type, size_t l4, size_t hlen, uint16_t mss)
{
	*h = (struct netio_vnet_hdr){ .flags = NETIO_VNET_F_NEEDS_CSUM, .gso_type = type,
				      .hdr_len = (uint16_t)hlen, .gso_size = mss,
				      .csum_start = (uint16_t)l4, .csum_offset = 16 };
}

/* ---- read side: segmentation ------------------------------------------------ */

/* A super-packet of 3.5 segments (mss 1000, 3500 bytes of payload), the
 * sequence number wrapping inside it, flags CWR|PSH|FIN|ACK: every segment
 * checked field by field. */
static void check_super(const struct spec *s, uint8_t type)
{
	static uint8_t pkt[4096], seg[4][2048];
	const size_t mss = 1000;
	struct spec sp = *s;
	struct netio_vnet_hdr h;
	struct netio_tso t;
	size_t l4, hlen, len;

	sp.payload = 3500;
	sp.flags = F_CWR | F_PSH | F_FIN | F_ACK;
	len = build(pkt, &sp);
	l4 = sp.ipv == 4 ? 20 : 40 + (sp.ip6ext ? 8 : 0);
	hlen = l4 + 32;
	/* what the kernel leaves in the checksum field does not matter */
	memset(pkt + l4 + 16, 0xab, 2);
	vnet_tso(&h, type, l4, hlen, (uint16_t)mss);
	cr_assert_eq(netio_tso_parse(&h, pkt, len, &t), 4);
	for (int i = 0; i < 4; i++) {
		size_t plen = i < 3 ? mss : 500;
		int n = netio_tso_segment(&t, i, seg[i], sizeof(seg[i]));
		const uint8_t *tcp = seg[i] + l4;
		uint8_t want = F_ACK | (i == 0 ? F_CWR : 0) | (i == 3 ? F_PSH | F_FIN : 0);

		cr_assert_eq(n, (int)(hlen + plen), "segment %d: %d bytes", i, n);
		if (sp.ipv == 4) {
			cr_expect_eq(ref_get16(seg[i] + 2), n, "segment %d: total length", i);
			cr_expect_eq(ref_get16(seg[i] + 4), (uint16_t)(0xfffe + i), "segment %d: IP ID", i);
			cr_expect(ref_ip4_ok(seg[i]), "segment %d: IP header checksum", i);
		} else {
			cr_expect_eq(ref_get16(seg[i] + 4), n - 40, "segment %d: payload length", i);
			cr_expect(!memcmp(seg[i], pkt, 4), "segment %d: class and label kept", i);
			cr_expect(!memcmp(seg[i] + 40, pkt + 40, l4 - 40), "segment %d: extension header kept", i);
		}
		cr_expect_eq(ref_get32(tcp + 4), (uint32_t)(0xfffff000u + i * mss), "segment %d: seq", i);
		cr_expect_eq(ref_get32(tcp + 8), 777, "segment %d: ack", i);
		cr_expect_eq(tcp[13], want, "segment %d: flags %#x, want %#x", i, tcp[13], want);
		cr_expect(!memcmp(tcp + 20, pkt + l4 + 20, 12), "segment %d: options", i);
		cr_expect(ref_l4_ok(seg[i], (size_t)n, l4, IPPROTO_TCP), "segment %d: TCP checksum", i);
		cr_expect(!memcmp(seg[i] + hlen, pkt + hlen + (size_t)i * mss, plen), "segment %d: payload", i);
	}
	cr_expect_eq(netio_tso_segment(&t, 4, seg[0], sizeof(seg[0])), -EINVAL);
	cr_expect_eq(netio_tso_segment(&t, 0, seg[0], hlen + mss - 1), NETIO_TSO_E_NOSPACE);
}

Test(tso, ipv4_super_packet_cut_in_three_and_a_half)
{
	check_super(&base4, NETIO_VNET_GSO_TCPV4);
}

Test(tso, ipv6_super_packet_cut_in_three_and_a_half)
{
	struct spec s = base4;
	s.ipv = 6;
	check_super(&s, NETIO_VNET_GSO_TCPV6);
}

Test(tso, ipv6_destination_options_copied_into_every_segment)
{
	struct spec s = base4;
	s.ipv = 6;
	s.ip6ext = 60;
	check_super(&s, NETIO_VNET_GSO_TCPV6 | NETIO_VNET_GSO_ECN);
}

Test(tso, super_packet_no_larger_than_one_segment)
{
	uint8_t pkt[2048], seg[2048];
	struct netio_vnet_hdr h;
	struct netio_tso t;
	struct spec s = base4;
	size_t len;

	s.flags = F_ACK | F_PSH;
	len = build(pkt, &s);
	vnet_tso(&h, NETIO_VNET_GSO_TCPV4, 20, 52, 1380);
	cr_assert_eq(netio_tso_parse(&h, pkt, len, &t), 1);
	cr_assert_eq(netio_tso_segment(&t, 0, seg, sizeof(seg)), (int)len);
	cr_expect(!memcmp(seg, pkt, len), "one segment is the packet itself");
}

/* ---- read side: partial checksums ----------------------------------------------- */

Test(tso, partial_checksums_completed)
{
	uint8_t pkt[2048], out[2048];
	struct netio_vnet_hdr h = { .flags = NETIO_VNET_F_NEEDS_CSUM };
	struct netio_tso t;
	struct spec s = base4;
	size_t len;

	/* UDP over IPv4: the field holds the pseudo-header's sum, as the
	 * kernel leaves it */
	len = 20 + 8 + 37;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x45;
	ref_put16(pkt + 2, (uint16_t)len);
	pkt[8] = 64;
	pkt[9] = IPPROTO_UDP;
	memcpy(pkt + 12, (uint8_t[]){ 192, 0, 2, 1, 198, 51, 100, 7 }, 8);
	ref_put16(pkt + 10, (uint16_t)~ref_fold(ref_add(0, pkt, 20)));
	ref_put16(pkt + 20, 1234);
	ref_put16(pkt + 22, 53);
	ref_put16(pkt + 24, (uint16_t)(len - 20));
	for (size_t i = 28; i < len; i++)
		pkt[i] = (uint8_t)(i * 13);
	ref_put16(pkt + 26, ref_fold(ref_pseudo(pkt, len - 20, IPPROTO_UDP)));
	cr_assert(!ref_l4_ok(pkt, len, 20, IPPROTO_UDP), "partial: not valid yet");
	h.csum_start = 20;
	h.csum_offset = 6;
	cr_assert_eq(netio_tso_parse(&h, pkt, len, &t), 1);
	cr_assert_eq(netio_tso_segment(&t, 0, out, sizeof(out)), (int)len);
	cr_expect(ref_l4_ok(out, len, 20, IPPROTO_UDP), "UDP checksum completed");
	cr_expect(!memcmp(out, pkt, 26) && !memcmp(out + 28, pkt + 28, len - 28), "nothing else changed");

	/* TCP over IPv6 (an odd length) */
	s.ipv = 6;
	s.payload = 333;
	len = build(pkt, &s);
	ref_put16(pkt + 56, ref_fold(ref_pseudo(pkt, len - 40, IPPROTO_TCP)));
	h.csum_start = 40;
	h.csum_offset = 16;
	cr_assert_eq(netio_tso_parse(&h, pkt, len, &t), 1);
	cr_assert_eq(netio_tso_segment(&t, 0, out, sizeof(out)), (int)len);
	cr_expect(ref_l4_ok(out, len, 40, IPPROTO_TCP), "TCP checksum completed");

	/* without NEEDS_CSUM the packet is left as it is */
	h = (struct netio_vnet_hdr){ 0 };
	memset(pkt + 56, 0x5a, 2);
	cr_assert_eq(netio_tso_parse(&h, pkt, len, &t), 1);
	cr_assert_eq(netio_tso_segment(&t, 0, out, sizeof(out)), (int)len);
	cr_expect(!memcmp(out, pkt, len));
	cr_expect_eq(netio_tso_segment(&t, 0, out, len - 1), NETIO_TSO_E_NOSPACE);
}

/* ---- read side: what is refused ----------------------------------------------- */

enum mut {
	M_NONE, M_GSO_UDP, M_GSO_USO, M_GSO_SIZE0, M_HDR_LEN, M_CSUM_PAST, M_CSUM_OFF, M_CSUM_START, M_TRUNC_TCP,
	M_TRUNC_IP, M_V6_AS_V4, M_TOT_LEN, M_FRAG, M_MF, M_V6_ROUTING, M_V6_FRAGMENT, M_DOFF, M_UDP_PROTO, M_IHL,
	M_V6_PLEN, M_OPTS_PAST,
};

Test(tso, malformed_reads_refused_each_with_its_error)
{
	static const struct {
		enum mut m;
		int err;
		const char *what;
	} cases[] = {
		{ M_NONE, 3, "the valid packet (3 segments)" },
		{ M_GSO_UDP, NETIO_TSO_E_GSO_TYPE, "gso_type UDP (UFO)" },
		{ M_GSO_USO, NETIO_TSO_E_GSO_TYPE, "gso_type UDP_L4 (USO, not asked for)" },
		{ M_GSO_SIZE0, NETIO_TSO_E_GSO_SIZE, "gso_size 0" },
		{ M_HDR_LEN, NETIO_TSO_E_HDR_LEN, "hdr_len past the packet" },
		{ M_CSUM_PAST, NETIO_TSO_E_CSUM, "csum_start past the packet" },
		{ M_CSUM_OFF, NETIO_TSO_E_CSUM, "csum_offset not the TCP checksum" },
		{ M_CSUM_START, NETIO_TSO_E_CSUM, "csum_start not the TCP header" },
		{ M_TRUNC_TCP, NETIO_TSO_E_SHORT, "TCP header cut short" },
		{ M_TRUNC_IP, NETIO_TSO_E_SHORT, "IPv4 header cut short" },
		{ M_OPTS_PAST, NETIO_TSO_E_SHORT, "TCP options past the packet" },
		{ M_V6_AS_V4, NETIO_TSO_E_IP, "IPv6 packet with gso_type TCPV4" },
		{ M_UDP_PROTO, NETIO_TSO_E_IP, "UDP with gso_type TCPV4" },
		{ M_IHL, NETIO_TSO_E_IP, "IHL 4" },
		{ M_TOT_LEN, NETIO_TSO_E_IP_LEN, "IPv4 total length not the packet's" },
		{ M_V6_PLEN, NETIO_TSO_E_IP_LEN, "IPv6 payload length not the packet's" },
		{ M_FRAG, NETIO_TSO_E_FRAG, "IPv4 fragment offset" },
		{ M_MF, NETIO_TSO_E_FRAG, "IPv4 more fragments" },
		{ M_V6_ROUTING, NETIO_TSO_E_IP6_EXT, "IPv6 routing header" },
		{ M_V6_FRAGMENT, NETIO_TSO_E_IP6_EXT, "IPv6 fragment header" },
		{ M_DOFF, NETIO_TSO_E_TCP, "TCP data offset 4" },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint8_t pkt[4096];
		struct spec s = base4;
		struct netio_vnet_hdr h;
		struct netio_tso t;
		size_t len, l4 = 20;
		uint8_t type = NETIO_VNET_GSO_TCPV4;

		s.payload = 2500;
		if (cases[c].m == M_V6_AS_V4 || cases[c].m == M_V6_ROUTING || cases[c].m == M_V6_FRAGMENT ||
		    cases[c].m == M_V6_PLEN) {
			s.ipv = 6;
			l4 = 40;
			type = cases[c].m == M_V6_AS_V4 ? NETIO_VNET_GSO_TCPV4 : NETIO_VNET_GSO_TCPV6;
			s.ip6ext = cases[c].m == M_V6_ROUTING ? 43 : cases[c].m == M_V6_FRAGMENT ? 44 : 0;
			l4 += s.ip6ext ? 8 : 0;
		}
		if (cases[c].m == M_UDP_PROTO)
			s.proto = IPPROTO_UDP;
		len = build(pkt, &s);
		vnet_tso(&h, type, l4, l4 + 32, 1000);
		switch (cases[c].m) {
		case M_GSO_UDP: h.gso_type = NETIO_VNET_GSO_UDP; break;
		case M_GSO_USO: h.gso_type = NETIO_VNET_GSO_UDP_L4; break;
		case M_GSO_SIZE0: h.gso_size = 0; break;
		case M_HDR_LEN: h.hdr_len = (uint16_t)(len + 1); break;
		case M_CSUM_PAST: h.csum_start = (uint16_t)(len - 1); break;
		case M_CSUM_OFF: h.csum_offset = 6; break;
		case M_CSUM_START: h.csum_start = 24; h.csum_offset = 12; break;
		case M_TRUNC_TCP: len = 30; ref_put16(pkt + 2, 30); h.hdr_len = 0; h.flags = 0; break;
		case M_TRUNC_IP: len = 12; h.hdr_len = 0; h.flags = 0; break;
		case M_OPTS_PAST: len = 45; ref_put16(pkt + 2, 45); h.hdr_len = 0; h.flags = 0; break;
		case M_TOT_LEN: ref_put16(pkt + 2, (uint16_t)(len - 1)); break;
		case M_V6_PLEN: ref_put16(pkt + 4, (uint16_t)(len - 39)); break;
		case M_FRAG: pkt[7] = 1; break;
		case M_MF: pkt[6] = 0x20; break;
		case M_DOFF: pkt[l4 + 12] = 0x40; break;
		case M_IHL: pkt[0] = 0x44; break;
		default: break;
		}
		cr_expect_eq(netio_tso_parse(&h, pkt, len, &t), cases[c].err, "%s: %d", cases[c].what,
			     netio_tso_parse(&h, pkt, len, &t));
	}
	/* an empty read, and a non-GSO packet whose checksum field is past its end */
	struct netio_vnet_hdr h = { .flags = NETIO_VNET_F_NEEDS_CSUM, .csum_start = 10, .csum_offset = 16 };
	struct netio_tso t;
	uint8_t small[20] = { 0x45 };
	cr_expect_eq(netio_tso_parse(&(struct netio_vnet_hdr){ 0 }, small, 0, &t), NETIO_TSO_E_SHORT);
	cr_expect_eq(netio_tso_parse(&h, small, sizeof(small), &t), NETIO_TSO_E_CSUM);
	/* every error has a name of its own */
	for (int a = NETIO_TSO_E_NOSPACE; a <= NETIO_TSO_E_GSO_TYPE; a++)
		for (int b = a + 1; b <= NETIO_TSO_E_GSO_TYPE; b++)
			cr_expect_str_neq(netio_tso_strerror(a), netio_tso_strerror(b));
}

/* ---- write side: coalescing ------------------------------------------------------- */

#define MAXP 64
static uint8_t wbuf[MAXP][2048];
static struct netio_pkt wp[MAXP];

static void put_pkt(int i, const struct spec *s)
{
	wp[i] = (struct netio_pkt){ .data = wbuf[i], .cap = sizeof(wbuf[i]) };
	wp[i].len = build(wbuf[i], s);
}

/* packet i of a stream of one flow: 1000 bytes each from seq base, IDs +1 */
static struct spec stream(const struct spec *b, int i)
{
	struct spec s = *b;
	s.seq = b->seq + (uint32_t)(i * 1000);
	s.id = (uint16_t)(b->id + i);
	s.fill = (uint8_t)(b->fill + i);
	return s;
}

/* the writes as "a,b|c|d" (packet indices, runs joined by commas) */
static void plan_string(const struct netio_gro *g, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (int w = 0; w < g->nwrites; w++) {
		int k = 0;
		for (int j = g->first[w]; j >= 0; j = g->next[j], k++)
			o += (size_t)snprintf(out + o, cap - o, "%s%d", k ? "," : (w ? "|" : ""), j);
		cr_assert_eq(k, g->count[w]);
	}
}

/* The super-packet of write w, cut again by netio_tso, gives back the packets
 * it was made of, byte for byte; and its partial checksum completes right. */
static void check_round_trip(const struct netio_gro *g, int w)
{
	static uint8_t super[70000], seg[2048];
	struct netio_vnet_hdr h, h2;
	uint8_t head[NETIO_GRO_HEAD_MAX], vh[NETIO_VNET_HDR_LEN];
	size_t hlen = netio_gro_head(g, wp, w, &h, head), len = hlen;
	struct netio_tso t;
	int i = 0;

	netio_vnet_hdr_encode(&h, vh);
	netio_vnet_hdr_decode(vh, &h2);
	cr_expect(!memcmp(&h, &h2, sizeof(h)), "header encodes and decodes");
	memcpy(super, head, hlen);
	for (int j = g->first[w]; j >= 0; j = g->next[j]) {
		memcpy(super + len, wp[j].data + hlen, wp[j].len - hlen);
		len += wp[j].len - hlen;
	}
	cr_expect_eq(h.flags, NETIO_VNET_F_NEEDS_CSUM);
	cr_expect_eq(h.hdr_len, hlen);
	cr_expect_eq(h.gso_size, wp[g->first[w]].len - hlen);
	if (super[0] >> 4 == 4) {
		cr_expect_eq(h.gso_type, NETIO_VNET_GSO_TCPV4);
		cr_expect_eq(ref_get16(super + 2), len);
		cr_expect(ref_ip4_ok(super), "super-packet IP header checksum");
	} else {
		cr_expect_eq(h.gso_type, NETIO_VNET_GSO_TCPV6);
		cr_expect_eq(ref_get16(super + 4), len - 40);
	}
	/* the field holds the pseudo-header sum: summing from csum_start on
	 * and complementing gives the super-packet's valid checksum */
	uint16_t c = (uint16_t)~ref_fold(ref_add(0, super + h.csum_start, len - h.csum_start));
	ref_put16(super + h.csum_start + h.csum_offset, c);
	cr_expect(ref_l4_ok(super, len, h.csum_start, IPPROTO_TCP), "partial checksum completes");

	cr_assert_eq(netio_tso_parse(&h, super, len, &t), g->count[w]);
	for (int j = g->first[w]; j >= 0; j = g->next[j], i++) {
		int n = netio_tso_segment(&t, i, seg, sizeof(seg));
		cr_assert_eq(n, (int)wp[j].len, "packet %d: length", j);
		cr_expect(!memcmp(seg, wp[j].data, wp[j].len), "packet %d comes back unchanged", j);
	}
}

Test(gro, one_flow_in_order_becomes_one_super_packet)
{
	static const uint8_t ipvs[] = { 4, 6 };
	for (size_t v = 0; v < 2; v++) {
		struct netio_gro g;
		char plan[256];
		struct spec b = base4, s;

		b.ipv = ipvs[v];
		for (int i = 0; i < 4; i++) {
			s = stream(&b, i);
			if (i == 3) {
				s.payload = 400;
				s.flags |= F_PSH;
			}
			put_pkt(i, &s);
		}
		netio_gro_plan(&g, wp, 4);
		plan_string(&g, plan, sizeof(plan));
		cr_expect_str_eq(plan, "0,1,2,3", "IPv%d", ipvs[v]);
		check_round_trip(&g, 0);
	}
}

/* two packets of one stream, the second (or the first) changed: never one write */
enum change {
	C_GAP, C_RETRANSMIT, C_PORT, C_ACK, C_WIN, C_TSVAL, C_NO_TS, C_SYN, C_FIN, C_RST, C_URG, C_ECE, C_CWR,
	C_NO_ACK, C_PSH_FIRST, C_FIN_FIRST, C_PURE_ACK, C_LONGER, C_FIRST_EMPTY, C_IP4OPT, C_IP4OPT_FIRST, C_TTL,
	C_TOS, C_ID, C_DF, C_IPV6,
};

static void apply(enum change c, struct spec *first, struct spec *x)
{
	switch (c) {
	case C_GAP: x->seq += 1; break;
	case C_RETRANSMIT: x->seq = first->seq; break;
	case C_PORT: x->sport++; break;
	case C_ACK: x->ack++; break;
	case C_WIN: x->win++; break;
	case C_TSVAL: x->tsval++; break;
	case C_NO_TS: x->ts = false; break;
	case C_SYN: x->flags |= F_SYN; break;
	case C_FIN: x->flags |= F_FIN; break;
	case C_RST: x->flags |= F_RST; break;
	case C_URG: x->flags |= F_URG; break;
	case C_ECE: x->flags |= F_ECE; break;
	case C_CWR: x->flags |= F_CWR; break;
	case C_NO_ACK: x->flags = 0; break;
	case C_PSH_FIRST: first->flags |= F_PSH; break;
	case C_FIN_FIRST: first->flags |= F_FIN; break;
	case C_PURE_ACK: x->payload = 0; break;
	case C_LONGER: x->payload = 1001; break;
	case C_FIRST_EMPTY: first->payload = 0; x->seq = first->seq; break;
	case C_IP4OPT: x->ip4opt = true; break;
	case C_IP4OPT_FIRST: first->ip4opt = true; break;
	case C_TTL: x->ttl++; break;
	case C_TOS: x->tos = 4; break;
	case C_ID: x->id += 5; break;
	case C_DF: x->df = true; break;
	case C_IPV6: x->ipv = 6; break;
	}
}

Test(gro, never_merged)
{
	static const struct {
		enum change c;
		const char *what;
	} cases[] = {
		{ C_GAP, "a gap in sequence" }, { C_RETRANSMIT, "a retransmission" }, { C_PORT, "another port" },
		{ C_ACK, "another ACK number" }, { C_WIN, "another window" }, { C_TSVAL, "another timestamp" },
		{ C_NO_TS, "no timestamp option" }, { C_SYN, "SYN" }, { C_FIN, "FIN" }, { C_RST, "RST" },
		{ C_URG, "URG" }, { C_ECE, "ECE" }, { C_CWR, "CWR" }, { C_NO_ACK, "no ACK flag" },
		{ C_PSH_FIRST, "PSH on the first" }, { C_FIN_FIRST, "FIN on the first" },
		{ C_PURE_ACK, "no payload (a pure ACK)" }, { C_LONGER, "second longer than the first" },
		{ C_FIRST_EMPTY, "first without payload" }, { C_IP4OPT, "IPv4 options" },
		{ C_IP4OPT_FIRST, "IPv4 options on the first" }, { C_TTL, "another TTL" }, { C_TOS, "another TOS" },
		{ C_ID, "IPv4 IDs not consecutive, no DF" }, { C_DF, "DF on one only" }, { C_IPV6, "IPv6 and IPv4" },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct spec first = stream(&base4, 0), second = stream(&base4, 1);
		struct netio_gro g;
		char plan[64];

		apply(cases[c].c, &first, &second);
		put_pkt(0, &first);
		put_pkt(1, &second);
		netio_gro_plan(&g, wp, 2);
		plan_string(&g, plan, sizeof(plan));
		cr_expect_str_eq(plan, "0|1", "%s: %s", cases[c].what, plan);
	}
	/* and unchanged, they are */
	struct spec first = stream(&base4, 0), second = stream(&base4, 1);
	struct netio_gro g;
	char plan[64];
	put_pkt(0, &first);
	put_pkt(1, &second);
	netio_gro_plan(&g, wp, 2);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0,1");
}

Test(gro, broken_checksums_and_extension_headers_go_alone)
{
	struct spec a = stream(&base4, 0), b = stream(&base4, 1);
	struct netio_gro g;
	char plan[64];

	put_pkt(0, &a);
	put_pkt(1, &b);
	wbuf[1][20 + 16] ^= 1;	/* TCP checksum */
	netio_gro_plan(&g, wp, 2);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0|1", "bad TCP checksum: %s", plan);

	put_pkt(1, &b);
	wbuf[1][10] ^= 1;	/* IPv4 header checksum */
	netio_gro_plan(&g, wp, 2);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0|1", "bad IP checksum: %s", plan);

	a.ipv = b.ipv = 6;
	b.ip6ext = 60;
	put_pkt(0, &a);
	put_pkt(1, &b);
	netio_gro_plan(&g, wp, 2);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0|1", "IPv6 extension header: %s", plan);

	/* with DF, IPv4 IDs need not follow (the kernel's fixed-ID case) */
	a = stream(&base4, 0);
	b = stream(&base4, 1);
	a.df = b.df = true;
	b.id = 3;
	put_pkt(0, &a);
	put_pkt(1, &b);
	netio_gro_plan(&g, wp, 2);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0,1", "DF, IDs apart: %s", plan);
}

Test(gro, flows_interleaved_and_order_kept_within_each)
{
	struct spec a = base4, b = base4, s;
	struct netio_gro g;
	char plan[256];
	int n = 0;

	b.sport = 40001;
	b.seq = 5;
	/* A0 B0 A1 B1 udp A2 ackA A3 A4 B2 */
	put_pkt(n++, (s = stream(&a, 0), &s));
	put_pkt(n++, (s = stream(&b, 0), &s));
	put_pkt(n++, (s = stream(&a, 1), &s));
	put_pkt(n++, (s = stream(&b, 1), &s));
	s = stream(&a, 9);
	s.proto = IPPROTO_UDP;
	put_pkt(n++, &s);
	put_pkt(n++, (s = stream(&a, 2), &s));
	s = stream(&a, 3);
	s.payload = 0;	/* a pure ACK of flow A: A's run ends before it */
	put_pkt(n++, &s);
	put_pkt(n++, (s = stream(&a, 3), &s));
	put_pkt(n++, (s = stream(&a, 4), &s));
	put_pkt(n++, (s = stream(&b, 2), &s));
	netio_gro_plan(&g, wp, n);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0,2,5|1,3,9|4|6|7,8", "%s", plan);
	check_round_trip(&g, 0);
	check_round_trip(&g, 1);
	check_round_trip(&g, 4);

	/* something that may be TCP but shows no ports (an IPv4 fragment) ends
	 * every run */
	put_pkt(0, (s = stream(&a, 0), &s));
	s = stream(&a, 1);
	put_pkt(1, &s);
	wbuf[1][6] = 0x20;	/* MF */
	put_pkt(2, (s = stream(&a, 1), &s));
	netio_gro_plan(&g, wp, 3);
	plan_string(&g, plan, sizeof(plan));
	cr_expect_str_eq(plan, "0|1|2", "fragment: %s", plan);
}

Test(gro, no_super_packet_beyond_64k)
{
	struct spec b = base4, s;
	struct netio_gro g;
	int n = 0;

	b.payload = 1368;
	for (n = 0; n < MAXP; n++) {
		s = b;
		s.seq = b.seq + (uint32_t)(n * 1368);
		s.id = (uint16_t)(b.id + n);
		put_pkt(n, &s);
	}
	netio_gro_plan(&g, wp, n);
	cr_assert_eq(g.nwrites, 2);
	for (int w = 0; w < g.nwrites; w++) {
		size_t total = 52 + (size_t)g.count[w] * 1368;
		cr_expect_leq(total, 65535, "write %d: %zu bytes", w, total);
		check_round_trip(&g, w);
	}
	cr_expect_eq(g.count[0], (65535 - 52) / 1368);
}

/* ---- through the kernel ------------------------------------------------------------- */

/*   socket 10.9.0.1 (kernel, nmtso0, MTU 1420) <-> TUN fd held by the test,
 *   which plays 10.9.0.2:80 with hand-made TCP. */
static struct netio *kio;
static struct netio_tun *ktun;
static uint8_t rbuf[NETIO_BATCH_MAX][2048];
static struct netio_pkt rpk[NETIO_BATCH_MAX];

/* the next IPv4 TCP packet from 10.9.0.1 the TUN gives (others skipped),
 * every checksum checked; its length, 0 after 2 s of nothing */
static size_t next_tcp(uint8_t *out)
{
	static int have, at;
	for (int tries = 0; tries < 40; tries++) {
		if (at < have) {
			struct netio_pkt *p = &rpk[at++];
			if (p->len < 40 || p->data[0] != 0x45 || p->data[9] != IPPROTO_TCP)
				continue;
			cr_assert_leq(p->len, 1420, "every packet read fits the MTU");
			cr_assert(ref_ip4_ok(p->data), "IP header checksum");
			cr_assert(ref_l4_ok(p->data, p->len, 20, IPPROTO_TCP), "TCP checksum");
			memcpy(out, p->data, p->len);
			return p->len;
		}
		struct pollfd pfd = { .fd = netio_tun_fd(kio, ktun), .events = POLLIN };
		if (!netio_tun_pending(kio, ktun) && poll(&pfd, 1, 50) == 0)
			continue;
		for (int i = 0; i < NETIO_BATCH_MAX; i++)
			rpk[i] = (struct netio_pkt){ .data = rbuf[i], .cap = sizeof(rbuf[i]) };
		have = netio_tun_read(kio, ktun, rpk, NETIO_BATCH_MAX);
		cr_assert_geq(have, 0);
		at = 0;
	}
	return 0;
}

static void kspec(struct spec *s, uint32_t seq, uint32_t ack, uint8_t flags, size_t payload)
{
	*s = (struct spec){ .ipv = 4, .sport = 80, .dport = 0, .seq = seq, .ack = ack, .flags = flags,
			    .win = 65535, .payload = payload, .fill = 7, .id = 1, .df = true, .ttl = 64 };
}

/* build() writes 10.0.0.1 -> 10.0.0.2; the test's packets go 10.9.0.2 -> 10.9.0.1 */
static size_t kbuild(uint8_t *b, const struct spec *s)
{
	size_t len = build(b, s);
	memcpy(b + 12, (uint8_t[]){ 10, 9, 0, 2, 10, 9, 0, 1 }, 8);
	memset(b + 10, 0, 2);
	ref_put16(b + 10, (uint16_t)~ref_fold(ref_add(0, b, 20)));
	memset(b + 36, 0, 2);
	ref_put16(b + 36, (uint16_t)~ref_fold(ref_add(ref_pseudo(b, len - 20, IPPROTO_TCP), b + 20, len - 20)));
	return len;
}

Test(tso, kernel_super_packets_cut_and_writes_coalesced_on_a_real_tun)
{
	uint8_t pkt[2048], syn_opts[4] = { 2, 4, 0x05, 0x64 };	/* MSS 1380 */
	struct netio_tun_stats st;
	union sockaddr_any dst;
	struct spec s;
	struct cidr c;
	size_t len;
	int fd;

	if (geteuid() != 0)
		cr_skip("needs root for a network namespace");
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(netio_linux_new(&kio), 0);
	cr_assert_eq(netio_tun_open_flags(kio, "nmtso0", NETIO_TUN_OFFLOAD, &ktun), 0);
	netio_tun_stats(kio, ktun, &st);
	cr_assert(st.offload, "this kernel takes the offloads");
	cr_assert_eq(cidr_parse("10.9.0.0/24", true, &c), 0);
	memcpy(c.addr, (uint8_t[]){ 10, 9, 0, 1 }, 4);
	cr_assert_eq(netio_addr_add(kio, "nmtso0", &c), 0);
	cr_assert_eq(netio_link_up(kio, "nmtso0", 1420), 0);

	/* a handshake by hand: SYN in, SYN-ACK (MSS 1380) out, ACK in */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(addr_parse("10.9.0.2:80", &dst), 0);
	connect(fd, &dst.sa, sizeof(dst.in));
	len = next_tcp(pkt);
	cr_assert(len && pkt[33] == F_SYN, "SYN");
	uint16_t port = ref_get16(pkt + 20);
	uint32_t iss = ref_get32(pkt + 24);
	kspec(&s, 1000, iss + 1, F_SYN | F_ACK, 0);
	s.dport = port;
	len = kbuild(pkt, &s);
	/* the MSS option: in place of the (absent) timestamps */
	pkt[32] = 6 << 4;
	memcpy(pkt + 40, syn_opts, 4);
	len = 44;
	ref_put16(pkt + 2, 44);
	memset(pkt + 10, 0, 2);
	ref_put16(pkt + 10, (uint16_t)~ref_fold(ref_add(0, pkt, 20)));
	memset(pkt + 36, 0, 2);
	ref_put16(pkt + 36, (uint16_t)~ref_fold(ref_add(ref_pseudo(pkt, 24, IPPROTO_TCP), pkt + 20, 24)));
	struct netio_pkt w = { .data = pkt, .len = len, .cap = sizeof(pkt) };
	cr_assert_eq(netio_tun_write(kio, ktun, &w, 1), 1);
	len = next_tcp(pkt);
	cr_assert(len && pkt[33] == F_ACK, "ACK of the SYN-ACK: len %zu flags %#x", len, pkt[33]);

	/* 12 KiB sent: the kernel hands them over as super-packets (TSO),
	 * netio cuts them into segments of at most 1380 bytes */
	static uint8_t data[12288];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	cr_assert_eq(send(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	size_t got = 0;
	while (got < sizeof(data) && (len = next_tcp(pkt)) > 0) {
		cr_assert_eq(ref_get32(pkt + 24), iss + 1 + got, "segments in order");
		cr_assert_leq(len - 40, 1380);
		cr_assert(!memcmp(pkt + 40, data + got, len - 40), "payload at %zu", got);
		got += len - 40;
	}
	cr_expect_eq(got, sizeof(data));
	netio_tun_stats(kio, ktun, &st);
	cr_expect_geq(st.rx_super, 1, "super-packets arrived: %llu", (unsigned long long)st.rx_super);
	cr_expect_eq(st.rx_bad, 0);

	/* the other way: 8 segments in one write batch, coalesced into one
	 * super-packet, arrive in the socket whole and in order */
	for (int i = 0; i < 8; i++) {
		kspec(&s, 1001 + (uint32_t)(i * 1000), iss + 1 + (uint32_t)got, F_ACK | (i == 7 ? F_PSH : 0), 1000);
		s.dport = port;
		s.fill = (uint8_t)(i * 1000 + 7);
		rpk[i] = (struct netio_pkt){ .data = rbuf[i], .cap = sizeof(rbuf[i]) };
		rpk[i].len = kbuild(rbuf[i], &s);
	}
	cr_assert_eq(netio_tun_write(kio, ktun, rpk, 8), 8);
	netio_tun_stats(kio, ktun, &st);
	cr_expect_eq(st.tx_super, 1, "one coalesced write");
	static uint8_t in[8000];
	size_t have = 0;
	for (int tries = 0; tries < 40 && have < sizeof(in); tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		poll(&pfd, 1, 50);
		ssize_t r = recv(fd, in + have, sizeof(in) - have, 0);
		if (r > 0)
			have += (size_t)r;
	}
	cr_assert_eq(have, sizeof(in));
	for (size_t i = 0; i < sizeof(in); i++)
		cr_assert_eq(in[i], (uint8_t)(7 + i), "byte %zu", i);
	close(fd);
	netio_tun_close(kio, ktun);
	netio_free(kio);
}
