#!/usr/bin/env bash
# WireGuard throughput from A to B on the two-namespace topology of
# tests/netns/wg_common.bash, through meshwg<->meshwg (TUN offloads on and a
# thread per CPU, the defaults), the same with --threads 1 on both sides
# (every mode) and with --no-tun-offload (tcp only),
# wireguard-go<->wireguard-go (the reference of tests/netns/wgref.bash:
# WIREGUARD_GO, else the modern build in ../shared/anchors/wireguard-go/,
# else Debian's), Debian's wireguard-go as a second, older reference when
# both are here, and the plain veth. Interleaved in one run: each round runs
# every kind once, so a busy machine slows them alike. Per kind and round,
# on one tunnel:
#
#   tcp    iperf3 TCP, one flow (every kind)
#   tcp4   iperf3 TCP, 4 flows (-P 4) (meshwg and the wireguard-go kinds)
#   udp    iperf3 UDP at no rate limit (-b 0), datagrams of UDP_LEN bytes of
#          payload (1372: 1400-byte IP packets, under the 1420 MTU, so none is
#          fragmented); packets/s delivered and the loss (meshwg and the
#          wireguard-go kinds)
#   udp64  the same with 64-byte IP packets (36 bytes of payload)
#   lat    ping A->B every 10 ms through the tunnel while one iperf3 TCP flow
#          saturates it: RTT p50 / p99 (latency under load; meshwg and the
#          wireguard-go kinds)
#
# With tcp, the CPU both tunnel daemons used (utime + stime of each process,
# all its threads, from /proc/PID/stat) per Gbit carried: a win by burning
# more CPU shows as such.
#
# Prints the versions (each wireguard-go's --version, iperf3's, the commit),
# the load average before and after, every round, then the median of each and
# the ratios meshwg / each wireguard-go, threads per CPU / one thread, and
# TUN offload on / off. After each meshwg tunnel, the datagrams both sides
# refused as replays (rx_replay of the SIGUSR1 stats; 0 on a clean link:
# the workers never reorder) and, per TCP run, iperf3's retransmits. Needs
# root.
#
#   WG_BENCH_SECONDS=10 WG_BENCH_ROUNDS=3 WG_BENCH_MODES="tcp tcp4 udp udp64" \
#   WG_BENCH_UDP_LEN=1372 WIREGUARD_GO=PATH tools/bench/wg.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM

SECONDS_PER=${WG_BENCH_SECONDS:-10}
ROUNDS=${WG_BENCH_ROUNDS:-3}
MODES=${WG_BENCH_MODES:-tcp tcp4 udp udp64 lat}
UDP_LEN=${WG_BENCH_UDP_LEN:-1372}

if [ "$(id -u)" -ne 0 ]; then echo "wg bench: needs root" >&2; exit 1; fi
[ -x "$BUILD/meshwg" ] || { echo "wg bench: $BUILD/meshwg missing (make)" >&2; exit 1; }
[ -n "$WG_GO" ] || { echo "wg bench: $WG_GO_WHY" >&2; exit 1; }
KINDS=(meshwg meshwg-1t meshwg-plaintun wireguard-go)
[ -n "$WG_GO_DEBIAN" ] && KINDS+=(wireguard-go-debian)
KINDS+=(veth)

# name KIND: how the results call it
name() {
  case "$1" in
    meshwg-plaintun) echo "meshwg --no-tun-offload" ;;
    meshwg-1t) echo "meshwg --threads 1" ;;
    wireguard-go) echo "${WG_GO_VERSION/ v/ }" ;;
    wireguard-go-debian) local v; v=$(wgref_version "$WG_GO_DEBIAN"); echo "${v/ v/ }" ;;
    veth) echo "plain veth" ;;
    *) echo "$1" ;;
  esac
}

# runs MODE on KIND: meshwg-plaintun and veth only tcp
runs() { [ "$2" = tcp ] || [ "$1" = meshwg ] || [ "$1" = meshwg-1t ] || [ "${1#wireguard-go}" != "$1" ]; }

# replays: the datagrams both meshwg daemons of the pair refused as replays
replays() {
  local n=0 f v
  kill -USR1 "$PID_A" "$PID_B" 2>/dev/null
  sleep 0.5
  for f in "$WG_TMP/$IF_A.log" "$WG_TMP/$IF_B.log"; do
    v=$(grep -o 'rx_replay=[0-9]*' "$f" | tail -n 1 | cut -d= -f2)
    n=$((n + ${v:-0}))
  done
  echo "$n"
}

