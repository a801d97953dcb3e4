/* natinfo: what meshd knows of its own NAT (issue 7), from lib/natdisc's
 * RFC 5780 findings: the device's `nat` object for the service and the line
 * `meshctl status` shows, e.g. "endpoint-independent mapping,
 * address-dependent filtering (restricted cone)". Pure functions.
 *
 * meshd runs natdisc with the mapping test on its WireGuard socket (the
 * mapping measured is the one WireGuard uses) and, because a filtering test
 * needs a mapping that has only talked to the server's primary address, the
 * filtering test from a second, short-lived socket, and the hairpinning test
 * (RFC 5780 4.7) from two more; all only when the first --stun server answers
 * with OTHER-ADDRESS (RFC 5780). */
#ifndef NATMESH_MESHD_NATINFO_H
#define NATMESH_MESHD_NATINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "natdisc.h"
#include "svcjson.h"

/* the verdicts natdisc reached so far (tests_done); the rest unknown */
void natinfo_from_result(const struct natdisc_result *r, struct svc_nat *out);
/* the status line; writes at most len bytes (NUL included) */
void natinfo_describe(const struct natdisc_result *r, char *buf, size_t len);

#endif
