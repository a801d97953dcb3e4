/* netio_tso: TCP segmentation and checksum completion for reads from a TUN
 * with offloads, and the coalescing of writes (netio_tso.h). The checksum is
 * RFC 1071's: summed in the host's byte order and stored in it (RFC 1071
 * 2(B)), so no swaps. */
#include "netio_tso.h"

#include <errno.h>
#include <string.h>

#include "csum.h"

enum {
	IPPROTO_TCP_ = 6,
	IP6_HOPOPTS = 0,
	IP6_ROUTING = 43,
	IP6_FRAGMENT = 44,
	IP6_DSTOPTS = 60,
	IP6_EXT_MAX = 4,	/* more extension headers than this: refused */
	TCP_FIN = 0x01,
	TCP_SYN = 0x02,
	TCP_RST = 0x04,
	TCP_PSH = 0x08,
	TCP_ACK = 0x10,
	TCP_URG = 0x20,
	TCP_ECE = 0x40,
	TCP_CWR = 0x80,
	IP_DF = 0x4000,
	GRO_MAX_LEN = 65535,	/* the IPv4 total length field */
};

const char *netio_tso_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case NETIO_TSO_E_GSO_TYPE: return "unsupported gso_type";
	case NETIO_TSO_E_GSO_SIZE: return "gso_size 0";
	case NETIO_TSO_E_HDR_LEN: return "hdr_len past the packet";
	case NETIO_TSO_E_CSUM: return "bad csum_start or csum_offset";
	case NETIO_TSO_E_SHORT: return "headers past the packet";
	case NETIO_TSO_E_IP: return "not an IP/TCP packet of the gso_type";
	case NETIO_TSO_E_IP_LEN: return "IP length is not the packet's";
	case NETIO_TSO_E_FRAG: return "IPv4 fragment";
	case NETIO_TSO_E_IP6_EXT: return "unsupported IPv6 extension headers";
	case NETIO_TSO_E_TCP: return "TCP data offset below 5";
	case NETIO_TSO_E_NOSPACE: return "buffer too small";
	}
	return err < 0 ? strerror(-err) : "unknown";
}

void netio_vnet_hdr_decode(const uint8_t *b, struct netio_vnet_hdr *h)
{
	h->flags = b[0];
	h->gso_type = b[1];
	memcpy(&h->hdr_len, b + 2, 2);
	memcpy(&h->gso_size, b + 4, 2);
	memcpy(&h->csum_start, b + 6, 2);
	memcpy(&h->csum_offset, b + 8, 2);
}

void netio_vnet_hdr_encode(const struct netio_vnet_hdr *h, uint8_t *b)
{
	b[0] = h->flags;
	b[1] = h->gso_type;
	memcpy(b + 2, &h->hdr_len, 2);
	memcpy(b + 4, &h->gso_size, 2);
	memcpy(b + 6, &h->csum_start, 2);
	memcpy(b + 8, &h->csum_offset, 2);
}

/* ---- the Internet checksum ------------------------------------------------ */

/* the complement of the folded sum, as it goes into a header; 0 is sent as
 * 0xffff (the same in one's complement, and 0 means "none" to UDP) */
static uint16_t csum_final(uint64_t sum)
{
	uint16_t c = (uint16_t)~csum_fold(sum);
	return c ? c : 0xffff;
}

/* RFC 9293 3.1: source, destination, zero, protocol, TCP length; ip is the
 * IPv4 or IPv6 header */
