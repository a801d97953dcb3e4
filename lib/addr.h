/* addr: IPv4/IPv6 socket addresses and CIDR prefixes: parse, format, compare,
 * contain, and index hosts (for IPAM). Pure functions; no I/O. */
#ifndef NATMESH_ADDR_H
#define NATMESH_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IP and port of either family; sa.sa_family says which. */
union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* "IP:PORT" or "[IPv6]:PORT" with the brackets, plus a NUL */
#define ADDR_STRLEN (INET6_ADDRSTRLEN + 8)
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 4)

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; 4 used for IPv4 */
	uint8_t prefix;		/* 0..32 or 0..128 */
};

/* "1.2.3.4:5", "[::1]:5"; port 0..65535 required. 0 or -EINVAL. */
int addr_parse(const char *s, union sockaddr_any *out);
/* a bare IP ("1.2.3.4", "::1") with the given port */
int addr_parse_ip(const char *s, uint16_t port, union sockaddr_any *out);
/* writes "IP:PORT" (or "[IP]:PORT"); returns buf */
const char *addr_format(const union sockaddr_any *a, char *buf, size_t len);
/* writes the IP alone */
const char *addr_format_ip(const union sockaddr_any *a, char *buf, size_t len);
socklen_t addr_len(const union sockaddr_any *a);
uint16_t addr_port(const union sockaddr_any *a);
void addr_set_port(union sockaddr_any *a, uint16_t port);
bool addr_equal(const union sockaddr_any *a, const union sockaddr_any *b);
bool addr_ip_equal(const union sockaddr_any *a, const union sockaddr_any *b);
/* pointer to the 4 or 16 raw address bytes, and their count in *n */
const uint8_t *addr_ip_bytes(const union sockaddr_any *a, size_t *n);
/* a v4-mapped IPv6 address (::ffff:a.b.c.d) becomes plain IPv4 */
void addr_unmap_v4(union sockaddr_any *a);

/* "10.0.0.0/8", "fd00::/64"; host bits must be zero unless allow_host_bits. */
int cidr_parse(const char *s, bool allow_host_bits, struct cidr *out);
const char *cidr_format(const struct cidr *c, char *buf, size_t len);
bool cidr_contains(const struct cidr *c, const union sockaddr_any *a);
/* the index-th address inside c (0 = the network address); -ERANGE if outside */
int cidr_host(const struct cidr *c, uint64_t index, union sockaddr_any *out);
/* the index of a inside c (inverse of cidr_host); -ERANGE if outside */
int cidr_index(const struct cidr *c, const union sockaddr_any *a, uint64_t *index);
/* number of addresses in c, saturated at UINT64_MAX */
uint64_t cidr_size(const struct cidr *c);

#endif
