#!/usr/bin/env bash
# meshsim grid, the NAT pair grid, from three real pair runs (each its own
# lab, torn down by meshsim run):
#
#   n1 -- gw1 (model X) --+-- internet: svc, stun, relay
#   n2 -- gw2 (model Y) --+
#
#   pair-fc-rc   full-cone x restricted-cone       (direct)
#   pair-prc-prc port-restricted x port-restricted (direct)
#   pair-prc-sym port-restricted x symmetric       (relayed)
#
# Checked, each against the scenario file and the run's report.json (not
# hard-coded): the grid's axes hold the models the scenarios declare for
# gw1 and gw2; each run's cell, both ways round, carries the letter of the
# path traversal-report found (D/R/F) and the one the scenario expects, its
# class, and a link that resolves to the run's report.html; no script, no
# outside reference; chromium (headless, in an empty network namespace)
# loads it from file:// with no console message. A missing run folder is named on stderr with the file,
# listed on the page, and makes the exit status 1 while the rest is drawn.
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
RUNS=(pair-fc-rc pair-prc-prc pair-prc-sym)
NS=nmt-gr-$$
tmp=$(mktemp -d /tmp/sim_grid.XXXXXX)
cleanup() {	# meshsim run tears its lab down on every exit
  ip netns del "$NS" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ -x "$M" ] || { not_ok "$M is built"; tap_exit; }
for s in "${RUNS[@]}"; do
  PATH="$PWD/$BUILD:$PATH" "$M" run "scenarios/$s.json" --out "$tmp/runs/$s" >"$tmp/$s.log" 2>&1; rc=$?
  check "$s runs and its expectations pass ($rc)" eval '[ $rc -eq 0 ] && [ -f "$tmp/runs/$s/report.json" ]'
done

"$M" grid --out "$tmp/grid.html" "${RUNS[@]/#/$tmp/runs/}" >"$tmp/grid.out" 2>"$tmp/grid.err"; rc=$?
check "meshsim grid writes the page ($rc)" eval '[ $rc -eq 0 ] && [ -s "$tmp/grid.html" ] && [ ! -s "$tmp/grid.err" ]'

python3 - "$tmp" "${RUNS[@]}" >"$tmp/check.txt" 2>&1 <<'PY'
import html, json, os, re, sys
tmp, runs = sys.argv[1], sys.argv[2:]
page = open(os.path.join(tmp, "grid.html"), encoding="utf-8").read()
bad = []
first = re.search(r"<tr>(.*?)</tr>", page, re.S).group(1)
heads = [html.unescape(h) for h in re.findall(r"<th>([^<]*)</th>", first)][1:]	# the columns
letter = {"direct": "D", "upgraded": "D", "relayed": "R", "none": "F"}
cls = {"D": "direct", "R": "relayed", "F": "failed"}
for s in runs:
    sc = json.load(open("scenarios/%s.json" % s))
    nat = {n["name"]: n["nat"] for n in sc["nodes"] if "nat" in n}
    models = (nat["gw1"], nat["gw2"])
    want_path = sc["expectations"][0]["path"]
    rep = json.load(open(os.path.join(tmp, "runs", s, "report.json")))
    pair = [p for p in rep["traversal"]["pairs"] if p["peers"]][0]
    got = letter[pair["mode"]]
    if got != {"direct": "D", "relayed": "R"}[want_path]:
        bad.append("%s: traversal-report says %s, the scenario expects %s" % (s, pair["mode"], want_path))
    for m in models:
        if m not in heads:
            bad.append("%s: model %s not on the axes %s" % (s, m, heads))
    href = "runs/%s/report.html" % s
    cells = re.findall(r'<td class="([a-z]+)"><a href="%s"><span class="letter">(.)</span>' % re.escape(href), page)
    want_cells = 1 if models[0] == models[1] else 2
    if cells != [(cls[got], got)] * want_cells:
        bad.append("%s: cells %s, want %d x %s" % (s, cells, want_cells, (cls[got], got)))
    # the cell sits in the row of one model and the column of the other
    for row in re.findall(r"<tr><th>([^<]*)</th>(<td.*?)</tr>", page):
        tds = re.findall(r"<td[^>]*>.*?</td>", row[1])
        for i, td in enumerate(tds):
            if href in td and {html.unescape(row[0]), heads[i]} != set(models):
                bad.append("%s: a cell at %s x %s" % (s, row[0], heads[i]))
    if not os.path.isfile(os.path.join(tmp, href)):
        bad.append("link %s does not resolve" % href)
    print("%s: %s x %s -> %s (%s)" % (s, models[0], models[1], got,
          re.search(r'%s"><span class="letter">.</span>([^<]*)<br>by ([^<]*)' % re.escape(href), page).group(1, 2)))
if re.search(r'<script|(src|href)="(https?:)?//', page, re.I):
    bad.append("a script or an outside reference")
for b in bad:
    print("bad", b)
sys.exit(1 if bad else 0)
PY
rc=$?
check "axes, letters, classes and links as the scenarios and their report.json have them" eval '[ $rc -eq 0 ]'
sed 's/^/# /' "$tmp/check.txt"

if command -v chromium >/dev/null && ip netns add "$NS"; then
  timeout -k 5 90 ip netns exec "$NS" chromium --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
    --enable-logging=stderr --v=0 --dump-dom "file://$tmp/grid.html" >"$tmp/dom.html" 2>"$tmp/browser.err"; rc=$?
  n=$(grep -cE ':CONSOLE[:(]|Uncaught' "$tmp/browser.err")
  check "chromium loads grid.html from file:// in an empty namespace, no console message ($rc, $n)" eval \
    '[ $rc -eq 0 ] && [ "$n" -eq 0 ] && grep -q "<table class=\"grid\">" "$tmp/dom.html"'
else
  not_ok "chromium and an empty namespace $NS"
fi

"$M" grid --out "$tmp/grid2.html" "$tmp/runs/pair-fc-rc" "$tmp/runs/nothing-here" >/dev/null 2>"$tmp/grid2.err"; rc=$?
check "a missing run: exit 1, named with its file on stderr and on the page, the rest drawn ($rc)" eval \
  '[ $rc -eq 1 ] && grep -q "$tmp/runs/nothing-here/report.json" "$tmp/grid2.err" &&
   grep -q "nothing-here/report.json" "$tmp/grid2.html" && grep -q "runs/pair-fc-rc/report.html" "$tmp/grid2.html"'
tap_exit
