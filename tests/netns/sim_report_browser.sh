#!/usr/bin/env bash
# The demo's page, RUN/report.html, in a real browser (Debian's chromium,
# headless) started in a network namespace with nothing in it: no address,
# no route, lo down, so any request outside the file would fail.
#
#   meshsim run scenarios/demo.json --out RUN     (its own lab, torn down)
#   [ P-$$: empty netns ]  chromium --headless file:///RUN/report.html
#                            --dump-dom        -> DOM checked against report.json
#                            --enable-logging  -> no console message
#                            --screenshot      -> RUN/report.png, not blank
#                            --print-to-pdf    -> RUN/report.pdf, pages
#                          firefox-esr --headless --screenshot
#                                            -> RUN/report-firefox.png, not
#                                               blank, no script error
#
# Checked: one sequence diagram per pair of agents (the agents are the
# meshd processes of report.json that are not relays); per pair, the number
# of arrows of each kind (stun-request, handshake-initiation dropped/won,
# relayed-data, ...) equals what traversal-report's JSON (report.json's
# "traversal") has; the winning path per pair as in that JSON; no console
# message at all (the page has no script; a CSP violation or a script error
# would log one); the screenshot's grey-level variance above a threshold.
# Both negative checks are shown to fail: a copy of the page with a script
# error must log one, a blank page must give a blank screenshot.
# KEEP=1 keeps the run folder with its report.png.
# SCREENSHOT_OUT=FILE also writes a 1280x1400 screenshot there (docs/report.png).
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
HERE=$(cd "$(dirname "$0")" && pwd)
NS=nmt-br-$$
MIN_VARIANCE=100	# a blank page is 0; the demo's page is in the thousands
tmp=$(mktemp -d /tmp/sim_browser.XXXXXX)
cleanup() {
  ip netns del "$NS" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "# kept: $tmp/run (report.html, report.png)"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for b in "$M" "$BUILD/meshd"; do
  [ -x "$b" ] || { not_ok "$b is built"; tap_exit; }
done
command -v chromium >/dev/null || { not_ok "chromium is installed (tools/install-deps)"; tap_exit; }

# browser ARGS... URL: chromium in the empty namespace, killed after 90 s,
# with a throwaway profile; stderr (its log) is kept in $tmp/browser.err
browser() {
  timeout -k 5 90 ip netns exec "$NS" chromium --headless --no-sandbox --disable-gpu \
    --user-data-dir="$tmp/profile" --no-first-run --hide-scrollbars \
    --enable-logging=stderr --v=0 "$@" 2>"$tmp/browser.err"
}
# console messages in the log of the last browser run (chromium logs each
# as "INFO:CONSOLE:LINE] "text", source: URL (LINE)")
console_lines() { grep -E ':CONSOLE[:(]|Uncaught' "$tmp/browser.err"; }

PATH="$PWD/$BUILD:$PATH" "$M" run scenarios/demo.json --out "$tmp/run" >"$tmp/run.log" 2>&1; rc=$?
run=$tmp/run
check "the demo runs ($rc)" eval '[ $rc -eq 0 ]'
[ -f "$run/report.html" ] || { not_ok "report.html written"; tap_exit; }

ip netns add "$NS" || { not_ok "ip netns add $NS"; tap_exit; }
routes=$(ip -n "$NS" route show; ip -n "$NS" -6 route show)
addrs=$(ip -n "$NS" -o addr show | wc -l)
check "the namespace is empty: no route ($(wc -w <<<"$routes") words), no address ($addrs)" eval \
  '[ -z "$routes" ] && [ "$addrs" -eq 0 ]'

browser --dump-dom "file://$run/report.html" >"$tmp/dom.html"; rc=$?
check "chromium loads the page from file:// ($rc, $(wc -c <"$tmp/dom.html") bytes of DOM)" eval \
  '[ $rc -eq 0 ] && grep -q "<h1>Scenario demo" "$tmp/dom.html"'
n=$(console_lines | wc -l)
check "no console message ($n)" eval '[ "$n" -eq 0 ]'
console_lines | head -n 5 | sed 's/^/# /'

python3 - "$run/report.json" "$tmp/dom.html" >"$tmp/dom.txt" 2>&1 <<'PY'
import collections, html, itertools, json, re, sys
report = json.load(open(sys.argv[1]))
dom = open(sys.argv[2], encoding="utf-8").read()
tr = report["traversal"]
bad = []
agents = sorted(p["node"] for p in report["processes"] if p["name"] == "meshd" and not p.get("relay"))
want_pairs = {frozenset(x) for x in itertools.combinations(agents, 2)}
blocks = re.findall(r'<h3 id="pair-([^"]+)">.*?</h3>\s*<p class="path">(.*?)</p>\s*'
                    r'<svg class="seq"[^>]*data-pair="([^"]+)"(.*?)</svg>', dom, re.S)
shown = {b[2]: b for b in blocks}
if len(dom.split('<svg class="seq"')) - 1 != len(want_pairs):
    bad.append("%d diagrams for %d pairs of agents" % (len(dom.split('<svg class="seq"')) - 1, len(want_pairs)))

def kinds(p):
    """the arrows the JSON implies: one per event; an unanswered initiation
    or STUN request is dropped; the first answered initiation from the
    winning initiator to the winning candidate won, unless the pair is relayed"""
    c, won = collections.Counter(), False
    for e in p["events"]:
        k = e["type"]
        if k in ("handshake-initiation", "stun-request") and not e.get("answered"):
            k += " dropped"
        elif (k == "handshake-initiation" and not won and p["mode"] != "relayed"
              and e["candidate"] == p["winning_candidate"] and e["from"] == p["winning_initiator"]):
            k += " won"
            won = True
        c[k] += 1
    return c

for p in tr["pairs"]:
    if not p["peers"]:
        continue
    name = p["a_label"] + "-" + p["b_label"]
    if frozenset((p["a_label"], p["b_label"])) not in want_pairs:
        bad.append("traversal pair %s is no pair of agents" % name)
    want_pairs.discard(frozenset((p["a_label"], p["b_label"])))
    if name not in shown:
        bad.append("no diagram for " + name)
        continue
    got = collections.Counter(re.findall(r'<g class="arrow ([^"]+)"', shown[name][3]))
    if got != kinds(p):
        bad.append("%s: arrows %s, the JSON has %s" % (name, dict(got), dict(kinds(p))))
    path = html.unescape(re.sub(r"<[^>]+>", "", shown[name][1]))
    if p["mode"] in ("direct", "upgraded"):
        ok = "Path: direct" in path and p["winning_candidate"] in path
    elif p["mode"] == "relayed":
        ok = "Path: relayed through " + p["relay"]["address"] in path
    else:
        ok = "Path: none" in path
    if not ok:
        bad.append("%s: mode %s, page says %r" % (name, p["mode"], path))
    print("%s %s: %d arrows (%s)" % (name, p["mode"], sum(got.values()),
          " ".join("%s=%d" % (k.replace("handshake-", "hs-"), v) for k, v in sorted(got.items()))))
for x in want_pairs:
    bad.append("no traversal pair for agents %s" % "-".join(sorted(x)))
for b in bad:
    print("bad", b)
sys.exit(1 if bad else 0)
PY
rc=$?
check "one diagram per pair of agents, arrows of each kind and the winning path as in traversal-report's JSON" eval \
  '[ $rc -eq 0 ]'
sed 's/^/# /' "$tmp/dom.txt"

browser --screenshot="$run/report.png" --window-size=1280,2000 "file://$run/report.html" >/dev/null; rc=$?
stats=$(python3 "$HERE/png_stats.py" "$run/report.png" 2>&1) || stats="unreadable: $stats"
read -r w h var <<<"$stats"
check "the screenshot RUN/report.png is 1280x2000 and not blank ($stats, variance > $MIN_VARIANCE)" eval \
  '[ $rc -eq 0 ] && [ "$w" = 1280 ] && [ "$h" = 2000 ] && awk -v v="$var" -v m=$MIN_VARIANCE "BEGIN { exit !(v > m) }"'
n=$(console_lines | wc -l)
check "no console message while rendering it ($n)" eval '[ "$n" -eq 0 ]'

browser --print-to-pdf="$run/report.pdf" --no-pdf-header-footer "file://$run/report.html" >/dev/null; rc=$?
pages=$(grep -ao '/Count [0-9]*' "$run/report.pdf" 2>/dev/null | awk '{ print $2 }' | sort -n | tail -n 1)
check "it prints: RUN/report.pdf, ${pages:-no} pages ($rc)" eval \
  '[ $rc -eq 0 ] && [ "$(head -c 5 "$run/report.pdf")" = "%PDF-" ] && [ "${pages:-0}" -ge 2 ]'

# the two negative checks must be able to fail
sed -e 's/<meta http-equiv="Content-Security-Policy"[^>]*>//' \
    -e 's|</body>|<script>undefined_function_of_the_test()</script></body>|' \
    "$run/report.html" >"$run/report-jserror.html"
browser --dump-dom "file://$run/report-jserror.html" >/dev/null
n=$(console_lines | wc -l)
check "a copy of the page with a script error logs it ($n console lines)" eval \
  '[ "$n" -gt 0 ] && console_lines | grep -q undefined_function_of_the_test'
printf '<!DOCTYPE html><html><body></body></html>\n' >"$tmp/blank.html"
browser --screenshot="$tmp/blank.png" --window-size=1280,2000 "file://$tmp/blank.html" >/dev/null
stats=$(python3 "$HERE/png_stats.py" "$tmp/blank.png" 2>&1)
read -r w h var <<<"$stats"
check "a blank page's screenshot is caught as blank ($stats)" eval \
  'awk -v v="$var" -v m=$MIN_VARIANCE "BEGIN { exit !(v <= m) }"'

# Firefox (Debian's firefox-esr), headless, in the same empty namespace: the
# page renders (its screenshot is not blank) and logs no script error from
# the file (it prints them as "JavaScript error: file://..."; its own
# services' failures to reach the network are resource:// and not counted)
firefox() {
  rm -rf "$tmp/ffprof" && mkdir -p "$tmp/ffprof" &&
    printf 'user_pref("%s", true);\n' devtools.console.stdout.content browser.dom.window.dump.enabled \
      >"$tmp/ffprof/user.js" &&
    HOME=$tmp timeout -k 5 90 ip netns exec "$NS" firefox-esr --headless --no-remote \
      --profile "$tmp/ffprof" --window-size=1280,2000 --screenshot "$1" "$2" >"$tmp/firefox.log" 2>&1
}
page_errors() { grep -cE '^JavaScript (error|warning): file://' "$tmp/firefox.log"; }
if command -v firefox-esr >/dev/null; then
  firefox "$run/report-firefox.png" "file://$run/report.html"; rc=$?
  stats=$(python3 "$HERE/png_stats.py" "$run/report-firefox.png" 2>&1) || stats="unreadable: $stats"
  read -r w h var <<<"$stats"
  n=$(page_errors)
  check "firefox-esr renders it too: RUN/report-firefox.png not blank ($stats), $n script errors" eval \
    '[ $rc -eq 0 ] && awk -v v="$var" -v m=$MIN_VARIANCE "BEGIN { exit !(v > m) }" && [ "$n" -eq 0 ]'
  firefox "$tmp/ff-jserror.png" "file://$run/report-jserror.html"
  n=$(page_errors)
  check "firefox-esr reports the copy's script error ($n)" eval \
    '[ "$n" -gt 0 ] && grep -q undefined_function_of_the_test "$tmp/firefox.log"'
else
  skip "firefox-esr is not installed (tools/install-deps installs it)"
fi

if [ -n "${SCREENSHOT_OUT:-}" ]; then
  browser --screenshot="$tmp/small.png" --window-size=1280,1400 "file://$run/report.html" >/dev/null &&
    cp "$tmp/small.png" "$SCREENSHOT_OUT" && echo "# screenshot: $SCREENSHOT_OUT, $(wc -c <"$SCREENSHOT_OUT") bytes"
fi
tap_exit
