/* Path selection driven by a fake clock through every transition. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "agent/meshd/path.h"

static union sockaddr_any A(const char *s)
{
	union sockaddr_any a;
	cr_assert_eq(addr_parse(s, &a), 0, "%s", s);
	return a;
}

/* Runs the machine from now to until, calling path_tick exactly at every
 * deadline it asks for; records the times of the SPRAY actions and any other
 * action in order. Returns the final time. */
struct trace {
	uint64_t spray_at[64];
	int nspray;
	enum path_action_type other[16];
	uint64_t other_at[16];
	int nother;
};

static void record(struct trace *tr, const struct path_out *o, uint64_t now)
{
	for (int i = 0; i < o->n; i++) {
		if (o->act[i].type == PATH_ACT_SPRAY) {
			if (tr->nspray < 64)
				tr->spray_at[tr->nspray++] = now;
		} else if (tr->nother < 16) {
			tr->other_at[tr->nother] = now;
			tr->other[tr->nother++] = o->act[i].type;
		}
	}
}

static uint64_t run(struct path_peer *p, uint64_t now, uint64_t until, struct trace *tr)
{
	for (int guard = 0; guard < 10000; guard++) {
		uint64_t d = path_deadline(p);
		struct path_out o = { 0 };
		if (d > until)
			return until;
		cr_assert_geq(d, now, "deadline %llu in the past (now %llu)",
			      (unsigned long long)d, (unsigned long long)now);
		now = d;
		path_tick(p, now, &o);
		if (tr)
			record(tr, &o, now);
	}
	cr_assert_fail("machine never settles");
	return now;
}

static const struct path_cfg defcfg = { 0 };

static void start(struct path_peer *p, bool relay, struct trace *tr)
{
	union sockaddr_any c[2] = { A("203.0.113.7:51820"), A("10.1.0.2:51820") };
	struct path_out o = { 0 };

	path_init(p, &defcfg, relay, 0);
	cr_assert_eq(p->state, PATH_NEW);
	cr_assert_eq(path_deadline(p), UINT64_MAX);
	path_learn(p, c, 2, 0, &o);
	cr_assert_eq(p->state, PATH_CONNECTING);
	cr_assert_eq(p->ncands, 2);
	if (tr)
		record(tr, &o, 0);
}

Test(path, names)
{
	cr_assert_str_eq(path_state_name(PATH_CONNECTING), "connecting");
	cr_assert_str_eq(path_state_name(PATH_FAILED), "failed");
	cr_assert_str_eq(path_state_name((enum path_state)99), "?");
	cr_assert_str_eq(path_state_public(PATH_RETRYING), "relayed");
	cr_assert_str_eq(path_state_public(PATH_RELAYED), "relayed");
	cr_assert_str_eq(path_state_public(PATH_NEW), "connecting");
	cr_assert_str_eq(path_state_public(PATH_DIRECT), "direct");
	cr_assert_str_eq(path_state_public(PATH_FAILED), "failed");
}

/* NEW: nothing happens before the candidates are known */
Test(path, new_ignores_everything_but_learn)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("198.51.100.1:4000");

	path_init(&p, NULL, true, 0);
	path_handshake(&p, &ep, 5, &o);
	path_rx(&p, 6);
	path_tick(&p, 1000000, &o);
	path_relay(&p, false, 7);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(p.state, PATH_NEW);
	cr_assert_eq(p.cfg.direct_timeout_ms, PATH_DIRECT_TIMEOUT_MS);
	cr_assert_eq(p.cfg.direct_idle_ms, 55000, "two 25 s keepalives and REKEY_TIMEOUT");
}

/* NEW -> CONNECTING -> RELAYED: the spray schedule and the direct timeout */
Test(path, connecting_sprays_on_schedule_then_relays)
{
	static const uint64_t want[] = { 0, 200, 500, 1000, 1500, 2000, 2500 };
	struct path_peer p;
	struct trace tr = { 0 };

	start(&p, true, &tr);
	run(&p, 0, 2999, &tr);
	cr_assert_eq(p.state, PATH_CONNECTING);
	cr_assert_eq(path_deadline(&p), 3000);
	run(&p, 2999, 3000, &tr);
	cr_assert_eq(p.state, PATH_RELAYED);
	cr_assert_eq(tr.nspray, 7);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(tr.spray_at[i], want[i], "spray %d at %llu", i,
			     (unsigned long long)tr.spray_at[i]);
	/* the /32 never went in, so no action is needed to relay */
	cr_assert_eq(tr.nother, 0);
	cr_assert_eq(p.sprays, 7);
	cr_assert_eq(path_deadline(&p), 3000 + PATH_RETRY_BASE_MS);
	cr_assert_str_eq(path_state_public(p.state), "relayed");
}

