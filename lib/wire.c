/* wire: the one spelling of RFC 4787's behaviour names (wire.h) */
#include <errno.h>
#include <string.h>

#include "wire.h"

static const char *const dep_names[] = {
	[WIRE_DEP_EI] = "endpoint-independent",
	[WIRE_DEP_AD] = "address-dependent",
	[WIRE_DEP_APD] = "address-and-port-dependent",
};

static const char *const ports_names[] = {
	[WIRE_PORTS_PRESERVE] = "preserve",
	[WIRE_PORTS_SEQUENTIAL] = "sequential",
	[WIRE_PORTS_RANDOM] = "random",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n && names[v] ? names[v] : "unknown";
}

static int parse(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -EINVAL;
}

const char *wire_dep_name(enum wire_dep d)
{
	return name_of(dep_names, N(dep_names), (unsigned)d);
}

const char *wire_ports_name(enum wire_ports p)
{
	return name_of(ports_names, N(ports_names), (unsigned)p);
}

int wire_dep_parse(const char *s)
{
	return parse(dep_names, N(dep_names), s);
}

int wire_ports_parse(const char *s)
{
	return parse(ports_names, N(ports_names), s);
}
