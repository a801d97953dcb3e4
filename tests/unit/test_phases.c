/* phases: each step of meshd's start-up path is marked once, the first
 * time, even when two threads race to mark it; the JSON lists only the
 * phases reached, in ms since phases_init, in order of time. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

#include "agent/meshd/phases.h"

Test(phases, marked_once_in_order)
{
	struct phases ph;
	json_t *j;
	double key, tun;

	phases_init(&ph);
	cr_expect_not(phases_reached(&ph, PHASE_KEY));
	cr_expect_eq(phases_mark(&ph, PHASE_KEY), 1);
	usleep(20000);
	cr_expect_eq(phases_mark(&ph, PHASE_KEY), 0, "the first mark stays");
	cr_expect_eq(phases_mark(&ph, PHASE_TUN), 1);
	cr_expect_eq(phases_mark(&ph, PHASE_N), 0, "no such phase");
	cr_expect(phases_reached(&ph, PHASE_KEY));
	j = phases_json(&ph);
	cr_assert_not_null(j);
	cr_expect_eq(json_object_size(j), 2, "only the phases reached");
	key = json_real_value(json_object_get(j, "key_ms"));
	tun = json_real_value(json_object_get(j, "tun_ms"));
	cr_expect(key >= 0 && key < 20, "key at %.1f ms", key);
	cr_expect(tun >= key + 19, "tun %.1f ms is 20 ms after key %.1f ms", tun, key);
	cr_expect_null(json_object_get(j, "first_data_ms"));
	cr_expect_str_eq(phases_name(PHASE_DATA), "first_data");
	json_decref(j);
}

static struct phases shared;
static int wins[8];

static void *racer(void *arg)
{
	int *w = arg;

	for (int p = 0; p < PHASE_N; p++)
		*w += phases_mark(&shared, (enum phase)p);
	return NULL;
}

Test(phases, one_winner_per_phase_across_threads)
{
	pthread_t t[8];
	int sum = 0;

	phases_init(&shared);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, racer, &wins[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		sum += wins[i];
	}
	cr_expect_eq(sum, PHASE_N, "each phase marked by exactly one thread (%d marks)", sum);
}