/* a longer direct timeout keeps spraying every PATH_SPRAY_AFTER_MS */
Test(path, long_timeout_keeps_spraying)
{
	struct path_cfg cfg = { .direct_timeout_ms = 6000 };
	union sockaddr_any c = A("203.0.113.7:51820");
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };

	path_init(&p, &cfg, true, 100);
	path_learn(&p, &c, 1, 100, &o);
	record(&tr, &o, 100);
	run(&p, 100, 6100, &tr);
	cr_assert_eq(p.state, PATH_RELAYED);
	cr_assert_eq(tr.nspray, 10);	/* 0 .. 2500, 3500, 4500, 5500 */
	cr_assert_eq(tr.spray_at[7], 3600);
	cr_assert_eq(tr.spray_at[9], 5600);
}

/* a short direct timeout cuts the schedule */
Test(path, short_timeout_cuts_schedule)
{
	struct path_cfg cfg = { .direct_timeout_ms = 600 };
	union sockaddr_any c = A("203.0.113.7:51820");
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };

	path_init(&p, &cfg, true, 0);
	path_learn(&p, &c, 1, 0, &o);
	record(&tr, &o, 0);
	run(&p, 0, 600, &tr);
	cr_assert_eq(tr.nspray, 3);
	cr_assert_eq(p.state, PATH_RELAYED);
}

/* the yielding side of a pair starts its schedule later; the timeout counts
 * from the attempt */
Test(path, spray_delay_shifts_schedule)
{
	static const uint64_t want[] = { 200, 400, 700, 1200, 1700, 2200, 2700 };
	struct path_cfg cfg = { .spray_delay_ms = PATH_SPRAY_YIELD_MS };
	union sockaddr_any c = A("203.0.113.7:51820");
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };

	path_init(&p, &cfg, true, 0);
	path_learn(&p, &c, 1, 0, &o);
	cr_assert_eq(o.n, 0, "nothing at once");
	cr_assert_eq(path_deadline(&p), 200);
	/* new candidates during the delay wait for the first spray too */
	union sockaddr_any c2[2] = { A("203.0.113.7:51820"), A("10.1.0.2:51820") };
	path_learn(&p, c2, 2, 100, &o);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(p.ncands, 2);
	run(&p, 0, 3000, &tr);
	cr_assert_eq(p.state, PATH_RELAYED);
	cr_assert_eq(tr.nspray, 7);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(tr.spray_at[i], want[i], "spray %d at %llu", i, (unsigned long long)tr.spray_at[i]);
	/* a delay not below the timeout is ignored */
	cfg.spray_delay_ms = PATH_DIRECT_TIMEOUT_MS;
	path_init(&p, &cfg, true, 0);
	cr_assert_eq(p.cfg.spray_delay_ms, 0);
}

/* a late tick sends one spray, not a burst of the missed ones */
Test(path, late_tick_skips_missed_steps)
{
	struct path_peer p;
	struct path_out o = { 0 };

	start(&p, true, NULL);
	path_tick(&p, 1200, &o);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_SPRAY);
	cr_assert_eq(path_deadline(&p), 1500);
	/* calling early does nothing */
	o.n = 0;
	path_tick(&p, 1300, &o);
	cr_assert_eq(o.n, 0);
}

/* CONNECTING -> FAILED without a relay */
Test(path, connecting_without_relay_fails)
{
	struct path_peer p;

	start(&p, false, NULL);
	run(&p, 0, 3000, NULL);
	cr_assert_eq(p.state, PATH_FAILED);
	cr_assert_str_eq(path_state_public(p.state), "failed");
}

/* CONNECTING -> DIRECT on a handshake; the winning endpoint is installed */
Test(path, connecting_to_direct)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, true, NULL);
	run(&p, 0, 700, NULL);
	path_handshake(&p, &ep, 731, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_DIRECT);
	cr_assert(addr_equal(&o.act[0].ep, &ep));
	cr_assert(addr_equal(&p.endpoint, &ep));
	cr_assert_eq(p.upgrades, 0);
	cr_assert_eq(p.since, 731);
	/* no more sprays, the next deadline is the idle check */
	cr_assert_eq(path_deadline(&p), 731 + PATH_DIRECT_IDLE_MS);
}

/* DIRECT stays while packets arrive; roaming updates the endpoint */
Test(path, direct_kept_alive_and_roams)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820"), ep2 = A("203.0.113.7:40001");
	uint64_t t;

	start(&p, true, NULL);
	path_handshake(&p, &ep, 100, &o);
	o.n = 0;
	for (t = 20100; t < 300000; t += 20000) {
		run(&p, t - 20000, t, NULL);
		path_rx(&p, t);
	}
	cr_assert_eq(p.state, PATH_DIRECT);
	path_handshake(&p, &ep2, t, &o);
	cr_assert_eq(o.n, 0);
	cr_assert(addr_equal(&p.endpoint, &ep2));
	cr_assert_eq(p.state, PATH_DIRECT);
}

