/* sim/expect: what meshsim reads from the programs it runs to decide an
 * expectation (ping's summary, meshctl peers -o json). */
#include <criterion/criterion.h>
#include <errno.h>

#include "sim/expect.h"

Test(sim_expect, ping_output)
{
	int sent, got;
	double rtt;
	cr_assert_eq(sim_ping_parse("--- 1.2.3.4 ping statistics ---\n3 packets transmitted, 2 received, 33% packet loss, time 401ms\n"
				    "rtt min/avg/max/mdev = 0.050/0.075/0.100/0.025 ms\n", &sent, &got, &rtt), 0);
	cr_assert_eq(sent, 3);
	cr_assert_eq(got, 2);
	cr_assert_float_eq(rtt, 0.075, 1e-9);
	cr_assert_eq(sim_ping_parse("1 packets transmitted, 0 received, 100% packet loss, time 0ms\n", &sent, &got, &rtt), 0);
	cr_assert_eq(got, 0);
	cr_assert_lt(rtt, 0);
	cr_assert_eq(sim_ping_parse("ping: connect: Network is unreachable\n", &sent, &got, &rtt), -EINVAL);
}

Test(sim_expect, meshctl_peers)
{
	char path[16], ip[64], err[200];
	const char *arr = "[{\"name\": \"n1\", \"path\": \"relayed\", \"tunnel_ip\": \"100.64.0.2\"},"
			  " {\"name\": \"n2\", \"path\": \"direct\", \"tunnel_ip\": \"100.64.0.3\", \"rtt_ms\": 1.5}]";
	cr_assert_eq(sim_peers_find(arr, "n2", path, sizeof(path), ip, sizeof(ip), err, sizeof(err)), 0);
	cr_assert_str_eq(path, "direct");
	cr_assert_str_eq(ip, "100.64.0.3");
	cr_assert_eq(sim_peers_find("{\"peers\": [{\"name\": \"n1\", \"path\": \"relayed\", \"tunnel_ip\": \"100.64.0.2\"}]}",
				    "n1", path, sizeof(path), ip, sizeof(ip), err, sizeof(err)), 0);
	cr_assert_str_eq(path, "relayed");
	cr_assert_eq(sim_peers_find(arr, "n9", path, sizeof(path), ip, sizeof(ip), err, sizeof(err)), -ENOENT);
	cr_assert_eq(sim_peers_find("[{\"name\": \"n1\", \"path\": \"direct\"}]", "n1", path, sizeof(path), ip,
				    sizeof(ip), err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "meshctl peers -o json: peer n1 lacks tunnel_ip");
	cr_assert_eq(sim_peers_find("{\"peers\": 3}", "n1", path, sizeof(path), ip, sizeof(ip), err, sizeof(err)), -EINVAL);
	cr_assert_eq(sim_peers_find("not json", "n1", path, sizeof(path), ip, sizeof(ip), err, sizeof(err)), -EINVAL);
}
