#!/usr/bin/env bash
# meshctl status (the table) shows the security counters that meshd's status
# carries (issue 15): initiations_limited, stun_limited, relay_outside_vpc,
# lost_session_handshakes and lost_refused, against a stand-in control socket
# that answers one canned status; and a meshd too old to send them shows none.
# TAP lines; no root needed; exits 1 on a failure. BUILD names the build
# directory (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
failed=0
T=$(mktemp -d /tmp/meshctl_status.XXXXXX)
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failed=1; }

# serve ANSWER-FILE on $T/ctl.sock, one line per connection
serve() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
	rm -f "$T/ctl.sock"
	socat -T 5 UNIX-LISTEN:"$T/ctl.sock",fork SYSTEM:"head -n 1 >/dev/null; cat $1" &
	SRV=$!
	for _ in $(seq 50); do [ -S "$T/ctl.sock" ] && return 0; sleep 0.02; done
	return 1
}

cat >"$T/new.json" <<'JSON'
{"device":"mesh0","public_key":"k","tunnel_ip":"100.64.0.2","vpc_cidr":"100.64.0.0/10","listen_port":51820,"symmetric_nat":false,"relay":true,"endpoints":[],"service":{"url":"https://s","reachable":true,"registered":true},"peers":3,"relay_forwarded":0,"lost_session_handshakes":4,"lost_refused":5,"initiations_limited":11,"relay_outside_vpc":13,"stun_limited":17}
JSON
cat >"$T/old.json" <<'JSON'
{"device":"mesh0","public_key":"k","listen_port":51820,"symmetric_nat":false,"relay":false,"endpoints":[],"service":{"url":"https://s","reachable":true,"registered":true},"peers":3}
JSON

serve "$T/new.json" || { notok "the stand-in control socket"; exit 1; }
"$BUILD/meshctl" --control "$T/ctl.sock" status >"$T/out" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "meshctl status answers (exit 0)" || notok "meshctl status answers (exit $rc)"
for want in "initiations limited: 11" "STUN limited: 17" "outside VPC: 13" \
	"lost-session handshakes: 4" "refused: 5"; do
	if grep -qF -- "$want" "$T/out"; then
		ok "meshctl status shows \"$want\""
	else
		notok "meshctl status shows \"$want\""; sed 's/^/# /' "$T/out"
	fi
done

serve "$T/old.json" || { notok "the stand-in control socket"; exit 1; }
"$BUILD/meshctl" --control "$T/ctl.sock" status >"$T/out" 2>&1
if [ $? -eq 0 ] && ! grep -q "limited" "$T/out"; then
	ok "a status without the counters shows no counter line"
else
	notok "a status without the counters shows no counter line"; sed 's/^/# /' "$T/out"
fi

exit $failed
