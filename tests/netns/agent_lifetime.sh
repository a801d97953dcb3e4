#!/usr/bin/env bash
# meshd --measure-lifetime (issue 17): the agent measures its NAT's UDP
# mapping lifetime (RFC 5780 4.6: idle trials from 20 s, then 50 s or halving
# below, to within 2 s) and keeps its direct paths alive with half of it.
# Topology: see agent_common.bash (n3, r1 and r2 idle)
#
#   n1 --[gw1 masquerade, UDP conntrack timeout 15 s]--+
#   n2 --[gw2 masquerade, UDP conntrack timeout 15 s]--+-- pub: meshsvc, meshstun --rfc5780 on .1 and .2
#
# Shown: both agents meet directly; each logs a measured lifetime consistent
# with the gateways' 15 s (at least 12 s survived, under 15 s) and a
# persistent keepalive of at most 7 s (half of it, at most 7.5 s), in
# about 90 s (the search starts at 20 s, twice the default keepalive); then
# nothing crosses the tunnel for 60 s, four lifetimes, and the next ping in
# either direction is answered within 2 s over a path that never left
# direct. The default keepalive (10 s) also holds a 15 s mapping; what this
# test adds is the measurement and the keepalive it picks.
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun

if ! setup; then not_ok "topology"; exit 1; fi
for g in gw1 gw2; do
	X "$g" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=15 net.netfilter.nf_conntrack_udp_timeout_stream=15 ||
		{ not_ok "$g: UDP conntrack timeout 15 s"; exit 1; }
done
start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }

registered() { [ -n "$(tunnel_ip "$1")" ]; }

t0=$SECONDS
agent n1 n1 --measure-lifetime
agent n2 n2 --measure-lifetime
check "n1 and n2 register" wait_for 10 eval 'registered n1 && registered n2'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2)
check "n1 -> n2 path is direct" wait_for 10 path_is n1 n2 direct
check "n2 -> n1 path is direct" wait_for 5 path_is n2 n1 direct

# "persistent keepalive keepalive_s=7 previous_s=10 mapping_lifetime_ms=14062"
measured() { grep -o 'persistent keepalive keepalive_s=[0-9]* previous_s=[0-9]* mapping_lifetime_ms=[0-9]*' "$T/$1.log" | tail -n 1; }
both() { [ -n "$(measured n1)" ] && [ -n "$(measured n2)" ]; }
check "both agents measure their NAT's mapping lifetime within 4 minutes" wait_for 240 both
echo "# measured after $((SECONDS - t0)) s: n1: $(measured n1); n2: $(measured n2)"
for n in n1 n2; do
	line=$(measured "$n")
	ms=$(sed -n 's/.*mapping_lifetime_ms=\([0-9]*\).*/\1/p' <<<"$line")
	ka=$(sed -n 's/.*keepalive_s=\([0-9]*\) .*/\1/p' <<<"$line")
	check "$n: the mapping survived ${ms:-?} ms idle: at least 12 s, under 15 s" \
		eval '[ -n "$ms" ] && [ "$ms" -ge 12000 ] && [ "$ms" -lt 15000 ]'
	check "$n: persistent keepalive ${ka:-?} s, at most 7 (half the lifetime)" \
		eval '[ -n "$ka" ] && [ "$ka" -ge 5 ] && [ "$ka" -le 7 ]'
done
check "the discovery ended on n1" wait_for 10 eval \
	'[ "$(ctl n1 "{\"cmd\":\"status\"}" | jq -r .nat.running)" = false ]'

# 60 s with nothing between the peers but the agents' own keepalives
left() { cat "$T/n1.log" "$T/n2.log" | grep -c 'path peer=n[12] from=direct'; }
sleep 60
check "after 60 s idle, ping n1 -> n2 answered within 2 s" X n1 ping -c 1 -W 2 "$T2"
check "after 60 s idle, ping n2 -> n1 answered within 2 s" X n2 ping -c 1 -W 2 "$T1"
check "n1 -> n2 still direct" path_is n1 n2 direct
check "n2 -> n1 still direct" path_is n2 n1 direct
# one side's keepalives may silence the other's (WireGuard restarts the
# timer on receive): the side that hears nothing must probe, not give up
check "neither path ever left direct ($(left) times)" test "$(left)" -eq 0
echo "# took $((SECONDS - t0)) s"
[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
