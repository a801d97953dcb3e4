# Helpers for the svc_*.sh tests: the real meshsvc on 127.0.0.1 with a port the
# kernel picks (read back from its log), curl to drive it, TAP lines out.
# Sourced, not run. One suite, two backends: SVC_DB=pg runs meshsvc on a
# private PostgreSQL cluster (pg.bash) instead of an SQLite file; each SQLite
# path a test names (--db PATH) becomes a database of its own there.
. "$(dirname "${BASH_SOURCE[0]}")/tap.bash"
. "$(dirname "${BASH_SOURCE[0]}")/pg.bash"

BUILD=${BUILD:-build}
SVC=$BUILD/meshsvc
CTL=$BUILD/meshctl
LOAD=$BUILD/svcload
WORK=$(mktemp -d "/tmp/nmt-svc-$$-XXXXXX")
SVC_PID=
URL=
CURL_TLS=()

SVC_DB=${SVC_DB:-sqlite}
SVC_PG_DBS=()	# the SQLite paths a test named, in the order their databases were made
SVC_DB_NOW=	# the database meshsvc runs on (a path or a URL)

B_PID=
cleanup() {
	[ -n "$SVC_PID" ] && kill -9 "$SVC_PID" 2>/dev/null
	[ -n "$SVC_PID" ] && wait "$SVC_PID" 2>/dev/null
	[ -n "$B_PID" ] && kill -9 "$B_PID" 2>/dev/null && wait "$B_PID" 2>/dev/null
	pg_cleanup
	# a file system a test mounted under $WORK, which the database's
	# tablespace kept busy until the cluster stopped
	findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | xargs -r -n 1 umount 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# svc_replica: a second meshsvc, replica B, on the same database as
# svc_start's (SVC_DB=pg), logging to $WORK/b.log; sets B_PID and URL_B (empty
# when it did not start); cleanup stops it
svc_replica() {
	"$SVC" --listen 127.0.0.1:0 --db "$PG_URL" --admin-token-file "$WORK/db.admin-token" >"$WORK/b.log" 2>&1 &
	B_PID=$!
	URL_B=
	for _ in $(seq 100); do
		URL_B=$(sed -n 's/.*listening url=\([^ ]*\).*/\1/p' "$WORK/b.log")
		[ -n "$URL_B" ] && break
		sleep 0.05
	done
}

# finish: the last line of every svc test (the service's log when one failed)
finish() {
	[ "$TAP_FAILS" -eq 0 ] || { echo "--- meshsvc log (tail)"; tail -n 20 "$WORK/svc.log"; }
	tap_exit
}

for b in "$SVC" "$CTL" "$LOAD"; do
	[ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
case $SVC_DB in
sqlite) ;;
pg)	# the postgres user reaches tablespaces under $WORK (svc_pg_db)
	chmod 711 "$WORK"
	pg_init || { not_ok "a private PostgreSQL cluster started"; exit 1; } ;;
*) not_ok "SVC_DB is sqlite or pg (not $SVC_DB)"; exit 1 ;;
esac

# svc_pg_db PATH: SVC_DB_NOW is the URL of the PostgreSQL database standing
# for the SQLite file PATH ($WORK/db: the cluster's first), made on first use
svc_pg_db() {
	local i
	SVC_DB_NOW=$PG_URL
	[ "$1" = "$WORK/db" ] && return 0
	for i in "${!SVC_PG_DBS[@]}"; do
		[ "${SVC_PG_DBS[$i]}" = "$1" ] && { SVC_DB_NOW=$(pg_url "natmesh$i"); return 0; }
	done
	i=${#SVC_PG_DBS[@]}
	SVC_PG_DBS+=("$1")
	# its tables live beside PATH (a tablespace), so a test that fills PATH's
	# file system fills the database's too
	mkdir -p "$(dirname "$1")/pg-tablespace" && chown postgres: "$(dirname "$1")/pg-tablespace" &&
		pg_psql "CREATE TABLESPACE natmesh$i LOCATION '$(dirname "$1")/pg-tablespace'" &&
		pg_as "$PG_BIN/createdb" -h "$PG_DIR/sock" -p "$PG_PORT" -D "natmesh$i" "natmesh$i" &&
		SVC_DB_NOW=$(pg_url "natmesh$i")
}

# svc_args [meshsvc options]: SVC_ARGS, the options with the backend's
# database (default $WORK/db; under pg, a URL, with the admin token beside PATH)
svc_args() {
	local db="$WORK/db" token=
	SVC_ARGS=()
	while [ $# -gt 0 ]; do
		case $1 in
		--db) db=$2; shift 2 ;;
		--admin-token-file) token=$2; shift 2 ;;
		*) SVC_ARGS+=("$1"); shift ;;
		esac
	done
	SVC_DB_NOW=$db
	[ "$SVC_DB" = pg ] && svc_pg_db "$db"
	SVC_ARGS=(--db "$SVC_DB_NOW" --admin-token-file "${token:-$db.admin-token}" "${SVC_ARGS[@]}")
}

