/* datapath: meshd's packet path. Datagrams from the WireGuard socket are cut
 * apart (GRO) and sorted: STUN to stunmux.c, the rest to the data plane in
 * batches. IP packets from the TUN go to the data plane; what it decrypts
 * goes to the TUN, except our ping's answers and (with --relay) packets for
 * another peer, which go back in to be encrypted for it, and packets for
 * outside the VPC, which a relay drops. */
#include <string.h>

#include "log.h"
#include "meshd.h"
#include "agent/wg/tunpump.h"

#define BATCHES_PER_WAKE 8

static void dev_udp_send(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshd *m = arg;

	/* message type 1 (little-endian): a handshake initiation */
	if (!phases_reached(&m->phases, PHASE_INITIATION))
		for (int i = 0; i < n; i++)
			if (pkts[i].len >= 4 && pkts[i].data[0] == 1 && !pkts[i].data[1] && !pkts[i].data[2] &&
			    !pkts[i].data[3])
				phases_mark(&m->phases, PHASE_INITIATION);
	(void)!netio_udp_send(m->io, m->udp, pkts, n);
}

void datapath_send(struct meshd *m, const union sockaddr_any *to, const uint8_t *buf, size_t len)
{
	struct netio_pkt p = { .data = (uint8_t *)buf, .len = len, .cap = len, .addr = *to };

	(void)!netio_udp_send(m->io, m->udp, &p, 1);
}

enum relay_dest datapath_relay_dest(const struct meshd *m, const uint8_t *ip, size_t len)
{
	union sockaddr_any dst = { 0 };

	if (len < 20 || (ip[0] >> 4) != 4 || !m->has_vpc)
		return RELAY_DEST_OUTSIDE;	/* the VPC is IPv4 */
	dst.in.sin_family = AF_INET;
	memcpy(&dst.in.sin_addr, ip + 16, 4);
	if (addr_ip_equal(&dst, &m->tip))
		return RELAY_DEST_SELF;
	return cidr_contains(&m->vpc, &dst) ? RELAY_DEST_PEER : RELAY_DEST_OUTSIDE;
}

/* --relay: a packet for another peer goes back into the data plane */
static void relay_forward(struct meshd *m, const uint8_t *ip, size_t len)
{
	if (m->nfwd >= NETIO_BATCH_MAX || len > BUF_SIZE - WG_DEVICE_HEADROOM - WG_DEVICE_TAILROOM)
		return;	/* dropped: the batch is full */
	struct netio_pkt *p = &m->fwd_pkts[m->nfwd++];
	p->data = m->fwd_bufs + (size_t)(m->nfwd - 1) * BUF_SIZE + WG_DEVICE_HEADROOM;
	p->cap = BUF_SIZE - WG_DEVICE_HEADROOM;
	memcpy(p->data, ip, len);
	p->len = len;
}

static void dev_tun_deliver(void *arg, const struct netio_pkt *pkts, int n)
{
	struct meshd *m = arg;
	struct netio_pkt out[NETIO_BATCH_MAX];
	int k = 0;

	if (n)
		phases_mark(&m->phases, PHASE_DATA);
	for (int i = 0; i < n; i++) {
		if (ping_take_reply(m, pkts[i].data, pkts[i].len))
			continue;
		if (m->o.relay) {
			switch (datapath_relay_dest(m, pkts[i].data, pkts[i].len)) {
			case RELAY_DEST_PEER:
				/* issue 16: both devices' groups allow it
				 * (the source is the sender's own: cryptokey
				 * routing checked it against its /32) */
				if (enforce_relay_allows(m, pkts[i].data, pkts[i].len))
					relay_forward(m, pkts[i].data, pkts[i].len);
				continue;
			case RELAY_DEST_OUTSIDE:
				m->relay_outside_vpc++;	/* never into the relay host's networks */
				continue;
			case RELAY_DEST_SELF:
				break;
			}
		}
		out[k++] = pkts[i];
	}
	if (k)
		(void)!netio_tun_write(m->io, m->tun, out, k);
}

/* data for a session this side does not have: noted, answered by
 * lost_answer() once the batch is through */
static void dev_unknown_session(void *arg, const union sockaddr_any *src)
{
	lost_note(arg, src);
}

/* noted for the path, which schedule_poke() runs at once */
static void dev_handshake_complete(void *arg, struct wg_peer *wp)
{
	struct meshd *m = arg;

	phases_mark(&m->phases, PHASE_HANDSHAKE);
	for (size_t i = 0; i < meshd_npeers(m); i++)
		if (meshd_peer(m, i)->wp == wp) {
			meshd_peer(m, i)->hs_done = true;
			m->hs_pending = true;
			return;
		}
}

/* issue 17: a relay forwarded a packet from a peer whose address our DIRECT
 * path holds; only a relay's word counts (any other peer doing so is refused
 * and no more) */
