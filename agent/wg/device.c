#include "device.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "allowedips.h"
#include "cookie.h"
#include "crypto.h"
#include "log.h"
#include "noise.h"
#include "ratelimit.h"
#include "timers.h"
#include "uapi.h"
#include "workers.h"

#define PEER_BUCKETS 1024

struct staged_pkt {
	size_t len;
	uint8_t buf[];		/* WG_DEVICE_HEADROOM, len bytes, WG_DEVICE_TAILROOM */
};

struct wg_peer {
	struct wg_device *dev;
	struct wg_peer *prev, *next;	/* in the order added */
	struct wg_peer *hnext;		/* public key hash chain */
	uint8_t public_key[WG_KEY_LEN];
	uint8_t psk[WG_KEY_LEN];
	bool has_psk;

	struct wg_handshake hs;
	struct wg_keypairs kps;
	struct wg_cookie_maker cookie;
	struct wg_timers timers;

	union sockaddr_any endpoint;
	uint64_t rx_bytes, tx_bytes;
	uint64_t tx_keepalives, rx_initiations;
	struct timespec last_handshake;
	uint64_t last_sent_handshake_ns;
	bool has_sent_handshake;
	bool sent_lastminute_handshake;

	/* the initiation made last, kept so that a spray sends the same bytes to
	 * every candidate and the first response to any copy completes it */
	struct wg_msg_initiation last_init;
	uint64_t last_init_ns;		/* when it was made */
	uint64_t last_init_sent_ns;	/* its latest transmission */
	bool has_last_init;
	uint64_t handshake_rtt_ns;	/* 0: no response measured yet */

	/* inner sources accepted beyond the allowed IPs (no routing) */
	struct cidr rx_src[WG_PEER_RX_SOURCES_MAX];
	int n_rx_src;

	/* packets waiting for a session, oldest first */
	struct staged_pkt *staged[WG_MAX_STAGED_PACKETS];
	unsigned staged_head, staged_count;
};

struct wg_device {
	const struct wg_device_ops *ops;
	void *arg;

	struct wg_static_identity identity;
	struct wg_index_table *index;
	struct wg_cookie_checker checker;
	struct wg_ratelimit *ratelimit;
	struct wg_allowedips *aips;
	size_t mtu;

	struct wg_peer *first, *last;
	struct wg_peer *buckets[PEER_BUCKETS];
	size_t n_peers;

	uint64_t now;			/* the owner's monotonic ns, given with every call */
	uint64_t wall_offset;		/* wall ns = now + wall_offset (mod 2^64) */
	uint64_t next;			/* at or before every peer's next deadline; 0: none */
	struct wg_device_stats stats;

	/* datagrams and TUN packets collected during one batch */
	struct netio_pkt tx[NETIO_BATCH_MAX];
	int n_tx;
	struct netio_pkt deliver[NETIO_BATCH_MAX];
	int n_deliver;

	/* Issue 19, a worker per core: the AEAD of a batch runs on the
	 * workers; the rest (counters, replay windows, timers, handshakes,
	 * routing, the order of sends and deliveries) stays on the owner's
	 * thread. seal[]: data in tx[] whose counters are reserved, sealed
	 * before tx[] leaves. rx[]: a run of data messages opened together,
	 * then finished one by one in arrival order. */
	struct wg_workers *workers;	/* NULL: one thread */
	struct seal_job {
		struct wg_keypair *kp;	/* a reference */
		struct wg_pkt wp;
	} seal[NETIO_BATCH_MAX];
	int n_seal;
	struct rx_job {
		struct netio_pkt *pkt;
		struct wg_keypair *kp;	/* a reference; NULL: unknown index */
		struct wg_pkt wp;
	} rx[NETIO_BATCH_MAX];
	int n_rx;
};

static uint64_t wall_ns(const struct wg_device *dev)
{
	return dev->now + dev->wall_offset;
}

static bool has_endpoint(const struct wg_peer *p)
{
	return p->endpoint.sa.sa_family == AF_INET || p->endpoint.sa.sa_family == AF_INET6;
}

/* ---- output ---------------------------------------------------------------- */

static void seal_job(void *ctx, int i)
{
	struct wg_device *dev = ctx;

	wg_noise_encrypt_seal(dev->seal[i].kp, &dev->seal[i].wp, dev->mtu);
}

static void run_seals(struct wg_device *dev)
{
	if (!dev->n_seal)
		return;
	wg_workers_run(dev->workers, seal_job, dev, dev->n_seal);
	for (int i = 0; i < dev->n_seal; i++)
		wg_keypair_put(dev->seal[i].kp);
	dev->n_seal = 0;
}

static void flush_tx(struct wg_device *dev)
{
	run_seals(dev);
	if (dev->n_tx)
		dev->ops->udp_send(dev->arg, dev->tx, dev->n_tx);
	dev->n_tx = 0;
}

static void flush_deliver(struct wg_device *dev)
{
	if (dev->n_deliver)
		dev->ops->tun_deliver(dev->arg, dev->deliver, dev->n_deliver);
	dev->n_deliver = 0;
}

static void queue_tx(struct wg_device *dev, uint8_t *data, size_t len, const union sockaddr_any *to)
{
	struct netio_pkt *p = &dev->tx[dev->n_tx++];
	p->data = data;
	p->len = len;
	p->cap = len;
	p->addr = *to;
	if (dev->n_tx == NETIO_BATCH_MAX)
		flush_tx(dev);
}

/* a data message whose counter wp holds, sealed (by the workers) when tx[]
 * leaves: its place in tx[] is its counter's order */
static void queue_seal(struct wg_device *dev, struct wg_keypair *kp, const struct wg_pkt *wp,
		       const union sockaddr_any *to)
{
	struct seal_job *j = &dev->seal[dev->n_seal++];

	j->kp = wg_keypair_get(kp);
	j->wp = *wp;
	queue_tx(dev, wp->data, wg_noise_data_len(wp->len, dev->mtu), to);
}

/* a handshake message or keepalive: out at once, in order with queued data */
static void send_now(struct wg_device *dev, uint8_t *data, size_t len, const union sockaddr_any *to)
{
	struct netio_pkt p = { .data = data, .len = len, .cap = len, .addr = *to };
	flush_tx(dev);
	dev->ops->udp_send(dev->arg, &p, 1);
}

