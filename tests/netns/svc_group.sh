#!/usr/bin/env bash
# meshsvc's group commit on loopback: concurrent writes share commits (fewer
# fsyncs than writes, as /metrics counts them) while a lone write is committed
# at once; answers given while other clients write (refusals before their body
# is read, reads, a long poll) are right; and when commits fail (a full disk)
# every write of the failed batches is answered 500, none of them is in the
# database, and none leaks an address. No namespaces:
#
#   svcload (64 connections, registering) ---\
#   curl x 4 (refusals, reads), curl (poll) --+-- HTTP 127.0.0.1 --> meshsvc --> $WORK/db
#                                                                        \-----> $SMALL/db (4 MiB tmpfs)
set -u
. "$(dirname "$0")/svc_lib.bash"

SMALL=$WORK/small
cleanup_group() {
	[ -n "$SVC_PID" ] && kill -9 "$SVC_PID" 2>/dev/null && wait "$SVC_PID" 2>/dev/null
	SVC_PID=
	mountpoint -q "$SMALL" && umount "$SMALL"
	cleanup
}
trap cleanup_group EXIT

metric() { api GET /metrics "$ADMIN"; sed -n "s/^$1 //p" <<<"$OUT"; }
# every address of the device list in $1 as host indexes in 100.64.0.0/10, sorted
indexes() {
	grep -o '"tunnel_ip": "[^"]*"' "$1" | cut -d'"' -f4 |
		awk -F. '{ print ($2 - 64) * 65536 + $3 * 256 + $4 }' | sort -n
}

svc_start
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" --max-devices 100000 | jf secret)
echo "$KEY" >"$WORK/regkey"

# --- a lone write -----------------------------------------------------------------------
c0=$(metric meshsvc_commits_total)
w0=$(metric meshsvc_writes_total)
register a "$KEY"
check "a lone registration is one write in one commit (not held for company)" \
	test "$STATUS:$(($(metric meshsvc_commits_total) - c0)):$(($(metric meshsvc_writes_total) - w0))" = "201:1:1"

# --- many writers -----------------------------------------------------------------------------
N=3000
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(jfield revision)
c0=$(metric meshsvc_commits_total)
w0=$(metric meshsvc_writes_total)
t0=$(now_ms)
(curl -s --max-time 60 -H "Authorization: Bearer $TOK_a" "$URL/api/vpcs/$VPC/devices?since=$REV&wait=30" \
	>"$WORK/poll.json"; now_ms >"$WORK/poll.t") &
poll=$!
"$LOAD" register "$URL" "$WORK/regkey" "$N" 64 "$WORK/many.txt" >"$WORK/many.out" 2>&1 &
load=$!
# requests whose answers are known, until the load is over: "wanted got"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
probe() {
	local bad="nmreg_$(printf 'A%.0s' $(seq 43))" body=(-H 'Content-Type: application/json' --data-binary)
	while :; do
		echo "401 $(code -X POST -H "Authorization: Bearer $bad" "${body[@]}" '{"public_key":"x"}' "$URL/api/devices")"
		echo "405 $(code -X PUT "${body[@]}" '{}' "$URL/api/devices")"
		echo "200 $(code -H "Authorization: Bearer $TOK_a" "$URL/api/devices/$ID_a")"
		echo "200 $(code -H "Authorization: Bearer $ADMIN" "$URL/api/vpcs/$VPC")"
		kill -0 "$load" 2>/dev/null || break
	done
}
probes=()
for i in 1 2 3 4; do
	probe >"$WORK/probe.$i" &
	probes+=($!)
done
wait "$load"
wait "${probes[@]}"
wait "$poll"
commits=$(($(metric meshsvc_commits_total) - c0))
writes=$(($(metric meshsvc_writes_total) - w0))
check "$N registrations over 64 connections all succeed" grep -q "registered=$N failed=0" "$WORK/many.out"
check "with distinct addresses" test "$(cut -d' ' -f2 "$WORK/many.txt" | sort -u | wc -l)" = "$N"
check "they took fewer commits than writes ($writes writes in $commits commits)" \
	bash -c "[ $writes -ge $N ] && [ $commits -lt $N ]"
cat "$WORK"/probe.* >"$WORK/probes"
check "$(wc -l <"$WORK/probes") requests beside them were answered right (401, 405, reads)" \
	bash -c "[ -s '$WORK/probes' ] && awk '\$1 != \$2 { bad++ } END { exit bad > 0 }' '$WORK/probes'"
dt=$(($(cat "$WORK/poll.t") - t0))
check "the waiting poll heard of the new devices ($dt ms)" \
	bash -c "[ $dt -lt 10000 ] && grep -q '\"full\":false' '$WORK/poll.json' &&
		 grep -q '\"tunnel_ip\"' '$WORK/poll.json'"
svc_stop TERM

# --- commits that fail --------------------------------------------------------------------------
mkdir "$SMALL"
mount -t tmpfs -o size=4m tmpfs "$SMALL"
svc_start --db "$SMALL/db" --admin-token-file "$WORK/db.admin-token"
VPC=$(ctl -o json vpc create full | jf id)
ctl -o json reg-key create --vpc "$VPC" | jf secret >"$WORK/regkey"
"$LOAD" register "$URL" "$WORK/regkey" 20 4 "$WORK/acked.txt" >/dev/null
dd if=/dev/zero of="$SMALL/filler" bs=4k 2>/dev/null
"$LOAD" register "$URL" "$WORK/regkey" 300 16 "$WORK/acked.txt" >"$WORK/full.out" 2>&1
failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$WORK/full.out")
api GET /metrics "$ADMIN"
e500=$(sed -n 's/^meshsvc_http_requests_total{route="\/api\/devices",method="POST",code="500"} //p' <<<"$OUT")
check "on a full disk registrations fail ($failed of 300), each with a 500" \
	bash -c "[ '${failed:-0}' -gt 0 ] && [ '${e500:-0}' = '$failed' ]"
check "counted as failed commits" bash -c "[ '$(metric meshsvc_commit_failures_total)' -gt 0 ]"
rm "$SMALL/filler"
register e "$(cat "$WORK/regkey")"
check "with room again, registration goes on" test "$STATUS" = 201
svc_stop KILL
svc_start --db "$SMALL/db" --admin-token-file "$WORK/db.admin-token"
ctl -o json device list >"$WORK/after.json"
acked=$(($(wc -l <"$WORK/acked.txt") + 1))
missing=0
while read -r id ip _; do
	grep -A8 "\"id\": \"$id\"" "$WORK/after.json" | grep -q "\"tunnel_ip\": \"$ip\"" || missing=$((missing + 1))
done <"$WORK/acked.txt"
check "after kill -9, every acknowledged device is there ($missing missing)" test "$missing" = 0
check "and nothing that was answered 500 ($(grep -c '"id"' "$WORK/after.json") devices, $acked acknowledged)" \
	test "$(grep -c '"id"' "$WORK/after.json")" = "$acked"
check "failed batches leaked no address: they are 1..$acked" \
	test "$(indexes "$WORK/after.json" | tr '\n' ' ')" = "$(seq -s ' ' "$acked") "
finish
