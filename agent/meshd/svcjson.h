/* svcjson: the JSON that meshd exchanges with meshsvc (issue 4's field names),
 * pure: request bodies built from what the agent knows, and answers checked
 * field by field into fixed structs. A device entry with a bad field is
 * refused with the field and the reason, so the caller logs it and skips that
 * entry, never the whole answer. */
#ifndef NATMESH_MESHD_SVCJSON_H
#define NATMESH_MESHD_SVCJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wire.h"

#define SVC_ID_MAX 64			/* room for the service's ids (UUIDs) */
#define SVC_HOSTNAME_MAX WIRE_HOSTNAME_MAX
#define SVC_SOURCE_MAX WIRE_SOURCE_MAX
#define SVC_MAX_ENDPOINTS WIRE_ENDPOINTS_MAX
#define SVC_KEY_LEN WIRE_KEY_BYTES
#define SVC_KEY_B64LEN WIRE_KEY_B64LEN
#define SVC_SEALED_MAX 256
/* issue 15 point 6: what the agent takes from the service at most */
#define SVC_VPC_PREFIX_MIN 8		/* a VPC shorter than /8 is no VPC but a route grab */
#define SVC_DEVICES_MAX 16384		/* devices (and deleted ids) in one peer list answer */

struct svc_endpoint {
	char source[SVC_SOURCE_MAX];	/* "local", "relay", "stun:HOST:PORT" */
	union sockaddr_any addr;
};

enum svc_nat_tri { SVC_NAT_TRI_UNKNOWN, SVC_NAT_TRI_YES, SVC_NAT_TRI_NO };

/* one address family's findings (RFC 4787 behaviours, wire.h; WIRE_DEP_UNKNOWN
 * when not found): only what was found is sent */
struct svc_nat {
	enum wire_dep mapping, filtering;
	enum svc_nat_tri hairpinning;
};

/* the families NAT discovery runs in, and the `nat` object's member for each */
enum svc_family { SVC_FAM_IPV4, SVC_FAM_IPV6, SVC_FAMILIES };

/* what the agent reports about itself */
struct svc_report {
	struct svc_endpoint ep[SVC_MAX_ENDPOINTS];
	int nep;
	bool symmetric_nat;
	struct svc_nat nat[SVC_FAMILIES];	/* per family, enum svc_family */
	bool relay;
	char hostname[SVC_HOSTNAME_MAX + 1];
};

/* one device of the VPC, as the agent needs it */
struct svc_device {
	char id[SVC_ID_MAX];
	char vpc_id[SVC_ID_MAX];
	uint8_t public_key[SVC_KEY_LEN];
	char hostname[SVC_HOSTNAME_MAX + 1];
	union sockaddr_any tunnel_ip;		/* port 0 */
	struct svc_endpoint ep[SVC_MAX_ENDPOINTS];
	int nep;
	bool relay;
	bool symmetric_nat;
	bool online;
	int64_t revision;
	char security_group_id[SVC_ID_MAX];	/* "": not said (issue 16: sent to relays) */
};

/* why an answer was refused: the field and the reason */
struct svc_err {
	char field[64];
	char msg[128];
};

/* the answer to POST /api/devices/challenge: its 32 random bytes and the
 * service's X25519 key for it (keyproof.h) */
int svcjson_parse_challenge(const json_t *j, uint8_t challenge[SVC_KEY_LEN], uint8_t service_key[SVC_KEY_LEN],
			    struct svc_err *err);
/* base64 of a 32-byte key (WireGuard's form) and back; 0 or -EINVAL */
int svcjson_key_parse(const char *b64, uint8_t out[SVC_KEY_LEN]);
void svcjson_key_format(const uint8_t key[SVC_KEY_LEN], char out[SVC_KEY_B64LEN]);

