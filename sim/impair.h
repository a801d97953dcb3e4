/* impair: delay, jitter, loss, duplication, reordering and rate limits on a
 * lab link, per direction, deterministic per seed, on kernels without
 * sch_netem. This header is the sans-I/O part: the configuration, its JSON
 * form (scenario links, `impair` steps, `meshsim impair`, the control socket),
 * the seeded generator and the per-packet decision core. sim/impairline.h is
 * the delay line that moves the frames.
 *
 * Design. The kernels the lab must run on have no netem and no sch_fq (no
 * EDT pacing), and no act_gact/act_bpf to drop or hold from tc. What every
 * Linux has is AF_PACKET on a veth, so an impaired link is cut in two and a
 * userspace delay line (meshsim's own process, one per impaired link) joins
 * the halves, holding each frame in a ring until it is due:
 *
 *   node ns           network ns (the link's bridge)
 *   IFNAME ==veth== imp.K.n  [delay line]  imp.K.b ==veth== NODE -- br0
 *                   "egress": IFNAME -> br0; "ingress": br0 -> IFNAME
 *
 * Why not NFQUEUE with held verdicts: a verdict can be delayed but not
 * duplicated, the queue is per hook and not per link, and a held verdict
 * keeps a conntrack entry unconfirmed (it changes what the NAT rulesets see).
 * Why not TBF for the rate: one place keeps the order of delay, rate and
 * reordering decisions, and one generator makes them, so a seed reproduces
 * them; TBF would also sit before the delay and drop by its own clock.
 *
 * Model, per direction, for each IP packet in arrival order (ARP and other
 * non-IP frames pass at once, unimpaired, and draw nothing, so decisions are
 * a function of the seed, the link, the direction and the IP packet's index):
 *   1. four 64-bit draws from xoshiro256** (seeded by splitmix64 from the
 *      scenario seed, the link's name and the direction): loss, duplicate,
 *      reorder, jitter; always all four, whatever is configured.
 *   2. loss_percent: dropped.
 *   3. rate_kbit: the packet waits for the serialiser (a token bucket of one
 *      frame, i.e. a link of that rate: frame bytes including the Ethernet
 *      header); the queue ahead of it is bounded by queue_packets or
 *      queue_kbytes (tail drop). Default: 100 ms at the rate, at least 4 KiB.
 *   4. delay_ms plus jitter uniform in [-jitter_ms, +jitter_ms] (so jitter
 *      may not exceed delay). Jitter does not reorder: a packet never leaves
 *      before the one ahead of it (real delay variation is queueing, which
 *      keeps order); with packets closer than 2 x jitter this skews the
 *      delay upwards. Reordering is its own knob, so that its rate is exact.
 *   5. duplicate_percent: a second copy leaves right after the first.
 *   6. reorder_percent (0..50): the packet is held back and leaves right
 *      after the next packet of that direction (a swap of neighbours), or on
 *      its own IMPAIR_HOLD_MAX_MS after it was due if none comes. A packet
 *      that arrives while one is held is not held itself, and the draw is
 *      scaled (p / (1 - p)) so that P% of a steady stream is reordered.
 * Times are nanoseconds of CLOCK_MONOTONIC. */
#ifndef NATMESH_SIM_IMPAIR_H
#define NATMESH_SIM_IMPAIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	IMPAIR_DELAY_MAX_MS = 60000,
	IMPAIR_RATE_MAX_KBIT = 100000000,	/* 100 Gbit/s */
	IMPAIR_QUEUE_PACKETS_MAX = 16384,	/* the delay line's ring per direction */
	IMPAIR_QUEUE_KBYTES_MAX = 16384,
	IMPAIR_REORDER_MAX_PERCENT = 50,	/* a swap of neighbours: at most every other packet */
	IMPAIR_HOLD_MAX_MS = 20,		/* a held packet with no successor goes alone */
	IMPAIR_DEFAULT_QUEUE_MS = 100,
	IMPAIR_DEFAULT_QUEUE_MIN_BYTES = 4096,
	IMPAIR_PPM = 1000000,
};

enum impair_dir_id { IMPAIR_EGRESS, IMPAIR_INGRESS, IMPAIR_NDIRS };

