/* ownaddr: the service's own addresses, refused as endpoints (ownaddr.h). */
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "ownaddr.h"

static bool unspecified(const union sockaddr_any *a)
{
	size_t n;
	const uint8_t *b = addr_ip_bytes(a, &n);

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* the form addresses are compared in: IPv4 unmapped, port 0 */
static union sockaddr_any normal(const union sockaddr_any *a)
{
	union sockaddr_any n = *a;

	addr_unmap_v4(&n);
	addr_set_port(&n, 0);
	return n;
}

int ownaddr_add(struct ownaddr *o, const union sockaddr_any *a)
{
	union sockaddr_any n = normal(a);

	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	for (size_t i = 0; i < o->n; i++)
		if (addr_ip_equal(&o->ip[i], &n))
			return 0;
	if (o->n >= OWNADDR_MAX)
		return -ENOSPC;
	o->ip[o->n++] = n;
	return 0;
}

static int load(struct ownaddr *o, int64_t now_ms)
{
	struct ifaddrs *ifs, *i;
	size_t dropped = 0;

	o->loaded_ms = now_ms;
	if (getifaddrs(&ifs) < 0) {
		int rc = -errno;
		log_warn("api", "cannot list the host's addresses, endpoints at them are refused only "
			 "on the connection's own: %s", strerror(-rc));
		return rc;
	}
	o->n = 0;
	for (i = ifs; i; i = i->ifa_next) {
		union sockaddr_any a = { 0 };
		if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		memcpy(&a, i->ifa_addr, i->ifa_addr->sa_family == AF_INET ? sizeof(a.in) : sizeof(a.in6));
		if (ownaddr_add(o, &a) == -ENOSPC)
			dropped++;
	}
	freeifaddrs(ifs);
	if (dropped && dropped != o->dropped)
		log_warn("api", "the host has more addresses than the service keeps as its own: "
			 "endpoints at the rest are refused only on the connection's own kept=%d dropped=%zu",
			 OWNADDR_MAX, dropped);
	o->dropped = dropped;
	return 0;
}

int ownaddr_init(struct ownaddr *o, const union sockaddr_any *listen, int64_t now_ms)
{
	memset(o, 0, sizeof(*o));
	o->listen = *listen;
	o->loaded_ms = -1;
	o->wildcard = unspecified(listen);
	if (!o->wildcard)
		return ownaddr_add(o, listen);
	return load(o, now_ms);
}

void ownaddr_refresh(struct ownaddr *o, int64_t now_ms)
{
	if (o->wildcard && (o->loaded_ms < 0 || now_ms - o->loaded_ms >= OWNADDR_REFRESH_MS))
		load(o, now_ms);
}

bool ownaddr_has(const struct ownaddr *o, const union sockaddr_any *local, const union sockaddr_any *a)
{
	union sockaddr_any n = normal(a);

	if (local) {
		union sockaddr_any l = normal(local);
		if (addr_ip_equal(&l, &n))
			return true;
	}
	for (size_t i = 0; i < o->n; i++)
		if (addr_ip_equal(&o->ip[i], &n))
			return true;
	return false;
}

int ownaddr_check_endpoints(const struct ownaddr *o, const union sockaddr_any *local, const json_t *endpoints,
			    struct verr *err)
{
	char ip[ADDR_STRLEN];
	union sockaddr_any a;
	json_t *e;
	size_t i;

	json_array_foreach(endpoints, i, e) {
		const char *s = json_string_value(json_object_get(e, "address"));
		if (!s || addr_parse(s, &a) < 0 || !ownaddr_has(o, local, &a))
			continue;
		snprintf(err->field, sizeof(err->field), "endpoints[%zu].address", i);
		snprintf(err->msg, sizeof(err->msg),
			 "must be a unicast address peers can reach, not the service's own address (%s)",
			 addr_format_ip(&a, ip, sizeof(ip)));
		return -EINVAL;
	}
	return 0;
}
