#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/impair.h"

#define MS 1000000ULL

static int update(const char *text, struct impair_conf dir[2], struct impair_err *err)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert(j, "bad test JSON %s: %s", text, jerr.text);
	int rc = impair_update(j, "x", NULL, dir, err);
	json_decref(j);
	return rc;
}

/* every refusal names the JSON path of the value at fault */
Test(impair, refusals_name_the_path)
{
	static const struct {
		const char *json, *path, *reason;
	} cases[] = {
		{ "{\"delay_ms\": -1}", "x.delay_ms", "out of range" },
		{ "{\"egress\": {\"delay_ms\": -5}}", "x.egress.delay_ms", "out of range" },
		{ "{\"delay_ms\": 60001}", "x.delay_ms", "out of range" },
		{ "{\"delay_ms\": \"10\"}", "x.delay_ms", "must be a number" },
		{ "{\"loss_percent\": 100.5}", "x.loss_percent", "out of range" },
		{ "{\"ingress\": {\"duplicate_percent\": 101}}", "x.ingress.duplicate_percent", "out of range" },
		{ "{\"reorder_percent\": 51}", "x.reorder_percent", "out of range" },
		{ "{\"rate_kbit\": 0}", "x.rate_kbit", "0 would carry nothing" },
		{ "{\"rate_kbit\": 1.5}", "x.rate_kbit", "must be an integer" },
		{ "{\"rate_kbit\": -3}", "x.rate_kbit", "out of range" },
		{ "{\"delay_ms\": 10, \"jitter_ms\": 11}", "x.jitter_ms", "more than delay_ms" },
		{ "{\"egress\": {\"jitter_ms\": 1}}", "x.egress.jitter_ms", "more than delay_ms" },
		{ "{\"queue_packets\": 10}", "x.queue_packets", "needs rate_kbit" },
		{ "{\"rate_kbit\": 100, \"queue_packets\": 10, \"queue_kbytes\": 4}", "x.queue_kbytes", "not both" },
		{ "{\"rate_kbit\": 100, \"queue_packets\": 0}", "x.queue_packets", "out of range" },
		{ "{\"delay\": 10}", "x.delay", "unknown key" },
		{ "{\"egress\": {\"egress\": {}}}", "x.egress.egress", "unknown key" },
		{ "{\"egress\": 5}", "x.egress", "must be an object" },
		{ "[1]", "x", "must be an object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct impair_conf dir[2] = { { .delay_us = 7 }, { .delay_us = 7 } };
		struct impair_err err = { "", "" };
		cr_assert_lt(update(cases[i].json, dir, &err), 0, "%s accepted", cases[i].json);
		cr_assert_str_eq(err.path, cases[i].path, "%s: path %s", cases[i].json, err.path);
		cr_assert(strstr(err.reason, cases[i].reason), "%s: reason %s", cases[i].json, err.reason);
		/* a refused update changes nothing */
		cr_assert_eq(dir[0].delay_us, 7);
		cr_assert_eq(dir[1].delay_us, 7);
	}
}

Test(impair, updates_merge_per_direction)
{
	struct impair_conf dir[2] = { { 0 }, { 0 } };
	struct impair_err err;
	cr_assert_eq(update("{\"delay_ms\": 50, \"jitter_ms\": 5, \"loss_percent\": 0.5, "
			    "\"egress\": {\"rate_kbit\": 1000, \"queue_kbytes\": 8}, \"ingress\": {\"delay_ms\": 20}}",
			    dir, &err), 0, "%s: %s", err.path, err.reason);
	cr_assert_eq(dir[IMPAIR_EGRESS].delay_us, 50000);
	cr_assert_eq(dir[IMPAIR_INGRESS].delay_us, 20000);
	cr_assert_eq(dir[IMPAIR_INGRESS].jitter_us, 5000);
	cr_assert_eq(dir[IMPAIR_EGRESS].loss_ppm, 5000);
	cr_assert_eq(dir[IMPAIR_EGRESS].rate_kbit, 1000);
	cr_assert_eq(dir[IMPAIR_EGRESS].queue_bytes, 8192);
	cr_assert_eq(dir[IMPAIR_INGRESS].rate_kbit, 0);
	/* only what is given changes; a queue in packets replaces one in bytes */
	cr_assert_eq(update("{\"egress\": {\"delay_ms\": 80, \"queue_packets\": 30}}", dir, &err), 0);
	cr_assert_eq(dir[IMPAIR_EGRESS].delay_us, 80000);
	cr_assert_eq(dir[IMPAIR_EGRESS].jitter_us, 5000);
	cr_assert_eq(dir[IMPAIR_EGRESS].queue_packets, 30);
	cr_assert_eq(dir[IMPAIR_EGRESS].queue_bytes, 0);
	/* jitter checked against the merged delay */
	cr_assert_lt(update("{\"ingress\": {\"delay_ms\": 4}}", dir, &err), 0);
	cr_assert_str_eq(err.path, "x.ingress.jitter_ms");
	char buf[160];
	cr_assert_str_eq(impair_conf_format(&dir[IMPAIR_EGRESS], buf, sizeof(buf)),
			 "delay 80 ms +-5 ms, loss 0.5%, rate 1000 kbit/s queue 30 packets");
}

Test(impair, generator_is_seeded_by_seed_link_and_direction)
{
	struct impair_rng a, b, c, d, e;
	impair_rng_seed(&a, 42, "n1/wan", IMPAIR_EGRESS);
	impair_rng_seed(&b, 42, "n1/wan", IMPAIR_EGRESS);
	impair_rng_seed(&c, 43, "n1/wan", IMPAIR_EGRESS);
	impair_rng_seed(&d, 42, "n2/wan", IMPAIR_EGRESS);
	impair_rng_seed(&e, 42, "n1/wan", IMPAIR_INGRESS);
	int same_c = 0, same_d = 0, same_e = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = impair_rng_next(&a);
		cr_assert_eq(x, impair_rng_next(&b));
		same_c += x == impair_rng_next(&c);
		same_d += x == impair_rng_next(&d);
		same_e += x == impair_rng_next(&e);
	}
	cr_assert_eq(same_c + same_d + same_e, 0);
}

