/* pktdecode, traversal-report's packet decoder: frames built here layer by
 * layer (every link type, IPv4 and IPv6, VLAN, extension headers, fragments,
 * snapped captures) with STUN and WireGuard payloads, and a table of frames
 * that must be rejected or classified as "not ours". */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pcap/dlt.h>
#include <string.h>

#include "pktdecode.h"
#include "stun/stun.h"

struct frame {
	uint8_t b[2048];
	size_t len;
};

static void put(struct frame *f, const void *p, size_t n)
{
	cr_assert_leq(f->len + n, sizeof(f->b));
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void put16(struct frame *f, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(f, b, 2);
}

static void le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* IPv4 header + UDP header + payload; frag is the flags/offset field */
static void put_ipv4_udp(struct frame *f, const char *src, const char *dst, uint16_t sport,
			 uint16_t dport, const uint8_t *pl, size_t n, uint16_t frag)
{
	uint8_t ip[20] = { 0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0 };
	uint16_t tot = (uint16_t)(20 + 8 + n);

	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[6] = (uint8_t)(frag >> 8);
	ip[7] = (uint8_t)frag;
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, dst, ip + 16);
	put(f, ip, sizeof(ip));
	put16(f, sport);
	put16(f, dport);
	put16(f, (uint16_t)(8 + n));
	put16(f, 0);
	put(f, pl, n);
}

/* IPv6 with optional hop-by-hop header (8 bytes) before UDP */
static void put_ipv6_udp(struct frame *f, const char *src, const char *dst, uint16_t sport,
			 uint16_t dport, const uint8_t *pl, size_t n, bool hopopts)
{
	uint8_t ip[40] = { 0x60 };
	uint16_t plen = (uint16_t)(8 + n + (hopopts ? 8 : 0));

	ip[4] = (uint8_t)(plen >> 8);
	ip[5] = (uint8_t)plen;
	ip[6] = hopopts ? 0 : 17;
	ip[7] = 64;
	inet_pton(AF_INET6, src, ip + 8);
	inet_pton(AF_INET6, dst, ip + 24);
	put(f, ip, sizeof(ip));
	if (hopopts) {
		/* next header UDP, length 0 (8 bytes), PadN */
		uint8_t h[8] = { 17, 0, 1, 4, 0, 0, 0, 0 };
		put(f, h, sizeof(h));
	}
	put16(f, sport);
	put16(f, dport);
	put16(f, (uint16_t)(8 + n));
	put16(f, 0);
	put(f, pl, n);
}

static void put_ether(struct frame *f, uint16_t type, bool vlan)
{
	uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	put(f, mac, sizeof(mac));
	if (vlan) {
		put16(f, 0x8100);
		put16(f, 42);
	}
	put16(f, type);
}

static size_t wg_initiation(uint8_t *b, uint32_t sender)
{
	memset(b, 0xab, PKT_WG_INITIATION_LEN);
	b[0] = 1;
	b[1] = b[2] = b[3] = 0;
	le32(b + 4, sender);
	return PKT_WG_INITIATION_LEN;
}

static size_t wg_response(uint8_t *b, uint32_t sender, uint32_t receiver)
{
	memset(b, 0xcd, PKT_WG_RESPONSE_LEN);
	b[0] = 2;
	b[1] = b[2] = b[3] = 0;
	le32(b + 4, sender);
	le32(b + 8, receiver);
	return PKT_WG_RESPONSE_LEN;
}

static size_t wg_data(uint8_t *b, uint32_t receiver, uint64_t counter, size_t inner)
{
	size_t n = 32 + (inner + 15) / 16 * 16;

	memset(b, 0x11, n);
	b[0] = 4;
	b[1] = b[2] = b[3] = 0;
	le32(b + 4, receiver);
	le32(b + 8, (uint32_t)counter);
	le32(b + 12, (uint32_t)(counter >> 32));
	return n;
}

