#!/usr/bin/env bash
# Control-plane benchmark: meshsvc on loopback with a fresh database.
#   1. register DEVICES devices in one VPC over CONNS keep-alive connections
#      (build/svcload: raw HTTP/1.1 on one epoll) -> registrations per second;
#   2. hold DEVICES long polls, one per device with its own token, then PATCH
#      one device -> the time until every poll has its answer (p50, p99);
#   3. meshsvc's peak RSS (VmHWM from /proc) over both.
# Targets (issue 4): >= 1000 registrations/s, fan-out p99 < 1 s, RSS < 200 MB.
# Reference in the same run: every registration is one SQLite transaction with
# synchronous=FULL (an fsync), so the sqlite3 shell's rate of one-row
# transactions in the same mode on the same disk is the ceiling; the ratio
# says how much of it meshsvc reaches.
#
#   tools/bench/svc.sh        (or: make bench, or tools/bench/run svc)
# Tunables (environment): DEVICES=10000 CONNS=64
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DEVICES=${DEVICES:-10000}
CONNS=${CONNS:-64}

for bin in "$BUILD/meshsvc" "$BUILD/svcload"; do
  [ -x "$bin" ] || { echo "svc.sh: $bin is missing (run make)" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "svc.sh: sqlite3 is missing (run make deps)" >&2; exit 1; }
need=$((DEVICES + 200))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need" ]; then
  echo "svc.sh: the hard limit on open files ($(ulimit -Hn)) is below $need; raise it (ulimit -Hn)" >&2
  exit 1
fi
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d /tmp/natmesh-svcbench.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# the generator and the service on different CPUs when there are several
pin_svc=() pin_load=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  last=$(($(nproc) - 1))
  pin_svc=(taskset -c "$last") pin_load=(taskset -c "0-$((last - 1))")
fi

"${pin_svc[@]}" "$BUILD/meshsvc" --listen 127.0.0.1:0 --db "$tmp/db" >"$tmp/svc.log" 2>&1 &
pid=$!
url=
for _ in $(seq 100); do
  url=$(sed -n 's/.*listening url=\([^ ]*\).*/\1/p' "$tmp/svc.log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "svc.sh: meshsvc did not start" >&2; cat "$tmp/svc.log" >&2; exit 1; }
admin=$(cat "$tmp/db.admin-token")
field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }
vpc=$(curl -sf -H "Authorization: Bearer $admin" -d '{"name":"bench"}' "$url/api/vpcs" | field id)
curl -sf -H "Authorization: Bearer $admin" -d "{\"vpc_id\":\"$vpc\"}" "$url/api/reg-keys" | field secret >"$tmp/regkey"

echo "svc bench: $DEVICES devices in one VPC, $CONNS connections; meshsvc $url (fresh database, WAL, synchronous=FULL)"
reg=$("${pin_load[@]}" "$BUILD/svcload" register "$url" "$tmp/regkey" "$DEVICES" "$CONNS" "$tmp/devices.txt")
echo "  register: $reg"
fan=$("${pin_load[@]}" "$BUILD/svcload" watch "$url" "$tmp/db.admin-token" "$vpc" "$tmp/devices.txt" "$DEVICES" 2>"$tmp/watch.err")
echo "  fan-out:  $fan ($(cat "$tmp/watch.err" | sed 's/^svcload: //'))"
rss_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")

# the reference: one-row transactions through the sqlite3 shell, same mode, same disk
n=2000
sqlite3 "$tmp/ref.db" 'PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);' >/dev/null
t0=$(date +%s%N)
for i in $(seq "$n"); do echo "INSERT INTO t VALUES ($i);"; done | sqlite3 -cmd 'PRAGMA synchronous=FULL' "$tmp/ref.db"
t1=$(date +%s%N)
ref=$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')

rate=${reg##*per_second=}
p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$fan")
p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$fan")
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "MISSED"; missed=1; fi; }
missed=0
printf '  registrations/s   %8s   target >= 1000: %s   (sqlite3 one-row FULL transactions/s on this disk: %s; ratio %s)\n' \
  "$rate" "$(verdict "$rate >= 1000")" "$ref" "$(awk -v a="$rate" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')"
printf '  fan-out p50 ms    %8s\n' "$p50"
printf '  fan-out p99 ms    %8s   target < 1000: %s\n' "$p99" "$(verdict "$p99 < 1000")"
printf '  meshsvc peak RSS  %8s MB   target < 200: %s\n' "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" \
  "$(verdict "$rss_kb < 200 * 1024")"
exit "$missed"