/* count verdicts of n packets 1 ms apart */
struct tally {
	uint64_t lost, dup, held, released, queue;
};

static void run(struct impair_dir *d, int n, uint64_t gap, size_t len, struct tally *t, uint64_t *dues)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < n; i++) {
		struct impair_verdict v;
		impair_dir_admit(d, 1000 * MS + (uint64_t)i * gap, len, &v);
		t->lost += v.fate == IMPAIR_DROP_LOSS;
		t->queue += v.fate == IMPAIR_DROP_QUEUE;
		t->dup += v.copies == 2;
		t->held += v.fate == IMPAIR_HOLD;
		t->released += v.release_held;
		if (dues)
			dues[i] = v.fate == IMPAIR_PASS || v.fate == IMPAIR_HOLD ? v.due : 0;
	}
}

static void within_sigma(uint64_t got, int n, double p, double k, const char *what)
{
	double mean = n * p, sd = sqrt(n * p * (1 - p));
	cr_assert(fabs((double)got - mean) <= k * sd + 1, "%s: %llu, expected %.0f +- %.0f", what,
		  (unsigned long long)got, mean, k * sd);
}

Test(impair, rates_of_loss_duplication_and_reordering)
{
	static const double ps[] = { 0.01, 0.1, 0.3, 0.5 };
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		struct impair_dir *d = calloc(1, sizeof(*d));
		uint32_t ppm = (uint32_t)(ps[i] * IMPAIR_PPM);
		struct impair_conf c = { .loss_ppm = ppm, .duplicate_ppm = ppm };
		struct tally t;
		impair_dir_init(d, &c, 7, "l", IMPAIR_EGRESS);
		run(d, 100000, MS, 100, &t, NULL);
		within_sigma(t.lost, 100000, ps[i], 5, "lost");
		/* duplication is decided for the packets that were not lost */
		within_sigma(t.dup, (int)(100000 - t.lost), ps[i], 5, "duplicated");
		cr_assert_eq(d->cnt.lost, t.lost);
		c = (struct impair_conf){ .reorder_ppm = ppm };
		impair_dir_init(d, &c, 7, "l", IMPAIR_EGRESS);
		run(d, 100000, MS, 100, &t, NULL);
		/* every held packet but perhaps the last is released by its successor */
		cr_assert(t.held - t.released <= 1);
		within_sigma(t.released, 100000, ps[i], 5, "reordered");
		cr_assert_eq(d->cnt.reordered, t.released);
		free(d);
	}
}

Test(impair, jitter_is_uniform_and_keeps_order)
{
	struct impair_dir *d = calloc(1, sizeof(*d));
	struct impair_conf c = { .delay_us = 50000, .jitter_us = 10000 };
	uint64_t *dues = calloc(20000, sizeof(uint64_t));
	struct tally t;
	/* 100 ms apart: no packet catches up with the one ahead */
	impair_dir_init(d, &c, 1, "l", IMPAIR_INGRESS);
	run(d, 20000, 100 * MS, 100, &t, dues);
	double sum = 0, sq = 0;
	for (int i = 0; i < 20000; i++) {
		double delay = (double)(dues[i] - (1000 * MS + (uint64_t)i * 100 * MS)) / MS;
		cr_assert(delay >= 40 && delay <= 60, "delay %f", delay);
		sum += delay;
		sq += delay * delay;
	}
	double mean = sum / 20000, sd = sqrt(sq / 20000 - mean * mean);
	cr_assert(fabs(mean - 50) < 0.2, "mean %f", mean);
	/* uniform on [-10, 10]: sd 10 / sqrt(3) */
	cr_assert(fabs(sd - 10 / sqrt(3)) < 0.2, "sd %f", sd);
	/* 0.1 ms apart: jitter would reorder, the line does not */
	impair_dir_init(d, &c, 1, "l", IMPAIR_INGRESS);
	run(d, 20000, MS / 10, 100, &t, dues);
	for (int i = 1; i < 20000; i++)
		cr_assert_geq(dues[i], dues[i - 1]);
	free(dues);
	free(d);
}

