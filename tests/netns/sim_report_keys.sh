#!/usr/bin/env bash
# meshsim hands traversal-report the agents' public keys (read from each
# meshd's --state-dir), so every handshake message's mac1 names its receiver.
# The demo lab (scenarios/demo.json: three sites behind full-cone,
# port-restricted and symmetric NATs, a relay):
#
#   n1 -- gw1 (full-cone) --+
#   n2 -- gw2 (port-restr.) +-- internet: svc, stun, relay
#   n3 -- gw3 (symmetric) --+
#
# Checked: every handshake initiation in the report names by mac1 the node it
# went to, the keys are the ones `wg pubkey` derives from the agents' private
# keys, and each agent's label came with its key.
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
tmp=$(mktemp -d /tmp/sim_keys.XXXXXX)
cleanup() { rm -rf "$tmp"; }	# meshsim run tears its lab down on every exit
trap cleanup EXIT INT TERM

for b in "$M" "$BUILD/traversal-report" "$BUILD/meshd"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
command -v wg >/dev/null || { not_ok "wg is installed"; exit 1; }

"$M" run scenarios/demo.json --out "$tmp/run" >"$tmp/run.log" 2>&1; rc=$?
check "the demo lab runs ($rc)" eval '[ $rc -eq 0 ]'
[ -f "$tmp/run/report.json" ] || { not_ok "report.json written"; exit 1; }

# node -> public key, derived by wg from each agent's private key
for d in "$tmp"/run/nodes/*/state; do
  n=$(basename "$(dirname "$d")")
  [ -f "$d/private.key" ] && echo "$n $(wg pubkey <"$d/private.key")"
done >"$tmp/keys.txt"
check "every agent has a private key ($(wc -l <"$tmp/keys.txt"))" eval '[ "$(wc -l <"$tmp/keys.txt")" -eq 4 ]'

python3 - "$tmp/run/report.json" "$tmp/keys.txt" >"$tmp/check.txt" 2>&1 <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["traversal"]
label = {n["address"]: n.get("label") for n in t["nodes"]}
inits = [e for p in t["pairs"] for e in p.get("events", []) if e.get("type") == "handshake-initiation"]
named = [e for e in inits if label.get(e["to"])]
bad = [e for e in named if e["mac1_key"] != label[e["to"]]]
print("initiations", len(inits), "to a known node", len(named), "mac1 naming another", len(bad))
for e in bad:
    print("bad", e)
sys.exit(0 if inits and len(named) == len(inits) and not bad else 1)
PY
rc=$?
check "every handshake initiation's mac1 names the node it went to ($(head -n 1 "$tmp/check.txt"))" eval '[ $rc -eq 0 ]'
sed 's/^/# /' "$tmp/check.txt" | tail -n +2
# the same captures with a wrong key for n2: its initiations lose the name
k2=$(awk '$1 == "n2" { print $2 }' "$tmp/keys.txt")
"$BUILD/traversal-report" --json --key "$(wg genkey | wg pubkey)=n2" "$tmp/run" >"$tmp/wrong.json" 2>/dev/null
check "with a wrong key for n2, no initiation is named n2 by mac1" eval \
  '! grep -q "\"mac1_key\": \"n2\"" "$tmp/wrong.json"'
"$BUILD/traversal-report" --json --key "$k2=n2" "$tmp/run" >"$tmp/right.json" 2>/dev/null
check "with n2's key from wg pubkey, initiations to n2 are named n2 by mac1" eval \
  'grep -q "\"mac1_key\": \"n2\"" "$tmp/right.json"'
tap_exit
