/* validate_internal: what the files of validate share, and nothing else
 * includes: the error a check reports, the NAT findings' validator and the
 * key proof's. */
#ifndef NATMESH_SVC_VALIDATE_INTERNAL_H
#define NATMESH_SVC_VALIDATE_INTERNAL_H

#include "validate.h"

/* fills err with the field and the message; -EINVAL */
int validate_fail(struct verr *err, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* the "nat" member (name) of a device body, rebuilt into *out (NULL for
 * null); 0, -EINVAL with err filled, or -ENOMEM */
int validate_nat(const char *name, const json_t *v, json_t **out, struct verr *err);
/* the "proof" member of a registration, {"challenge", "mac"}, each base64
 * of 32 bytes, into the device_spec (validate_proof.c) */
int validate_dev_proof(const char *name, const json_t *v, void *spec, struct verr *err);

#endif
