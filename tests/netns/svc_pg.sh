#!/usr/bin/env bash
# meshsvc on PostgreSQL (--db postgres://...): what is PostgreSQL's own (the
# schema version row, clear connection errors without the password, restart
# and a newer schema; replicas: svc_pg_replicas.sh), then svc_api.sh,
# svc_watch.sh, svc_durability.sh (kill -9 under load) and svc_reclaim.sh,
# the SQLite suite, run again with SVC_DB=pg. No namespaces:
#
#   curl / meshctl --HTTP 127.0.0.1--> meshsvc --Unix socket--> private postgres (pg.bash)
set -u
SVC_DB=pg
. "$(dirname "$0")/svc_lib.bash"

svc_start
check "meshsvc runs on the private cluster" grep -q "listening url=.* db=postgresql://" "$WORK/svc.log"
check "the schema version is recorded (natmesh_schema: 4)" test "$(pg_psql 'SELECT version FROM natmesh_schema')" = 4
VPC=$(ctl -o json vpc create pgvpc | jf id)
check "a VPC is created" test -n "$VPC"
check "its row is in PostgreSQL" test "$(pg_psql "SELECT name FROM vpcs WHERE id = '$VPC'")" = pgvpc

svc_stop KILL
svc_start
api GET "/api/vpcs/$VPC" "$ADMIN"
check "after kill -9 and a restart the VPC is there" test "$STATUS" = 200

# healthy_again: /healthz asked every 0.1 s (5 s at most) until 200; dt is
# how long it took, STATUS the last answer's
healthy_again() {
	local t0=$(now_ms)
	for _ in $(seq 50); do
		api GET /healthz ""
		[ "$STATUS" = 200 ] && break
		sleep 0.1
	done
	dt=$(($(now_ms) - t0))
}

# the database goes away (-m immediate, as in a crash) and comes back
pg_stop
t0=$(now_ms)
api POST /api/vpcs "$ADMIN" '{"name":"during"}'
dt=$(($(now_ms) - t0))
check "while PostgreSQL is down a write fails at once with 503 ($STATUS in $dt ms)" bash -c "[ $STATUS = 503 ] && [ $dt -lt 5000 ]"
check "naming the cause" grep -q '"the database is unavailable' <<<"$OUT"
api GET /api/vpcs "$ADMIN"
check "and so does a read ($STATUS)" test "$STATUS" = 503
api GET /healthz ""
check "/healthz says so: 503, database unavailable ($STATUS)" \
	bash -c "[ $STATUS = 503 ] && grep -q '\"database\":\"unavailable\"' <<<'$OUT'"
check "the log says the connection is lost, with the URL" grep -q 'lost the connection to PostgreSQL url=postgresql://' "$WORK/svc.log"
pg_start
healthy_again
check "when it is back meshsvc reconnects by itself: /healthz 200 within $dt ms ($STATUS; 2 s allowed)" \
	bash -c "[ $STATUS = 200 ] && [ $dt -lt 2000 ]"
api POST /api/vpcs "$ADMIN" '{"name":"after"}'
check "and a write goes through ($STATUS)" test "$STATUS" = 201
check "the log says so" grep -q 'reconnected to PostgreSQL url=postgresql://' "$WORK/svc.log"
api GET /api/vpcs "$ADMIN"
check "the VPC from before the outage is there, the one refused during it is not" \
	bash -c "grep -q '\"pgvpc\"' <<<'$OUT' && ! grep -q '\"during\"' <<<'$OUT'"

# the same under registration load: nothing acknowledged is lost
ctl -o json reg-key create --vpc "$VPC" --max-devices 100000 | jf secret >"$WORK/regkey"
# PostgreSQL stopped for 10 s under load (issue 20); the client counts the
# statuses it got (status_NNN=COUNT)
"$LOAD" register "$URL" "$WORK/regkey" 20000 16 "$WORK/acked.txt" >"$WORK/load.out" 2>&1 &
load=$!
# the client makes its keys first: the outage starts once some are acknowledged
for _ in $(seq 100); do [ -s "$WORK/acked.txt" ] && break; sleep 0.1; done
sleep 0.3
pg_stop
sleep 10
api GET /healthz ""
down_health=$STATUS
pg_start
healthy_again
check "back within 2 s of the database's return (/healthz 200 after $dt ms)" bash -c "[ $STATUS = 200 ] && [ $dt -lt 2000 ]"
wait "$load"
check "/healthz 503 during the 10 s outage ($down_health)" test "$down_health" = 503
st500=$(sed -n 's/.*status_500=\([0-9]*\).*/\1/p' "$WORK/load.out")
st503=$(sed -n 's/.*status_503=\([0-9]*\).*/\1/p' "$WORK/load.out")
check "the registrations refused during it were 503s (${st503:-0}), none 500 (${st500:-0})" \
	bash -c "[ '${st503:-0}' -gt 0 ] && [ -z '$st500' ]"
acked=$(wc -l <"$WORK/acked.txt")
failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$WORK/load.out")
pg_psql "SELECT id || ' ' || tunnel_ip FROM devices" | sort >"$WORK/stored.txt"
awk '{ print $1 " " $2 }' "$WORK/acked.txt" | sort >"$WORK/acked.sorted"
missing=$(comm -23 "$WORK/acked.sorted" "$WORK/stored.txt" | wc -l)
check "registrations across an outage: $acked acknowledged, ${failed:-?} failed, all acknowledged ones stored ($missing missing)" \
	bash -c "[ $missing = 0 ] && [ $acked -gt 0 ] && [ '${failed:-0}' -gt 0 ]"
register late "$(cat "$WORK/regkey")"
check "after it, registration goes on ($STATUS)" test "$STATUS" = 201
svc_stop TERM

port=$(pg_free_port)
out=$(timeout 30 "$SVC" --listen 127.0.0.1:0 --db "postgres://natmesh:s3cret@127.0.0.1:$port/x?password=s3cret" \
	--admin-token-file "$WORK/db.admin-token" 2>&1); rc=$?
check "no database server: meshsvc exits $rc naming the URL and the reason" \
	bash -c "[ $rc -ne 0 ] && grep -q 'cannot connect to PostgreSQL url=postgres://natmesh:\*\*\*@127.0.0.1:$port/x?password=\*\*\*: .*refused' <<<'$out'"
check "the password is not logged" bash -c "! grep -q s3cret <<<'$out'"

pg_psql "UPDATE natmesh_schema SET version = 99"
out=$(timeout 30 "$SVC" --listen 127.0.0.1:0 --db "$PG_URL" --admin-token-file "$WORK/db.admin-token" 2>&1); rc=$?
check "a newer schema is refused (exit $rc)" bash -c "[ $rc -ne 0 ] && grep -q 'schema version 99' <<<'$out'"
pg_psql "UPDATE natmesh_schema SET version = 4"

# the suite of the SQLite backend, on PostgreSQL; each starts its own cluster
for t in svc_api svc_watch svc_durability svc_reclaim; do
	out=$(SVC_DB=pg BUILD="$BUILD" bash "$(dirname "$0")/$t.sh" 2>&1); rc=$?
	sed -n 's/^\(ok\|not ok\|skip\) - /\1 - pg '"$t"': /p' <<<"$out"
	grep -q '^not ok' <<<"$out" && TAP_FAILS=$((TAP_FAILS + 1)) && grep -v '^ok' <<<"$out" | tail -n 20
	[ $rc -eq 0 ] || grep -q '^not ok' <<<"$out" || not_ok "pg $t: exits 0 (exit $rc)"
done
finish
