#!/usr/bin/env bash
# STUN benchmark: Binding requests answered per second on loopback, meshstun
# against coturn's turnserver, all started in this run and driven by the same
# load (build/stunload: several connected UDP sockets, batches of requests,
# answers counted over a fixed duration).
#
#   tools/bench/stun.sh            (or: make bench, or tools/bench/run stun)
#
# Two layouts, each with two request shapes (a bare Binding request, what most
# STUN clients send, and one with FINGERPRINT, what a client multiplexing STUN
# with other traffic on one socket, like meshd, sends; RFC 8489 14.7):
#
#  one CPU    every server pinned to the last CPU, stunload to the others
#             (taskset), so the generator never steals the server's cycles.
#             meshstun runs one thread; "meshstun-1sock" is meshstun sending
#             from its receiving socket (--one-socket), to show what the
#             send-only twin socket saves. coturn runs twice: with its defaults
#             (one relay thread per CPU it sees, plus listener and auth threads,
#             all squeezed onto the one CPU) and single-threaded (-m 0), which
#             is faster on one CPU: the ratio that counts is against the faster.
#             "floor" is build/udpfloor: no STUN work at all, each datagram
#             sent straight back (batches and a send-only twin, as meshstun):
#             the kernel's cost per answer alone, so floor/coturn is the
#             highest ratio any server on the socket API can reach here, and
#             meshstun/floor how close meshstun comes to it.
#  machine    nothing pinned: the servers have every CPU, sharing them with
#             stunload as a real host shares them with its other work.
#             meshstun runs --threads <CPUs>; coturn again with its defaults
#             (threads = CPUs) and -m 0. stunload sends from 8 client IPs
#             (--sources 8): both servers spread clients over threads by
#             address, and one IP would keep them on one thread.
#
# Fairness:
#  - only what makes coturn a plain STUN server is set: --stun-only, no config
#    file (-n), no auth (--no-auth), no TLS/DTLS/CLI, log to a file.
#  - stunload sends each batch as one UDP GSO write; the kernel splits it into
#    ordinary datagrams before they reach the server's socket, so every server
#    receives exactly what separate sends would give it, and the generator
#    needs less CPU than the servers it drives.
#  - meshstun runs with --rate 0: all load comes from a few addresses, which
#    the per-IP limiter would otherwise (rightly) throttle. coturn has no limit.
#  - servers are measured in turns within each round, so drift hits all; the
#    median and the best of ROUNDS runs are reported (the best is the capacity
#    least disturbed by other work on the machine), and the answers per
#    CPU-second the server process used (all its threads).
#  - as root, servers and generator run at nice -10 so that other work on the
#    machine disturbs the measurement less (the same for every server).
# Tunables (environment): ROUNDS=5 DURATION=3 SOCKETS=8 WINDOW=256 BATCH=32
#   LAYOUTS="cpu machine"
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3}
SOCKETS=${SOCKETS:-8}
WINDOW=${WINDOW:-256}
BATCH=${BATCH:-32}
LAYOUTS=${LAYOUTS:-cpu machine}

for bin in "$BUILD/meshstun" "$BUILD/stunload" "$BUILD/udpfloor"; do
  [ -x "$bin" ] || { echo "stun.sh: $bin is missing (run make)" >&2; exit 1; }
done
command -v turnserver >/dev/null || { echo "stun.sh: turnserver (coturn) is missing (run make deps)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/natmesh-stunbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

used_ports=" "
free_port() {	# a port p with p and p+1 unused by any UDP or TCP socket and by
  local p	# this script, below the ephemeral range (turnserver binds TCP too)
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000))
    case "$used_ports" in *" $p "*|*" $((p + 1)) "*|*" $((p - 1)) "*) continue ;; esac
    if ! ss -Hanut "sport = :$p or sport = :$((p + 1))" | grep -q .; then
      used_ports="$used_ports$p "
      echo "$p"; return
    fi
  done
  echo "stun.sh: no free UDP port" >&2; exit 1
}

ncpu=$(nproc)
prio=()
[ "$(id -u)" -eq 0 ] && prio=(nice -n -10)
if [ "$ncpu" -ge 2 ]; then
  pin_server=("${prio[@]}" taskset -c "$((ncpu - 1))")
  pin_client=("${prio[@]}" taskset -c "0-$((ncpu - 2))")
  cpu_layout="servers on CPU $((ncpu - 1)), stunload on CPU 0-$((ncpu - 2))"
