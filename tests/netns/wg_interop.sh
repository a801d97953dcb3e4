#!/usr/bin/env bash
# meshwg against wireguard-go and against itself, both configured with wg(8):
# ping and a 100 MB TCP transfer (SHA-256 compared) in both directions, once
# with the handshake initiated by side A and once by side B; then `wg show` on
# every meshwg reports the handshake, the endpoint and the transfer counters.
#
#   nmt-wg-PID-a: wgaPID 100.64.0.1 (KIND_A)  <== WireGuard over veth ==>
#   nmt-wg-PID-b: wgbPID 100.64.0.2 (KIND_B)      192.0.2.1 <-> 192.0.2.2
#
# wireguard-go is the reference of wgref.bash: the modern upstream build
# (WIREGUARD_GO, or ../shared/anchors/wireguard-go/) when there is one, and
# Debian's as well when both are here (wireguard-go-debian); without the
# modern one a skip line says so and Debian's alone is checked.
# WG_PAIRS overrides the pairs ("KIND_A:KIND_B ..."), e.g.
# WG_PAIRS=wireguard-go:wireguard-go to check the test itself.
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note

if [ -z "$WG_GO" ]; then
  skip "meshwg <-> wireguard-go: $WG_GO_WHY"
  PAIRS="meshwg:meshwg"
elif [ "$WG_GO_FROM" = PATH ]; then
  skip "meshwg <-> the modern wireguard-go: no WIREGUARD_GO and no $WGREF_ANCHOR (checking $WG_GO_VERSION only)"
  PAIRS="meshwg:wireguard-go meshwg:meshwg"
else
  PAIRS="meshwg:wireguard-go meshwg:meshwg${WG_GO_DEBIAN:+ meshwg:wireguard-go-debian}"
fi
PAIRS=${WG_PAIRS:-$PAIRS}
MB=${WG_TRANSFER_MB:-100}
head -c "${MB}M" /dev/urandom >"$WG_TMP/data"
head -c 20M "$WG_TMP/data" >"$WG_TMP/data20"

ping_ok() { nsx "$1" ping -q -c 3 -i 0.2 -w 15 "$2" >/dev/null 2>&1; }

# reset_peers: both sides forget the other (and every session), then learn it again
reset_peers() {
  nsx "$NS_A" wg set "$IF_A" peer "$PUB_B" remove
  nsx "$NS_B" wg set "$IF_B" peer "$PUB_A" remove
  wg_peer_a endpoint 192.0.2.2:51820 && wg_peer_b endpoint 192.0.2.1:51820
  nsx "$NS_A" nft delete table inet nmtwg 2>/dev/null
  nsx "$NS_B" nft delete table inet nmtwg 2>/dev/null
  wg_count_init "$NS_A" && wg_count_init "$NS_B"
}

# round NAME INITIATOR_NS OTHER_NS OTHER_IP
round() {
  local name=$1 ini=$2 oth=$3 ip=$4 ini_ip
  [ "$ip" = 100.64.0.2 ] && ini_ip=100.64.0.1 || ini_ip=100.64.0.2
  reset_peers
  check "$name: ping" ping_ok "$ini" "$ip"
  check "$name: the handshake came from the initiator" \
    test "$(wg_inits_sent "$ini")" -ge 1 -a "$(wg_inits_sent "$oth")" -eq 0
  check "$name: ping back" ping_ok "$oth" "$ini_ip"
  check "$name: ${MB} MB initiator -> other, checksums match" wg_transfer "$ini" "$oth" "$ip" "$WG_TMP/data"
  check "$name: ${MB} MB other -> initiator, checksums match" wg_transfer "$oth" "$ini" "$ini_ip" "$WG_TMP/data"
}

