#include <criterion/criterion.h>

#include "agent/wg/timers.h"

#define S WG_NSEC_PER_SEC
#define T0 (1000 * S)	/* a fake monotonic clock that is not at 0 */

Test(wg_timers, nothing_armed)
{
	struct wg_timers t;
	wg_timers_init(&t, 1);
	cr_expect_eq(wg_timers_next(&t), 0);
	cr_expect_eq(wg_timers_expire(&t, T0 + 1000 * S), 0);
}

/* 6.1: an unanswered initiation is retried after Rekey-Timeout plus up to
 * 333 ms of jitter, and given up after Rekey-Attempt-Time */
Test(wg_timers, retransmit_then_give_up)
{
	struct wg_timers t;
	uint64_t now = T0;
	unsigned retries = 0;

	wg_timers_init(&t, 12345);
	wg_timers_handshake_initiated(&t, now);
	for (;;) {
		uint64_t next = wg_timers_next(&t);
		cr_assert_geq(next, now + WG_REKEY_TIMEOUT_NS);
		cr_assert_lt(next, now + WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
		cr_assert_eq(wg_timers_expire(&t, next - 1), 0, "nothing is due early");
		now = next;
		uint32_t a = wg_timers_expire(&t, now);
		if (a & WG_TIMER_GIVE_UP) {
			cr_expect_eq(a, WG_TIMER_GIVE_UP);
			break;
		}
		cr_assert_eq(a, WG_TIMER_SEND_INITIATION);
		retries++;
		wg_timers_handshake_initiated(&t, now);	/* the device sent it */
	}
	/* kernel timers.c: MAX_TIMER_HANDSHAKES + 2 initiations in all, the last
	 * one past Rekey-Attempt-Time, then one more Rekey-Timeout to wait for it */
	cr_expect_eq(retries, WG_MAX_TIMER_HANDSHAKES + 1);
	const uint64_t span = (WG_MAX_TIMER_HANDSHAKES + 2) * WG_REKEY_TIMEOUT_NS;
	cr_expect_geq(span, WG_REKEY_ATTEMPT_TIME_NS + WG_REKEY_TIMEOUT_NS);
	cr_expect_geq(now - T0, span);
	cr_expect_lt(now - T0, span + (WG_MAX_TIMER_HANDSHAKES + 2) * WG_REKEY_TIMEOUT_JITTER_MAX_NS);
	/* giving up schedules the wiping of keys */
	cr_expect_eq(wg_timers_next(&t), now + WG_ZERO_KEYS_AFTER_NS);
	cr_expect_eq(wg_timers_expire(&t, now + WG_ZERO_KEYS_AFTER_NS), WG_TIMER_ZERO_KEYS);
}

Test(wg_timers, handshake_complete_stops_retransmit)
{
	struct wg_timers t;
	wg_timers_init(&t, 7);
	wg_timers_handshake_initiated(&t, T0);
	cr_expect_eq(wg_timers_expire(&t, T0 + 6 * S), WG_TIMER_SEND_INITIATION);
	wg_timers_handshake_initiated(&t, T0 + 6 * S);
	wg_timers_handshake_complete(&t, T0 + 7 * S);
	cr_expect_eq(t.handshake_attempts, 0);
	cr_expect_eq(wg_timers_next(&t), 0);
}

/* 6.5 passive keepalive: data received and nothing sent back for
 * Keepalive-Timeout; more data meanwhile asks for one more */
Test(wg_timers, passive_keepalive)
{
	struct wg_timers t;
	wg_timers_init(&t, 7);
	wg_timers_data_received(&t, T0);
	cr_expect_eq(wg_timers_next(&t), T0 + WG_KEEPALIVE_TIMEOUT_NS);
	wg_timers_data_received(&t, T0 + 3 * S);	/* timer stays, one more owed */
	cr_expect_eq(wg_timers_next(&t), T0 + WG_KEEPALIVE_TIMEOUT_NS);
	cr_expect_eq(wg_timers_expire(&t, T0 + WG_KEEPALIVE_TIMEOUT_NS), WG_TIMER_SEND_KEEPALIVE);
	cr_expect_eq(wg_timers_next(&t), T0 + 2 * WG_KEEPALIVE_TIMEOUT_NS);
	cr_expect_eq(wg_timers_expire(&t, T0 + 2 * WG_KEEPALIVE_TIMEOUT_NS), WG_TIMER_SEND_KEEPALIVE);
	cr_expect_eq(wg_timers_next(&t), 0);

	/* anything authenticated sent meanwhile makes the keepalive unnecessary */
	wg_timers_data_received(&t, T0 + 30 * S);
	wg_timers_any_authenticated_packet_sent(&t, T0 + 31 * S);
	cr_expect_eq(wg_timers_next(&t), 0);
}

/* 6.2: data sent and nothing back for Keepalive-Timeout + Rekey-Timeout:
 * a new handshake */
Test(wg_timers, new_handshake_after_silence)
{
	struct wg_timers t;
	wg_timers_init(&t, 99);
	wg_timers_data_sent(&t, T0);
	uint64_t next = wg_timers_next(&t);
	cr_expect_geq(next, T0 + WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS);
	cr_expect_lt(next, T0 + WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS + WG_REKEY_TIMEOUT_JITTER_MAX_NS);
	wg_timers_data_sent(&t, T0 + 2 * S);	/* does not push it back */
	cr_expect_eq(wg_timers_next(&t), next);
	t.handshake_attempts = 3;
	cr_expect_eq(wg_timers_expire(&t, next), WG_TIMER_SEND_INITIATION);
	cr_expect_eq(t.handshake_attempts, 0);

	/* an answer cancels it */
	wg_timers_data_sent(&t, T0 + 100 * S);
	wg_timers_any_authenticated_packet_received(&t, T0 + 101 * S);
	cr_expect_eq(wg_timers_next(&t), 0);
}

Test(wg_timers, zero_keys_after_three_reject_times)
{
	struct wg_timers t;
	wg_timers_init(&t, 5);
	wg_timers_session_derived(&t, T0);
	cr_expect_eq(wg_timers_next(&t), T0 + 3 * WG_REJECT_AFTER_TIME_NS);
	wg_timers_session_derived(&t, T0 + 60 * S);	/* a newer session pushes it */
	cr_expect_eq(wg_timers_expire(&t, T0 + 3 * WG_REJECT_AFTER_TIME_NS), 0);
	cr_expect_eq(wg_timers_expire(&t, T0 + 60 * S + 3 * WG_REJECT_AFTER_TIME_NS), WG_TIMER_ZERO_KEYS);
}

Test(wg_timers, persistent_keepalive)
{
	struct wg_timers t;
	wg_timers_init(&t, 5);
	cr_expect(wg_timers_set_persistent_keepalive(&t, 25, T0), "off -> on sends one at once");
	cr_expect(!wg_timers_set_persistent_keepalive(&t, 20, T0), "a change of interval does not");
	wg_timers_any_authenticated_packet_traversal(&t, T0 + S);
	cr_expect_eq(wg_timers_next(&t), T0 + 21 * S);
	cr_expect_eq(wg_timers_expire(&t, T0 + 21 * S), WG_TIMER_SEND_KEEPALIVE);
	wg_timers_any_authenticated_packet_traversal(&t, T0 + 21 * S);	/* the keepalive went out */
	cr_expect_eq(wg_timers_next(&t), T0 + 41 * S);
	cr_expect(!wg_timers_set_persistent_keepalive(&t, 0, T0 + 22 * S));
	cr_expect_eq(wg_timers_next(&t), 0);
	wg_timers_any_authenticated_packet_traversal(&t, T0 + 23 * S);
	cr_expect_eq(wg_timers_next(&t), 0, "off stays off");
}

Test(wg_timers, stop_disarms_everything)
{
	struct wg_timers t;
	wg_timers_init(&t, 5);
	wg_timers_set_persistent_keepalive(&t, 25, T0);
	wg_timers_handshake_initiated(&t, T0);
	wg_timers_data_sent(&t, T0);
	wg_timers_data_received(&t, T0);
	wg_timers_session_derived(&t, T0);
	wg_timers_stop(&t);
	cr_expect_eq(wg_timers_next(&t), 0);
	cr_expect_eq(t.persistent_keepalive_interval, 25);
}

/* a fake clock starting at 0 still arms timers */
Test(wg_timers, clock_at_zero)
{
	struct wg_timers t;
	wg_timers_init(&t, 5);
	wg_timers_data_received(&t, 0);
	cr_expect_eq(wg_timers_next(&t), WG_KEEPALIVE_TIMEOUT_NS);
}