else
  pin_server=("${prio[@]}") pin_client=("${prio[@]}")
  cpu_layout="1 CPU: server and stunload share it"
fi
free_run=("${prio[@]}")
[ ${#prio[@]} -gt 0 ] && cpu_layout="$cpu_layout, nice -10"

# start NAME PORT-VAR LAUNCHER... COMMAND...: a server in the background
declare -A port_of pid_of
start() {
  local name=$1 port
  shift
  port=$(free_port)
  port_of[$name]=$port
  local cmd=("${@//@PORT@/$port}")
  cmd=("${cmd[@]//@TMP@/$tmp}")
  "${cmd[@]}" >"$tmp/$name.log" 2>&1 &
  pid_of[$name]=$!
  pids+=("$!")
}
ts_args=(-n --stun-only --no-auth -L 127.0.0.1 -p @PORT@ --no-tls --no-dtls --no-cli
  --simple-log --no-stdout-log)

declare -A servers_of client_of extra_of desc_of
for layout in $LAYOUTS; do
  case $layout in
    cpu)
      start cpu-meshstun "${pin_server[@]}" "$BUILD/meshstun" --listen 127.0.0.1:@PORT@ --rate 0 --threads 1
      start cpu-meshstun-1sock "${pin_server[@]}" "$BUILD/meshstun" --listen 127.0.0.1:@PORT@ --rate 0 --threads 1 --one-socket
      start cpu-coturn "${pin_server[@]}" turnserver "${ts_args[@]}" --log-file @TMP@/cpu-coturn.tslog
      start cpu-coturn-m0 "${pin_server[@]}" turnserver "${ts_args[@]}" -m 0 --log-file @TMP@/cpu-coturn-m0.tslog
      start cpu-floor "${pin_server[@]}" "$BUILD/udpfloor" --listen 127.0.0.1:@PORT@
      servers_of[cpu]="cpu-meshstun cpu-meshstun-1sock cpu-coturn cpu-coturn-m0 cpu-floor"
      client_of[cpu]=pin
      extra_of[cpu]=
      desc_of[cpu]="one CPU: $cpu_layout; meshstun 1 thread, coturn defaults and -m 0"
      ;;
    machine)
      start machine-meshstun "${free_run[@]}" "$BUILD/meshstun" --listen 127.0.0.1:@PORT@ --rate 0 --threads "$ncpu"
      start machine-coturn "${free_run[@]}" turnserver "${ts_args[@]}" --log-file @TMP@/machine-coturn.tslog
      start machine-coturn-m0 "${free_run[@]}" turnserver "${ts_args[@]}" -m 0 --log-file @TMP@/machine-coturn-m0.tslog
      servers_of[machine]="machine-meshstun machine-coturn machine-coturn-m0"
      client_of[machine]=free
      extra_of[machine]="--sources 8"
      desc_of[machine]="whole machine ($ncpu CPUs, nothing pinned): meshstun --threads $ncpu, coturn defaults and -m 0, 8 client IPs"
      ;;
    *) echo "stun.sh: unknown layout $layout (cpu, machine)" >&2; exit 2 ;;
  esac
done

# every server must answer before the clock starts
for name in "${!port_of[@]}"; do
  ok=
  for _ in $(seq 50); do
    if "$BUILD/stunload" --server "127.0.0.1:${port_of[$name]}" --sockets 1 --duration 1 --warmup 0 --window 1 >/dev/null 2>&1; then
      ok=1; break
    fi
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "stun.sh: $name does not answer on 127.0.0.1:${port_of[$name]}" >&2; cat "$tmp"/*.log >&2 || true; exit 1; }
done

cpu_ticks() {	# utime + stime of every thread of pid, in clock ticks
  awk '{ s += $14 + $15 } END { print s }' /proc/"$1"/task/*/stat
}