# show_checks NS IFNAME PEER_PUB PEER_ENDPOINT: wg show on a meshwg
show_checks() {
  local ns=$1 ifn=$2 pub=$3 ep=$4 t rx tx now
  now=$(date +%s)
  t=$(nsx "$ns" wg show "$ifn" latest-handshakes | awk -v k="$pub" '$1 == k { print $2 }')
  check "$label: wg show $ifn: latest handshake within a minute ($t)" test -n "$t" -a "${t:-0}" -gt $((now - 60))
  check "$label: wg show $ifn: endpoint $ep" \
    test "$(nsx "$ns" wg show "$ifn" endpoints | awk -v k="$pub" '$1 == k { print $2 }')" = "$ep"
  read -r rx tx < <(nsx "$ns" wg show "$ifn" transfer | awk -v k="$pub" '$1 == k { print $2, $3 }')
  check "$label: wg show $ifn: transfer rx=$rx tx=$tx above ${MB} MB each" \
    test "${rx:-0}" -gt $((MB << 20)) -a "${tx:-0}" -gt $((MB << 20))
  check "$label: wg showconf $ifn parses back with wg setconf" \
    bash -c "ip netns exec $ns wg showconf $ifn >$WG_TMP/conf && ip netns exec $ns wg setconf $ifn $WG_TMP/conf"
}

# kind_name KIND: the kind, with the version of a wireguard-go
kind_name() {
  case "$1" in
    wireguard-go) echo "$WG_GO_VERSION" ;;
    wireguard-go-debian) wgref_version "$WG_GO_DEBIAN" ;;
    *) echo "$1" ;;
  esac
}

for pair in $PAIRS; do
  KIND_A=${pair%%:*} KIND_B=${pair##*:}
  label="$(kind_name "$KIND_A")(A) <-> $(kind_name "$KIND_B")(B)"
  if ! wg_pair "$KIND_A" "$KIND_B"; then
    not_ok "$label: set up"
    wg_teardown
    continue
  fi
  round "$label, A initiates" "$NS_A" "$NS_B" 100.64.0.2
  round "$label, B initiates" "$NS_B" "$NS_A" 100.64.0.1
  [ "$KIND_A" = meshwg ] && show_checks "$NS_A" "$IF_A" "$PUB_B" 192.0.2.2:51820
  [ "$KIND_B" = meshwg ] && show_checks "$NS_B" "$IF_B" "$PUB_A" 192.0.2.1:51820
  # the same tunnel over an IPv6 underlay (the dual-stack socket, v6 endpoints)
  nsx "$NS_A" ip addr add 2001:db8::1/64 dev va nodad
  nsx "$NS_B" ip addr add 2001:db8::2/64 dev vb nodad
  wg_peer_a endpoint '[2001:db8::2]:51820' && wg_peer_b endpoint '[2001:db8::1]:51820'
  check "$label, IPv6 underlay: ping" ping_ok "$NS_A" 100.64.0.2
  check "$label, IPv6 underlay: 20 MB A -> B, checksums match" \
    wg_transfer "$NS_A" "$NS_B" 100.64.0.2 "$WG_TMP/data20"
  check "$label, IPv6 underlay: 20 MB B -> A, checksums match" \
    wg_transfer "$NS_B" "$NS_A" 100.64.0.1 "$WG_TMP/data20"
  check "$label, IPv6 underlay: A's endpoint for B is [2001:db8::2]:51820" \
    test "$(nsx "$NS_A" wg show "$IF_A" endpoints | awk '{ print $2 }')" = '[2001:db8::2]:51820'
  check "$label, IPv6 underlay: B's endpoint for A is [2001:db8::1]:51820" \
    test "$(nsx "$NS_B" wg show "$IF_B" endpoints | awk '{ print $2 }')" = '[2001:db8::1]:51820'
  if [ "$KIND_A" = meshwg ]; then
    # persistent keepalive: empty data messages (32 bytes of UDP payload) every second
    nsx "$NS_A" nft -f - <<'NFT'
table inet nmtwgka {
  counter ka_out { }
  chain out { type filter hook output priority 0; udp length 40 @th,64,8 4 counter name ka_out; }
}
NFT
    nsx "$NS_A" wg set "$IF_A" peer "$PUB_B" persistent-keepalive 1
    sleep 3.5
    ka=$(nsx "$NS_A" nft list counter inet nmtwgka ka_out | sed -n 's/.*packets \([0-9]*\).*/\1/p')
    check "$label: persistent keepalive 1 s: $ka keepalives in 3.5 s" test "${ka:-0}" -ge 3 -a "${ka:-0}" -le 6
    check "$label: wg show reports the keepalive interval" \
      test "$(nsx "$NS_A" wg show "$IF_A" persistent-keepalive | awk '{ print $2 }')" = 1
  fi
  check "$label: daemons still running" kill -0 "$PID_A" "$PID_B"
  wg_teardown
done
tap_exit
