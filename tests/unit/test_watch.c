#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "service/watch.h"

#define VPC_A "0b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4b"
#define VPC_B "1b9f2a4e-1c3d-4e5f-8a7b-9c0d1e2f3a4b"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int woken[16];
static int64_t woken_at[16];
static void *woken_arg[16];

static void wake(void *arg, void *conn)
{
	int i = (int)(intptr_t)conn;
	pthread_mutex_lock(&mu);
	woken[i]++;
	woken_at[i] = watch_now_ms();
	woken_arg[i] = arg;
	pthread_mutex_unlock(&mu);
}

static int count_of(int i)
{
	pthread_mutex_lock(&mu);
	int n = woken[i];
	pthread_mutex_unlock(&mu);
	return n;
}

Test(watch, notify_wakes_only_that_vpc_once)
{
	struct waiter w[4];
	struct watch *wt;
	memset(w, 0, sizeof(w));
	memset(woken, 0, sizeof(woken));
	cr_assert_eq(watch_new(wake, &mu, 16, &wt), 0);
	int64_t far = watch_now_ms() + 60000;
	cr_assert_eq(watch_add(wt, &w[0], VPC_A, far, (void *)0), 0);
	cr_assert_eq(watch_add(wt, &w[1], VPC_A, far, (void *)1), 0);
	cr_assert_eq(watch_add(wt, &w[2], VPC_B, far, (void *)2), 0);
	cr_expect_eq(watch_count(wt), 3);
	cr_expect_eq(watch_notify(wt, VPC_A), 2);
	cr_expect_eq(watch_notify(wt, VPC_A), 0, "woken once");
	cr_expect_eq(count_of(0), 1);
	cr_expect_eq(count_of(1), 1);
	cr_expect_eq(count_of(2), 0);
	cr_expect_eq(woken_arg[0], &mu, "the waker gets the argument given to watch_new");
	cr_expect_eq(watch_count(wt), 1);
	watch_cancel(wt, &w[2]);
	cr_expect_eq(watch_count(wt), 0);
	cr_expect_eq(count_of(2), 0, "cancel does not wake");
	watch_free(wt);
}

Test(watch, deadlines_fire_in_order)
{
	struct waiter w[3];
	struct watch *wt;
	memset(w, 0, sizeof(w));
	memset(woken, 0, sizeof(woken));
	cr_assert_eq(watch_new(wake, NULL, 16, &wt), 0);
	int64_t now = watch_now_ms();
	cr_assert_eq(watch_add(wt, &w[0], VPC_A, now + 300, (void *)0), 0);
	cr_assert_eq(watch_add(wt, &w[1], VPC_A, now + 100, (void *)1), 0);
	cr_assert_eq(watch_add(wt, &w[2], VPC_B, now + 60000, (void *)2), 0);
	usleep(500 * 1000);
	cr_expect_eq(count_of(0), 1);
	cr_expect_eq(count_of(1), 1);
	cr_expect_eq(count_of(2), 0);
	cr_expect_geq(woken_at[1] - now, 100);
	cr_expect_lt(woken_at[1] - now, 250, "on time");
	cr_expect_geq(woken_at[0], woken_at[1]);
	watch_stop(wt);
	cr_expect_eq(count_of(2), 1, "stop wakes the rest");
	cr_expect_eq(watch_add(wt, &w[2], VPC_B, now, (void *)2), -ESHUTDOWN);
	watch_free(wt);
}

Test(watch, refuses_past_its_maximum_and_counts)
{
	struct waiter w[4];
	struct watch *wt;
	memset(w, 0, sizeof(w));
	memset(woken, 0, sizeof(woken));
	cr_assert_eq(watch_new(wake, NULL, 3, &wt), 0);
	int64_t far = watch_now_ms() + 60000;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(watch_add(wt, &w[i], VPC_A, far, (void *)(intptr_t)i), 0, "waiter %d", i);
	cr_expect_eq(watch_add(wt, &w[3], VPC_B, far, (void *)3), -ENOSPC);
	cr_expect_eq(watch_count(wt), 3);
	cr_expect_eq(watch_refused(wt), 1);
	cr_expect_eq(watch_notify(wt, VPC_B), 0, "the refused waiter is not parked");
	watch_cancel(wt, &w[1]);
	cr_expect_eq(watch_add(wt, &w[3], VPC_B, far, (void *)3), 0, "room again once one leaves");
	cr_expect_eq(watch_notify(wt, VPC_A), 2);
	cr_expect_eq(watch_notify(wt, VPC_B), 1);
	cr_expect_eq(watch_count(wt), 0);
	cr_expect_eq(watch_refused(wt), 1);
	watch_free(wt);
}

Test(watch, cancel_says_whether_the_waiter_was_still_waiting)
{
	struct waiter w[2];
	struct watch *wt;
	memset(w, 0, sizeof(w));
	memset(woken, 0, sizeof(woken));
	cr_assert_eq(watch_new(wake, NULL, 4, &wt), 0);
	int64_t far = watch_now_ms() + 60000;
	cr_assert_eq(watch_add(wt, &w[0], VPC_A, far, (void *)0), 0);
	cr_assert_eq(watch_add(wt, &w[1], VPC_B, far, (void *)1), 0);
	cr_expect(watch_cancel(wt, &w[0]), "a waiting waiter is cancelled: its owner closes it");
	cr_expect_not(watch_cancel(wt, &w[0]), "only once");
	cr_expect_eq(watch_notify(wt, VPC_B), 1);
	cr_expect_not(watch_cancel(wt, &w[1]), "a woken waiter is not: its wake resumes it");
	cr_expect_eq(count_of(0), 0);
	cr_expect_eq(count_of(1), 1);
	watch_free(wt);
}