run_one() {	# name client-kind stunload-args... -> "rate cpu_ticks"
  local name=$1 kind=$2 before after out
  shift 2
  local launcher=("${free_run[@]}")
  [ "$kind" = pin ] && launcher=("${pin_client[@]}")
  before=$(cpu_ticks "${pid_of[$name]}")
  out=$("${launcher[@]}" "$BUILD/stunload" --server "127.0.0.1:${port_of[$name]}" --sockets "$SOCKETS" \
          --window "$WINDOW" --batch "$BATCH" --duration "$DURATION" --warmup 1 "$@")
  after=$(cpu_ticks "${pid_of[$name]}")
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

echo "stun bench: $ROUNDS rounds of ${DURATION}s per server, layout and request shape; $SOCKETS sockets," \
  "window $WINDOW, batch $BATCH"
echo "  coturn: $(turnserver --version 2>/dev/null | head -n1): turnserver ${ts_args[*]//@PORT@/PORT}"
summary=()
for layout in $LAYOUTS; do
  echo "layout $layout: ${desc_of[$layout]}"
  read -r -a names <<<"${servers_of[$layout]}"
  read -r -a extra <<<"${extra_of[$layout]}"
  for shape in bare fingerprint; do
    args=("${extra[@]}")
    [ "$shape" = fingerprint ] && args+=(--fingerprint)
    declare -A rates=() cpu=() sum=()
    for name in "${names[@]}"; do rates[$name]=; cpu[$name]=0; sum[$name]=0; done
    for r in $(seq "$ROUNDS"); do
      for name in "${names[@]}"; do
        read -r rate ticks < <(run_one "$name" "${client_of[$layout]}" "${args[@]}")
        rates[$name]="${rates[$name]} $rate"
        cpu[$name]=$((cpu[$name] + ticks)); sum[$name]=$((sum[$name] + rate))
        printf '  %-8s %-11s round %d  %-20s %8d answers/s  (server CPU %s s)\n' \
          "$layout" "$shape" "$r" "${name#"$layout"-}" "$rate" "$(secs "$ticks")"
      done
    done
    declare -A med=() bst=() per=()
    for name in "${names[@]}"; do
      # shellcheck disable=SC2086
      med[$name]=$(median ${rates[$name]}); bst[$name]=$(best ${rates[$name]})
      per[$name]=$(eff "${sum[$name]}" "${cpu[$name]}")
      summary+=("$(printf '%-8s %-11s %-20s median %8d  best %8d answers/s  %8d per server CPU-second' \
        "$layout" "$shape" "${name#"$layout"-}" "${med[$name]}" "${bst[$name]}" "${per[$name]}")")
    done
    ms=$layout-meshstun
    # the coturn to beat: the configuration with the higher median
    ref=$layout-coturn
    [ "${med[$layout-coturn-m0]}" -gt "${med[$ref]}" ] && ref=$layout-coturn-m0
    for c in "$layout-coturn" "$layout-coturn-m0"; do
      mark=
      [ "$c" = "$ref" ] && mark="  <- coturn's faster configuration here (target >= 2x)"
      summary+=("$(printf '%-8s %-11s ratio meshstun/%s: median %sx  best %sx  per CPU-second %sx%s' \
        "$layout" "$shape" "${c#"$layout"-}" "$(ratio "${med[$ms]}" "${med[$c]}")" \
        "$(ratio "${bst[$ms]}" "${bst[$c]}")" "$(ratio "${per[$ms]}" "${per[$c]}")" "$mark")")
    done
    if [ -n "${med[$layout-floor]:-}" ]; then
      summary+=("$(printf '%-8s %-11s kernel floor (udpfloor, no STUN work): floor/%s median %sx, per CPU-second %sx (the ceiling of any socket-API server); meshstun/floor median %sx, per CPU-second %sx' \
        "$layout" "$shape" "${ref#"$layout"-}" "$(ratio "${med[$layout-floor]}" "${med[$ref]}")" \
        "$(ratio "${per[$layout-floor]}" "${per[$ref]}")" \
        "$(ratio "${med[$ms]}" "${med[$layout-floor]}")" "$(ratio "${per[$ms]}" "${per[$layout-floor]}")")")
    fi
    if [ -n "${med[$layout-meshstun-1sock]:-}" ]; then
      summary+=("$(printf '%-8s %-11s send-only twin socket: meshstun/meshstun-1sock median %sx' \
        "$layout" "$shape" "$(ratio "${med[$ms]}" "${med[$layout-meshstun-1sock]}")")")
    fi
    unset rates cpu sum med bst per
  done
done
printf '%s\n' "${summary[@]}"
