/* schedule: meshd's housekeeping on one loop timer: local addresses, NAT
 * behaviour and endpoint discovery, the report, the service client's start,
 * relay probes and choice, each peer's path, the ping's timeout. */
#include "meshd.h"
#include "relay.h"

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
	/* a round ends here or when stunmux hands disco its last answer; what it found is compared with
	 * the last report (cheap), so every source of a mapping is reported */
	report_if_changed(m);
}

static void on_tick(struct loop *loop, struct loop_timer *t, void *arg)
{
	struct meshd *m = arg;
	uint64_t now = loop_now(loop);
	(void)t;

	discover(m, now);
	if (!m->svc && ((m->disco.rounds >= 1 && m->disco.state == DISCO_IDLE) || now >= m->svc_due) &&
	    service_start(m) < 0) {
		m->fatal = true;
		loop_stop(loop);
		return;
	}
	relays_choose(m, now);
	for (size_t i = 0; i < meshd_npeers(m); i++)
		peerpath_observe(meshd_peer(m, i), now);
	ping_expire(m, now);
}

void schedule_start(struct meshd *m)
{
	loop_timer_init(&m->tick, on_tick, m);
	loop_timer_arm(m->loop, &m->tick, 0, TICK_MS);
}

void schedule_stop(struct meshd *m)
{
	loop_timer_cancel(m->loop, &m->tick);
}
