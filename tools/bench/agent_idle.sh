#!/usr/bin/env bash
# meshd idle wake-ups (issue 14): how often an agent with 10 established
# peers and no traffic wakes up, the meshd of the base commit (a 50 ms
# housekeeping tick) against this tree's (one timer at the cores' earliest
# deadline), in the same run and the same lab:
#
#   a0 203.0.113.30 --+
#   a1 203.0.113.31 --+
#   ...               +-- br0 in [pub]: 203.0.113.1  meshsvc :8080, meshstun :3478
#   a10 203.0.113.40 -+                 203.0.113.2  meshstun :3478
#
# Eleven agents on one public segment (no NAT: every pair is direct at once),
# one VPC per variant. Once a0 has all ten peers direct and the network is
# quiet for SETTLE seconds, a0's main thread is watched for DURATION seconds:
# each wake-up of its event loop ends a sleep in epoll_wait, a voluntary
# context switch (/proc/PID/task/PID/status), so their count over the time is
# the wake-up rate. The helper threads that talk to meshsvc have their own
# task ids and are not counted.
#
# The base meshd is built from BASE (default 1d20d4d, the commit before the
# split) into a temporary directory, or taken from MESHD_BEFORE=PATH.
source "$(dirname "$0")/../../tests/netns/agent_common.bash"
BASE=${BASE:-1d20d4d}
DURATION=${DURATION:-30}
SETTLE=${SETTLE:-5}
PEERS=10
NS=(pub)
for i in $(seq 0 $PEERS); do NS+=("a$i"); done

need meshd meshsvc meshstun
[ "$(id -u)" -eq 0 ] || { echo "agent_idle bench: needs root (namespaces)"; exit 1; }

# the base meshd: MESHD_BEFORE, or built from BASE
before=${MESHD_BEFORE:-}
if [ -z "$before" ]; then
	src="$T/base"
	mkdir -p "$src"
	git -C "$(dirname "$0")/../.." archive "$BASE" | tar -x -C "$src" || { echo "agent_idle bench: no commit $BASE"; exit 1; }
	echo "building meshd of $BASE (for the comparison) ..."
	make -C "$src" -j2 build/meshd >"$T/base-build.log" 2>&1 || { echo "agent_idle bench: base build failed"; tail -n 20 "$T/base-build.log"; exit 1; }
	before="$src/build/meshd"
fi
[ -x "$before" ] || { echo "agent_idle bench: $before is not a program"; exit 1; }

for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || exit 1; done
X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 || exit 1
for i in $(seq 0 $PEERS); do wan "a$i" "203.0.113.$((30 + i))" || exit 1; done
start_service && start_stun || { echo "agent_idle bench: service failed"; dump_logs; exit 1; }

# direct_peers NAME: how many of NAME's peers are direct
direct_peers() { ctl "$1" '{"cmd":"peers"}' 2>/dev/null | jq '[.peers[] | select(.path == "direct")] | length'; }
all_direct() { [ "$(direct_peers "$1")" = "$PEERS" ]; }
vcsw() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$1/task/$1/status"; }

# vpc NAME: a VPC of its own and a registration key for it in $T/regkey
vpc() {
	local id
	id=$(api POST /api/vpcs "{\"name\":\"$1\"}" | jq -r .id) && [ -n "$id" ] && [ "$id" != null ] &&
		(umask 077 && api POST /api/reg-keys "{\"vpc_id\":\"$id\"}" | jq -r .secret >"$T/regkey") &&
		[ -s "$T/regkey" ] && [ "$(cat "$T/regkey")" != null ]
}

# idle VARIANT MESHD: a0's wake-ups per second into RATE (no subshell: the
# agents' pids must reach cleanup)
idle() {
	local variant=$1 bin=$2 i pid c0 c1 t0 t1
	vpc "$variant" || { echo "agent_idle bench: no VPC"; exit 1; }
	for i in $(seq 0 $PEERS); do
		B=$(realpath "$(dirname "$bin")") agent "$variant-a$i" "a$i"
	done
	wait_for 60 all_direct "$variant-a0" ||
		{ echo "agent_idle bench: $variant: a0 has $(direct_peers "$variant-a0") of $PEERS peers direct"; dump_logs; exit 1; }
	sleep "$SETTLE"
	pid=${PIDS[$variant-a0]}
	c0=$(vcsw "$pid"); t0=$(date +%s%N)
	sleep "$DURATION"
	c1=$(vcsw "$pid"); t1=$(date +%s%N)
	for i in $(seq 0 $PEERS); do stop_agent "$variant-a$i"; done
	RATE=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", c / (t / 1e9) }')
}

idle before "$before"
b=$RATE
idle after "$B/meshd"
echo "idle meshd with $PEERS direct peers, wake-ups per second of its loop over ${DURATION} s: before ($BASE) $b, after $RATE"