/* DIRECT -> RETRYING when nothing arrives for two of the slowest peer's
 * keepalives: traffic moves to the relay and a direct attempt starts at once
 * (issue 17: an expired mapping comes back with the next initiations, not
 * after the 30 s retry); if it fails, the retries back off from the base. */
Test(path, direct_idle_retries_at_once)
{
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");
	uint64_t lost = 5000 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS;

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	path_rx(&p, 5000);
	run(&p, 5000, lost - 1, &tr);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(tr.nspray, 2, "a probe when the idle time is over, and its second copy");
	cr_assert_eq(tr.spray_at[0], 5000 + PATH_DIRECT_IDLE_MS);
	tr = (struct trace){ 0 };
	run(&p, lost - 1, lost, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_str_eq(path_state_public(p.state), "relayed");
	cr_assert_eq(tr.nother, 2);
	cr_assert_eq(tr.other[0], PATH_ACT_RELAY);
	cr_assert_eq(tr.other[1], PATH_ACT_TELL, "the peer is told through the relay");
	cr_assert_eq(tr.other_at[0], lost);
	cr_assert_eq(tr.nspray, 1, "the first spray goes with the fallback");
	cr_assert_eq(tr.spray_at[0], lost);
	cr_assert_eq(p.fallbacks, 1);
	/* the peer answers 400 ms later: direct again, counted as an upgrade */
	o.n = 0;
	run(&p, lost, lost + 400, &tr);
	o.n = 0;
	path_handshake(&p, &ep, lost + 400, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(p.upgrades, 1);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_DIRECT);
	/* lost again and nobody answers: relayed, retried after the base backoff */
	lost = lost + 400 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS;
	run(&p, lost - PATH_DIRECT_IDLE_MS - PATH_PROBE_TIMEOUT_MS, lost + PATH_DIRECT_TIMEOUT_MS, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	cr_assert_eq(path_deadline(&p), lost + PATH_DIRECT_TIMEOUT_MS + PATH_RETRY_BASE_MS);
}

/* DIRECT -> RETRYING when what we send is not answered for the slowest
 * peer's keepalive interval plus REKEY_TIMEOUT, long before the idle
 * check, and a probe then is not answered either */
Test(path, direct_unanswered_falls_back)
{
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	/* answered sends keep it */
	path_tx(&p, 2000);
	path_rx(&p, 2100);
	cr_assert_eq(path_deadline(&p), 2100 + PATH_DIRECT_IDLE_MS);
	/* the first unanswered send starts the clock; later sends do not move it */
	path_tx(&p, 5000);
	path_tx(&p, 9000);
	cr_assert_eq(path_deadline(&p), 5000 + PATH_DIRECT_UNANSWERED_MS);
	run(&p, 5000, 5000 + PATH_DIRECT_UNANSWERED_MS + PATH_PROBE_TIMEOUT_MS - 1, &tr);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(p.probes, 1, "it probes first");
	run(&p, 5000 + PATH_DIRECT_UNANSWERED_MS + PATH_PROBE_TIMEOUT_MS - 1,
	    5000 + PATH_DIRECT_UNANSWERED_MS + PATH_PROBE_TIMEOUT_MS, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(tr.nother, 2);
	cr_assert_eq(tr.other[0], PATH_ACT_RELAY);
	cr_assert_eq(tr.other[1], PATH_ACT_TELL);
	/* outside DIRECT sends mean nothing */
	path_tx(&p, 40000);
	cr_assert_eq(p.unanswered_since, 0);
}

/* a keepalive from the NAT's measured mapping lifetime (issue 17) */
Test(path, keepalive_from_lifetime)
{
	static const struct { uint32_t alive_ms, want_s; } t[] = {
		{ 0, PATH_KEEPALIVE_S },		/* not measured: safe for 15 s NATs */
		{ 1000, PATH_KEEPALIVE_MIN_S },		/* absurdly short: floored */
		{ 9999, PATH_KEEPALIVE_MIN_S },
		{ 14000, 7 },				/* a carrier NAT: half */
		{ 30000, 15 },
		{ 50000, PATH_KEEPALIVE_MAX_S },
		{ 120000, PATH_KEEPALIVE_MAX_S },	/* RFC 4787's 2 minutes: capped */
		{ UINT32_MAX, PATH_KEEPALIVE_MAX_S },
	};

	cr_assert_lt(PATH_KEEPALIVE_S * 1000 + 5000, 15001, "the default stands a 15 s mapping with 5 s to spare");
	cr_assert_gt(PATH_DIRECT_UNANSWERED_MS, PATH_KEEPALIVE_MAX_S * 1000, "a slow peer's keepalive is not a dead path");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(path_keepalive_s(t[i].alive_ms), t[i].want_s, "alive %u ms", t[i].alive_ms);
}

/* DIRECT -> RETRYING -> FAILED when the path dies and there is no relay */
Test(path, direct_idle_without_relay_fails)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, false, NULL);
	path_handshake(&p, &ep, 10, &o);
	o.n = 0;
	path_tick(&p, 10 + PATH_DIRECT_IDLE_MS, &o);
	cr_assert_eq(p.state, PATH_DIRECT, "it probes first");
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_SPRAY);
	o.n = 0;
	run(&p, 10 + PATH_DIRECT_IDLE_MS, 10 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS / 2, NULL);
	path_tick(&p, 10 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS, &o);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(o.n, 2, "no relay: no one to tell");
	cr_assert_eq(o.act[0].type, PATH_ACT_RELAY);
	cr_assert_eq(o.act[1].type, PATH_ACT_SPRAY);
	run(&p, 10 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS,
	    10 + PATH_DIRECT_IDLE_MS + PATH_PROBE_TIMEOUT_MS + PATH_DIRECT_TIMEOUT_MS, NULL);
	cr_assert_eq(p.state, PATH_FAILED);
}

