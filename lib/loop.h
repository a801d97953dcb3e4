/* loop: the event loop every daemon runs on. epoll for file descriptors, a
 * binary heap of timers on a monotonic millisecond clock, and signals through
 * signalfd. Timers are owned by the caller (embedded in its structs), and may
 * be armed, re-armed or cancelled from inside any callback. */
#ifndef NATMESH_LOOP_H
#define NATMESH_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(struct loop *loop, int fd, uint32_t events, void *arg);
typedef void (*loop_timer_cb)(struct loop *loop, struct loop_timer *t, void *arg);
typedef void (*loop_signal_cb)(struct loop *loop, int signo, void *arg);

/* events for loop_add_fd: the EPOLL* values */
enum { LOOP_READ = 0x001, LOOP_WRITE = 0x004, LOOP_ERROR = 0x008, LOOP_HUP = 0x010 };

struct loop_timer {
	uint64_t deadline;	/* ms on the loop clock */
	uint64_t period;	/* 0 for one-shot */
	uint64_t seq;		/* ties: earlier armed runs first */
	int heap_idx;		/* -1 when not armed */
	loop_timer_cb cb;
	void *arg;
};

/* monotonic milliseconds (CLOCK_MONOTONIC) */
uint64_t clock_now_ms(void);
/* the same clock in ns, for cores that count finer (the WireGuard device) */
uint64_t clock_now_ns(void);
/* the wall clock (CLOCK_REALTIME), ns since the epoch */
uint64_t clock_wall_ns(void);

int loop_new(struct loop **out);
void loop_free(struct loop *loop);
/* the loop's time, refreshed at every wake-up */
uint64_t loop_now(const struct loop *loop);

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *arg);
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
int loop_del_fd(struct loop *loop, int fd);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *arg);
/* the most timers a loop holds armed at once: one for each of WireGuard's
 * 2^20 peers (WG_MAX_PEERS) and as many again for everything else */
#define LOOP_TIMERS_MAX (1U << 21)

/* (re)arm: first run after delay_ms, then every period_ms if non-zero.
 * 0, or -ENOSPC (LOOP_TIMERS_MAX armed) or -ENOMEM: the timer was not armed
 * before and is still not; the refusal is counted and logged (vec.h). An
 * armed timer is always re-armed. */
int loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t delay_ms, uint64_t period_ms);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);

/* route signo to cb through a signalfd (the signal is blocked for the process) */
int loop_signal(struct loop *loop, int signo, loop_signal_cb cb, void *arg);

/* runs until loop_stop(); returns 0, or a negative errno on a fatal error */
int loop_run(struct loop *loop);
/* one wake-up at most timeout_ms long (-1: until an event); for tests */
int loop_run_once(struct loop *loop, int timeout_ms);
void loop_stop(struct loop *loop);

#endif
