#!/usr/bin/env bash
# meshd benchmark (issue 5), in the topology of tests/netns/agent_common.bash:
#
#   direct:  two agents behind port-preserving NATs, already registered, are
#            started at the same moment, with no relay running (so a ping can
#            only be answered through a direct tunnel); time until the first
#            ping between them is answered, and the path then reported.
#   relay:   an agent behind a symmetric NAT (masquerade random) and one behind
#            a port-preserving NAT, already registered, with a relay up; time
#            until the first ping is answered (it goes through the relay), and
#            until the direct attempt is given up (path "relayed").
#
# Targets (issue 5): direct under 1 s, relay fallback under 4 s. Nexodus
# reconciles every 5 s and waits 30 s before peering through a relay.
# The ping loop spawns one `ping -c 1 -W 0.2` after another: times carry a
# few ms of process start-up, and a probe that is lost costs up to 200 ms. Median of ROUNDS (default 5) rounds.
# MESHD_BEFORE=PATH (another meshd, e.g. one built from an older commit) runs
# the same rounds with it first, in the same lab, for a before/after.
source "$(dirname "$0")/../../tests/netns/agent_common.bash"
ROUNDS=${ROUNDS:-5}

need meshd meshsvc meshstun
[ "$(id -u)" -eq 0 ] || { echo "agent bench: needs root (namespaces)"; exit 1; }
setup || { echo "agent bench: topology failed"; exit 1; }
start_service && start_stun && make_vpc || { echo "agent bench: service failed"; dump_logs; exit 1; }

ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# first_ping NS IP DEADLINE_MS: the time (ms) of the first answered ping, or empty
first_ping() {
	local end=$(( $(ms) + $3 ))
	while [ "$(ms)" -lt $end ]; do
		if X "$1" ping -c 1 -W 0.2 "$2" >/dev/null 2>&1; then ms; return 0; fi
		sleep 0.005
	done
	return 1
}

# register NAME NS [ARGS]: once, so the rounds start already registered
register() {
	agent "$@"
	wait_for 10 test -n "$(tunnel_ip "$1")" || { echo "agent bench: $1 did not register"; dump_logs; exit 1; }
}

register n1 n1
register n2 n2
register r1 r1 --relay --listen-port 51820
register n3 n3
T2=$(tunnel_ip n2)
stop_agent n1; stop_agent n2; stop_agent n3
stop_agent r1

# rounds MESHD LABEL: the direct and relay rounds with that meshd
rounds() {
	local bin=$1 label=$2 r t t0 phf
	phf=$T/phases-$RANDOM.jsonl
	local -a direct=() relay=() fallback=() paths=()
	B=$(realpath "$(dirname "$bin")")
	# no relay runs during the direct rounds: a ping can only be answered directly
	for r in $(seq "$ROUNDS"); do
		t0=$(ms)
		agent n1 n1
		agent n2 n2
		t=$(first_ping n1 "$T2" 10000) || { echo "agent bench: $label round $r: no ping n1 -> n2 in 10 s"; dump_logs; exit 1; }
		direct+=($((t - t0)))
		paths+=("$(path n1 n2)")
		ctl n1 '{"cmd":"status"}' 2>/dev/null | jq -c '.phases // empty' >>"$phf"
		stop_agent n1; stop_agent n2
		sleep 1
	done
	agent r1 r1 --relay --listen-port 51820
	wait_for 10 test -n "$(tunnel_ip r1)" >/dev/null
	for r in $(seq "$ROUNDS"); do
		agent n2 n2
		wait_for 5 test -n "$(tunnel_ip n2)" >/dev/null
		t0=$(ms)
		agent n3 n3
		t=$(first_ping n3 "$T2" 10000) || { echo "agent bench: $label round $r: no ping n3 -> n2 in 10 s"; dump_logs; exit 1; }
		relay+=($((t - t0)))
		wait_for 8 path_is n3 n2 relayed || { echo "agent bench: $label round $r: n3 -> n2 never relayed"; dump_logs; exit 1; }
		fallback+=($(($(ms) - t0)))
		stop_agent n3; stop_agent n2
		sleep 1
	done
	stop_agent r1
	echo "${label}agent start -> first ping through a direct tunnel: median $(median "${direct[@]}") ms (rounds: ${direct[*]} ms; path then: ${paths[*]})"
	# the start-up critical path of n1 (issue 19), median per phase over the
	# rounds, in ms since meshd's main(); a meshd without it prints nothing
	[ -s "$phf" ] && jq -rs '
		def median: sort | .[(length - 1) / 2 | floor];
		[.[] | to_entries[]] | group_by(.key) | map({k: .[0].key, v: (map(.value) | median)})
		| sort_by(.v) | map("\(.k | sub("_ms$"; "")) \(.v)") | join(", ")' "$phf" |
		sed "s/^/${label}n1's start-up phases, median ms since main(): /"
	echo "${label}agent start behind a symmetric NAT -> first ping through the relay: median $(median "${relay[@]}") ms (rounds: ${relay[*]} ms)"
	echo "${label}agent start behind a symmetric NAT -> direct attempt given up (path relayed): median $(median "${fallback[@]}") ms (rounds: ${fallback[*]} ms; direct timeout 3000 ms)"
	for p in "${paths[@]}"; do [ "$p" = direct ] || { echo "agent bench: ${label}a direct round ended on path '$p'"; exit 1; }; done
}

after=$B/meshd
if [ -n "${MESHD_BEFORE:-}" ]; then
	[ -x "$MESHD_BEFORE" ] || { echo "agent bench: MESHD_BEFORE=$MESHD_BEFORE is not a program"; exit 1; }
	rounds "$MESHD_BEFORE" "before ($MESHD_BEFORE): "
	rounds "$after" "after: "
else
	rounds "$after" ""
fi
echo "targets: direct < 1000 ms, relay fallback < 4000 ms (Nexodus: 5 s reconcile loop, 30 s peering timeout)"
exit 0
