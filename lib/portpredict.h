/* portpredict: where a NAT with sequential port allocation (RFC 4787 4.2.1
 * "port overloading" off, ports handed out in order) will put its next
 * mappings, from the mapped ports it gave a run of fresh sockets.
 *
 * A sequential NAT advances by a fixed step (delta, usually +1) for each new
 * mapping; other hosts behind it take ports in between, so successive samples
 * differ by delta times (1 + the mappings others made meanwhile). The fit
 * takes the step as the greatest common divisor of the differences (one
 * direction only; a gap of over 256 steps is no sequence), and the background rate as
 * the mappings others made per second over the samples; a prediction at time
 * t centres on last + delta * (k + rate * (t - t_last)) for the k-th next
 * mapping of ours and widens with the spread of a Poisson background whose
 * rate is itself an estimate (3 standard deviations, at least 2 steps). Ports are listed nearest the
 * centre first, so a caller with a small budget aims at the likeliest ones.
 *
 * Pure: no clock, no sockets; times are the caller's milliseconds. */
#ifndef NATMESH_PORTPREDICT_H
#define NATMESH_PORTPREDICT_H

#include <stddef.h>
#include <stdint.h>

enum {
	PORTPREDICT_SAMPLES_MIN = 3,
	PORTPREDICT_SAMPLES_MAX = 64,
	/* a step larger than this is no sequential allocation */
	PORTPREDICT_DELTA_MAX = 16,
	PORTPREDICT_WINDOW_MAX = 4096,
};

struct portpredict_sample {
	uint64_t t_ms;		/* when the mapping was made (first answer) */
	uint16_t port;		/* the mapped (outside) port */
};

struct portpredict {
	int delta;		/* step per mapping: +1, -1, +2 ... */
	double rate_per_s;	/* mappings others made per second */
	uint16_t last_port;
	uint64_t last_t_ms;
	uint64_t span_ms;	/* the time the samples covered (at least 100) */
	uint16_t port_min, port_max;	/* the range the NAT allocates from */
};

/* Fits samples (in the order they were made; times non-decreasing) from a
 * NAT that allocates in [port_min, port_max] (wrapping at the ends). 0, or
 * -EINVAL with *why naming the reason: too few samples, times out of order,
 * a repeated port, steps of mixed sign, a common step larger than
 * PORTPREDICT_DELTA_MAX or a gap of more than 256 steps (not sequential). */
int portpredict_fit(const struct portpredict_sample *s, size_t n, uint16_t port_min,
		    uint16_t port_max, struct portpredict *out, const char **why);

/* The ports the mapping our k-th next socket (k >= 1) gets at at_ms is likely
 * to take, nearest the expectation first, at most max of them, each within
 * the NAT's range. Returns how many were written. */
size_t portpredict_window(const struct portpredict *p, uint64_t at_ms, unsigned k,
			  uint16_t *ports, size_t max);

/* the half-width (in ports) portpredict_window covers for those inputs */
unsigned portpredict_spread(const struct portpredict *p, uint64_t at_ms);

#endif