/* RELAYED -> RETRYING -> RELAYED with doubling backoff up to the cap */
Test(path, relayed_retries_with_capped_backoff)
{
	static const uint32_t want_delay[] = { 30000, 60000, 120000, 240000, 240000, 240000 };
	struct path_peer p;
	uint64_t now;

	start(&p, true, NULL);
	now = run(&p, 0, 3000, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	for (int i = 0; i < 6; i++) {
		struct trace tr = { 0 };
		uint64_t retry = path_deadline(&p);
		cr_assert_eq(retry - now, want_delay[i], "retry %d after %llu", i,
			     (unsigned long long)(retry - now));
		now = run(&p, now, retry, &tr);
		cr_assert_eq(p.state, PATH_RETRYING);
		cr_assert_eq(tr.nspray, 1);
		cr_assert_str_eq(path_state_public(p.state), "relayed");
		now = run(&p, now, retry + PATH_DIRECT_TIMEOUT_MS, &tr);
		cr_assert_eq(p.state, PATH_RELAYED);
		cr_assert_eq(tr.nspray, 7);
		cr_assert_eq(tr.nother, 0);
	}
}

/* RETRYING -> DIRECT: the upgrade resets the backoff */
Test(path, retry_upgrades_to_direct)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("10.1.0.2:51820");
	uint64_t now;

	start(&p, true, NULL);
	now = run(&p, 0, 3000, NULL);
	now = run(&p, now, now + 30000 + 3000, NULL);	/* one failed retry */
	cr_assert_eq(path_deadline(&p) - now, 60000);
	now = run(&p, now, path_deadline(&p) + 100, NULL);
	cr_assert_eq(p.state, PATH_RETRYING);
	path_handshake(&p, &ep, now, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_DIRECT);
	cr_assert_eq(p.upgrades, 1);
	cr_assert_eq(p.backoff_ms, PATH_RETRY_BASE_MS);
}

/* RELAYED -> DIRECT: the peer reached us first (a peer-reflexive endpoint,
 * e.g. from behind a symmetric NAT), outside any attempt of ours */
