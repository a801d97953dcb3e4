#!/usr/bin/env bash
# meshsvc's published presence and tombstone horizon, on loopback (no
# namespaces): a device silent for --offline-after goes offline with a new
# revision, which answers a long poll; its next request brings it back the same
# way; a deleted device's tombstone is pruned after --tombstone-ttl, and then a
# client whose revision is older than the pruned tombstone gets the whole list
# (full: true) instead of changes that would miss the deletion.
set -u
. "$(dirname "$0")/svc_lib.bash"

# --- bad limits are refused at start ---------------------------------------------------------
out=$("$SVC" --offline-after 1 --db "$WORK/x.db" 2>&1); rc=$?
check "--offline-after 1 is refused (exit $rc) naming the option and range" \
	bash -c "[ $rc = 2 ] && grep -q -- '--offline-after wants a whole number of seconds, 2\.\.' <<<'$out'"
out=$("$SVC" --tombstone-ttl 10x --db "$WORK/x.db" 2>&1); rc=$?
check "--tombstone-ttl 10x is refused (exit $rc)" \
	bash -c "[ $rc = 2 ] && grep -q -- '--tombstone-ttl wants a whole number of seconds.*: 10x' <<<'$out'"
check "and no database was created for them" test ! -e "$WORK/x.db"

svc_start --offline-after 2 --tombstone-ttl 3
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" | jf secret)
register a "$KEY"
register b "$KEY"
register c "$KEY"

api GET "/api/vpcs/$VPC/devices" "$ADMIN"
REV=$(jfield revision)
check "a registered device is online" bash -c "grep -q '\"online\":true' <<<'$OUT'"

# the admin waits (an admin has no presence of its own); nobody talks
t0=$(now_ms)
curl -s --max-time 30 -H "Authorization: Bearer $ADMIN" \
	"$URL/api/vpcs/$VPC/devices?since=$REV&wait=20" >"$WORK/w1.json"
dt=$(($(now_ms) - t0))
check "silence answers the poll: devices published offline after $dt ms (2 s window, 1 s sweep)" \
	bash -c "[ $dt -ge 1000 ] && [ $dt -lt 4500 ] && grep -q '\"online\":false' '$WORK/w1.json'"
NREV=$(jfield revision "$(cat "$WORK/w1.json")")
check "with new revisions (revision $REV -> $NREV) and full: false" \
	bash -c "[ $NREV -gt $REV ] && grep -q '\"full\":false' '$WORK/w1.json'"
# wait until all three are offline (they may go in two sweeps)
for _ in $(seq 40); do
	api GET "/api/vpcs/$VPC/devices" "$ADMIN"
	grep -q '"online":true' <<<"$OUT" || break
	sleep 0.1
done
check "all three are offline" bash -c "! grep -q '\"online\":true' <<<'$OUT'"
REV=$(jfield revision)

( curl -s --max-time 30 -H "Authorization: Bearer $ADMIN" \
	"$URL/api/vpcs/$VPC/devices?since=$REV&wait=20" >"$WORK/w2.json"; now_ms >"$WORK/w2.t" ) &
poller=$!
sleep 0.3
t0=$(now_ms)
api GET /api/whoami "$TOK_b"
wait "$poller"
dt=$(($(cat "$WORK/w2.t") - t0))
check "a request from b answers the poll within 200 ms (took $dt ms) with b online" \
	bash -c "[ $dt -lt 200 ] && grep -q '\"hostname\":\"b\".*\"online\":true\|\"online\":true.*\"hostname\":\"b\"' '$WORK/w2.json'"
check "and only b changed" bash -c "! grep -q '\"hostname\":\"a\"' '$WORK/w2.json'"

# --- tombstones -----------------------------------------------------------------------------
api GET "/api/vpcs/$VPC/devices" "$ADMIN"
BEFORE=$(jfield revision)
api DELETE "/api/devices/$ID_c" "$ADMIN"
api GET "/api/vpcs/$VPC/devices?since=$BEFORE" "$ADMIN"
check "right after the deletion, since=$BEFORE gets the tombstone" \
	bash -c "grep -q '\"full\":false' <<<'$OUT' && grep -q '\"deleted\":\[\"$ID_c\"\]' <<<'$OUT'"
pruned=
for _ in $(seq 60); do
	grep -q 'tombstones pruned' "$WORK/svc.log" && { pruned=1; break; }
	sleep 0.1
done
check "the tombstone is pruned after the 3 s TTL" test -n "$pruned"
api GET "/api/vpcs/$VPC/devices?since=$BEFORE" "$ADMIN"
check "then since=$BEFORE gets the whole list instead (full: true, a and b, not c)" \
	bash -c "grep -q '\"full\":true' <<<'$OUT' && grep -q '$ID_a' <<<'$OUT' && grep -q '$ID_b' <<<'$OUT' && ! grep -q '$ID_c' <<<'$OUT'"
NOW_REV=$(jfield revision)
api GET "/api/vpcs/$VPC/devices?since=$NOW_REV" "$ADMIN"
check "while the current revision ($NOW_REV) still gets changes only" \
	bash -c "grep -q '\"full\":false' <<<'$OUT' && grep -q '\"devices\":\[\]' <<<'$OUT'"

svc_stop TERM
svc_start --offline-after 2 --tombstone-ttl 3
api GET "/api/vpcs/$VPC/devices?since=$BEFORE" "$ADMIN"
check "after a restart the horizon holds (full: true for since=$BEFORE)" \
	bash -c "grep -q '\"full\":true' <<<'$OUT'"
finish
