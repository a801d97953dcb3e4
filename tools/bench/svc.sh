#!/usr/bin/env bash
# Control-plane benchmark: meshsvc on loopback with a fresh database.
#   1. register DEVICES devices in one VPC over CONNS keep-alive connections
#      (build/svcload: raw HTTP/1.1 on one epoll) -> registrations per second,
#      and how many writes each commit (fsync) carried (group commit);
#   2. hold DEVICES long polls, one per device with its own token, then PATCH
#      one device -> the time until every poll has its answer (p50, p99);
#   3. meshsvc's peak RSS (VmHWM from /proc) over both;
#   4. policy (issue 16): the devices in 10 security groups (each allowing
#      tcp/80 from the one before it), DEVICES long polls again, then one
#      group's rule changed (another port) -> the time until every poll has
#      its answer, and the peak RSS.
# Targets (issue 4): >= 1000 registrations/s, fan-out p99 < 1 s, RSS < 200 MB;
# (issue 16): a rule change reaching every poll p99 < 1 s, RSS < 300 MB.
# Reference in the same run: the sqlite3 shell's rate of one-row transactions
# with synchronous=FULL (an fsync each) on the same disk, the ceiling of one
# commit per registration; group commit exceeds it by sharing fsyncs.
# With BASELINE=PATH (another meshsvc, say a build of an older commit in /tmp),
# step 1 is also run ROUNDS times for each, alternating (noise from other work
# on the machine hits both), and the medians are compared.
#
#   tools/bench/svc.sh        (or: make bench, or tools/bench/run svc)
#   BASELINE=/tmp/old/build/meshsvc ROUNDS=5 tools/bench/svc.sh
# Tunables (environment): DEVICES=10000 CONNS=64 BASELINE= ROUNDS=3
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
DEVICES=${DEVICES:-10000}
CONNS=${CONNS:-64}
BASELINE=${BASELINE:-}
ROUNDS=${ROUNDS:-3}

for bin in "$BUILD/meshsvc" "$BUILD/svcload" ${BASELINE:+"$BASELINE"}; do
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
stop_svc() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
cleanup() {
  stop_svc
  rm -rf "$tmp"
}
trap cleanup EXIT

# the generator and the service on different CPUs when there are several
pin_svc=() pin_load=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  last=$(($(nproc) - 1))
  pin_svc=(taskset -c "$last") pin_load=(taskset -c "0-$((last - 1))")
fi

field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }
metric() { curl -sf -H "Authorization: Bearer $admin" "$url/metrics" | sed -n "s/^$1 //p"; }

# start_svc BINARY DIR: meshsvc on a fresh database in DIR, a VPC and a key;
# sets pid, url, admin, vpc
start_svc() {
  mkdir -p "$2"
  "${pin_svc[@]}" "$1" --listen 127.0.0.1:0 --db "$2/db" >"$2/svc.log" 2>&1 &
  pid=$!
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/.*listening url=\([^ ]*\).*/\1/p' "$2/svc.log")
    [ -n "$url" ] && break
    sleep 0.05
  done
  [ -n "$url" ] || { echo "svc.sh: meshsvc did not start" >&2; cat "$2/svc.log" >&2; exit 1; }
  admin=$(cat "$2/db.admin-token")
  vpc=$(curl -sf -H "Authorization: Bearer $admin" -d '{"name":"bench"}' "$url/api/vpcs" | field id)
  curl -sf -H "Authorization: Bearer $admin" -d "{\"vpc_id\":\"$vpc\",\"max_devices\":16777216}" "$url/api/reg-keys" | field secret >"$2/regkey"
}

# register DIR: step 1 against the meshsvc started in DIR; prints svcload's line
register() {
  "${pin_load[@]}" "$BUILD/svcload" register "$url" "$1/regkey" "$DEVICES" "$CONNS" "$1/devices.txt"
}

echo "svc bench: $DEVICES devices in one VPC, $CONNS connections (fresh database, WAL, synchronous=FULL)"
start_svc "$BUILD/meshsvc" "$tmp/main"
commits0=$(metric meshsvc_commits_total)
writes0=$(metric meshsvc_writes_total)
reg=$(register "$tmp/main")
commits=$(($(metric meshsvc_commits_total) - commits0))
writes=$(($(metric meshsvc_writes_total) - writes0))
echo "  register: $reg commits=$commits writes=$writes"
fan=$("${pin_load[@]}" "$BUILD/svcload" watch "$url" "$tmp/main/db.admin-token" "$vpc" "$tmp/main/devices.txt" "$DEVICES" 2>"$tmp/watch.err")
echo "  fan-out:  $fan ($(sed 's/^svcload: //' "$tmp/watch.err"))"
rss_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")

