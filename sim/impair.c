#include "impair.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const dir_names[IMPAIR_NDIRS] = { "egress", "ingress" };

const char *impair_dir_name(enum impair_dir_id d)
{
	return dir_names[d];
}

bool impair_conf_active(const struct impair_conf *c)
{
	return c->delay_us || c->jitter_us || c->loss_ppm || c->duplicate_ppm || c->reorder_ppm || c->rate_kbit;
}

static int efail(struct impair_err *err, const char *path, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int efail(struct impair_err *err, const char *path, const char *key, const char *fmt, ...)
{
	va_list ap;
	snprintf(err->path, sizeof(err->path), "%s%s%s", path, path[0] && key[0] ? "." : "", key);
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* a JSON number in lo..hi, scaled by mul and rounded: ms -> us, percent -> ppm */
static int get_num(json_t *obj, const char *key, const char *path, double lo, double hi, double mul,
		   bool integer, uint32_t *out, bool *seen, struct impair_err *err)
{
	json_t *v = json_object_get(obj, key);
	*seen = v != NULL;
	if (!v)
		return 0;
	if (integer ? !json_is_integer(v) : !json_is_number(v))
		return efail(err, path, key, "must be %s", integer ? "an integer" : "a number");
	double x = json_number_value(v);
	if (!(x >= lo && x <= hi))	/* NaN too */
		return efail(err, path, key, "%g is out of range %g..%g", x, lo, hi);
	*out = (uint32_t)(x * mul + 0.5);	/* x >= 0 */
	return 0;
}

int impair_conf_update(json_t *obj, const char *path, struct impair_conf *c, struct impair_err *err)
{
	struct impair_conf n = *c;
	uint32_t qp = 0, qk = 0;
	bool seen, sqp, sqk;
	int rc;

	if (!json_is_object(obj))
		return efail(err, path, "", "must be an object");
	if ((rc = get_num(obj, "delay_ms", path, 0, IMPAIR_DELAY_MAX_MS, 1000, false, &n.delay_us, &seen, err)) ||
	    (rc = get_num(obj, "jitter_ms", path, 0, IMPAIR_DELAY_MAX_MS, 1000, false, &n.jitter_us, &seen, err)) ||
	    (rc = get_num(obj, "loss_percent", path, 0, 100, 10000, false, &n.loss_ppm, &seen, err)) ||
	    (rc = get_num(obj, "duplicate_percent", path, 0, 100, 10000, false, &n.duplicate_ppm, &seen, err)) ||
	    (rc = get_num(obj, "reorder_percent", path, 0, IMPAIR_REORDER_MAX_PERCENT, 10000, false, &n.reorder_ppm,
			  &seen, err)))
		return rc;
	json_t *rate = json_object_get(obj, "rate_kbit");
	if (json_is_integer(rate) && json_integer_value(rate) == 0)
		return efail(err, path, "rate_kbit", "0 would carry nothing; leave rate_kbit out for no limit");
	if ((rc = get_num(obj, "rate_kbit", path, 1, IMPAIR_RATE_MAX_KBIT, 1, true, &n.rate_kbit, &seen, err)) ||
	    (rc = get_num(obj, "queue_packets", path, 1, IMPAIR_QUEUE_PACKETS_MAX, 1, true, &qp, &sqp, err)) ||
	    (rc = get_num(obj, "queue_kbytes", path, 1, IMPAIR_QUEUE_KBYTES_MAX, 1, true, &qk, &sqk, err)))
		return rc;
	if (sqp && sqk)
		return efail(err, path, "queue_kbytes", "give queue_packets or queue_kbytes, not both");
	/* one queue limit at a time: setting one replaces the other */
	if (sqp) {
		n.queue_packets = qp;
		n.queue_bytes = 0;
	}
	if (sqk) {
		n.queue_bytes = qk * 1024;
		n.queue_packets = 0;
	}
	*c = n;
	return 0;
}

int impair_conf_check(const struct impair_conf *c, const char *path, struct impair_err *err)
{
	if (c->jitter_us > c->delay_us)
		return efail(err, path, "jitter_ms", "%g is more than delay_ms (%g): jitter is uniform in "
			     "[-jitter, +jitter] around the delay", c->jitter_us / 1000.0, c->delay_us / 1000.0);
	if ((c->queue_packets || c->queue_bytes) && !c->rate_kbit)
		return efail(err, path, c->queue_packets ? "queue_packets" : "queue_kbytes",
			     "a queue limit needs rate_kbit (only the rate limit queues)");
	return 0;
}

static const char *const dir_keys[] = { "delay_ms", "jitter_ms", "loss_percent", "duplicate_percent",
					"reorder_percent", "rate_kbit", "queue_packets", "queue_kbytes", NULL };

static bool in_list(const char *const *list, const char *key)
{
	for (size_t i = 0; list && list[i]; i++)
		if (!strcmp(list[i], key))
			return true;
	return false;
}

int impair_update(json_t *obj, const char *path, const char *const *extra, struct impair_conf dir[IMPAIR_NDIRS],
		  struct impair_err *err)
{
	struct impair_conf n[IMPAIR_NDIRS] = { dir[0], dir[1] };
	char sub[sizeof(err->path)];
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(obj))
		return efail(err, path, "", "must be an object");
	json_object_foreach(obj, key, v) {
		if (!in_list(dir_keys, key) && !in_list(extra, key) && strcmp(key, "egress") && strcmp(key, "ingress"))
			return efail(err, path, key, "unknown key (known: delay_ms, jitter_ms, loss_percent, "
				     "duplicate_percent, reorder_percent, rate_kbit, queue_packets, queue_kbytes, "
				     "egress, ingress)");
	}
	for (int d = 0; d < IMPAIR_NDIRS; d++)
		if ((rc = impair_conf_update(obj, path, &n[d], err)))
			return rc;
	for (int d = 0; d < IMPAIR_NDIRS; d++) {
		json_t *o = json_object_get(obj, dir_names[d]);
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", dir_names[d]);
		if (!o)
			continue;
		if (!json_is_object(o))
			return efail(err, sub, "", "must be an object");
		json_object_foreach(o, key, v) {
			if (!in_list(dir_keys, key))
				return efail(err, sub, key, "unknown key (known: delay_ms, jitter_ms, loss_percent, "
					     "duplicate_percent, reorder_percent, rate_kbit, queue_packets, "
					     "queue_kbytes)");
		}
		if ((rc = impair_conf_update(o, sub, &n[d], err)))
			return rc;
	}
	for (int d = 0; d < IMPAIR_NDIRS; d++) {
		/* name the direction's object when the update gave one, else the top */
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", dir_names[d]);
		if ((rc = impair_conf_check(&n[d], json_object_get(obj, dir_names[d]) ? sub : path, err)))
			return rc;
	}
	dir[0] = n[0];
	dir[1] = n[1];
	return 0;
}

json_t *impair_conf_json(const struct impair_conf *c)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	if (c->delay_us)
		json_object_set_new(j, "delay_ms", json_real(c->delay_us / 1000.0));
	if (c->jitter_us)
		json_object_set_new(j, "jitter_ms", json_real(c->jitter_us / 1000.0));
	if (c->loss_ppm)
		json_object_set_new(j, "loss_percent", json_real(c->loss_ppm / 10000.0));
	if (c->duplicate_ppm)
		json_object_set_new(j, "duplicate_percent", json_real(c->duplicate_ppm / 10000.0));
	if (c->reorder_ppm)
		json_object_set_new(j, "reorder_percent", json_real(c->reorder_ppm / 10000.0));
	if (c->rate_kbit)
		json_object_set_new(j, "rate_kbit", json_integer(c->rate_kbit));
	if (c->queue_packets)
		json_object_set_new(j, "queue_packets", json_integer(c->queue_packets));
	if (c->queue_bytes)
		json_object_set_new(j, "queue_kbytes", json_integer(c->queue_bytes / 1024));
	return j;
}

