#!/usr/bin/env bash
# meshsvc on PostgreSQL (--db postgres://...): what is PostgreSQL's own (the
# schema version row, clear connection errors without the password, restart
# and a newer schema; replicas: svc_pg_replicas.sh), then svc_api.sh and
# svc_watch.sh, the SQLite suite, run again with SVC_DB=pg. No namespaces:
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
for t in svc_api svc_watch; do
	out=$(SVC_DB=pg BUILD="$BUILD" bash "$(dirname "$0")/$t.sh" 2>&1); rc=$?
	sed -n 's/^\(ok\|not ok\|skip\) - /\1 - pg '"$t"': /p' <<<"$out"
	grep -q '^not ok' <<<"$out" && TAP_FAILS=$((TAP_FAILS + 1)) && grep -v '^ok' <<<"$out" | tail -n 20
	[ $rc -eq 0 ] || grep -q '^not ok' <<<"$out" || not_ok "pg $t: exits 0 (exit $rc)"
done
finish
