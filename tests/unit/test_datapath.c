/* datapath: where a relay sends what it decrypted (issue 15 point 9) */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>

#include "agent/meshd/meshd.h"

Test(datapath, relay_dest)
{
	static const struct {
		const char *dst;
		int version;
		enum relay_dest want;
	} v[] = {
		{ "100.64.0.1", 4, RELAY_DEST_SELF },
		{ "100.64.0.7", 4, RELAY_DEST_PEER },
		{ "100.64.0.255", 4, RELAY_DEST_PEER },
		{ "10.0.0.1", 4, RELAY_DEST_OUTSIDE },		/* the relay host's LAN */
		{ "198.51.100.1", 4, RELAY_DEST_OUTSIDE },	/* the internet */
		{ "100.64.1.1", 4, RELAY_DEST_OUTSIDE },
		{ "100.64.0.7", 6, RELAY_DEST_OUTSIDE },	/* the VPC is IPv4 */
	};
	static struct meshd m;
	uint8_t ip[40];

	memset(&m, 0, sizeof(m));
	cr_assert_eq(cidr_parse("100.64.0.0/24", false, &m.vpc), 0);
	m.has_vpc = true;
	cr_assert_eq(addr_parse_ip("100.64.0.1", 0, &m.tip), 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(ip, 0, sizeof(ip));
		ip[0] = (uint8_t)(v[i].version << 4 | 5);
		inet_pton(AF_INET, v[i].dst, ip + 16);
		cr_expect_eq(datapath_relay_dest(&m, ip, sizeof(ip)), v[i].want, "%s (IPv%d)", v[i].dst,
			     v[i].version);
	}
	cr_expect_eq(datapath_relay_dest(&m, ip, 19), RELAY_DEST_OUTSIDE, "too short");
	m.has_vpc = false;
	ip[0] = 0x45;
	cr_expect_eq(datapath_relay_dest(&m, ip, sizeof(ip)), RELAY_DEST_OUTSIDE, "no VPC yet");
}
