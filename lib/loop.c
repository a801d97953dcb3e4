#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "vec.h"

struct fd_entry {
	int fd;
	loop_fd_cb cb;
	void *arg;
	struct fd_entry *next;
};

struct sig_entry {
	int signo;
	loop_signal_cb cb;
	void *arg;
};

struct loop {
	int epfd;
	int sigfd;
	sigset_t sigmask;
	struct sig_entry sigs[32];
	int nsigs;
	uint64_t now;
	uint64_t seq;
	bool stop;
	struct vec heap;	/* struct loop_timer *, a min-heap */
	/* fd entries hashed by fd: epoll_event carries the entry pointer, and a
	 * removed entry is parked on a graveyard until the wake-up ends so that
	 * callbacks later in the same batch never touch freed memory. */
	struct fd_entry *fds[256];
	struct fd_entry *graveyard;
};

uint64_t clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int loop_new(struct loop **out)
{
	struct loop *l;
	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return -errno;
	}
	l->sigfd = -1;
	vec_init(&l->heap, sizeof(struct loop_timer *), LOOP_TIMERS_MAX, "loop timers");
	sigemptyset(&l->sigmask);
	l->now = clock_now_ms();
	*out = l;
	return 0;
}

static void free_chain(struct fd_entry *e)
{
	while (e) {
		struct fd_entry *n = e->next;
		free(e);
		e = n;
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < sizeof(l->fds) / sizeof(l->fds[0]); i++)
		free_chain(l->fds[i]);
	free_chain(l->graveyard);
	if (l->sigfd >= 0) {
		close(l->sigfd);
		sigprocmask(SIG_UNBLOCK, &l->sigmask, NULL);
	}
	close(l->epfd);
	vec_free(&l->heap);
	free(l);
}

uint64_t loop_now(const struct loop *l)
{
	return l->now;
}

static struct fd_entry **fd_slot(struct loop *l, int fd)
{
	return &l->fds[(unsigned)fd % (sizeof(l->fds) / sizeof(l->fds[0]))];
}

static struct fd_entry *fd_find(struct loop *l, int fd)
{
	for (struct fd_entry *e = *fd_slot(l, fd); e; e = e->next)
		if (e->fd == fd)
			return e;
	return NULL;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct fd_entry *e;
	if (fd < 0 || !cb)
		return -EINVAL;
	if (fd_find(l, fd))
		return -EEXIST;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = fd;
	e->cb = cb;
	e->arg = arg;
	ev.data.ptr = e;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;
		free(e);
		return err;
	}
	e->next = *fd_slot(l, fd);
	*fd_slot(l, fd) = e;
	return 0;
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	struct fd_entry *e = fd_find(l, fd);
	struct epoll_event ev = { .events = events };
	if (!e)
		return -ENOENT;
	ev.data.ptr = e;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int loop_del_fd(struct loop *l, int fd)
{
	struct fd_entry **pp = fd_slot(l, fd);
	for (; *pp; pp = &(*pp)->next) {
		struct fd_entry *e = *pp;
		if (e->fd != fd)
			continue;
		*pp = e->next;
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		e->cb = NULL;
		e->next = l->graveyard;
		l->graveyard = e;
		return 0;
	}
	return -ENOENT;
}

/* --- timers: a binary min-heap on (deadline, seq) --- */

static bool timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static struct loop_timer *heap_at(const struct loop *l, int i)
{
	return VEC_PTR(&l->heap, struct loop_timer *, i);
}

static int heap_len(const struct loop *l)
{
	return (int)l->heap.len;
}

static void heap_set(struct loop *l, int i, struct loop_timer *t)
{
	VEC_PTR(&l->heap, struct loop_timer *, i) = t;
	t->heap_idx = i;
}