char *impair_conf_format(const struct impair_conf *c, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
#define PUT(...) n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__)
	if (c->delay_us || c->jitter_us)
		PUT("delay %g ms", c->delay_us / 1000.0);
	if (c->jitter_us)
		PUT(" +-%g ms", c->jitter_us / 1000.0);
	if (c->loss_ppm)
		PUT("%sloss %g%%", n ? ", " : "", c->loss_ppm / 10000.0);
	if (c->duplicate_ppm)
		PUT("%sduplicate %g%%", n ? ", " : "", c->duplicate_ppm / 10000.0);
	if (c->reorder_ppm)
		PUT("%sreorder %g%%", n ? ", " : "", c->reorder_ppm / 10000.0);
	if (c->rate_kbit)
		PUT("%srate %u kbit/s", n ? ", " : "", c->rate_kbit);
	if (c->queue_packets)
		PUT(" queue %u packets", c->queue_packets);
	if (c->queue_bytes)
		PUT(" queue %u KiB", c->queue_bytes / 1024);
	if (!n)
		PUT("none");
#undef PUT
	return buf;
}

/* --- the generator: splitmix64 seeds xoshiro256** (Blackman, Vigna 2018) --- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void impair_rng_seed(struct impair_rng *r, uint64_t seed, const char *link, enum impair_dir_id d)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a 64 of the link's name */
	for (const char *p = link; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	uint64_t x = seed ^ rotl(h, 17) ^ ((uint64_t)d + 1) * 0xd1342543de82ef95ULL;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t impair_rng_next(struct impair_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* x uniform in [0, 2^64) -> [0, n) without a division's bias worth noting */
static uint64_t scale(uint64_t x, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)x * n) >> 64);
}

/* --- decisions ---------------------------------------------------------- */

