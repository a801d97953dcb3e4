/* natinfo: natdisc findings in the service's and the user's words (natinfo.h). */
#include <stdio.h>

#include "natinfo.h"

static enum wire_dep dep(enum natdisc_dep d)
{
	switch (d) {
	case NATDISC_DEP_EI:
		return WIRE_DEP_EI;
	case NATDISC_DEP_AD:
		return WIRE_DEP_AD;
	case NATDISC_DEP_APD:
		return WIRE_DEP_APD;
	case NATDISC_DEP_UNKNOWN:
		break;
	}
	return WIRE_DEP_UNKNOWN;
}

void natinfo_from_result(const struct natdisc_result *r, struct svc_nat *out)
{
	out->mapping = r->tests_done & NATDISC_TEST_MAPPING ? dep(r->mapping) : WIRE_DEP_UNKNOWN;
	out->filtering = r->tests_done & NATDISC_TEST_FILTERING ? dep(r->filtering) : WIRE_DEP_UNKNOWN;
	out->hairpinning = SVC_NAT_TRI_UNKNOWN;
	if (r->tests_done & NATDISC_TEST_HAIRPIN)
		out->hairpinning = r->hairpin == NATDISC_YES ? SVC_NAT_TRI_YES
				 : r->hairpin == NATDISC_NO ? SVC_NAT_TRI_NO : SVC_NAT_TRI_UNKNOWN;
}

void natinfo_describe(const struct natdisc_result *r, char *buf, size_t len)
{
	struct svc_nat n;
	const char *common;

	if (!len)
		return;
	if (r->error != NATDISC_OK) {
		snprintf(buf, len, "unknown (%s)", natdisc_strerror(r->error));
		return;
	}
	natinfo_from_result(r, &n);
	if (n.mapping == WIRE_DEP_UNKNOWN && n.filtering == WIRE_DEP_UNKNOWN) {
		snprintf(buf, len, "unknown");
		return;
	}
	common = n.mapping != WIRE_DEP_UNKNOWN && n.filtering != WIRE_DEP_UNKNOWN ? natdisc_common_name(r) : NULL;
	snprintf(buf, len, "%s mapping, %s filtering%s%s%s",
		 n.mapping != WIRE_DEP_UNKNOWN ? svcjson_nat_dep_name(n.mapping) : "unknown",
		 n.filtering != WIRE_DEP_UNKNOWN ? svcjson_nat_dep_name(n.filtering) : "unknown",
		 common ? " (" : "", common ? common : "", common ? ")" : "");
}

int natinfo_family(const union sockaddr_any *a)
{
	union sockaddr_any u = *a;

	addr_unmap_v4(&u);
	if (u.sa.sa_family == AF_INET)
		return SVC_FAM_IPV4;
	if (u.sa.sa_family == AF_INET6)
		return SVC_FAM_IPV6;
	return -1;
}

void natinfo_pick_servers(const union sockaddr_any *servers, int n, int sock_family,
			  int idx[SVC_FAMILIES])
{
	for (int f = 0; f < SVC_FAMILIES; f++)
		idx[f] = -1;
	for (int i = 0; i < n; i++) {
		int f = natinfo_family(&servers[i]);
		if (f < 0 || idx[f] >= 0 || (f == SVC_FAM_IPV6 && sock_family != AF_INET6))
			continue;
		idx[f] = i;
	}
}

int natinfo_pick_local(const union sockaddr_any *local, int n, enum svc_family f)
{
	for (int i = 0; i < n; i++)
		if (natinfo_family(&local[i]) == (int)f)
			return i;
	return -1;
}

int natinfo_first(const bool has[SVC_FAMILIES])
{
	if (has[SVC_FAM_IPV4])
		return SVC_FAM_IPV4;
	return has[SVC_FAM_IPV6] ? SVC_FAM_IPV6 : -1;
}
