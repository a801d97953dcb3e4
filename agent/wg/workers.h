/* workers: a pool of threads that the data plane hands a batch's AEAD work
 * to (issue 19, "the data plane on every core"). The caller runs
 * fn(ctx, 0..n-1) through wg_workers_run(): the pool's threads and the
 * caller itself take jobs one at a time until none is left, and the call
 * returns once every job is done, so whatever the jobs wrote is the
 * caller's again (a fork and a join per batch: the order of the batch, and
 * everything outside the jobs, stays on the caller's one thread).
 *
 * A pool of one thread spawns nothing and runs the jobs in the call. A
 * thread woken late for a batch already done takes no job of the next one
 * (each job is claimed against the batch's generation). One caller at a time. */
#ifndef NATMESH_WG_WORKERS_H
#define NATMESH_WG_WORKERS_H

/* the most threads a pool has (the caller counts as one) */
#define WG_WORKERS_MAX 64

struct wg_workers;

/* threads: 1 to WG_WORKERS_MAX, the caller included. 0, -EINVAL, -ENOMEM,
 * or the error of pthread_create (negated) */
int wg_workers_new(int threads, struct wg_workers **out);
/* stops and joins the threads; NULL is a no-op */
void wg_workers_free(struct wg_workers *w);
int wg_workers_threads(const struct wg_workers *w);
/* fn(ctx, i) for every i in 0..n-1, on any of the pool's threads and the
 * caller's; returns when all are done. w NULL: all on the caller's thread. */
void wg_workers_run(struct wg_workers *w, void (*fn)(void *ctx, int i), void *ctx, int n);
/* the CPUs this process may run on (sched_getaffinity), at least 1, at most
 * WG_WORKERS_MAX: the default thread count */
int wg_workers_cpus(void);

#endif