/* ---- timers ---------------------------------------------------------------- */

/* Keeps dev->next at or before the earliest deadline of the peer's timers.
 * Hooks only ever move deadlines; wg_device_expire() finds nothing due at a
 * deadline that moved later and looks again, so those cost nothing here. */
static void peer_timers_update(struct wg_peer *p)
{
	uint64_t next = wg_timers_next(&p->timers);

	if (next && (!p->dev->next || next < p->dev->next))
		p->dev->next = next;
}

/* ---- staging ---------------------------------------------------------------- */

static void staged_drop_all(struct wg_peer *p)
{
	while (p->staged_count) {
		free(p->staged[p->staged_head]);
		p->staged[p->staged_head] = NULL;
		p->staged_head = (p->staged_head + 1) % WG_MAX_STAGED_PACKETS;
		p->staged_count--;
		p->dev->stats.tx_staged_dropped++;
	}
}

static void stage(struct wg_peer *p, const uint8_t *data, size_t len)
{
	struct staged_pkt *s = malloc(sizeof(*s) + WG_DEVICE_HEADROOM + len + WG_DEVICE_TAILROOM);
	if (!s) {
		p->dev->stats.tx_staged_dropped++;
		return;
	}
	s->len = len;
	memcpy(s->buf + WG_DEVICE_HEADROOM, data, len);
	if (p->staged_count == WG_MAX_STAGED_PACKETS) {
		/* the kernel keeps the newest packets */
		free(p->staged[p->staged_head]);
		p->staged_head = (p->staged_head + 1) % WG_MAX_STAGED_PACKETS;
		p->staged_count--;
		p->dev->stats.tx_staged_dropped++;
	}
	p->staged[(p->staged_head + p->staged_count) % WG_MAX_STAGED_PACKETS] = s;
	p->staged_count++;
}

/* ---- handshake out ----------------------------------------------------------- */

/* a new initiation into p->last_init; the handshake's previous one is gone */
static int create_initiation(struct wg_peer *p)
{
	struct wg_device *dev = p->dev;

	if (wg_noise_create_initiation(&p->hs, &p->last_init, wall_ns(dev)) < 0) {
		p->has_last_init = false;
		return -ENOKEY;
	}
	wg_cookie_add_macs(&p->cookie, (uint8_t *)&p->last_init, sizeof(p->last_init), dev->now);
	p->last_init_ns = dev->now;
	p->has_last_init = true;
	p->last_sent_handshake_ns = dev->now;
	p->has_sent_handshake = true;
	return 0;
}

/* kernel send.c wg_packet_send_queued_handshake_initiation: at most one
 * initiation per REKEY_TIMEOUT, whoever asks */
static void send_initiation(struct wg_peer *p, bool is_retry)
{
	struct wg_device *dev = p->dev;

	if (!is_retry)
		wg_timers_handshake_attempts_reset(&p->timers);
	if (p->has_sent_handshake && dev->now - p->last_sent_handshake_ns < WG_REKEY_TIMEOUT_NS)
		return;
	if (!has_endpoint(p)) {
		dev->stats.tx_no_endpoint++;
		return;
	}
	if (create_initiation(p) < 0)
		return;
	wg_timers_any_authenticated_packet_traversal(&p->timers, dev->now);
	wg_timers_any_authenticated_packet_sent(&p->timers, dev->now);
	send_now(dev, (uint8_t *)&p->last_init, sizeof(p->last_init), &p->endpoint);
	p->last_init_sent_ns = dev->now;
	wg_timers_handshake_initiated(&p->timers, dev->now);
	dev->stats.handshake_initiations_tx++;
	peer_timers_update(p);
}

/* kernel send.c keep_key_fresh: rekey by age or message count after sending */
static void keep_key_fresh_send(struct wg_peer *p, struct wg_keypair *kp)
{
	if (wg_keypair_should_rekey_after_send(kp, p->dev->now))
		send_initiation(p, false);
}

static void sent_authenticated(struct wg_peer *p, bool data)
{
	wg_timers_any_authenticated_packet_traversal(&p->timers, p->dev->now);
	wg_timers_any_authenticated_packet_sent(&p->timers, p->dev->now);
	if (data)
		wg_timers_data_sent(&p->timers, p->dev->now);
}

/* the current session, if it may send now; a reference is taken */
static struct wg_keypair *sending_keypair(struct wg_peer *p)
{
	struct wg_keypair *kp = wg_keypairs_current(&p->kps);
	if (kp && !wg_keypair_can_send(kp, p->dev->now)) {
		wg_keypair_put(kp);
		kp = NULL;
	}
	return kp;
}

/* Encrypts the staged packets and sends them; starts a handshake when there
 * is no session to send them with. */
static void send_staged(struct wg_peer *p)
{
	struct wg_device *dev = p->dev;
	struct wg_pkt wp[NETIO_BATCH_MAX];
	struct staged_pkt *bufs[NETIO_BATCH_MAX];
	struct wg_keypair *kp;

	if (!p->staged_count)
		return;
	kp = sending_keypair(p);
	if (!kp) {
		send_initiation(p, false);
		return;
	}
	if (!has_endpoint(p)) {
		dev->stats.tx_no_endpoint++;
		wg_keypair_put(kp);
		return;
	}
	flush_tx(dev);
	while (p->staged_count) {
		size_t n = 0;
		while (p->staged_count && n < NETIO_BATCH_MAX) {
			struct staged_pkt *s = p->staged[p->staged_head];
			p->staged[p->staged_head] = NULL;
			p->staged_head = (p->staged_head + 1) % WG_MAX_STAGED_PACKETS;
			p->staged_count--;
			bufs[n] = s;
			wp[n] = (struct wg_pkt){ .data = s->buf, .len = s->len,
						 .cap = WG_DEVICE_HEADROOM + s->len + WG_DEVICE_TAILROOM };
			n++;
		}
		wg_noise_encrypt_batch(kp, wp, n, dev->mtu, dev->now);
		for (size_t i = 0; i < n; i++) {
			if (wp[i].status == 0) {
				queue_tx(dev, wp[i].data, wp[i].len, &p->endpoint);
				p->tx_bytes += wp[i].len;
			}
		}
		flush_tx(dev);
		for (size_t i = 0; i < n; i++)
			free(bufs[i]);
	}
	sent_authenticated(p, true);
	keep_key_fresh_send(p, kp);
	wg_keypair_put(kp);
	peer_timers_update(p);
}

