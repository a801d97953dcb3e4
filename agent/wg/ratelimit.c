#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* kernel ratelimiter.c: tokens are nanoseconds of credit */
#define PACKET_COST (WG_NSEC_PER_SEC / WG_RATELIMIT_PACKETS_PER_SECOND)
#define TOKEN_MAX (PACKET_COST * WG_RATELIMIT_PACKETS_BURSTABLE)
#define BUCKETS 4096
#define MAX_ENTRIES 65536
#define GC_INTERVAL_NS WG_NSEC_PER_SEC

struct rl_entry {
	struct rl_entry *next;
	uint8_t key[17];	/* family byte, then 4 or 8 address bytes */
	uint64_t last_ns;
	uint64_t tokens;
};

struct wg_ratelimit {
	struct rl_entry *table[BUCKETS];
	size_t entries;
	uint64_t last_gc_ns;
	uint32_t hash_seed;
	/* load detection */
	uint64_t window_start_ns;
	unsigned window_count;
	uint64_t last_under_load_ns;
	bool ever_under_load;
};

int wg_ratelimit_new(struct wg_ratelimit **out)
{
	struct wg_ratelimit *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r)
		return -ENOMEM;
	r->hash_seed = (uint32_t)random() | 1;
	*out = r;
	return 0;
}

void wg_ratelimit_free(struct wg_ratelimit *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		struct rl_entry *e = r->table[i];
		while (e) {
			struct rl_entry *n = e->next;
			free(e);
			e = n;
		}
	}
	free(r);
}

bool wg_ratelimit_under_load(struct wg_ratelimit *r, uint64_t now_ns)
{
	if (now_ns - r->window_start_ns >= WG_LOAD_WINDOW_NS) {
		r->window_start_ns = now_ns;
		r->window_count = 0;
	}
	if (++r->window_count > WG_LOAD_THRESHOLD) {
		r->last_under_load_ns = now_ns;
		r->ever_under_load = true;
		return true;
	}
	return r->ever_under_load && now_ns - r->last_under_load_ns < WG_LOAD_HOLD_NS;
}

/* an IPv4 source by its address, an IPv6 source by its /64 (one host owns a /64) */
static size_t make_key(const union sockaddr_any *src, uint8_t key[17])
{
	size_t n;
	const uint8_t *ip = addr_ip_bytes(src, &n);
	if (n == 16)
		n = 8;
	key[0] = (uint8_t)src->sa.sa_family;
	memcpy(key + 1, ip, n);
	memset(key + 1 + n, 0, 16 - n);
	return 1 + n;
}

static uint32_t hash(const struct wg_ratelimit *r, const uint8_t *key, size_t n)
{
	uint32_t h = 2166136261u ^ r->hash_seed;
	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static void gc(struct wg_ratelimit *r, uint64_t now_ns)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		struct rl_entry **pp = &r->table[i];
		while (*pp) {
			struct rl_entry *e = *pp;
			if (now_ns - e->last_ns > GC_INTERVAL_NS) {
				*pp = e->next;
				free(e);
				r->entries--;
			} else {
				pp = &e->next;
			}
		}
	}
	r->last_gc_ns = now_ns;
}

bool wg_ratelimit_allow(struct wg_ratelimit *r, const union sockaddr_any *src, uint64_t now_ns)
{
	uint8_t key[17];
	size_t n = make_key(src, key);
	struct rl_entry **head, *e;

	if (now_ns - r->last_gc_ns > GC_INTERVAL_NS)
		gc(r, now_ns);
	head = &r->table[hash(r, key, n) % BUCKETS];
	for (e = *head; e; e = e->next) {
		if (!memcmp(e->key, key, sizeof(key))) {
			uint64_t tokens = e->tokens + (now_ns - e->last_ns);
			e->last_ns = now_ns;
			e->tokens = tokens > TOKEN_MAX ? TOKEN_MAX : tokens;
			if (e->tokens < PACKET_COST)
				return false;
			e->tokens -= PACKET_COST;
			return true;
		}
	}
	/* a full table refuses new sources rather than growing without bound */
	if (r->entries >= MAX_ENTRIES)
		return false;
	e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	memcpy(e->key, key, sizeof(key));
	e->last_ns = now_ns;
	e->tokens = TOKEN_MAX - PACKET_COST;
	e->next = *head;
	*head = e;
	r->entries++;
	return true;
}

size_t wg_ratelimit_entries(const struct wg_ratelimit *r)
{
	return r->entries;
}