# svc_start [meshsvc options]: starts meshsvc on $WORK/db and sets URL
svc_start() {
	local before scheme i
	touch "$WORK/svc.log"
	before=$(wc -l <"$WORK/svc.log")
	svc_args "$@"
	"$SVC" --listen 127.0.0.1:0 "${SVC_ARGS[@]}" >>"$WORK/svc.log" 2>&1 &
	SVC_PID=$!
	for i in $(seq 100); do
		URL=$(tail -n +$((before + 1)) "$WORK/svc.log" | sed -n 's/.*listening url=\([^ ]*\).*/\1/p' | head -n 1)
		[ -n "$URL" ] && break
		kill -0 "$SVC_PID" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$URL" ] || { not_ok "meshsvc started"; tail -n 5 "$WORK/svc.log"; exit 1; }
	ADMIN=$(cat "$WORK/db.admin-token")
}

svc_stop() { # [signal]
	kill -"${1:-TERM}" "$SVC_PID" 2>/dev/null
	wait "$SVC_PID" 2>/dev/null
	SVC_PID=
}

# api METHOD PATH TOKEN [BODY]: sets STATUS and OUT
api() {
	local args=(-s -o "$WORK/out" -w '%{http_code}' -X "$1" --max-time 20 "${CURL_TLS[@]}")
	[ -n "$3" ] && args+=(-H "Authorization: Bearer $3")
	[ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
	STATUS=$(curl "${args[@]}" "$URL$2")
	OUT=$(cat "$WORK/out")
}

# jfield KEY [TEXT]: the first "KEY":"string" or "KEY":number in TEXT (default $OUT)
jfield() {
	printf '%s' "${2-$OUT}" | grep -o "\"$1\": *\(\"[^\"]*\"\|[0-9-]*\)" | head -n 1 |
		sed 's/^"[^"]*": *//; s/^"//; s/"$//'
}
# jf KEY: the same, of stdin
jf() { jfield "$1" "$(cat)"; }

# meshctl's --insecure-http when $URL is http:// (meshsvc on loopback without TLS)
insecure() { [[ $URL == http://* ]] && echo --insecure-http; return 0; }
# meshctl as admin
ctl() { "$CTL" --service "$URL" $(insecure) --token-file "$WORK/db.admin-token" "$@"; }

# new_key NAME: a WireGuard key pair in $WORK/NAME.key, its public key printed
new_key() {
	wg genkey 2>/dev/null >"$WORK/$1.key"
	wg pubkey <"$WORK/$1.key"
}

# register NAME REGKEY [EXTRA_JSON]: registers NAME's key; sets STATUS, OUT and
# the device's id, tunnel IP and opened token in ID_NAME, IP_NAME, TOK_NAME
register() {
	local pub
	[ -f "$WORK/$1.key" ] || new_key "$1" >/dev/null
	pub=$(wg pubkey <"$WORK/$1.key")
	api POST /api/devices "$2" "{\"public_key\":\"$pub\",\"hostname\":\"$1\"${3:+,$3}}"
	printf -v "ID_$1" '%s' ""
	printf -v "IP_$1" '%s' ""
	printf -v "TOK_$1" '%s' ""
	if [ "$STATUS" = 201 ] || [ "$STATUS" = 200 ]; then
		printf -v "ID_$1" '%s' "$(jfield id)"
		printf -v "IP_$1" '%s' "$(jfield tunnel_ip)"
		printf -v "TOK_$1" '%s' "$("$LOAD" open-token "$WORK/$1.key" "$(jfield device_token)")"
	fi
}

# db_digest: everything the database holds, hashed
db_digest() {
	if [ "$SVC_DB" = pg ]; then
		# without comments and pg_dump's per-run \restrict key
		pg_as "$PG_BIN/pg_dump" -a -d "$SVC_DB_NOW" | grep -v '^--\|^\\' | sort | sha256sum | cut -d' ' -f1
	else
		sqlite3 "$WORK/db" .dump | sha256sum | cut -d' ' -f1
	fi
}

now_ms() { date +%s%3N; }
