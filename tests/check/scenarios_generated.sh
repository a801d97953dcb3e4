#!/usr/bin/env bash
# scenarios/generate.py still writes, byte for byte, the scenario files that
# are committed beside it: it is run into a temporary folder and every file
# it writes is compared with scenarios/NAME.json. The other scenarios there
# are written by hand. TAP lines for tools/run-tests; no root needed.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/netns/tap.bash

T=$(mktemp -d /tmp/nmt-check-scen-$$.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

if ! python3 scenarios/generate.py "$T" >"$T/generate.log" 2>&1; then
	not_ok "scenarios/generate.py runs"
	sed 's/^/# /' "$T/generate.log"
	tap_exit
fi
shopt -s nullglob
made=("$T"/*.json)
check "scenarios/generate.py writes scenarios (${#made[@]})" test "${#made[@]}" -gt 0
for f in "${made[@]}"; do
	name=$(basename "$f")
	if cmp -s "$f" "scenarios/$name"; then
		ok "scenarios/$name is what generate.py writes"
	else
		not_ok "scenarios/$name is what generate.py writes"
		diff -u "scenarios/$name" "$f" 2>&1 | head -n 20 | sed 's/^/# /'
	fi
done
tap_exit
