#!/usr/bin/env bash
# Security-group apply time (issue 16: < 50 ms per change): a group of
# RULES inbound rules with RANGES address ranges each (IPv4 ranges A-B,
# IPv4 and IPv6 CIDRs; tcp port ranges, udp, icmp, any), rendered by meshd's
# renderer (agent/meshd/policy_nft.c) and committed through libnftnl over
# libmnl in one batch that replaces the table, as meshd does on each change;
# beside it, the same ruleset as `nft -f` text (the renderer's text form,
# replace form: one nft transaction) applied by nft. Median of RUNS changes
# each, in a scratch namespace; the time of our side includes rendering.
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
ours_ms=$(sed -n "s/.* median_ms=\([0-9.]*\).*/\1/p" <<<"$ours")

times=()
for _ in $(seq "$RUNS"); do
	t0=$(date +%s%N)
	ip netns exec "$NSN" nft -f "$T/group.nft" || { echo "policy_nft bench: nft -f failed"; exit 1; }
	t1=$(date +%s%N)
	times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }')")
done
nft_ms=$(printf '%s\n' "${times[@]}" | sort -n | awk -v n="$RUNS" 'NR == int(n / 2) + 1')
echo "nft -f (same ruleset): runs=$RUNS median_ms=$nft_ms min_ms=$(printf '%s\n' "${times[@]}" | sort -n | head -1) max_ms=$(printf '%s\n' "${times[@]}" | sort -n | tail -1)"
rules_in=$(ip netns exec "$NSN" nft list table inet natmesh | grep -c 'comment "inbound_rules')
echo "rules in the table: $rules_in (from $RULES rules x $RANGES ranges)"
awk -v o="$ours_ms" -v n="$nft_ms" 'BEGIN {
	printf "policy_nft: %.2f ms per change with libnftnl, %.2f ms with nft -f: %.2fx faster; target < 50 ms: %s\n",
	       o, n, n / o, o < 50 ? "met" : "NOT met" }'
