/* svc: meshd's client of the control plane (meshsvc), off the packet path.
 * Two threads do the HTTP work with libcurl, so a slow or absent service never
 * blocks the event loop:
 *
 *   writer  registers (POST /api/devices with the registration key, or, once
 *           registered, with the device token it keeps in token_file: the
 *           service lets a registered public key in again only with its
 *           token, or with the key and a key proof: when the key's
 *           registration is refused with 409 for our own public key, a
 *           token lost, the writer answers a challenge from POST
 *           /api/devices/challenge with the private key, keyproof.h, and
 *           gets the same device back), opens the sealed device token with
 *           the WireGuard key pair, then PATCHes the latest report
 *           (endpoints, symmetric_nat) whenever it changes;
 *   poller  keeps the VPC's device list through the long poll
 *           GET /api/vpcs/{id}/devices?since=REV&wait=S, merging the changes.
 *
 * Failures (no answer, timeouts, 5xx, garbage) are logged once per outage and
 * retried with exponential backoff and jitter; after an outage the poller
 * fetches the whole list again. Results come back to the loop's thread as
 * events through a pipe: svc_fd() turns readable, svc_next_event() pops them.
 * Tunnels do not depend on any of this: meshd keeps its peers while the
 * service is away. */
#ifndef NATMESH_MESHD_SVC_H
#define NATMESH_MESHD_SVC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "svcjson.h"

enum {
	SVC_POLL_WAIT_S = 25,		/* long-poll wait asked of the service */
	SVC_REQUEST_TIMEOUT_MS = 10000,	/* any other request */
	SVC_BACKOFF_MIN_MS = 500,
	SVC_BACKOFF_MAX_MS = 30000,
	SVC_MAX_ANSWER = 8 << 20,	/* a larger answer is refused */
	/* with several replicas, one that does not accept a connection in
	 * this long is given up for the next (issue 20: failover within 2 s) */
	SVC_FAILOVER_CONNECT_MS = 1500,
};

struct svc_cfg {
	const char *url;		/* "https://host:port" (no trailing slash needed),
					 * or several replicas' URLs comma-separated: requests
					 * stick to one and move to the next when it fails */
	const char *ca_file;		/* NULL: the system's CAs */
	const char *reg_key;		/* the registration key (bearer) */
	const char *token_file;		/* keeps the device token across restarts
					 * (mode 0600, refused when group or others
					 * may read it); NULL: in memory only */
	uint8_t pub[SVC_KEY_LEN];	/* the WireGuard key pair (X25519) */
	uint8_t priv[SVC_KEY_LEN];
	const char *os;			/* "linux" */
	uint32_t poll_wait_s;		/* 0: SVC_POLL_WAIT_S */
	bool no_policy;			/* --no-policy: register with enforces_policy false */
};

enum svc_event_type {
	SVC_EV_REGISTERED,	/* self, vpc_cidr/has_cidr */
	SVC_EV_PEERS,		/* devices: every device of the VPC (self included) */
	SVC_EV_REACHABLE,	/* an answer after an outage (or the first one) */
	SVC_EV_UNREACHABLE,	/* the first failure of an outage; msg says why */
};

struct svc_event {
	enum svc_event_type type;
	struct svc_device self;
	struct cidr vpc_cidr;
	bool has_cidr;
	json_t *devices;	/* owned array of device objects (PEERS) */
	json_t *policy;		/* owned svcjson_policy() of the answer, NULL: none
				 * (REGISTERED, PEERS: a peer list is posted when
				 * only this changed, too) */
	int64_t revision;
	char msg[160];
	struct svc_event *next;
};

struct svc;

/* copies cfg (and the key pair) and starts the threads; 0 or -errno */
int svc_new(const struct svc_cfg *cfg, const struct svc_report *first, struct svc **out);
/* stops the threads (transfers in flight are aborted) and wipes the keys
 * and the token; NULL is a no-op */
void svc_free(struct svc *s);
/* readable while events wait */
int svc_fd(const struct svc *s);
/* the next event or NULL; the caller frees it with svc_event_free */
struct svc_event *svc_next_event(struct svc *s);
void svc_event_free(struct svc_event *ev);
/* the report to PATCH next (only the latest one is sent) */
void svc_set_report(struct svc *s, const struct svc_report *r);
/* whether the last request got an answer from the service */
bool svc_reachable(struct svc *s);

#endif
