/* device: the embeddable WireGuard data plane. A struct wg_device holds the
 * static identity, the peers (handshake, sessions, cookie maker, timers,
 * endpoint, counters, staged packets) and the allowed-IPs table, and moves
 * vectors of packets between the two sides it is given:
 *
 *   wg_device_input_tun()  IP packets read from the TUN: routed by destination
 *                          through allowed IPs, encrypted, and handed out as
 *                          datagrams through ops->udp_send (one call per batch)
 *   wg_device_input_udp()  datagrams that are WireGuard's, from a UDP socket
 *                          the owner reads (and shares with STUN and probes):
 *                          handshakes answered, data decrypted, its source
 *                          checked against the peer's allowed IPs, and handed
 *                          out through ops->tun_deliver (one call per batch)
 *
 * The owner keeps the socket, the TUN and the clock; the device keeps no file
 * descriptor and reads no clock. Every call that may act takes `now`, the
 * owner's monotonic time in ns; the wall clock (TAI64N timestamps, the last
 * handshake time) counts on from what wg_device_set_wall_clock() said. The
 * peers' timers (timers.c) are deadlines: the owner calls wg_device_expire()
 * at wg_device_next_deadline(), which moves only when a call into the device
 * returns. Everything runs on the owner's one thread, except the AEAD of
 * data: with wg_device_set_threads(n > 1), each call's batch is sealed and
 * opened on n threads (the owner's and n - 1 workers) and joined before the
 * call goes on, so the ops are still called on the owner's thread, the
 * datagrams of a peer leave in counter order and the packets it sent reach
 * tun_deliver in the order they arrived. Counters, replay windows, timers,
 * handshakes and routing stay on the owner's thread.
 *
 * Buffers: input packets are worked on in place. A TUN packet's data must be
 * preceded by WG_DEVICE_HEADROOM writable bytes of the same buffer and be
 * followed by WG_DEVICE_TAILROOM (cap - len >= WG_DEVICE_TAILROOM). The
 * packets handed to the ops point into the input buffers and are valid only
 * during the call. */
#ifndef NATMESH_WG_DEVICE_H
#define NATMESH_WG_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "messages.h"
#include "netio.h"
#include "wg_const.h"

struct wg_device;
struct wg_peer;
struct wg_uapi_config;

#define WG_DEVICE_HEADROOM WG_DATA_HEADROOM
#define WG_DEVICE_TAILROOM WG_DATA_TAILROOM

struct wg_device_ops {
	/* n datagrams, each to pkts[i].addr */
	void (*udp_send)(void *arg, const struct netio_pkt *pkts, int n);
	/* n decrypted IP packets for the TUN */
	void (*tun_deliver)(void *arg, const struct netio_pkt *pkts, int n);
	/* optional: a data message for a session this device does not have came
	 * from src (its sender kept a session this side lost, e.g. by a restart;
	 * WireGuard alone recovers only when the sender gives up on it, 15 s).
	 * Called in the middle of wg_device_input_udp(): note src and act after
	 * it returns (wg_peer_initiate_to). */
	void (*unknown_session)(void *arg, const union sockaddr_any *src);
	/* optional: a handshake with peer completed (our initiation answered, or
	 * the first data on the session we answered), so the owner need not poll
	 * wg_peer_get_state(). Called in the middle of an input call: note the
	 * peer and act after it returns. */
	void (*handshake_complete)(void *arg, struct wg_peer *peer);
	/* optional: from sent an authenticated inner packet whose source
	 * another peer, owner, holds (refused all the same, as rx_bad_src):
	 * when from is a relay, owner's packets come through it, so owner no
	 * longer reaches this side directly. Called in the middle of an input
	 * call: note it and act after it returns. */
	void (*rx_owned_elsewhere)(void *arg, struct wg_peer *from, struct wg_peer *owner);
};

