#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "loop.h"

struct rec {
	int order[16];
	int n;
	struct loop_timer *victim;
	int periodic_runs;
};

struct tctx {
	struct rec *rec;
	int id;
	struct loop_timer t;
};

static void record(struct loop *l, struct loop_timer *t, void *arg)
{
	struct tctx *c = arg;
	(void)t;
	c->rec->order[c->rec->n++] = c->id;
	if (c->rec->victim) {
		loop_timer_cancel(l, c->rec->victim);
		c->rec->victim = NULL;
	}
	if (c->rec->n >= 3)
		loop_stop(l);
}

Test(loop, timer_ordering_and_ties)
{
	struct loop *l;
	struct rec rec = { 0 };
	struct tctx c[3] = { { &rec, 1, { 0 } }, { &rec, 2, { 0 } }, { &rec, 3, { 0 } } };
	cr_assert_eq(loop_new(&l), 0);
	for (int i = 0; i < 3; i++)
		loop_timer_init(&c[i].t, record, &c[i]);
	loop_timer_arm(l, &c[0].t, 30, 0);
	loop_timer_arm(l, &c[1].t, 10, 0);
	loop_timer_arm(l, &c[2].t, 10, 0); /* same deadline: armed later, runs later */
	cr_assert_eq(loop_run(l), 0);
	cr_expect_eq(rec.n, 3);
	cr_expect_eq(rec.order[0], 2);
	cr_expect_eq(rec.order[1], 3);
	cr_expect_eq(rec.order[2], 1);
	cr_expect(!loop_timer_armed(&c[0].t));
	loop_free(l);
}

Test(loop, cancel_from_inside_callback)
{
	struct loop *l;
	struct rec rec = { 0 };
	struct tctx c[4] = { { &rec, 1, { 0 } }, { &rec, 2, { 0 } }, { &rec, 3, { 0 } }, { &rec, 4, { 0 } } };
	cr_assert_eq(loop_new(&l), 0);
	for (int i = 0; i < 4; i++)
		loop_timer_init(&c[i].t, record, &c[i]);
	/* 1 fires first and cancels 2, which is due at the same moment */
	loop_timer_arm(l, &c[0].t, 5, 0);
	loop_timer_arm(l, &c[1].t, 5, 0);
	loop_timer_arm(l, &c[2].t, 15, 0);
	loop_timer_arm(l, &c[3].t, 25, 0);
	rec.victim = &c[1].t;
	cr_assert_eq(loop_run(l), 0);
	cr_expect_eq(rec.order[0], 1);
	cr_expect_eq(rec.order[1], 3);
	cr_expect_eq(rec.order[2], 4);
	loop_free(l);
}

static void periodic(struct loop *l, struct loop_timer *t, void *arg)
{
	struct rec *rec = arg;
	if (++rec->periodic_runs == 3) {
		loop_timer_cancel(l, t); /* a repeating timer cancels itself */
		loop_stop(l);
	}
}

Test(loop, repeating_timer_cancels_itself)
{
	struct loop *l;
	struct rec rec = { 0 };
	struct loop_timer t;
	cr_assert_eq(loop_new(&l), 0);
	loop_timer_init(&t, periodic, &rec);
	uint64_t start = clock_now_ms();
	loop_timer_arm(l, &t, 5, 5);
	cr_assert_eq(loop_run(l), 0);
	cr_expect_eq(rec.periodic_runs, 3);
	cr_expect(!loop_timer_armed(&t));
	cr_expect_geq(clock_now_ms() - start, 15);
	/* nothing armed, nothing to wait for: one bounded wake-up returns */
	cr_expect_eq(loop_run_once(l, 1), 0);
	cr_expect_eq(rec.periodic_runs, 3);
	loop_free(l);
}

static void never(struct loop *l, struct loop_timer *t, void *arg)
{
	(void)l; (void)t; (void)arg;
	cr_assert_fail("no timer is due");
}

/* past LOOP_TIMERS_MAX a new timer is refused and stays unarmed; armed
 * timers can still be re-armed, and a cancel makes room again */
Test(loop, timers_past_the_maximum_are_refused)
{
	struct loop *l;
	struct loop_timer *t = calloc(LOOP_TIMERS_MAX + 1, sizeof(*t));
	cr_assert_not_null(t);
	cr_assert_eq(loop_new(&l), 0);
	for (size_t i = 0; i <= LOOP_TIMERS_MAX; i++)
		loop_timer_init(&t[i], never, NULL);
	for (size_t i = 0; i < LOOP_TIMERS_MAX; i++)
		cr_assert_eq(loop_timer_arm(l, &t[i], 60000, 0), 0);
	cr_expect_eq(loop_timer_arm(l, &t[LOOP_TIMERS_MAX], 1, 0), -ENOSPC);
	cr_expect(!loop_timer_armed(&t[LOOP_TIMERS_MAX]));
	cr_expect_eq(loop_timer_arm(l, &t[0], 30000, 0), 0);
	cr_expect(loop_timer_armed(&t[0]));
	loop_timer_cancel(l, &t[7]);
	cr_expect_eq(loop_timer_arm(l, &t[LOOP_TIMERS_MAX], 60000, 0), 0);
	cr_expect(loop_timer_armed(&t[LOOP_TIMERS_MAX]));
	cr_expect_eq(loop_run_once(l, 0), 0);
	loop_free(l);
	free(t);
}

static void on_sig(struct loop *l, int signo, void *arg)
{
	*(int *)arg = signo;
	loop_stop(l);
}

static void raise_usr1(struct loop *l, struct loop_timer *t, void *arg)
{
	(void)l; (void)t; (void)arg;
	kill(getpid(), SIGUSR1);
}

Test(loop, signal_delivery_through_signalfd)
{
	struct loop *l;
	struct loop_timer t;
	int got = 0;
	cr_assert_eq(loop_new(&l), 0);
	cr_assert_eq(loop_signal(l, SIGUSR1, on_sig, &got), 0);
	loop_timer_init(&t, raise_usr1, NULL);
	loop_timer_arm(l, &t, 1, 0);
	cr_assert_eq(loop_run(l), 0);
	cr_expect_eq(got, SIGUSR1);
	loop_free(l);
}

struct pipe_ctx { int reads; int fds[2]; };

static void on_pipe(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pipe_ctx *p = arg;
	char c;
	cr_expect(events & LOOP_READ);
	cr_expect_eq(read(fd, &c, 1), 1);
	p->reads++;
	/* removing the fd from its own callback is safe */
	cr_expect_eq(loop_del_fd(l, fd), 0);
	loop_stop(l);
}

Test(loop, fd_readiness_and_removal_in_callback)
{
	struct loop *l;
	struct pipe_ctx p = { 0 };
	cr_assert_eq(pipe(p.fds), 0);
	cr_assert_eq(loop_new(&l), 0);
	cr_assert_eq(loop_add_fd(l, p.fds[0], LOOP_READ, on_pipe, &p), 0);
	cr_expect_eq(loop_add_fd(l, p.fds[0], LOOP_READ, on_pipe, &p), -EEXIST);
	cr_assert_eq(write(p.fds[1], "x", 1), 1);
	cr_assert_eq(loop_run(l), 0);
	cr_expect_eq(p.reads, 1);
	cr_expect_eq(loop_del_fd(l, p.fds[0]), -ENOENT);
	loop_free(l);
	close(p.fds[0]);
	close(p.fds[1]);
}