/* kernel send.c wg_packet_send_keepalive: staged packets serve as keepalive */
static void send_keepalive(struct wg_peer *p)
{
	struct wg_device *dev = p->dev;
	uint8_t buf[WG_MSG_DATA_MIN_LEN + WG_PADDING_MULTIPLE];
	struct wg_keypair *kp;
	size_t len;

	if (p->staged_count) {
		send_staged(p);
		return;
	}
	kp = sending_keypair(p);
	if (!kp) {
		send_initiation(p, false);
		return;
	}
	if (has_endpoint(p) && wg_noise_encrypt(kp, buf, 0, sizeof(buf), dev->mtu, dev->now, &len) == 0) {
		send_now(dev, buf, len, &p->endpoint);
		p->tx_bytes += len;
		p->tx_keepalives++;
		sent_authenticated(p, false);
		keep_key_fresh_send(p, kp);
	}
	wg_keypair_put(kp);
	peer_timers_update(p);
}

static void peer_expire(struct wg_peer *p)
{
	uint32_t actions = wg_timers_expire(&p->timers, p->dev->now);

	if (actions & WG_TIMER_GIVE_UP)
		staged_drop_all(p);
	if (actions & WG_TIMER_ZERO_KEYS) {
		/* 6.3: nothing for 3 x Reject-After-Time: no key material survives */
		wg_keypairs_clear(&p->kps);
		wg_handshake_clear(&p->hs);
	}
	if (actions & WG_TIMER_SEND_INITIATION)
		send_initiation(p, true);
	if (actions & WG_TIMER_SEND_KEEPALIVE)
		send_keepalive(p);
}

void wg_device_expire(struct wg_device *dev, uint64_t now)
{
	uint64_t next = 0;

	dev->now = now;
	for (struct wg_peer *p = dev->first; p; p = p->next) {
		uint64_t t = wg_timers_next(&p->timers);

		if (t && t <= now) {
			peer_expire(p);
			t = wg_timers_next(&p->timers);
		}
		if (t && (!next || t < next))
			next = t;
	}
	dev->next = next;
}

uint64_t wg_device_next_deadline(const struct wg_device *dev)
{
	return dev->next;
}

void wg_device_set_wall_clock(struct wg_device *dev, uint64_t now, uint64_t wall)
{
	dev->wall_offset = wall - now;
}

/* ---- peers ------------------------------------------------------------------ */

static size_t bucket_of(const uint8_t pub[WG_KEY_LEN])
{
	uint32_t h;
	memcpy(&h, pub, sizeof(h));	/* public keys are uniformly random */
	return h % PEER_BUCKETS;
}

struct wg_peer *wg_device_peer_find(struct wg_device *dev, const uint8_t pub[WG_KEY_LEN])
{
	for (struct wg_peer *p = dev->buckets[bucket_of(pub)]; p; p = p->hnext)
		if (!memcmp(p->public_key, pub, WG_KEY_LEN))
			return p;
	return NULL;
}

static struct wg_handshake *lookup_handshake(void *ctx, const uint8_t remote_static[WG_KEY_LEN])
{
	struct wg_peer *p = wg_device_peer_find(ctx, remote_static);
	return p ? &p->hs : NULL;
}

int wg_device_peer_add(struct wg_device *dev, const uint8_t pub[WG_KEY_LEN], struct wg_peer **out)
{
	struct wg_peer *p;
	int rc;

	*out = NULL;
	if (wg_device_peer_find(dev, pub))
		return -EEXIST;
	if (dev->identity.has_identity && !memcmp(pub, dev->identity.pub, WG_KEY_LEN))
		return -EINVAL;
	if (dev->n_peers >= WG_MAX_PEERS)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->dev = dev;
	memcpy(p->public_key, pub, WG_KEY_LEN);
	p->endpoint.sa.sa_family = AF_UNSPEC;
	rc = wg_handshake_init(&p->hs, &dev->identity, dev->index, pub, NULL, p);
	if (rc < 0) {
		free(p);
		return rc;
	}
	wg_keypairs_init(&p->kps);
	wg_cookie_maker_init(&p->cookie, pub);
	uint32_t seed;
	wg_random(&seed, sizeof(seed));
	wg_timers_init(&p->timers, seed);

	size_t b = bucket_of(pub);
	p->hnext = dev->buckets[b];
	dev->buckets[b] = p;
	p->prev = dev->last;
	if (dev->last)
		dev->last->next = p;
	else
		dev->first = p;
	dev->last = p;
	dev->n_peers++;
	*out = p;
	return 0;
}