/* what was dropped and why, and what the handshake path did */
struct wg_device_stats {
	uint64_t rx_bad_type;		/* unknown type byte, nonzero reserved bytes */
	uint64_t rx_bad_length;		/* truncated or oversized for its type */
	uint64_t rx_bad_mac;		/* handshake message with a wrong mac1 */
	uint64_t rx_bad_handshake;	/* mac1 right but the handshake itself refused */
	uint64_t rx_unknown_index;	/* data or cookie for no session of ours */
	uint64_t rx_bad_auth;		/* data that failed authentication */
	uint64_t rx_replay;		/* data counter already seen or too old */
	uint64_t rx_expired;		/* data on a session past REJECT_AFTER_TIME */
	uint64_t rx_bad_src;		/* inner source not in the peer's allowed IPs */
	uint64_t rx_bad_packet;		/* inner packet not IPv4/IPv6 or length wrong */
	uint64_t rx_ratelimited;	/* handshake refused by the per-source limit */
	uint64_t rx_data;		/* data packets delivered */
	uint64_t rx_keepalive;
	uint64_t handshake_initiations_rx, handshake_responses_rx, cookie_replies_rx;
	uint64_t handshake_initiations_tx, handshake_responses_tx, cookie_replies_tx;
	uint64_t tx_no_route;		/* TUN packet for no peer's allowed IPs */
	uint64_t tx_no_endpoint;	/* for a peer without an endpoint */
	uint64_t tx_staged_dropped;	/* staging queue full, or given up */
};

/* what a peer looks like from outside (UAPI get, the agent) */
struct wg_peer_state {
	uint8_t public_key[WG_KEY_LEN];
	union sockaddr_any endpoint;	/* AF_UNSPEC when none */
	struct timespec last_handshake;	/* wall clock; zero when never */
	uint64_t rx_bytes, tx_bytes;	/* datagram payload bytes, like the kernel */
	uint16_t persistent_keepalive;
	uint64_t tx_keepalives;		/* keepalives sent (each counted in tx_bytes) */
	uint64_t rx_initiations;	/* valid handshake initiations from it (each answered) */
	bool has_preshared_key;
	/* our latest initiation's round trip: its latest transmission to the
	 * response consumed (ns); 0 when none was answered yet */
	uint64_t handshake_rtt_ns;
};

int wg_device_new(const struct wg_device_ops *ops, void *arg, struct wg_device **out);
/* removes every peer, wipes every key; NULL is a no-op */
void wg_device_free(struct wg_device *dev);

/* NULL or all zero clears the key. A peer whose public key equals the new
 * device public key is removed (as the kernel does); every session ends. */
int wg_device_set_private_key(struct wg_device *dev, const uint8_t *key);
bool wg_device_get_private_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN]);
/* the wall clock (ns since the epoch) at the owner's monotonic time now;
 * from then on wall time is now + (wall_ns - now), so TAI64N timestamps never
 * go backwards while the device lives, whatever the system clock does */
void wg_device_set_wall_clock(struct wg_device *dev, uint64_t now, uint64_t wall_ns);
/* the earliest deadline of any peer's timers (ns, the owner's monotonic
 * clock), 0 when none is armed; it may be early (a deadline that moved
 * later), never late */
uint64_t wg_device_next_deadline(const struct wg_device *dev);
/* runs the timers due at now: retransmissions, keepalives, key expiry */
void wg_device_expire(struct wg_device *dev, uint64_t now);
/* threads for the AEAD of each batch, the caller's included: 1 (the
 * default: all on the caller's thread) to WG_WORKERS_MAX (workers.h), or 0
 * for one per CPU the process may run on.
 * 0, -EINVAL, -ENOMEM, or a thread creation error (the old pool stays). */
int wg_device_set_threads(struct wg_device *dev, int threads);
int wg_device_get_threads(const struct wg_device *dev);
/* the TUN MTU: data is padded to 16 bytes but not beyond it */
void wg_device_set_mtu(struct wg_device *dev, size_t mtu);
void wg_device_get_stats(const struct wg_device *dev, struct wg_device_stats *out);

