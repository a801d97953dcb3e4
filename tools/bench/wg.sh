#!/usr/bin/env bash
# WireGuard throughput: iperf3 TCP from A to B, ROUNDS rounds of SECONDS each,
# through meshwg<->meshwg (TUN offloads on, the default), the same with
# --no-tun-offload on both sides, wireguard-go<->wireguard-go, and the plain
# veth, interleaved in one run (each round runs every kind once, so a busy
# machine slows them alike) on the two-namespace topology of
# tests/netns/wg_common.bash. Prints the median of each and the ratios
# meshwg / wireguard-go and TUN offload on / off. Needs root.
#
#   WG_BENCH_SECONDS=10 WG_BENCH_ROUNDS=3 tools/bench/wg.sh
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM

SECONDS_PER=${WG_BENCH_SECONDS:-10}
ROUNDS=${WG_BENCH_ROUNDS:-3}
KINDS=(meshwg meshwg-plaintun wireguard-go veth)

if [ "$(id -u)" -ne 0 ]; then echo "wg bench: needs root" >&2; exit 1; fi
[ -x "$BUILD/meshwg" ] || { echo "wg bench: $BUILD/meshwg missing (make)" >&2; exit 1; }

# measure KIND: one iperf3 run; Mbit/s received in MBPS
measure() {
  local kind=$1 ip out srv
  MBPS=
  if [ "$kind" = veth ]; then
    wg_topology || return 1
    ip=192.0.2.2
  else
    wg_pair "$kind" "$kind" || return 1
    ip=100.64.0.2
    nsx "$NS_A" ping -q -c 2 -w 10 "$ip" >/dev/null || return 1
  fi
  nsx "$NS_B" iperf3 -s -1 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do nsx "$NS_B" ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
  out=$(nsx "$NS_A" iperf3 -c "$ip" -t "$SECONDS_PER" -J 2>/dev/null)
  wait "$srv"
  wg_teardown
  MBPS=$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' <<<"$out")
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A results
for r in $(seq "$ROUNDS"); do
  for k in "${KINDS[@]}"; do
    measure "$k"
    v=$MBPS
    if [ -z "$v" ] || [ "$v" = null ]; then echo "wg bench: $k round $r failed" >&2; exit 1; fi
    echo "round $r: $k $v Mbit/s"
    results[$k]="${results[$k]:-} $v"
  done
done

# shellcheck disable=SC2086
m=$(median ${results[meshwg]}) p=$(median ${results[meshwg-plaintun]})
# shellcheck disable=SC2086
g=$(median ${results[wireguard-go]}) v=$(median ${results[veth]})
echo "iperf3 TCP A->B, $ROUNDS x ${SECONDS_PER} s, median:"
printf '  %-26s %8.2f Gbit/s\n' meshwg "$(bc -l <<<"$m / 1000")" \
  "meshwg --no-tun-offload" "$(bc -l <<<"$p / 1000")" wireguard-go "$(bc -l <<<"$g / 1000")" \
  "plain veth" "$(bc -l <<<"$v / 1000")"
printf '  meshwg / wireguard-go = %.2f\n' "$(bc -l <<<"$m / $g")"
printf '  TUN offload on / off (meshwg / meshwg --no-tun-offload) = %.2f\n' "$(bc -l <<<"$m / $p")"
