#!/usr/bin/env bash
# meshsim lab scale: 50 sites, each a NAT gateway (the four presets in turn)
# and a host, plus meshstun and meshsvc on the internet: 102 nodes, 51
# networks, 153 namespaces, 152 links, 51 capture processes. Measures the
# time of `meshsim up` (build, NAT, captures, processes ready), of `meshsim
# down`, and the lab's memory. Side by side, in the same run, the same
# topology without NAT, captures or processes is built by meshsim and by
# iproute2 commands (ip netns add / ip link / ip addr / ip route), the
# usual way namespace tests are written; the ratio compares the two.
# Then the 100-agent lab (see below): time until every agent is registered
# and has a path to every other, time to tear down, peak memory.
set -euo pipefail
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
SITES=${SITES:-50}
[ "$(id -u)" -eq 0 ] || { echo "sim bench: needs root" >&2; exit 1; }
for p in meshsim meshstun meshsvc; do [ -x "$BUILD/$p" ] || { echo "sim bench: $BUILD/$p missing" >&2; exit 1; }; done
tmp=$(mktemp -d /tmp/simbench.XXXXXX)
labs=()
shprefix="nmb$$"
cleanup() {
  for l in "${labs[@]}"; do "$M" down "$l" >/dev/null 2>&1 || true; done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$shprefix-" || true); do ip netns del "$ns"; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

presets=(full-cone restricted-cone port-restricted-cone symmetric)
# scenario: NAT=1 with gateways, captures and processes; NAT=0 routers only
gen() {  # NAT
  local nat=$1 i
  {
    echo '{ "name": "bench-sim", "timeout_s": 300, "networks": [ { "name": "internet", "cidr": "198.18.0.0/16" }'
    for i in $(seq 1 "$SITES"); do printf ', { "name": "s%d", "cidr": "10.%d.%d.0/24" }' "$i" $((i / 250)) $((i % 250)); done
    echo '], "nodes": ['
    if [ "$nat" = 1 ]; then
      echo '{ "name": "stun", "links": [ { "network": "internet", "address": "198.18.0.10" } ],'
      echo '  "processes": [ { "argv": ["meshstun", "--listen", "${ip}:3478"], "ready": { "udp": 3478 } } ] },'
      echo '{ "name": "svc", "links": [ { "network": "internet", "address": "198.18.0.20" } ],'
      echo '  "processes": [ { "argv": ["meshsvc", "--listen", "${ip}:8443", "--db", "${run}/meshsvc.sqlite", "--tls-cert", "${tls_cert}", "--tls-key", "${tls_key}"], "ready": { "tcp": 8443 } } ] },'
    fi
    for i in $(seq 1 "$SITES"); do
      if [ "$nat" = 1 ]; then
        printf '{ "name": "gw%d", "kind": "nat", "nat": "%s", ' "$i" "${presets[$((i % 4))]}"
      else
        printf '{ "name": "gw%d", "kind": "router", ' "$i"
      fi
      printf '"links": [ { "network": "internet", "ifname": "wan", "address": "198.18.1.%d" }, { "network": "s%d", "ifname": "lan" } ] },\n' "$i" "$i"
      printf '{ "name": "h%d", "links": [ { "network": "s%d" } ], "routes": [ { "dst": "default", "via": "gw%d" } ] }' "$i" "$i" "$i"
      [ "$i" -lt "$SITES" ] && echo ','
    done
    echo '] }'
  } >"$tmp/lab$nat.json"
}
gen 1; gen 0
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# the same plain topology through iproute2, one command per step
ip_up() {
  local p=$shprefix i ns
  for n in internet $(seq -f 's%g' 1 "$SITES") $(seq -f 'gw%g' 1 "$SITES") $(seq -f 'h%g' 1 "$SITES"); do
    ip netns add "$p-$n"; ip -n "$p-$n" link set lo up
  done
  for n in internet $(seq -f 's%g' 1 "$SITES"); do
    ip -n "$p-$n" link add br0 type bridge; ip -n "$p-$n" link set br0 up
  done
  for i in $(seq 1 "$SITES"); do
    ip netns exec "$p-gw$i" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$p-internet" link add "gw$i" type veth peer name wan netns "$p-gw$i"
    ip -n "$p-internet" link set "gw$i" master br0 up
    ip -n "$p-s$i" link add "gw$i" type veth peer name lan netns "$p-gw$i"
    ip -n "$p-s$i" link set "gw$i" master br0 up
    ip -n "$p-s$i" link add "h$i" type veth peer name eth0 netns "$p-h$i"
    ip -n "$p-s$i" link set "h$i" master br0 up
    ip -n "$p-gw$i" addr add "198.18.1.$i/16" dev wan; ip -n "$p-gw$i" link set wan up
    ip -n "$p-gw$i" addr add "10.$((i / 250)).$((i % 250)).1/24" dev lan; ip -n "$p-gw$i" link set lan up
    ip -n "$p-h$i" addr add "10.$((i / 250)).$((i % 250)).2/24" dev eth0; ip -n "$p-h$i" link set eth0 up
    ip -n "$p-h$i" route add default via "10.$((i / 250)).$((i % 250)).1"
  done
}
ip_down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$shprefix-"); do ip netns del "$ns"; done
}

