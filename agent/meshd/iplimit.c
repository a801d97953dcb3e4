/* iplimit: a token bucket per IP (iplimit.h) */
#include <string.h>

#include "iplimit.h"

static void refill(struct iplimit_slot *s, uint64_t now)
{
	uint64_t t;

	if (now <= s->at)
		return;
	t = s->tokens_milli + (now - s->at) * IPLIMIT_PER_S;
	s->tokens_milli = t > IPLIMIT_BURST * 1000u ? IPLIMIT_BURST * 1000u : (uint32_t)t;
	s->at = now;
}

bool iplimit_allow(struct iplimit *l, const union sockaddr_any *a, uint64_t now)
{
	union sockaddr_any u = *a;
	uint8_t key[16] = { 0 };
	struct iplimit_slot *s = NULL, *roomiest = &l->slot[0];
	const uint8_t *ip;
	size_t n;

	addr_unmap_v4(&u);
	if (u.sa.sa_family != AF_INET && u.sa.sa_family != AF_INET6)
		return false;
	ip = addr_ip_bytes(&u, &n);
	memcpy(key, ip, n == 16 ? 8 : n);
	for (int i = 0; i < IPLIMIT_SLOTS && !s; i++) {
		struct iplimit_slot *c = &l->slot[i];
		if (c->family == u.sa.sa_family && !memcmp(c->key, key, sizeof(key))) {
			s = c;
			break;
		}
		if (!c->family) {
			roomiest = c;
			continue;
		}
		refill(c, now);
		if (roomiest->family && c->tokens_milli > roomiest->tokens_milli)
			roomiest = c;
	}
	if (!s) {
		s = roomiest;
		memcpy(s->key, key, sizeof(key));
		s->family = (uint8_t)u.sa.sa_family;
		s->tokens_milli = IPLIMIT_BURST * 1000u;
		s->at = now;
	}
	refill(s, now);
	if (s->tokens_milli < 1000) {
		l->limited++;
		return false;
	}
	s->tokens_milli -= 1000;
	return true;
}
