/* libFuzzer target for the delay line's control socket: a datagram is JSON
 * text read by impair_update() (sim/impairline.c control()). Whatever the
 * bytes, an update is refused with a path and a reason and leaves the state
 * as it was, or is accepted into a state that keeps the model's rules:
 * jitter at most the delay, reordering at most 50%, percentages at most
 * 100, a queue only with a rate and never two queue limits. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim/impair.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct impair_conf *c)
{
	if (c->jitter_us > c->delay_us || c->delay_us > IMPAIR_DELAY_MAX_MS * 1000U ||
	    c->loss_ppm > IMPAIR_PPM || c->duplicate_ppm > IMPAIR_PPM ||
	    c->reorder_ppm > IMPAIR_REORDER_MAX_PERCENT * 10000U || c->rate_kbit > IMPAIR_RATE_MAX_KBIT ||
	    (c->queue_packets && c->queue_bytes) || ((c->queue_packets || c->queue_bytes) && !c->rate_kbit))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a state the update applies to: delay with jitter, a rate with a queue */
	struct impair_conf dir[IMPAIR_NDIRS] = {
		{ .delay_us = 20000, .jitter_us = 5000, .rate_kbit = 1000, .queue_packets = 10 },
		{ .delay_us = 1000 },
	}, before[IMPAIR_NDIRS];
	struct impair_err err = { "", "" };
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	memcpy(before, dir, sizeof(dir));
	if (impair_update(j, "", NULL, dir, &err) == 0) {
		check(&dir[0]);
		check(&dir[1]);
		/* the state goes through the decision core without harm */
		struct impair_dir *d = calloc(1, sizeof(*d));
		if (d) {
			struct impair_verdict v;
			impair_dir_init(d, &dir[0], 1, "fuzz", IMPAIR_EGRESS);
			for (int i = 0; i < 16; i++)
				impair_dir_admit(d, 1000000000ULL + (uint64_t)i * 1000, 1514, &v);
			free(d);
		}
	} else if (!err.reason[0] || memcmp(before, dir, sizeof(dir))) {
		abort();
	}
	json_decref(j);
	return 0;
}
