#!/usr/bin/env bash
# meshsim lab scale: 50 sites, each a NAT gateway (the four presets in turn)
# and a host, plus meshstun and meshsvc on the internet: 102 nodes, 51
# networks, 153 namespaces, 152 links, 51 capture processes. Measures the
# time of `meshsim up` (build, NAT, captures, processes ready), of `meshsim
# down`, and the lab's memory. Side by side, in the same run, the same
# topology without NAT, captures or processes is built by meshsim and by
# iproute2 commands (ip netns add / ip link / ip addr / ip route), the
# usual way namespace tests are written; the ratio compares the two.
# The agents of the planned 100-agent benchmark join once meshd exists.
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
echo "command: BUILD=$BUILD SITES=$SITES tools/bench/sim.sh"
