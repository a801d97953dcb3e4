/* pktdecode: decodes one captured frame (as libpcap hands it over) into the
 * facts traversal-report needs: the IP/UDP endpoints, and whether the UDP
 * payload is STUN (RFC 8489: class, method, transaction id, the address
 * attributes) or WireGuard (message type, sender and receiver index, counter).
 * A pure function: bytes in, a struct out; no I/O and no allocation, so the
 * fuzzer and the unit tests drive it directly. */
#ifndef NATMESH_PKTDECODE_H
#define NATMESH_PKTDECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/* What the frame turned out to be, from the outermost layer inwards. Anything
 * that is not IPv4/IPv6 or not UDP is reported as such, not as an error. */
enum pkt_kind {
	PKT_NOT_IP,		/* ARP, LLDP, an unknown link type ... */
	PKT_IP_OTHER,		/* IP but not UDP (ICMP, TCP, ...) */
	PKT_IP_FRAGMENT,	/* a non-first IP fragment: no UDP header */
	PKT_UDP,		/* UDP with a payload that is neither of the below */
	PKT_STUN,
	PKT_WG,
};

/* WireGuard message types (wireguard-tools messages.h) */
enum pkt_wg_type {
	PKT_WG_INITIATION = 1,
	PKT_WG_RESPONSE = 2,
	PKT_WG_COOKIE = 3,
	PKT_WG_DATA = 4,
};

/* On-wire sizes of the WireGuard messages (WireGuard paper, section 5.4) */
enum {
	PKT_WG_INITIATION_LEN = 148,
	PKT_WG_RESPONSE_LEN = 92,
	PKT_WG_COOKIE_LEN = 64,
	PKT_WG_DATA_MIN_LEN = 32,	/* header 16 + Poly1305 tag 16: a keepalive */
};

struct pkt_wg {
	uint8_t type;		/* enum pkt_wg_type */
	uint32_t sender;	/* types 1, 2 */
	uint32_t receiver;	/* types 2, 3, 4 */
	uint64_t counter;	/* type 4 */
	size_t data_len;	/* type 4: encrypted payload without the tag; 0 = keepalive */
};

/* STUN message classes (RFC 8489 section 5) */
enum pkt_stun_class {
	PKT_STUN_REQUEST = 0,
	PKT_STUN_INDICATION = 1,
	PKT_STUN_SUCCESS = 2,
	PKT_STUN_ERROR = 3,
};

struct pkt_stun {
	uint8_t cls;		/* enum pkt_stun_class */
	uint16_t method;	/* 0x001 = Binding */
	uint8_t txid[12];
	/* attributes; each only when its has_ flag is set */
	bool attrs_ok;		/* the attribute list parsed (lib/stun) */
	bool has_xor_mapped, has_mapped, has_response_origin, has_other_address;
	bool has_error, has_change_request, has_response_port;
	union sockaddr_any xor_mapped, mapped, response_origin, other_address;
	uint16_t error_code;
	uint32_t change_request;	/* RFC 5780 7.2 flags: 0x4 change IP, 0x2 change port */
	uint16_t response_port;
};

struct pkt_decoded {
	enum pkt_kind kind;
	int ip_version;			/* 4 or 6 when kind >= PKT_IP_OTHER */
	uint8_t ip_proto;
	union sockaddr_any src, dst;	/* ports set when kind >= PKT_UDP */
	size_t payload_len;		/* UDP payload bytes present in the capture */
	size_t udp_len;			/* UDP payload length the header claims */
	bool truncated;			/* the capture holds fewer bytes than the packet */
	struct pkt_wg wg;		/* kind == PKT_WG */
	struct pkt_stun stun;		/* kind == PKT_STUN */
	const uint8_t *payload;		/* points into the caller's bytes */
};

/* Decodes one frame of the given pcap link type (DLT_EN10MB, DLT_LINUX_SLL,
 * DLT_LINUX_SLL2, DLT_RAW, DLT_IPV4, DLT_IPV6, DLT_NULL, DLT_LOOP). Returns 0
 * with *out filled (kind says how far it got), -EPROTONOSUPPORT for a link
 * type it does not know, -EBADMSG for a frame too short or inconsistent to be
 * what its headers claim. */
int pkt_decode(int linktype, const uint8_t *frame, size_t len, struct pkt_decoded *out);

/* Classifies a UDP payload alone (what pkt_decode does after UDP). */
enum pkt_kind pkt_classify_udp(const uint8_t *p, size_t len, struct pkt_wg *wg,
			       struct pkt_stun *stun);

const char *pkt_wg_type_name(uint8_t type);
const char *pkt_stun_class_name(uint8_t cls);

#endif
