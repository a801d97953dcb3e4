/* path: per-peer path selection; see path.h for the state diagram. */
#include <stdint.h>
#include <string.h>

#include "path.h"

/* When the handshake initiations of an attempt go out, in ms after its start:
 * quick at first, so that the second side's initiations, which open its NAT
 * for ours, meet one of ours soon after they leave; then every
 * PATH_SPRAY_AFTER_MS until the direct timeout. */
static const uint32_t spray_schedule[] = { 0, 200, 500, 1000, 1500, 2000, 2500 };
#define SPRAY_STEPS (int)(sizeof(spray_schedule) / sizeof(spray_schedule[0]))

static const char *const state_names[] = {
	[PATH_NEW] = "new",
	[PATH_CONNECTING] = "connecting",
	[PATH_DIRECT] = "direct",
	[PATH_RELAYED] = "relayed",
	[PATH_RETRYING] = "retrying",
	[PATH_FAILED] = "failed",
};

const char *path_state_name(enum path_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
		return "?";
	return state_names[s];
}

const char *path_state_public(enum path_state s)
{
	switch (s) {
	case PATH_DIRECT:
		return "direct";
	case PATH_RELAYED:
	case PATH_RETRYING:
		return "relayed";
	case PATH_FAILED:
		return "failed";
	case PATH_NEW:
	case PATH_CONNECTING:
		break;
	}
	return "connecting";
}

static uint64_t spray_offset(int idx)
{
	if (idx < SPRAY_STEPS)
		return spray_schedule[idx];
	return spray_schedule[SPRAY_STEPS - 1] + (uint64_t)(idx - SPRAY_STEPS + 1) * PATH_SPRAY_AFTER_MS;
}

