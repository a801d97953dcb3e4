# A private PostgreSQL 15 cluster for a test: initdb into a temporary directory
# owned by the unprivileged `postgres` user, its own Unix socket directory
# inside it and a free loopback port; stopped (immediate) and removed by
# pg_cleanup, which the sourcing test calls from its EXIT trap. Never the
# system cluster. Sourced, not run.
#
#   test (root) --Unix socket $PG_DIR/sock/.s.PGSQL.$PG_PORT--> postgres (user postgres)
#
# pg_init             initdb + start + a database "natmesh"; sets PG_DIR, PG_PORT, PG_URL
# pg_stop / pg_start  stop (-m immediate, like a crash) and start the cluster again
# pg_createdb NAME    another database; prints its URL
# pg_psql SQL         runs SQL in the test's database
# pg_cleanup          stops the cluster and removes its directory (every exit path)

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_PORT=
PG_URL=

# runs a PostgreSQL program as the postgres user
pg_as() { runuser -u postgres -- "$@"; }

# a loopback TCP port nothing listens on
pg_free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		ss -ltnH "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

pg_url() { echo "postgresql://postgres@/$1?host=$PG_DIR/sock&port=$PG_PORT"; }

pg_start() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
		-o "-k $PG_DIR/sock -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null 2>&1
}

pg_stop() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 60 stop >/dev/null
}

pg_psql() {
	pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/sock" -p "$PG_PORT" -d natmesh -At -c "$1"
}

pg_createdb() {
	pg_as "$PG_BIN/createdb" -h "$PG_DIR/sock" -p "$PG_PORT" "$1" && pg_url "$1"
}

pg_init() {
	[ -x "$PG_BIN/initdb" ] || { echo "pg.bash: $PG_BIN/initdb missing (tools/install-deps)" >&2; return 1; }
	id postgres >/dev/null 2>&1 || { echo "pg.bash: no postgres user (tools/install-deps)" >&2; return 1; }
	PG_DIR=$(mktemp -d "/tmp/nmt-pg-$$-XXXXXX") || return 1
	mkdir "$PG_DIR/sock"
	chown -R postgres: "$PG_DIR"
	pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale \
		>"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
	# a port found free may be taken before the server binds it: another one
	for try in 1 2 3 4 5; do
		PG_PORT=$(pg_free_port) || { echo "pg.bash: no free port" >&2; return 1; }
		pg_start && break
		[ "$try" = 5 ] && { tail -n 20 "$PG_DIR/log" >&2; return 1; }
	done
	pg_createdb natmesh >/dev/null || return 1
	PG_URL=$(pg_url natmesh)
}

pg_cleanup() {
	[ -n "$PG_DIR" ] || return 0
	[ -f "$PG_DIR/data/postmaster.pid" ] && pg_stop 2>/dev/null
	rm -rf "$PG_DIR"
	PG_DIR=
}