static uint64_t tcp_pseudo(const uint8_t *ip, uint8_t ipv, size_t tcp_len)
{
	uint8_t tail[4] = { 0, IPPROTO_TCP_, (uint8_t)(tcp_len >> 8), (uint8_t)tcp_len };
	uint64_t sum = ipv == 4 ? csum_add(0, ip + 12, 8) : csum_add(0, ip + 8, 32);

	return csum_add(sum, tail, 4);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- parse ------------------------------------------------------------------ */

static int parse_ipv4(const uint8_t *pkt, size_t len, size_t *l4)
{
	size_t ihl;

	if (len < 20)
		return NETIO_TSO_E_SHORT;
	if (pkt[0] >> 4 != 4 || (ihl = (size_t)(pkt[0] & 0x0f) * 4) < 20)
		return NETIO_TSO_E_IP;
	if (ihl > len)
		return NETIO_TSO_E_SHORT;
	if (get16(pkt + 2) != len)
		return NETIO_TSO_E_IP_LEN;
	if (pkt[9] != IPPROTO_TCP_)
		return NETIO_TSO_E_IP;
	/* MF or a fragment offset */
	if (get16(pkt + 6) & 0x3fff)
		return NETIO_TSO_E_FRAG;
	*l4 = ihl;
	return 0;
}

/* Hop-by-hop and destination options are copied into every segment, as the
 * kernel's own segmentation does; a routing header would change the
 * pseudo-header's destination and a fragment header has no place in TSO. */
static int parse_ipv6(const uint8_t *pkt, size_t len, size_t *l4)
{
	size_t off = 40;
	uint8_t nh;

	if (len < 40)
		return NETIO_TSO_E_SHORT;
	if (pkt[0] >> 4 != 6)
		return NETIO_TSO_E_IP;
	if (40 + (size_t)get16(pkt + 4) != len)
		return NETIO_TSO_E_IP_LEN;
	nh = pkt[6];
	for (int n = 0; nh == IP6_HOPOPTS || nh == IP6_DSTOPTS; n++) {
		if (n == IP6_EXT_MAX)
			return NETIO_TSO_E_IP6_EXT;
		if (off + 8 > len)
			return NETIO_TSO_E_SHORT;
		nh = pkt[off];
		off += ((size_t)pkt[off + 1] + 1) * 8;
	}
	if (off > len)
		return NETIO_TSO_E_SHORT;
	if (nh == IP6_ROUTING || nh == IP6_FRAGMENT)
		return NETIO_TSO_E_IP6_EXT;
	if (nh != IPPROTO_TCP_)
		return NETIO_TSO_E_IP;
	*l4 = off;
	return 0;
}

int netio_tso_parse(const struct netio_vnet_hdr *h, const uint8_t *pkt, size_t len, struct netio_tso *t)
{
	uint8_t gso = h->gso_type & (uint8_t)~NETIO_VNET_GSO_ECN;
	bool partial = h->flags & NETIO_VNET_F_NEEDS_CSUM;
	size_t l4 = 0, payload;
	int rc;

	memset(t, 0, sizeof(*t));
	t->pkt = pkt;
	t->len = len;
	if (h->hdr_len > len)
		return NETIO_TSO_E_HDR_LEN;
	if (partial && (size_t)h->csum_start + h->csum_offset + 2 > len)
		return NETIO_TSO_E_CSUM;
	if (gso == NETIO_VNET_GSO_NONE) {
		if (!len)
			return NETIO_TSO_E_SHORT;
		t->csum = partial;
		t->csum_start = h->csum_start;
		t->csum_at = (size_t)h->csum_start + h->csum_offset;
		t->nsegs = 1;
		return 1;
	}
	if (gso != NETIO_VNET_GSO_TCPV4 && gso != NETIO_VNET_GSO_TCPV6)
		return NETIO_TSO_E_GSO_TYPE;
	if (!h->gso_size)
		return NETIO_TSO_E_GSO_SIZE;
	rc = gso == NETIO_VNET_GSO_TCPV4 ? parse_ipv4(pkt, len, &l4) : parse_ipv6(pkt, len, &l4);
	if (rc < 0)
		return rc;
	if (l4 + 20 > len)
		return NETIO_TSO_E_SHORT;
	if (pkt[l4 + 12] >> 4 < 5)
		return NETIO_TSO_E_TCP;
	t->hlen = l4 + (size_t)(pkt[l4 + 12] >> 4) * 4;
	if (t->hlen > len)
		return NETIO_TSO_E_SHORT;
	/* the kernel asks for the TCP checksum; anything else is not TSO */
	if (partial && (h->csum_start != l4 || h->csum_offset != 16))
		return NETIO_TSO_E_CSUM;
	t->ipv = gso == NETIO_VNET_GSO_TCPV4 ? 4 : 6;
	t->l4 = l4;
	t->mss = h->gso_size;
	payload = len - t->hlen;
	t->nsegs = payload ? (int)((payload + t->mss - 1) / t->mss) : 1;
	return t->nsegs;
}

/* ---- segment ----------------------------------------------------------------- */

static int one_packet(const struct netio_tso *t, uint8_t *dst, size_t cap)
{
	if (t->len > cap)
		return NETIO_TSO_E_NOSPACE;
	memcpy(dst, t->pkt, t->len);
	if (t->csum) {
		/* the field holds the pseudo-header's sum: it is summed along */
		uint16_t c = csum_final(csum_add(0, dst + t->csum_start, t->len - t->csum_start));
		memcpy(dst + t->csum_at, &c, 2);
	}
	return (int)t->len;
}

int netio_tso_segment(const struct netio_tso *t, int i, uint8_t *dst, size_t cap)
{
	size_t off, plen, n;
	uint8_t *tcp;
	uint64_t sum;
	uint32_t seq;
	uint16_t c;

	if (i < 0 || i >= t->nsegs)
		return -EINVAL;
	if (!t->mss)
		return one_packet(t, dst, cap);
	off = t->hlen + (size_t)i * t->mss;
	plen = t->len - off < t->mss ? t->len - off : t->mss;
	n = t->hlen + plen;
	if (n > cap)
		return NETIO_TSO_E_NOSPACE;
	memcpy(dst, t->pkt, t->hlen);
	memcpy(dst + t->hlen, t->pkt + off, plen);

	if (t->ipv == 4) {
		put16(dst + 2, (uint16_t)n);
		put16(dst + 4, (uint16_t)(get16(t->pkt + 4) + i));
		memset(dst + 10, 0, 2);
		c = csum_final(csum_add(0, dst, t->l4));
		memcpy(dst + 10, &c, 2);
	} else {
		put16(dst + 4, (uint16_t)(n - 40));
	}
	tcp = dst + t->l4;
	seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 | tcp[7];
	seq += (uint32_t)((size_t)i * t->mss);
	tcp[4] = (uint8_t)(seq >> 24);
	tcp[5] = (uint8_t)(seq >> 16);
	tcp[6] = (uint8_t)(seq >> 8);
	tcp[7] = (uint8_t)seq;
	if (i != t->nsegs - 1)
		tcp[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (i != 0)
		tcp[13] &= (uint8_t)~TCP_CWR;
	memset(tcp + 16, 0, 2);
	sum = tcp_pseudo(dst, t->ipv, n - t->l4);
	sum = csum_add(sum, tcp, n - t->l4);
	c = csum_final(sum);
	memcpy(tcp + 16, &c, 2);
	return (int)n;
}

/* ---- coalesce (writes) -------------------------------------------------------- */

enum gro_kind {
	GRO_OTHER,	/* not TCP: no flow of ours */
	GRO_UNKNOWN,	/* might be TCP, ports unreadable (fragment, extension headers) */
	GRO_TCP,	/* TCP: its flow is known */
};

struct gro_seg {
	enum gro_kind kind;
	bool mergeable;		/* may be part of a run */
	uint8_t ipv;
	size_t l4, hlen, payload;
	uint32_t seq;
	uint8_t flags;
};

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void gro_parse(const uint8_t *p, size_t len, struct gro_seg *s)
{
	size_t ihl;

	memset(s, 0, sizeof(*s));
	if (len >= 20 && p[0] >> 4 == 4) {
		ihl = (size_t)(p[0] & 0x0f) * 4;
		if (p[9] != IPPROTO_TCP_)
			return;
		s->kind = GRO_UNKNOWN;
		if (ihl < 20 || get16(p + 2) != len || (get16(p + 6) & 0x3fff))
			return;
		s->ipv = 4;
		s->l4 = ihl;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		if (p[6] != IPPROTO_TCP_) {
			/* extension headers may hide TCP; plain UDP, ICMPv6 do not */
			if (p[6] == IP6_HOPOPTS || p[6] == IP6_DSTOPTS || p[6] == IP6_ROUTING ||
			    p[6] == IP6_FRAGMENT)
				s->kind = GRO_UNKNOWN;
			return;
		}
		s->kind = GRO_UNKNOWN;
		if (40 + (size_t)get16(p + 4) != len)
			return;
		s->ipv = 6;
		s->l4 = 40;
	} else {
		return;
	}
	if (s->l4 + 20 > len || p[s->l4 + 12] >> 4 < 5 || s->l4 + (size_t)(p[s->l4 + 12] >> 4) * 4 > len)
		return;
	s->kind = GRO_TCP;
	s->hlen = s->l4 + (size_t)(p[s->l4 + 12] >> 4) * 4;
	s->payload = len - s->hlen;
	s->seq = get32(p + s->l4 + 4);
	s->flags = p[s->l4 + 13];
	s->mergeable = s->payload && (s->flags & TCP_ACK) &&
		       !(s->flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG | TCP_ECE | TCP_CWR)) &&
		       !(s->ipv == 4 && s->l4 != 20) &&
		       (s->ipv == 6 || csum_fold(csum_add(0, p, 20)) == 0xffff) &&
		       csum_fold(csum_add(tcp_pseudo(p, s->ipv, len - s->l4), p + s->l4, len - s->l4)) == 0xffff;
}

static bool same_flow(const uint8_t *a, const struct gro_seg *sa, const uint8_t *b, const struct gro_seg *sb)
{
	if (sa->ipv != sb->ipv)
		return false;
	if (sa->ipv == 4 ? memcmp(a + 12, b + 12, 8) : memcmp(a + 8, b + 8, 32))
		return false;
	return !memcmp(a + sa->l4, b + sb->l4, 4);
}

/* may packet i (of the run's flow) follow the run that begins with f and
 * ends with l, total bytes long so far? */
static bool gro_fits(const uint8_t *pf, const struct gro_seg *sf, const uint8_t *pl, const struct gro_seg *sl,
		     const uint8_t *pi, const struct gro_seg *si, size_t total)
{
	size_t l4 = sf->l4;

	if (!si->mergeable || sl->payload != sf->payload || (sl->flags & TCP_PSH) || si->payload > sf->payload)
		return false;
	if (si->seq != sl->seq + (uint32_t)sl->payload || total + si->payload > GRO_MAX_LEN)
		return false;
	/* the same ACK number, data offset and reserved bits, window, urgent
	 * pointer and options: what segmentation copies from the first */
	if (si->hlen != sf->hlen || memcmp(pi + l4 + 8, pf + l4 + 8, 5) || memcmp(pi + l4 + 14, pf + l4 + 14, 2) ||
	    memcmp(pi + l4 + 18, pf + l4 + 18, sf->hlen - l4 - 18))
		return false;
	if (sf->ipv == 4) {
		bool df = get16(pf + 6) & IP_DF;
		/* TOS, flags (DF, the reserved bit), TTL */
		if (pi[1] != pf[1] || get16(pi + 6) != get16(pf + 6) || pi[8] != pf[8])
			return false;
		/* without DF the IDs tell the fragments of packets apart: the
		 * kernel's segmentation gives consecutive ones back */
		return df || get16(pi + 4) == (uint16_t)(get16(pl + 4) + 1);
	}
	return !memcmp(pi, pf, 4) && pi[7] == pf[7];
}

void netio_gro_plan(struct netio_gro *g, const struct netio_pkt *pkts, int n)
{
	struct gro_seg seg[NETIO_BATCH_MAX];
	int open[NETIO_BATCH_MAX], nopen = 0;	/* writes that a packet may still join */
	int last[NETIO_BATCH_MAX];
	size_t total[NETIO_BATCH_MAX];

	if (n > NETIO_BATCH_MAX)
		n = NETIO_BATCH_MAX;
	g->nwrites = 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *p = pkts[i].data;
		struct gro_seg *si = &seg[i];
		int k = -1, w;

		g->next[i] = -1;
		gro_parse(p, pkts[i].len, si);
		if (si->kind == GRO_UNKNOWN)
			nopen = 0;	/* whatever its flow is, nothing of it passes it */
		for (int j = 0; si->kind == GRO_TCP && j < nopen; j++)
			if (same_flow(pkts[g->first[open[j]]].data, &seg[g->first[open[j]]], p, si)) {
				k = j;
				break;
			}
		if (k >= 0) {
			int o = open[k], f = g->first[o], l = last[o];
			if (gro_fits(pkts[f].data, &seg[f], pkts[l].data, &seg[l], p, si, total[o])) {
				g->next[l] = i;
				last[o] = i;
				total[o] += si->payload;
				g->count[o]++;
				continue;
			}
			/* the flow's run ends here: its next packets go after this one */
			open[k] = open[--nopen];
		}
		w = g->nwrites++;
		g->first[w] = i;
		g->count[w] = 1;
		last[w] = i;
		total[w] = pkts[i].len;
		if (si->mergeable)
			open[nopen++] = w;
	}
}

