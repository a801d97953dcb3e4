/* wire: what the agent, the service, lib and nat-models must spell alike.
 * The names of RFC 4787's NAT behaviours (mapping and filtering, section 4.1
 * and 5; port allocation, 4.2.1) as they appear in scenarios, NAT models, the
 * API and natcheck, and the limits of the JSON that meshd and meshsvc
 * exchange. One definition here; every module converts from and to it. */
#ifndef NATMESH_WIRE_H
#define NATMESH_WIRE_H

/* RFC 4787 4.1 (mapping) and 5 (filtering) share these three */
enum wire_dep {
	WIRE_DEP_UNKNOWN,	/* not measured, not declared */
	WIRE_DEP_EI,		/* "endpoint-independent" */
	WIRE_DEP_AD,		/* "address-dependent" */
	WIRE_DEP_APD,		/* "address-and-port-dependent" */
};

/* RFC 4787 4.2.1 (port preservation) and what a NAT does instead */
enum wire_ports {
	WIRE_PORTS_UNKNOWN,
	WIRE_PORTS_PRESERVE,	/* "preserve" */
	WIRE_PORTS_SEQUENTIAL,	/* "sequential" */
	WIRE_PORTS_RANDOM,	/* "random" */
};

/* "endpoint-independent" ...; "unknown" for WIRE_DEP_UNKNOWN or a bad value */
const char *wire_dep_name(enum wire_dep d);
const char *wire_ports_name(enum wire_ports p);
/* the enum for a name, or -EINVAL; "unknown" is not a name */
int wire_dep_parse(const char *s);
int wire_ports_parse(const char *s);

/* The agent-service JSON (issue 4's field names). The service refuses what
 * exceeds these; the agent never sends more and refuses answers that do. */
#define WIRE_UUID_STRLEN 37		/* 36 characters and a NUL */
#define WIRE_HOSTNAME_MAX 253		/* RFC 1035 2.3.4 */
#define WIRE_NAME_MAX 63
#define WIRE_DESCRIPTION_MAX 255
#define WIRE_OS_MAX 32
#define WIRE_ENDPOINTS_MAX 16		/* endpoints of one device */
#define WIRE_SOURCE_MAX 96		/* "local", "relay", "stun:HOST:PORT" */
#define WIRE_KEY_BYTES 32		/* a WireGuard public key */
#define WIRE_KEY_B64LEN 45		/* 44 characters and a NUL */
#define WIRE_WAIT_MAX_S 300		/* the longest long poll */

#endif
