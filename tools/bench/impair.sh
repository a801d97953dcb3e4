#!/usr/bin/env bash
# The delay line (meshsim impair) against a plain veth, in one run:
#
#   plain:    x0 ==veth== y0                                  (namespaces nmb<pid>-p1, -p2)
#   plain-nooffload: the same with TSO/GSO/GRO off, as the line's ends are
#   line:     x ==veth== lx [meshsim impair] ly ==veth== y   (nmb<pid>-x, -m, -y)
#             (the ends as in a lab, x the node: segmentation offloads off on
#             both, GRO and threaded NAPI on x's; y is the bridge's side)
#
# 1. throughput: iperf3 TCP x -> y, ROUNDS rounds of SECONDS each, the kinds
#    interleaved; the median of each (receiver side); line-reverse is y -> x
#    through the line (iperf3 -R: the ingress direction, into the node).
# 2. added latency at zero delay: ping -i 0.01, COUNT echoes over each kind,
#    p50 and p99 of the round trip; the line's minus the plain veth's.
# 3. timing accuracy: one-way delays of COUNT datagrams x -> y, 10 ms apart,
#    each stamped with its send time and read against the kernel's receive
#    timestamp (tests/netns/impair_seq.py owd-send/owd-recv), over the
#    plain veth without offloads and over the line with egress delay D = 0,
#    1, 10, 100 ms; error = one-way delay - D - the plain veth's p50; p50 and
#    p99 of the error. (ping prints fewer decimals as times grow, so its
#    times are no measure of accuracy.)
#
#   IMPAIR_BENCH_SECONDS=5 IMPAIR_BENCH_ROUNDS=3 IMPAIR_BENCH_COUNT=500 tools/bench/impair.sh
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
SECS=${IMPAIR_BENCH_SECONDS:-5}
ROUNDS=${IMPAIR_BENCH_ROUNDS:-3}
COUNT=${IMPAIR_BENCH_COUNT:-500}
P="nmb$$"
tmp=$(mktemp -d /tmp/impairbench.XXXXXX)
line=
cleanup() {
  [ -n "$line" ] && kill "$line" 2>/dev/null && wait "$line" 2>/dev/null
  for n in p1 p2 q1 q2 x m y; do ip netns del "$P-$n" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT; trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || { echo "impair bench: needs root" >&2; exit 1; }
[ -x "$M" ] || { echo "impair bench: $M missing (make)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "impair bench: iperf3 missing (make deps)" >&2; exit 1; }

off() { ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx-udp-segmentation off >/dev/null 2>&1; }
for n in p1 p2 q1 q2 x m y; do ip netns add "$P-$n"; done
ip -n "$P-p1" link add eth0 type veth peer name eth0 netns "$P-p2"
ip -n "$P-q1" link add eth0 type veth peer name eth0 netns "$P-q2"
ip -n "$P-x" link add eth0 type veth peer name lx netns "$P-m"
ip -n "$P-y" link add eth0 type veth peer name ly netns "$P-m"
for n in p q; do
  ip -n "$P-${n}1" addr add 10.7.0.1/24 dev eth0; ip -n "$P-${n}2" addr add 10.7.0.2/24 dev eth0
done
ip -n "$P-x" addr add 10.7.0.1/24 dev eth0; ip -n "$P-y" addr add 10.7.0.2/24 dev eth0
for n in p1 p2 q1 q2 x y; do ip -n "$P-$n" link set dev eth0 up; ip -n "$P-$n" link set dev lo up; done
for n in q1 q2 x y; do off "$P-$n" eth0; done
# as a lab sets up the node's end: GRO and threaded NAPI, so that the node's
# receiving stack runs in a kernel thread, not in the line's sendmmsg
ip netns exec "$P-x" ethtool -K eth0 gro on >/dev/null 2>&1
ip netns exec "$P-x" sh -c 'echo 1 >/sys/class/net/eth0/threaded'
ip -n "$P-m" link set dev lx up; ip -n "$P-m" link set dev ly up
"$M" impair run "$P-m" --dev lx --peer-dev ly 2>"$tmp/line.log" &
line=$!
for _ in $(seq 50); do "$M" impair show "$P-m" --dev lx >/dev/null 2>&1 && break; sleep 0.05; done
set_line() { "$M" impair set "$P-m" --dev lx "$1" >/dev/null; }
ns_of() { case $1 in plain) echo p ;; plain-nooffload) echo q ;; *) echo line ;; esac; }
src() { [ "${1%-reverse}" = line ] && echo "$P-x" || echo "$P-$(ns_of "$1")1"; }
dst() { [ "${1%-reverse}" = line ] && echo "$P-y" || echo "$P-$(ns_of "$1")2"; }

