/* portmap_upnp: UPnP-IGD through libminiupnpc, whose calls block (SSDP,
 * then SOAP over HTTP), so each job runs on a thread of its own while the
 * loop goes on; the job's end is signalled on a pipe the loop watches, and
 * the loop thread reads its result (after joining the thread). One job at a
 * time; the IGD's URLs found by discovery stay for the jobs after it. */
#ifndef NATMESH_MESHD_PORTMAP_UPNP_H
#define NATMESH_MESHD_PORTMAP_UPNP_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "portmap.h"

enum {
	UPNP_DISCOVER_MS = 150,	/* SSDP answers waited for (the 250 ms budget) */
};

struct upnp;

int upnp_new(struct upnp **out);
/* joins a running job, deletes nothing; NULL is a no-op */
void upnp_free(struct upnp *u);
/* SSDP answers are taken from this address only; not while a job runs */
void upnp_set_gateway(struct upnp *u, const union sockaddr_any *gw);
/* readable when a job ended */
int upnp_fd(const struct upnp *u);
bool upnp_busy(const struct upnp *u);
/* starts a job: 0, -EBUSY while one runs, or -errno */
int upnp_start(struct upnp *u, enum portmap_upnp_job job, uint16_t internal_port, uint16_t want_port,
	       uint32_t lifetime);
/* after upnp_fd was readable: the job that ended, with its results
 * (DISCOVER: *ok an IGD is connected; MAP: *ok mapped, *external, *lifetime);
 * why says what failed */
enum portmap_upnp_job upnp_finish(struct upnp *u, bool *ok, union sockaddr_any *external, uint32_t *lifetime,
				  char *why, size_t whylen);
/* UPNP_DeletePortMapping of the last map, blocking (at exit); 0 or -EIO */
int upnp_delete(struct upnp *u);
/* the IGD's control URL host, for logs ("none" before discovery) */
const char *upnp_igd(const struct upnp *u);

#endif
