#!/usr/bin/env bash
# meshsim's page of a run, RUN/report.html, from the demo lab
# (scenarios/demo.json: three sites behind full-cone, port-restricted and
# symmetric NATs, a relay):
#
#   n1 -- gw1 (full-cone) --+
#   n2 -- gw2 (port-restr.) +-- internet: svc, stun, relay
#   n3 -- gw3 (symmetric) --+
#
# Checked: one sequence diagram per pair of agents (three), each pair's
# winning path as traversal-report's JSON has it, as many relayed-data
# arrows as relayed-data events, each unanswered initiation's drop point one
# of the captures that saw it, no script and no reference outside the run
# folder, every relative link resolves; `meshsim report` rebuilds the same
# page, and from a copy with a truncated capture and no traversal in
# report.json (then from the captures alone) makes a page that says so; a
# run with a failed expectation lists it first, with its evidence.
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
tmp=$(mktemp -d /tmp/sim_html.XXXXXX)
cleanup() { rm -rf "$tmp"; }	# meshsim run tears its lab down on every exit
trap cleanup EXIT INT TERM

for b in "$M" "$BUILD/traversal-report" "$BUILD/meshd"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done

"$M" run scenarios/demo.json --out "$tmp/run" >"$tmp/run.log" 2>&1; rc=$?
check "the demo lab runs ($rc)" eval '[ $rc -eq 0 ]'
[ -f "$tmp/run/report.html" ] || { not_ok "report.html written"; exit 1; }
ok "report.html written next to report.json"

n=$(grep -c '<svg class="seq"' "$tmp/run/report.html")
check "one sequence diagram per pair of agents ($n, want 3)" eval '[ "$n" -eq 3 ]'

python3 - "$tmp/run" >"$tmp/check.txt" 2>&1 <<'PY'
import json, os, re, sys
run = sys.argv[1]
page = open(os.path.join(run, "report.html"), encoding="utf-8").read()
t = json.load(open(os.path.join(run, "report.json")))["traversal"]
bad = []
pairs = [p for p in t["pairs"] if p["peers"]]
svgs = dict(re.findall(r'<svg class="seq" role="img" data-pair="([^"]+)".*?</svg>', page, re.S) and
            [(m.group(1), m.group(0)) for m in re.finditer(r'<svg class="seq" role="img" data-pair="([^"]+)".*?</svg>', page, re.S)])
for p in pairs:
    name = p["a_label"] + "-" + p["b_label"]
    svg = svgs.get(name)
    if svg is None:
        bad.append("no diagram for " + name); continue
    won = svg.count('handshake-initiation won"')
    want = 1 if p["mode"] in ("direct", "upgraded") else 0
    if won != want:
        bad.append("%s: %d winning initiations, mode %s" % (name, won, p["mode"]))
    relayed = sum(1 for e in p["events"] if e["type"] == "relayed-data")
    if svg.count('class="arrow relayed-data"') != relayed:
        bad.append("%s: relayed-data arrows %d, events %d" % (name, svg.count('class="arrow relayed-data"'), relayed))
    # an unanswered initiation ends at the farthest capture that saw it
    for e in p["events"]:
        if e["type"] == "handshake-initiation" and not e["answered"] and e["seen_in"]:
            if not any(("last seen in " + c) in svg for c in e["seen_in"]):
                bad.append("%s: no drop point among %s" % (name, e["seen_in"]))
    print(name, p["mode"], "won", won, "relayed", relayed)
if re.search(r'<script|(src|href)="(https?:)?//', page, re.I):
    bad.append("a script or an outside reference")
for h in set(re.findall(r'href="([^"#][^"]*)"', page)):
    if h.startswith("/") or ".." in h or not os.path.exists(os.path.join(run, h)):
        bad.append("link does not resolve in the run folder: " + h)
for b in bad:
    print("bad", b)
sys.exit(1 if bad else 0)
PY
rc=$?
check "each pair's winning path and relay arrows match traversal-report's JSON; every link resolves, nothing outside ($(head -n 3 "$tmp/check.txt" | paste -sd ';'))" eval '[ $rc -eq 0 ]'
sed 's/^/# /' "$tmp/check.txt" | grep '^# bad'

cp "$tmp/run/report.html" "$tmp/first.html"
rm "$tmp/run/report.html"
"$M" report "$tmp/run" >/dev/null 2>"$tmp/report.err"; rc=$?
check "meshsim report rebuilds the same page ($rc)" eval '[ $rc -eq 0 ] && cmp -s "$tmp/first.html" "$tmp/run/report.html"'

# a copy without the traversal in report.json and with a capture cut short
cp -r "$tmp/run" "$tmp/cut"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.pop("traversal"); json.dump(r, open(sys.argv[1], "w"))' \
  "$tmp/cut/report.json"
truncate -s -7 "$tmp/cut/pcap/n1-eth0.pcap"
"$M" report "$tmp/cut" >/dev/null 2>"$tmp/cut.err"; rc=$?
check "meshsim report runs traversal-report on a folder with a damaged capture ($rc)" eval '[ $rc -eq 0 ]'
check "the page states the damaged capture" grep -q 'damaged: read stopped' "$tmp/cut/report.html"
n=$(grep -c '<svg class="seq"' "$tmp/cut/report.html")
check "and still draws the three pairs ($n)" eval '[ "$n" -eq 3 ]'

rm "$tmp/cut/report.json"
"$M" report "$tmp/cut" >/dev/null 2>"$tmp/cut2.err"; rc=$?
check "without report.json, a page from the captures alone, saying so ($rc)" eval \
  '[ $rc -eq 0 ] && grep -q "no report.json" "$tmp/cut/report.html" && grep -q "<svg class=\"seq\"" "$tmp/cut/report.html"'
# a run whose expectation fails: n2-n3 cannot be direct (symmetric NAT
# against a port-restricted cone); the page lists it first, with evidence
python3 -c 'import json,sys; d=json.load(open("scenarios/demo.json")); d["name"]="demo-fail"
d["expectations"]=[d["expectations"][0], {"ping": ["n2", "n3"], "path": "direct", "within_ms": 2000}]
json.dump(d, open(sys.argv[1], "w"))' "$tmp/fail.json"
"$M" run "$tmp/fail.json" --out "$tmp/fail" >"$tmp/fail.log" 2>&1; rc=$?
check "a run with a failed expectation exits 1 ($rc) and still writes its page" eval \
  '[ $rc -eq 1 ] && [ -f "$tmp/fail/report.html" ]'
first=$(grep -m1 '^<tr class="\(fail\|pass\|skip\)">' "$tmp/fail/report.html")
check "the failed expectation (#2) is the first row, linked to the pair's diagram and the logs" eval \
  'grep -q "<tr class=\"fail\"><td>2</td>" <<<"$first" && grep -q "href=\"#pair-n2-n3\"" <<<"$first" &&
   grep -q "href=\"logs/n3-meshd.log\"" <<<"$first"'
tap_exit
