#include <criterion/criterion.h>

#include "agent/wg/replay.h"

static struct wg_replay r;

static void setup(void)
{
	wg_replay_init(&r);
}

TestSuite(wg_replay, .init = setup);

struct step { uint64_t counter; bool accept; };

static void run(const struct step *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(wg_replay_check(&r, s[i].counter), s[i].accept,
			     "step %zu: check(%llu)", i, (unsigned long long)s[i].counter);
		cr_expect_eq(wg_replay_update(&r, s[i].counter), s[i].accept,
			     "step %zu: update(%llu)", i, (unsigned long long)s[i].counter);
	}
}

#define W WG_REPLAY_WINDOW_SIZE

Test(wg_replay, in_order_and_duplicates)
{
	static const struct step s[] = {
		{ 0, true }, { 0, false }, { 1, true }, { 1, false }, { 2, true },
		{ 3, true }, { 2, false }, { 4, true }, { 0, false },
	};
	run(s, sizeof(s) / sizeof(s[0]));
}

Test(wg_replay, out_of_order_within_window)
{
	static const struct step s[] = {
		{ 10, true }, { 5, true }, { 9, true }, { 5, false }, { 0, true }, { 11, true },
		{ 7, true }, { 7, false }, { 63, true }, { 64, true }, { 65, true }, { 6, true },
	};
	run(s, sizeof(s) / sizeof(s[0]));
}

Test(wg_replay, window_edge_and_too_old)
{
	static const struct step s[] = {
		{ W + 100, true },
		{ 101, true },		/* exactly W - 1 behind the top: still inside */
		{ 100, false },		/* W behind: too old */
		{ 0, false },
		{ 101, false },
		{ 2000, true },		/* a 2048-packet window at least */
		{ W + 99, true },
	};
	run(s, sizeof(s) / sizeof(s[0]));
}

Test(wg_replay, far_jump_ahead_clears_the_ring)
{
	/* mark every counter of a full window, then jump far: old bits must not
	 * be taken for the new counters that share their ring positions */
	for (uint64_t c = 0; c < W; c++)
		cr_assert(wg_replay_update(&r, c));
	cr_expect_not(wg_replay_update(&r, W - 1));
	uint64_t far = 1000000ULL * WG_REPLAY_BITS_TOTAL + 5;
	cr_expect(wg_replay_update(&r, far));
	cr_expect(wg_replay_update(&r, far - 5), "same ring slot as counter 0, not a replay");
	cr_expect(wg_replay_update(&r, far - 64));
	cr_expect_not(wg_replay_update(&r, far - 64));
	cr_expect_not(wg_replay_update(&r, 5), "far behind now");
	/* a jump of less than the whole ring clears only the words passed over */
	cr_expect(wg_replay_update(&r, far + 200));
	cr_expect_not(wg_replay_update(&r, far - 5));
	cr_expect(wg_replay_update(&r, far + 130));
}

Test(wg_replay, reject_after_messages)
{
	static const struct step s[] = {
		{ WG_REJECT_AFTER_MESSAGES - 1, true },
		{ WG_REJECT_AFTER_MESSAGES, false },
		{ UINT64_MAX, false },
		{ WG_REJECT_AFTER_MESSAGES - 2, true },
	};
	run(s, sizeof(s) / sizeof(s[0]));
}

/* randomised against a plain set: accept iff not seen and within the window */
Test(wg_replay, against_reference_model)
{
	static uint8_t seen[1 << 16];
	uint64_t top = 0, x = 88172645463325252ULL;
	bool any = false;

	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t c = (top + (x % 9000)) > 8500 ? top + (x % 9000) - 8500 : x % 64;
		c %= sizeof(seen);
		bool want = !seen[c] && (!any || c + W > top);
		cr_assert_eq(wg_replay_update(&r, c), want, "i=%d c=%llu top=%llu", i,
			     (unsigned long long)c, (unsigned long long)top);
		if (want) {
			seen[c] = 1;
			if (!any || c > top)
				top = c;
			any = true;
		}
		if (top > sizeof(seen) - 10000)
			break;
	}
}
