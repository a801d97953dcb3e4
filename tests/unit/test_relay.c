/* The relay choice: alive by probe answers, lowest smoothed probe RTT with
 * hysteresis, lowest id among equals, failover, no flapping. */
#include <criterion/criterion.h>

#include "agent/meshd/relay.h"

Test(relay, alive_window)
{
	struct relay_cand r = { "a", 0, 0 };

	cr_assert_not(relay_alive(&r, 100));
	r.last_answer = 1000;
	cr_assert(relay_alive(&r, 1000));
	cr_assert(relay_alive(&r, 1000 + RELAY_DEAD_MS - 1));
	cr_assert_not(relay_alive(&r, 1000 + RELAY_DEAD_MS));
	cr_assert_not(relay_alive(&r, 999), "an answer from the future is no answer");
}

Test(relay, pick_table)
{
	static const struct {
		const char *name;
		uint64_t ans[3];	/* last answers of "b", "a", "c" */
		uint64_t rtt[3];	/* smoothed RTTs (us) of "b", "a", "c" */
		int current, want;	/* indexes into b, a, c */
	} cases[] = {
		{ "nobody answered yet: the lowest id", { 0, 0, 0 }, { 0, 0, 0 }, -1, 1 },
		{ "nobody answers any more: keep the current one", { 0, 0, 0 }, { 0, 0, 0 }, 2, 2 },
		{ "nobody answers, a bad current index: the lowest id", { 0, 0, 0 }, { 0, 0, 0 }, 7, 1 },
		{ "nothing measured: the lowest id alive", { 9000, 9000, 9000 }, { 0, 0, 0 }, -1, 1 },
		{ "nothing measured, the current one lives: stays", { 9000, 9000, 9000 }, { 0, 0, 0 }, 0, 0 },
		{ "a is dead: b", { 9000, 1000, 9000 }, { 0, 0, 0 }, 1, 0 },
		{ "only c alive", { 1000, 1000, 9000 }, { 0, 0, 0 }, 1, 2 },
		{ "lowest RTT at start", { 9000, 9000, 9000 }, { 5000, 8000, 3000 }, -1, 2 },
		{ "measured before unmeasured", { 9000, 9000, 9000 }, { 0, 0, 40000 }, -1, 2 },
		{ "equal RTT: the lowest id", { 9000, 9000, 9000 }, { 3000, 3000, 3000 }, -1, 1 },
		{ "the lowest RTT is dead: the next", { 9000, 9000, 1000 }, { 5000, 8000, 3000 }, -1, 0 },
		{ "current 10% slower: stays (hysteresis)", { 9000, 9000, 9000 }, { 10000, 11000, 0 }, 1, 1 },
		{ "current 50% slower: moves", { 9000, 9000, 9000 }, { 10000, 20000, 0 }, 1, 0 },
		{ "30% slower but only 300 us: stays", { 9000, 9000, 9000 }, { 700, 1000, 0 }, 1, 1 },
		{ "current unmeasured, another measured: moves", { 9000, 9000, 9000 }, { 0, 0, 2000 }, 1, 2 },
		{ "current fastest: stays", { 9000, 9000, 9000 }, { 9000, 2000, 4000 }, 1, 1 },
		{ "current dead, fast but dead ignored", { 9000, 1000, 9000 }, { 9000, 100, 4000 }, 1, 2 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct relay_cand c[3] = { { "b", cases[k].ans[0], cases[k].rtt[0] },
					   { "a", cases[k].ans[1], cases[k].rtt[1] },
					   { "c", cases[k].ans[2], cases[k].rtt[2] } };
		cr_expect_eq(relay_pick(c, 3, cases[k].current, 10000), cases[k].want, "%s", cases[k].name);
	}
	cr_assert_eq(relay_pick(NULL, 0, -1, 0), -1);
	cr_assert_eq(relay_pick(NULL, 0, 3, 0), -1);
}

/* RTTs that wobble around each other (jitter of two relays at the same
 * distance) never move the choice once made; a clearly faster one does */
Test(relay, no_flapping)
{
	struct relay_cand c[2] = { { "a", 0, 0 }, { "b", 0, 0 } };
	int cur = -1, moves = 0;

	for (uint64_t t = 2000; t <= 120000; t += 2000) {
		c[0].last_answer = c[1].last_answer = t;
		c[0].rtt_us = 5000 + (t / 2000 % 2) * 600;	/* 5.0 / 5.6 ms */
		c[1].rtt_us = 5300 - (t / 2000 % 2) * 600;	/* 5.3 / 4.7 ms */
		int next = relay_pick(c, 2, cur, t);
		if (cur >= 0 && next != cur)
			moves++;
		cur = next;
	}
	cr_expect_eq(moves, 0);
	c[cur ^ 1].rtt_us = 1000;
	cr_expect_eq(relay_pick(c, 2, cur, 120000), cur ^ 1, "a relay 4 ms closer wins");
}

/* the relay in use dies: the choice moves within RELAY_DEAD_MS of its last
 * answer, while the other keeps answering every RELAY_PROBE_MS */
Test(relay, failover_time)
{
	struct relay_cand c[2] = { { "a", 0, 0 }, { "b", 0, 0 } };
	uint64_t t, moved = 0;
	int cur = -1;

	for (t = 0; t <= 30000; t += 50) {
		if (t % RELAY_PROBE_MS == 0) {
			if (t < 10000)
				c[0].last_answer = t;	/* a answers last at 8 s */
			c[1].last_answer = t;
		}
		int next = relay_pick(c, 2, cur, t);
		if (cur == 0 && next == 1 && !moved)
			moved = t;
		cur = next;
	}
	cr_assert_eq(cur, 1);
	cr_assert_gt(moved, 8000);
	cr_assert_leq(moved, 8000 + RELAY_DEAD_MS, "moved at %llu", (unsigned long long)moved);
}

Test(relay, srtt)
{
	static const struct { uint64_t srtt, sample, want; } t[] = {
		{ 0, 40500, 40500 },		/* the first sample as it is */
		{ 0, 0, 1 },			/* never 0: 0 means not measured */
		{ 40500, 160500, 80500 },	/* a third of the difference */
		{ 160500, 40500, 120500 },
		{ 30000, 30000, 30000 },
		{ 1, 0, 1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(relay_srtt(t[i].srtt, t[i].sample), t[i].want, "srtt %llu sample %llu",
			     (unsigned long long)t[i].srtt, (unsigned long long)t[i].sample);
}

/* Issue 17: two relays at 20 and 80 ms one way (probe round trips 40 and
 * 160 ms) swap their delays at 31 s; probes go every RELAY_PROBE_MS, each
 * answered one round trip later. The agent is on the near one before the
 * swap and on the other within 10 s of it, and stays there. */
Test(relay, follows_swapped_delays)
{
	struct relay_cand c[2] = { { "near", 0, 0 }, { "far", 0, 0 } };
	uint64_t rtt_ms[2] = { 40, 160 }, moved = 0, swap = 31000;
	int cur = -1, moves = 0;

	for (uint64_t t = 0; t <= 90000; t += RELAY_PROBE_MS) {
		if (t >= swap) {
			rtt_ms[0] = 160;
			rtt_ms[1] = 40;
		}
		for (int i = 0; i < 2; i++) {
			c[i].last_answer = t + rtt_ms[i];
			c[i].rtt_us = relay_srtt(c[i].rtt_us, rtt_ms[i] * 1000 + 500);
		}
		int next = relay_pick(c, 2, cur, t + 160);
		if (t < swap)
			cr_assert_eq(next, 0, "the 20 ms relay before the swap (t=%llu)", (unsigned long long)t);
		if (cur >= 0 && next != cur) {
			moves++;
			moved = t + 160;
		}
		cur = next;
	}
	cr_assert_eq(cur, 1);
	cr_assert_eq(moves, 1);
	cr_assert_leq(moved - swap, 10000, "moved %llu ms after the swap", (unsigned long long)(moved - swap));
}

/* the same relays' probes with 30% jitter on every answer never make the
 * agent leave the near one (smoothing plus hysteresis) */
Test(relay, jitter_does_not_flap)
{
	struct relay_cand c[2] = { { "near", 0, 0 }, { "far", 0, 0 } };
	static const int wobble[] = { 0, 30, -30, 15, -15, 30, 30, -30 };
	int cur = -1, moves = 0;

	for (uint64_t t = 0, k = 0; t <= 120000; t += RELAY_PROBE_MS, k++) {
		uint64_t a = 40000 * (100 + wobble[k % 8]) / 100;
		uint64_t b = 48000 * (100 - wobble[(k + 3) % 8]) / 100;
		c[0].last_answer = c[1].last_answer = t;
		c[0].rtt_us = relay_srtt(c[0].rtt_us, a);
		c[1].rtt_us = relay_srtt(c[1].rtt_us, b);
		int next = relay_pick(c, 2, cur, t);
		if (cur >= 0 && next != cur)
			moves++;
		cur = next;
	}
	cr_expect_eq(moves, 0);
}
