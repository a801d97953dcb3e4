/* policy_nft: this device's security group (lib/policy.h) rendered into the
 * nftables table `inet natmesh` with libnftnl and sent over libmnl as one
 * atomic batch that replaces the table (issue 16, enforcement in meshd).
 *
 * Packets that arrive from the mesh interface (to this host, or forwarded
 * through it) go through the group's inbound rules, packets this host sends
 * or forwards into it through the outbound rules; the peer of an inbound
 * rule is the source address, of an outbound rule the destination. The
 * renderer makes a plan of rules once and emits it twice: as libnftnl
 * objects for the kernel and as `nft -f` text, which the unit tests compare
 * and `nft list table inet natmesh` shows an administrator. Everything the
 * agent itself needs on the tunnel (replies of allowed flows, ICMP echo
 * replies, meshctl ping's echo request) is accepted before the rules. */
#ifndef NATMESH_MESHD_POLICY_NFT_H
#define NATMESH_MESHD_POLICY_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define POLICY_NFT_TABLE "natmesh"	/* family inet */
#define POLICY_NFT_ERR_MAX 512

/* meshctl ping's echo request carries these 16 bytes after the ICMP header
 * (ping.c); the peer accepts it whatever its rules say */
#define POLICY_PROBE_DATA "natmesh meshctl!"
#define POLICY_PROBE_LEN 16

struct policy_nft;

/* The ruleset for group g on interface ifname; g NULL: no permit rules (only
 * established/related replies, echo replies and the probe pass: what is
 * installed before the service answers). 0, -EINVAL (ifname) or -ENOMEM. */
int policy_nft_render(const struct policy_group *g, const char *ifname, struct policy_nft **out);
void policy_nft_free(struct policy_nft *r);
/* the same ruleset as `nft -f` input (delete-and-create in one file when
 * replace is true, which nft applies as one transaction); malloc'ed */
char *policy_nft_text(const struct policy_nft *r, bool replace);
/* the number of nftables rules in the inbound and outbound chains */
size_t policy_nft_rule_count(const struct policy_nft *r);

/* Sends the ruleset as one batch that replaces any earlier table. 0 or a
 * negative errno with err naming the object the kernel refused. */
int policy_nft_commit(const struct policy_nft *r, char *err, size_t errlen);
/* The same, for a table that holds old (committed before, and not touched
 * since): one batch that replaces the rules of the inbound and outbound
 * chains and only the sets whose elements changed. A change of one rule of
 * a large group costs a fraction of policy_nft_commit. On failure nothing
 * changed (the caller may commit the whole ruleset instead); old NULL or of
 * another interface: policy_nft_commit. */
int policy_nft_commit_change(const struct policy_nft *old, const struct policy_nft *r, char *err, size_t errlen);
/* deletes the table; 0, -ENOENT when there was none, or another error */
int policy_nft_remove(char *err, size_t errlen);

/* What the counters of the table say (policy_nft_counters): packets that
 * each rule of the group let through (index as in the group, the family
 * rules of one rule summed) and the final drops per direction. */
struct policy_nft_counters {
	uint64_t in_drop_pkts, out_drop_pkts;
	uint64_t in_drop_bytes, out_drop_bytes;
	uint64_t *in_pkts, *out_pkts;	/* [nin], [nout] of the group rendered */
	size_t nin, nout;
};
/* reads them from the kernel; nin/nout size the per-rule arrays (the
 * group's rule counts); 0 or a negative errno */
int policy_nft_counters(size_t nin, size_t nout, struct policy_nft_counters *out);
void policy_nft_counters_free(struct policy_nft_counters *c);

#endif