avail_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
lab_pss_kb() {  # LAB: proportional memory (shared pages split) of the lab's processes
  local ns pid sum=0
  for ns in $(ip netns list | awk '{print $1}' | grep "^$1-"); do
    for pid in $(ip netns pids "$ns"); do
      sum=$((sum + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
    done
  done
  echo "$sum"
}

echo "lab: $SITES sites (NAT gateway + host each), meshstun, meshsvc: $((2 * SITES + 2)) nodes, $((SITES + 1)) networks"
before=$(avail_kb)
t=$(date +%s%N)
lab=$("$M" up "$tmp/lab1.json" --out "$tmp/run1" 2>"$tmp/up1.err") || { tail -5 "$tmp/up1.err"; exit 1; }
up_ms=$(ms "$t"); labs+=("$lab")
after=$(avail_kb)
pss=$(lab_pss_kb "$lab")
nsn=$(ip netns list | grep -c "^$lab-")
"$M" exec "$lab" "h$SITES" -- ping -c 1 -W 2 198.18.0.10 >/dev/null || { echo "sim bench: the lab does not route" >&2; exit 1; }
t=$(date +%s%N)
"$M" down "$lab" >/dev/null
down_ms=$(ms "$t"); labs=()
printf 'meshsim up   (NAT lab, %d namespaces, captures, meshstun, meshsvc): %6d ms\n' "$nsn" "$up_ms"
printf 'meshsim down (NAT lab):                                              %6d ms\n' "$down_ms"
printf 'lab processes, proportional memory (%d captures + 2 servers):       %6d KiB\n' "$((SITES + 1))" "$pss"
printf 'MemAvailable drop while up (kernel and processes; machine shared):  %6d KiB\n' "$((before - after))"

echo "same topology without NAT, captures or processes, side by side:"
t=$(date +%s%N)
lab=$("$M" up "$tmp/lab0.json" --no-capture --out "$tmp/run0" 2>"$tmp/up0.err") || { tail -5 "$tmp/up0.err"; exit 1; }
m_up=$(ms "$t"); labs+=("$lab")
t=$(date +%s%N); "$M" down "$lab" >/dev/null; m_down=$(ms "$t"); labs=()
t=$(date +%s%N); ip_up; i_up=$(ms "$t")
ip netns exec "$shprefix-h$SITES" ping -c 1 -W 2 "198.18.1.$SITES" >/dev/null || { echo "sim bench: the iproute2 lab does not route" >&2; exit 1; }
t=$(date +%s%N); ip_down; i_down=$(ms "$t")
printf '  build: meshsim %6d ms   iproute2 %6d ms   ratio %s\n' "$m_up" "$i_up" "$(awk -v a="$i_up" -v b="$m_up" 'BEGIN { printf "%.1fx", a / (b ? b : 1) }')"
printf '  down:  meshsim %6d ms   iproute2 %6d ms   ratio %s\n' "$m_down" "$i_down" "$(awk -v a="$i_down" -v b="$m_down" 'BEGIN { printf "%.1fx", a / (b ? b : 1) }')"

# --- the 100-agent lab: AGENT_SITES sites (the four presets in turn), two
# agents each, a relay, meshsvc and meshstun; every agent must be registered
# and list every other agent and the relay with a path (direct or relayed,
# not connecting) in meshctl peers.
AGENT_SITES=${AGENT_SITES:-50}
for p in meshd meshctl; do [ -x "$BUILD/$p" ] || { echo "sim bench: $BUILD/$p missing" >&2; exit 1; }; done
python3 - "$AGENT_SITES" >"$tmp/agents.json" <<'PY'
import json, sys
n = int(sys.argv[1])
presets = ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"]
def meshd(extra, after):
    # a relay registers with the key that mints relays (relaying is granted, never claimed)
    key = "${run}/relaykey" if "--relay" in extra else "${run}/regkey"
    return {"after": after, "ready": {"file": "${run}/nodes/${node}/run-meshd/mesh0.sock"}, "ready_timeout_ms": 60000,
            "argv": ["meshd"] + extra + ["--service", "https://${ip:svc}:8443", "--reg-key-file", key,
                     "--ca", "${ca}", "--hostname", "${node}", "--state-dir", "${run}/nodes/${node}/state",
                     "--stun", "${ip:stun}:3478", "--stun", "${ip:relay}:3478"]}
regkey = ("umask 077; set -e; m=\"meshctl --service https://${ip}:8443 --token-file ${run}/meshsvc.sqlite.admin-token --ca ${ca} -o json\"; "
          "vpc=$($m vpc create lab | jq -r .id); $m reg-key create --vpc $vpc | jq -r .secret > ${run}/regkey; test -s ${run}/regkey; "
          "$m reg-key create --vpc $vpc --relay | jq -r .secret > ${run}/relaykey; test -s ${run}/relaykey")
# the internet is routed (a core router with a link per gateway), not one
# bridge: a flat /16 where 100 agents reach each other directly needs more ARP
# entries than the kernel's shared neighbour table holds (gc_thresh3 1024)
doc = {"name": "bench-agents", "timeout_s": 600, "networks": [{"name": "internet", "cidr": "198.18.0.0/24"}], "nodes": [
    {"name": "core", "kind": "router", "links": [{"network": "internet", "address": "198.18.0.254"}]},
    {"name": "stun", "links": [{"network": "internet", "address": "198.18.0.10"}], "routes": [{"dst": "198.18.0.0/15", "via": "core"}],
     "processes": [{"argv": ["meshstun", "--listen", "${ip}:3478"], "ready": {"udp": 3478}}]},
    {"name": "svc", "links": [{"network": "internet", "address": "198.18.0.20"}], "routes": [{"dst": "198.18.0.0/15", "via": "core"}],
     "processes": [{"argv": ["meshsvc", "--listen", "${ip}:8443", "--db", "${run}/meshsvc.sqlite", "--tls-cert", "${tls_cert}",
                             "--tls-key", "${tls_key}"], "ready": {"tcp": 8443}},
                   {"name": "regkey", "oneshot": True, "after": ["svc/meshsvc"], "argv": ["sh", "-c", regkey]}]},
    {"name": "relay", "links": [{"network": "internet", "address": "198.18.0.30"}], "routes": [{"dst": "198.18.0.0/15", "via": "core"}],
     "processes": [meshd(["--relay", "--listen-port", "3478"], ["svc/regkey"])]}]}
for i in range(1, n + 1):
    net = "10.%d.%d" % (i // 250, i % 250)
    doc["networks"] += [{"name": "up%d" % i, "cidr": "198.18.%d.0/24" % i}, {"name": "s%d" % i, "cidr": net + ".0/24"}]
    doc["nodes"][0]["links"].append({"network": "up%d" % i, "address": "198.18.%d.254" % i})
    doc["nodes"].append({"name": "gw%d" % i, "kind": "nat", "nat": presets[i % 4],
                         "links": [{"network": "up%d" % i, "ifname": "wan", "address": "198.18.%d.1" % i},
                                   {"network": "s%d" % i, "ifname": "lan"}],
                         "routes": [{"dst": "default", "via": "core"}]})
    for k in "ab":
        doc["nodes"].append({"name": "a%d%s" % (i, k), "links": [{"network": "s%d" % i}],
                             "routes": [{"dst": "default", "via": "gw%d" % i}], "processes": [meshd([], ["relay/meshd"])]})
json.dump(doc, sys.stdout)
PY
nagents=$((2 * AGENT_SITES))
echo "agent lab: $AGENT_SITES sites behind $AGENT_SITES NAT gateways (routed internet), $nagents agents (meshd), a relay, meshsvc, meshstun; no captures"
echo "(each census pass asks all $nagents control sockets; the times below are at pass resolution)"
before=$(avail_kb)
t0=$(date +%s%N)
lab=$("$M" up "$tmp/agents.json" --no-capture --out "$tmp/runa" 2>"$tmp/upa.err") || { tail -5 "$tmp/upa.err"; exit 1; }
labs+=("$lab")
started_ms=$(ms "$t0")
# one pass over the agents' control sockets: how many are registered, how
# many list all nagents peers (the others and the relay) with a path; an
# agent that got there is not asked again
declare -A is_reg is_full
census() {
  local n k sock
  for n in $(seq 1 "$AGENT_SITES"); do
    for k in a b; do
      sock="$tmp/runa/nodes/a$n$k/run-meshd/mesh0.sock"
      [ -n "${is_reg[$n$k]:-}" ] || { "$BUILD/meshctl" --control "$sock" -o json status 2>/dev/null |
        jq -e '.service.registered' >/dev/null && is_reg[$n$k]=1; }
      [ -n "${is_full[$n$k]:-}" ] || { "$BUILD/meshctl" --control "$sock" -o json peers 2>/dev/null |
        jq -e --argjson want "$nagents" '[.peers[] | select(.path == "direct" or .path == "relayed")] | length == $want' \
          >/dev/null && is_full[$n$k]=1; }
    done
  done
}
reg_ms= full_ms= peak_pss=0 peak_drop=0
while :; do
  census
  reg=${#is_reg[@]} full=${#is_full[@]}
  el=$(ms "$t0")
  [ -z "$reg_ms" ] && [ "$reg" -eq "$nagents" ] && reg_ms=$el
  pss=$(lab_pss_kb "$lab"); [ "$pss" -gt "$peak_pss" ] && peak_pss=$pss
  drop=$((before - $(avail_kb))); [ "$drop" -gt "$peak_drop" ] && peak_drop=$drop
  printf '\r  %5.1f s: %3d/%d registered, %3d/%d with a path to every other' "$(awk -v m="$el" 'BEGIN { print m / 1000 }')" "$reg" "$nagents" "$full" "$nagents" >&2
  if [ "$full" -eq "$nagents" ]; then full_ms=$el; break; fi
  [ "$el" -gt 180000 ] && break
  sleep 0.2
done
echo >&2
t=$(date +%s%N)
"$M" down "$lab" >/dev/null
down_ms=$(ms "$t"); labs=()
printf 'agent lab up (namespaces, NATs, processes started; meshsim up):      %6d ms\n' "$started_ms"
printf 'every agent registered:                                             %6s\n' "$([ -n "$reg_ms" ] && echo "$reg_ms ms" || echo "not within 180 s")"
printf 'every agent with a path to every other (and the relay):            %6s\n' "$([ -n "$full_ms" ] && echo "$full_ms ms" || echo "not within 180 s")"
printf 'agent lab down (meshsim down):                                      %6d ms\n' "$down_ms"
printf 'agent lab peak proportional memory of its processes:                %6d KiB\n' "$peak_pss"
printf 'agent lab peak MemAvailable drop (kernel and processes):            %6d KiB\n' "$peak_drop"
echo "command: BUILD=$BUILD SITES=$SITES AGENT_SITES=$AGENT_SITES tools/bench/sim.sh"