Test(path, relayed_upgrades_on_peer_initiated_handshake)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any prflx = A("198.51.100.9:61234");

	start(&p, true, NULL);
	run(&p, 0, 10000, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	path_handshake(&p, &prflx, 10000, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert(addr_equal(&o.act[0].ep, &prflx));
	cr_assert_eq(p.upgrades, 1);
}

/* FAILED <-> RELAYED as relays come and go; FAILED -> RETRYING -> DIRECT */
Test(path, failed_and_relay_changes)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");
	uint64_t now;

	start(&p, false, NULL);
	now = run(&p, 0, 3000, NULL);
	cr_assert_eq(p.state, PATH_FAILED);
	path_relay(&p, true, now);
	cr_assert_eq(p.state, PATH_RELAYED);
	path_relay(&p, false, now);
	cr_assert_eq(p.state, PATH_FAILED);
	now = run(&p, now, now + 30000, NULL);
	cr_assert_eq(p.state, PATH_RETRYING);
	/* a relay appearing during an attempt is used by its timeout */
	path_relay(&p, true, now);
	cr_assert_eq(p.state, PATH_RETRYING);
	now = run(&p, now, now + 3000, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	path_relay(&p, false, now);
	now = run(&p, now, path_deadline(&p), NULL);
	cr_assert_eq(p.state, PATH_RETRYING);
	path_handshake(&p, &ep, now + 50, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	/* relay changes in DIRECT change nothing but the fallback target */
	path_relay(&p, true, now + 60);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert(p.have_relay);
	/* FAILED -> DIRECT directly too */
	start(&p, false, NULL);
	now = run(&p, 0, 3000, NULL);
	o.n = 0;
	path_handshake(&p, &ep, now, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(o.act[0].type, PATH_ACT_DIRECT);
}

/* learning: unchanged candidates do nothing; changed ones spray now, and a
 * relayed peer retries at once with the backoff reset */
Test(path, learn_changes)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any c[2] = { A("203.0.113.7:51820"), A("10.1.0.2:51820") };
	union sockaddr_any c2[1] = { A("203.0.113.8:51820") };
	union sockaddr_any ep = A("203.0.113.8:51820");
	uint64_t now;

	start(&p, true, NULL);
	path_learn(&p, c, 2, 100, &o);
	cr_assert_eq(o.n, 0);
	/* CONNECTING: one extra spray, schedule unchanged */
	path_learn(&p, c2, 1, 100, &o);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_SPRAY);
	cr_assert_eq(p.state, PATH_CONNECTING);
	cr_assert_eq(path_deadline(&p), 200);
	cr_assert_eq(p.ncands, 1);
	/* RELAYED after a failed retry (backoff 60 s): new candidates -> RETRYING now */
	now = run(&p, 0, 3000 + 30000 + 3000, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	cr_assert_eq(path_deadline(&p) - now, 60000);
	o.n = 0;
	path_learn(&p, c, 2, now + 5, &o);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_SPRAY);
	cr_assert_eq(p.backoff_ms, PATH_RETRY_BASE_MS);
	now = run(&p, now + 5, now + 5 + 3000, NULL);
	cr_assert_eq(path_deadline(&p) - now, PATH_RETRY_BASE_MS);
	/* DIRECT: new candidates get one spray, the path stays */
	o.n = 0;
	path_handshake(&p, &ep, now, &o);
	o.n = 0;
	path_learn(&p, c2, 1, now + 1, &o);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.act[0].type, PATH_ACT_SPRAY);
	/* FAILED: new candidates retry at once too */
	start(&p, false, NULL);
	now = run(&p, 0, 3000, NULL);
	o.n = 0;
	path_learn(&p, c2, 1, now, &o);
	cr_assert_eq(p.state, PATH_RETRYING);
}

/* a peer without candidates still waits the direct timeout (it may reach us) */
Test(path, no_candidates)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any big[PATH_MAX_CANDS + 4];

	path_init(&p, NULL, true, 0);
	path_learn(&p, NULL, 0, 0, &o);
	cr_assert_eq(p.state, PATH_CONNECTING);
	cr_assert_eq(p.ncands, 0);
	run(&p, 0, 3000, NULL);
	cr_assert_eq(p.state, PATH_RELAYED);
	for (int i = 0; i < PATH_MAX_CANDS + 4; i++) {
		memset(&big[i], 0, sizeof(big[i]));
		big[i].in.sin_family = AF_INET;
		big[i].in.sin_port = htons((uint16_t)(1000 + i));
	}
	path_learn(&p, big, PATH_MAX_CANDS + 4, 3000, &o);
	cr_assert_eq(p.ncands, PATH_MAX_CANDS);
}

/* --- candidate order --- */

struct order_case {
	const char *name;
	const char *mine[4];
	bool mine_refl[4];
	const char *theirs[6];
	bool theirs_refl[6];
	int max;
	const char *want[6];
};

static const struct order_case order_cases[] = {
	{ "different NATs: reflexive first",
	  { "10.0.0.2:51820", "198.51.100.1:40000" }, { false, true },
	  { "10.1.0.2:51820", "203.0.113.7:51820", "203.0.113.7:51821" }, { false, true, true }, 8,
	  { "203.0.113.7:51820", "203.0.113.7:51821", "10.1.0.2:51820" } },
	{ "same NAT: local first",
	  { "10.0.0.2:51820", "198.51.100.1:40000" }, { false, true },
	  { "10.0.0.3:51820", "198.51.100.1:40001" }, { false, true }, 8,
	  { "10.0.0.3:51820", "198.51.100.1:40001" } },
	{ "duplicates and port 0 dropped",
	  { NULL }, { false },
	  { "203.0.113.7:51820", "203.0.113.7:51820", "10.1.0.2:0", "10.1.0.2:51820" },
	  { true, true, false, false }, 8,
	  { "203.0.113.7:51820", "10.1.0.2:51820" } },
	{ "max cuts the list",
	  { NULL }, { false },
	  { "10.1.0.2:51820", "203.0.113.7:1", "203.0.113.7:2" }, { false, true, true }, 2,
	  { "203.0.113.7:1", "203.0.113.7:2" } },
	{ "IPv6 kept",
	  { NULL }, { false },
	  { "[2001:db8::1]:51820", "192.0.2.9:7" }, { false, true }, 8,
	  { "192.0.2.9:7", "[2001:db8::1]:51820" } },
	{ "local-only peer", { "10.0.0.2:1" }, { false },
	  { "10.0.0.3:1" }, { false }, 8, { "10.0.0.3:1" } },
};

