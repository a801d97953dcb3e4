#include "challenge.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct challenge {
	bool live;
	int64_t expires_ms;
	uint8_t nonce[KEYPROOF_CHALLENGE_BYTES];
	uint8_t device_pub[KEYPROOF_KEY_BYTES];
	uint8_t service_pub[KEYPROOF_KEY_BYTES];
	uint8_t service_priv[KEYPROOF_KEY_BYTES];
	char regkey_id[UUID_STRLEN];
};

/* a ring in the order of issue: slots [head, head + n) are in use (live, or
 * used and waiting to leave the front) */
struct challenge_table {
	unsigned max, head, n;
	int64_t ttl_ms;
	struct challenge_stats stats;
	struct challenge slot[];
};

int challenge_table_new(unsigned max, int64_t ttl_ms, struct challenge_table **out)
{
	struct challenge_table *t;

	*out = NULL;
	if (!max)
		max = CHALLENGE_MAX_DEFAULT;
	if (!(t = calloc(1, sizeof(*t) + (size_t)max * sizeof(t->slot[0]))))
		return -ENOMEM;
	t->max = max;
	t->ttl_ms = ttl_ms;
	*out = t;
	return 0;
}

void challenge_table_free(struct challenge_table *t)
{
	if (!t)
		return;
	sodium_memzero(t, sizeof(*t) + (size_t)t->max * sizeof(t->slot[0]));
	free(t);
}

static void forget(struct challenge_table *t, struct challenge *c)
{
	if (c->live)
		t->stats.live--;
	sodium_memzero(c, sizeof(*c));
}

/* the front leaves while it is used or expired: expiry follows issue order */
static void trim(struct challenge_table *t, int64_t now_ms)
{
	while (t->n) {
		struct challenge *c = &t->slot[t->head];
		if (c->live && c->expires_ms > now_ms)
			break;
		if (c->live)
			t->stats.expired++;
		forget(t, c);
		t->head = (t->head + 1) % t->max;
		t->n--;
	}
}

void challenge_issue(struct challenge_table *t, const uint8_t device_pub[KEYPROOF_KEY_BYTES],
		     const char *regkey_id, int64_t now_ms, uint8_t nonce[KEYPROOF_CHALLENGE_BYTES],
		     uint8_t service_pub[KEYPROOF_KEY_BYTES])
{
	struct challenge *c;

	trim(t, now_ms);
	if (t->n == t->max) {
		/* the oldest goes for the newest: counted, and its device asks again */
		forget(t, &t->slot[t->head]);
		t->stats.evicted++;
		t->head = (t->head + 1) % t->max;
		t->n--;
	}
	c = &t->slot[(t->head + t->n) % t->max];
	t->n++;
	c->live = true;
	c->expires_ms = now_ms + t->ttl_ms;
	randombytes_buf(c->nonce, sizeof(c->nonce));
	crypto_box_keypair(c->service_pub, c->service_priv);
	memcpy(c->device_pub, device_pub, KEYPROOF_KEY_BYTES);
	snprintf(c->regkey_id, sizeof(c->regkey_id), "%s", regkey_id);
	memcpy(nonce, c->nonce, KEYPROOF_CHALLENGE_BYTES);
	memcpy(service_pub, c->service_pub, KEYPROOF_KEY_BYTES);
	t->stats.live++;
	t->stats.issued++;
}

static struct challenge *find(struct challenge_table *t, const uint8_t nonce[KEYPROOF_CHALLENGE_BYTES])
{
	/* at most max (4096) compares of 32 bytes: microseconds, for a rare request */
	for (unsigned i = 0; i < t->n; i++) {
		struct challenge *c = &t->slot[(t->head + i) % t->max];
		if (c->live && !memcmp(c->nonce, nonce, KEYPROOF_CHALLENGE_BYTES))
			return c;
	}
	return NULL;
}

static int verdict(const struct challenge *c, const uint8_t device_pub[KEYPROOF_KEY_BYTES],
		   const char *regkey_id, const uint8_t mac[KEYPROOF_MAC_BYTES], int64_t now_ms)
{
	uint8_t want[KEYPROOF_MAC_BYTES];
	int rc;

	if (c->expires_ms <= now_ms)
		return -ETIMEDOUT;
	if (memcmp(c->device_pub, device_pub, KEYPROOF_KEY_BYTES) || strcmp(c->regkey_id, regkey_id))
		return -EXDEV;
	if (keyproof_mac(c->service_priv, device_pub, device_pub, c->service_pub, c->nonce, want) < 0)
		return -EBADMSG;
	rc = sodium_memcmp(want, mac, KEYPROOF_MAC_BYTES) == 0 ? 0 : -EBADMSG;
	sodium_memzero(want, sizeof(want));
	return rc;
}

int challenge_take(struct challenge_table *t, const uint8_t nonce[KEYPROOF_CHALLENGE_BYTES],
		   const uint8_t device_pub[KEYPROOF_KEY_BYTES], const char *regkey_id,
		   const uint8_t mac[KEYPROOF_MAC_BYTES], int64_t now_ms)
{
	struct challenge *c = find(t, nonce);
	int rc;

	if (!c) {
		t->stats.refused++;
		trim(t, now_ms);
		return -ENOENT;
	}
	rc = verdict(c, device_pub, regkey_id, mac, now_ms);
	if (rc == -ETIMEDOUT)
		t->stats.expired++;
	/* used, whatever the answer: one guess per challenge */
	forget(t, c);
	if (rc < 0)
		t->stats.refused++;
	else
		t->stats.accepted++;
	trim(t, now_ms);
	return rc;
}

void challenge_stats(const struct challenge_table *t, struct challenge_stats *out)
{
	*out = t->stats;
}

int64_t challenge_ttl_ms(const struct challenge_table *t)
{
	return t->ttl_ms;
}
