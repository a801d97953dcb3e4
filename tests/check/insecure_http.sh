#!/usr/bin/env bash
# meshd and meshctl refuse an http:// service URL (registration keys and
# tokens would travel in clear) with exit status 2 and a line naming the URL
# and the fix, unless --insecure-http is given; then they warn and go on (here
# to the missing key or token file, exit 1). https:// goes on without a word.
# TAP lines; no root needed; exits 1 on a failure. BUILD names the build
# directory (default build).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

BUILD=${BUILD:-build}
failed=0
T=$(mktemp -d /tmp/insecure_http.XXXXXX)
trap 'rm -rf "$T"' EXIT

ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failed=1; }

# expect WHAT STATUS GREP-PATTERN|"" NOT-PATTERN|"" -- COMMAND...
expect() {
	local what=$1 want=$2 pat=$3 nopat=$4 rc
	shift 5
	"$@" >"$T/out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		notok "$what (exit $rc, want $want)"; sed 's/^/# /' "$T/out"; return
	fi
	if [ -n "$pat" ] && ! grep -qF -- "$pat" "$T/out"; then
		notok "$what (no \"$pat\")"; sed 's/^/# /' "$T/out"; return
	fi
	if [ -n "$nopat" ] && grep -qiF -- "$nopat" "$T/out"; then
		notok "$what (\"$nopat\" printed)"; sed 's/^/# /' "$T/out"; return
	fi
	ok "$what"
}

URL=http://127.0.0.1:9
MD=("$BUILD/meshd" --reg-key-file "$T/none" --ifname nmih0 --state-dir "$T/state" --control "$T/ctl.sock")
MC=("$BUILD/meshctl" --token-file "$T/none")

expect "meshd refuses $URL, naming it and the fix" 2 \
	"$URL is not encrypted" "" -- "${MD[@]}" --service "$URL"
expect "meshd names the fix" 2 "use https://, or --insecure-http to allow it" "" -- "${MD[@]}" --service "$URL"
expect "meshd refuses a URL without a scheme (sent as http)" 2 "127.0.0.1:9 is not encrypted" "" -- \
	"${MD[@]}" --service 127.0.0.1:9
expect "meshd refuses another scheme" 2 "bad --service: ftp://x" "" -- "${MD[@]}" --service ftp://x --insecure-http
expect "meshd takes $URL with --insecure-http, with a warning" 1 \
	"warn meshd: the service URL is not encrypted (--insecure-http)" "" -- "${MD[@]}" --service "$URL" --insecure-http
expect "meshd takes https:// without a warning" 1 "" "not encrypted" -- "${MD[@]}" --service https://127.0.0.1:9

expect "meshctl refuses $URL, naming it and the fix" 2 \
	"$URL is not encrypted: the admin token would travel in clear; use https://, or --insecure-http to allow it" "" -- \
	"${MC[@]}" --service "$URL" vpc list
expect "meshctl refuses it from MESHCTL_SERVICE too" 2 "$URL is not encrypted" "" -- \
	env MESHCTL_SERVICE="$URL" "${MC[@]}" vpc list
expect "meshctl takes $URL with --insecure-http, with one warning" 1 \
	"meshctl: warning: the service URL $URL is not encrypted (--insecure-http)" "" -- \
	"${MC[@]}" --service "$URL" --insecure-http vpc list
[ "$(grep -c warning "$T/out")" -eq 1 ] && ok "meshctl warns once" || notok "meshctl warns once"
expect "meshctl takes https:// without a warning" 1 "" "not encrypted" -- \
	"${MC[@]}" --service https://127.0.0.1:9 vpc list
expect "meshctl's agent commands do not look at the service URL" 1 "" "not encrypted" -- \
	"$BUILD/meshctl" --control "$T/ctl.sock" status

exit $failed
