#!/usr/bin/env bash
# STUN benchmark: Binding requests answered per second on loopback, meshstun
# against coturn's turnserver, both started in this run and driven by the same
# load (build/stunload: several connected UDP sockets, batches of requests,
# answers counted over a fixed duration).
#
#   tools/bench/stun.sh            (or: make bench, or tools/bench/run stun)
#
# Fairness:
#  - Each server gets the same CPU: on a machine with N >= 2 CPUs the server
#    under test is pinned to the last CPU and stunload to the others (taskset),
#    so the generator never steals cycles from the server it measures. coturn
#    keeps its defaults (one UDP listener thread per CPU it sees, its relay and
#    auth threads); only what makes it a plain STUN server is set: --stun-only,
#    no config file (-n), no auth (--no-auth), no TLS/DTLS/CLI, log to a file.
#  - stunload sends each batch as one UDP GSO write; the kernel splits it
#    into ordinary datagrams before they reach the server's socket, so both
#    servers receive exactly what separate sends would give them, and the
#    generator needs less CPU than the servers it drives.
#  - meshstun runs with --rate 0: all load comes from 127.0.0.1, which the
#    per-IP limiter would otherwise (rightly) throttle. coturn has no such limit.
#  - The servers are measured in turns (meshstun, coturn, meshstun, ...), so
#    drift hits both; the median and the best of ROUNDS runs are reported
#    (the best is the capacity least disturbed by other work on the machine),
#    and the answers per CPU-second the server process used (all threads).
# Tunables (environment): ROUNDS=5 DURATION=3 SOCKETS=8 WINDOW=256 BATCH=32
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
SOCKETS=${SOCKETS:-8}
WINDOW=${WINDOW:-256}
BATCH=${BATCH:-32}

for bin in "$BUILD/meshstun" "$BUILD/stunload"; do
  [ -x "$bin" ] || { echo "stun.sh: $bin is missing (run make)" >&2; exit 1; }
done
command -v turnserver >/dev/null || { echo "stun.sh: turnserver (coturn) is missing (run make deps)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/natmesh-stunbench.XXXXXX)
ms_pid= ts_pid=
cleanup() {
  for p in $ms_pid $ts_pid; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $ms_pid $ts_pid; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {	# a port p with p and p+1 unused by any UDP or TCP socket, below
  local p	# the ephemeral range (turnserver also binds TCP on its port)
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000))
    if ! ss -Hanut "sport = :$p or sport = :$((p + 1))" | grep -q .; then echo "$p"; return; fi
  done
  echo "stun.sh: no free UDP port" >&2; exit 1
}

ncpu=$(nproc)
# as root, servers and generator run at nice -10 so that other work on the
# machine disturbs the measurement less (the same for both servers)
prio=()
[ "$(id -u)" -eq 0 ] && prio=(nice -n -10)
if [ "$ncpu" -ge 2 ]; then
  server_cpus=$((ncpu - 1))
  client_cpus=0-$((ncpu - 2))
  pin_server=("${prio[@]}" taskset -c "$server_cpus")
  pin_client=("${prio[@]}" taskset -c "$client_cpus")
  layout="server on CPU $server_cpus, stunload on CPU $client_cpus"
else
  pin_server=("${prio[@]}") pin_client=("${prio[@]}")
  layout="1 CPU: server and stunload share it"
