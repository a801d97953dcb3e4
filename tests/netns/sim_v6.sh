#!/usr/bin/env bash
# meshsim with IPv6: scenarios/ipv6-router.json brought `up`, its addresses,
# routes and forwarding checked from inside the nodes, pings across the
# router, natcheck against meshstun on two IPv6 addresses; `down`, `run`,
# SIGINT and SIGTERM leave nothing behind; a NAT node with an IPv6 inside link
# behind an IPv4 WAN is refused before anything is made; `meshsim nat` on an
# IPv6-only WAN installs NAT66 (the ip6 table alone) and removes it.
#
#   a 2001:db8:1::2 --- left --- r (router) --- right --- d 2001:db8:2::2 (eth0)
#                             ::1 | ::1 ::1 | 10.9.1.1      \-- v4 --- d 10.9.1.2 (eth1)
#                                 |         +-- right --- stun 2001:db8:2::10 (eth0)
#                                 +-- right2 ------------ stun 2001:db8:3::10 (eth1)
#   stun runs meshstun --rfc5780 on both; every network is a bridge in its own
#   namespace (nmsXXXX-left, ...)
set -uo pipefail
. "$(dirname "$0")/tap.bash"
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
SC=scenarios/ipv6-router.json
tmp=$(mktemp -d /tmp/sim_v6.XXXXXX)
labs=()
pids=()
natns="nmt-simv6nat-$$"
cleanup() {
  local p l
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for l in "${labs[@]}"; do "$M" down "$l" >/dev/null 2>&1; done
  ip netns del "$natns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for b in "$M" "$BUILD/meshstun" "$BUILD/natcheck"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
NSCOUNT=8	# 4 nodes, 4 networks

leftovers() {  # LAB: namespaces and state file it left
  local n
  n=$(ip netns list | grep -c "^$1-")
  [ -e "/run/meshsim/$1.json" ] && n=$((n + 1))
  echo "$n"
}
# the meshstun of this scenario, wherever it runs
stun_pids() { pgrep -f 'meshstun --rfc5780 --listen \[2001:db8:2::10\]:3478' ; }
in_node() { local lab=$1 node=$2; shift 2; ip netns exec "$lab-$node" "$@"; }

check "validate accepts the IPv6 scenario" eval '"$M" validate "$SC" >/dev/null'

# --- up: addresses, routes, forwarding -----------------------------------------
lab=$(timeout 30 "$M" up "$SC" --out "$tmp/up" 2>"$tmp/up.err")
labs+=("$lab")
check "up prints the lab name" eval '[[ "$lab" =~ ^nms[0-9a-f]{4}$ ]]'
check "up makes a namespace per node and network ($NSCOUNT)" eval '[ "$(ip netns list | grep -c "^$lab-")" -eq $NSCOUNT ]'
check "a has 2001:db8:1::2/64 on eth0, usable at once (not tentative)" eval \
  'in_node "$lab" a ip -6 -o addr show dev eth0 scope global | grep -q "inet6 2001:db8:1::2/64" &&
   ! in_node "$lab" a ip -6 -o addr show dev eth0 | grep -q tentative'
check "r has its four addresses (three IPv6, one IPv4)" eval \
  '[ "$(in_node "$lab" r ip -6 -o addr show scope global | grep -c "inet6 2001:db8:[123]::1/64")" -eq 3 ] &&
   in_node "$lab" r ip -4 -o addr show dev eth3 | grep -q "10.9.1.1/24"'
check "a: \"default\" via r is ::/0 via r's address on left" eval \
  '[ "$(in_node "$lab" a ip -6 route show default | cut -d" " -f1-5)" = "default via 2001:db8:1::1 dev eth0" ]'
check "d (dual stack): ::/0 via 2001:db8:2::1 on eth0, 0.0.0.0/0 via 10.9.1.1 on eth1" eval \
  '[ "$(in_node "$lab" d ip -6 route show default | cut -d" " -f1-5)" = "default via 2001:db8:2::1 dev eth0" ] &&
   [ "$(in_node "$lab" d ip -4 route show default | cut -d" " -f1-5)" = "default via 10.9.1.1 dev eth1" ]'
check "r forwards IPv6 and IPv4; hosts do not" eval \
  '[ "$(in_node "$lab" r sysctl -n net.ipv6.conf.all.forwarding net.ipv4.ip_forward | tr "\n" " ")" = "1 1 " ] &&
   [ "$(in_node "$lab" a sysctl -n net.ipv6.conf.all.forwarding)" = 0 ]'
check "no router advertisements taken, no autoconfigured addresses" eval \
  '[ "$(in_node "$lab" d sysctl -n net.ipv6.conf.eth0.accept_ra net.ipv6.conf.eth0.autoconf | tr "\n" " ")" = "0 0 " ]'
check "exec: a pings d across the router over IPv6" eval '"$M" exec "$lab" a -- ping -6 -c 1 -W 2 2001:db8:2::2 >/dev/null'
check "exec: d pings a back" eval '"$M" exec "$lab" d -- ping -6 -c 1 -W 2 2001:db8:1::2 >/dev/null'
check "exec: a pings stun's second address 2001:db8:3::10" eval '"$M" exec "$lab" a -- ping -6 -c 1 -W 2 2001:db8:3::10 >/dev/null'
check "exec: d pings r over IPv4" eval '"$M" exec "$lab" d -- ping -4 -c 1 -W 2 10.9.1.1 >/dev/null'
check "meshstun listens on [2001:db8:2::10]:3478 and [2001:db8:3::10]:3479 in stun" eval \
  'ss=$(in_node "$lab" stun ss -Hnlu); grep -q "\[2001:db8:2::10\]:3478" <<<"$ss" && grep -q "\[2001:db8:3::10\]:3479" <<<"$ss"'
nc_out=$("$M" exec "$lab" a -- natcheck -q --rto 50 --rc 4 --server '[2001:db8:2::10]:3478' --tests mapping,filtering 2>&1)
sed 's/^/# /' <<<"$nc_out"
check "natcheck from a: other address [2001:db8:3::10]:3479, no NAT" eval \
  'grep -q "(other address \[2001:db8:3::10\]:3479)" <<<"$nc_out" &&
   grep -q "^result: endpoint-independent mapping / endpoint-independent filtering, no NAT detected$" <<<"$nc_out"'
check "the lab's pcap of a holds IPv6 STUN" eval \
  '"$M" down "$lab" >/dev/null && tcpdump -nr "$tmp/up/pcap/a-eth0.pcap" ip6 and udp port 3478 2>/dev/null | grep -q "2001:db8:1::2\.[0-9]* > 2001:db8:2::10\.3478"'
check "down leaves no namespace or state file" eval '[ "$(leftovers "$lab")" -eq 0 ]'
check "down leaves no meshstun" eval '[ -z "$(stun_pids)" ]'

# --- run: every expectation holds, nothing left --------------------------------
out=$(timeout 60 "$M" run "$SC" --out "$tmp/run1" 2>"$tmp/run1.err"); rc=$?
sed 's/^/# /' <<<"$out"
lab=$(sed -n 's/.*(lab \(nms[0-9a-f]*\)).*/\1/p' <<<"$out" | head -1)
check "run passes (pings across the router, natcheck over IPv6)" eval \
  '[ $rc -eq 0 ] && [ "$(jq -r "[.expectations[].verdict] | join(\" \")" "$tmp/run1/report.json")" = "pass pass pass pass pass" ]'
check "run leaves nothing behind" eval '[ -n "$lab" ] && [ "$(leftovers "$lab")" -eq 0 ] && [ -z "$(stun_pids)" ]'

# --- SIGINT and SIGTERM during run ----------------------------------------------
jq '.expectations += [{"sleep_ms": 20000}]' "$SC" >"$tmp/slow.json"
for sig in INT TERM; do
  "$M" run "$tmp/slow.json" --out "$tmp/run-$sig" >/dev/null 2>"$tmp/run-$sig.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 150); do grep -q "expect 6/" "$tmp/run-$sig.err" 2>/dev/null && break; sleep 0.1; done
  lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run-$sig.err" | head -1)
  labs+=("$lab")
  check "SIG$sig: the lab is up with its meshstun" eval \
    '[ -n "$lab" ] && [ "$(ip netns list | grep -c "^$lab-")" -eq $NSCOUNT ] && [ -n "$(stun_pids)" ]'
  kill -"$sig" "$pid"
  wait "$pid"; rc=$?
  check "SIG$sig ends run with 130 and leaves no namespace, state file or process" eval \
    '[ $rc -eq 130 ] && [ "$(leftovers "$lab")" -eq 0 ] && [ -z "$(stun_pids)" ]'
done

# --- refused: a NAT node with an IPv6 link behind an IPv4 WAN --------------------
jq '.nodes += [{"name": "gw6", "kind": "nat", "nat": "full-cone",
                "links": [{"network": "v4", "ifname": "wan"}, {"network": "left", "ifname": "lan"}]}]' \
  "$SC" >"$tmp/nat6.json"
