#!/usr/bin/env bash
# `make install` and the systemd units in dist/systemd: installed with the
# paths they will run from (PREFIX, SYSCONFDIR), staged under DESTDIR without
# them leaking into the files, accepted by `systemd-analyze verify`, and
# asking only for options the binaries have, with meshd's own defaults for its
# state directory and control socket (so meshctl finds the agent). Nothing is
# installed outside a temporary directory.
set -u
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/nmt-inst-$$.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
cd "$(dirname "$0")/../.." || exit 1

UNITS=(meshd@.service meshsvc.service meshstun.service)
# install PREFIX [make args]: make install quietly, output kept for failures
# (a sanitizer build is named by BUILD; pass its flags too, should make rebuild)
san=()
case $BUILD in *sanitize*) san=(SANITIZE=address,undefined) ;; esac
install_to() { make -s --no-print-directory install BUILD="$BUILD" "${san[@]}" "$@" >"$T/make.log" 2>&1; }

if install_to PREFIX="$T/usr" SYSCONFDIR="$T/etc"; then ok "make install PREFIX=$T/usr"; else not_ok "make install"; cat "$T/make.log"; exit 1; fi
U=$T/usr/lib/systemd/system
for b in meshd meshctl meshsvc meshstun meshwg meshsim natcheck traversal-report; do
	[ -x "$T/usr/bin/$b" ] || not_ok "$b installed"
done
check "the binaries are in PREFIX/bin, the load generators are not" \
	eval '[ -x "$T/usr/bin/meshd" ] && [ ! -e "$T/usr/bin/stunload" ] && [ ! -e "$T/usr/bin/svcload" ]'
check "the three units are in PREFIX/lib/systemd/system" eval 'for u in "${UNITS[@]}"; do [ -f "$U/$u" ] || exit 1; done'
check "no placeholder is left in them" eval '! grep -l "@[A-Z]*@" "$U"/*.service'
check "they run the installed binaries and read SYSCONFDIR" \
	eval 'grep -q "^ExecStart=$T/usr/bin/meshd " "$U/meshd@.service" &&
	      grep -q "^EnvironmentFile=$T/etc/natmesh/meshd-%i.conf$" "$U/meshd@.service" &&
	      grep -q "^ExecStart=$T/usr/bin/meshsvc " "$U/meshsvc.service" &&
	      grep -q "^ExecStart=$T/usr/bin/meshstun " "$U/meshstun.service"'

# every --option an ExecStart line passes is one the binary documents
for u in "${UNITS[@]}"; do
	line=$(sed -n 's/^ExecStart=//p' "$U/$u")
	bin=${line%% *}
	missing=
	for o in $(grep -o -- '--[a-z-]*' <<<"$line"); do
		"$bin" --help 2>&1 | grep -q -- "$o" || missing="$missing $o"
	done
	check "$u: $(basename "$bin") knows every option it is given${missing:+ (not:$missing)}" test -z "$missing"
done
help=$("$T/usr/bin/meshd" --help 2>&1)
check "meshd@'s state dir and control socket are meshd's defaults (meshctl --ifname finds it)" \
	eval 'grep -q "default /var/lib/meshd/IFNAME" <<<"$help" && grep -q "default /run/meshd/IFNAME.sock" <<<"$help" &&
	      grep -q "StateDirectory=meshd/%i" "$U/meshd@.service" && grep -q "RuntimeDirectory=meshd$" "$U/meshd@.service"'

if command -v systemd-analyze >/dev/null; then
	cp "$U/meshd@.service" "$T/meshd@mesh0.service"
	out=$(cd "$T" && systemd-analyze verify "$T/meshd@mesh0.service" "$U/meshsvc.service" "$U/meshstun.service" 2>&1); rc=$?
	check "systemd-analyze verify accepts them, without a warning${out:+: $out}" eval '[ $rc = 0 ] && [ -z "$out" ]'
	sed 's/^ExecStart=/ExecStrat=/' "$U/meshsvc.service" >"$T/broken.service"
	out=$(systemd-analyze verify "$T/broken.service" 2>&1); rc=$?
	check "(and refuses a unit without ExecStart: rc=$rc)" test "$rc" != 0
else
	skip "systemd-analyze is not installed"
fi

# a staged install (packaging): files under DESTDIR, paths without it
if install_to DESTDIR="$T/stage" PREFIX=/usr; then ok "make install DESTDIR=$T/stage PREFIX=/usr"; else not_ok "staged make install"; cat "$T/make.log"; fi
check "staged: /usr/bin/meshd and its unit under DESTDIR, README as documentation" \
	eval '[ -x "$T/stage/usr/bin/meshd" ] && [ -f "$T/stage/usr/lib/systemd/system/meshd@.service" ] &&
	      [ -f "$T/stage/usr/share/doc/natmesh/README.md" ]'
check "staged: the unit runs /usr/bin/meshd and reads /etc, DESTDIR is nowhere in it" \
	eval 'grep -q "^ExecStart=/usr/bin/meshd " "$T/stage/usr/lib/systemd/system/meshd@.service" &&
	      grep -q "^EnvironmentFile=/etc/natmesh/meshd-%i.conf$" "$T/stage/usr/lib/systemd/system/meshd@.service" &&
	      ! grep -rq "$T" "$T/stage/usr/lib/systemd/system"'
tap_exit