/* POST /api/devices and PATCH /api/devices/{id} bodies; NULL on ENOMEM */
json_t *svcjson_register_body(const uint8_t pub[SVC_KEY_LEN], const char *os,
			      const struct svc_report *r);
json_t *svcjson_patch_body(const struct svc_report *r);
/* wire_dep_name()'s "endpoint-independent", ...; NULL for WIRE_DEP_UNKNOWN
 * or a bad value (nothing is sent) */
const char *svcjson_nat_dep_name(enum wire_dep d);
/* "ipv4", "ipv6" */
const char *svcjson_family_name(enum svc_family f);
/* {mapping, filtering, hairpinning} with the known ones; NULL when none is */
json_t *svcjson_nat_json(const struct svc_nat *n);
/* the device's `nat` object: {"ipv4": {...}, "ipv6": {...}}, each family
 * with something known (the service adds the top-level members that older
 * readers use: the IPv4 result, else the IPv6 one); NULL when nothing is
 * known in any family (no object: the service keeps what it had) */
json_t *svcjson_nat_families_json(const struct svc_nat nat[SVC_FAMILIES]);
/* For a meshsvc from before the families (it refuses nat.ipv4 as an unknown
 * field): a body's nat object becomes the top level alone, the IPv4
 * findings if there are any, else the IPv6 ones; 0 or -ENOMEM */
int svcjson_nat_legacy(json_t *body, const struct svc_report *r);

/* a device object; -EINVAL with *err naming the field */
int svcjson_parse_device(const json_t *j, struct svc_device *out, struct svc_err *err);
/* The answer to POST /api/devices: the device and its sealed token
 * ("device_token", base64), and the VPC's CIDR when the answer has one
 * ("ipv4_cidr" at the top or in a "vpc" object; *has_cidr says), checked
 * by svcjson_check_vpc(). */
int svcjson_parse_registration(const json_t *j, struct svc_device *dev,
			       char sealed[SVC_SEALED_MAX], struct cidr *vpc_cidr,
			       bool *has_cidr, struct svc_err *err);
/* Issue 15 point 6: the VPC is /SVC_VPC_PREFIX_MIN or longer and the tunnel
 * address one of its host addresses (neither the network nor, below /31,
 * the broadcast address); -EINVAL with *err naming "ipv4_cidr"/"ipv6_cidr"
 * or "tunnel_ip" */
int svcjson_check_vpc(const struct cidr *vpc, const union sockaddr_any *tip, struct svc_err *err);
/* Issue 16: the policy an answer (registration or peer list) carries, as
 * {"security_group": this device's group, "security_groups": [the VPC's
 * groups, for a relay]} with the members that are there (references taken);
 * NULL when the answer has neither (a service without security groups). The
 * groups themselves are checked by lib/policy's policy_group_parse. */
json_t *svcjson_policy(const json_t *answer);
/* The answer to GET /api/vpcs/{id}/devices: {"revision": N, "devices": [...],
 * "deleted": ["id", ...], "full": bool} ("deleted" and "full" optional; full
 * means the devices are the whole list, e.g. after the service lost its
 * revisions), each array at most SVC_DEVICES_MAX long. The arrays are
 * borrowed from j. */
int svcjson_parse_changes(const json_t *j, int64_t *revision, json_t **devices,
			  json_t **deleted, bool *full, struct svc_err *err);
/* what svcjson_merge_changes() left out */
struct svc_merge {
	int no_id;		/* device entries without an id */
	int refused;		/* new ids past max: the map holds max at most */
};
/* Merges one such answer into map (device id -> device object, references
 * taken); full empties map first. Deletions are applied before additions, so
 * they make room; a device new to the map is refused once the map holds max
 * (issue 15 point 7: incremental answers, each within SVC_DEVICES_MAX, must
 * not add up without bound), while the devices it has still update. */
void svcjson_merge_changes(json_t *map, const json_t *devices, const json_t *deleted, bool full,
			   size_t max, struct svc_merge *out);

#endif