# Gbit/s of one iperf3 run over KIND
tput() {
  local srv out
  ip netns exec "$(dst "$1")" iperf3 -s -1 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do ip netns exec "$(dst "$1")" ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
  local rev=
  [ "$1" = line-reverse ] && rev=-R
  out=$(ip netns exec "$(src "$1")" iperf3 -c 10.7.0.2 -t "$SECS" $rev -J 2>/dev/null)
  wait "$srv"
  python3 -c 'import json,sys; print("%.2f" % (json.loads(sys.stdin.read())["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$out" 2>/dev/null
}
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "?" }'; }
# the RTTs (ms) of COUNT pings over KIND, one a line
rtts() { ip netns exec "$(src "$1")" ping -n -i 0.01 -c "$COUNT" 10.7.0.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p'; }
# "p50 p99" of numbers on stdin (plus OFFSET)
pct() { sort -n | awk -v off="${1:-0}" '{ a[NR] = $1 + off } END { if (!NR) { print "? ?"; exit } i50 = int(NR * 0.5 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; printf "%.3f %.3f\n", a[i50], a[i99] }'; }

KINDS=(plain plain-nooffload line line-reverse)
for k in "${KINDS[@]}"; do : >"$tmp/tput-$k"; done
for r in $(seq "$ROUNDS"); do
  for k in "${KINDS[@]}"; do tput "$k" >>"$tmp/tput-$k"; done
done
for k in plain plain-nooffload line; do rtts "$k" >"$tmp/rtt-$k"; done
read -r line50 line99 < <(pct <"$tmp/rtt-line")
read -r plain50 plain99 < <(pct <"$tmp/rtt-plain")
read -r nooff50 nooff99 < <(pct <"$tmp/rtt-plain-nooffload")
# one-way delays (us) of COUNT datagrams over KIND
owd() {
  ip netns exec "$(dst "$1")" python3 tests/netns/impair_seq.py owd-recv 9100 "$COUNT" >"$tmp/owd" &
  local r=$!
  sleep 0.3
  ip netns exec "$(src "$1")" python3 tests/netns/impair_seq.py owd-send 10.7.0.2 9100 "$COUNT" 10000
  wait "$r"
  cat "$tmp/owd"
}
owd plain-nooffload >"$tmp/owd-plain"
read -r owd50 owd99 < <(pct <"$tmp/owd-plain")
for d in 0 1 10 100; do
  set_line "{\"egress\": {\"delay_ms\": $d}}"
  owd line | awk -v d="$d" -v base="$owd50" '{ print ($1 - base) / 1000 - d }' >"$tmp/err-$d"
done
set_line '{"egress": {"delay_ms": 0}}'

echo "iperf3: $(iperf3 --version | head -n1); $(python3 --version); kernel $(uname -r); $(nproc) CPUs"
echo "throughput, iperf3 TCP ${SECS} s x $ROUNDS, median Gbit/s (receiver):"
for k in "${KINDS[@]}"; do printf '  %-16s %s   (rounds: %s)\n' "$k" "$(median <"$tmp/tput-$k")" "$(paste -sd' ' "$tmp/tput-$k")"; done
echo "round trip at zero delay, ping -i 0.01 x $COUNT, p50 / p99 ms:"
printf '  %-16s %s / %s\n' plain "$plain50" "$plain99" plain-nooffload "$nooff50" "$nooff99" line "$line50" "$line99"
echo "  added by the line (two passes, one each way): p50 $(awk -v a="$line50" -v b="$plain50" 'BEGIN { printf "%.3f", a - b }') ms, p99 $(awk -v a="$line99" -v b="$plain99" 'BEGIN { printf "%.3f", a - b }') ms"
echo "one-way delay over the plain veth (no offloads), $COUNT datagrams: p50 $owd50 us, p99 $owd99 us"
echo "delivered delay error over the line (one-way delay - D - the plain p50), egress delay D, p50 / p99 ms:"
for d in 0 1 10 100; do read -r e50 e99 < <(pct <"$tmp/err-$d"); printf '  D = %3d ms      %s / %s\n' "$d" "$e50" "$e99"; done
echo "load average while it ran: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows in the p99s)"
