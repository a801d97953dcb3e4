#!/usr/bin/env bash
# Data-plane throughput with a 256-rule security group (issue 16: within 10%
# of the same run without policy): iperf3 TCP n1 -> n2 through meshd's direct
# tunnel (the lab of meshd_tput.sh), in alternating rounds of one run:
#
#   none    both agents with --no-policy: no nftables table at all
#   group   both agents enforcing, the table inet natmesh holding a group of
#           256 inbound and 256 outbound rules (tcp, IPv4): 255 that do not
#           match iperf3 (the peer's address in each rule's set, a port of
#           10000-10254), then tcp 5201 from/to the VPC
#
# Each new flow walks 255 non-matching rules in n1's outbound chain and in
# n2's inbound chain before the last one accepts it; its later packets (and
# the replies) are accepted by `ct state established,related`, the first rule
# of each chain. So this measures a group's cost on a flow's packets
# (the hooks, the jump, the conntrack lookup), not per-packet rule walking.
#
# A service without security groups makes meshd allow everything (logged),
# replacing even a group kept in its state dir, so the group goes in after
# registration with build/polnft, meshd's own renderer and commit (the same
# table, as meshd would send it); meshd does not apply its group again until
# the service sends another. After each such round the table still holds the
# 256 rules and the last rule counted iperf3's connections, or the run fails.
# The drops it prints (a few, or the run fails) come after the measurement:
# iperf3's server closes the data connection with segments in flight, and
# its resets and the last segments are no longer established in conntrack.
#
#   tools/bench/policy_tput.sh      (or: make bench BENCH=policy_tput)
#
# Tunables (environment): ROUNDS=3 SECONDS_PER_ROUND=10
source "$(dirname "$0")/meshd_pair.bash"
need polnft
meshd_pair_lab policy_tput
VPC_CIDR=$(api GET /api/vpcs | jq -r '.[0].ipv4_cidr')

jq -n --arg vpc "$VPC_CIDR" '
def rules: [range(255) | {ip_protocol: "tcp", from_port: (10000 + .), to_port: (10000 + .),
	ip_ranges: [$vpc, "10.\(.).0.0/16", "192.168.\(.).0/24", "172.16.\(.).1-172.16.\(.).200"]}]
	+ [{ip_protocol: "tcp", from_port: 5201, to_port: 5201, ip_ranges: [$vpc]}];
{id: "sg-bench", name: "bench256", revision: 1, inbound_rules: rules, outbound_rules: rules}' >"$T/group.json" ||
	{ echo "policy_tput: no group"; exit 1; }

# group_in NAME: the group in NAME's table, once meshd applied the service's answer
group_in() {
	wait_for 10 eval "ctl $1 '{\"cmd\":\"status\"}' | jq -e '.policy.source == \"absent\" or .policy.source == \"service\"' >/dev/null" &&
		X "$1" "$B/polnft" apply "$T/group.json" "nm-$1"
}
rules_in() { X "$1" nft list table inet natmesh | grep -c 'comment "'"$2"'_rules\['; }
# pkts NAME KEY: a counter of polnft counters (inbound_rules[255], inbound_drop, ...)
pkts() { X "$1" "$B/polnft" counters "$T/group.json" | awk -v k="$2" '$1 == k { print $2 }'; }

echo "iperf3 $(iperf3 --version | head -1 | awk '{ print $2 }'), ${SECONDS_PER_ROUND:-10} s x $ROUNDS rounds"
none=() group=()
for r in $(seq "$ROUNDS"); do
	for mode in none group; do
		flags=()
		[ "$mode" = none ] && flags=(--no-policy)
		pair "${flags[@]}" || { echo "policy_tput: round $r ($mode): no direct tunnel"; dump_logs; exit 1; }
		if [ "$mode" = group ]; then
			group_in n1 && group_in n2 || { echo "policy_tput: round $r: group not applied"; dump_logs; exit 1; }
		elif X n1 nft list table inet natmesh >/dev/null 2>&1 || X n2 nft list table inet natmesh >/dev/null 2>&1; then
			echo "policy_tput: round $r: a table with --no-policy"; exit 1
		fi
		g=$(gbit)
		[ -n "$g" ] && [ "$g" != null ] || { echo "policy_tput: round $r ($mode): iperf3 failed"; exit 1; }
		what="--no-policy"
		if [ "$mode" = group ]; then
			o=$(rules_in n1 outbound) i=$(rules_in n2 inbound)
			o255=$(pkts n1 'outbound_rules[255]') i255=$(pkts n2 'inbound_rules[255]')
			drops=$(($(pkts n1 outbound_drop) + $(pkts n1 inbound_drop) + $(pkts n2 outbound_drop) + $(pkts n2 inbound_drop)))
			what="group: n1 outbound $o rules (last: $o255 packets), n2 inbound $i rules (last: $i255 packets), $drops dropped"
			[ "$o" -eq 256 ] && [ "$i" -eq 256 ] && [ "${o255:-0}" -gt 0 ] && [ "${i255:-0}" -gt 0 ] && [ "$drops" -lt 100 ] ||
				{ echo "policy_tput: round $r: the group was not what iperf3 went through ($what)"; exit 1; }
		fi
		echo "  round $r  $g Gbit/s  $what"
		case "$mode" in none) none+=("$g") ;; group) group+=("$g") ;; esac
		stop_agent n1; stop_agent n2
		sleep 0.5
	done
done
mn=$(median "${none[@]}") mg=$(median "${group[@]}")
echo "meshd direct tunnel, iperf3 TCP ${DUR} s x $ROUNDS: --no-policy median $mn Gbit/s, 256-rule group median $mg Gbit/s:" \
	"group/none $(ratio "$mg" "$mn")x; target within 10%: $(awk -v a="$mg" -v b="$mn" 'BEGIN { print (a >= 0.9 * b ? "met" : "NOT met") }')"