# 4. policy: ten groups, every device in one of them (set in the database with
# the service stopped: setup, not measured), then a rule change
api() { curl -sf -X "$1" -H "Authorization: Bearer $admin" ${3:+-d "$3"} "$url$2"; }
for i in $(seq 0 9); do api POST /api/security-groups "{\"vpc_id\":\"$vpc\",\"name\":\"g$i\",\"outbound_rules\":[{}]}" >/dev/null; done
for i in $(seq 0 9); do
  g=$(api GET "/api/security-groups?vpc_id=$vpc" | tr '{' '\n' | grep "\"name\":\"g$i\"" | field id)
  if [ "$i" = 0 ]; then g0=$g; fi
  api PATCH "/api/security-groups/$g" "{\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,\"groups\":[\"g$(((i + 9) % 10))\"]}]}" >/dev/null
done
stop_svc
sqlite3 "$tmp/main/db" "UPDATE devices SET security_group_id = (SELECT g.id FROM security_groups g
  WHERE g.vpc_id = devices.vpc_id AND g.name = 'g' || (devices.ip_index % 10));
  UPDATE vpcs SET policy_revision = revision;"
"${pin_svc[@]}" "$BUILD/meshsvc" --listen 127.0.0.1:0 --db "$tmp/main/db" >"$tmp/main/svc2.log" 2>&1 &
pid=$!
url=
for _ in $(seq 100); do
  url=$(sed -n 's/.*listening url=\([^ ]*\).*/\1/p' "$tmp/main/svc2.log")
  [ -n "$url" ] && break
  sleep 0.05
done
[ -n "$url" ] || { echo "svc.sh: meshsvc did not start again" >&2; cat "$tmp/main/svc2.log" >&2; exit 1; }
# g0's rule moves to another port: every poll wakes and gets its group anew
pol=$("${pin_load[@]}" "$BUILD/svcload" watch "$url" "$tmp/main/db.admin-token" "$vpc" "$tmp/main/devices.txt" \
  "$DEVICES" "$g0" '{"inbound_rules":[{"ip_protocol":"tcp","from_port":8080,"to_port":8080,"groups":["g9"]}]}' \
  2>"$tmp/watch2.err")
echo "  policy:   $pol ($(sed 's/^svcload: //' "$tmp/watch2.err"))"
pol_rss_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
stop_svc

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
printf '  writes per commit %8s   (%s writes in %s commits)\n' \
  "$(awk -v w="$writes" -v c="$commits" 'BEGIN { printf "%.1f", c ? w / c : 0 }')" "$writes" "$commits"
printf '  fan-out p50 ms    %8s\n' "$p50"
printf '  fan-out p99 ms    %8s   target < 1000: %s\n' "$p99" "$(verdict "$p99 < 1000")"
printf '  meshsvc peak RSS  %8s MB   target < 200: %s\n' "$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" \
  "$(verdict "$rss_kb < 200 * 1024")"
pp99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$pol")
printf '  policy p50 ms     %8s   (a rule change in 10 groups of %s devices)\n' \
  "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$pol")" "$DEVICES"
printf '  policy p99 ms     %8s   target < 1000: %s\n' "$pp99" "$(verdict "$pp99 < 1000")"
printf '  policy peak RSS   %8s MB   target < 300: %s\n' "$(awk -v k="$pol_rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')" \
  "$(verdict "$pol_rss_kb < 300 * 1024")"

if [ -n "$BASELINE" ]; then
  echo "  registrations/s, $ROUNDS alternating rounds: $BUILD/meshsvc vs $BASELINE"
  main=() base=()
  for r in $(seq "$ROUNDS"); do
    for who in base main; do
      bin=$BUILD/meshsvc
      [ "$who" = base ] && bin=$BASELINE
      start_svc "$bin" "$tmp/$who$r"
      line=$(register "$tmp/$who$r")
      stop_svc
      if [ "$who" = base ]; then base+=("${line##*per_second=}"); else main+=("${line##*per_second=}"); fi
      echo "    round $r $who: $line"
    done
  done
  median() {
    printf '%s\n' "$@" | sort -n |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  }
  m=$(median "${main[@]}") b=$(median "${base[@]}")
  printf '  median registrations/s: %s %s, baseline %s; ratio %s\n' "$BUILD/meshsvc" "$m" "$b" \
    "$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
fi
exit "$missed"
