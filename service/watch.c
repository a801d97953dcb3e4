#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "vec.h"

#define BUCKETS 256

struct watch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t timer;
	bool stopping, stopped;
	watch_wake_fn wake;
	void *wake_arg;
	struct waiter *buckets[BUCKETS];
	struct vec heap;	/* struct waiter *: a min-heap by deadline */
};

static struct waiter **heap_at(struct watch *w, size_t i)
{
	return vec_at(&w->heap, i);
}

int64_t watch_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned bucket_of(const char *vpc_id)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (const char *p = vpc_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % BUCKETS;
}

static void heap_swap(struct watch *w, size_t a, size_t b)
{
	struct waiter *t = *heap_at(w, a);
	*heap_at(w, a) = *heap_at(w, b);
	*heap_at(w, b) = t;
	(*heap_at(w, a))->heap_index = a;
	(*heap_at(w, b))->heap_index = b;
}

static void heap_up(struct watch *w, size_t i)
{
	while (i > 0 && (*heap_at(w, (i - 1) / 2))->deadline_ms > (*heap_at(w, i))->deadline_ms) {
		heap_swap(w, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct watch *w, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->heap.len && (*heap_at(w, l))->deadline_ms < (*heap_at(w, m))->deadline_ms)
			m = l;
		if (r < w->heap.len && (*heap_at(w, r))->deadline_ms < (*heap_at(w, m))->deadline_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(w, i, m);
		i = m;
	}
}

/* unlinks a waiting waiter from its bucket and the heap; under the lock */
static void detach(struct watch *w, struct waiter *wt)
{
	size_t i = wt->heap_index;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		w->buckets[bucket_of(wt->vpc_id)] = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	wt->prev = wt->next = NULL;
	vec_truncate(&w->heap, w->heap.len - 1);
	if (i != w->heap.len) {
		*heap_at(w, i) = *heap_at(w, w->heap.len);
		(*heap_at(w, i))->heap_index = i;
		heap_down(w, i);
		heap_up(w, i);
	}
	wt->waiting = false;
}

/* wakes a chain collected under the lock, after it is released: the waker may
 * take locks of its own, and a waiter stays valid until its wake call */
static size_t wake_chain(struct watch *w, struct waiter *chain)
{
	size_t n = 0;
	while (chain) {
		struct waiter *next = chain->woken_next;
		void *conn = chain->conn;
		chain->woken_next = NULL;
		w->wake(w->wake_arg, conn);
		chain = next;
		n++;
	}
	return n;
}

static void *timer_main(void *arg)
{
	struct watch *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stopping) {
		int64_t now = watch_now_ms();
		struct waiter *chain = NULL;
		while (w->heap.len && (*heap_at(w, 0))->deadline_ms <= now) {
			struct waiter *wt = *heap_at(w, 0);
			detach(w, wt);
			wt->woken_next = chain;
			chain = wt;
		}
		if (chain) {
			pthread_mutex_unlock(&w->lock);
			wake_chain(w, chain);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (!w->heap.len) {
			pthread_cond_wait(&w->cond, &w->lock);
		} else {
			int64_t d = (*heap_at(w, 0))->deadline_ms;
			struct timespec ts = { .tv_sec = d / 1000, .tv_nsec = (d % 1000) * 1000000 };
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int watch_new(watch_wake_fn wake, void *arg, size_t max, struct watch **out)
{
	pthread_condattr_t attr;
	struct watch *w;
	int rc;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return -ENOMEM;
	w->wake = wake;
	w->wake_arg = arg;
	vec_init(&w->heap, sizeof(struct waiter *), max, "meshsvc long polls waiting");
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	if ((rc = pthread_create(&w->timer, NULL, timer_main, w)) != 0) {
		log_error("watch", "cannot start the timer thread: %s", strerror(rc));
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -rc;
	}
	*out = w;
	return 0;
}

void watch_stop(struct watch *w)
{
	struct waiter *chain = NULL;
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->stopped) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	w->stopping = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->timer, NULL);

	pthread_mutex_lock(&w->lock);
	w->stopped = true;
	while (w->heap.len) {
		struct waiter *wt = *heap_at(w, 0);
		detach(w, wt);
		wt->woken_next = chain;
		chain = wt;
	}
	pthread_mutex_unlock(&w->lock);
	wake_chain(w, chain);
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	watch_stop(w);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	vec_free(&w->heap);
	free(w);
}

int watch_add(struct watch *w, struct waiter *wt, const char *vpc_id, int64_t deadline_ms, void *conn)
{
	unsigned b = bucket_of(vpc_id);
	int rc;

	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		pthread_mutex_unlock(&w->lock);
		return -ESHUTDOWN;
	}
	/* past the maximum the vec logs and counts the refusal */
	if ((rc = vec_reserve(&w->heap, 1)) < 0) {
		pthread_mutex_unlock(&w->lock);
		return rc;
	}
	memcpy(wt->vpc_id, vpc_id, UUID_STRLEN);
	wt->vpc_id[UUID_STRLEN - 1] = 0;
	wt->deadline_ms = deadline_ms;
	wt->conn = conn;
	wt->waiting = true;
	wt->woken_next = NULL;
	wt->prev = NULL;
	wt->next = w->buckets[b];
	if (wt->next)
		wt->next->prev = wt;
	w->buckets[b] = wt;
	wt->heap_index = w->heap.len;
	vec_append(&w->heap, &wt);	/* cannot fail: room is reserved */
	heap_up(w, wt->heap_index);
	if (wt->heap_index == 0)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

size_t watch_notify(struct watch *w, const char *vpc_id)
{
	struct waiter *chain = NULL, *wt, *next;

	pthread_mutex_lock(&w->lock);
	for (wt = w->buckets[bucket_of(vpc_id)]; wt; wt = next) {
		next = wt->next;
		if (strcmp(wt->vpc_id, vpc_id))
			continue;
		detach(w, wt);
		wt->woken_next = chain;
		chain = wt;
	}
	pthread_mutex_unlock(&w->lock);
	return wake_chain(w, chain);
}

bool watch_cancel(struct watch *w, struct waiter *wt)
{
	bool was;
	pthread_mutex_lock(&w->lock);
	if ((was = wt->waiting))
		detach(w, wt);
	pthread_mutex_unlock(&w->lock);
	return was;
}

size_t watch_count(struct watch *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->heap.len;
	pthread_mutex_unlock(&w->lock);
	return n;
}

uint64_t watch_refused(struct watch *w)
{
	pthread_mutex_lock(&w->lock);
	uint64_t n = w->heap.refused;
	pthread_mutex_unlock(&w->lock);
	return n;
}
