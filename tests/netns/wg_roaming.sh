#!/usr/bin/env bash
# Roaming: the far side sits behind a NAT whose source port for it changes in
# the middle of a TCP stream (the nftables snat rule is replaced and the
# conntrack entry dropped, as when a NAT reboots or rebinds). meshwg must
# follow the far side to its new address:port from the authenticated packets
# alone, and the stream must go on.
#
#   nmt-wg-PID-a (meshwg)       nmt-wg-PID-r (NAT)                 nmt-wg-PID-b (FAR)
#   wgaPID 100.64.0.1            snat 198.51.100.2:51820            wgbPID 100.64.0.2
#   va 192.0.2.1/24 --- veth --- ra 192.0.2.254 / rb 198.51.100.254 --- veth --- vb 198.51.100.2/24
#   peer B: no endpoint           -> 192.0.2.254:40000, then :40001   peer A: endpoint 192.0.2.1:51820
#
# FAR is wireguard-go, then meshwg (WG_FAR_KINDS overrides).
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note
NS_R="$WG_PFX-r"

nat_rule() {
  nsx "$NS_R" nft -f - <<NFT
flush ruleset
table ip nmtnat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "ra" ip saddr 198.51.100.2 udp sport 51820 snat to 192.0.2.254:$1
  }
}
NFT
}

endpoint_of_b() { nsx "$NS_A" wg show "$IF_A" endpoints | awk -v k="$PUB_B" '$1 == k { print $2 }'; }

setup() {
  local far=$1
  wg_ns_add "$NS_A" && wg_ns_add "$NS_R" && wg_ns_add "$NS_B" || return 1
  ip link add va netns "$NS_A" type veth peer name ra netns "$NS_R" || return 1
  ip link add vb netns "$NS_B" type veth peer name rb netns "$NS_R" || return 1
  nsx "$NS_A" ip addr add 192.0.2.1/24 dev va && nsx "$NS_A" ip link set va up
  nsx "$NS_R" ip addr add 192.0.2.254/24 dev ra && nsx "$NS_R" ip link set ra up
  nsx "$NS_R" ip addr add 198.51.100.254/24 dev rb && nsx "$NS_R" ip link set rb up
  nsx "$NS_B" ip addr add 198.51.100.2/24 dev vb && nsx "$NS_B" ip link set vb up
  nsx "$NS_B" ip route add default via 198.51.100.254
  nsx "$NS_R" sysctl -qw net.ipv4.ip_forward=1
  nat_rule 40000 || return 1
  wg_daemon "$NS_A" meshwg "$IF_A" && PID_A=$WG_DAEMON_PID || return 1
  wg_daemon "$NS_B" "$far" "$IF_B" && PID_B=$WG_DAEMON_PID || return 1
  wg_keys
  nsx "$NS_A" wg set "$IF_A" private-key "$WG_TMP/key_a" listen-port 51820 || return 1
  nsx "$NS_B" wg set "$IF_B" private-key "$WG_TMP/key_b" listen-port 51820 || return 1
  wg_peer_a || return 1
  # B is the one behind the NAT: as WireGuard advises for such a peer, it keeps
  # its mapping alive (1 s here). After the rebinding only B can tell A of its
  # new port, and a stream from A gives B nothing to answer once A's packets
  # go to the dead port: without a keepalive the test raced the last ACKs
  wg_peer_b endpoint 192.0.2.1:51820 persistent-keepalive 1 || return 1
  nsx "$NS_A" ip addr add 100.64.0.1/24 dev "$IF_A" && nsx "$NS_A" ip link set "$IF_A" up
  nsx "$NS_B" ip addr add 100.64.0.2/24 dev "$IF_B" && nsx "$NS_B" ip link set "$IF_B" up
}

head -c 20M /dev/urandom >"$WG_TMP/data"
for far in ${WG_FAR_KINDS:-wireguard-go meshwg}; do
  label="meshwg(A) <-> $far(B) behind NAT"
  if ! setup "$far"; then not_ok "$label: set up"; wg_teardown; continue; fi
  check "$label: B reaches A through the NAT" nsx "$NS_B" ping -q -c 3 -i 0.2 -w 15 100.64.0.1
  check "$label: meshwg learnt B's mapped endpoint 192.0.2.254:40000 ($(endpoint_of_b))" \
    test "$(endpoint_of_b)" = 192.0.2.254:40000

  # a stream from A to B; B's ACKs are what tells A about the new port
  nsx "$NS_B" iperf3 -s -1 >/dev/null 2>&1 &
  srv=$!
  for _ in $(seq 50); do nsx "$NS_B" ss -ltn | grep -q ':5201 ' && break; sleep 0.05; done
  nsx "$NS_A" iperf3 -c 100.64.0.2 -t 8 -i 1 -J >"$WG_TMP/iperf.json" 2>&1 &
  cli=$!
  sleep 3
  nat_rule 40001
  nsx "$NS_R" conntrack -D -p udp >/dev/null 2>&1
  wait "$cli"; rc=$?
  wait "$srv"
  check "$label: the stream across the rebinding completed" test $rc -eq 0
  # the last two seconds (3-5 s after the change) carry data: the stream
  # resumed on the new port (a TCP retransmission backoff right after the
  # change may leave an earlier second empty, more so under sanitizers)
  late=$(jq '[.intervals[-2:][].sum.bytes] | min // 0' "$WG_TMP/iperf.json" 2>/dev/null)
  check "$label: the stream kept flowing after the port changed (min late interval ${late:-0} bytes)" \
    test "${late:-0}" -gt 100000
  check "$label: meshwg followed B to 192.0.2.254:40001 ($(endpoint_of_b))" \
    test "$(endpoint_of_b)" = 192.0.2.254:40001
  check "$label: 20 MB A -> B after roaming, checksums match" \
    wg_transfer "$NS_A" "$NS_B" 100.64.0.2 "$WG_TMP/data"
  wg_teardown
done
tap_exit