fi
[ ${#prio[@]} -gt 0 ] && layout="$layout, nice -10"

ms_port=$(free_port)
ts_port=$(free_port)
[ "$ts_port" != "$ms_port" ] || ts_port=$(free_port)

"${pin_server[@]}" "$BUILD/meshstun" --listen "127.0.0.1:$ms_port" --rate 0 >"$tmp/meshstun.log" 2>&1 &
ms_pid=$!
"${pin_server[@]}" turnserver -n --stun-only --no-auth -L 127.0.0.1 -p "$ts_port" \
  --no-tls --no-dtls --no-cli --pidfile "$tmp/turnserver.pid" \
  --log-file "$tmp/turnserver.log" --simple-log --no-stdout-log >/dev/null 2>&1 &
ts_pid=$!

# both must answer before the clock starts
for what in "meshstun:$ms_port" "turnserver:$ts_port"; do
  port=${what#*:}
  ok=
  for _ in $(seq 50); do
    if "$BUILD/stunload" --server "127.0.0.1:$port" --sockets 1 --duration 1 --warmup 0 --window 1 >/dev/null 2>&1; then
      ok=1; break
    fi
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "stun.sh: ${what%%:*} does not answer on 127.0.0.1:$port" >&2; cat "$tmp"/*.log >&2 || true; exit 1; }
done

cpu_ticks() {	# utime + stime of every thread of pid, in clock ticks
  awk '{ s += $14 + $15 } END { print s }' /proc/"$1"/task/*/stat
}

run_one() {	# pid port stunload-args... -> "rate cpu_ticks"
  local pid=$1 port=$2 before after out
  shift 2
  before=$(cpu_ticks "$pid")
  out=$("${pin_client[@]}" "$BUILD/stunload" --server "127.0.0.1:$port" --sockets "$SOCKETS" \
          --window "$WINDOW" --batch "$BATCH" --duration "$DURATION" --warmup 1 "$@")
  after=$(cpu_ticks "$pid")
  echo "${out##*rate=} $((after - before))"
}

hz=$(getconf CLK_TCK)
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
best() { printf '%s\n' "$@" | sort -n | tail -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
# answers per CPU-second of the server process (all its threads); the CPU
# time spans warm-up and measurement, the answers are scaled to match
eff() { awk -v s="$1" -v c="$2" -v h="$hz" -v d="$DURATION" 'BEGIN { printf "%.0f", c ? s * (d + 1) * h / c : 0 }'; }
secs() { awk -v t="$1" -v h="$hz" 'BEGIN { printf "%.2f", t / h }'; }

echo "stun bench: $ROUNDS rounds of ${DURATION}s per server and request shape; $SOCKETS sockets," \
  "window $WINDOW, batch $BATCH; $layout"
echo "  meshstun:   $BUILD/meshstun --listen 127.0.0.1:$ms_port --rate 0"
echo "  turnserver: coturn $(turnserver --version 2>/dev/null | head -n1): turnserver -n --stun-only --no-auth" \
  "-L 127.0.0.1 -p $ts_port --no-tls --no-dtls --no-cli (default threads)"
summary=()
# request shapes: a bare Binding request (what most STUN clients send), and
# one with FINGERPRINT (what a client multiplexing STUN with other traffic on
# one socket, like meshd, sends; RFC 8489 14.7, RFC 7983)
for shape in bare fingerprint; do
  args=()
  [ "$shape" = fingerprint ] && args=(--fingerprint)
  ms_rates=() ts_rates=() ms_cpu=0 ts_cpu=0 ms_sum=0 ts_sum=0
  for r in $(seq "$ROUNDS"); do
    read -r rate ticks < <(run_one "$ms_pid" "$ms_port" "${args[@]}")
    ms_rates+=("$rate"); ms_cpu=$((ms_cpu + ticks)); ms_sum=$((ms_sum + rate))
    printf '  %-11s round %d  meshstun   %8d answers/s  (server CPU %s s)\n' "$shape" "$r" "$rate" "$(secs "$ticks")"
    read -r rate ticks < <(run_one "$ts_pid" "$ts_port" "${args[@]}")
    ts_rates+=("$rate"); ts_cpu=$((ts_cpu + ticks)); ts_sum=$((ts_sum + rate))
    printf '  %-11s round %d  turnserver %8d answers/s  (server CPU %s s)\n' "$shape" "$r" "$rate" "$(secs "$ticks")"
  done
  ms_med=$(median "${ms_rates[@]}") ts_med=$(median "${ts_rates[@]}")
  ms_best=$(best "${ms_rates[@]}") ts_best=$(best "${ts_rates[@]}")
  summary+=("$(printf '%-11s meshstun   median %8d  best %8d answers/s  %8d per server CPU-second' \
    "$shape" "$ms_med" "$ms_best" "$(eff "$ms_sum" "$ms_cpu")")")
  summary+=("$(printf '%-11s turnserver median %8d  best %8d answers/s  %8d per server CPU-second' \
    "$shape" "$ts_med" "$ts_best" "$(eff "$ts_sum" "$ts_cpu")")")
  summary+=("$(printf '%-11s ratio meshstun/turnserver: median %sx  best %sx  per CPU-second %sx  (target >= 2x)' \
    "$shape" "$(ratio "$ms_med" "$ts_med")" "$(ratio "$ms_best" "$ts_best")" \
    "$(ratio "$(eff "$ms_sum" "$ms_cpu")" "$(eff "$ts_sum" "$ts_cpu")")")")
done
printf '%s\n' "${summary[@]}"
