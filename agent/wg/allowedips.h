/* allowedips: the cryptokey routing table (whitepaper 2): IPv4 and IPv6
 * prefixes mapped to an opaque peer pointer, looked up by longest prefix
 * match. Outgoing packets pick their peer by destination address; incoming
 * packets are accepted only when their source address maps back to the peer
 * whose session decrypted them. One path-compressed binary trie per family.
 * Not synchronised: writers exclude readers (the device holds a rwlock).
 * Lookups do not allocate. */
#ifndef NATMESH_WG_ALLOWEDIPS_H
#define NATMESH_WG_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

struct wg_allowedips;

struct wg_allowedips *wg_allowedips_new(void);
/* frees the nodes; peers are not touched. NULL is a no-op. */
void wg_allowedips_free(struct wg_allowedips *t);

/* Map family (AF_INET, AF_INET6) addr/cidr to peer. Host bits of addr beyond
 * cidr are ignored (masked off), as `wg` does. An existing equal prefix is
 * moved to the new peer. 0, -EINVAL (family, cidr > 32/128, peer NULL) or -ENOMEM. */
int wg_allowedips_insert(struct wg_allowedips *t, int family, const uint8_t *addr,
			 uint8_t cidr, void *peer);
/* Remove exactly addr/cidr, whoever has it; peer, when not NULL, must match.
 * 0 or -ENOENT. */
int wg_allowedips_remove(struct wg_allowedips *t, int family, const uint8_t *addr,
			 uint8_t cidr, void *peer);
/* Remove every prefix of peer. Returns how many were removed. */
size_t wg_allowedips_remove_peer(struct wg_allowedips *t, void *peer);
/* The peer of the longest prefix containing addr (4 or 16 bytes, network
 * order), or NULL. */
void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *addr);
/* The same keyed by an IP packet's destination / source address; the version
 * nibble picks the family. NULL for a packet too short or of another version. */
void *wg_allowedips_lookup_dst(const struct wg_allowedips *t, const uint8_t *pkt, size_t len);
void *wg_allowedips_lookup_src(const struct wg_allowedips *t, const uint8_t *pkt, size_t len);

/* Called once per prefix; addr has 4 or 16 bytes with host bits zero. A
 * non-zero return stops the walk and is returned by the walk function. The
 * callback must not modify the table. */
typedef int (*wg_allowedips_walk_fn)(void *ctx, void *peer, int family,
				     const uint8_t *addr, uint8_t cidr);
/* every prefix of peer (all prefixes when peer is NULL), IPv4 first, each
 * family in address order */
int wg_allowedips_walk(const struct wg_allowedips *t, void *peer,
		       wg_allowedips_walk_fn fn, void *ctx);
/* number of prefixes of peer (all when NULL) */
size_t wg_allowedips_count(const struct wg_allowedips *t, void *peer);

#endif