static void emit(struct path_out *out, enum path_action_type type, const union sockaddr_any *ep)
{
	struct path_action *a;

	if (!out || out->n >= PATH_MAX_ACTIONS)
		return;
	a = &out->act[out->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	if (ep)
		a->ep = *ep;
}

static void emit_spray(struct path_peer *p, struct path_out *out)
{
	p->sprays++;
	emit(out, PATH_ACT_SPRAY, NULL);
}

/* Sprays the step that is due and schedules the next one that still falls
 * inside the direct timeout. Steps missed by a late call are skipped, not
 * sent in a burst. */
static void spray_step(struct path_peer *p, uint64_t now, struct path_out *out)
{
	uint64_t elapsed = now - p->attempt_start - p->cfg.spray_delay_ms;

	emit_spray(p, out);
	do
		p->spray_idx++;
	while (spray_offset(p->spray_idx) <= elapsed);
	if (p->cfg.spray_delay_ms + spray_offset(p->spray_idx) >= p->cfg.direct_timeout_ms)
		p->next_spray = UINT64_MAX;
	else
		p->next_spray = p->attempt_start + p->cfg.spray_delay_ms + spray_offset(p->spray_idx);
}

/* the schedule starts spray_delay_ms after the attempt; the direct timeout
 * counts from the attempt */
static void attempt_begin(struct path_peer *p, uint64_t now, struct path_out *out)
{
	p->attempt_start = now;
	p->spray_idx = 0;
	if (p->cfg.spray_delay_ms)
		p->next_spray = now + p->cfg.spray_delay_ms;
	else
		spray_step(p, now, out);
}

static bool cands_equal(const struct path_peer *p, const union sockaddr_any *c, int n)
{
	if (n != p->ncands)
		return false;
	for (int i = 0; i < n; i++)
		if (!addr_equal(&p->cands[i], &c[i]))
			return false;
	return true;
}

static void cands_set(struct path_peer *p, const union sockaddr_any *c, int n)
{
	if (n > PATH_MAX_CANDS)
		n = PATH_MAX_CANDS;
	if (n < 0 || !c)
		n = 0;
	if (n)
		memcpy(p->cands, c, (size_t)n * sizeof(*c));
	p->ncands = n;
}

static void enter(struct path_peer *p, enum path_state s, uint64_t now)
{
	p->since = now;
	p->state = s;
}

void path_init(struct path_peer *p, const struct path_cfg *cfg, bool have_relay, uint64_t now)
{
	memset(p, 0, sizeof(*p));
	if (cfg)
		p->cfg = *cfg;
	if (!p->cfg.direct_timeout_ms)
		p->cfg.direct_timeout_ms = PATH_DIRECT_TIMEOUT_MS;
	if (!p->cfg.retry_base_ms)
		p->cfg.retry_base_ms = PATH_RETRY_BASE_MS;
	if (!p->cfg.retry_max_ms)
		p->cfg.retry_max_ms = PATH_RETRY_MAX_MS;
	if (p->cfg.spray_delay_ms >= p->cfg.direct_timeout_ms)
		p->cfg.spray_delay_ms = 0;
	if (p->cfg.retry_max_ms < p->cfg.retry_base_ms)
		p->cfg.retry_max_ms = p->cfg.retry_base_ms;
	if (!p->cfg.direct_idle_ms)
		p->cfg.direct_idle_ms = PATH_DIRECT_IDLE_MS;
	if (!p->cfg.direct_unanswered_ms)
		p->cfg.direct_unanswered_ms = PATH_DIRECT_UNANSWERED_MS;
	p->have_relay = have_relay;
	p->backoff_ms = p->cfg.retry_base_ms;
	p->next_spray = UINT64_MAX;
	p->retry_at = UINT64_MAX;
	p->since = now;
	p->state = PATH_NEW;
}

/* the next direct retry after the current backoff, which then doubles up
 * to the cap */
static void schedule_retry(struct path_peer *p, uint64_t now)
{
	uint64_t b = (uint64_t)p->backoff_ms * 2;

	p->retry_at = now + p->backoff_ms;
	p->backoff_ms = b > p->cfg.retry_max_ms ? p->cfg.retry_max_ms : (uint32_t)b;
}

/* --- transitions ------------------------------------------------------- */

/* NEW -> CONNECTING: both sides learn of each other from the watch at about
 * the same time and both start spraying */
static void t_connect(struct path_peer *p, uint64_t now, struct path_out *out)
{
	if (p->state != PATH_NEW)
		return;
	attempt_begin(p, now, out);
	enter(p, PATH_CONNECTING, now);
}

/* CONNECTING | RETRYING | RELAYED | FAILED -> DIRECT */
static void t_direct(struct path_peer *p, const union sockaddr_any *ep, uint64_t now,
		     struct path_out *out)
{
	if (p->state != PATH_CONNECTING && p->state != PATH_RETRYING &&
	    p->state != PATH_RELAYED && p->state != PATH_FAILED)
		return;
	if (p->state != PATH_CONNECTING)
		p->upgrades++;
	p->endpoint = *ep;
	p->last_alive = now;
	p->unanswered_since = p->data_since = 0;
	p->probing = false;
	p->backoff_ms = p->cfg.retry_base_ms;
	p->next_spray = UINT64_MAX;
	p->retry_at = UINT64_MAX;
	emit(out, PATH_ACT_DIRECT, ep);
	enter(p, PATH_DIRECT, now);
}

/* CONNECTING | RETRYING -> RELAYED | FAILED: no handshake within the direct
 * timeout. The /32 was never installed, so traffic already follows the relay. */
static void t_attempt_timeout(struct path_peer *p, uint64_t now)
{
	if (p->state != PATH_CONNECTING && p->state != PATH_RETRYING)
		return;
	schedule_retry(p, now);
	p->next_spray = UINT64_MAX;
	enter(p, p->have_relay ? PATH_RELAYED : PATH_FAILED, now);
}

/* RELAYED | FAILED -> RETRYING: the backoff is over, or new candidates */
static void t_retry(struct path_peer *p, uint64_t now, struct path_out *out)
{
	if (p->state != PATH_RELAYED && p->state != PATH_FAILED)
		return;
	p->retry_at = UINT64_MAX;
	attempt_begin(p, now, out);
	enter(p, PATH_RETRYING, now);
}

/* DIRECT -> RETRYING: the direct path went quiet, or stopped answering.
 * Traffic moves to the relay at once, and a direct attempt starts at once
 * too (issue 17): a mapping that expired is made again by the next
 * initiations, and waiting out the 30 s retry would leave a path that can be
 * direct relayed for that long. When the attempt fails, the retry backoff
 * starts from its base. tell: this side found it out by itself, so the peer
 * (which may still believe the path direct and send into the void) is told
 * through the relay, at most once per PATH_TELL_EVERY_MS. */
static void t_direct_lost(struct path_peer *p, uint64_t now, bool tell, struct path_out *out)
{
	if (p->state != PATH_DIRECT)
		return;
	p->fallbacks++;
	p->unanswered_since = p->data_since = 0;
	p->probing = false;
	p->backoff_ms = p->cfg.retry_base_ms;
	p->retry_at = UINT64_MAX;
	memset(&p->endpoint, 0, sizeof(p->endpoint));
	emit(out, PATH_ACT_RELAY, NULL);
	if (tell && p->have_relay && (!p->last_tell || now >= p->last_tell + PATH_TELL_EVERY_MS)) {
		p->last_tell = now;
		emit(out, PATH_ACT_TELL, NULL);
	}
	attempt_begin(p, now, out);
	enter(p, PATH_RETRYING, now);
}

/* FAILED -> RELAYED: a relay appeared, traffic has somewhere to go */
static void t_relay_gained(struct path_peer *p, uint64_t now)
{
	if (p->state != PATH_FAILED)
		return;
	enter(p, PATH_RELAYED, now);
}

/* RELAYED -> FAILED: the VPC's last relay went away */
static void t_relay_lost(struct path_peer *p, uint64_t now)
{
	if (p->state != PATH_RELAYED)
		return;
	enter(p, PATH_FAILED, now);
}

/* --- inputs -------------------------------------------------------------- */

void path_learn(struct path_peer *p, const union sockaddr_any *cands, int n, uint64_t now,
		struct path_out *out)
{
	if (n > PATH_MAX_CANDS)
		n = PATH_MAX_CANDS;
	if (p->state != PATH_NEW && cands_equal(p, cands, n))
		return;
	cands_set(p, cands, n);
	switch (p->state) {
	case PATH_NEW:
		t_connect(p, now, out);
		break;
	case PATH_RELAYED:
	case PATH_FAILED:
		p->backoff_ms = p->cfg.retry_base_ms;
		t_retry(p, now, out);
		break;
	case PATH_CONNECTING:
	case PATH_RETRYING:
		/* a schedule still in its delay will use them anyway */
		if (p->spray_idx == 0)
			break;
		/* fall through */
	case PATH_DIRECT:
		/* the schedule goes on; the new candidates get one spray now */
		emit_spray(p, out);
		break;
	}
}

void path_handshake(struct path_peer *p, const union sockaddr_any *ep, uint64_t now,
		    struct path_out *out)
{
	if (p->state == PATH_DIRECT) {
		/* the data plane roams by itself; remember where it went */
		p->endpoint = *ep;
		path_rx(p, now);
		return;
	}
	if (p->state == PATH_NEW)
		return;
	t_direct(p, ep, now, out);
}

void path_initiated(struct path_peer *p, uint64_t now)
{
	uint64_t until = now + PATH_YIELD_WAIT_MS;

	if ((p->state != PATH_CONNECTING && p->state != PATH_RETRYING) || !p->cfg.spray_delay_ms ||
	    p->next_spray == UINT64_MAX || p->next_spray >= until)
		return;
	p->next_spray = until < p->attempt_start + p->cfg.direct_timeout_ms ? until : UINT64_MAX;
}

void path_rx(struct path_peer *p, uint64_t now)
{
	if (p->state == PATH_DIRECT) {
		p->last_alive = now;
		p->unanswered_since = p->data_since = 0;
		p->probing = false;
	}
}

void path_rtt(struct path_peer *p, uint32_t rtt_ms)
{
	p->rtt_ms = rtt_ms;
}

void path_tx_data(struct path_peer *p, uint64_t now)
{
	path_tx(p, now);
	if (p->state == PATH_DIRECT && !p->data_since && now >= p->last_alive + PATH_REPLY_MS)
		p->data_since = now;
}

void path_owned_elsewhere(struct path_peer *p, uint64_t now, struct path_out *out)
{
	if (p->state != PATH_DIRECT || now < p->since + PATH_OWNED_GRACE_MS ||
	    now < p->last_alive + PATH_OWNED_RX_MS)
		return;
	t_direct_lost(p, now, false, out);
}

void path_tx(struct path_peer *p, uint64_t now)
{
	if (p->state == PATH_DIRECT && !p->unanswered_since)
		p->unanswered_since = now;
}

/* a probe's two waits (after the data, after the probe): at least twice
 * the handshake round trip, bounded */
static uint64_t probe_wait(const struct path_peer *p, uint32_t min_ms)
{
	uint64_t w = 2 * (uint64_t)p->rtt_ms;

	if (w < min_ms)
		return min_ms;
	return w > PATH_PROBE_WAIT_MAX_MS ? PATH_PROBE_WAIT_MAX_MS : w;
}

/* when DIRECT must prove itself: nothing received for the idle time, or
 * nothing since we sent for the unanswered time; it probes then, and gives
 * up only when the probe goes unanswered too. Both sides sending
 * keepalives is not guaranteed: WireGuard restarts the persistent keepalive
 * on every packet received, so when one side's keepalive lands before the
 * other's timer fires, only that side keeps sending, hears nothing back,
 * and without the probe gave up an idle but live path every 30 s
 * (agent_lifetime.sh saw it). */
static uint64_t check_deadline(const struct path_peer *p)
{
	uint64_t d = p->last_alive + p->cfg.direct_idle_ms;

	if (p->unanswered_since && p->unanswered_since + p->cfg.direct_unanswered_ms < d)
		d = p->unanswered_since + p->cfg.direct_unanswered_ms;
	return p->probing ? UINT64_MAX : d;
}

/* when DIRECT gives up: its probe unanswered */
static uint64_t direct_deadline(const struct path_peer *p)
{
	return p->probing ? p->probe_at + probe_wait(p, PATH_PROBE_TIMEOUT_MS) : UINT64_MAX;
}

/* when unanswered data makes DIRECT probe, UINT64_MAX: not now; the
 * oldest of the last PATH_PROBE_BURST probes must be PATH_PROBE_EVERY_MS old */
static uint64_t probe_deadline(const struct path_peer *p)
{
	uint64_t d;

	if (!p->data_since || p->probing)
		return UINT64_MAX;
	d = p->data_since + probe_wait(p, PATH_PROBE_AFTER_MS);
	if (p->nprobe_times == PATH_PROBE_BURST && p->probe_times[0] + PATH_PROBE_EVERY_MS > d)
		d = p->probe_times[0] + PATH_PROBE_EVERY_MS;
	return d;
}

/* when a probe goes again, UINT64_MAX: not now */
static uint64_t resend_deadline(const struct path_peer *p)
{
	if (!p->probing || p->probe_resent)
		return UINT64_MAX;
	return p->probe_at + probe_wait(p, PATH_PROBE_TIMEOUT_MS) / 2;
}

/* DIRECT: data went unanswered; one spray asks for a handshake, which a
 * live path answers within a round trip */
static void t_probe(struct path_peer *p, uint64_t now, struct path_out *out)
{
	if (p->state != PATH_DIRECT || p->probing)
		return;
	p->probing = true;
	p->probe_resent = false;
	p->probe_at = now;
	if (p->nprobe_times == PATH_PROBE_BURST)
		memmove(&p->probe_times[0], &p->probe_times[1], (PATH_PROBE_BURST - 1) * sizeof(p->probe_times[0]));
	else
		p->nprobe_times++;
	p->probe_times[p->nprobe_times - 1] = now;
	p->probes++;
	emit_spray(p, out);
}

/* DIRECT, probing: the same initiation once more, in case the first copy
 * or its response was lost */
static void t_probe_again(struct path_peer *p, struct path_out *out)
{
	if (p->state != PATH_DIRECT || !p->probing || p->probe_resent)
		return;
	p->probe_resent = true;
	emit_spray(p, out);
}

void path_relay(struct path_peer *p, bool have_relay, uint64_t now)
{
	/* the attempts and DIRECT only remember it for their next fallback */
	p->have_relay = have_relay;
	if (have_relay)
		t_relay_gained(p, now);
	else
		t_relay_lost(p, now);
}

void path_tick(struct path_peer *p, uint64_t now, struct path_out *out)
{
	switch (p->state) {
	case PATH_CONNECTING:
	case PATH_RETRYING:
		if (now >= p->attempt_start + p->cfg.direct_timeout_ms)
			t_attempt_timeout(p, now);
		else if (now >= p->next_spray)
			spray_step(p, now, out);
		break;
	case PATH_DIRECT:
		if (now >= direct_deadline(p))
			t_direct_lost(p, now, true, out);
		else if (now >= resend_deadline(p))
			t_probe_again(p, out);
		else if (now >= check_deadline(p) || now >= probe_deadline(p))
			t_probe(p, now, out);
		break;
	case PATH_RELAYED:
	case PATH_FAILED:
		if (now >= p->retry_at)
			t_retry(p, now, out);
		break;
	case PATH_NEW:
		break;
	}
}

uint64_t path_deadline(const struct path_peer *p)
{
	uint64_t d;

	switch (p->state) {
	case PATH_CONNECTING:
	case PATH_RETRYING:
		d = p->attempt_start + p->cfg.direct_timeout_ms;
		return p->next_spray < d ? p->next_spray : d;
	case PATH_DIRECT:
		d = direct_deadline(p);
		if (resend_deadline(p) < d)
			d = resend_deadline(p);
		if (check_deadline(p) < d)
			d = check_deadline(p);
		return probe_deadline(p) < d ? probe_deadline(p) : d;
	case PATH_RELAYED:
	case PATH_FAILED:
		return p->retry_at;
	case PATH_NEW:
		break;
	}
	return UINT64_MAX;
}

uint32_t path_keepalive_s(uint32_t lifetime_alive_ms)
{
	uint32_t s = lifetime_alive_ms / 2000;

	if (!lifetime_alive_ms)
		return PATH_KEEPALIVE_S;
	if (s < PATH_KEEPALIVE_MIN_S)
		return PATH_KEEPALIVE_MIN_S;
	return s > PATH_KEEPALIVE_MAX_S ? PATH_KEEPALIVE_MAX_S : s;
}

/* --- candidate order ----------------------------------------------------- */

static int add_unique(union sockaddr_any *out, int n, int max, const union sockaddr_any *a)
{
	if (n >= max || (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6) ||
	    addr_port(a) == 0)
		return n;
	for (int i = 0; i < n; i++)
		if (addr_equal(&out[i], a))
			return n;
	out[n] = *a;
	return n + 1;
}

int path_order_candidates(const struct path_cand *mine, int nmine,
			  const struct path_cand *theirs, int ntheirs,
			  union sockaddr_any *out, int max)
{
	bool same_nat = false;
	int n = 0;

	for (int i = 0; i < nmine && !same_nat; i++)
		for (int j = 0; j < ntheirs && !same_nat; j++)
			if (mine[i].reflexive && theirs[j].reflexive &&
			    addr_ip_equal(&mine[i].addr, &theirs[j].addr))
				same_nat = true;
	/* pass 0 takes locals behind a shared NAT, else reflexives; pass 1 the other kind */
	for (int pass = 0; pass < 2; pass++) {
		bool want_reflexive = (pass == 0) != same_nat;
		for (int mapped = 1; mapped >= 0; mapped--)
			for (int j = 0; j < ntheirs; j++)
				if (theirs[j].reflexive == want_reflexive && theirs[j].mapped == mapped)
					n = add_unique(out, n, max, &theirs[j].addr);
	}
	return n;
}

bool path_addr_usable(const union sockaddr_any *a, const char **why)
{
	union sockaddr_any u = *a;
	const char *bad = NULL;
	const uint8_t *b;
	size_t n;

	addr_unmap_v4(&u);
	if (u.sa.sa_family != AF_INET && u.sa.sa_family != AF_INET6) {
		bad = "not an IP address";
		goto out;
	}
	b = addr_ip_bytes(&u, &n);
	if (n == 4) {
		if (b[0] == 0)
			bad = "unspecified";		/* RFC 1122 3.2.1.3: "this network" */
		else if (b[0] == 127)
			bad = "loopback";
		else if (b[0] == 169 && b[1] == 254)
			bad = "link-local";		/* RFC 3927, and cloud metadata */
		else if (b[0] >= 224 && b[0] < 240)
			bad = "multicast";
		else if (b[0] >= 240)
			bad = "broadcast or reserved";	/* RFC 1112 4; 255.255.255.255 */
	} else {
		static const uint8_t zero[16], one[16] = { [15] = 1 };
		if (!memcmp(b, zero, 16))
			bad = "unspecified";
		else if (!memcmp(b, one, 16))
			bad = "loopback";
		else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			bad = "link-local";		/* fe80::/10 */
		else if (b[0] == 0xff)
			bad = "multicast";
	}
	if (!bad && addr_port(&u) == 0)
		bad = "port 0";
out:
	if (why)
		*why = bad;
	return !bad;
}
