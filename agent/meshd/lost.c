/* lost: data for a session this side lost (it restarted; a relay, say). The
 * sender's WireGuard gives up on that session only after 15 s without an
 * answer, and a peer behind a symmetric NAT cannot be reached at any address
 * we know before it does. So every peer without a live session here whose
 * known addresses share the source's IP gets a handshake to that very source
 * address, which its NAT admits since the peer just sent from it; when several
 * peers share the IP, the wrong ones drop it (mac1 is keyed to the receiver).
 * One per peer per LOST_KICK_MS, and within the initiations per destination
 * IP (iplimit.h) that sprays use too: data forged from a peer's IP with
 * other ports cannot make this side a reflector beyond that. */
#include "log.h"
#include "meshd.h"

void lost_note(struct meshd *m, const union sockaddr_any *src)
{
	for (int i = 0; i < m->nlost; i++)
		if (addr_equal(&m->lost[i], src))
			return;
	if (m->nlost < MAX_LOST)
		m->lost[m->nlost++] = *src;
}

bool lost_wanted(const struct mpeer *p, const struct wg_peer_state *ps, const union sockaddr_any *src,
		 uint64_t now, time_t wall_s)
{
	if (p->lost_kick && now < p->lost_kick + LOST_KICK_MS)
		return false;
	if (ps->last_handshake.tv_sec &&
	    wall_s - ps->last_handshake.tv_sec < (time_t)(WG_REJECT_AFTER_TIME_NS / WG_NSEC_PER_SEC))
		return false;	/* a live session: not the one lost */
	if (ps->endpoint.sa.sa_family != AF_UNSPEC && addr_ip_equal(&ps->endpoint, src))
		return true;
	for (int e = 0; e < p->nep; e++)
		if (addr_ip_equal(&p->ep[e].addr, src))
			return true;
	return false;
}

void lost_answer(struct meshd *m)
{
	uint64_t now = meshd_now(m);
	time_t wall_s = (time_t)(clock_wall_ns() / 1000000000u);
	char a[ADDR_STRLEN];

	for (int i = 0; i < m->nlost; i++) {
		const union sockaddr_any *src = &m->lost[i];

		for (size_t j = 0; j < meshd_npeers(m); j++) {
			struct mpeer *p = meshd_peer(m, j);
			struct wg_peer_state ps;

			if (!p->wp)
				continue;
			wg_peer_get_state(p->wp, &ps);
			if (!lost_wanted(p, &ps, src, now, wall_s))
				continue;
			p->lost_kick = now;
			/* issue 15 point 9: forged data from many ports of one IP */
			if (!iplimit_allow(&m->initlimit, src, now))
				continue;
			if (wg_peer_initiate_to(p->wp, src, 1, clock_now_ns()) > 0) {
				m->lost_handshakes++;
				log_info(COMPONENT, "handshake to a peer still sending on a lost session peer=%s to=%s",
					 p->name, addr_format(src, a, sizeof(a)));
			}
		}
	}
	m->nlost = 0;
}
