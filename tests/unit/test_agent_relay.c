/* The relay choice: alive by probe answers, lowest id, failover, no flapping
 * to a dead one. */
#include <criterion/criterion.h>

#include "agent/meshd/relay.h"

Test(relay, alive_window)
{
	struct relay_cand r = { "a", 0 };

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
		int current, want;	/* indexes into b, a, c */
	} cases[] = {
		{ "nobody answered yet: the lowest id", { 0, 0, 0 }, -1, 1 },
		{ "nobody answers any more: keep the current one", { 0, 0, 0 }, 2, 2 },
		{ "the lowest id alive", { 9000, 9000, 9000 }, -1, 1 },
		{ "the lowest id alive, even if the current one lives", { 9000, 9000, 9000 }, 0, 1 },
		{ "a is dead: b", { 9000, 1000, 9000 }, 1, 0 },
		{ "only c alive", { 1000, 1000, 9000 }, 1, 2 },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct relay_cand c[3] = { { "b", cases[k].ans[0] }, { "a", cases[k].ans[1] }, { "c", cases[k].ans[2] } };
		cr_assert_eq(relay_pick(c, 3, cases[k].current, 10000), cases[k].want, "%s", cases[k].name);
	}
	cr_assert_eq(relay_pick(NULL, 0, -1, 0), -1);
	cr_assert_eq(relay_pick(NULL, 0, 3, 0), -1);
}

/* the relay in use dies: the choice moves within RELAY_DEAD_MS of its last
 * answer, while the other keeps answering every RELAY_PROBE_MS */
Test(relay, failover_time)
{
	struct relay_cand c[2] = { { "a", 0 }, { "b", 0 } };
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
