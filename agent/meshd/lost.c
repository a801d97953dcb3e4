/* lost: data for a session this side lost (it restarted; a relay, say). The
 * sender's WireGuard gives up on that session only after 15 s without an
 * answer, so every peer without a live session here that is known at the
 * data's source gets a handshake to it at once.
 *
 * Known means exactly, port and all (issue 15 point 9): an endpoint the
 * service listed for the peer (its local addresses and the mappings STUN
 * servers and relays saw, which is how a peer behind a symmetric NAT is known
 * to a relay), or the data plane's endpoint (where its last authenticated
 * packet came from, or where we sent to). Data forged from a peer's IP with
 * another port, which anyone can send, makes this side send nothing (counted:
 * lost_refused); before, it drew an initiation to that port, making this side
 * a reflector aimed by the forger.
 *
 * One exception, where exactness would cost a working tunnel 15 s: a peer
 * the service says is behind a symmetric NAT, talking to us directly, sends
 * from a mapping towards us that no list holds (its STUN mappings are others,
 * by definition) and our data plane forgot when we restarted (pair-fc-sym,
 * the full-cone side restarting: 0.5-0.6 s with the answer, 13.4 s without).
 * For such a peer, a source at the IP of one of its reflexive endpoints (its
 * NAT's public address, as STUN servers and relays saw it) gets the
 * handshake at any port. What a forger
 * gains there is one initiation per peer per LOST_KICK_MS to a port of a
 * symmetric NAT's public address, which a device could aim sprays at anyway
 * by listing it as an endpoint.
 *
 * When several peers share the address, the wrong ones drop it (mac1 is
 * keyed to the receiver). One per peer per LOST_KICK_MS, and within the
 * initiations per destination IP (iplimit.h) that sprays use too. */
#include <string.h>

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

/* src (normalised by the caller) is one of p's known endpoints, or, p
 * behind a symmetric NAT, at the IP of one of its reflexive endpoints */
static bool lost_known(const struct mpeer *p, const struct wg_peer_state *ps, const union sockaddr_any *src)
{
	union sockaddr_any a;

	if (ps->endpoint.sa.sa_family != AF_UNSPEC) {
		a = ps->endpoint;
		addr_unmap_v4(&a);
		if (addr_equal(&a, src))
			return true;
	}
	for (int e = 0; e < p->nep; e++) {
		a = p->ep[e].addr;
		addr_unmap_v4(&a);
		if (addr_equal(&a, src) ||
		    (p->symmetric_nat && strcmp(p->ep[e].source, "local") && addr_ip_equal(&a, src)))
			return true;
	}
	return false;
}

/* no live session, and no such handshake in the last LOST_KICK_MS */
static bool lost_due(const struct mpeer *p, const struct wg_peer_state *ps, uint64_t now, time_t wall_s)
{
	if (p->lost_kick && now < p->lost_kick + LOST_KICK_MS)
		return false;
	if (ps->last_handshake.tv_sec &&
	    wall_s - ps->last_handshake.tv_sec < (time_t)(WG_REJECT_AFTER_TIME_NS / WG_NSEC_PER_SEC))
		return false;	/* a live session: not the one lost */
	return true;
}

bool lost_wanted(const struct mpeer *p, const struct wg_peer_state *ps, const union sockaddr_any *src,
		 uint64_t now, time_t wall_s)
{
	union sockaddr_any s = *src;

	addr_unmap_v4(&s);
	return lost_due(p, ps, now, wall_s) && lost_known(p, ps, &s);
}

void lost_answer(struct meshd *m)
{
	uint64_t now = meshd_now(m);
	time_t wall_s = (time_t)(clock_wall_ns() / 1000000000u);
	char a[ADDR_STRLEN];

	for (int i = 0; i < m->nlost; i++) {
		union sockaddr_any src = m->lost[i];
		bool known = false;

		addr_unmap_v4(&src);
		for (size_t j = 0; j < meshd_npeers(m); j++) {
			struct mpeer *p = meshd_peer(m, j);
			struct wg_peer_state ps;

			if (!p->wp)
				continue;
			wg_peer_get_state(p->wp, &ps);
			if (!lost_known(p, &ps, &src))
				continue;
			known = true;
			if (!lost_due(p, &ps, now, wall_s))
				continue;
			p->lost_kick = now;
			if (!iplimit_allow(&m->initlimit, &src, now))
				continue;
			if (wg_peer_initiate_to(p->wp, &src, 1, clock_now_ns()) > 0) {
				m->lost_handshakes++;
				log_info(COMPONENT, "handshake to a peer still sending on a lost session peer=%s to=%s",
					 p->name, addr_format(&src, a, sizeof(a)));
			}
		}
		if (!known) {
			/* no log line: anyone can send these, as fast as they like */
			m->lost_refused++;
			log_debug(COMPONENT, "data for an unknown session from no known endpoint from=%s",
				  addr_format(&src, a, sizeof(a)));
		}
	}
	m->nlost = 0;
}
