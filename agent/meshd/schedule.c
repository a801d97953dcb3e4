/* schedule: meshd's one loop timer. It is armed at the earliest deadline of
 * the sans-I/O cores (each peer's path, disco, natdisc, the WireGuard
 * device's timers) and of meshd's own periodic work (local addresses, relay
 * probes, the ping's timeout, the service client's start), so nothing wakes
 * when nothing is due. Events do the work due at once: every handler ends
 * with schedule_run(), or on the packet path with schedule_poke(), which
 * looks at the data plane's counters at most every OBSERVE_MIN_MS under load
 * and at once after a handshake. */
#include "log.h"
#include "meshd.h"

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* the device counts in ns on the loop's clock (clock_now_ns) */
static uint64_t device_deadline(const struct meshd *m)
{
	uint64_t ns = wg_device_next_deadline(m->dev);

	return ns ? (ns + 999999) / 1000000 : UINT64_MAX;
}

uint64_t schedule_deadline(const struct meshd *m, uint64_t now)
{
	uint64_t t = min64(m->next_local_check, disco_deadline(&m->disco));

	t = min64(t, disco_relays_deadline(&m->disco));

	for (int f = 0; f < SVC_FAMILIES; f++) {
		if (m->natd[f].due)
			t = now;
		if (m->natd[f].nd)
			t = min64(t, natdisc_deadline(m->natd[f].nd));
	}
	if (!m->svc)
		t = min64(t, m->svc_due);
	for (size_t i = 0; i < meshd_npeers(m); i++)
		if (meshd_peer(m, i)->use_path)
			t = min64(t, path_deadline(&meshd_peer(m, i)->path));
	if (m->ping.conn)
		t = min64(t, m->ping.deadline);
	return min64(t, device_deadline(m));
}

static void arm(struct meshd *m, uint64_t at, uint64_t now)
{
	if (at == UINT64_MAX) {
		loop_timer_cancel(m->loop, &m->timer);
		return;
	}
	if (loop_timer_armed(&m->timer) && m->timer_at == at)
		return;
	if (loop_timer_arm(m->loop, &m->timer, at > now ? at - now : 0, 0) < 0) {
		/* nothing would wake the agent again: stop rather than hang
		 * (the loop has logged why) */
		log_error(COMPONENT, "cannot arm the schedule timer; stopping");
		m->fatal = true;
		loop_stop(m->loop);
		return;
	}
	m->timer_at = at;
}

static void discover(struct meshd *m, uint64_t now)
{
	struct disco_send out[DISCO_MAX_SERVERS];
	int n;

	if (now >= m->next_local_check) {
		m->next_local_check = now + m->local_check_ms;
		report_check_local(m);
	}
	for (int f = 0; f < SVC_FAMILIES; f++) {
		if (m->natd[f].due)
			natd_start(&m->natd[f], now);
		natd_pump(&m->natd[f], now);
	}
	n = disco_poll(&m->disco, now, out, DISCO_MAX_SERVERS);
	for (int i = 0; i < n; i++)
		datapath_send(m, &out[i].to, out[i].buf, out[i].len);
	n = disco_poll_relays(&m->disco, now, out, DISCO_MAX_SERVERS);
	for (int i = 0; i < n; i++)
		datapath_send(m, &out[i].to, out[i].buf, out[i].len);
	/* a round ends here or when stunmux hands disco its last answer; what
	 * it found is compared with the last report (cheap), so every source
	 * of a mapping is reported */
	report_if_changed(m);
}

void schedule_run(struct meshd *m)
{
	uint64_t now = loop_now(m->loop);

	m->last_run = now;
	m->hs_pending = false;
	wg_device_expire(m->dev, clock_now_ns());
	discover(m, now);
	if (!m->svc && ((m->disco.rounds >= 1 && m->disco.state == DISCO_IDLE) || now >= m->svc_due) &&
	    service_start(m) < 0) {
		m->fatal = true;
		loop_stop(m->loop);
		return;
	}
	relays_choose(m, now);
	for (size_t i = 0; i < meshd_npeers(m); i++)
		peerpath_observe(m, meshd_peer(m, i), now);
	ping_expire(m, now);
	arm(m, schedule_deadline(m, now), now);
}

void schedule_poke(struct meshd *m)
{
	uint64_t now = loop_now(m->loop), due = m->last_run + OBSERVE_MIN_MS;

	if (m->hs_pending || now >= due) {
		schedule_run(m);
		return;
	}
	/* the input may have moved the device's timers earlier */
	due = min64(due, device_deadline(m));
	if (loop_timer_armed(&m->timer))
		due = min64(due, m->timer_at);
	arm(m, due, now);
}

static void on_timer(struct loop *loop, struct loop_timer *t, void *arg)
{
	(void)loop, (void)t;
	schedule_run(arg);
}

void schedule_start(struct meshd *m)
{
	loop_timer_init(&m->timer, on_timer, m);
	/* the first run is the loop's first wake-up */
	arm(m, loop_now(m->loop), loop_now(m->loop));
}

void schedule_stop(struct meshd *m)
{
	loop_timer_cancel(m->loop, &m->timer);
}
