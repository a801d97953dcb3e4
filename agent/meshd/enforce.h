/* enforce: security groups enforced by meshd (issue 16).
 *
 * On every host, this device's group is the nftables table `inet natmesh`
 * (policy_nft.h): installed before the TUN carries traffic (the group kept
 * in the state dir from the last run, else no permit rule at all), replaced
 * in one batch whenever the service sends a different group, removed when
 * meshd stops. A service that sends no group (one from before security
 * groups) gets the group that allows everything, logged once.
 *
 * On a relay, every inner packet it forwards from one peer to another is
 * checked with lib/policy (policy_allows) against the two devices' groups,
 * which the service sends a relay ("security_groups", "security_group_id"
 * per device); see relay_allows below for what passes without a rule. */
#ifndef NATMESH_MESHD_ENFORCE_H
#define NATMESH_MESHD_ENFORCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "policy_nft.h"

/* a relay's view: its peers' tunnel addresses (IPv4, host order) and the
 * index of each one's group in groups[] (-1: unknown group) */
struct enforce_ip {
	uint32_t ip;
	int32_t group;
};

/* A relay's decisions for TCP and UDP flows, remembered (direct-mapped,
 * ENFORCE_CACHE entries): a group of 256 rules of 64 ranges costs thousands
 * of comparisons per packet, a flow's next packets one lookup. Emptied (a
 * new generation) whenever the groups or the peers change. */
#define ENFORCE_CACHE 4096

struct enforce_flow {
	uint32_t src, dst;	/* network order */
	uint16_t sport, dport;
	uint8_t proto, syn;
	bool allow;
	uint32_t gen;		/* 0: empty */
};

struct enforce {
	bool installed;			/* our table is in the kernel */
	struct policy_nft *plan;	/* what it holds, NULL: unknown (policy_nft.h) */
	bool absent;			/* the service sent no group: allow all */
	bool absent_logged;
	json_t *applied;		/* the group object applied (NULL: none, or absent) */
	const char *source;		/* "none", "saved", "service", "absent" */
	struct policy_group group;	/* what the table holds */
	bool has_group;
	uint64_t applies, apply_errors;
	double last_apply_ms;

	/* --relay */
	json_t *relay_json;		/* the VPC's groups as sent, NULL: none */
	struct policy_group *groups;
	size_t ngroups;
	struct enforce_ip *ips;		/* sorted by ip */
	size_t nips;
	uint64_t relay_policy_drops;
	uint64_t relay_unknown_group;	/* of those: a device whose group is unknown */
	struct enforce_flow *cache;	/* ENFORCE_CACHE entries, NULL until needed */
	uint32_t gen;
	uint64_t cache_hits;
};

struct meshd;

/* installs the table (or, with --no-policy, nothing); 0 or a negative
 * errno, logged with the fix */
int enforce_start(struct meshd *m);
/* removes the table */
void enforce_stop(struct meshd *m);
/* what a registration or peer-list answer said (svcjson_policy(), NULL:
 * nothing): this device's group applied when it changed; on a relay the
 * VPC's groups and the peers' (after peers_sync) taken over */
void enforce_update(struct meshd *m, const json_t *policy);
/* --relay: the VPC's groups (the answer's "security_groups") and the peers'
 * (after peers_sync) taken over; enforce_update does this on a relay */
void enforce_relay_update(struct meshd *m, const json_t *policy);
/* --relay: may this decrypted IPv4 packet for another peer be forwarded? */
bool enforce_relay_allows(struct meshd *m, const uint8_t *ip, size_t len);
/* status: the group, its rules with their counters, the drops */
json_t *enforce_status_json(const struct meshd *m);

/* The decision of a relay, pure (for the tests): may a packet from src (its
 * group gs) to dst (gd) pass, given its IPv4 header and what follows? Passes
 * when both groups allow it (policy_allows), and also, since the relay keeps
 * no connection state and the end hosts do: a TCP segment other than an
 * opening SYN or a UDP datagram whose reverse (dst to src, to its source
 * port) both groups allow (the replies of an allowed flow), ICMP echo
 * replies and errors (destination unreachable, time exceeded, parameter
 * problem), and meshctl ping's echo request. */
bool enforce_relay_decide(const struct policy_group *gs, const struct policy_peer *src,
			  const struct policy_group *gd, const struct policy_peer *dst,
			  const uint8_t *ip, size_t len);

#endif
