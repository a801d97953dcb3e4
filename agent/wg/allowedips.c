/* allowedips: a path-compressed binary trie per address family. A node holds a
 * prefix (bits, cidr); it carries a peer when that prefix was inserted, and is
 * an intermediate branching node otherwise. Children split on the bit right
 * after the node's prefix. Removal keeps the trie compact: an intermediate node
 * never has fewer than two children. */
#include "allowedips.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct node {
	struct node *child[2];
	void *peer;		/* NULL: intermediate */
	uint8_t bits[16];	/* network order, bits past cidr zero */
	uint8_t cidr;
};

struct wg_allowedips {
	struct node *root4;
	struct node *root6;
};

static unsigned bit_at(const uint8_t *addr, unsigned i)
{
	return (addr[i / 8] >> (7 - i % 8)) & 1;
}

/* number of leading bits a and b share, at most max */
static unsigned common_bits(const uint8_t *a, const uint8_t *b, unsigned max)
{
	unsigned n = 0;

	while (n + 8 <= max && a[n / 8] == b[n / 8])
		n += 8;
	if (n < max) {
		uint8_t x = a[n / 8] ^ b[n / 8];
		unsigned same = x ? (unsigned)__builtin_clz((unsigned)x) - 24 : 8;

		n += same;
	}
	return n < max ? n : max;
}

