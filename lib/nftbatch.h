/* nftbatch: nftables objects collected in order and sent to the kernel over
 * libmnl as one batch, which the kernel applies as one transaction (all or
 * nothing). The batch code that nat-models' NAT rulesets and meshd's
 * security groups (agent/meshd/policy_nft.c) share: each builds its objects
 * with libnftnl, pushes them here, and commits or describes them.
 *
 * Objects are libnftnl's (table, chain, set, object, rule), which the batch
 * owns once pushed, or raw messages whose attributes a callback writes
 * straight into the batch (set elements by the ten thousand, where an nftnl
 * object per element would cost more than the kernel's work). Messages ask
 * for no acknowledgement: the kernel answers only what it refuses, and the
 * first refusal is reported with the object it was about ("netlink: add rule
 * inbound: No such file or directory: ..." with the kernel's extended ack). */
#ifndef NATMESH_NFTBATCH_H
#define NATMESH_NFTBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "vec.h"

struct nlmsghdr;

enum nftb_kind { NFTB_TABLE, NFTB_CHAIN, NFTB_SET, NFTB_OBJ, NFTB_RULE, NFTB_RAW };

struct nftb_item {
	uint16_t msg;		/* NFT_MSG_NEWTABLE, ... */
	uint16_t flags;		/* NLM_F_CREATE, NLM_F_EXCL, NLM_F_APPEND */
	uint16_t family;	/* NFPROTO_IPV4, NFPROTO_INET, ... */
	enum nftb_kind kind;
	void *obj;		/* the nftnl object; NFTB_RAW: the callback's, freed with free() */
	size_t size;		/* the most bytes its message takes */
	/* NFTB_RAW */
	void (*payload)(struct nlmsghdr *nlh, const void *obj);
	const char *name;	/* what the object is about, in errors (inside obj) */
};

struct nftb {
	struct vec items;	/* struct nftb_item */
	int error;		/* the first failure while building: -ENOMEM, -ENOSPC */
	size_t bytes;		/* the sum of the items' sizes */
};

/* max: the most items the batch may hold (reaching it is -ENOSPC) */
void nftb_init(struct nftb *b, size_t max, const char *what);
/* frees every object pushed; b stays usable, empty */
void nftb_free(struct nftb *b);
/* obj is the batch's from now on, also on failure; NULL obj records -ENOMEM */
void nftb_push(struct nftb *b, uint16_t msg, uint16_t flags, uint16_t family, enum nftb_kind kind, void *obj);
void nftb_push_raw(struct nftb *b, uint16_t msg, uint16_t flags, uint16_t family, void *obj, const char *name,
		   size_t size, void (*payload)(struct nlmsghdr *nlh, const void *obj));
/* records the first failure of building (a later commit refuses) */
void nftb_failed(struct nftb *b, int rc);

static inline size_t nftb_len(const struct nftb *b)
{
	return b->items.len;
}

static inline const struct nftb_item *nftb_item(const struct nftb *b, size_t i)
{
	return vec_at(&b->items, i);
}

/* Sends the batch; 0 or a negative errno with err saying what failed (the
 * building, the socket, or the kernel's refusal of one object). */
int nftb_commit(const struct nftb *b, char *err, size_t errlen);
/* every object in nftnl's text form, one per line ("add rule: ..."), for
 * tests and debugging; malloc'ed, NULL on ENOMEM */
char *nftb_describe(const struct nftb *b);

#endif
