# Shared by tools/bench/meshd_tput.sh and policy_tput.sh (sourced, not run:
# `make bench` runs only *.sh): two meshd agents, n1 and n2, behind the
# port-preserving NAT gateways of tests/netns/agent_common.bash, a direct
# tunnel between them, and iperf3 TCP n1 -> n2 through it.
#
#   meshd_pair_lab NAME     the topology, meshsvc, meshstun and a VPC (exits
#                           with a message naming NAME on failure)
#   pair [MESHD FLAGS]      n1 and n2 up and pinging each other directly; T2 is
#                           n2's tunnel address
#   gbit                    iperf3 n1 -> n2 for DUR s, in Gbit/s (receiver)
#   median N...; ratio A B
source "$(dirname "${BASH_SOURCE[0]}")/../../tests/netns/agent_common.bash"
ROUNDS=${ROUNDS:-3}
DUR=${SECONDS_PER_ROUND:-10}

meshd_pair_lab() {
	need meshd meshsvc meshstun
	[ "$(id -u)" -eq 0 ] || { echo "$1: needs root (namespaces)"; exit 1; }
	command -v iperf3 >/dev/null || { echo "$1: iperf3 is missing (make deps)"; exit 1; }
	setup || { echo "$1: topology failed"; exit 1; }
	start_service && start_stun && make_vpc || { echo "$1: service failed"; dump_logs; exit 1; }
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

pair() {
	agent n1 n1 "$@"
	agent n2 n2 "$@"
	wait_for 15 eval '[ -n "$(tunnel_ip n1)" ] && [ -n "$(tunnel_ip n2)" ]' || return 1
	T2=$(tunnel_ip n2)
	wait_for 15 ping_ok n1 "$T2" || return 1
	wait_for 10 path_is n1 n2 direct
}

gbit() {
	X n2 iperf3 -s -1 >/dev/null 2>&1 &
	local srv=$! out
	for _ in $(seq 50); do X n2 ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
	out=$(X n1 iperf3 -c "$T2" -t "$DUR" -J 2>/dev/null)
	wait "$srv" 2>/dev/null
	jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100' <<<"$out"
}