/* peers */
struct wg_peer *wg_device_peer_find(struct wg_device *dev, const uint8_t pub[WG_KEY_LEN]);
/* 0, -EEXIST, -EINVAL (the device's own public key), -ENOMEM */
int wg_device_peer_add(struct wg_device *dev, const uint8_t pub[WG_KEY_LEN], struct wg_peer **out);
void wg_device_peer_remove(struct wg_device *dev, struct wg_peer *peer);
void wg_device_peers_clear(struct wg_device *dev);
size_t wg_device_peer_count(const struct wg_device *dev);
/* in the order they were added; next(NULL) is the first */
struct wg_peer *wg_device_peer_next(struct wg_device *dev, struct wg_peer *peer);

void wg_peer_set_preshared_key(struct wg_peer *peer, const uint8_t *psk);
void wg_peer_set_endpoint(struct wg_peer *peer, const union sockaddr_any *ep);
/* 0 turns it off; turning it on sends a keepalive at once */
void wg_peer_set_persistent_keepalive(struct wg_peer *peer, uint16_t seconds, uint64_t now);
/* takes the prefix over from any other peer; 0, -EINVAL, -ENOMEM */
int wg_peer_allowed_ip_add(struct wg_peer *peer, const struct cidr *c);
int wg_peer_allowed_ip_remove(struct wg_peer *peer, const struct cidr *c);
void wg_peer_allowed_ips_clear(struct wg_peer *peer);
/* every prefix of the peer, IPv4 first; out may be NULL to count. Returns the count. */
size_t wg_peer_allowed_ips(struct wg_peer *peer, struct cidr *out, size_t max);
void wg_peer_get_state(const struct wg_peer *peer, struct wg_peer_state *out);
/* start a handshake now (the agent trying a new path); rate-limited to one per
 * REKEY_TIMEOUT like every initiation */
void wg_peer_initiate(struct wg_peer *peer, uint64_t now);
/* Spray (issue 5): the same handshake initiation to each of eps, in one
 * batch, not limited by REKEY_TIMEOUT (the caller paces it). The initiation
 * in flight is sent again when it is younger than REKEY_TIMEOUT and
 * unanswered; otherwise a new one is made and the retransmit timer armed as
 * for any initiation. The first response wins: the peer's endpoint roams to
 * its source (a peer without an endpoint gets eps[0] until then). Returns the
 * number of datagrams sent, -EINVAL (no usable address), -ENOKEY (no
 * private key). */
int wg_peer_initiate_to(struct wg_peer *peer, const union sockaddr_any *eps, int n, uint64_t now);
/* Inner sources the peer may send from besides its allowed IPs, without
 * routing anything to it (a relay forwarding for peers that the allowed IPs
 * map elsewhere). An address that another peer's allowed IPs hold by a
 * longer prefix than the rx source is refused all the same (a peer reached
 * directly owns its host address). At most WG_PEER_RX_SOURCES_MAX; add: 0, -EINVAL, -ENOSPC
 * (an existing prefix is 0); remove: 0, -ENOENT. */
#define WG_PEER_RX_SOURCES_MAX 8
int wg_peer_rx_source_add(struct wg_peer *peer, const struct cidr *c);
int wg_peer_rx_source_remove(struct wg_peer *peer, const struct cidr *c);

/* UAPI glue: apply a parsed `set` (listen_port and fwmark are the owner's and
 * ignored here), and fill a config for `get` (listen_port/fwmark left 0). */
int wg_device_apply(struct wg_device *dev, const struct wg_uapi_config *cfg, uint64_t now);
int wg_device_dump(struct wg_device *dev, struct wg_uapi_config *out);

/* the packet path */
void wg_device_input_udp(struct wg_device *dev, struct netio_pkt *pkts, int n, uint64_t now);
void wg_device_input_tun(struct wg_device *dev, struct netio_pkt *pkts, int n, uint64_t now);

#endif
