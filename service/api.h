/* api: the HTTP(S) front of meshsvc on libmicrohttpd. One epoll thread serves
 * every connection; long polls are suspended connections parked in a watch and
 * resumed on a change or at their deadline, so 10,000 waiters cost memory, not
 * threads. Routes, the scope each accepts, body limits, validation, errors as
 * {"error", "field"}, and the Prometheus counters live here; state lives in the
 * store. */
#ifndef NATMESH_SVC_API_H
#define NATMESH_SVC_API_H

#include <stdint.h>

#include "addr.h"
#include "store.h"
#include "token.h"

#define API_BODY_MAX (64 * 1024)

struct api_config {
	union sockaddr_any listen;
	const char *tls_cert_pem;	/* both set: HTTPS only */
	const char *tls_key_pem;
	uint8_t admin_hash[TOKEN_HASH_BYTES];
	unsigned max_connections;
	struct store_limits limits;	/* 0: the defaults of store.h */
};

struct api;

/* serves until api_stop; meanwhile the store is used only by the server
 * thread and api_housekeeping, one at a time */
int api_start(const struct api_config *cfg, struct store *st, struct api **out);
/* devices gone quiet go offline, old tombstones go (store_housekeeping);
 * call it about once a second from any thread */
int api_housekeeping(struct api *api);
/* the port bound (the configured one, or the kernel's pick for port 0) */
uint16_t api_port(const struct api *api);
void api_stop(struct api *api);

#endif