static void dev_rx_owned_elsewhere(void *arg, struct wg_peer *from, struct wg_peer *owner)
{
	struct meshd *m = arg;
	struct mpeer *f = NULL, *o = NULL;

	for (size_t i = 0; i < meshd_npeers(m) && (!f || !o); i++) {
		struct mpeer *p = meshd_peer(m, i);
		if (p->wp == from)
			f = p;
		else if (p->wp == owner)
			o = p;
	}
	if (f && o && f->relay && o->use_path && !o->owned_elsewhere) {
		o->owned_elsewhere = true;
		m->hs_pending = true;
	}
}

const struct wg_device_ops datapath_dev_ops = {
	.udp_send = dev_udp_send,
	.tun_deliver = dev_tun_deliver,
	.unknown_session = dev_unknown_session,
	.handshake_complete = dev_handshake_complete,
	.rx_owned_elsewhere = dev_rx_owned_elsewhere,
};

/* WireGuard's datagrams (m->wg_pkts) into the data plane, then what that
 * left to do: sessions we lost to answer, packets this relay forwards */
static void wg_input(struct meshd *m, int nwg)
{
	m->nfwd = 0;
	wg_device_input_udp(m->dev, m->wg_pkts, nwg, clock_now_ns());
	if (m->nlost)
		lost_answer(m);
	if (m->nfwd) {
		int k = m->nfwd;
		m->relay_forwarded += (uint64_t)k;
		m->nfwd = 0;
		wg_device_input_tun(m->dev, m->fwd_pkts, k, clock_now_ns());
	}
}

/* STUN on the WireGuard socket: stunmux parses it once and hands it to its
 * owner; what the owner then has to do with the socket happens here */
static void stun_input(struct meshd *m, const struct netio_pkt *pkt)
{
	uint8_t reply[512];
	struct stunmux_result res;
	char a[ADDR_STRLEN];

	for (int f = 0; f < SVC_FAMILIES && f < STUNMUX_FAMILIES; f++)
		m->mux.natdisc[f] = m->natd[f].nd;
	switch (stunmux_input(&m->mux, pkt->data, pkt->len, &pkt->addr, meshd_now(m), reply,
			      sizeof(reply), &res)) {
	case STUNMUX_NATDISC:
		phases_mark(&m->phases, PHASE_STUN);
		natd_pump(&m->natd[res.family], meshd_now(m));
		break;
	case STUNMUX_DISCO:
		phases_mark(&m->phases, PHASE_STUN);
		break;
	case STUNMUX_ANSWERER:
		if (res.reply_len)
			datapath_send(m, &pkt->addr, reply, res.reply_len);
		break;
	case STUNMUX_MALFORMED:
		log_debug(COMPONENT, "bad STUN datagram dropped from=%s err=\"%s\"",
			  meshd_fmt_addr(&pkt->addr, a), stun_strerror(res.err));
		break;
	default:
		break;	/* disco took it, or nobody's: counted by the mux */
	}
}

/* one datagram as received (a GRO run is cut apart): STUN out before
 * WireGuard sees the batch; returns the WireGuard datagrams now pending */
static int sort_datagram(struct meshd *m, struct netio_pkt *pkt, int nwg)
{
	struct netio_pkt segs[NETIO_SEGS_MAX];
	int k = netio_pkt_split(pkt, segs, NETIO_SEGS_MAX);

	for (int j = 0; j < k; j++) {
		if (stun_is_stun(segs[j].data, segs[j].len)) {
			stun_input(m, &segs[j]);
			continue;
		}
		m->wg_pkts[nwg++] = segs[j];
		if (nwg == NETIO_BATCH_MAX) {
			wg_input(m, nwg);
			nwg = 0;
		}
	}
	return nwg;
}

void datapath_udp_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	(void)loop, (void)fd, (void)events;

	for (int b = 0; b < BATCHES_PER_WAKE; b++) {
		int n, nwg = 0;

		for (int i = 0; i < NETIO_BATCH_MAX; i++) {
			m->udp_pkts[i].data = m->udp_bufs + (size_t)i * BUF_SIZE;
			m->udp_pkts[i].cap = BUF_SIZE;
		}
		n = netio_udp_recv(m->io, m->udp, m->udp_pkts, NETIO_BATCH_MAX);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++)
			nwg = sort_datagram(m, &m->udp_pkts[i], nwg);
		if (nwg)
			wg_input(m, nwg);
		if (n < NETIO_BATCH_MAX)
			break;
	}
	schedule_poke(m);
}

void datapath_tun_readable(struct loop *loop, int fd, uint32_t events, void *arg)
{
	struct meshd *m = arg;
	(void)loop, (void)fd, (void)events;

	wg_tun_pump(m->dev, m->io, m->tun, m->tun_pkts, m->tun_bufs, BUF_SIZE);
	schedule_poke(m);
}
