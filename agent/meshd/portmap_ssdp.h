/* portmap_ssdp: the one part of SSDP (UPnP Device Architecture 1.1, 1.3.2)
 * meshd reads itself: the LOCATION of an answer to its M-SEARCH. meshd
 * sends its own search and takes the gateway's first answer, because
 * libminiupnpc's upnpDiscover waits at least a second (MX 1) whatever the
 * answers; the device description behind LOCATION is libminiupnpc's
 * (UPNP_GetIGDFromUrl). Pure functions. */
#ifndef NATMESH_MESHD_PORTMAP_SSDP_H
#define NATMESH_MESHD_PORTMAP_SSDP_H

#include <stddef.h>

enum { SSDP_PORT = 1900, SSDP_MAX_LEN = 1500 };

/* the M-SEARCH for device or service type st into buf: its length, or
 * -ENOBUFS */
int ssdp_search(const char *st, char *buf, size_t size);
/* an answer ("HTTP/1.1 200 OK" and headers) into its LOCATION: 0 with out
 * set to an "http://" URL of printable characters; -EBADMSG (not a 200
 * answer, or longer than SSDP_MAX_LEN), -ENOENT (no LOCATION), -EINVAL (not
 * http://, or a control character), -E2BIG (longer than out) */
int ssdp_location(const char *buf, size_t len, char *out, size_t outlen);

#endif
