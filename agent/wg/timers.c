#include "timers.h"

#include <string.h>

/* 6.1: Rekey-Timeout "plus jitter", up to 333 ms as in the kernel */
static uint64_t jitter(struct wg_timers *t)
{
	uint32_t x = t->jitter_state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	t->jitter_state = x;
	return (uint64_t)x % WG_REKEY_TIMEOUT_JITTER_MAX_NS;
}

void wg_timers_init(struct wg_timers *t, uint32_t seed)
{
	memset(t, 0, sizeof(*t));
	t->jitter_state = seed ? seed : 0x9e3779b9u;
}

void wg_timers_stop(struct wg_timers *t)
{
	t->retransmit_handshake = t->send_keepalive = t->new_handshake = 0;
	t->zero_key_material = t->persistent_keepalive = 0;
	t->handshake_attempts = 0;
	t->need_another_keepalive = false;
}

bool wg_timers_set_persistent_keepalive(struct wg_timers *t, uint16_t seconds, uint64_t now)
{
	bool was_off = t->persistent_keepalive_interval == 0;
	t->persistent_keepalive_interval = seconds;
	if (!seconds) {
		t->persistent_keepalive = 0;
		return false;
	}
	t->persistent_keepalive = now + seconds * WG_NSEC_PER_SEC;
	return was_off;
}

/* an armed deadline is never 0, so a clock that starts at 0 still arms */
static uint64_t at(uint64_t now, uint64_t delay)
{
	return now + delay ? now + delay : 1;
}

void wg_timers_data_sent(struct wg_timers *t, uint64_t now)
{
	if (!t->new_handshake)
		t->new_handshake = at(now, WG_KEEPALIVE_TIMEOUT_NS + WG_REKEY_TIMEOUT_NS + jitter(t));
}

void wg_timers_data_received(struct wg_timers *t, uint64_t now)
{
	if (!t->send_keepalive)
		t->send_keepalive = at(now, WG_KEEPALIVE_TIMEOUT_NS);
	else
		t->need_another_keepalive = true;
}

void wg_timers_any_authenticated_packet_sent(struct wg_timers *t, uint64_t now)
{
	(void)now;
	t->send_keepalive = 0;
}

void wg_timers_any_authenticated_packet_received(struct wg_timers *t, uint64_t now)
{
	(void)now;
	t->new_handshake = 0;
}

void wg_timers_any_authenticated_packet_traversal(struct wg_timers *t, uint64_t now)
{
	if (t->persistent_keepalive_interval)
		t->persistent_keepalive = at(now, t->persistent_keepalive_interval * WG_NSEC_PER_SEC);
}

void wg_timers_handshake_initiated(struct wg_timers *t, uint64_t now)
{
	t->retransmit_handshake = at(now, WG_REKEY_TIMEOUT_NS + jitter(t));
}

void wg_timers_handshake_complete(struct wg_timers *t, uint64_t now)
{
	(void)now;
	t->retransmit_handshake = 0;
	t->handshake_attempts = 0;
}

void wg_timers_session_derived(struct wg_timers *t, uint64_t now)
{
	t->zero_key_material = at(now, WG_ZERO_KEYS_AFTER_NS);
}

void wg_timers_handshake_attempts_reset(struct wg_timers *t)
{
	t->handshake_attempts = 0;
}

static bool due(uint64_t *deadline, uint64_t now)
{
	if (!*deadline || *deadline > now)
		return false;
	*deadline = 0;
	return true;
}

uint32_t wg_timers_expire(struct wg_timers *t, uint64_t now)
{
	uint32_t actions = 0;

	if (due(&t->retransmit_handshake, now)) {
		if (t->handshake_attempts > WG_MAX_TIMER_HANDSHAKES) {
			/* 6.4: Rekey-Attempt-Time has passed: stop trying until new data asks */
			t->send_keepalive = 0;
			actions |= WG_TIMER_GIVE_UP;
			if (!t->zero_key_material)
				t->zero_key_material = at(now, WG_ZERO_KEYS_AFTER_NS);
		} else {
			t->handshake_attempts++;
			actions |= WG_TIMER_SEND_INITIATION;
		}
	}
	if (due(&t->send_keepalive, now)) {
		actions |= WG_TIMER_SEND_KEEPALIVE;
		if (t->need_another_keepalive) {
			t->need_another_keepalive = false;
			t->send_keepalive = at(now, WG_KEEPALIVE_TIMEOUT_NS);
		}
	}
	if (due(&t->new_handshake, now)) {
		/* 6.2: data went out and nothing authenticated came back */
		actions |= WG_TIMER_SEND_INITIATION;
		t->handshake_attempts = 0;
	}
	if (due(&t->zero_key_material, now))
		actions |= WG_TIMER_ZERO_KEYS;
	if (due(&t->persistent_keepalive, now) && t->persistent_keepalive_interval)
		actions |= WG_TIMER_SEND_KEEPALIVE;
	return actions;
}

uint64_t wg_timers_next(const struct wg_timers *t)
{
	const uint64_t d[] = { t->retransmit_handshake, t->send_keepalive, t->new_handshake,
			       t->zero_key_material, t->persistent_keepalive };
	uint64_t next = 0;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (d[i] && (!next || d[i] < next))
			next = d[i];
	return next;
}
