/* pktdecode: link layer -> IPv4/IPv6 -> UDP -> STUN or WireGuard. Every read
 * is bounded by the bytes the capture holds; a frame cut short by the snap
 * length decodes as far as it goes and is flagged truncated. */
#include "pktdecode.h"

#include <errno.h>
#include <pcap/dlt.h>
#include <string.h>
#include <sys/socket.h>

#include "stun/stun.h"

/* LINKTYPE_RAW as stored in files; libpcap maps it to DLT_RAW, but a caller
 * holding the file header's value may pass it directly */
#define LINKTYPE_RAW_FILE 101

enum {
	ETH_HLEN_ = 14,
	SLL_HLEN = 16,
	SLL2_HLEN = 20,
	NULL_HLEN = 4,
	IPV4_MIN_HLEN = 20,
	IPV6_HLEN = 40,
	UDP_HLEN = 8,
};

enum {
	ETHERTYPE_IPV4 = 0x0800,
	ETHERTYPE_IPV6 = 0x86dd,
	ETHERTYPE_VLAN = 0x8100,
	ETHERTYPE_QINQ = 0x88a8,
};

/* IPv6 extension headers that may precede UDP (RFC 8200 section 4) */
enum {
	IP6_HOPOPTS = 0,
	IP6_ROUTING = 43,
	IP6_FRAGMENT = 44,
	IP6_AH = 51,
	IP6_DSTOPTS = 60,
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32le(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static uint64_t rd64le(const uint8_t *p) { return (uint64_t)rd32le(p + 4) << 32 | rd32le(p); }

const char *pkt_wg_type_name(uint8_t type)
{
	switch (type) {
	case PKT_WG_INITIATION: return "handshake-initiation";
	case PKT_WG_RESPONSE: return "handshake-response";
	case PKT_WG_COOKIE: return "cookie-reply";
	case PKT_WG_DATA: return "data";
	default: return "unknown";
	}
}

const char *pkt_stun_class_name(uint8_t cls)
{
	switch (cls) {
	case PKT_STUN_REQUEST: return "request";
	case PKT_STUN_INDICATION: return "indication";
	case PKT_STUN_SUCCESS: return "success";
	case PKT_STUN_ERROR: return "error";
	default: return "unknown";
	}
}

/* WireGuard: the type byte and three reserved zero bytes, and the exact size
 * of each handshake message; data messages are padded to 16 bytes. */
static bool classify_wg(const uint8_t *p, size_t len, struct pkt_wg *wg)
{
	if (len < 4 || p[1] || p[2] || p[3])
		return false;
	memset(wg, 0, sizeof(*wg));
	wg->type = p[0];
	switch (p[0]) {
	case PKT_WG_INITIATION:
		if (len != PKT_WG_INITIATION_LEN)
			return false;
		wg->sender = rd32le(p + 4);
		return true;
	case PKT_WG_RESPONSE:
		if (len != PKT_WG_RESPONSE_LEN)
			return false;
		wg->sender = rd32le(p + 4);
		wg->receiver = rd32le(p + 8);
		return true;
	case PKT_WG_COOKIE:
		if (len != PKT_WG_COOKIE_LEN)
			return false;
		wg->receiver = rd32le(p + 4);
		return true;
	case PKT_WG_DATA:
		if (len < PKT_WG_DATA_MIN_LEN || len % 16)
			return false;
		wg->receiver = rd32le(p + 4);
		wg->counter = rd64le(p + 8);
		wg->data_len = len - PKT_WG_DATA_MIN_LEN;
		return true;
	default:
		return false;
	}
}

static void copy_addr(union sockaddr_any *dst, const union sockaddr_any *src, bool *has)
{
	*dst = *src;
	*has = true;
}

/* The attributes, through the project's STUN codec; a message whose header
 * looks right but whose attributes do not parse is still STUN, only without
 * attrs_ok. */
static void stun_attrs(const uint8_t *p, size_t len, struct pkt_stun *s)
{
	struct stun_msg m;

	if (stun_parse(p, len, &m) != 0)
		return;
	s->attrs_ok = true;
	if (m.has_xor_mapped)
		copy_addr(&s->xor_mapped, &m.xor_mapped, &s->has_xor_mapped);
	if (m.has_mapped)
		copy_addr(&s->mapped, &m.mapped, &s->has_mapped);
	if (m.has_response_origin)
		copy_addr(&s->response_origin, &m.response_origin, &s->has_response_origin);
	if (m.has_other_address)
		copy_addr(&s->other_address, &m.other_address, &s->has_other_address);
	if (m.has_error) {
		s->has_error = true;
		s->error_code = (uint16_t)m.error_code;
	}
	if (m.has_change_request) {
		s->has_change_request = true;
		s->change_request = m.change_flags;
	}
	if (m.has_response_port) {
		s->has_response_port = true;
		s->response_port = m.response_port;
	}
}

/* STUN (RFC 8489 section 5): two zero bits, the magic cookie, a length that
 * is a multiple of 4 and matches the datagram. */
static bool classify_stun(const uint8_t *p, size_t len, struct pkt_stun *s)
{
	uint16_t type, mlen;

	if (!stun_is_stun(p, len))
		return false;
	mlen = rd16(p + 2);
	if (mlen % 4 || (size_t)mlen + STUN_HEADER_LEN != len)
		return false;
	memset(s, 0, sizeof(*s));
	type = rd16(p);
	s->cls = (uint8_t)(((type >> 7) & 2) | ((type >> 4) & 1));
	s->method = (uint16_t)((type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80));
	memcpy(s->txid, p + 8, sizeof(s->txid));
	stun_attrs(p, len, s);
	return true;
}

enum pkt_kind pkt_classify_udp(const uint8_t *p, size_t len, struct pkt_wg *wg,
			       struct pkt_stun *stun)
{
	if (classify_stun(p, len, stun))
		return PKT_STUN;
	if (classify_wg(p, len, wg))
		return PKT_WG;
	return PKT_UDP;
}

static int decode_udp(const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	size_t ulen;

	if (len < UDP_HLEN) {
		if (out->truncated)
			return 0;	/* snapped inside the UDP header: still IP */
		return -EBADMSG;
	}
	addr_set_port(&out->src, rd16(p));
	addr_set_port(&out->dst, rd16(p + 2));
	ulen = rd16(p + 4);
	/* IPv6 jumbograms carry 0 here (RFC 2675); use what the IP layer says */
	if (ulen == 0)
		ulen = len;
	if (ulen < UDP_HLEN)
		return -EBADMSG;
	out->udp_len = ulen - UDP_HLEN;
	if (ulen > len) {
		if (!out->truncated)
			return -EBADMSG;
		ulen = len;
	} else if (ulen < len && !out->truncated) {
		/* bytes after the datagram: trailer, ignore */
	}
	out->kind = PKT_UDP;
	out->payload = p + UDP_HLEN;
	out->payload_len = ulen - UDP_HLEN;
	if (out->payload_len < out->udp_len)
		return 0;	/* cut by the snap length: do not guess the payload */
	out->kind = pkt_classify_udp(out->payload, out->payload_len, &out->wg, &out->stun);
	return 0;
}

static int decode_ipv4(const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	size_t hlen, tlen;
	uint16_t frag;

	if (len < IPV4_MIN_HLEN || (p[0] >> 4) != 4)
		return -EBADMSG;
	hlen = (size_t)(p[0] & 0x0f) * 4;
	tlen = rd16(p + 2);
	if (hlen < IPV4_MIN_HLEN || tlen < hlen || len < hlen)
		return -EBADMSG;
	if (tlen > len)
		out->truncated = true;
	else
		len = tlen;	/* drop link-layer padding */
	out->ip_version = 4;
	out->ip_proto = p[9];
	out->src.in.sin_family = AF_INET;
	memcpy(&out->src.in.sin_addr, p + 12, 4);
	out->dst.in.sin_family = AF_INET;
	memcpy(&out->dst.in.sin_addr, p + 16, 4);
	out->kind = PKT_IP_OTHER;
	frag = rd16(p + 6);
	if (frag & 0x1fff) {
		out->kind = PKT_IP_FRAGMENT;
		return 0;
	}
	if (out->ip_proto != IPPROTO_UDP)
		return 0;
	if (frag & 0x2000) {
		/* first fragment: the UDP header is here but the payload is not whole */
		out->truncated = true;
	}
	return decode_udp(p + hlen, len - hlen, out);
}

static int decode_ipv6(const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	size_t plen, off = IPV6_HLEN;
	uint8_t nh;

	if (len < IPV6_HLEN || (p[0] >> 4) != 6)
		return -EBADMSG;
	plen = rd16(p + 4);
	if (plen + IPV6_HLEN > len)
		out->truncated = true;
	else if (plen)
		len = plen + IPV6_HLEN;
	out->ip_version = 6;
	out->src.in6.sin6_family = AF_INET6;
	memcpy(&out->src.in6.sin6_addr, p + 8, 16);
	out->dst.in6.sin6_family = AF_INET6;
	memcpy(&out->dst.in6.sin6_addr, p + 24, 16);
	out->kind = PKT_IP_OTHER;
	nh = p[6];
	for (;;) {
		size_t elen;

		out->ip_proto = nh;
		switch (nh) {
		case IP6_HOPOPTS:
		case IP6_ROUTING:
		case IP6_DSTOPTS:
			if (off + 2 > len)
				return out->truncated ? 0 : -EBADMSG;
			elen = ((size_t)p[off + 1] + 1) * 8;
			break;
		case IP6_AH:
			if (off + 2 > len)
				return out->truncated ? 0 : -EBADMSG;
			elen = ((size_t)p[off + 1] + 2) * 4;
			break;
		case IP6_FRAGMENT:
			if (off + 8 > len)
				return out->truncated ? 0 : -EBADMSG;
			if (rd16(p + off + 2) & 0xfff8) {
				out->kind = PKT_IP_FRAGMENT;
				return 0;
			}
			if (rd16(p + off + 2) & 1)
				out->truncated = true;
			elen = 8;
			break;
		case IPPROTO_UDP:
			return decode_udp(p + off, len - off, out);
		default:
			return 0;
		}
		if (off + elen > len)
			return out->truncated ? 0 : -EBADMSG;
		nh = p[off];
		off += elen;
	}
}

static int decode_ip(const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	if (len < 1)
		return -EBADMSG;
	switch (p[0] >> 4) {
	case 4: return decode_ipv4(p, len, out);
	case 6: return decode_ipv6(p, len, out);
	default: return -EBADMSG;
	}
}

static int decode_ethertype(uint16_t et, const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	switch (et) {
	case ETHERTYPE_IPV4: return decode_ipv4(p, len, out);
	case ETHERTYPE_IPV6: return decode_ipv6(p, len, out);
	default: return 0;	/* PKT_NOT_IP */
	}
}

static int decode_ether(const uint8_t *p, size_t len, struct pkt_decoded *out)
{
	size_t off = 12;
	uint16_t et;

	if (len < ETH_HLEN_)
		return -EBADMSG;
	et = rd16(p + off);
	/* up to two 802.1Q / 802.1ad tags */
	for (int tags = 0; tags < 2 && (et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ); tags++) {
		off += 4;
		if (off + 2 > len)
			return -EBADMSG;
		et = rd16(p + off);
	}
	off += 2;
	return decode_ethertype(et, p + off, len - off, out);
}

int pkt_decode(int linktype, const uint8_t *frame, size_t len, struct pkt_decoded *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = PKT_NOT_IP;
	switch (linktype) {
	case DLT_EN10MB:
		return decode_ether(frame, len, out);
	case DLT_LINUX_SLL:
		if (len < SLL_HLEN)
			return -EBADMSG;
		return decode_ethertype(rd16(frame + 14), frame + SLL_HLEN, len - SLL_HLEN, out);
	case DLT_LINUX_SLL2:
		if (len < SLL2_HLEN)
			return -EBADMSG;
		return decode_ethertype(rd16(frame), frame + SLL2_HLEN, len - SLL2_HLEN, out);
	case DLT_RAW:
	case LINKTYPE_RAW_FILE:
		return decode_ip(frame, len, out);
	case DLT_IPV4:
		return decode_ipv4(frame, len, out);
	case DLT_IPV6:
		return decode_ipv6(frame, len, out);
	case DLT_NULL:
	case DLT_LOOP:
		/* a 4-byte address family in host or network order; the IP
		 * version nibble that follows is the reliable part */
		if (len < NULL_HLEN)
			return -EBADMSG;
		return decode_ip(frame + NULL_HLEN, len - NULL_HLEN, out);
	default:
		return -EPROTONOSUPPORT;
	}
}
