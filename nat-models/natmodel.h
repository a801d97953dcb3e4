/* natmodel: a NAT declared in RFC 4787 terms (mapping, filtering, port
 * allocation, hairpinning, UDP mapping timeout), parsed from a preset name or
 * a JSON object, rendered to text for reports, and rendered to an nftables
 * ruleset (libnftnl over libmnl) that a gateway namespace applies as one
 * atomic batch. Also per-interface random packet loss (nftables numgen) for
 * simulated links.
 *
 * Scope: IPv4 (NAT44) and IPv6 (NAT66, masquerade-style: the inside
 * addresses become the WAN's, as `ip6 nat` does), one table per family in
 * one batch. UDP follows the model; every other protocol gets Linux's
 * default masquerade (so TCP to the service and ping keep working).
 *
 * Netlink functions work in the calling thread's CURRENT network namespace;
 * the caller does setns(2) first. They return 0 or a negative errno and, on
 * failure, fill *err when err is not NULL. */
#ifndef NATMESH_NATMODEL_H
#define NATMESH_NATMODEL_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 4787 section 4.1 (mapping) and 5 (filtering) share these three. */
enum natmodel_dep {
	NATMODEL_EI,	/* endpoint-independent */
	NATMODEL_AD,	/* address-dependent */
	NATMODEL_APD,	/* address-and-port-dependent */
};

/* RFC 4787 section 4.2.1 (port preservation) and 4.2.2 (port parity/range). */
enum natmodel_ports {
	NATMODEL_PORTS_PRESERVE,	/* keep the internal port when it is free */
	NATMODEL_PORTS_SEQUENTIAL,	/* next port of the external range */
	NATMODEL_PORTS_RANDOM,		/* random port of the external range */
};

enum {
	NATMODEL_TIMEOUT_DEFAULT = 120,	/* RFC 4787 REQ-5: at least 2 minutes */
	NATMODEL_TIMEOUT_MAX = 86400,
	NATMODEL_PORT_MIN = 1024,	/* default external range for sequential/random */
	NATMODEL_PORT_MAX = 65535,
};

/* The port mapping protocols the gateway answers (meshsim runs miniupnpd
 * for them, sim/portmapd.h); a bit each in struct natmodel.port_mapping. */
enum natmodel_portmap {
	NATMODEL_PM_PCP = 1 << 0,	/* RFC 6887 */
	NATMODEL_PM_NATPMP = 1 << 1,	/* RFC 6886 */
	NATMODEL_PM_UPNP = 1 << 2,	/* UPnP IGD (SSDP + SOAP) */
};

struct natmodel {
	enum natmodel_dep mapping;
	enum natmodel_dep filtering;
	enum natmodel_ports ports;
	bool hairpinning;
	uint32_t udp_timeout;		/* seconds, 1..NATMODEL_TIMEOUT_MAX */
	/* the external ports sequential and random allocation take, and
	 * preserve when the inside port is taken (RFC 4787 4.2.2); default
	 * NATMODEL_PORT_MIN..NATMODEL_PORT_MAX. A small range runs out: a new
	 * mapping then finds no port and its packet is dropped. */
	uint16_t port_min, port_max;
	/* enum natmodel_portmap bits; 0: the gateway maps nothing on request.
	 * Not part of the ruleset (nft.c ignores it) nor of the preset name. */
	unsigned int port_mapping;
};

/* Where a parse, render or apply failed. field names the JSON member
 * ("mapping", "udp_timeout", ...) or is "" when the model or the netlink
 * exchange as a whole failed; reason says why, in one line. */
struct natmodel_error {
	char field[32];
	char reason[224];
};

/* ---- model ----------------------------------------------------------------
 * Presets (all: hairpinning off, udp_timeout NATMODEL_TIMEOUT_DEFAULT):
 *   full-cone             EI mapping, EI filtering,  preserve
 *   restricted-cone       EI mapping, AD filtering,  preserve
 *   port-restricted-cone  EI mapping, APD filtering, preserve (Linux default)
 *   symmetric             APD mapping, APD filtering, random */
int natmodel_preset(const char *name, struct natmodel *out);	/* 0 or -ENOENT */
/* the preset names in order, NULL-terminated */
extern const char *const natmodel_preset_names[];

