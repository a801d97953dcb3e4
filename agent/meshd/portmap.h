/* portmap: meshd asks its default gateway to map the WireGuard UDP port
 * (issue 18): PCP (RFC 6887: ANNOUNCE, then MAP), NAT-PMP (RFC 6886) and
 * UPnP-IGD (libminiupnpc, blocking, so on a worker thread: portmap_upnp.c).
 *
 * portmap.c is the protocol core, sans-I/O: it takes the gateway's datagrams,
 * the UPnP worker's results and the time, and returns datagrams to send and
 * its next deadline. Its states:
 *
 *   PROBING   ANNOUNCE and a NAT-PMP address request out at once, resent;
 *             UPnP discovery runs beside them. Within PORTMAP_PROBE_MS the
 *             first protocol that answered, in the order PCP, NAT-PMP, UPnP,
 *             is chosen.
 *   MAPPING   the chosen protocol's MAP (or AddPortMapping) is out, asking
 *             for the external port of last time.
 *   MAPPED    renewed at half the granted lifetime; every PORTMAP_CHECK_MS an
 *             ANNOUNCE (or address request) reads the server's epoch: when it
 *             says the gateway lost its state (RFC 6887 8.5, RFC 6886 3.6)
 *             the port is mapped again at once. UPnP has no epoch: the
 *             worker asks for the mapping instead, and when the IGD does not
 *             have it (or does not answer: a restarted miniupnpd serves on
 *             another HTTP port) the gateway is probed again.
 *   FAILED    nothing answered or everything refused; probed again after
 *             PORTMAP_RETRY_MS.
 *
 * portmap_io.c binds it to meshd: the gateway (the default route), the
 * socket, the loop, the worker, the state file and the release on exit. */
#ifndef NATMESH_MESHD_PORTMAP_H
#define NATMESH_MESHD_PORTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "natpmp.h"
#include "pcp.h"

enum portmap_proto {
	PORTMAP_PCP = 1,
	PORTMAP_NATPMP = 2,
	PORTMAP_UPNP = 4,
	PORTMAP_ALL = 7,
};

enum {
	PORTMAP_LIFETIME_S = 7200,	/* asked for; renewed at half of what is granted */
	PORTMAP_PROBE_MS = 250,		/* issue 18: a protocol is found within this */
	PORTMAP_PROBE_RETX_MS = 60,	/* ANNOUNCE / address request resent this often */
	PORTMAP_MAP_RETX_MS = 250,	/* MAP resent this often ... */
	PORTMAP_MAP_TRIES = 4,		/* ... this many times, then the next protocol */
	PORTMAP_CHECK_MS = 2000,	/* the epoch read this often while mapped */
	/* after everything failed: 2 s, doubled per failure up to 60 s, so a
	 * gateway that is still coming up (an IGD "not connected" yet after a
	 * reboot) is asked again soon, a gateway without any protocol rarely */
	PORTMAP_RETRY_MIN_MS = 2000,
	PORTMAP_RETRY_MS = 60000,
	PORTMAP_MIN_LIFETIME_S = 30,	/* a shorter grant is renewed as if it were this */
};

enum portmap_state {
	PORTMAP_IDLE,
	PORTMAP_PROBING,
	PORTMAP_MAPPING,
	PORTMAP_MAPPED,
	PORTMAP_FAILED,
};

/* what the UPnP worker is asked to do next */
enum portmap_upnp_job {
	PORTMAP_UPNP_NONE,
	PORTMAP_UPNP_DISCOVER,	/* upnpDiscover, UPNP_GetValidIGD */
	PORTMAP_UPNP_MAP,	/* UPNP_AddPortMapping */
	PORTMAP_UPNP_CHECK,	/* UPNP_GetSpecificPortMappingEntry: still there? */
};

struct portmap_dgram {
	uint8_t buf[64];
	size_t len;
};

#define PORTMAP_OUT_MAX 4

struct portmap {
	enum portmap_state state;
	unsigned allowed;		/* PORTMAP_* */
	enum portmap_proto proto;	/* chosen; 0: none yet */
	char gw_name[ADDR_STRLEN];	/* for logs */
	uint16_t internal_port, want_port;	/* want: last time's external port, 0: any */

	/* the requests as sent, to check answers against */
	struct pcp_request pcp_announce, pcp_map;
	struct natpmp_request pmp_addr, pmp_map;

	bool pcp_alive, pcp_dead;	/* answered ANNOUNCE / refused or silent */
	bool pmp_alive, pmp_dead;
	union sockaddr_any pmp_ext;	/* NAT-PMP's external address */
	bool upnp_igd, upnp_dead, upnp_busy;
	enum portmap_upnp_job upnp_job;	/* wanted; the I/O layer takes it */

	uint64_t started, probe_end, next_tx, renew_at, check_at, retry_at;
	int tries;
	bool renewing;
	bool probe_over;		/* PROBING past probe_end: only the worker is awaited */

	/* the mapping */
	union sockaddr_any external;
	uint32_t lifetime;		/* granted, s */
	uint64_t mapped_at;
	uint32_t first_ms;		/* from start to the first mapping */
	uint32_t maps, renewals, remaps;
	uint32_t failures;		/* probes in a row that found nothing */

	bool has_epoch;			/* RFC 6887 8.5 */
	uint32_t epoch;
	uint64_t epoch_at;

	struct portmap_dgram out[PORTMAP_OUT_MAX];
	int nout;
};

/* nonce: 12 random bytes (RFC 6887 11.1) */
void portmap_init(struct portmap *pm, unsigned allowed, uint16_t internal_port, uint16_t want_port,
		  const uint8_t nonce[PCP_NONCE_LEN]);
/* probes gw (its IP) from our address client (the one facing gw) */
void portmap_start(struct portmap *pm, const union sockaddr_any *gw, const union sockaddr_any *client,
		   uint64_t now);
/* timers due at now; then the datagrams to send, one per call: 1 with *out
 * filled, 0 when none is left */
int portmap_poll(struct portmap *pm, uint64_t now, struct portmap_dgram *out);
/* a datagram from the gateway's port 5351: 0 used, else the reason it was
 * dropped (a pcp_error or natpmp_error; logged) */
int portmap_receive(struct portmap *pm, const uint8_t *buf, size_t len, uint64_t now);
/* the worker's answers: discovery (igd: a connected IGD found) and a map
 * (ok: external and lifetime filled) */
void portmap_upnp_discovered(struct portmap *pm, bool igd, uint64_t now);
void portmap_upnp_mapped(struct portmap *pm, bool ok, const union sockaddr_any *external, uint32_t lifetime,
			 uint64_t now);
/* the check: present false when the IGD lost the mapping or did not answer */
void portmap_upnp_checked(struct portmap *pm, bool present, uint64_t now);
/* UINT64_MAX: nothing armed */
uint64_t portmap_deadline(const struct portmap *pm);
/* the lifetime-0 request that removes a PCP or NAT-PMP mapping: its length,
 * 0 when there is none to remove that way */
size_t portmap_release(struct portmap *pm, uint8_t *buf, size_t size);
const char *portmap_proto_name(enum portmap_proto p);
const char *portmap_state_name(enum portmap_state s);
/* "pcp,nat-pmp,upnp" (any subset, "all") into a PORTMAP_* mask; -EINVAL */
int portmap_parse_protos(const char *s);

#endif
