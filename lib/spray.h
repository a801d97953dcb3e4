/* spray: the easy side's schedule of birthday probes (D. Anderson's "NAT
 * birthday paradox"): the hard side opens many short-lived mappings towards
 * us, we aim probes at random ports of its public address; the first one
 * that meets one of its mappings opens the path.
 *
 * Sans-I/O on the caller's clock: spray_next() hands out the next port when
 * a probe is due, at rate_pps on average, never more than the budget, each
 * port at most once (a keyed permutation of the range, so the order is
 * random but fixed by the seed), and nothing once spray_stop() says an
 * answer came. A caller that polls late gets the probes it missed in one
 * burst of at most 100 ms worth; older ones are dropped from the schedule,
 * not sent late. */
#ifndef NATMESH_SPRAY_H
#define NATMESH_SPRAY_H

#include <stdbool.h>
#include <stdint.h>

enum {
	SPRAY_RATE_DEFAULT = 200,	/* probes per second */
	SPRAY_BUDGET_DEFAULT = 2048,	/* probes per attempt */
	SPRAY_RATE_MAX = 10000,
	SPRAY_BUDGET_MAX = 65535,
	SPRAY_CATCHUP_MS = 100,
};

struct spray_cfg {
	uint32_t rate_pps;		/* 1 .. SPRAY_RATE_MAX */
	uint32_t budget;		/* 1 .. SPRAY_BUDGET_MAX */
	uint16_t port_min, port_max;	/* the hard side's allocation range */
	uint64_t seed;			/* the order of the ports */
};

struct spray {
	struct spray_cfg cfg;
	uint64_t start_ms;		/* when probe 0 was due (moves on catch-up) */
	uint32_t sent;			/* probes handed out */
	uint32_t index;			/* next input to the permutation */
	bool stopped;
};

/* 0, or -EINVAL with *why naming the field and the reason */
int spray_init(struct spray *s, const struct spray_cfg *cfg, uint64_t now_ms, const char **why);
/* 1 with *port set when a probe is due at now_ms; 0 when none is due yet;
 * -ENOSPC when the budget or the range is spent, -ECANCELED once stopped */
int spray_next(struct spray *s, uint64_t now_ms, uint16_t *port);
/* when the next probe is due; UINT64_MAX when there is none */
uint64_t spray_deadline(const struct spray *s);
/* an answer came: hand out nothing more */
void spray_stop(struct spray *s);

/* The chance that k distinct random probes into a range of r ports meet at
 * least one of n open mappings (hypergeometric: 1 - C(r-n,k)/C(r,k)). */
double spray_success_probability(uint32_t n, uint32_t k, uint32_t r);

#endif