/* one direction; all zero is no impairment */
struct impair_conf {
	uint32_t delay_us, jitter_us;
	uint32_t loss_ppm, duplicate_ppm, reorder_ppm;	/* parts per million */
	uint32_t rate_kbit;				/* 0: unlimited */
	uint32_t queue_packets, queue_bytes;		/* at most one set; both 0: the default */
};

struct impair_err {
	char path[160];		/* JSON path of the offending value, e.g. "egress.jitter_ms" */
	char reason[160];
};

/* "egress" | "ingress" */
const char *impair_dir_name(enum impair_dir_id d);
bool impair_conf_active(const struct impair_conf *c);

/* Reads one direction's keys (delay_ms, jitter_ms, loss_percent,
 * duplicate_percent, reorder_percent, rate_kbit, queue_packets,
 * queue_kbytes) present in obj into *c; absent keys keep their value.
 * Other keys are left to the caller. path prefixes error paths. */
int impair_conf_update(json_t *obj, const char *path, struct impair_conf *c, struct impair_err *err);
/* the rules across keys: jitter <= delay, a queue only with a rate */
int impair_conf_check(const struct impair_conf *c, const char *path, struct impair_err *err);
/* An update of both directions: direction keys at the top apply to both,
 * "egress" and "ingress" objects to one; keys in extra (NULL-terminated,
 * may be NULL) are allowed and ignored, any other key is refused. dir[] is
 * changed only when the whole update is valid. */
int impair_update(json_t *obj, const char *path, const char *const *extra, struct impair_conf dir[IMPAIR_NDIRS],
		  struct impair_err *err);
/* a direction as JSON (only the keys that are set) */
json_t *impair_conf_json(const struct impair_conf *c);
/* "delay 50 ms, jitter 5 ms, loss 1%" or "none" */
char *impair_conf_format(const struct impair_conf *c, char *buf, size_t len);

/* the seeded generator: xoshiro256** */
struct impair_rng {
	uint64_t s[4];
};
/* seeded by splitmix64 from seed, a hash of the link's name and the direction */
void impair_rng_seed(struct impair_rng *r, uint64_t seed, const char *link, enum impair_dir_id d);
uint64_t impair_rng_next(struct impair_rng *r);

struct impair_counters {
	uint64_t packets, passed;	/* IP packets in; frames out (copies counted) */
	uint64_t lost, queue_drops;
	uint64_t duplicated, reordered;
	uint64_t other;			/* non-IP frames passed at once */
	uint64_t overflow;		/* the delay line had no slot or could not send */
};

/* one direction's decision state */
struct impair_dir {
	struct impair_conf conf;
	struct impair_rng rng;
	uint64_t last_due;		/* FIFO: no packet leaves before the one ahead */
	uint64_t link_free;		/* rate: when the serialiser is free again */
	uint64_t backlog[IMPAIR_QUEUE_PACKETS_MAX];	/* rate: serialisation ends of waiting packets */
	size_t bl_head, bl_n;
	bool holding;			/* a packet is held for reordering */
	uint64_t hold_deadline;
	struct impair_counters cnt;
};

enum impair_fate {
	IMPAIR_PASS,		/* send copies at due */
	IMPAIR_HOLD,		/* keep it (copies) aside: released by a later verdict or the deadline */
	IMPAIR_DROP_LOSS,
	IMPAIR_DROP_QUEUE,
};

struct impair_verdict {
	enum impair_fate fate;
	unsigned copies;	/* 1 or 2 */
	uint64_t due;
	bool release_held;	/* the held packet leaves right after this one, at the same due */
};

void impair_dir_init(struct impair_dir *d, const struct impair_conf *c, uint64_t seed, const char *link,
		     enum impair_dir_id id);
/* a new configuration; the generator and the queue go on */
void impair_dir_set(struct impair_dir *d, const struct impair_conf *c);
/* the decision for an IP packet of len bytes (Ethernet frame) arriving at now */
void impair_dir_admit(struct impair_dir *d, uint64_t now, size_t len, struct impair_verdict *v);
/* when the held packet must go (UINT64_MAX: none held) */
uint64_t impair_dir_hold_deadline(const struct impair_dir *d);
/* the held packet goes alone: its due */
uint64_t impair_dir_release_held(struct impair_dir *d, uint64_t now);
/* the effective queue limit in bytes (0: counted in packets) and packets */
void impair_queue_limit(const struct impair_conf *c, uint32_t *bytes, uint32_t *packets);

#endif
