#!/usr/bin/env bash
# meshd data plane throughput: iperf3 TCP through a direct tunnel between two
# agents behind port-preserving NAT gateways (the topology of
# tests/netns/agent_common.bash), with the defaults (UDP GSO/GRO on the
# WireGuard socket, TUN offloads), with --no-udp-offload and with
# --no-tun-offload, in alternating rounds of the same run, so the ratios are
# what to read.
#
#   tools/bench/meshd_tput.sh      (or: make bench BENCH=meshd_tput)
#
# Tunables (environment): ROUNDS=3 SECONDS_PER_ROUND=10
source "$(dirname "$0")/meshd_pair.bash"
meshd_pair_lab meshd_tput

on=() off=() tunoff=()
for r in $(seq "$ROUNDS"); do
	for mode in on off tunoff; do
		flags=()
		[ "$mode" = off ] && flags=(--no-udp-offload)
		[ "$mode" = tunoff ] && flags=(--no-tun-offload)
		pair "${flags[@]}" || { echo "meshd_tput: round $r ($mode): no direct tunnel"; dump_logs; exit 1; }
		g=$(gbit)
		[ -n "$g" ] && [ "$g" != null ] || { echo "meshd_tput: round $r ($mode): iperf3 failed"; exit 1; }
		echo "  round $r  ${flags[*]:-defaults}  $g Gbit/s"
		case "$mode" in on) on+=("$g") ;; off) off+=("$g") ;; tunoff) tunoff+=("$g") ;; esac
		stop_agent n1; stop_agent n2
		sleep 0.5
	done
done
mon=$(median "${on[@]}") moff=$(median "${off[@]}") mtun=$(median "${tunoff[@]}")
echo "meshd direct tunnel, iperf3 TCP ${DUR} s x $ROUNDS: defaults median $mon Gbit/s, --no-udp-offload median $moff Gbit/s (ratio $(ratio "$mon" "$moff")x), --no-tun-offload median $mtun Gbit/s (ratio $(ratio "$mon" "$mtun")x)"
