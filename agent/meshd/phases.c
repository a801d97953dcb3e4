/* phases: see phases.h */
#include "phases.h"

#include <stdio.h>

#include "log.h"
#include "loop.h"

static const char *const names[PHASE_N] = {
	[PHASE_KEY] = "key",
	[PHASE_TUN] = "tun",
	[PHASE_TUNNEL] = "tunnel_address",
	[PHASE_STUN] = "first_stun",
	[PHASE_REGISTERED] = "registered",
	[PHASE_PEERS] = "peer_list",
	[PHASE_INITIATION] = "first_initiation",
	[PHASE_HANDSHAKE] = "handshake",
	[PHASE_DATA] = "first_data",
};

void phases_init(struct phases *ph)
{
	*ph = (struct phases){ .start_ns = clock_now_ns() };
}

const char *phases_name(enum phase p)
{
	return (unsigned)p < PHASE_N ? names[p] : "?";
}

int phases_mark(struct phases *ph, enum phase p)
{
	uint64_t expect = 0, us;

	if ((unsigned)p >= PHASE_N || __atomic_load_n(&ph->at_us[p], __ATOMIC_RELAXED))
		return 0;
	us = (clock_now_ns() - ph->start_ns) / 1000 + 1;
	if (!__atomic_compare_exchange_n(&ph->at_us[p], &expect, us, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return 0;
	log_debug("meshd", "phase name=%s t_ms=%.1f", names[p], (double)(us - 1) / 1000.0);
	return 1;
}

json_t *phases_json(const struct phases *ph)
{
	json_t *o = json_object();
	char key[48];

	for (int p = 0; o && p < PHASE_N; p++) {
		uint64_t us = __atomic_load_n(&ph->at_us[p], __ATOMIC_RELAXED);

		if (!us)
			continue;
		snprintf(key, sizeof(key), "%s_ms", names[p]);
		json_object_set_new(o, key, json_real((double)((us - 1) / 100) / 10.0));
	}
	return o;
}