Test(impair, rate_serialises_and_queue_drops)
{
	struct impair_dir *d = calloc(1, sizeof(*d));
	/* 1250-byte frames at 10 Mbit/s: 1 ms each */
	struct impair_conf c = { .rate_kbit = 10000, .queue_packets = 5 };
	uint64_t dues[20];
	struct tally t;
	impair_dir_init(d, &c, 1, "l", IMPAIR_EGRESS);
	/* a burst of 20 at once: 5 queued, the rest dropped */
	for (int i = 0; i < 20; i++) {
		struct impair_verdict v;
		impair_dir_admit(d, 1000 * MS, 1250, &v);
		dues[i] = v.due;
		cr_assert_eq(v.fate, i < 5 ? IMPAIR_PASS : IMPAIR_DROP_QUEUE, "packet %d", i);
	}
	for (int i = 0; i < 5; i++)
		cr_assert_eq(dues[i], 1000 * MS + (uint64_t)(i + 1) * MS);
	/* paced at the rate: nothing dropped, each leaves 1 ms after it came */
	impair_dir_init(d, &c, 1, "l", IMPAIR_EGRESS);
	run(d, 1000, MS, 1250, &t, NULL);
	cr_assert_eq(t.queue, 0);
	/* twice the rate: half goes */
	impair_dir_init(d, &c, 1, "l", IMPAIR_EGRESS);
	run(d, 10000, MS / 2, 1250, &t, NULL);
	cr_assert(t.queue >= 4990 && t.queue <= 5010, "%llu dropped", (unsigned long long)t.queue);
	/* a byte limit: 4 KiB holds three 1250-byte frames, the one in service included */
	c = (struct impair_conf){ .rate_kbit = 10000, .queue_bytes = 4096 };
	impair_dir_init(d, &c, 1, "l", IMPAIR_EGRESS);
	run(d, 10, 0, 1250, &t, NULL);
	cr_assert_eq(t.queue, 7);
	/* the default queue: 100 ms at the rate */
	uint32_t b, p;
	impair_queue_limit(&(struct impair_conf){ .rate_kbit = 10000 }, &b, &p);
	cr_assert_eq(b, 125000);
	cr_assert_eq(p, 0);
	impair_queue_limit(&(struct impair_conf){ .rate_kbit = 8 }, &b, &p);
	cr_assert_eq(b, IMPAIR_DEFAULT_QUEUE_MIN_BYTES);
	free(d);
}

Test(impair, same_seed_same_decisions)
{
	struct impair_dir *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	struct impair_conf c = { .delay_us = 20000, .jitter_us = 5000, .loss_ppm = 100000, .duplicate_ppm = 50000,
				 .reorder_ppm = 50000 };
	impair_dir_init(a, &c, 99, "h/eth0", IMPAIR_EGRESS);
	impair_dir_init(b, &c, 99, "h/eth0", IMPAIR_EGRESS);
	for (int i = 0; i < 10000; i++) {
		struct impair_verdict va, vb;
		impair_dir_admit(a, (uint64_t)i * MS, 200, &va);
		impair_dir_admit(b, (uint64_t)i * MS, 200, &vb);
		cr_assert_eq(memcmp(&va, &vb, sizeof(va)), 0, "packet %d", i);
	}
	/* another seed decides otherwise */
	impair_dir_init(b, &c, 100, "h/eth0", IMPAIR_EGRESS);
	impair_dir_init(a, &c, 99, "h/eth0", IMPAIR_EGRESS);
	int differ = 0;
	for (int i = 0; i < 1000; i++) {
		struct impair_verdict va, vb;
		impair_dir_admit(a, (uint64_t)i * MS, 200, &va);
		impair_dir_admit(b, (uint64_t)i * MS, 200, &vb);
		differ += va.fate != vb.fate || va.copies != vb.copies;
	}
	cr_assert_gt(differ, 50);
	free(a);
	free(b);
}

Test(impair, held_packet_goes_alone_after_the_deadline)
{
	struct impair_dir *d = calloc(1, sizeof(*d));
	struct impair_conf c = { .delay_us = 10000, .reorder_ppm = 500000 };
	struct impair_verdict v;
	impair_dir_init(d, &c, 3, "l", IMPAIR_EGRESS);
	cr_assert_eq(impair_dir_hold_deadline(d), UINT64_MAX);
	/* at 50% every other packet is held */
	uint64_t t = 1000 * MS;
	do {
		impair_dir_admit(d, t, 100, &v);
		t += MS;
	} while (v.fate != IMPAIR_HOLD);
	cr_assert_eq(impair_dir_hold_deadline(d), v.due + IMPAIR_HOLD_MAX_MS * MS);
	uint64_t due = impair_dir_release_held(d, v.due + IMPAIR_HOLD_MAX_MS * MS);
	cr_assert_eq(due, v.due + IMPAIR_HOLD_MAX_MS * MS);
	cr_assert_eq(impair_dir_hold_deadline(d), UINT64_MAX);
	free(d);
}
