/* policy_nft_plan: what policy_nft.c renders a group into and
 * policy_nft_batch.c sends (private to the two: see policy_nft.h) */
#ifndef NATMESH_MESHD_POLICY_NFT_PLAN_H
#define NATMESH_MESHD_POLICY_NFT_PLAN_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy.h"

enum pn_kind { PN_JUMP, PN_CT, PN_ECHO_REPLY, PN_PROBE, PN_PERMIT, PN_DROP };

/* one nftables rule of the plan */
struct pn_rule {
	const char *chain;
	enum pn_kind kind;
	int family;		/* 0: both */
	uint8_t l4;		/* 0: any */
	uint16_t plo, phi;	/* both 0: every port */
	bool peer_src;		/* the set matches the source (inbound) */
	bool oif;		/* PN_JUMP: oifname, else iifname */
	const char *target;	/* PN_JUMP */
	size_t set_off, nset;	/* merged ranges in pool; nset 0: any peer */
	char comment[32];
	char set[40];		/* its named set: "inbound_rules_3_v4" */
};

struct policy_nft {
	char ifname[IFNAMSIZ];
	struct pn_rule *rules;
	size_t nrules, caprules;
	struct policy_range *pool;
	size_t npool, cappool;
	int error;
};

static inline int pn_alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* a + 1 in place (big-endian, n bytes); false when it wraps */
static inline bool pn_addr_inc(uint8_t *a, int n)
{
	for (int i = n - 1; i >= 0; i--)
		if (++a[i] != 0)
			return true;
	return false;
}

#endif
