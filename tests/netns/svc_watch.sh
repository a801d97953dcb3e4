#!/usr/bin/env bash
# meshsvc's long poll on loopback: a waiting GET /api/vpcs/{id}/devices?since=REV
# returns within 100 ms of a change in its VPC, not for changes elsewhere, and
# at its deadline when nothing changes. No namespaces:
#
#   curl (device a, waiting) --\
#                               >-- HTTP 127.0.0.1 --> meshsvc
#   curl (device b, PATCH) ----/
set -u
. "$(dirname "$0")/svc_lib.bash"

svc_start
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" | jf secret)
VPC2=$(ctl -o json vpc create other | jf id)
KEY2=$(ctl -o json reg-key create --vpc "$VPC2" | jf secret)
register a "$KEY"
register b "$KEY"
register x "$KEY2"

waiters() { api GET /metrics "$ADMIN"; sed -n 's/^meshsvc_watch_waiters //p' <<<"$OUT"; }
# poll NAME TOKEN SINCE WAIT: a long poll in the background; its answer in
# $WORK/NAME.json, the time it arrived (ms) in $WORK/NAME.t
# (POLLS collects their pids; wait_polls waits for them, not for meshsvc)
POLLS=()
poll() {
	(curl -s --max-time 60 -H "Authorization: Bearer $2" \
		"$URL/api/vpcs/$VPC/devices?since=$3&wait=$4" >"$WORK/$1.json"; now_ms >"$WORK/$1.t") &
	POLLS+=($!)
}
wait_polls() { wait "${POLLS[@]}"; POLLS=(); }
until_waiters() { # N
	for i in $(seq 100); do [ "$(waiters)" = "$1" ] && return 0; sleep 0.02; done
	return 1
}

api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(jfield revision)

# --- a change answers the poll at once ------------------------------------------------
poll w1 "$TOK_a" "$REV" 30
check "the poll waits (a suspended connection, counted in /metrics)" until_waiters 1
sleep 0.3
check "and has not answered before any change" test ! -s "$WORK/w1.t"
t0=$(now_ms)
api PATCH "/api/devices/$ID_b" "$TOK_b" '{"endpoints":[{"source":"local","address":"10.0.0.2:4000"}]}'
wait_polls
dt=$(($(cat "$WORK/w1.t") - t0))
check "a PATCH answers the waiting poll within 100 ms (took $dt ms)" test "$dt" -lt 100
check "the answer has the change and the new revision" \
	bash -c "grep -q '10.0.0.2:4000' '$WORK/w1.json' && grep -q '\"revision\":$((REV + 1))' '$WORK/w1.json' && ! grep -q '$ID_a' '$WORK/w1.json'"
REV=$((REV + 1))

# --- a registration and a deletion answer it too ---------------------------------------------
poll w2 "$TOK_a" "$REV" 30
until_waiters 1
t0=$(now_ms)
register c "$KEY"
wait_polls
dt=$(($(cat "$WORK/w2.t") - t0))
check "a registration answers the poll within 100 ms (took $dt ms)" \
	bash -c "[ $dt -lt 100 ] && grep -q '$ID_c' '$WORK/w2.json'"
REV=$((REV + 1))
poll w3 "$TOK_a" "$REV" 30
until_waiters 1
t0=$(now_ms)
api DELETE "/api/devices/$ID_c" "$ADMIN"
wait_polls
dt=$(($(cat "$WORK/w3.t") - t0))
check "a deletion answers the poll within 100 ms with the id in deleted (took $dt ms)" \
	bash -c "[ $dt -lt 100 ] && grep -q '\"deleted\":\[\"$ID_c\"\]' '$WORK/w3.json'"
REV=$((REV + 1))

# --- other VPCs and deadlines ---------------------------------------------------------------
poll w4 "$TOK_a" "$REV" 2
until_waiters 1
t0=$(now_ms)
api PATCH "/api/devices/$ID_x" "$TOK_x" '{"relay":true}'
sleep 0.5
check "a change in another VPC does not answer the poll" test ! -s "$WORK/w4.t"
wait_polls
dt=$(($(cat "$WORK/w4.t") - t0))
check "the deadline answers it ($dt ms after the other VPC's change), with nothing new" \
	bash -c "[ $dt -ge 1300 ] && [ $dt -lt 2600 ] && grep -q '\"devices\":\[\],\"deleted\":\[\]' '$WORK/w4.json' && grep -q '\"revision\":$REV' '$WORK/w4.json'"
api GET "/api/vpcs/$VPC/devices?since=$((REV - 2))&wait=30" "$TOK_a"
check "an old since answers at once with the changes after it" \
	bash -c "[ '$STATUS' = 200 ] && grep -q '\"full\":false' <<<'$OUT' && grep -q '$ID_c' <<<'$OUT'"
api GET "/api/vpcs/$VPC/devices?since=$((REV + 50))&wait=30" "$TOK_a"
check "a since from the future answers at once with the full list" \
	bash -c "grep -q '\"full\":true' <<<'$OUT' && grep -q '$ID_a' <<<'$OUT' && grep -q '$ID_b' <<<'$OUT'"

# --- many waiters, one change ----------------------------------------------------------------------
for i in $(seq 50); do poll "m$i" "$TOK_a" "$REV" 30; done
check "50 waiters are held" until_waiters 50
api PATCH "/api/devices/$ID_b" "$TOK_b" '{"hostname":"renamed"}'
wait_polls
check "one change answers all 50" test "$(grep -l renamed "$WORK"/m*.json | wc -l)" = 50
check "and none is left waiting" until_waiters 0

poll w5 "$TOK_a" "$((REV + 1))" 30
until_waiters 1
svc_stop TERM
wait_polls
check "SIGTERM answers the waiters before meshsvc exits" grep -q '"revision"' "$WORK/w5.json"
finish
