#!/usr/bin/env bash
# Security-group apply time (issue 16: < 50 ms per change): a group of
# RULES inbound rules with RANGES address ranges each (IPv4 ranges A-B,
# IPv4 and IPv6 CIDRs; tcp port ranges, udp, icmp, any), rendered by meshd's
# renderer (agent/meshd/policy_nft.c) and committed through libnftnl over
# libmnl in one batch that replaces the table, as meshd does on each change;
# beside it, the same ruleset as `nft -f` text (the renderer's text form,
# replace form: one nft transaction) applied by nft. Median of RUNS changes
# each, in a scratch namespace; the time of our side includes rendering.
# CPU time (user + system) is printed beside the wall time: on a shared host
# the wall time measures the other tenants too. Then what meshd does from
# its second group on: a change of one rule (its ranges moved) in one batch
# that replaces the rules and only the changed set (policy_nft_commit_change).
#
#   RULES=256 RANGES=64 RUNS=11 tools/bench/policy_nft.sh
set -uo pipefail
BUILD=${BUILD:-build}
B=$(realpath "$BUILD")
RULES=${RULES:-256}
RANGES=${RANGES:-64}
RUNS=${RUNS:-11}
NSN=nmb-pol-$$
T=$(mktemp -d /tmp/nmb-pol-$$.XXXXXX)

[ "$(id -u)" -eq 0 ] || { echo "policy_nft bench: needs root (a namespace)"; exit 1; }
[ -x "$B/polnft" ] || { echo "policy_nft bench: $BUILD/polnft is missing (make)"; exit 1; }
command -v nft >/dev/null || { echo "policy_nft bench: needs nft"; exit 1; }
cleanup() { ip netns del "$NSN" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ip netns add "$NSN" || exit 1

ours=$(ip netns exec "$NSN" "$B/polnft" bench "$RULES" "$RANGES" "$RUNS" nm-bench "$T/group.nft") || {
	echo "policy_nft bench: polnft failed"; exit 1; }
echo "libnftnl (meshd): $ours"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$ours"; }
ours_ms=$(field full_median_ms)
ours_cpu=$(field full_cpu_median_ms)

# wall and CPU (user + system: the kernel's work runs inside nft's sendmsg)
# of each nft -f, through time(1)
: >"$T/nft.times"
for _ in $(seq "$RUNS"); do
	ip netns exec "$NSN" /usr/bin/time -a -o "$T/nft.times" -f "%e %U %S" nft -f "$T/group.nft" ||
		{ echo "policy_nft bench: nft -f failed"; exit 1; }
done
med() { sort -n | awk -v n="$RUNS" 'NR == int(n / 2) + 1'; }
nft_ms=$(awk '{ printf "%.2f\n", $1 * 1000 }' "$T/nft.times" | med)
nft_cpu=$(awk '{ printf "%.2f\n", ($2 + $3) * 1000 }' "$T/nft.times" | med)
echo "nft -f (same ruleset): runs=$RUNS median_ms=$nft_ms cpu_median_ms=$nft_cpu (time(1): 10 ms resolution)"
rules_in=$(ip netns exec "$NSN" nft list table inet natmesh | grep -c 'comment "inbound_rules')
echo "rules in the table: $rules_in (from $RULES rules x $RANGES ranges); load average $(cut -d' ' -f1 /proc/loadavg)"
awk -v o="$ours_ms" -v n="$nft_ms" -v oc="$ours_cpu" -v nc="$nft_cpu" 'BEGIN {
	printf "policy_nft: per change, libnftnl %.2f ms (CPU %.2f ms), nft -f %.2f ms (CPU %.2f ms): %.2fx faster (CPU %.2fx); target < 50 ms: %s\n",
	       o, oc, n, nc, n / o, nc / oc, o < 50 ? "met" : (oc < 50 ? "met in CPU time, not in wall time on this loaded host" : "NOT met") }'
awk -v c="$(field change_median_ms)" -v cc="$(field change_cpu_median_ms)" 'BEGIN {
	printf "policy_nft: a change of one rule (what meshd sends once its table is in): %.2f ms (CPU %.2f ms); target < 50 ms: %s\n",
	       c, cc, c < 50 ? "met" : "NOT met" }'
