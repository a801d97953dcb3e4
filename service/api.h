/* api: the HTTP(S) front of meshsvc on libmicrohttpd. One thread of ours
 * serves every connection, running libmicrohttpd in external epoll mode; long
 * polls are suspended connections parked in a watch and resumed on a change or
 * at their deadline, so 10,000 waiters cost memory, not threads. Routes, the
 * scope each accepts, body limits, validation, errors as {"error", "field"},
 * and the Prometheus counters live here (api_internal.h maps its files);
 * state lives in the store.
 *
 * Group commit. The thread works in rounds: MHD_run handles every request that
 * is ready, with the store in a batch (store.h), so their writes share one
 * transaction; then the batch is committed, one fsync for all of them. An
 * answer built while the batch is pending (a write's, or a read's, which may
 * have seen one: a GET, a long poll woken meanwhile, even a refusal made after
 * reading a token) is held on its suspended connection and released only after
 * the commit; if the commit fails, every held answer becomes a 500 and the
 * store has undone the batch, memory included. Reads are thus answered from
 * the batch's state, never before it is durable. Waiters of the VPCs a batch
 * changed are woken after its commit (after its writers' answers go out), and
 * log lines about its writes are written then, or dropped with it. A lone
 * write waits for nobody: its round ends with it. Under load a round is cut
 * between two requests once its first held answer has waited 2 ms or 256
 * answers are held (GROUP_MAX_US, GROUP_MAX_ANSWERS), bounding the latency a
 * burst adds to its first writers. */
#ifndef NATMESH_SVC_API_H
#define NATMESH_SVC_API_H

#include <stdint.h>

#include "addr.h"
#include "store.h"
#include "token.h"

#define API_BODY_MAX (64 * 1024)
/* connections from one address: enough for many agents behind one NAT, never
 * more than half of all (API_PER_ADDRESS_SHARE) */
#define API_PER_ADDRESS_DEFAULT 256
#define API_PER_ADDRESS_SHARE 2
/* long polls one device token may have waiting: an agent needs one; room
 * for tools sharing a token, far below the connection limit. Past it, 429
 * with Retry-After API_POLL_RETRY_S. */
#define API_POLLS_PER_TOKEN 64
#define API_POLL_RETRY_S 5
/* the idle timeout of a connection, and the most a kept-alive connection
 * has for its next request head after an answer (seconds) */
#define API_IDLE_TIMEOUT_S 75
/* a connection's first request head must be complete within this (seconds) */
#define API_HEADER_TIMEOUT_S 10

struct api_config {
	union sockaddr_any listen;
	const char *tls_cert_pem;	/* both set: HTTPS only */
	const char *tls_key_pem;
	uint8_t admin_hash[TOKEN_HASH_BYTES];
	unsigned max_connections;	/* also the most long polls parked at once */
	unsigned per_address;		/* connections from one address; 0: the default */
	unsigned header_timeout_s;	/* a request head's total time; 0: the default */
	unsigned polls_per_token;	/* long polls of one device token; 0: the default */
	unsigned challenge_ttl_s;	/* a key challenge's life; 0: CHALLENGE_TTL_S_DEFAULT */
	struct store_limits limits;	/* 0: the defaults of store.h */
};

struct api;

/* serves until api_stop; meanwhile the store is used only by the server
 * thread */
int api_start(const struct api_config *cfg, struct store *st, struct api **out);
/* devices gone quiet go offline, old tombstones go (store_housekeeping, run
 * by the server thread between two rounds); call it about once a second from
 * any thread */
void api_housekeeping(struct api *api);
/* the connections allowed from one address under cfg */
unsigned api_per_address_limit(const struct api_config *cfg);
/* the port bound (the configured one, or the kernel's pick for port 0) */
uint16_t api_port(const struct api *api);
void api_stop(struct api *api);

#endif
