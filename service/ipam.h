/* ipam: tunnel addresses inside one VPC's IPv4 prefix. An allocation is always
 * the lowest free host address, never the network or the broadcast address, and
 * a released address is the next one handed out again. Pure and in memory: the
 * store fills it from its devices table and persists every allocation in the
 * same transaction as the device. Memory grows with the highest address in use,
 * not with the prefix, so a /10 costs nothing until it fills. */
#ifndef NATMESH_SVC_IPAM_H
#define NATMESH_SVC_IPAM_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct ipam {
	struct cidr cidr;
	uint64_t *bits;		/* bit i set: host index i is in use */
	size_t nwords;
	uint64_t hint;		/* every index below hint is in use */
	uint64_t used;
};

/* an IPv4 prefix of /30 or longer network part (at least 2 hosts); -EINVAL otherwise */
int ipam_init(struct ipam *ipam, const struct cidr *cidr);
void ipam_fini(struct ipam *ipam);
/* the lowest free host; -ENOSPC when the prefix is full */
int ipam_alloc(struct ipam *ipam, uint64_t *index, union sockaddr_any *addr);
/* marks index used (loading from the store); -ERANGE outside the hosts, -EEXIST if used */
int ipam_reserve(struct ipam *ipam, uint64_t index);
/* -ENOENT if index was not in use */
int ipam_release(struct ipam *ipam, uint64_t index);
/* number of host addresses (the prefix minus network and broadcast) */
uint64_t ipam_capacity(const struct ipam *ipam);

#endif
