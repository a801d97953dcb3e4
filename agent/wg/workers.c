/* workers: fork and join of a batch's jobs over a thread pool (workers.h).
 * A batch is published under the lock with a new generation; jobs are
 * claimed with a compare-and-swap on (generation << 32 | next job), so a
 * thread still holding the previous batch's parameters finds the generation
 * moved and claims nothing. The caller waits until `done` reaches the
 * batch's job count; the thread that finishes the last job wakes it. */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* a batch smaller than this runs on the caller: waking a thread costs more */
#define MIN_PARALLEL_JOBS 4
/* polls of `done` before the caller sleeps on the condition */
#define JOIN_SPINS 2000

struct wg_workers {
	int threads;
	pthread_t *tids;
	pthread_mutex_t lock;
	pthread_cond_t go, finished;
	bool stop;
	uint32_t gen;			/* under lock: the batch published last */
	void (*fn)(void *ctx, int i);	/* under lock: that batch */
	void *ctx;
	int n;
	_Atomic uint64_t ticket;	/* gen << 32 | next job to claim */
	_Atomic int done;		/* jobs of the current batch finished */
	bool waiting;			/* under lock: the caller sleeps on finished */
};

/* claims and runs jobs of batch gen until none is left */
static void work(struct wg_workers *w, uint32_t gen, void (*fn)(void *, int), void *ctx, int n)
{
	uint64_t t = atomic_load_explicit(&w->ticket, memory_order_acquire);

	for (;;) {
		if ((uint32_t)(t >> 32) != gen || (int)(uint32_t)t >= n)
			return;
		if (!atomic_compare_exchange_weak_explicit(&w->ticket, &t, t + 1, memory_order_acq_rel,
							   memory_order_acquire))
			continue;
		fn(ctx, (int)(uint32_t)t);
		if (atomic_fetch_add_explicit(&w->done, 1, memory_order_acq_rel) + 1 == n) {
			pthread_mutex_lock(&w->lock);
			if (w->waiting)
				pthread_cond_signal(&w->finished);
			pthread_mutex_unlock(&w->lock);
		}
		t = atomic_load_explicit(&w->ticket, memory_order_acquire);
	}
}

static void *thread_main(void *arg)
{
	struct wg_workers *w = arg;
	uint32_t seen = 0;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->gen == seen)
			pthread_cond_wait(&w->go, &w->lock);
		if (w->stop)
			break;
		seen = w->gen;
		void (*fn)(void *, int) = w->fn;
		void *ctx = w->ctx;
		int n = w->n;
		pthread_mutex_unlock(&w->lock);
		work(w, seen, fn, ctx, n);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int wg_workers_new(int threads, struct wg_workers **out)
{
	sigset_t all, old;
	struct wg_workers *w;
	int rc = 0;

	*out = NULL;
	if (threads < 1 || threads > WG_WORKERS_MAX)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->tids = calloc((size_t)threads, sizeof(*w->tids));
	if (!w->tids) {
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->go, NULL);
	pthread_cond_init(&w->finished, NULL);
	atomic_init(&w->ticket, 0);
	atomic_init(&w->done, 0);
	w->threads = 1;
	/* the threads take no signal: the owner's loop reads them (signalfd,
	 * blocked only in its own thread when it set that up after us), and a
	 * worker that took SIGTERM or SIGUSR1 would end the process */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 1; i < threads; i++) {
		rc = pthread_create(&w->tids[i], NULL, thread_main, w);
		if (rc)
			break;
		w->threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		wg_workers_free(w);
		return -rc;
	}
	*out = w;
	return 0;
}

void wg_workers_free(struct wg_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->go);
	pthread_mutex_unlock(&w->lock);
	for (int i = 1; i < w->threads; i++)
		pthread_join(w->tids[i], NULL);
	pthread_cond_destroy(&w->finished);
	pthread_cond_destroy(&w->go);
	pthread_mutex_destroy(&w->lock);
	free(w->tids);
	free(w);
}

int wg_workers_threads(const struct wg_workers *w)
{
	return w ? w->threads : 1;
}

static void join(struct wg_workers *w, int n)
{
	for (int i = 0; i < JOIN_SPINS; i++)
		if (atomic_load_explicit(&w->done, memory_order_acquire) == n)
			return;
	pthread_mutex_lock(&w->lock);
	w->waiting = true;
	while (atomic_load_explicit(&w->done, memory_order_acquire) != n)
		pthread_cond_wait(&w->finished, &w->lock);
	w->waiting = false;
	pthread_mutex_unlock(&w->lock);
}

void wg_workers_run(struct wg_workers *w, void (*fn)(void *ctx, int i), void *ctx, int n)
{
	uint32_t gen;

	if (!w || w->threads == 1 || n < MIN_PARALLEL_JOBS) {
		for (int i = 0; i < n; i++)
			fn(ctx, i);
		return;
	}
	pthread_mutex_lock(&w->lock);
	gen = ++w->gen;
	w->fn = fn;
	w->ctx = ctx;
	w->n = n;
	atomic_store_explicit(&w->done, 0, memory_order_relaxed);
	atomic_store_explicit(&w->ticket, (uint64_t)gen << 32, memory_order_release);
	pthread_cond_broadcast(&w->go);
	pthread_mutex_unlock(&w->lock);
	work(w, gen, fn, ctx, n);
	join(w, n);
}

int wg_workers_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > WG_WORKERS_MAX ? WG_WORKERS_MAX : n;
}
