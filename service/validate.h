/* validate: the request bodies and values of the control-plane API. Each body
 * is checked against a table of its fields: unknown and read-only fields are
 * rejected, types, lengths, CIDRs, addresses, ports and keys are checked, and
 * the first problem is reported with the field it concerns. Pure; no I/O. */
#ifndef NATMESH_SVC_VALIDATE_H
#define NATMESH_SVC_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "token.h"
#include "wire.h"

/* the wire limits (wire.h) under the name the service has always used */
#define UUID_STRLEN WIRE_UUID_STRLEN
#define TIME_STRLEN 21		/* "2025-01-02T03:04:05Z" */
#define VPC_PREFIX_MIN 8	/* a /8 at most ... */
#define VPC_PREFIX_MAX 30	/* ... and at least two hosts */
#define VPC_DEFAULT_CIDR "100.64.0.0/10"
/* the devices a registration key registers, at most (issue 15: a key is not
 * a licence to fill a VPC with fakes); the most a key may be given is a /8's */
#define REGKEY_MAX_DEVICES_DEFAULT 1000
#define REGKEY_MAX_DEVICES_MAX (1 << 24)

/* what was wrong, and with which field ("" for the body as a whole) */
struct verr {
	char field[64];
	char msg[192];
};

struct vpc_spec {
	char name[WIRE_NAME_MAX + 1];
	struct cidr cidr;
};

struct regkey_spec {
	char vpc_id[UUID_STRLEN];
	bool single_use;
	int64_t expires_at;	/* unix seconds; 0: never */
	char description[WIRE_DESCRIPTION_MAX + 1];
	bool relay;		/* the devices it registers are relays */
	int64_t max_devices;	/* REGKEY_MAX_DEVICES_DEFAULT unless given */
};

enum device_field {
	DEV_PUBLIC_KEY = 1 << 0,
	DEV_VPC_ID = 1 << 1,
	DEV_HOSTNAME = 1 << 2,
	DEV_OS = 1 << 3,
	DEV_ENDPOINTS = 1 << 4,
	DEV_RELAY = 1 << 5,
	DEV_SYMMETRIC_NAT = 1 << 6,
	DEV_NAT = 1 << 7,
	DEV_SECURITY_GROUP = 1 << 8,
	DEV_ENFORCES_POLICY = 1 << 9,
	DEV_PROOF = 1 << 10,	/* registration with a key: a key proof (keyproof.h) */
};

struct device_spec {
	unsigned set;		/* enum device_field bits present in the body */
	uint8_t public_key[WG_KEY_BYTES];
	char public_key_b64[WG_KEY_B64LEN];
	char vpc_id[UUID_STRLEN];
	char hostname[WIRE_HOSTNAME_MAX + 1];
	char os[WIRE_OS_MAX + 1];
	json_t *endpoints;	/* owned: normalized array */
	json_t *nat;		/* owned: object, or NULL when the body sets null */
	bool relay;
	bool symmetric_nat;
	uint8_t proof_challenge[WIRE_KEY_BYTES];	/* DEV_PROOF */
	uint8_t proof_mac[WIRE_KEY_BYTES];
	/* security_group_id: a group's id or name, resolved in the device's VPC by the store */
	char security_group[WIRE_NAME_MAX + 1];
	bool enforces_policy;	/* false: meshd --no-policy */
};

/* a security group's body (issue 16); the rules are checked by lib/policy
 * and kept as it writes them, with their groups as written (ids or names:
 * the store resolves them in the group's VPC) */
enum secgroup_field {
	SG_VPC_ID = 1 << 0,
	SG_NAME = 1 << 1,
	SG_DESCRIPTION = 1 << 2,
	SG_INBOUND = 1 << 3,
	SG_OUTBOUND = 1 << 4,
};

struct secgroup_spec {
	unsigned set;		/* enum secgroup_field bits present in the body */
	char vpc_id[UUID_STRLEN];
	char name[WIRE_NAME_MAX + 1];
	char description[WIRE_DESCRIPTION_MAX + 1];
	json_t *inbound, *outbound;	/* owned: arrays of rules (policy_rule_json) */
};

int validate_vpc_create(const json_t *body, struct vpc_spec *out, struct verr *err);
/* now: unix seconds; expires_at must lie after it */
int validate_regkey_create(const json_t *body, int64_t now, struct regkey_spec *out, struct verr *err);
int validate_device_register(const json_t *body, struct device_spec *out, struct verr *err);
int validate_device_patch(const json_t *body, struct device_spec *out, struct verr *err);
void device_spec_clear(struct device_spec *spec);
/* the body of POST /api/devices/challenge: {"public_key"} (validate_proof.c) */
int validate_challenge_request(const json_t *body, uint8_t public_key[WG_KEY_BYTES], struct verr *err);
/* POST /api/security-groups: vpc_id and name required */
int validate_secgroup_create(const json_t *body, struct secgroup_spec *out, struct verr *err);
/* PATCH /api/security-groups/{id}: name, description, inbound_rules, outbound_rules */
int validate_secgroup_patch(const json_t *body, struct secgroup_spec *out, struct verr *err);
void secgroup_spec_clear(struct secgroup_spec *spec);

/* the long-poll parameters of GET /api/vpcs/{id}/devices */
int validate_since(const char *s, int64_t *out, struct verr *err);
int validate_wait(const char *s, int *out, struct verr *err);

/* values shared with the rest of the service */
bool validate_uuid(const char *s);
void uuid_generate(char out[UUID_STRLEN]);
/* "2025-01-02T03:04:05Z", or with fraction and offset: "...05.5+02:00" */
int time_parse(const char *s, int64_t *out);
void time_format(int64_t t, char out[TIME_STRLEN]);

#endif
