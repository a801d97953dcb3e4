#!/usr/bin/env bash
# meshsim's lab lifecycle in real namespaces: `up`, `exec`, `down` leave
# nothing behind; `run` tears down on SIGINT and on a failed expectation;
# `clean` removes the lab of a meshsim that was killed with SIGKILL.
#
#   a (10.9.0.1) ---- lan (bridge in nmsXXXX-lan) ---- b (10.9.0.2)
#   b runs `sleep` as a process; a pings b.
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
tmp=$(mktemp -d /tmp/sim_lab.XXXXXX)
labs=()
cleanup() {
  for l in "${labs[@]}"; do "$M" down "$l" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

[ -x "$M" ] || { not_ok "$M is missing"; exit 1; }

cat >"$tmp/lab.json" <<'JSON'
{ "name": "sim-lab-test", "timeout_s": 30,
  "networks": [ { "name": "lan", "cidr": "10.9.0.0/24" } ],
  "nodes": [
    { "name": "a", "links": [ { "network": "lan" } ] },
    { "name": "b", "links": [ { "network": "lan" } ],
      "processes": [ { "name": "sleeper", "argv": ["sleep", "3171"] } ] } ],
  "expectations": [ { "ping": ["a", "b"] } ] }
JSON
# the same lab, with an expectation that waits long enough to be interrupted
sed 's/"expectations": \[/"expectations": [ { "sleep_ms": 20000 },/' "$tmp/lab.json" >"$tmp/slow.json"
# and one that cannot hold
sed 's/"ping": \["a", "b"\]/"ping": ["a", "10.9.0.77"], "within_ms": 500/' "$tmp/lab.json" >"$tmp/bad.json"

# what a lab leaves: namespaces, state file, processes in them
leftovers() {  # LAB
  local n
  n=$(ip netns list | grep -c "^$1-")
  [ -e "/run/meshsim/$1.json" ] && n=$((n + 1))
  echo "$n"
}
lab_procs() {  # LAB: processes whose namespace is one of the lab's
  local n=0 ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$1-"); do
    n=$((n + $(ip netns pids "$ns" | wc -l)))
  done
  echo "$n"
}

# --- up / exec / down --------------------------------------------------------
lab=$(timeout 30 "$M" up "$tmp/lab.json" 2>"$tmp/up.err")
labs+=("$lab")
check "up prints the lab name" eval '[[ "$lab" =~ ^nms[0-9a-f]{4}$ ]]'
check "up makes a namespace per node and network" eval '[ "$(ip netns list | grep -c "^$lab-")" -eq 3 ]'
check "ip netns exec works on the lab" eval 'ip netns exec "$lab-a" ip -4 -o addr show eth0 | grep -q "10.9.0.1/24"'
check "exec runs in the node with its host name" eval '[ "$("$M" exec "$lab" b -- hostname)" = b ]'
check "exec: a pings b" eval '"$M" exec "$lab" a -- ping -c 1 -W 1 10.9.0.2 >/dev/null'
check "exec passes the exit status" eval '"$M" exec "$lab" a -- sh -c "exit 7"; [ $? -eq 7 ]'
check "the process runs inside b" eval '[ "$(lab_procs "$lab")" -ge 2 ]'   # sleep + the capture process
check "list shows the lab" eval '"$M" list | grep -q "^$lab .*sim-lab-test"'
check "down removes the lab" eval '"$M" down "$lab" >/dev/null'
check "down leaves no namespace or state file" eval '[ "$(leftovers "$lab")" -eq 0 ]'
check "down leaves no process" eval '! pgrep -f "^sleep 3171$" >/dev/null'
check "down on a gone lab fails" eval '! "$M" down "$lab" 2>/dev/null'

# --- run: pass, then a failed expectation -------------------------------------
out=$(timeout 60 "$M" run "$tmp/lab.json" --out "$tmp/run1" 2>"$tmp/run1.err"); rc=$?
lab=$(sed -n 's/.*(lab \(nms[0-9a-f]*\)).*/\1/p' <<<"$out" | head -1)
check "run passes" eval '[ $rc -eq 0 ] && grep -q "PASS" <<<"$out"'
check "run writes report.json with the verdict" eval 'grep -q "\"verdict\": \"PASS\"" "$tmp/run1/report.json"'
check "run writes a pcap per link" eval '[ -s "$tmp/run1/pcap/a-eth0.pcap" ] && [ -s "$tmp/run1/pcap/b-eth0.pcap" ]'
check "the pcap holds the ping" eval 'tcpdump -nr "$tmp/run1/pcap/a-eth0.pcap" 2>/dev/null | grep -q "10.9.0.1 > 10.9.0.2: ICMP echo request"'
check "run leaves nothing behind" eval '[ -n "$lab" ] && [ "$(leftovers "$lab")" -eq 0 ]'
out=$(timeout 60 "$M" run "$tmp/bad.json" --out "$tmp/run2" 2>/dev/null); rc=$?
lab=$(sed -n 's/.*(lab \(nms[0-9a-f]*\)).*/\1/p' <<<"$out" | head -1)
check "a failed expectation exits 1" eval '[ $rc -eq 1 ] && grep -q "FAIL" <<<"$out"'
check "a failed run leaves nothing behind" eval '[ -n "$lab" ] && [ "$(leftovers "$lab")" -eq 0 ]'

# --- SIGINT during run --------------------------------------------------------
"$M" run "$tmp/slow.json" --out "$tmp/run3" >"$tmp/run3.out" 2>"$tmp/run3.err" &
pid=$!
for _ in $(seq 100); do grep -q "expect 1/" "$tmp/run3.err" 2>/dev/null && break; sleep 0.1; done
lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run3.err" | head -1)
labs+=("$lab")
check "the slow lab is up" eval '[ -n "$lab" ] && [ "$(ip netns list | grep -c "^$lab-")" -eq 3 ]'
kill -INT $pid
wait $pid; rc=$?
check "SIGINT ends run with 130" eval '[ $rc -eq 130 ]'
check "SIGINT tears the lab down" eval '[ "$(leftovers "$lab")" -eq 0 ] && ! pgrep -f "^sleep 3171$" >/dev/null'
check "the interrupted run still reports" eval 'grep -q "\"verdict\": \"INTERRUPTED\"" "$tmp/run3/report.json"'

# --- SIGTERM during run --------------------------------------------------------
"$M" run "$tmp/slow.json" --out "$tmp/run8" >/dev/null 2>"$tmp/run8.err" &
pid=$!
for _ in $(seq 100); do grep -q "expect 1/" "$tmp/run8.err" 2>/dev/null && break; sleep 0.1; done
lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run8.err" | head -1)
labs+=("$lab")
kill -TERM $pid
wait $pid; rc=$?
check "SIGTERM ends run with 130 and tears the lab down" eval '[ $rc -eq 130 ] && [ -n "$lab" ] && [ "$(leftovers "$lab")" -eq 0 ]'

# --- the scenario's timeout ----------------------------------------------------
sed 's/"timeout_s": 30/"timeout_s": 2/' "$tmp/slow.json" >"$tmp/timeout.json"
start=$SECONDS
out=$(timeout 60 "$M" run "$tmp/timeout.json" --out "$tmp/run7" 2>/dev/null); rc=$?
lab=$(sed -n 's/.*(lab \(nms[0-9a-f]*\)).*/\1/p' <<<"$out" | head -1)
check "timeout_s ends the run as TIMEOUT with status 1" eval '[ $rc -eq 1 ] && grep -q "TIMEOUT" <<<"$out" && [ $((SECONDS - start)) -lt 10 ]'
check "a timed-out run leaves nothing behind" eval '[ -n "$lab" ] && [ "$(leftovers "$lab")" -eq 0 ] && ! pgrep -f "^sleep 3171$" >/dev/null'

# --- SIGKILL, then clean --------------------------------------------------------
"$M" run "$tmp/slow.json" --out "$tmp/run4" >/dev/null 2>"$tmp/run4.err" &
pid=$!
for _ in $(seq 100); do grep -q "expect 1/" "$tmp/run4.err" 2>/dev/null && break; sleep 0.1; done
lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run4.err" | head -1)
labs+=("$lab")
kill -KILL $pid; wait $pid 2>/dev/null
check "a killed run leaves its namespaces" eval '[ -n "$lab" ] && [ "$(ip netns list | grep -c "^$lab-")" -eq 3 ]'
check "clean removes the leftovers" eval '"$M" clean | grep -q "lab $lab: 3 namespaces removed"'
check "after clean nothing remains" eval '[ "$(leftovers "$lab")" -eq 0 ] && ! pgrep -f "^sleep 3171$" >/dev/null'

# --- nat on a namespace of one's own ------------------------------------------
ns="nmt-simnat-$$"
ip netns add "$ns"
ip -n "$ns" link add wan type veth peer name wanpeer
ip -n "$ns" addr add 203.0.113.7/24 dev wan
ip -n "$ns" link set wan up
check "nat applies a preset to any namespace" eval '"$M" nat "$ns" symmetric --wan wan | grep -q "symmetric"'
check "nat rejects a bad model naming the member" eval '{ "$M" nat "$ns" "{\"mapping\":\"x\"}" --wan wan 2>&1; true; } | grep -q "mapping: unknown value"'
check "nat --remove" eval '"$M" nat "$ns" --remove | grep -q "removed"'
ip netns del "$ns"

# --- path expectations read `meshctl peers -o json` in the pinging node -------
# A stand-in meshctl beside a copy of meshsim (its build directory) answers
# for node a: b is "direct" at b's lab address, which a can ping.
mkdir -p "$tmp/bin"
cp "$M" "$tmp/bin/meshsim"
cat >"$tmp/bin/meshctl" <<'SH'
#!/bin/sh
[ "$1 $2 $3" = "peers -o json" ] || exit 2
[ "$MESHSIM_NODE" = a ] && [ "$(hostname)" = a ] || exit 3
echo '{"peers": [{"name": "b", "path": "direct", "tunnel_ip": "10.9.0.2", "rx_bytes": 0}]}'
SH
chmod +x "$tmp/bin/meshctl"
sed 's/"ping": \["a", "b"\]/"ping": ["a", "b"], "path": "direct", "within_ms": 3000/' "$tmp/lab.json" >"$tmp/path.json"
sed 's/"ping": \["a", "b"\]/"ping": ["a", "b"], "path": "relayed", "within_ms": 600/' "$tmp/lab.json" >"$tmp/path-bad.json"
out=$(timeout 60 "$tmp/bin/meshsim" run "$tmp/path.json" --out "$tmp/run5" 2>/dev/null); rc=$?
check "a path expectation holds when meshctl reports it and the tunnel IP answers" eval '[ $rc -eq 0 ] && grep -q "10.9.0.2 via direct" <<<"$out"'
out=$(timeout 60 "$tmp/bin/meshsim" run "$tmp/path-bad.json" --out "$tmp/run6" 2>/dev/null); rc=$?
check "a path expectation fails on another path, naming it" eval '[ $rc -eq 1 ] && grep -q "not relayed within 600 ms: path is direct" <<<"$out"'

# --- an action with "if": skipped when the condition fails, done when it holds
sed 's/"expectations": \[.*\] }$/"expectations": [ { "stop": "b\/sleeper", "if": "false", "node": "a" }, { "command": "pgrep -f \\"^sleep 3171$\\"", "node": "b" }, { "stop": "b\/sleeper", "if": "test -d ${run}", "node": "a" }, { "command": "! pgrep -f \\"^sleep 3171$\\"", "node": "b" } ] }/' "$tmp/lab.json" >"$tmp/cond.json"
out=$(timeout 60 "$M" run "$tmp/cond.json" --out "$tmp/run7" 2>/dev/null); rc=$?
check "an action whose condition fails is skipped, one whose condition holds is done" eval \
  '[ $rc -eq 0 ] && [ "$(jq -r "[.expectations[].verdict] | join(\" \")" "$tmp/run7/report.json")" = "skipped pass pass pass" ]'

check "--help works for every verb" eval 'for v in run up exec down list nat clean validate; do "$M" $v --help | grep -q "usage: meshsim $v" || exit 1; done'

tap_exit
