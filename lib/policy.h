/* policy: security-group rules, the one rule engine of natmesh (issue 16).
 * The service validates and stores groups with it and decides which peers a
 * device may learn of (policy_visible); the agent renders its own group into
 * nftables and a relay decides per inner packet (policy_allows).
 *
 * A group has inbound and outbound rules; rules only permit. A rule names a
 * protocol ("any", "ipv4", "ipv6", "tcp", "udp", "icmp"), a destination port
 * range (tcp and udp only; 0-0 means every port) and the peer side: CIDRs or
 * "A-B" address ranges in `ip_ranges`, and groups in `groups` (by id once the
 * service stored them). The peer of an inbound rule is the packet's source,
 * of an outbound rule its destination. A rule with neither ranges nor groups
 * matches any peer; a rule naming only an empty group matches none. The
 * service sends an agent its group with each named group resolved into
 * `group_addresses` (the members' tunnel addresses); the agent matches those.
 *
 * A packet from A to B is allowed when a rule of A's group's outbound rules
 * and a rule of B's group's inbound rules both match it. Pure functions, no
 * I/O; parsing errors name the field ("inbound_rules[2].to_port: ..."). */
#ifndef NATMESH_POLICY_H
#define NATMESH_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_RULES 256		/* per direction */
#define POLICY_MAX_RANGES 64		/* ip_ranges per rule */
#define POLICY_MAX_GROUPS 64		/* groups per rule */
#define POLICY_MAX_MEMBERS 65536	/* group_addresses per rule */
#define POLICY_ID_MAX 64		/* a group id or name, with the NUL */
#define POLICY_ERR_MAX 256

enum policy_proto {
	POLICY_ANY,
	POLICY_IPV4,
	POLICY_IPV6,
	POLICY_TCP,
	POLICY_UDP,
	POLICY_ICMP,
};

/* inclusive; both of one family; 4 bytes used for IPv4 */
struct policy_range {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t lo[16], hi[16];
};

struct policy_rule {
	enum policy_proto proto;
	uint16_t from_port, to_port;		/* tcp/udp; 0-0 = every port */
	struct policy_range *ranges;		/* ip_ranges */
	size_t nranges;
	char (*groups)[POLICY_ID_MAX];		/* groups, as written */
	size_t ngroups;
	struct policy_range *members;		/* group_addresses (resolved) */
	size_t nmembers;
};

struct policy_group {
	char id[POLICY_ID_MAX];
	char name[POLICY_ID_MAX];
	int64_t revision;
	struct policy_rule *in, *out;
	size_t nin, nout;
};

/* one endpoint of a packet or a device: its addresses and its group */
struct policy_peer {
	int naddr;
	struct {
		int family;
		uint8_t a[16];
	} addr[2];
	const char *group_id;		/* NULL: none known */
};

/* parse flags */
#define POLICY_PARSE_RESOLVED 1u	/* accept `group_addresses` (the service's answer) */

/* One rule. `where` prefixes errors ("inbound_rules[3]"). 0 or -EINVAL with
 * err set. On success the caller frees with policy_rule_free. */
int policy_rule_parse(const json_t *j, unsigned flags, const char *where,
		      struct policy_rule *out, char *err, size_t errlen);
void policy_rule_free(struct policy_rule *r);
/* a group object: inbound_rules and outbound_rules (absent = none), id, name
 * and revision when present; unknown keys are ignored (they belong to the
 * service: description, vpc_id). */
int policy_group_parse(const json_t *j, unsigned flags, struct policy_group *out,
		       char *err, size_t errlen);
void policy_group_free(struct policy_group *g);
/* the group that allows everything both ways (a VPC's default group) */
int policy_group_allow_all(struct policy_group *out);
/* a rule back to JSON, as policy_rule_parse reads it (ranges normalised:
 * "A/len" when a prefix, "A-B" otherwise, "A" for a single address) */
json_t *policy_rule_json(const struct policy_rule *r, bool resolved);

/* "tcp" -> POLICY_TCP; -EINVAL for anything else */
int policy_proto_parse(const char *s, enum policy_proto *out);
const char *policy_proto_name(enum policy_proto p);
/* "10.0.0.0/8", "fd00::1", "10.0.0.1-10.0.0.9"; 0 or -EINVAL with err */
int policy_range_parse(const char *s, struct policy_range *out, char *err, size_t errlen);
const char *policy_range_format(const struct policy_range *r, char *buf, size_t len);
bool policy_range_contains(const struct policy_range *r, int family, const uint8_t *a);

/* does rule r match a packet with this peer (its source for an inbound rule,
 * its destination for outbound), IP protocol (IPPROTO_*) and destination
 * port (ignored unless tcp/udp)? */
bool policy_rule_match(const struct policy_rule *r, const struct policy_peer *peer,
		       int family, uint8_t ipproto, uint16_t dport);
/* index of the first rule of rules[n] matching, or -1 */
int policy_rules_match(const struct policy_rule *rules, size_t n, const struct policy_peer *peer,
		       int family, uint8_t ipproto, uint16_t dport);
/* a packet from src (in group gs) to dst (in group gd): both groups allow it */
bool policy_allows(const struct policy_group *gs, const struct policy_peer *src,
		   const struct policy_group *gd, const struct policy_peer *dst,
		   int family, uint8_t ipproto, uint16_t dport);
/* may a and b learn of each other: does some packet exist, in either
 * direction, that both groups allow? (over their addresses of one family;
 * protocols and port ranges intersected) */
bool policy_visible(const struct policy_group *ga, const struct policy_peer *a,
		    const struct policy_group *gb, const struct policy_peer *b);

#endif
