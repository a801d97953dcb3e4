/* watch: the waiters of long polls (GET /api/vpcs/{id}/devices?wait=S). A
 * waiter is parked per VPC with a deadline; it is woken once, either by a change
 * in its VPC (watch_notify) or by its deadline (a timer thread), through the
 * wake callback, which for meshsvc resumes the suspended HTTP connection. No
 * thread per waiter: 10,000 waiters are 10,000 small structs. Thread-safe. */
#ifndef NATMESH_SVC_WATCH_H
#define NATMESH_SVC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "validate.h"

/* lives inside the caller's request state; the watch only links it */
struct waiter {
	char vpc_id[UUID_STRLEN];
	int64_t deadline_ms;	/* watch_now_ms() clock */
	void *conn;		/* handed to wake */
	bool waiting;
	size_t heap_index;
	struct waiter *prev, *next, *woken_next;
};

struct watch;
typedef void (*watch_wake_fn)(void *arg, void *conn);

/* starts the timer thread; wake gets arg and the waiter's conn; at most max
 * waiters wait at once */
int watch_new(watch_wake_fn wake, void *arg, size_t max, struct watch **out);
/* stops the timer and wakes every waiter left; idempotent */
void watch_stop(struct watch *w);
void watch_free(struct watch *w);
/* parks a waiter until a change in vpc_id or deadline_ms; -ENOSPC (max
 * waiting), -ENOMEM, -ESHUTDOWN */
int watch_add(struct watch *w, struct waiter *wt, const char *vpc_id, int64_t deadline_ms, void *conn);
/* wakes every waiter of the VPC; returns how many */
size_t watch_notify(struct watch *w, const char *vpc_id);
/* removes a waiter that was not woken (its request went away); true if it
 * was still waiting, false if its wake has come or is under way */
bool watch_cancel(struct watch *w, struct waiter *wt);
size_t watch_count(struct watch *w);
/* waiters refused, at the maximum or for memory */
uint64_t watch_refused(struct watch *w);
int64_t watch_now_ms(void);

#endif