size_t netio_gro_head(const struct netio_gro *g, const struct netio_pkt *pkts, int w, struct netio_vnet_hdr *h,
		      uint8_t *head)
{
	int f = g->first[w], l = f;
	const uint8_t *p = pkts[f].data;
	uint8_t ipv = p[0] >> 4;
	size_t l4 = ipv == 4 ? 20 : 40, hlen = l4 + (size_t)(p[l4 + 12] >> 4) * 4, total = pkts[f].len;
	uint16_t c;

	for (int j = g->next[f]; j >= 0; j = g->next[j]) {
		total += pkts[j].len - hlen;
		l = j;
	}
	memcpy(head, p, hlen);
	if (ipv == 4) {
		put16(head + 2, (uint16_t)total);
		memset(head + 10, 0, 2);
		c = csum_final(csum_add(0, head, 20));
		memcpy(head + 10, &c, 2);
	} else {
		put16(head + 4, (uint16_t)(total - 40));
	}
	head[l4 + 13] |= pkts[l].data[l4 + 13] & TCP_PSH;
	/* a partial checksum: the field holds the pseudo-header's sum, folded
	 * and not complemented, which whoever completes it sums along */
	c = csum_fold(tcp_pseudo(head, ipv, total - l4));
	memcpy(head + l4 + 16, &c, 2);
	*h = (struct netio_vnet_hdr){
		.flags = NETIO_VNET_F_NEEDS_CSUM,
		.gso_type = ipv == 4 ? NETIO_VNET_GSO_TCPV4 : NETIO_VNET_GSO_TCPV6,
		.hdr_len = (uint16_t)hlen,
		.gso_size = (uint16_t)(pkts[f].len - hlen),
		.csum_start = (uint16_t)l4,
		.csum_offset = 16,
	};
	return hlen;
}