static void heap_up(struct loop *l, int i)
{
	struct loop_timer *t = heap_at(l, i);
	while (i > 0) {
		int parent = (i - 1) / 2;
		if (!timer_before(t, heap_at(l, parent)))
			break;
		heap_set(l, i, heap_at(l, parent));
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, int i)
{
	struct loop_timer *t = heap_at(l, i);
	for (;;) {
		int c = 2 * i + 1;
		if (c >= heap_len(l))
			break;
		if (c + 1 < heap_len(l) && timer_before(heap_at(l, c + 1), heap_at(l, c)))
			c++;
		if (!timer_before(heap_at(l, c), t))
			break;
		heap_set(l, i, heap_at(l, c));
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->heap_idx = -1;
	t->cb = cb;
	t->arg = arg;
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_idx >= 0;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	int i = t->heap_idx;
	if (i < 0)
		return;
	t->heap_idx = -1;
	vec_truncate(&l->heap, l->heap.len - 1);
	if (i == heap_len(l))
		return;
	struct loop_timer *moved = heap_at(l, heap_len(l));
	heap_set(l, i, moved);
	heap_up(l, i);
	heap_down(l, moved->heap_idx);
}

int loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms, uint64_t period_ms)
{
	struct loop_timer **slot;

	loop_timer_cancel(l, t);
	/* only a timer that was not armed can be refused: a re-armed one takes
	 * back the slot it just left */
	if (!(slot = vec_push(&l->heap)))
		return -errno;
	t->deadline = l->now + delay_ms;
	t->period = period_ms;
	t->seq = l->seq++;
	*slot = t;
	t->heap_idx = heap_len(l) - 1;
	heap_up(l, t->heap_idx);
	return 0;
}

static void run_timers(struct loop *l)
{
	while (heap_len(l) > 0 && heap_at(l, 0)->deadline <= l->now && !l->stop) {
		struct loop_timer *t = heap_at(l, 0);
		if (t->period) {
			/* re-armed in place before the callback so that it can
			 * cancel itself; a loop that fell behind skips the missed
			 * runs */
			uint64_t next = t->deadline + t->period;
			t->deadline = next > l->now ? next : l->now + t->period;
			t->seq = l->seq++;
			heap_down(l, 0);
		} else {
			loop_timer_cancel(l, t);
		}
		t->cb(l, t, t->arg);
	}
}

/* --- signals --- */

static void on_signalfd(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (int i = 0; i < l->nsigs; i++)
			if (l->sigs[i].signo == (int)si.ssi_signo)
				l->sigs[i].cb(l, (int)si.ssi_signo, l->sigs[i].arg);
	}
}

int loop_signal(struct loop *l, int signo, loop_signal_cb cb, void *arg)
{
	int fd;
	if (l->nsigs == (int)(sizeof(l->sigs) / sizeof(l->sigs[0])))
		return -ENOSPC;
	sigaddset(&l->sigmask, signo);
	if (sigprocmask(SIG_BLOCK, &l->sigmask, NULL) < 0)
		return -errno;
	fd = signalfd(l->sigfd, &l->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (l->sigfd < 0) {
		int rc = loop_add_fd(l, fd, LOOP_READ, on_signalfd, NULL);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		l->sigfd = fd;
	}
	l->sigs[l->nsigs++] = (struct sig_entry){ .signo = signo, .cb = cb, .arg = arg };
	return 0;
}

/* --- running --- */

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[64];
	int n;

	l->now = clock_now_ms();
	run_timers(l);
	if (l->stop)
		return 0;
	if (heap_len(l) > 0) {
		uint64_t due = heap_at(l, 0)->deadline;
		int until = due > l->now ? (int)(due - l->now) : 0;
		if (timeout_ms < 0 || until < timeout_ms)
			timeout_ms = until;
	}
	n = epoll_wait(l->epfd, evs, 64, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->now = clock_now_ms();
	for (int i = 0; i < n && !l->stop; i++) {
		struct fd_entry *e = evs[i].data.ptr;
		if (e->cb)
			e->cb(l, e->fd, evs[i].events, e->arg);
	}
	free_chain(l->graveyard);
	l->graveyard = NULL;
	run_timers(l);
	return 0;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int rc = loop_run_once(l, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