void impair_queue_limit(const struct impair_conf *c, uint32_t *bytes, uint32_t *packets)
{
	*packets = c->queue_packets;
	*bytes = c->queue_bytes;
	if (!c->queue_packets && !c->queue_bytes) {
		uint64_t b = (uint64_t)c->rate_kbit * 1000 / 8 * IMPAIR_DEFAULT_QUEUE_MS / 1000;
		if (b < IMPAIR_DEFAULT_QUEUE_MIN_BYTES)
			b = IMPAIR_DEFAULT_QUEUE_MIN_BYTES;
		if (b > (uint64_t)IMPAIR_QUEUE_KBYTES_MAX * 1024)
			b = (uint64_t)IMPAIR_QUEUE_KBYTES_MAX * 1024;
		*bytes = (uint32_t)b;
	}
}

void impair_dir_init(struct impair_dir *d, const struct impair_conf *c, uint64_t seed, const char *link,
		     enum impair_dir_id id)
{
	memset(d, 0, sizeof(*d));
	d->conf = *c;
	impair_rng_seed(&d->rng, seed, link, id);
}

void impair_dir_set(struct impair_dir *d, const struct impair_conf *c)
{
	d->conf = *c;
}

/* rate: 0 with *done the end of the packet's serialisation, or -ENOBUFS
 * when the queue ahead of it is full */
static int serialise(struct impair_dir *d, uint64_t now, size_t len, uint64_t *done)
{
	uint32_t qbytes, qpackets;
	uint64_t rate = d->conf.rate_kbit;
	impair_queue_limit(&d->conf, &qbytes, &qpackets);
	while (d->bl_n && d->backlog[d->bl_head] <= now) {
		d->bl_head = (d->bl_head + 1) % IMPAIR_QUEUE_PACKETS_MAX;
		d->bl_n--;
	}
	if (d->link_free < now)
		d->link_free = now;
	/* bytes still to serialise ahead of this packet */
	uint64_t ahead = (d->link_free - now) * rate / 8000000;
	if (d->bl_n >= IMPAIR_QUEUE_PACKETS_MAX || (qpackets && d->bl_n >= qpackets) ||
	    (qbytes && ahead + len > qbytes && d->bl_n))
		return -ENOBUFS;
	d->link_free += (uint64_t)len * 8 * 1000000 / rate;
	d->backlog[(d->bl_head + d->bl_n) % IMPAIR_QUEUE_PACKETS_MAX] = d->link_free;
	d->bl_n++;
	*done = d->link_free;
	return 0;
}

void impair_dir_admit(struct impair_dir *d, uint64_t now, size_t len, struct impair_verdict *v)
{
	const struct impair_conf *c = &d->conf;
	uint64_t r_loss = impair_rng_next(&d->rng), r_dup = impair_rng_next(&d->rng),
		 r_reorder = impair_rng_next(&d->rng), r_jitter = impair_rng_next(&d->rng);
	uint64_t start = now;

	memset(v, 0, sizeof(*v));
	d->cnt.packets++;
	if (scale(r_loss, IMPAIR_PPM) < c->loss_ppm) {
		v->fate = IMPAIR_DROP_LOSS;
		d->cnt.lost++;
		return;
	}
	if (c->rate_kbit && serialise(d, now, len, &start) < 0) {
		v->fate = IMPAIR_DROP_QUEUE;
		d->cnt.queue_drops++;
		return;
	}
	uint64_t due = start + (uint64_t)c->delay_us * 1000;
	if (c->jitter_us) {
		uint64_t span = (uint64_t)c->jitter_us * 2000 + 1;
		due = due - (uint64_t)c->jitter_us * 1000 + scale(r_jitter, span);
	}
	if (due < d->last_due)
		due = d->last_due;
	d->last_due = due;
	v->due = due;
	v->copies = 1 + (scale(r_dup, IMPAIR_PPM) < c->duplicate_ppm);
	d->cnt.duplicated += v->copies - 1;
	if (d->holding) {
		v->fate = IMPAIR_PASS;
		v->release_held = true;
		d->holding = false;
		d->cnt.reordered++;
		return;
	}
	/* p / (1 - p) among the packets that may be held: P% of all of them */
	uint64_t p = c->reorder_ppm;
	if (p && scale(r_reorder, IMPAIR_PPM) < p * IMPAIR_PPM / (IMPAIR_PPM - p)) {
		v->fate = IMPAIR_HOLD;
		d->holding = true;
		d->hold_deadline = due + (uint64_t)IMPAIR_HOLD_MAX_MS * 1000000;
		return;
	}
	v->fate = IMPAIR_PASS;
}

uint64_t impair_dir_hold_deadline(const struct impair_dir *d)
{
	return d->holding ? d->hold_deadline : UINT64_MAX;
}

uint64_t impair_dir_release_held(struct impair_dir *d, uint64_t now)
{
	d->holding = false;
	if (d->last_due < now)
		d->last_due = now;
	return d->last_due;
}