err=$("$M" validate "$tmp/nat6.json" 2>&1); rc=$?
echo "# $err"
check "validate refuses a NAT node with an IPv6 link behind an IPv4 WAN, naming the node's link and why" eval \
  '[ $rc -ne 0 ] && grep -Eqx "meshsim: $tmp/nat6.json: nodes\[4\]\.links\[1\]: 2001:db8:1::3/64 on network \"left\" is IPv6, but the WAN wan \(10\.9\.1\.[0-9]+/24\) is IPv4: a node of kind \"nat\" translates one family \(no NAT46/NAT64, no dual-stack gateway\)" <<<"$err"'
out=$(timeout 30 "$M" run "$tmp/nat6.json" --out "$tmp/run-nat6" 2>&1); rc=$?
check "run refuses it too, before making any lab" eval \
  '[ $rc -ne 0 ] && grep -q "translates one family" <<<"$out" && ! grep -q "lab nms" <<<"$out"'

# --- `meshsim nat` on a namespace of one's own whose WAN is IPv6 only: NAT66 ---
ip netns add "$natns"
ip -n "$natns" link add wan type veth peer name wanpeer
ip -n "$natns" addr add 2001:db8::7/64 dev wan nodad
ip -n "$natns" link set wan up
out=$("$M" nat "$natns" symmetric --wan wan 2>&1); rc=$?
check "nat on a WAN with only an IPv6 address installs NAT66: the ip6 natmesh_nat table alone" eval \
  '[ $rc -eq 0 ] && [ "$(ip netns exec "$natns" nft list tables)" = "table ip6 natmesh_nat" ] &&
   ip netns exec "$natns" nft list table ip6 natmesh_nat | grep -q "ip6 saddr != 2001:db8::7 meta l4proto udp snat to \[2001:db8::7\]:1024-65535 fully-random"'
out=$("$M" nat "$natns" --remove 2>&1); rc=$?
check "nat --remove takes it away" eval '[ $rc -eq 0 ] && [ -z "$(ip netns exec "$natns" nft list ruleset)" ]'
ip -n "$natns" addr del 2001:db8::7/64 dev wan
err=$("$M" nat "$natns" symmetric --wan wan 2>&1); rc=$?
check "nat refuses a WAN whose IPv6 address is gone, and installs nothing" eval \
  '[ $rc -ne 0 ] && grep -q "wan has no IPv4 address and no global IPv6 one" <<<"$err" && [ -z "$(ip netns exec "$natns" nft list ruleset)" ]'
ip netns del "$natns"

tap_exit