/* A JSON string (a preset name) or object:
 *   {"preset": "full-cone", "mapping": "endpoint-independent",
 *    "filtering": "address-dependent", "port_allocation": "random",
 *    "hairpinning": true, "udp_timeout": 30, "port_range": "20000-20099",
 *    "port_mapping": ["pcp", "nat-pmp", "upnp"]}
 * Every member is optional; members override the preset (default preset:
 * port-restricted-cone). Unknown members, wrong types and values, and
 * combinations that stock nftables cannot express (natmodel_check) are
 * rejected with -EINVAL and the member named in err->field ("port_mapping[1]"
 * for an element: a non-empty array of distinct names from the three). */
int natmodel_from_json(const json_t *j, struct natmodel *out, struct natmodel_error *err);
/* a preset name, or JSON text of the form above */
int natmodel_parse(const char *spec, struct natmodel *out, struct natmodel_error *err);
/* 0, or -EOPNOTSUPP for a combination that cannot be rendered (see README) */
int natmodel_check(const struct natmodel *m, struct natmodel_error *err);

/* "port-restricted-cone (mapping=endpoint-independent filtering=address-and-
 * port-dependent port_allocation=preserve hairpinning=off udp_timeout=120s)";
 * the name is "custom" when no preset matches. Returns buf. */
const char *natmodel_format(const struct natmodel *m, char *buf, size_t len);
#define NATMODEL_STRLEN 224
/* the preset name, or NULL */
const char *natmodel_preset_name(const struct natmodel *m);
/* the object form natmodel_from_json reads back; NULL on ENOMEM */
json_t *natmodel_to_json(const struct natmodel *m);
const char *natmodel_dep_name(enum natmodel_dep d);
const char *natmodel_ports_name(enum natmodel_ports p);
/* "pcp", "nat-pmp", "upnp" for one bit; NULL for anything else */
const char *natmodel_portmap_name(unsigned int bit);

/* ---- nftables -------------------------------------------------------------
 * The ruleset lives in table "ip natmesh_nat" and, for IPv6, "ip6
 * natmesh_nat": the same chains and rules in each, with that family's
 * addresses (not an "inet" table: its sets would have to come twice, once
 * per address type, and every rule would test the family first). WAN is the
 * interface facing the outside; every other interface is the inside. */
#define NATMODEL_TABLE "natmesh_nat"
#define NATMODEL_LOSS_TABLE "natmesh_loss"

/* The table, its chains, sets/maps, ct timeout object and rules for one
 * model, built in memory (no netlink). */
struct natmodel_ruleset;

/* The WAN's external address per family; a family without one gets no
 * table (its inside traffic is routed, not translated). */
struct natmodel_wan {
	bool has_v4, has_v6;
	struct in_addr v4;
	struct in6_addr v6;
};

/* The tables of the families wan has, ip first. -EINVAL (field "wan") when
 * it has none or the interface name does not fit. */
int natmodel_render(const struct natmodel *m, const char *wan_ifname,
		    const struct natmodel_wan *wan, struct natmodel_ruleset **out,
		    struct natmodel_error *err);
void natmodel_ruleset_free(struct natmodel_ruleset *rs);
/* Every object in nftnl's text form ("[ meta load oifname => reg 1 ]" ...),
 * one per line, in batch order; malloc'd, NULL on ENOMEM. For tests and
 * debugging; `nft --debug=netlink list ruleset` prints the same notation. */
char *natmodel_ruleset_describe(const struct natmodel_ruleset *rs);
/* Sends the ruleset as one batch that replaces any earlier natmesh_nat
 * table of the families it has. */
int natmodel_ruleset_commit(const struct natmodel_ruleset *rs, struct natmodel_error *err);

/* Render and commit in the current namespace, in one batch that also
 * removes an earlier table of a family wan lacks. wan NULL: the first IPv4
 * and the first global IPv6 address of wan_ifname. */
int natmodel_apply(const struct natmodel *m, const char *wan_ifname,
		   const struct natmodel_wan *wan, struct natmodel_error *err);
/* Removes the natmesh_nat tables (ip, ip6); -ENOENT if there is neither. */
int natmodel_remove(struct natmodel_error *err);

/* Drops percent (0..100) of the packets that arrive on ifname (netdev
 * ingress, numgen random), in table "netdev natmesh_loss". For loss in both
 * directions of a link, apply it at both ends. Re-applying replaces the rate;
 * percent 0 removes the chain. */
int natmodel_loss_apply(const char *ifname, unsigned int percent, struct natmodel_error *err);

#endif