static bool prefix_matches(const struct node *n, const uint8_t *addr)
{
	unsigned full = n->cidr / 8, rest = n->cidr % 8;

	if (memcmp(n->bits, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((n->bits[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static void copy_masked(uint8_t *dst, const uint8_t *addr, unsigned cidr, unsigned bytes)
{
	memset(dst, 0, 16);
	memcpy(dst, addr, bytes);
	for (unsigned i = 0; i < bytes; i++) {
		if (cidr >= 8 * (i + 1))
			continue;
		if (cidr <= 8 * i)
			dst[i] = 0;
		else
			dst[i] &= (uint8_t)(0xff << (8 - (cidr - 8 * i)));
	}
}

static struct node *node_new(const uint8_t *addr, unsigned cidr, unsigned bytes, void *peer)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	copy_masked(n->bits, addr, cidr, bytes);
	n->cidr = (uint8_t)cidr;
	n->peer = peer;
	return n;
}

static void node_free_all(struct node *n)
{
	if (!n)
		return;
	node_free_all(n->child[0]);
	node_free_all(n->child[1]);
	free(n);
}

static int family_params(const struct wg_allowedips *t, int family, struct node ***root,
			 unsigned *bits)
{
	struct wg_allowedips *tt = (struct wg_allowedips *)t;

	if (family == AF_INET) {
		*root = &tt->root4;
		*bits = 32;
	} else if (family == AF_INET6) {
		*root = &tt->root6;
		*bits = 128;
	} else {
		return -EINVAL;
	}
	return 0;
}

struct wg_allowedips *wg_allowedips_new(void)
{
	return calloc(1, sizeof(struct wg_allowedips));
}

void wg_allowedips_free(struct wg_allowedips *t)
{
	if (!t)
		return;
	node_free_all(t->root4);
	node_free_all(t->root6);
	free(t);
}

int wg_allowedips_insert(struct wg_allowedips *t, int family, const uint8_t *addr,
			 uint8_t cidr, void *peer)
{
	struct node **link, *n, *fresh, *split;
	unsigned maxbits, bytes, common;
	uint8_t key[16];

	if (!peer || family_params(t, family, &link, &maxbits) < 0 || cidr > maxbits)
		return -EINVAL;
	bytes = maxbits / 8;
	copy_masked(key, addr, cidr, bytes);

	while ((n = *link)) {
		common = common_bits(n->bits, key, n->cidr < cidr ? n->cidr : cidr);
		if (common == n->cidr && n->cidr == cidr) {
			n->peer = peer;		/* same prefix: it moves to this peer */
			return 0;
		}
		if (common == n->cidr) {	/* n is a shorter prefix of key: descend */
			link = &n->child[bit_at(key, n->cidr)];
			continue;
		}
		fresh = node_new(key, cidr, bytes, peer);
		if (!fresh)
			return -ENOMEM;
		if (common == cidr) {		/* key is a shorter prefix of n: put it above */
			fresh->child[bit_at(n->bits, cidr)] = n;
			*link = fresh;
			return 0;
		}
		/* they diverge at bit `common`: branch there */
		split = node_new(key, common, bytes, NULL);
		if (!split) {
			free(fresh);
			return -ENOMEM;
		}
		split->child[bit_at(key, common)] = fresh;
		split->child[bit_at(n->bits, common)] = n;
		*link = split;
		return 0;
	}
	*link = node_new(key, cidr, bytes, peer);
	return *link ? 0 : -ENOMEM;
}

/* an intermediate node with fewer than two children has no reason to exist */
static void compact(struct node **link)
{
	struct node *n = *link;

	if (!n || n->peer || (n->child[0] && n->child[1]))
		return;
	*link = n->child[0] ? n->child[0] : n->child[1];
	free(n);
}

int wg_allowedips_remove(struct wg_allowedips *t, int family, const uint8_t *addr,
			 uint8_t cidr, void *peer)
{
	struct node **path[129 + 1];
	struct node **link, *n;
	unsigned maxbits, depth = 0;
	uint8_t key[16];

	if (family_params(t, family, &link, &maxbits) < 0 || cidr > maxbits)
		return -EINVAL;
	copy_masked(key, addr, cidr, maxbits / 8);
	while ((n = *link) && n->cidr <= cidr && prefix_matches(n, key)) {
		path[depth++] = link;
		if (n->cidr == cidr)
			break;
		link = &n->child[bit_at(key, n->cidr)];
	}
	if (!n || n->cidr != cidr || !n->peer || !prefix_matches(n, key) ||
	    (peer && n->peer != peer))
		return -ENOENT;
	n->peer = NULL;
	/* compact from the removed node up: removing a leaf may leave its
	 * intermediate parent with one child */
	while (depth--)
		compact(path[depth]);
	return 0;
}

static size_t remove_peer_rec(struct node **link, void *peer)
{
	struct node *n = *link;
	size_t removed = 0;

	if (!n)
		return 0;
	removed += remove_peer_rec(&n->child[0], peer);
	removed += remove_peer_rec(&n->child[1], peer);
	if (n->peer == peer) {
		n->peer = NULL;
		removed++;
	}
	compact(link);
	return removed;
}

size_t wg_allowedips_remove_peer(struct wg_allowedips *t, void *peer)
{
	if (!peer)
		return 0;
	return remove_peer_rec(&t->root4, peer) + remove_peer_rec(&t->root6, peer);
}

void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *addr)
{
	const struct node *n;
	void *best = NULL;
	unsigned maxbits;

	if (family == AF_INET) {
		n = t->root4;
		maxbits = 32;
	} else if (family == AF_INET6) {
		n = t->root6;
		maxbits = 128;
	} else {
		return NULL;
	}
	while (n && prefix_matches(n, addr)) {
		if (n->peer)
			best = n->peer;
		if (n->cidr == maxbits)
			break;
		n = n->child[bit_at(addr, n->cidr)];
	}
	return best;
}

static void *lookup_pkt(const struct wg_allowedips *t, const uint8_t *pkt, size_t len,
			bool dst)
{
	if (len >= 20 && pkt[0] >> 4 == 4)
		return wg_allowedips_lookup(t, AF_INET, pkt + (dst ? 16 : 12));
	if (len >= 40 && pkt[0] >> 4 == 6)
		return wg_allowedips_lookup(t, AF_INET6, pkt + (dst ? 24 : 8));
	return NULL;
}

void *wg_allowedips_lookup_dst(const struct wg_allowedips *t, const uint8_t *pkt, size_t len)
{
	return lookup_pkt(t, pkt, len, true);
}

void *wg_allowedips_lookup_src(const struct wg_allowedips *t, const uint8_t *pkt, size_t len)
{
	return lookup_pkt(t, pkt, len, false);
}

static int walk_rec(const struct node *n, void *peer, int family,
		    wg_allowedips_walk_fn fn, void *ctx)
{
	int rc;

	if (!n)
		return 0;
	if (n->peer && (!peer || n->peer == peer)) {
		rc = fn(ctx, n->peer, family, n->bits, n->cidr);
		if (rc)
			return rc;
	}
	rc = walk_rec(n->child[0], peer, family, fn, ctx);
	return rc ? rc : walk_rec(n->child[1], peer, family, fn, ctx);
}

int wg_allowedips_walk(const struct wg_allowedips *t, void *peer,
		       wg_allowedips_walk_fn fn, void *ctx)
{
	int rc = walk_rec(t->root4, peer, AF_INET, fn, ctx);

	return rc ? rc : walk_rec(t->root6, peer, AF_INET6, fn, ctx);
}

static int count_one(void *ctx, void *peer, int family, const uint8_t *addr, uint8_t cidr)
{
	(void)peer, (void)family, (void)addr, (void)cidr;
	++*(size_t *)ctx;
	return 0;
}

size_t wg_allowedips_count(const struct wg_allowedips *t, void *peer)
{
	size_t n = 0;

	wg_allowedips_walk(t, peer, count_one, &n);
	return n;
}