void wg_device_peer_remove(struct wg_device *dev, struct wg_peer *p)
{
	struct wg_peer **pp;

	if (!p)
		return;
	for (pp = &dev->buckets[bucket_of(p->public_key)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == p) {
			*pp = p->hnext;
			break;
		}
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		dev->first = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		dev->last = p->prev;
	dev->n_peers--;

	wg_allowedips_remove_peer(dev->aips, p);
	staged_drop_all(p);
	wg_keypairs_clear(&p->kps);
	wg_handshake_deinit(&p->hs);
	wg_cookie_maker_deinit(&p->cookie);
	wg_wipe(p, sizeof(*p));
	free(p);
}

void wg_device_peers_clear(struct wg_device *dev)
{
	while (dev->first)
		wg_device_peer_remove(dev, dev->first);
}

size_t wg_device_peer_count(const struct wg_device *dev)
{
	return dev->n_peers;
}

struct wg_peer *wg_device_peer_next(struct wg_device *dev, struct wg_peer *p)
{
	return p ? p->next : dev->first;
}

void wg_peer_set_preshared_key(struct wg_peer *p, const uint8_t *psk)
{
	p->has_psk = psk && !wg_is_zero(psk, WG_KEY_LEN);
	if (p->has_psk)
		memcpy(p->psk, psk, WG_KEY_LEN);
	else
		wg_wipe(p->psk, sizeof(p->psk));
	wg_handshake_set_psk(&p->hs, p->has_psk ? p->psk : NULL);
}

void wg_peer_set_endpoint(struct wg_peer *p, const union sockaddr_any *ep)
{
	p->endpoint = *ep;
	addr_unmap_v4(&p->endpoint);
}

void wg_peer_set_persistent_keepalive(struct wg_peer *p, uint16_t seconds, uint64_t now)
{
	p->dev->now = now;
	if (wg_timers_set_persistent_keepalive(&p->timers, seconds, p->dev->now))
		send_keepalive(p);
	peer_timers_update(p);
}

int wg_peer_allowed_ip_add(struct wg_peer *p, const struct cidr *c)
{
	return wg_allowedips_insert(p->dev->aips, c->family, c->addr, c->prefix, p);
}

int wg_peer_allowed_ip_remove(struct wg_peer *p, const struct cidr *c)
{
	return wg_allowedips_remove(p->dev->aips, c->family, c->addr, c->prefix, p);
}

void wg_peer_allowed_ips_clear(struct wg_peer *p)
{
	wg_allowedips_remove_peer(p->dev->aips, p);
}

struct aip_walk {
	struct cidr *out;
	size_t max, n;
};

static int aip_collect(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	struct aip_walk *w = ctx;
	(void)peer;
	if (w->out && w->n < w->max) {
		struct cidr *c = &w->out[w->n];
		memset(c, 0, sizeof(*c));
		c->family = family;
		memcpy(c->addr, addr, family == AF_INET ? 4 : 16);
		c->prefix = cidr;
	}
	w->n++;
	return 0;
}

size_t wg_peer_allowed_ips(struct wg_peer *p, struct cidr *out, size_t max)
{
	struct aip_walk w = { .out = out, .max = max };
	wg_allowedips_walk(p->dev->aips, p, aip_collect, &w);
	return w.n;
}

void wg_peer_get_state(const struct wg_peer *p, struct wg_peer_state *out)
{
	memcpy(out->public_key, p->public_key, WG_KEY_LEN);
	out->endpoint = p->endpoint;
	out->last_handshake = p->last_handshake;
	out->rx_bytes = p->rx_bytes;
	out->tx_bytes = p->tx_bytes;
	out->persistent_keepalive = p->timers.persistent_keepalive_interval;
	out->tx_keepalives = p->tx_keepalives;
	out->rx_initiations = p->rx_initiations;
	out->has_preshared_key = p->has_psk;
	out->handshake_rtt_ns = p->handshake_rtt_ns;
}

void wg_peer_initiate(struct wg_peer *p, uint64_t now)
{
	p->dev->now = now;
	send_initiation(p, false);
}

int wg_peer_initiate_to(struct wg_peer *p, const union sockaddr_any *eps, int n, uint64_t now)
{
	struct wg_device *dev = p->dev;
	struct netio_pkt pkts[NETIO_BATCH_MAX];
	bool fresh;
	int k = 0;

	if (!eps || n <= 0)
		return -EINVAL;
	dev->now = now;
	/* the initiation in flight is still answerable: the same bytes again,
	 * so whichever copy arrives first is the one answered */
	fresh = p->has_last_init && p->hs.state == WG_HS_CREATED_INITIATION &&
		dev->now - p->last_init_ns < WG_REKEY_TIMEOUT_NS;
	for (int i = 0; i < n && k < NETIO_BATCH_MAX; i++) {
		if (eps[i].sa.sa_family != AF_INET && eps[i].sa.sa_family != AF_INET6)
			continue;
		pkts[k] = (struct netio_pkt){ .len = sizeof(p->last_init), .cap = sizeof(p->last_init),
					      .addr = eps[i] };
		addr_unmap_v4(&pkts[k].addr);
		pkts[k].data = (uint8_t *)&p->last_init;
		k++;
	}
	if (!k)
		return -EINVAL;
	if (!fresh) {
		wg_timers_handshake_attempts_reset(&p->timers);
		if (create_initiation(p) < 0)
			return -ENOKEY;
	}
	/* retransmissions by the timer go to the endpoint; the first response
	 * from anywhere moves it (roam) */
	if (!has_endpoint(p))
		p->endpoint = pkts[0].addr;
	wg_timers_any_authenticated_packet_traversal(&p->timers, dev->now);
	wg_timers_any_authenticated_packet_sent(&p->timers, dev->now);
	flush_tx(dev);
	dev->ops->udp_send(dev->arg, pkts, k);
	p->last_init_sent_ns = dev->now;
	if (!fresh)
		wg_timers_handshake_initiated(&p->timers, dev->now);
	dev->stats.handshake_initiations_tx += (uint64_t)k;
	peer_timers_update(p);
	return k;
}

int wg_peer_rx_source_add(struct wg_peer *p, const struct cidr *c)
{
	if (!c || (c->family != AF_INET && c->family != AF_INET6) ||
	    c->prefix > (c->family == AF_INET ? 32 : 128))
		return -EINVAL;
	for (int i = 0; i < p->n_rx_src; i++)
		if (!memcmp(&p->rx_src[i], c, sizeof(*c)))
			return 0;
	if (p->n_rx_src >= WG_PEER_RX_SOURCES_MAX)
		return -ENOSPC;
	memset(&p->rx_src[p->n_rx_src], 0, sizeof(p->rx_src[0]));
	p->rx_src[p->n_rx_src].family = c->family;
	memcpy(p->rx_src[p->n_rx_src].addr, c->addr, sizeof(c->addr));
	p->rx_src[p->n_rx_src].prefix = c->prefix;
	p->n_rx_src++;
	return 0;
}

int wg_peer_rx_source_remove(struct wg_peer *p, const struct cidr *c)
{
	for (int i = 0; i < p->n_rx_src; i++)
		if (p->rx_src[i].family == c->family && p->rx_src[i].prefix == c->prefix &&
		    !memcmp(p->rx_src[i].addr, c->addr, c->family == AF_INET ? 4 : 16)) {
			p->rx_src[i] = p->rx_src[--p->n_rx_src];
			return 0;
		}
	return -ENOENT;
}

/* the longest prefix of a peer's allowed IPs that holds the address */
struct owner_match {
	const union sockaddr_any *a;
	int longest;
};

static int owner_prefix(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	struct owner_match *om = ctx;
	struct cidr c = { .family = family, .prefix = cidr };

	(void)peer;
	memcpy(c.addr, addr, family == AF_INET ? 4 : 16);
	if (cidr_contains(&c, om->a) && cidr > om->longest)
		om->longest = cidr;
	return 0;
}

/* The inner source is one the peer may send from without owning it (issue
 * 15 point 1): inside one of its rx sources, and not owned by another peer
 * with a longer prefix than that rx source. A peer reached directly holds
 * its own address (/32, /128), so no relay speaks for it; an address routed
 * through the relay in use (the VPC prefix) may come through another relay,
 * so agents on different relays reach each other. */
static bool rx_source_extra(const struct wg_device *dev, const struct wg_peer *p, const struct wg_peer *owner,
			    const uint8_t *ip)
{
	union sockaddr_any a = { 0 };
	struct owner_match om = { .a = &a, .longest = -1 };
	int matched = -1;

	if (!p->n_rx_src)
		return false;
	if ((ip[0] >> 4) == 4) {
		a.in.sin_family = AF_INET;
		memcpy(&a.in.sin_addr, ip + 12, 4);
	} else {
		a.in6.sin6_family = AF_INET6;
		memcpy(&a.in6.sin6_addr, ip + 8, 16);
	}
	for (int i = 0; i < p->n_rx_src; i++)
		if (cidr_contains(&p->rx_src[i], &a) && p->rx_src[i].prefix > matched)
			matched = p->rx_src[i].prefix;
	if (matched < 0)
		return false;
	if (!owner)
		return true;
	wg_allowedips_walk(dev->aips, (void *)owner, owner_prefix, &om);
	return om.longest <= matched;
}

/* ---- device ------------------------------------------------------------------ */

int wg_device_new(const struct wg_device_ops *ops, void *arg, struct wg_device **out)
{
	struct wg_device *dev;
	int rc;

	*out = NULL;
	rc = wg_crypto_init();
	if (rc < 0)
		return rc;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->ops = ops;
	dev->arg = arg;
	dev->mtu = WG_DEFAULT_MTU;
	dev->index = wg_index_table_new();
	if (!dev->index) {
		rc = -ENOMEM;
		goto err_free;
	}
	dev->aips = wg_allowedips_new();
	if (!dev->aips) {
		rc = -ENOMEM;
		goto err_index;
	}
	rc = wg_ratelimit_new(&dev->ratelimit);
	if (rc < 0)
		goto err_aips;
	wg_cookie_checker_init(&dev->checker, NULL);
	*out = dev;
	return 0;

err_aips:
	wg_allowedips_free(dev->aips);
err_index:
	wg_index_table_free(dev->index);
err_free:
	free(dev);
	return rc;
}

void wg_device_free(struct wg_device *dev)
{
	if (!dev)
		return;
	wg_device_peers_clear(dev);
	wg_workers_free(dev->workers);
	wg_cookie_checker_deinit(&dev->checker);
	wg_ratelimit_free(dev->ratelimit);
	wg_allowedips_free(dev->aips);
	wg_index_table_free(dev->index);
	wg_static_identity_clear(&dev->identity);
	wg_wipe(dev, sizeof(*dev));
	free(dev);
}

int wg_device_set_private_key(struct wg_device *dev, const uint8_t *key)
{
	uint8_t pub[WG_KEY_LEN];
	int rc;

	if (key && !wg_is_zero(key, WG_KEY_LEN)) {
		uint8_t clamped[WG_KEY_LEN];
		memcpy(clamped, key, WG_KEY_LEN);
		wg_key_clamp(clamped);
		bool same = dev->identity.has_identity && wg_ct_eq(clamped, dev->identity.priv, WG_KEY_LEN);
		wg_wipe(clamped, sizeof(clamped));
		if (same)
			return 0;
		rc = wg_dh_pubkey(pub, key);
		if (rc < 0)
			return rc;
		/* a peer with our own public key would be ourselves */
		wg_device_peer_remove(dev, wg_device_peer_find(dev, pub));
		rc = wg_static_identity_set(&dev->identity, key);
		if (rc < 0)
			return rc;
		wg_cookie_checker_set_key(&dev->checker, dev->identity.pub);
	} else {
		if (!dev->identity.has_identity)
			return 0;
		wg_static_identity_clear(&dev->identity);
		wg_cookie_checker_set_key(&dev->checker, NULL);
	}
	for (struct wg_peer *p = dev->first; p; p = p->next) {
		wg_handshake_precompute(&p->hs);
		wg_keypairs_expire_current(&p->kps);
	}
	return 0;
}

bool wg_device_get_private_key(const struct wg_device *dev, uint8_t out[WG_KEY_LEN])
{
	if (!dev->identity.has_identity)
		return false;
	memcpy(out, dev->identity.priv, WG_KEY_LEN);
	return true;
}

int wg_device_set_threads(struct wg_device *dev, int threads)
{
	struct wg_workers *w = NULL;
	int rc;

	if (threads == 0)
		threads = wg_workers_cpus();
	if (threads < 1 || threads > WG_WORKERS_MAX)
		return -EINVAL;
	if (threads == wg_workers_threads(dev->workers))
		return 0;
	if (threads > 1 && (rc = wg_workers_new(threads, &w)) < 0)
		return rc;
	wg_workers_free(dev->workers);
	dev->workers = w;
	return 0;
}

int wg_device_get_threads(const struct wg_device *dev)
{
	return wg_workers_threads(dev->workers);
}

void wg_device_set_mtu(struct wg_device *dev, size_t mtu)
{
	dev->mtu = mtu;
}

void wg_device_get_stats(const struct wg_device *dev, struct wg_device_stats *out)
{
	*out = dev->stats;
}

/* ---- UAPI glue ---------------------------------------------------------------- */

static int apply_peer(struct wg_device *dev, const struct wg_uapi_peer *u)
{
	struct wg_peer *p = wg_device_peer_find(dev, u->public_key);
	int rc;

	if (u->flags & WG_UAPI_PEER_REMOVE) {
		wg_device_peer_remove(dev, p);
		return 0;
	}
	if (!p) {
		if (u->flags & WG_UAPI_PEER_UPDATE_ONLY)
			return 0;
		/* the kernel silently ignores a peer that is the device itself */
		if (dev->identity.has_identity && !memcmp(u->public_key, dev->identity.pub, WG_KEY_LEN))
			return 0;
		rc = wg_device_peer_add(dev, u->public_key, &p);
		if (rc < 0)
			return rc;
	}
	if (u->flags & WG_UAPI_PEER_HAS_PRESHARED_KEY)
		wg_peer_set_preshared_key(p, u->preshared_key);
	if (u->flags & WG_UAPI_PEER_HAS_ENDPOINT)
		wg_peer_set_endpoint(p, &u->endpoint);
	if (u->flags & WG_UAPI_PEER_REPLACE_ALLOWED_IPS)
		wg_peer_allowed_ips_clear(p);
	for (size_t i = 0; i < u->n_allowed_ips; i++) {
		rc = wg_peer_allowed_ip_add(p, &u->allowed_ips[i]);
		if (rc < 0)
			return rc;
	}
	if (u->flags & WG_UAPI_PEER_HAS_KEEPALIVE)
		wg_peer_set_persistent_keepalive(p, u->persistent_keepalive, dev->now);
	return 0;
}

int wg_device_apply(struct wg_device *dev, const struct wg_uapi_config *cfg, uint64_t now)
{
	int rc;

	dev->now = now;
	if (cfg->flags & WG_UAPI_HAS_PRIVATE_KEY) {
		rc = wg_device_set_private_key(dev, cfg->private_key);
		if (rc < 0)
			return rc;
	}
	if (cfg->flags & WG_UAPI_REPLACE_PEERS)
		wg_device_peers_clear(dev);
	for (size_t i = 0; i < cfg->n_peers; i++) {
		rc = apply_peer(dev, &cfg->peers[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int wg_device_dump(struct wg_device *dev, struct wg_uapi_config *out)
{
	memset(out, 0, sizeof(*out));
	out->has_private_key = wg_device_get_private_key(dev, out->private_key);
	for (struct wg_peer *p = dev->first; p; p = p->next) {
		struct wg_uapi_peer *u = wg_uapi_config_add_peer(out);
		size_t n;
		if (!u)
			goto err;
		memcpy(u->public_key, p->public_key, WG_KEY_LEN);
		if (p->has_psk)
			memcpy(u->preshared_key, p->psk, WG_KEY_LEN);
		u->endpoint = p->endpoint;
		u->last_handshake_sec = p->last_handshake.tv_sec;
		u->last_handshake_nsec = p->last_handshake.tv_nsec;
		u->rx_bytes = p->rx_bytes;
		u->tx_bytes = p->tx_bytes;
		u->persistent_keepalive = p->timers.persistent_keepalive_interval;
		n = wg_peer_allowed_ips(p, NULL, 0);
		if (n) {
			u->allowed_ips = calloc(n, sizeof(*u->allowed_ips));
			if (!u->allowed_ips)
				goto err;
			u->cap_allowed_ips = n;
			u->n_allowed_ips = wg_peer_allowed_ips(p, u->allowed_ips, n);
		}
	}
	return 0;
err:
	wg_uapi_config_clear(out);
	return -ENOMEM;
}

/* ---- receive ---------------------------------------------------------------- */

/* the handshake completed: its time, and the owner told */
static void handshake_completed(struct wg_peer *p)
{
	struct wg_device *dev = p->dev;
	uint64_t w = wall_ns(dev);

	p->last_handshake.tv_sec = (time_t)(w / WG_NSEC_PER_SEC);
	p->last_handshake.tv_nsec = (long)(w % WG_NSEC_PER_SEC);
	if (dev->ops->handshake_complete)
		dev->ops->handshake_complete(dev->arg, p);
}

/* 5.4.6 roaming: the endpoint is wherever the latest authenticated packet came from */
static void roam(struct wg_peer *p, const union sockaddr_any *src)
{
	if (!addr_equal(&p->endpoint, src)) {
		char a[ADDR_STRLEN], b[ADDR_STRLEN];
		log_debug("wg", "peer endpoint changed old=%s new=%s", addr_format(&p->endpoint, a, sizeof(a)),
			  addr_format(src, b, sizeof(b)));
		p->endpoint = *src;
	}
}

static void received_authenticated(struct wg_peer *p)
{
	wg_timers_any_authenticated_packet_received(&p->timers, p->dev->now);
	wg_timers_any_authenticated_packet_traversal(&p->timers, p->dev->now);
}

static void rx_initiation(struct wg_device *dev, struct netio_pkt *pkt)
{
	struct wg_msg_response resp;
	struct wg_handshake *hs;
	struct wg_peer *p;

	dev->stats.handshake_initiations_rx++;
	if (wg_noise_consume_initiation((const struct wg_msg_initiation *)pkt->data, &dev->identity,
					lookup_handshake, dev, dev->now, &hs) < 0) {
		dev->stats.rx_bad_handshake++;
		return;
	}
	p = hs->entry.peer;
	roam(p, &pkt->addr);
	p->rx_bytes += pkt->len;
	p->rx_initiations++;
	if (wg_noise_create_response(hs, &resp) == 0) {
		wg_cookie_add_macs(&p->cookie, (uint8_t *)&resp, sizeof(resp), dev->now);
		if (wg_noise_begin_session(hs, &p->kps, dev->now, NULL) == 0) {
			wg_timers_session_derived(&p->timers, dev->now);
			wg_timers_any_authenticated_packet_traversal(&p->timers, dev->now);
			wg_timers_any_authenticated_packet_sent(&p->timers, dev->now);
			p->last_sent_handshake_ns = dev->now;
			p->has_sent_handshake = true;
			send_now(dev, (uint8_t *)&resp, sizeof(resp), &p->endpoint);
			dev->stats.handshake_responses_tx++;
		}
	}
	received_authenticated(p);
	peer_timers_update(p);
}

static void rx_response(struct wg_device *dev, struct netio_pkt *pkt)
{
	struct wg_handshake *hs;
	struct wg_peer *p;

	dev->stats.handshake_responses_rx++;
	if (wg_noise_consume_response((const struct wg_msg_response *)pkt->data, &dev->identity, dev->index,
				      &hs) < 0) {
		dev->stats.rx_bad_handshake++;
		return;
	}
	p = hs->entry.peer;
	roam(p, &pkt->addr);
	p->rx_bytes += pkt->len;
	if (p->has_last_init) {
		/* from the latest copy of the initiation it answers */
		p->handshake_rtt_ns = dev->now - p->last_init_sent_ns;
		if (!p->handshake_rtt_ns)
			p->handshake_rtt_ns = 1;
		p->has_last_init = false;
	}
	if (wg_noise_begin_session(hs, &p->kps, dev->now, NULL) == 0) {
		wg_timers_session_derived(&p->timers, dev->now);
		wg_timers_handshake_complete(&p->timers, dev->now);
		handshake_completed(p);
		p->sent_lastminute_handshake = false;
		/* staged packets confirm the session; without any, a keepalive does */
		send_keepalive(p);
	}
	received_authenticated(p);
	peer_timers_update(p);
}

static void rx_cookie_reply(struct wg_device *dev, struct netio_pkt *pkt)
{
	const struct wg_msg_cookie_reply *msg = (const struct wg_msg_cookie_reply *)pkt->data;
	struct wg_peer *p = wg_index_lookup_peer(dev->index, wg_le32_get(&msg->receiver_index),
						 1u << WG_INDEX_HANDSHAKE | 1u << WG_INDEX_KEYPAIR);
	dev->stats.cookie_replies_rx++;
	if (!p) {
		dev->stats.rx_unknown_index++;
		return;
	}
	if (wg_cookie_consume_reply(&p->cookie, msg, dev->now) < 0)
		dev->stats.rx_bad_handshake++;
}

/* whitepaper 5.3: under load, answer without doing Diffie-Hellman */
static void rx_handshake(struct wg_device *dev, struct netio_pkt *pkt, int type)
{
	if (type == WG_MSG_COOKIE_REPLY) {
		rx_cookie_reply(dev, pkt);
		return;
	}
	bool under_load = wg_ratelimit_under_load(dev->ratelimit, dev->now);
	enum wg_cookie_mac_state st =
		wg_cookie_validate(&dev->checker, pkt->data, pkt->len, &pkt->addr, under_load, dev->now);
	if (st == WG_COOKIE_INVALID_MAC) {
		dev->stats.rx_bad_mac++;
		return;
	}
	if (under_load && st != WG_COOKIE_VALID_MAC_WITH_COOKIE) {
		struct wg_msg_cookie_reply reply;
		if (wg_cookie_create_reply(&dev->checker, &reply, pkt->data, pkt->len, &pkt->addr, dev->now) == 0) {
			send_now(dev, (uint8_t *)&reply, sizeof(reply), &pkt->addr);
			dev->stats.cookie_replies_tx++;
		}
		return;
	}
	if (under_load && !wg_ratelimit_allow(dev->ratelimit, &pkt->addr, dev->now)) {
		dev->stats.rx_ratelimited++;
		return;
	}
	if (type == WG_MSG_INITIATION)
		rx_initiation(dev, pkt);
	else
		rx_response(dev, pkt);
}

/* the inner packet's own length, or 0 when it is not a sane IPv4/IPv6 packet */
static size_t ip_len(const uint8_t *ip, size_t len)
{
	size_t n;
	if (len >= 20 && ip[0] >> 4 == 4) {
		n = (size_t)ip[2] << 8 | ip[3];
		return n >= 20 && n <= len ? n : 0;
	}
	if (len >= 40 && ip[0] >> 4 == 6) {
		n = 40 + ((size_t)ip[4] << 8 | ip[5]);
		return n <= len ? n : 0;
	}
	return 0;
}

/* a data message opened (rc 0, plain bytes) or refused: the session's
 * state, the peer's timers, and the TUN, in arrival order; takes kp's
 * reference */
static void rx_data_done(struct wg_device *dev, struct netio_pkt *pkt, struct wg_keypair *kp, int rc,
			 size_t plain)
{
	struct wg_peer *p, *owner;
	size_t n;

	if (rc < 0) {
		if (rc == -EALREADY)
			dev->stats.rx_replay++;
		else if (rc == -EKEYEXPIRED)
			dev->stats.rx_expired++;
		else if (rc == -EINVAL)
			dev->stats.rx_bad_length++;
		else
			dev->stats.rx_bad_auth++;
		wg_keypair_put(kp);
		return;
	}
	p = kp->entry.peer;
	roam(p, &pkt->addr);
	p->rx_bytes += pkt->len;
	if (wg_keypairs_received_with(&p->kps, kp)) {
		/* 5.4.5: the responder's session is confirmed by the first data */
		wg_timers_handshake_complete(&p->timers, dev->now);
		handshake_completed(p);
		p->sent_lastminute_handshake = false;
		send_staged(p);
	}
	wg_keypair_put(kp);
	/* kernel receive.c keep_key_fresh: the initiator rekeys before the session
	 * ages out, once */
	kp = wg_keypairs_current(&p->kps);
	if (kp && wg_keypair_should_rekey_after_recv(kp, dev->now) && !p->sent_lastminute_handshake) {
		p->sent_lastminute_handshake = true;
		send_initiation(p, false);
	}
	wg_keypair_put(kp);
	received_authenticated(p);
	if (plain == 0) {
		dev->stats.rx_keepalive++;
		peer_timers_update(p);
		return;
	}
	wg_timers_data_received(&p->timers, dev->now);
	peer_timers_update(p);

	uint8_t *ip = pkt->data + WG_MSG_DATA_HEADER_LEN;
	n = ip_len(ip, plain);
	if (!n) {
		dev->stats.rx_bad_packet++;
		return;
	}
	/* cryptokey routing: the inner source must be one of the peer's allowed IPs */
	owner = wg_allowedips_lookup_src(dev->aips, ip, n);
	if (owner != p && !rx_source_extra(dev, p, owner, ip)) {
		dev->stats.rx_bad_src++;
		if (owner && dev->ops->rx_owned_elsewhere)
			dev->ops->rx_owned_elsewhere(dev->arg, p, owner);
		return;
	}
	dev->stats.rx_data++;
	struct netio_pkt *d = &dev->deliver[dev->n_deliver++];
	d->data = ip;
	d->len = n;
	d->cap = n;
	d->addr = pkt->addr;
	if (dev->n_deliver == NETIO_BATCH_MAX)
		flush_deliver(dev);
}

static void open_job(void *ctx, int i)
{
	struct wg_device *dev = ctx;

	if (dev->rx[i].kp)
		wg_noise_decrypt_open(dev->rx[i].kp, &dev->rx[i].wp);
}

/* The run of data messages in rx[]: sessions looked up and replay
 * pre-checked in order, opened on the workers, then finished in order. A
 * handshake message ends a run first, so what it changes is seen by the
 * data after it, as when each message is taken alone. */
static void rx_flush(struct wg_device *dev)
{
	for (int i = 0; i < dev->n_rx; i++) {
		struct rx_job *j = &dev->rx[i];
		const struct wg_msg_data *msg = (const struct wg_msg_data *)j->pkt->data;

		j->kp = wg_index_lookup_keypair(dev->index, wg_le32_get(&msg->receiver_index));
		if (!j->kp) {
			dev->stats.rx_unknown_index++;
			if (dev->ops->unknown_session)
				dev->ops->unknown_session(dev->arg, &j->pkt->addr);
			continue;
		}
		j->wp = (struct wg_pkt){ .data = j->pkt->data, .len = j->pkt->len, .cap = j->pkt->len };
		wg_noise_decrypt_check(j->kp, &j->wp, dev->now);
	}
	wg_workers_run(dev->workers, open_job, dev, dev->n_rx);
	for (int i = 0; i < dev->n_rx; i++) {
		struct rx_job *j = &dev->rx[i];

		if (j->kp)
			rx_data_done(dev, j->pkt, j->kp, wg_noise_decrypt_commit(j->kp, &j->wp), j->wp.len);
	}
	dev->n_rx = 0;
}

static void rx_data(struct wg_device *dev, struct netio_pkt *pkt)
{
	if (dev->n_rx == NETIO_BATCH_MAX)
		rx_flush(dev);
	dev->rx[dev->n_rx++].pkt = pkt;
}

void wg_device_input_udp(struct wg_device *dev, struct netio_pkt *pkts, int n, uint64_t now)
{
	dev->now = now;
	for (int i = 0; i < n; i++) {
		struct netio_pkt *pkt = &pkts[i];
		int type = wg_msg_parse(pkt->data, pkt->len);
		if (type != WG_MSG_DATA)
			rx_flush(dev);
		switch (type) {
		case WG_MSG_DATA:
			rx_data(dev, pkt);
			break;
		case WG_MSG_INITIATION:
		case WG_MSG_RESPONSE:
		case WG_MSG_COOKIE_REPLY:
			rx_handshake(dev, pkt, type);
			break;
		case WG_MSG_E_TYPE:
		case WG_MSG_E_RESERVED:
			dev->stats.rx_bad_type++;
			break;
		default:
			dev->stats.rx_bad_length++;
			break;
		}
	}
	rx_flush(dev);
	flush_deliver(dev);
	flush_tx(dev);
}

/* ---- send ------------------------------------------------------------------- */

/* Encrypts one run of packets for the same peer straight into datagrams. */
static void tx_run(struct wg_device *dev, struct wg_peer *p, struct netio_pkt *pkts, int n)
{
	struct wg_pkt wp[NETIO_BATCH_MAX];
	struct wg_keypair *kp = sending_keypair(p);
	bool sent = false, staged = false;

	if (!kp || !has_endpoint(p)) {
		for (int i = 0; i < n; i++)
			stage(p, pkts[i].data, pkts[i].len);
		wg_keypair_put(kp);
		send_initiation(p, false);
		return;
	}
	for (int i = 0; i < n; i++)
		wp[i] = (struct wg_pkt){ .data = pkts[i].data - WG_DEVICE_HEADROOM, .len = pkts[i].len,
					 .cap = pkts[i].cap + WG_DEVICE_HEADROOM };
	wg_noise_encrypt_reserve(kp, wp, (size_t)n, dev->mtu, dev->now);
	for (int i = 0; i < n; i++) {
		if (wp[i].status == 0) {
			queue_seal(dev, kp, &wp[i], &p->endpoint);
			p->tx_bytes += wg_noise_data_len(wp[i].len, dev->mtu);
			sent = true;
		} else {
			/* the session ran out under us: wait for the next one */
			stage(p, pkts[i].data, pkts[i].len);
			staged = true;
		}
	}
	if (sent) {
		sent_authenticated(p, true);
		keep_key_fresh_send(p, kp);
	}
	wg_keypair_put(kp);
	if (staged)
		send_initiation(p, false);
	peer_timers_update(p);
}

void wg_device_input_tun(struct wg_device *dev, struct netio_pkt *pkts, int n, uint64_t now)
{
	struct wg_peer *peer[NETIO_BATCH_MAX];

	dev->now = now;
	while (n > 0) {
		int m = n < NETIO_BATCH_MAX ? n : NETIO_BATCH_MAX;
		for (int i = 0; i < m; i++) {
			peer[i] = wg_allowedips_lookup_dst(dev->aips, pkts[i].data, pkts[i].len);
			if (!peer[i])
				dev->stats.tx_no_route++;
		}
		for (int i = 0; i < m;) {
			int j = i + 1;
			while (j < m && peer[j] == peer[i])
				j++;
			if (peer[i])
				tx_run(dev, peer[i], pkts + i, j - i);
			i = j;
		}
		pkts += m;
		n -= m;
	}
	flush_tx(dev);
}
