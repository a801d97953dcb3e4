#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int addr_parse_ip(const char *s, uint16_t port, union sockaddr_any *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->in.sin_addr) == 1) {
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &out->in6.sin6_addr) == 1) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

int addr_parse(const char *s, union sockaddr_any *out)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *colon;
	uint16_t port;
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof(ip))
			return -EINVAL;
		memcpy(ip, s + 1, n);
		ip[n] = 0;
		if (parse_port(close + 2, &port) < 0)
			return -EINVAL;
		if (addr_parse_ip(ip, port, out) < 0 || out->sa.sa_family != AF_INET6)
			return -EINVAL;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || strchr(s, ':') != colon)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = 0;
	if (parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	if (addr_parse_ip(ip, port, out) < 0 || out->sa.sa_family != AF_INET)
		return -EINVAL;
	return 0;
}

const char *addr_format_ip(const union sockaddr_any *a, char *buf, size_t len)
{
	const void *src = a->sa.sa_family == AF_INET6 ? (const void *)&a->in6.sin6_addr
						      : (const void *)&a->in.sin_addr;
	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6) {
		snprintf(buf, len, "(none)");
		return buf;
	}
	if (!inet_ntop(a->sa.sa_family, src, buf, (socklen_t)len))
		snprintf(buf, len, "(bad)");
	return buf;
}

const char *addr_format(const union sockaddr_any *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	addr_format_ip(a, ip, sizeof(ip));
	if (a->sa.sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, addr_port(a));
	else
		snprintf(buf, len, "%s:%u", ip, addr_port(a));
	return buf;
}

socklen_t addr_len(const union sockaddr_any *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

uint16_t addr_port(const union sockaddr_any *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port : a->in.sin_port);
}

void addr_set_port(union sockaddr_any *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET6)
		a->in6.sin6_port = htons(port);
	else
		a->in.sin_port = htons(port);
}

const uint8_t *addr_ip_bytes(const union sockaddr_any *a, size_t *n)
{
	if (a->sa.sa_family == AF_INET6) {
		*n = 16;
		return a->in6.sin6_addr.s6_addr;
	}
	*n = 4;
	return (const uint8_t *)&a->in.sin_addr.s_addr;
}

bool addr_ip_equal(const union sockaddr_any *a, const union sockaddr_any *b)
{
	size_t na, nb;
	const uint8_t *pa, *pb;
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	pa = addr_ip_bytes(a, &na);
	pb = addr_ip_bytes(b, &nb);
	return na == nb && !memcmp(pa, pb, na);
}

bool addr_equal(const union sockaddr_any *a, const union sockaddr_any *b)
{
	return addr_ip_equal(a, b) && addr_port(a) == addr_port(b);
}

void addr_unmap_v4(union sockaddr_any *a)
{
	if (a->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
		return;
	uint16_t port = a->in6.sin6_port;
	struct in_addr v4;
	memcpy(&v4, &a->in6.sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof(*a));
	a->in.sin_family = AF_INET;
	a->in.sin_port = port;
	a->in.sin_addr = v4;
}

static size_t family_bytes(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

int cidr_parse(const char *s, bool allow_host_bits, struct cidr *out)
{
	char ip[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	char *end;
	size_t n;
	unsigned long prefix;

	memset(out, 0, sizeof(*out));
	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = 0;
	if (inet_pton(AF_INET, ip, out->addr) == 1)
		out->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, out->addr) == 1)
		out->family = AF_INET6;
	else
		return -EINVAL;
	if (!slash[1] || slash[1] == '-' || slash[1] == '+')
		return -EINVAL;
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (errno || *end || prefix > family_bytes(out->family) * 8)
		return -EINVAL;
	out->prefix = (uint8_t)prefix;
	for (size_t bit = prefix; bit < family_bytes(out->family) * 8; bit++) {
		if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
			if (!allow_host_bits)
				return -EINVAL;
			out->addr[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
		}
	}
	return 0;
}

const char *cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (!inet_ntop(c->family, c->addr, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "(bad)");
	snprintf(buf, len, "%s/%u", ip, c->prefix);
	return buf;
}

bool cidr_contains(const struct cidr *c, const union sockaddr_any *a)
{
	size_t n;
	const uint8_t *b = addr_ip_bytes(a, &n);
	if (a->sa.sa_family != c->family)
		return false;
	size_t full = c->prefix / 8, rem = c->prefix % 8;
	if (memcmp(b, c->addr, full))
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));
		if ((b[full] & mask) != (c->addr[full] & mask))
			return false;
	}
	return true;
}

uint64_t cidr_size(const struct cidr *c)
{
	unsigned host_bits = (unsigned)family_bytes(c->family) * 8 - c->prefix;
	return host_bits >= 64 ? UINT64_MAX : (uint64_t)1 << host_bits;
}

int cidr_host(const struct cidr *c, uint64_t index, union sockaddr_any *out)
{
	size_t nb = family_bytes(c->family);
	uint8_t b[16];
	if (index >= cidr_size(c) && cidr_size(c) != UINT64_MAX)
		return -ERANGE;
	memcpy(b, c->addr, 16);
	/* add index to the low 64 bits (host bits never overlap the prefix) */
	uint64_t carry = index;
	for (size_t i = nb; i-- > 0 && carry;) {
		uint64_t v = b[i] + (carry & 0xff);
		b[i] = (uint8_t)v;
		carry = (carry >> 8) + (v >> 8);
	}
	memset(out, 0, sizeof(*out));
	if (c->family == AF_INET) {
		out->in.sin_family = AF_INET;
		memcpy(&out->in.sin_addr, b, 4);
	} else {
		out->in6.sin6_family = AF_INET6;
		memcpy(&out->in6.sin6_addr, b, 16);
	}
	return 0;
}

int cidr_index(const struct cidr *c, const union sockaddr_any *a, uint64_t *index)
{
	size_t n;
	const uint8_t *b = addr_ip_bytes(a, &n);
	if (!cidr_contains(c, a))
		return -ERANGE;
	uint64_t v = 0;
	size_t start = n > 8 ? n - 8 : 0;
	for (size_t i = start; i < n; i++)
		v = (v << 8) | b[i];
	uint64_t size = cidr_size(c);
	*index = size == UINT64_MAX ? v : v & (size - 1);
	return 0;
}
