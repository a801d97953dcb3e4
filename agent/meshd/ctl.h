/* ctl: meshd's local control socket (/run/meshd/IFNAME.sock), a unix stream
 * socket on the event loop. A client sends one JSON object on one line,
 * {"cmd": "status" | "peers" | "ping", ...}, and gets one JSON object on one
 * line back, then the connection closes. The owner's handler answers at once
 * with ctl_reply(), or later (ping waits for its echo) by keeping the
 * struct ctl_conn until then. Bad requests get {"error": "..."}. */
#ifndef NATMESH_MESHD_CTL_H
#define NATMESH_MESHD_CTL_H

#include <jansson.h>

struct loop;
struct ctl;
struct ctl_conn;

#define CTL_REQUEST_MAX 65536

/* req is borrowed for the call; the handler must eventually ctl_reply(c) */
typedef void (*ctl_handler)(void *arg, struct ctl_conn *c, const char *cmd, const json_t *req);

/* makes the socket's directory (0755) if needed, replaces a stale socket,
 * listens (mode 0660); 0 or -errno */
int ctl_new(struct loop *loop, const char *path, ctl_handler h, void *arg, struct ctl **out);
/* closes every connection (pending ones get no answer) and unlinks the socket */
void ctl_free(struct ctl *ctl);
/* sends answer (taken over) as one line and closes the connection */
void ctl_reply(struct ctl_conn *c, json_t *answer);
/* {"error": msg} */
void ctl_reply_error(struct ctl_conn *c, const char *msg);

#endif
