/* ownaddr: the service's own addresses, which no device may give as an
 * endpoint (issue 15 point 5). Every agent of a VPC sends handshake
 * initiations to its peers' endpoints, so an endpoint at the service would
 * aim them all at it, one PATCH away. Its own addresses are the listen
 * address when that is one, else (a wildcard) the host's interface addresses
 * (getifaddrs), loaded at start and again at most every OWNADDR_REFRESH_MS
 * when asked, plus the address the request came in on (the caller's
 * getsockname), which covers an address added since the last load. An
 * endpoint is judged by its IP whatever its port, an IPv4-mapped IPv6
 * address as IPv4. Used by the server thread alone. */
#ifndef NATMESH_SVC_OWNADDR_H
#define NATMESH_SVC_OWNADDR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "validate.h"

#define OWNADDR_MAX 256			/* interface addresses kept; past it, logged once per load */
#define OWNADDR_REFRESH_MS 10000	/* interface addresses loaded again at most this often */

struct ownaddr {
	union sockaddr_any listen;
	bool wildcard;			/* listen is 0.0.0.0 or [::] */
	union sockaddr_any ip[OWNADDR_MAX];	/* ports zero, IPv4 unmapped */
	size_t n;
	size_t dropped;			/* addresses past OWNADDR_MAX at the last load */
	int64_t loaded_ms;		/* of the last getifaddrs, -1: never */
};

/* from the listen address; a wildcard loads the interfaces now (now_ms: any
 * monotonic ms). 0, or the negative errno of getifaddrs, logged (o is then
 * empty until a refresh succeeds: the request's own address still counts). */
int ownaddr_init(struct ownaddr *o, const union sockaddr_any *listen, int64_t now_ms);
/* a wildcard's interface addresses, again if the last load is
 * OWNADDR_REFRESH_MS old; a failure keeps the previous ones */
void ownaddr_refresh(struct ownaddr *o, int64_t now_ms);
/* one more address (its port ignored); -ENOSPC at OWNADDR_MAX */
int ownaddr_add(struct ownaddr *o, const union sockaddr_any *a);
/* a's IP is one of o's, or local's when local is not NULL */
bool ownaddr_has(const struct ownaddr *o, const union sockaddr_any *local, const union sockaddr_any *a);
/* endpoints, a validated array of {"source", "address"} (validate.h), has
 * none at o or local (the request's local address, NULL: unknown): 0, or
 * -EINVAL with err naming endpoints[i].address */
int ownaddr_check_endpoints(const struct ownaddr *o, const union sockaddr_any *local, const json_t *endpoints,
			    struct verr *err);

#endif