# iperf IP [iperf3 client args...]: one run from A to B, its JSON in OUT
iperf() {
  local ip=$1 srv
  shift
  nsx "$NS_B" iperf3 -s -1 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do nsx "$NS_B" ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
  OUT=$(nsx "$NS_A" timeout $((SECONDS_PER + 30)) iperf3 -c "$ip" -t "$SECONDS_PER" -J "$@" 2>/dev/null)
  wait "$srv"
}

# cpu_ticks PID...: utime + stime of those processes, in clock ticks
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }

# pct FILE P: the P-th percentile of the numbers in FILE
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] }'; }

# udp_len MODE: its UDP payload length
udp_len() { if [ "$1" = udp64 ]; then echo 36; else echo "$UDP_LEN"; fi; }

# measure KIND: every mode on one tunnel (or the veth); VAL[MODE] (Mbit/s for
# tcp and tcp4, "packets/s loss%" for udp and udp64) and "" for a failed one
declare -A VAL RETR CPUG
measure() {
  local kind=$1 ip m c0 ping
  VAL=() RETR=() CPUG=()
  if [ "$kind" = veth ]; then
    wg_topology || return 1
    ip=192.0.2.2
  else
    wg_pair "$kind" "$kind" || return 1
    ip=100.64.0.2
    nsx "$NS_A" ping -q -c 2 -w 10 "$ip" >/dev/null || return 1
  fi
  for m in $MODES; do
    runs "$kind" "$m" || continue
    case "$m" in
      tcp) [ "$kind" != veth ] && c0=$(cpu_ticks "$PID_A" "$PID_B")
        iperf "$ip"; VAL[$m]=$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' <<<"$OUT")
        RETR[$m]=$(jq -r '.end.sum_sent.retransmits' <<<"$OUT")
        # CPU seconds of both daemons per Gbit carried
        [ "$kind" != veth ] && CPUG[$m]=$(awk -v t="$(( $(cpu_ticks "$PID_A" "$PID_B") - c0 ))" \
          -v hz="$(getconf CLK_TCK)" -v mbit="${VAL[$m]}" -v s="$SECONDS_PER" \
          'BEGIN { printf "%.3f", (t / hz) / (mbit * s / 1000) }') ;;
      lat) nsx "$NS_A" ping -n -i 0.01 -w "$SECONDS_PER" "$ip" >"$WG_TMP/ping.txt" 2>&1 &
        ping=$!
        iperf "$ip"
        wait "$ping"
        sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$WG_TMP/ping.txt" >"$WG_TMP/rtt.txt"
        if [ -s "$WG_TMP/rtt.txt" ]; then VAL[$m]="$(pct "$WG_TMP/rtt.txt" 50) $(pct "$WG_TMP/rtt.txt" 99)"; else VAL[$m]=""; fi ;;
      tcp4) iperf "$ip" -P 4; VAL[$m]=$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' <<<"$OUT")
        RETR[$m]=$(jq -r '.end.sum_sent.retransmits' <<<"$OUT") ;;
      udp | udp64) iperf "$ip" -u -b 0 -l "$(udp_len "$m")"
        VAL[$m]=$(jq -r '.end.sum | "\((.packets - .lost_packets) / .seconds | floor) \(.lost_percent * 100 | floor / 100)"' <<<"$OUT") ;;
      *) echo "wg bench: unknown mode $m" >&2; exit 1 ;;
    esac
  done
  REPLAYS=
  [ "${kind#meshwg}" != "$kind" ] && REPLAYS=$(replays)
  wg_teardown
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "wg bench: $(date -u '+%Y-%m-%d %H:%M UTC'), natmesh $(git describe --always --dirty 2>/dev/null), $(nproc) CPUs, kernel $(uname -r)"
echo "  reference: $WG_GO_VERSION ($WG_GO, from $WG_GO_FROM)"
[ -n "$WG_GO_DEBIAN" ] && echo "  second reference: $(wgref_version "$WG_GO_DEBIAN") ($WG_GO_DEBIAN)"
echo "  $(iperf3 --version | head -n 1); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $ROUNDS rounds x $SECONDS_PER s, modes: $MODES (udp: $UDP_LEN-byte payloads, udp64: 36, -b 0)"