Test(path, candidate_order_table)
{
	for (size_t k = 0; k < sizeof(order_cases) / sizeof(order_cases[0]); k++) {
		const struct order_case *c = &order_cases[k];
		struct path_cand mine[4] = { 0 }, theirs[6] = { 0 };
		union sockaddr_any out[8];
		int nm = 0, nt = 0, nw = 0, n;

		for (; nm < 4 && c->mine[nm]; nm++) {
			mine[nm].addr = A(c->mine[nm]);
			mine[nm].reflexive = c->mine_refl[nm];
		}
		for (; nt < 6 && c->theirs[nt]; nt++) {
			theirs[nt].addr = A(c->theirs[nt]);
			theirs[nt].reflexive = c->theirs_refl[nt];
		}
		while (nw < 6 && c->want[nw])
			nw++;
		n = path_order_candidates(mine, nm, theirs, nt, out, c->max);
		cr_assert_eq(n, nw, "%s: %d candidates, want %d", c->name, n, nw);
		for (int i = 0; i < n; i++) {
			union sockaddr_any w = A(c->want[i]);
			char b[ADDR_STRLEN];
			cr_assert(addr_equal(&out[i], &w), "%s: #%d is %s, want %s", c->name, i,
				  addr_format(&out[i], b, sizeof(b)), c->want[i]);
		}
	}
}

/* issue 15 point 5: endpoints from the service that no peer can be at */
Test(path, addr_usable)
{
	static const struct {
		const char *addr;
		bool usable;
	} v[] = {
		{ "203.0.113.7:51820", true },
		{ "10.1.0.2:51820", true },
		{ "192.168.1.1:1", true },
		{ "[2001:db8::1]:51820", true },
		{ "[::ffff:198.51.100.2]:4000", true },
		{ "0.0.0.0:51820", false },
		{ "0.1.2.3:51820", false },
		{ "127.0.0.1:51820", false },
		{ "127.9.9.9:51820", false },
		{ "169.254.169.254:80", false },
		{ "224.0.0.1:51820", false },
		{ "239.255.255.250:1900", false },
		{ "255.255.255.255:51820", false },
		{ "240.0.0.1:51820", false },
		{ "203.0.113.7:0", false },
		{ "[::]:51820", false },
		{ "[::1]:51820", false },
		{ "[fe80::1]:51820", false },
		{ "[febf::1]:51820", false },
		{ "[ff02::1]:51820", false },
		{ "[::ffff:127.0.0.1]:51820", false },
		{ "[::ffff:169.254.1.1]:51820", false },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		union sockaddr_any a;
		const char *why = NULL;
		cr_assert_eq(addr_parse(v[i].addr, &a), 0, "%s", v[i].addr);
		cr_expect_eq(path_addr_usable(&a, &why), v[i].usable, "%s", v[i].addr);
		cr_expect_eq(why == NULL, v[i].usable, "%s: a reason when refused", v[i].addr);
	}
}

/* Issue 17: data over a DIRECT path that nothing answers: one probe (a
 * spray, sent again halfway through its timeout) after PATH_PROBE_AFTER_MS,
 * and the path lost PATH_PROBE_TIMEOUT_MS after it, long before the 30 s
 * check, the peer told through the relay; an answered probe keeps DIRECT,
 * and a one-way flow gets PATH_PROBE_BURST probes per PATH_PROBE_EVERY_MS */