static const uint8_t tid[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static size_t stun_success(uint8_t *b, size_t cap, const char *mapped)
{
	struct stun_builder sb;
	union sockaddr_any a;

	cr_assert_eq(addr_parse(mapped, &a), 0);
	stun_build_init(&sb, b, cap, STUN_CLASS_SUCCESS, STUN_METHOD_BINDING, tid);
	stun_build_xor_addr(&sb, STUN_ATTR_XOR_MAPPED_ADDRESS, &a);
	stun_build_addr(&sb, STUN_ATTR_MAPPED_ADDRESS, &a);
	stun_build_fingerprint(&sb);
	return (size_t)stun_build_finish(&sb);
}

Test(pktdecode, ether_ipv4_wg_initiation)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[256];
	size_t n = wg_initiation(pl, 0xdeadbeef);
	char buf[ADDR_STRLEN];

	put_ether(&f, 0x0800, false);
	put_ipv4_udp(&f, "10.0.1.2", "203.0.113.4", 51820, 51821, pl, n, 0);
	cr_assert_eq(pkt_decode(DLT_EN10MB, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_WG);
	cr_expect_eq(d.ip_version, 4);
	cr_expect_str_eq(addr_format(&d.src, buf, sizeof(buf)), "10.0.1.2:51820");
	cr_expect_str_eq(addr_format(&d.dst, buf, sizeof(buf)), "203.0.113.4:51821");
	cr_expect_eq(d.wg.type, PKT_WG_INITIATION);
	cr_expect_eq(d.wg.sender, 0xdeadbeef);
	cr_expect_eq(d.payload_len, PKT_WG_INITIATION_LEN);
	cr_expect(!d.truncated);
}

Test(pktdecode, vlan_and_ethernet_padding)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[128], pad[20] = { 0 };
	size_t n = wg_response(pl, 7, 9);

	put_ether(&f, 0x0800, true);
	put_ipv4_udp(&f, "192.0.2.1", "192.0.2.2", 1, 2, pl, n, 0);
	put(&f, pad, sizeof(pad));	/* trailer after the IP packet */
	cr_assert_eq(pkt_decode(DLT_EN10MB, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_WG);
	cr_expect_eq(d.wg.type, PKT_WG_RESPONSE);
	cr_expect_eq(d.wg.sender, 7);
	cr_expect_eq(d.wg.receiver, 9);
	cr_expect_eq(d.payload_len, PKT_WG_RESPONSE_LEN);
}

Test(pktdecode, sll2_ipv6_stun_with_mapped_address)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[256], sll2[20] = { 0x86, 0xdd };
	size_t n = stun_success(pl, sizeof(pl), "[2001:db8::7]:4242");
	char buf[ADDR_STRLEN];

	put(&f, sll2, sizeof(sll2));
	put_ipv6_udp(&f, "2001:db8::1", "2001:db8::7", 3478, 4242, pl, n, true);
	cr_assert_eq(pkt_decode(DLT_LINUX_SLL2, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_STUN);
	cr_expect_eq(d.ip_version, 6);
	cr_expect_str_eq(addr_format(&d.src, buf, sizeof(buf)), "[2001:db8::1]:3478");
	cr_expect_eq(d.stun.cls, PKT_STUN_SUCCESS);
	cr_expect_eq(d.stun.method, 1);
	cr_expect_arr_eq(d.stun.txid, tid, 12);
	cr_expect(d.stun.attrs_ok);
	cr_assert(d.stun.has_xor_mapped);
	cr_expect_str_eq(addr_format(&d.stun.xor_mapped, buf, sizeof(buf)), "[2001:db8::7]:4242");
	cr_expect(d.stun.has_mapped);
}

Test(pktdecode, sll_raw_and_null_links)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[256], sll[16] = { 0 };
	size_t n = wg_data(pl, 0x01020304, 0x1122334455ull, 84);

	sll[14] = 0x08;	/* protocol 0x0800 */
	put(&f, sll, sizeof(sll));
	put_ipv4_udp(&f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
	cr_assert_eq(pkt_decode(DLT_LINUX_SLL, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_WG);
	cr_expect_eq(d.wg.type, PKT_WG_DATA);
	cr_expect_eq(d.wg.receiver, 0x01020304);
	cr_expect_eq(d.wg.counter, 0x1122334455ull);
	cr_expect_eq(d.wg.data_len, 96);

	/* the same IP packet as raw IP, as IPv4 link, and behind a BSD null header */
	cr_assert_eq(pkt_decode(DLT_RAW, f.b + 16, f.len - 16, &d), 0);
	cr_expect_eq(d.kind, PKT_WG);
	cr_assert_eq(pkt_decode(DLT_IPV4, f.b + 16, f.len - 16, &d), 0);
	cr_expect_eq(d.kind, PKT_WG);
	memcpy(f.b + 12, "\x02\x00\x00\x00", 4);
	cr_assert_eq(pkt_decode(DLT_NULL, f.b + 12, f.len - 12, &d), 0);
	cr_expect_eq(d.kind, PKT_WG);
}

Test(pktdecode, keepalive_has_no_data)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[64];
	size_t n = wg_data(pl, 5, 0, 0);

	put_ipv4_udp(&f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
	cr_assert_eq(pkt_decode(DLT_RAW, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_WG);
	cr_expect_eq(n, PKT_WG_DATA_MIN_LEN);
	cr_expect_eq(d.wg.data_len, 0);
}

Test(pktdecode, snapped_capture_is_truncated_not_guessed)
{
	struct frame f = { .len = 0 };
	struct pkt_decoded d;
	uint8_t pl[256];
	size_t n = wg_initiation(pl, 1);

	put_ipv4_udp(&f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
	/* tcpdump -s 96: the UDP header is there, the payload is not whole */
	cr_assert_eq(pkt_decode(DLT_RAW, f.b, 96, &d), 0);
	cr_expect(d.truncated);
	cr_expect_eq(d.kind, PKT_UDP);
	cr_expect_eq(d.udp_len, PKT_WG_INITIATION_LEN);
	cr_expect_eq(d.payload_len, 96 - 28);
	/* snapped inside the UDP header: IP only */
	cr_assert_eq(pkt_decode(DLT_RAW, f.b, 24, &d), 0);
	cr_expect(d.truncated);
	cr_expect_eq(d.kind, PKT_IP_OTHER);
}

struct reject_case {
	const char *what;
	int linktype;
	void (*mutate)(struct frame *f);
	int rc;			/* expected return */
	enum pkt_kind kind;	/* when rc == 0 */
};

static void base_frame(struct frame *f)
{
	uint8_t pl[256];
	size_t n = wg_initiation(pl, 0x42);

	f->len = 0;
	put_ipv4_udp(f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
}

static void m_none(struct frame *f) { (void)f; }
static void m_empty(struct frame *f) { f->len = 0; }
static void m_short_ip(struct frame *f) { f->len = 19; }
static void m_bad_version(struct frame *f) { f->b[0] = 0x55; }
static void m_bad_ihl(struct frame *f) { f->b[0] = 0x44; }
static void m_ihl_past_end(struct frame *f) { f->b[0] = 0x4f; f->len = 40; f->b[2] = 0; f->b[3] = 40; }
static void m_total_lt_ihl(struct frame *f) { f->b[2] = 0; f->b[3] = 10; }
static void m_udp_len_small(struct frame *f) { f->b[24] = 0; f->b[25] = 4; }
static void m_udp_len_big(struct frame *f) { f->b[24] = 0xff; f->b[25] = 0xff; }
static void m_frag(struct frame *f) { f->b[6] = 0; f->b[7] = 10; }
static void m_tcp(struct frame *f) { f->b[9] = 6; }
static void m_wg_reserved(struct frame *f) { f->b[29] = 1; }
static void m_wg_len(struct frame *f)
{
	/* one byte less: UDP and IP lengths shrink with it */
	f->len--;
	f->b[3]--;
	f->b[25]--;
}
static void m_wg_type(struct frame *f) { f->b[28] = 9; }
static void m_stun_len(struct frame *f)
{
	uint8_t pl[256];
	size_t n = stun_success(pl, sizeof(pl), "192.0.2.9:9");

	f->len = 0;
	pl[3] ^= 4;	/* STUN length no longer matches the datagram */
	put_ipv4_udp(f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
}
static void m_stun_bad_fp(struct frame *f)
{
	uint8_t pl[256];
	size_t n = stun_success(pl, sizeof(pl), "192.0.2.9:9");

	f->len = 0;
	pl[n - 1] ^= 1;	/* header fine, attributes rejected by the codec */
	put_ipv4_udp(f, "10.0.0.1", "10.0.0.2", 5, 6, pl, n, 0);
}

Test(pktdecode, rejects_and_classifies)
{
	static const struct reject_case cases[] = {
		{ "valid", DLT_RAW, m_none, 0, PKT_WG },
		{ "unknown link type", 9999, m_none, -EPROTONOSUPPORT, 0 },
		{ "empty frame", DLT_RAW, m_empty, -EBADMSG, 0 },
		{ "short IPv4 header", DLT_RAW, m_short_ip, -EBADMSG, 0 },
		{ "IP version 5", DLT_RAW, m_bad_version, -EBADMSG, 0 },
		{ "IHL 4", DLT_RAW, m_bad_ihl, -EBADMSG, 0 },
		{ "IHL past the end", DLT_RAW, m_ihl_past_end, -EBADMSG, 0 },
		{ "total length < IHL", DLT_RAW, m_total_lt_ihl, -EBADMSG, 0 },
		{ "UDP length < 8", DLT_RAW, m_udp_len_small, -EBADMSG, 0 },
		{ "UDP length past the IP packet", DLT_RAW, m_udp_len_big, -EBADMSG, 0 },
		{ "non-first fragment", DLT_RAW, m_frag, 0, PKT_IP_FRAGMENT },
		{ "TCP", DLT_RAW, m_tcp, 0, PKT_IP_OTHER },
		{ "WireGuard reserved byte set", DLT_RAW, m_wg_reserved, 0, PKT_UDP },
		{ "WireGuard initiation one byte short", DLT_RAW, m_wg_len, 0, PKT_UDP },
		{ "WireGuard type 9", DLT_RAW, m_wg_type, 0, PKT_UDP },
		{ "STUN length mismatch", DLT_RAW, m_stun_len, 0, PKT_UDP },
		{ "STUN with a bad FINGERPRINT", DLT_RAW, m_stun_bad_fp, 0, PKT_STUN },
		{ "ARP over Ethernet", DLT_EN10MB, NULL, 0, PKT_NOT_IP },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct frame f;
		struct pkt_decoded d;
		int rc;

		if (cases[i].mutate) {
			base_frame(&f);
			cases[i].mutate(&f);
		} else {
			f.len = 0;
			put_ether(&f, 0x0806, false);
			put(&f, "\0\1\x08\0\6\4\0\1", 8);
		}
		rc = pkt_decode(cases[i].linktype, f.b, f.len, &d);
		cr_expect_eq(rc, cases[i].rc, "%s: rc %d, want %d", cases[i].what, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0)
			cr_expect_eq(d.kind, cases[i].kind, "%s: kind %d, want %d", cases[i].what, d.kind,
				     cases[i].kind);
	}
}

Test(pktdecode, stun_with_bad_attributes_keeps_header)
{
	struct frame f;
	struct pkt_decoded d;

	base_frame(&f);
	m_stun_bad_fp(&f);
	cr_assert_eq(pkt_decode(DLT_RAW, f.b, f.len, &d), 0);
	cr_assert_eq(d.kind, PKT_STUN);
	cr_expect(!d.stun.attrs_ok);
	cr_expect(!d.stun.has_xor_mapped);
	cr_expect_arr_eq(d.stun.txid, tid, 12);
	cr_expect_eq(d.stun.cls, PKT_STUN_SUCCESS);
}
