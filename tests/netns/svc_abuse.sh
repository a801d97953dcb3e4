#!/usr/bin/env bash
# meshsvc under abuse from one address (issue 15, points 3, 4 and 8), on
# loopback: 127.0.0.2 is the abuser's source address (any 127/8 address is
# on lo), 127.0.0.1 an honest client's. meshsvc runs with 256 descriptors,
# so that its connection limit (192) is within an abuser's reach, and with
# --polls-per-token 4 (default 64), so that a few polls reach that limit.
#
#   svc_abuse.py (127.0.0.2): slow request heads, long-poll floods --\
#                                                                    >-- 127.0.0.1:PORT meshsvc
#   curl /healthz every 50 ms (127.0.0.1), must answer in 100 ms ----/
set -u
. "$(dirname "$0")/svc_lib.bash"
ABUSE="python3 $(dirname "$0")/svc_abuse.py"
BAD=127.0.0.2

# meshsvc with few descriptors, through a wrapper (svc_start runs $SVC)
printf '#!/bin/sh\nulimit -n 256\nexec %s "$@"\n' "$(realpath "$SVC")" >"$WORK/meshsvc-256"
chmod +x "$WORK/meshsvc-256"
SVC=$WORK/meshsvc-256
MON_PID=
PIDS=()	# background long polls
stop_monitor() { [ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null; MON_PID=; }
trap 'stop_monitor; [ ${#PIDS[@]} -eq 0 ] || kill "${PIDS[@]}" 2>/dev/null; cleanup' EXIT

svc_start --polls-per-token 4
PORT=${URL##*:}
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" | jf secret)
register a "$KEY"
register b "$KEY"
register c "$KEY"

metric() { api GET /metrics "$ADMIN"; sed -n "s/^$1 //p" <<<"$OUT"; }

# /healthz from 127.0.0.1 every 50 ms into $WORK/NAME.mon, "CODE SECONDS" a line
monitor() {
	: >"$WORK/$1.mon"
	(while :; do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 2 "$URL/healthz" >>"$WORK/$1.mon"
		sleep 0.05
	done) &
	MON_PID=$!
}
# every /healthz answered 200 within 100 ms
healthy() {
	[ -s "$WORK/$1.mon" ] && awk '$1 != 200 || $2 >= 0.100 { bad++ } END { exit bad > 0 }' "$WORK/$1.mon"
}
worst() { awk '$1 != 200 { bad = $1 } $2 > m { m = $2 } END { if (bad != "") print "status " bad; else printf "%d ms\n", m * 1000 }' "$WORK/$1.mon"; }

# --- slow request heads -----------------------------------------------------------------
lines0=$(wc -l <"$WORK/svc.log")
monitor slow
RES=$($ABUSE slow 127.0.0.1 "$PORT" $BAD 250 14)
stop_monitor
check "250 slow heads from $BAD: /healthz from 127.0.0.1 answers 200 within 100 ms throughout ($(grep -c . "$WORK/slow.mon") probes, worst $(worst slow))" healthy slow
check "the connections past the per-address limit are refused at once ($RES)" \
	bash -c "[ \$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' <<<'$RES') -ge 100 ]"
check "the others are closed at the header time limit, not kept alive by a line a second ($RES)" \
	bash -c "grep -q 'open=0' <<<'$RES' && [ \$(sed -n 's/.*timedout=\([0-9]*\).*/\1/p' <<<'$RES') -ge 50 ]"
refused=$(metric meshsvc_connections_refused_total)
check "the refusals are counted in /metrics (meshsvc_connections_refused_total ${refused:-absent})" \
	test "${refused:-0}" -ge 100
n=$(tail -n +$((lines0 + 1)) "$WORK/svc.log" | wc -l)
check "and logged without a flood ($n log lines for 250 connections)" test "$n" -le 10

# --- long polls ------------------------------------------------------------------------
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(jfield revision)
POLL="/api/vpcs/$VPC/devices?since=$REV&wait=30"
monitor polls
RES=$($ABUSE poll 127.0.0.1 "$PORT" $BAD 250 8 "$POLL" "$TOK_a")
stop_monitor
check "250 long polls of one token from $BAD: /healthz from 127.0.0.1 answers within 100 ms throughout (worst $(worst polls))" healthy polls
check "the polls past the token's limit are refused with 429 and Retry-After ($RES)" \
	bash -c "n=\$(sed -n 's/.*s429=\([0-9]*\).*/\1/p' <<<'$RES'); r=\$(sed -n 's/.*retry_after=\([0-9]*\).*/\1/p' <<<'$RES'); [ \"\$n\" -ge 50 ] && [ \"\$n\" = \"\$r\" ]"

# the limit per token: the fifth poll of one token is refused, another token's is not
for i in 1 2 3 4; do
	curl -s -o /dev/null --max-time 30 -H "Authorization: Bearer $TOK_b" "$URL/api/vpcs/$VPC/devices?since=$REV&wait=20" &
	PIDS+=($!)
done
sleep 0.5
code=$(curl -s -D "$WORK/h5" -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: Bearer $TOK_b" "$URL$POLL")
check "a fifth long poll of one token is refused: 429 (got $code) with Retry-After" \
	bash -c "[ '$code' = 429 ] && grep -qi '^retry-after: [0-9]' '$WORK/h5'"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H "Authorization: Bearer $TOK_c" "$URL$POLL")
check "another token's long poll still waits (no answer within 1 s: $code)" test "$code" = 000

# a long-poll client killed: its sockets do not stay in CLOSE-WAIT until the wait ends
closewait() { ss -Htn state close-wait "( sport = :$PORT )" | grep -c .; }
kill -9 "${PIDS[@]}" 2>/dev/null
wait "${PIDS[@]}" 2>/dev/null
PIDS=()
gone() { for _ in $(seq 30); do [ "$(closewait)" = 0 ] && [ "$(metric meshsvc_watch_waiters)" = 0 ] && return 0; sleep 0.1; done; return 1; }
check "the killed client's 4 long polls are closed within 3 s, none left in CLOSE-WAIT (close-wait $(closewait), waiting $(metric meshsvc_watch_waiters), hung up $(metric meshsvc_long_polls_hung_up_total))" gone
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -H "Authorization: Bearer $TOK_b" "$URL$POLL")
check "and no longer count against the token's limit (no answer within 1 s: $code)" test "$code" = 000

# --- the peer-list cache -----------------------------------------------------------------
b0=$(metric meshsvc_list_builds_total)
for i in $(seq 50); do echo "url = \"$URL/api/vpcs/$VPC/devices?since=0\""; echo "url = \"$URL/api/vpcs/$VPC/devices?since=1\""; done >"$WORK/alt.cfg"
curl -s -H "Authorization: Bearer $TOK_a" -K "$WORK/alt.cfg" >/dev/null
b1=$(metric meshsvc_list_builds_total)
check "100 requests alternating since=0 and since=1 are served from the cache (lists built: ${b0:-absent} -> ${b1:-absent})" \
	bash -c "[ -n '$b0' ] && [ -n '$b1' ] && [ \$(($b1 - $b0)) -le 10 ]"
api GET "/api/vpcs/$VPC/devices?since=0" "$TOK_a"
full0=$(grep -o '"full":[a-z]*' <<<"$OUT")
api GET "/api/vpcs/$VPC/devices?since=1" "$TOK_a"
full1=$(grep -o '"full":[a-z]*' <<<"$OUT")
check "each since keeps its own answer (since=0: $full0, since=1: $full1 without device a)" \
	bash -c "[ '$full0' = '\"full\":true' ] && [ '$full1' = '\"full\":false' ] && ! grep -q '$ID_a' <<<'$OUT'"
finish
