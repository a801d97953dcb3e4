/* stunmux: STUN on the WireGuard socket. The agent's own discovery (disco,
 * natdisc) takes its answers, relay probe answers go to relays.c, and with
 * --relay Binding requests from agents are answered here. */
#include "log.h"
#include "meshd.h"

/* RFC 8489 5: the class bits of the message type are C1 (0x0100) and C0
 * (0x0010); both zero is a request */
static bool is_request(const uint8_t *buf)
{
	return (buf[0] & 0x01) == 0 && (buf[1] & 0x10) == 0;
}

/* --relay: agents learn their mapping from their relay too */
static void answer_request(struct meshd *m, const struct netio_pkt *pkt)
{
	struct stun_server_cfg cfg = { 0 };
	struct stun_server_reply rep;
	uint8_t out[512];

	if (!m->o.relay)
		return;
	addr_parse_ip("0.0.0.0", m->port, &cfg.addrs[0][0]);
	cfg.software = "natmesh meshd relay";
	if (stun_server_answer(&cfg, 0, 0, &pkt->addr, pkt->data, pkt->len, out, sizeof(out), &rep) == 0 &&
	    rep.verdict == STUN_SRV_REPLY)
		datapath_send(m, &pkt->addr, out, rep.len);
}

void stunmux_input(struct meshd *m, const struct netio_pkt *pkt)
{
	union sockaddr_any from = pkt->addr;
	int rc;

	addr_unmap_v4(&from);
	/* natdisc ignores what is not an answer to its own requests */
	natd_input(m, &from, pkt->data, pkt->len);
	rc = disco_receive(&m->disco, pkt->data, pkt->len, &from, meshd_now(m));
	if (rc == 0)
		return;
	if (rc != STUN_E_TXN) {
		char a[ADDR_STRLEN];
		log_debug(COMPONENT, "bad STUN datagram dropped from=%s err=\"%s\"", meshd_fmt_addr(&from, a),
			  stun_strerror(rc));
		return;
	}
	if (is_request(pkt->data))
		answer_request(m, pkt);
	else
		relays_probe_answer(m, pkt);
}
