/* statedir: what meshd keeps across restarts, so a restarted agent keeps its
 * identity, its port and its tunnel address and its peers need no update:
 *
 *   DIR/private.key   the WireGuard private key, base64, mode 0600 (made on
 *                     first start; refused when group or others can read it)
 *   DIR/state.json    {"listen_port": N, "tunnel_ip": "A.B.C.D",
 *                      "device_id": "...", "vpc_cidr": "A.B.C.D/N"}
 *
 * state.json is replaced atomically (write a temporary file, fsync, rename). */
#ifndef NATMESH_MESHD_STATEDIR_H
#define NATMESH_MESHD_STATEDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define STATE_KEY_LEN 32
#define STATE_ID_MAX 64

struct state {
	uint8_t priv[STATE_KEY_LEN];
	uint8_t pub[STATE_KEY_LEN];
	uint16_t listen_port;		/* 0: none saved yet */
	bool has_tunnel_ip;
	union sockaddr_any tunnel_ip;
	bool has_vpc_cidr;
	struct cidr vpc_cidr;
	char device_id[STATE_ID_MAX];
};

/* Creates dir (0700) and the key when missing, reads both files. A missing
 * state.json is an empty state; a broken one is an error, as is a key file
 * with a wrong mode or content. 0 or -errno with why (naming the file) set. */
int state_load(const char *dir, struct state *st, char *why, size_t whylen);
/* writes state.json; 0 or -errno with why set */
int state_save(const char *dir, const struct state *st, char *why, size_t whylen);
/* Issue 15 point 10: a secret file (--reg-key-file) into out (cap bytes),
 * its first line, refused when group or others may read it (the fix named
 * in why), when empty or when it does not fit. 0 or -errno with why set. */
int state_read_secret(const char *path, char *out, size_t cap, char *why, size_t whylen);
/* wipes the keys */
void state_clear(struct state *st);

#endif
