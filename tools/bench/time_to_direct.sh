#!/usr/bin/env bash
# Time to direct against the round trip between two sites (issue 17):
#
#   n1 -- gw1 (prc NAT) ==D==+                       +==D== gw2 (prc NAT) -- n2
#                            core, stun, svc, relay  (the internet, 0 ms)
#
# For each RTT R (ms) the scenario scenarios/time-direct-150-5.json is run
# with a delay line of D = R/4 each way on both gateways' WAN links, so the
# agents' round trip through the internet is R; meshsim's report.json gives
# the first expectation's time: from the agents' start (control sockets up)
# to a ping n1 -> n2 answered over a direct path (registration over HTTPS,
# STUN discovery, the watch and hole punching included; meshsim retries the
# ping every 200 ms, so the figure is that coarse). ROUNDS runs per RTT, the
# median and the range printed.
#
#   TTD_RTTS="5 50 150 300" TTD_ROUNDS=3 tools/bench/time_to_direct.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
RTTS=${TTD_RTTS:-5 50 150 300}
ROUNDS=${TTD_ROUNDS:-3}
tmp=$(mktemp -d /tmp/ttdbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT; trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "time_to_direct bench: needs root" >&2; exit 1; }
[ -x "$M" ] || { echo "time_to_direct bench: $M missing (make)" >&2; exit 1; }
command -v jq >/dev/null || { echo "time_to_direct bench: jq missing (make deps)" >&2; exit 1; }

printf '%-8s %-10s %-10s %s\n' "RTT ms" "median s" "range s" "runs"
rc=0
for r in $RTTS; do
  d=$(awk -v r="$r" 'BEGIN { printf "%g", r / 4 }')
  jq --arg name "ttd-$r" --argjson d "$d" '.name = $name | .nodes |= map(
        if .name == "gw1" or .name == "gw2" then .links[0].egress.delay_ms = $d | .links[0].ingress.delay_ms = $d
        else . end) | .expectations[0].within_ms = 30000' \
     scenarios/time-direct-150-5.json > "$tmp/ttd-$r.json"
  times=()
  for k in $(seq 1 "$ROUNDS"); do
    if ! "$M" run "$tmp/ttd-$r.json" --out "$tmp/run-$r-$k" --no-capture > "$tmp/log-$r-$k" 2>&1; then
      echo "time_to_direct bench: RTT $r ms run $k failed:" >&2; tail -n 20 "$tmp/log-$r-$k" >&2; rc=1; continue
    fi
    times+=("$(jq -r '.expectations[0].time_ms' "$tmp/run-$r-$k/report.json")")
  done
  [ ${#times[@]} -gt 0 ] || continue
  printf '%s\n' "${times[@]}" | sort -n | awk -v r="$r" '
    { t[NR] = $1 / 1000 } END { printf "%-8s %-10.2f %-10s %s\n", r, t[int((NR + 1) / 2)],
      sprintf("%.2f-%.2f", t[1], t[NR]), NR }'
done
exit $rc
