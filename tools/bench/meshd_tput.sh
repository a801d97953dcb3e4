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
source "$(dirname "$0")/../../tests/netns/agent_common.bash"
ROUNDS=${ROUNDS:-3}
DUR=${SECONDS_PER_ROUND:-10}

need meshd meshsvc meshstun
[ "$(id -u)" -eq 0 ] || { echo "meshd_tput: needs root (namespaces)"; exit 1; }
command -v iperf3 >/dev/null || { echo "meshd_tput: iperf3 is missing (make deps)"; exit 1; }
setup || { echo "meshd_tput: topology failed"; exit 1; }
start_service && start_stun && make_vpc || { echo "meshd_tput: service failed"; dump_logs; exit 1; }

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# pair [MESHD FLAGS]: n1 and n2 up and pinging each other directly
pair() {
	agent n1 n1 "$@"
	agent n2 n2 "$@"
	wait_for 15 eval '[ -n "$(tunnel_ip n1)" ] && [ -n "$(tunnel_ip n2)" ]' || return 1
	T2=$(tunnel_ip n2)
	wait_for 15 ping_ok n1 "$T2" || return 1
	wait_for 10 path_is n1 n2 direct
}

# gbit: iperf3 n1 -> n2 for DUR s, in Gbit/s (receiver side)
gbit() {
	X n2 iperf3 -s -1 >/dev/null 2>&1 &
	local srv=$! out
	for _ in $(seq 50); do X n2 ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
	out=$(X n1 iperf3 -c "$T2" -t "$DUR" -J 2>/dev/null)
	wait "$srv" 2>/dev/null
	jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' <<<"$out"
}

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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "meshd direct tunnel, iperf3 TCP ${DUR} s x $ROUNDS: defaults median $mon Gbit/s, --no-udp-offload median $moff Gbit/s (ratio $(ratio "$mon" "$moff")x), --no-tun-offload median $mtun Gbit/s (ratio $(ratio "$mon" "$mtun")x)"
