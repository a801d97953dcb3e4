/* uapi: the cross-platform userspace API that wg(8) speaks to a userspace
 * WireGuard over /var/run/wireguard/IFNAME.sock (wireguard.com/xplatform,
 * "Configuration Protocol"). Two halves:
 *
 * - the text protocol, pure: wg_uapi_parse_set() turns the body of a `set=1`
 *   request into a struct wg_uapi_config (nothing is applied when any line is
 *   bad, so a bad request never leaves a half-configured device), and
 *   wg_uapi_format_get() turns the state read back from a device into the
 *   body of the `get=1` answer;
 * - the server: a listening unix stream socket on the event loop that reads
 *   requests, calls the owner's get/set callbacks and writes "errno=N\n\n".
 *
 * The module knows nothing of the device; its owner (meshwg, later meshd)
 * maps configs onto it. */
#ifndef NATMESH_WG_UAPI_H
#define NATMESH_WG_UAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "wg_const.h"

struct loop;

/* a request larger than this is refused (a full `wg setconf` of 1000 peers
 * with a few allowed IPs each is well under 1 MiB) */
#define WG_UAPI_MAX_REQUEST (4u << 20)

/* which device-level keys a set carries */
enum wg_uapi_dev_flags {
	WG_UAPI_HAS_PRIVATE_KEY = 1u << 0,
	WG_UAPI_HAS_LISTEN_PORT = 1u << 1,
	WG_UAPI_HAS_FWMARK = 1u << 2,
	WG_UAPI_REPLACE_PEERS = 1u << 3,
};

/* which keys a peer section carries */
enum wg_uapi_peer_flags {
	WG_UAPI_PEER_REMOVE = 1u << 0,
	WG_UAPI_PEER_UPDATE_ONLY = 1u << 1,
	WG_UAPI_PEER_HAS_PRESHARED_KEY = 1u << 2,
	WG_UAPI_PEER_HAS_ENDPOINT = 1u << 3,
	WG_UAPI_PEER_HAS_KEEPALIVE = 1u << 4,
	WG_UAPI_PEER_REPLACE_ALLOWED_IPS = 1u << 5,
};

struct wg_uapi_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint32_t flags;				/* enum wg_uapi_peer_flags (set) */
	uint8_t preshared_key[WG_KEY_LEN];	/* all zero: none */
	union sockaddr_any endpoint;		/* AF_UNSPEC: none */
	uint16_t persistent_keepalive;		/* seconds, 0: off */
	struct cidr *allowed_ips;
	size_t n_allowed_ips, cap_allowed_ips;
	/* get only */
	int64_t last_handshake_sec;		/* CLOCK_REALTIME; 0: never */
	int64_t last_handshake_nsec;
	uint64_t rx_bytes, tx_bytes;
};

/* A set request (parsed) or a device's state (for get). */
struct wg_uapi_config {
	uint32_t flags;				/* enum wg_uapi_dev_flags (set) */
	bool has_private_key;			/* get: a key is configured */
	uint8_t private_key[WG_KEY_LEN];	/* set: all zero clears it */
	uint16_t listen_port;
	uint32_t fwmark;			/* 0: off */
	struct wg_uapi_peer *peers;
	size_t n_peers, cap_peers;
};

/* Frees what the config owns and wipes its keys; the struct itself stays. */
void wg_uapi_config_clear(struct wg_uapi_config *c);
/* Appends a zeroed peer (endpoint AF_UNSPEC); NULL when out of memory. */
struct wg_uapi_peer *wg_uapi_config_add_peer(struct wg_uapi_config *c);
int wg_uapi_peer_add_allowed_ip(struct wg_uapi_peer *p, const struct cidr *ip);

/* Parses the lines of a set request after "set=1" up to, not including, the
 * blank line that ends it. 0, or -EINVAL (unknown key, bad value, device key
 * inside a peer section, protocol_version other than 1), -ENOMEM. On error
 * *out is cleared; *line_no (if not NULL) is the 1-based line at fault. */
int wg_uapi_parse_set(const char *body, size_t len, struct wg_uapi_config *out, size_t *line_no);

/* Writes the body of a get answer, without the trailing "errno=0\n\n", into a
 * malloc'ed NUL-terminated string in *out. 0 or -ENOMEM. */
int wg_uapi_format_get(const struct wg_uapi_config *c, char **out, size_t *out_len);

/* The framing of the request stream: a request is a first line, "get=1" or
 * "set=1", then (set) its key=value lines, and ends at the first blank line.
 * Pure, so the server's reading of socket bytes can be tested and fuzzed. */
enum wg_uapi_op { WG_UAPI_OP_GET, WG_UAPI_OP_SET, WG_UAPI_OP_UNKNOWN };

struct wg_uapi_request {
	enum wg_uapi_op op;
	const char *body;	/* SET: the lines after "set=1\n", each with its \n */
	size_t body_len;
};

/* The first request in buf[0..len): 0 while it is incomplete (no "\n\n"
 * yet), else the bytes it takes, through its blank line, with *req filled
 * (body points into buf). An UNKNOWN request ends the connection. */
size_t wg_uapi_next_request(const char *buf, size_t len, struct wg_uapi_request *req);

/* The server. get fills *out with the device's state (the server clears it
 * afterwards); set applies a parsed config and returns 0 or a negative errno,
 * which goes back to wg as errno=N. */
struct wg_uapi_ops {
	int (*get)(void *arg, struct wg_uapi_config *out);
	int (*set)(void *arg, const struct wg_uapi_config *cfg);
};

struct wg_uapi_server;

/* Listens on the unix socket at path (its directory is created 0755 when
 * missing, a stale socket file is replaced). 0 or a negative errno. */
int wg_uapi_server_new(struct loop *loop, const char *path, const struct wg_uapi_ops *ops, void *arg,
		       struct wg_uapi_server **out);
/* Closes every connection and the listener, and unlinks the socket file. */
void wg_uapi_server_free(struct wg_uapi_server *s);

/* "/var/run/wireguard/IFNAME.sock" into buf; -ENAMETOOLONG when it does not fit. */
int wg_uapi_socket_path(const char *ifname, char *buf, size_t len);

#endif
