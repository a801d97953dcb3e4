/* natinfo: what meshd knows of its own NAT (issue 7), from lib/natdisc's
 * RFC 5780 findings: the device's `nat` object for the service and the line
 * `meshctl status` shows, e.g. "endpoint-independent mapping,
 * address-dependent filtering (restricted cone)", and which server and local
 * address each address family's run uses. Pure functions.
 *
 * meshd runs natdisc once per address family it has (IPv4, IPv6: a
 * dual-stack host sits behind an IPv4 NAT and an IPv6 firewall, which behave
 * differently), against the first --stun server of that family, with the
 * mapping test on its WireGuard socket (dual-stack [::]: the mapping measured
 * is the one WireGuard uses) and, because a filtering test needs a mapping
 * that has only talked to the server's primary address, the filtering test
 * from a second, short-lived socket of that family, and the hairpinning test
 * (RFC 5780 4.7) from two more; each only when its server answers with
 * OTHER-ADDRESS (RFC 5780). */
#ifndef NATMESH_MESHD_NATINFO_H
#define NATMESH_MESHD_NATINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "natdisc.h"
#include "svcjson.h"

/* the verdicts natdisc reached so far (tests_done); the rest unknown */
void natinfo_from_result(const struct natdisc_result *r, struct svc_nat *out);
/* the status line; writes at most len bytes (NUL included) */
void natinfo_describe(const struct natdisc_result *r, char *buf, size_t len);

/* SVC_FAM_IPV4 or SVC_FAM_IPV6 (a v4-mapped IPv6 address is IPv4); -1 for
 * neither */
int natinfo_family(const union sockaddr_any *a);
/* the server each family's run asks: idx[f] is the index in servers of the
 * first one of family f, or -1; IPv6 only when the WireGuard socket is
 * dual-stack (sock_family AF_INET6), as an AF_INET socket cannot reach it */
void natinfo_pick_servers(const union sockaddr_any *servers, int n, int sock_family,
			  int idx[SVC_FAMILIES]);
/* the local address a run of family f uses: the first usable one of that
 * family (for IPv4 the one the default route normally uses); -1 for none */
int natinfo_pick_local(const union sockaddr_any *local, int n, enum svc_family f);
/* the family the `nat` object's top level stands for: IPv4 when it has
 * findings, else IPv6; -1 when neither has */
int natinfo_first(const bool has[SVC_FAMILIES]);

#endif