Test(path, unanswered_data_probes_then_falls_back)
{
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");
	uint64_t t = 10000;
	const uint64_t half = PATH_PROBE_TIMEOUT_MS / 2;

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	/* keepalives alone never probe */
	path_tx(&p, t);
	cr_assert_eq(path_deadline(&p), t + PATH_DIRECT_UNANSWERED_MS);
	path_rx(&p, t + 50);
	/* data answered in time: nothing */
	path_tx_data(&p, t + 100);
	path_rx(&p, t + 400);
	run(&p, t + 400, t + 5000, &tr);
	cr_assert_eq(tr.nspray, 0);
	/* data unanswered: a probe, sent again halfway, answered by a handshake */
	t = 20000;
	path_tx_data(&p, t);
	path_tx_data(&p, t + 1000);
	cr_assert_eq(path_deadline(&p), t + PATH_PROBE_AFTER_MS);
	run(&p, t, t + PATH_PROBE_AFTER_MS + half, &tr);
	cr_assert_eq(tr.nspray, 2);
	cr_assert_eq(tr.spray_at[0], t + PATH_PROBE_AFTER_MS);
	cr_assert_eq(tr.spray_at[1], t + PATH_PROBE_AFTER_MS + half);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(p.probes, 1);
	o.n = 0;
	t += PATH_PROBE_AFTER_MS + half + 10;
	path_handshake(&p, &ep, t, &o);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(p.state, PATH_DIRECT);
	/* a one-way flow: a second probe as soon as the first */
	path_tx_data(&p, t + PATH_REPLY_MS);
	cr_assert_eq(path_deadline(&p), t + PATH_REPLY_MS + PATH_PROBE_AFTER_MS);
	run(&p, t + PATH_REPLY_MS, t + PATH_REPLY_MS + PATH_PROBE_AFTER_MS, &tr);
	cr_assert_eq(p.probes, 2);
	path_rx(&p, t + PATH_REPLY_MS + PATH_PROBE_AFTER_MS + 10);
	/* the third waits until the first is PATH_PROBE_EVERY_MS old */
	path_tx_data(&p, t + 2000);
	cr_assert_eq(path_deadline(&p), 20000 + PATH_PROBE_AFTER_MS + PATH_PROBE_EVERY_MS);
	t = 20000 + PATH_PROBE_AFTER_MS + PATH_PROBE_EVERY_MS;
	run(&p, t - 1000, t, &tr);
	cr_assert_eq(p.probes, 3);
	cr_assert_eq(p.state, PATH_DIRECT);
	/* this probe is not answered: lost PATH_PROBE_TIMEOUT_MS later, the
	 * peer told, retried at once */
	tr = (struct trace){ 0 };
	run(&p, t, t + PATH_PROBE_TIMEOUT_MS - 1, &tr);
	cr_assert_eq(p.state, PATH_DIRECT);
	cr_assert_eq(tr.nspray, 1, "the probe's second copy");
	run(&p, t + PATH_PROBE_TIMEOUT_MS - 1, t + PATH_PROBE_TIMEOUT_MS, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(tr.nother, 2);
	cr_assert_eq(tr.other[0], PATH_ACT_RELAY);
	cr_assert_eq(tr.other[1], PATH_ACT_TELL);
	cr_assert_eq(tr.nspray, 2, "the retry's first spray goes with the fallback");
	cr_assert_eq(p.fallbacks, 1);
}

/* Issue 17, mapping-lost's flake: data sent right after the peer's packet
 * is a reply (an echo reply): no probe; data sent later is a request */
Test(path, reply_draws_no_probe)
{
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	path_rx(&p, 5000);
	path_tx_data(&p, 5000 + PATH_REPLY_MS - 1);
	run(&p, 5000 + PATH_REPLY_MS - 1, 9000, &tr);
	cr_assert_eq(p.probes, 0);
	path_tx_data(&p, 9000);
	cr_assert_eq(path_deadline(&p), 9000 + PATH_PROBE_AFTER_MS);
}

/* Issue 17: the probe's waits stretch to twice the handshake round trip
 * (a satellite path), up to PATH_PROBE_WAIT_MAX_MS; no relay, no tell; the
 * peer is told at most once per PATH_TELL_EVERY_MS */
Test(path, probe_waits_follow_rtt_and_tell_is_limited)
{
	struct path_peer p;
	struct path_out o = { 0 };
	struct trace tr = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	path_rtt(&p, 400);
	path_tx_data(&p, 5000);
	cr_assert_eq(path_deadline(&p), 5800);
	run(&p, 5000, 5800 + 800, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(tr.nother, 2);
	cr_assert_eq(tr.other[1], PATH_ACT_TELL);
	/* direct again and lost again soon after: not told again */
	o.n = 0;
	path_handshake(&p, &ep, 7000, &o);
	path_rtt(&p, 5000);
	path_tx_data(&p, 7300);
	cr_assert_eq(path_deadline(&p), 7300 + PATH_PROBE_WAIT_MAX_MS);
	tr = (struct trace){ 0 };
	run(&p, 7300, 7300 + 2 * PATH_PROBE_WAIT_MAX_MS, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(tr.nother, 1);
	cr_assert_eq(tr.other[0], PATH_ACT_RELAY);
	/* without a relay there is no one to tell */
	start(&p, false, NULL);
	path_handshake(&p, &ep, 1000, &o);
	path_tx_data(&p, 5000);
	tr = (struct trace){ 0 };
	run(&p, 5000, 7000, &tr);
	cr_assert_eq(p.state, PATH_RETRYING);
	for (int i = 0; i < tr.nother; i++)
		cr_assert_neq(tr.other[i], PATH_ACT_TELL);
}

/* Issue 17: the relay forwards the peer's packets while we are DIRECT: the
 * peer lost the path, so we lose it too and punch again at once; not in the
 * first moments of DIRECT nor just after a direct packet */
Test(path, owned_elsewhere)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	o.n = 0;
	path_owned_elsewhere(&p, 1000 + PATH_OWNED_GRACE_MS - 1, &o);
	cr_assert_eq(p.state, PATH_DIRECT, "the peer may still be on the relay");
	path_rx(&p, 9000);
	path_owned_elsewhere(&p, 9000 + PATH_OWNED_RX_MS - 1, &o);
	cr_assert_eq(p.state, PATH_DIRECT, "its direct packet just came");
	cr_assert_eq(o.n, 0);
	path_owned_elsewhere(&p, 20000, &o);
	cr_assert_eq(p.state, PATH_RETRYING);
	cr_assert_eq(o.n, 2);
	cr_assert_eq(o.act[0].type, PATH_ACT_RELAY);
	cr_assert_eq(o.act[1].type, PATH_ACT_SPRAY);
	/* outside DIRECT it means nothing */
	o.n = 0;
	path_owned_elsewhere(&p, 30000, &o);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(p.state, PATH_RETRYING);
}

/* Issue 17: the yielding side goes quiet for PATH_YIELD_WAIT_MS once the
 * peer's initiation came, so its own do not keep replacing the peer's
 * pending handshake; the side that does not yield goes on spraying */
Test(path, yielding_side_waits_after_the_peers_initiation)
{
	static const struct path_cfg yield = { .spray_delay_ms = PATH_SPRAY_YIELD_MS };
	union sockaddr_any c[1] = { A("203.0.113.7:51820") };
	struct path_peer p, q;
	struct path_out o = { 0 };
	struct trace tr = { 0 }, tq = { 0 };

	path_init(&p, &yield, true, 0);
	path_learn(&p, c, 1, 0, &o);
	path_init(&q, &defcfg, true, 0);
	path_learn(&q, c, 1, 0, &o);
	run(&p, 0, 500, &tr);			/* sprays at 200 and 400 (0 + 200, 200 + 200) */
	cr_assert_eq(tr.nspray, 2);
	path_initiated(&p, 550);
	cr_assert_eq(path_deadline(&p), 550 + PATH_YIELD_WAIT_MS);
	run(&p, 500, 550 + PATH_YIELD_WAIT_MS - 1, &tr);
	cr_assert_eq(tr.nspray, 2, "quiet while the peer completes");
	run(&p, 550 + PATH_YIELD_WAIT_MS - 1, 550 + PATH_YIELD_WAIT_MS, &tr);
	cr_assert_eq(tr.nspray, 3, "and spraying again if it did not");
	/* near the end of the attempt the wait ends it instead */
	path_initiated(&p, PATH_DIRECT_TIMEOUT_MS - 500);
	cr_assert_eq(path_deadline(&p), PATH_DIRECT_TIMEOUT_MS);
	run(&p, PATH_DIRECT_TIMEOUT_MS - 500, PATH_DIRECT_TIMEOUT_MS, &tr);
	cr_assert_eq(tr.nspray, 3);
	cr_assert_eq(p.state, PATH_RELAYED);
	/* the side that does not yield is not held back */
	run(&q, 0, 250, &tq);
	uint64_t next = path_deadline(&q);
	path_initiated(&q, 250);
	cr_assert_eq(path_deadline(&q), next);
	/* nor is any state but an attempt */
	path_initiated(&p, 3500);
	cr_assert_eq(p.state, PATH_RELAYED);
}

/* Only one side sends keepalives (WireGuard restarts the timer on every
 * packet received, so the side whose keepalive lands first silences the
 * other): that side hears nothing back, probes when the unanswered time is
 * over, and the answered probe keeps the idle path DIRECT */
Test(path, one_sided_keepalives_keep_direct)
{
	struct path_peer p;
	struct path_out o = { 0 };
	union sockaddr_any ep = A("203.0.113.7:51820");
	uint64_t t;

	start(&p, true, NULL);
	path_handshake(&p, &ep, 1000, &o);
	for (t = 1000; t < 200000; t += 5) {
		o.n = 0;
		if (t % 10000 == 1000)
			path_tx(&p, t);		/* our keepalive */
		if (p.probing && t == p.probe_at + 5)
			path_handshake(&p, &ep, t, &o);	/* the peer answers */
		if (t >= path_deadline(&p))
			path_tick(&p, t, &o);
		cr_assert_eq(p.state, PATH_DIRECT, "at %llu ms", (unsigned long long)t);
	}
	cr_assert_eq(p.fallbacks, 0);
	cr_assert_geq(p.probes, 5);
}