declare -A results
for r in $(seq "$ROUNDS"); do
  for k in "${KINDS[@]}"; do
    measure "$k" || { echo "wg bench: $k round $r: set up failed" >&2; exit 1; }
    for m in $MODES; do
      runs "$k" "$m" || continue
      v=${VAL[$m]:-}
      case "$v" in "" | null*) echo "wg bench: $k $m round $r failed" >&2; exit 1 ;; esac
      if [ "${m#udp}" != "$m" ]; then
        echo "round $r: $(name "$k") $m ${v% *} packets/s, ${v#* }% lost"
        results[$k.$m]="${results[$k.$m]:-} ${v% *}" results[$k.${m}loss]="${results[$k.${m}loss]:-} ${v#* }"
      elif [ "$m" = lat ]; then
        echo "round $r: $(name "$k") ping under one TCP flow: p50 ${v% *} ms, p99 ${v#* } ms"
        results[$k.lat50]="${results[$k.lat50]:-} ${v% *}" results[$k.lat99]="${results[$k.lat99]:-} ${v#* }"
      else
        echo "round $r: $(name "$k") $m $v Mbit/s, ${RETR[$m]:-?} retransmits${CPUG[$m]:+, ${CPUG[$m]} CPU-s per Gbit}"
        results[$k.$m]="${results[$k.$m]:-} $v"
        [ -n "${CPUG[$m]:-}" ] && results[$k.${m}cpu]="${results[$k.${m}cpu]:-} ${CPUG[$m]}"
      fi
    done
    [ -n "$REPLAYS" ] && echo "round $r: $(name "$k"): $REPLAYS datagrams refused as replays (both sides)"
  done
done
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A med
for key in "${!results[@]}"; do
  # shellcheck disable=SC2086
  med[$key]=$(median ${results[$key]})
done
gos=(wireguard-go)
[ -n "$WG_GO_DEBIAN" ] && gos+=(wireguard-go-debian)
for m in $MODES; do
  if [ "$m" = lat ]; then
    echo "ping A->B every 10 ms while one iperf3 TCP flow saturates the tunnel, $ROUNDS x $SECONDS_PER s, median of the rounds' p50 / p99:"
    for k in "${KINDS[@]}"; do
      runs "$k" lat || continue
      printf '  %-26s p50 %7.3f ms, p99 %7.3f ms\n' "$(name "$k")" "${med[$k.lat50]}" "${med[$k.lat99]}"
    done
    for g in "${gos[@]}"; do
      printf '  p99: meshwg / %s = %.2f (below 1: lower latency under load)\n' "$(name "$g")" \
        "$(bc -l <<<"${med[meshwg.lat99]} / ${med[$g.lat99]}")"
    done
    continue
  fi
  case "$m" in
    tcp) echo "iperf3 TCP A->B, one flow, $ROUNDS x $SECONDS_PER s, median:" ;;
    tcp4) echo "iperf3 TCP A->B, 4 flows (-P 4), $ROUNDS x $SECONDS_PER s, median:" ;;
    udp | udp64) echo "iperf3 UDP A->B, $(udp_len "$m")-byte payloads, -b 0, $ROUNDS x $SECONDS_PER s, median packets/s delivered (loss):" ;;
  esac
  for k in "${KINDS[@]}"; do
    runs "$k" "$m" || continue
    if [ "${m#udp}" != "$m" ]; then
      printf '  %-26s %8d packets/s (%s%% lost)\n' "$(name "$k")" "${med[$k.$m]}" "${med[$k.${m}loss]}"
    else
      printf '  %-26s %8.2f Gbit/s\n' "$(name "$k")" "$(bc -l <<<"${med[$k.$m]} / 1000")"
    fi
  done
  for g in "${gos[@]}"; do
    printf '  meshwg / %s = %.2f\n' "$(name "$g")" "$(bc -l <<<"${med[meshwg.$m]} / ${med[$g.$m]}")"
  done
  printf '  meshwg / meshwg --threads 1 = %.2f; meshwg --threads 1 / %s = %.2f\n' \
    "$(bc -l <<<"${med[meshwg.$m]} / ${med[meshwg-1t.$m]}")" "$(name wireguard-go)" \
    "$(bc -l <<<"${med[meshwg-1t.$m]} / ${med[wireguard-go.$m]}")"
  [ "$m" = tcp ] && printf '  TUN offload on / off (meshwg / meshwg --no-tun-offload) = %.2f\n' \
    "$(bc -l <<<"${med[meshwg.tcp]} / ${med[meshwg-plaintun.tcp]}")"
  if [ "$m" = tcp ]; then
    echo "  CPU of both tunnel daemons per Gbit carried (utime + stime, all threads), median:"
    for k in "${KINDS[@]}"; do
      [ -n "${med[$k.tcpcpu]:-}" ] && printf '  %-26s %7.3f CPU-s per Gbit\n' "$(name "$k")" "${med[$k.tcpcpu]}"
    done
    for g in "${gos[@]}"; do
      printf '  CPU per Gbit: meshwg / %s = %.2f (below 1: cheaper)\n' "$(name "$g")" \
        "$(bc -l <<<"${med[meshwg.tcpcpu]} / ${med[$g.tcpcpu]}")"
    done
  fi
done
