#!/usr/bin/env bash
# natcheck (RFC 5780 discovery) against meshstun --rfc5780: on loopback
# (127.0.0.1 and 127.0.0.2), and from a host behind a gateway namespace that
# is in turn a plain router, a stateful firewall, an nftables masquerade
# (Linux's port-restricted cone), a `masquerade random` (symmetric), and a
# masquerade whose UDP conntrack timeout is 4 s (mapping lifetime). Also a
# server without RFC 5780 support, which natcheck must refuse by name.
#
#  PFX-h: H 10.0.1.2 --- PFX-gw: lan 10.0.1.1 | wan 203.0.113.1 --- PFX-s: S 203.0.113.10
#                                                                          203.0.113.20
#  meshstun --rfc5780 on 203.0.113.10:3478 + 203.0.113.20:3478 (and :3479 each),
#  a plain meshstun on 203.0.113.30:3478
set -u
cd "$(dirname "$0")/../.."
. tests/netns/report_common.bash
trap rp_cleanup EXIT

NC=$BUILD/natcheck
STUN=$BUILD/meshstun
for b in "$NC" "$STUN"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
P=$RP_PFX

for n in h gw s; do rp_ns "$n" || { not_ok "namespaces"; exit 1; }; done
rp_link h a0 10.0.1.2/24 gw lan 10.0.1.1/24
rp_link gw wan 203.0.113.1/24 s s0 203.0.113.10/24
nsx "$P-s" ip addr add 203.0.113.20/24 dev s0
nsx "$P-s" ip addr add 203.0.113.30/24 dev s0
nsx "$P-h" ip route add default via 10.0.1.1
nsx "$P-s" ip route add 10.0.1.0/24 via 203.0.113.1	# only used while the gateway does not NAT
nsx "$P-gw" sysctl -qw net.ipv4.ip_forward=1
rp_bg meshstun s "$STUN" --rfc5780 --listen 203.0.113.10:3478 --listen 203.0.113.20:3478
rp_bg meshstun-lo s "$STUN" --rfc5780 --listen 127.0.0.1:3478 --listen 127.0.0.2:3478
rp_bg meshstun-plain s "$STUN" --listen 203.0.113.30:3478
sleep 0.5

# natcheck_out NAME NS ARGS...: run natcheck, keep stdout, stderr and status
natcheck_out() {
  local name=$1 ns=$2; shift 2
  nsx "$P-$ns" "$NC" -q "$@" >"$RP_TMP/$name.out" 2>"$RP_TMP/$name.err"
  echo $? >"$RP_TMP/$name.rc"
  sed 's/^/# /' "$RP_TMP/$name.out" "$RP_TMP/$name.err"
}
has() { grep -q -- "$2" "$RP_TMP/$1.out"; }
row() { grep -q "^  $2 *$3" "$RP_TMP/$1.out"; }
rc_is() { [ "$(cat "$RP_TMP/$1.rc")" = "$2" ]; }
gw_rules() { nsx "$P-gw" nft flush ruleset && nsx "$P-gw" nft -f -; }

# --- loopback, no NAT ------------------------------------------------------
natcheck_out lo s --server 127.0.0.1:3478
check "loopback: exit 0" rc_is lo 0
check "loopback: other address 127.0.0.2:3479" has lo "(other address 127.0.0.2:3479)"
check "loopback: endpoint-independent / endpoint-independent, no NAT detected" \
  has lo "^result: endpoint-independent mapping / endpoint-independent filtering, no NAT detected$"
check "loopback: hairpinning not applicable, ports preserved" \
  bash -c "grep -q '^  hairpinning *not applicable' '$RP_TMP/lo.out' && grep -q '^  port allocation *preserve ' '$RP_TMP/lo.out'"

# --- the gateway routes without NAT -----------------------------------------
gw_rules </dev/null
natcheck_out route h --server 203.0.113.10:3478
check "router: exit 0" rc_is route 0
check "router: mapped address = local address 10.0.1.2" row route "mapped address" "10.0.1.2:"
check "router: endpoint-independent / endpoint-independent, no NAT detected" \
  has route "^result: endpoint-independent mapping / endpoint-independent filtering, no NAT detected$"

# --- a stateful firewall without NAT ---------------------------------------
gw_rules <<'NFT'
table ip rpfilter {
  chain through {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" accept
  }
}
NFT
natcheck_out fw h --server 203.0.113.10:3478 --tests mapping,filtering
check "firewall: no NAT, address-and-port-dependent filtering" \
  has fw "^result: endpoint-independent mapping / address-and-port-dependent filtering, no NAT detected (a firewall filters)$"

# --- masquerade: Linux's port-restricted cone -------------------------------
gw_rules <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade
  }
}
NFT
natcheck_out masq h --server 203.0.113.10:3478
check "masquerade: exit 0" rc_is masq 0
check "masquerade: mapped to the gateway 203.0.113.1" row masq "mapped address" "203.0.113.1:"
check "masquerade: endpoint-independent mapping, address-and-port-dependent filtering: port-restricted cone" \
  has masq "^result: endpoint-independent mapping / address-and-port-dependent filtering: port-restricted cone$"
check "masquerade: ports preserved" row masq "port allocation" "preserve"
check "masquerade: no hairpinning" row masq "hairpinning" "no"
check "masquerade: no ALG" row masq "ALG" "none seen"
check "masquerade: findings line in nat-models' terms" \
  has masq "^findings: mapping=endpoint-independent filtering=address-and-port-dependent port_allocation=preserve hairpinning=off$"
natcheck_out masqjson h --server 203.0.113.10:3478 --tests mapping,filtering --json
check "masquerade --json: type and terms" \
  bash -c "grep -q '\"type\": \"port-restricted cone\"' '$RP_TMP/masqjson.out' && grep -q '\"filtering\": \"address-and-port-dependent\"' '$RP_TMP/masqjson.out'"

# --- masquerade random: symmetric -------------------------------------------
gw_rules <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade random
  }
}
NFT
natcheck_out sym h --server 203.0.113.10:3478 --tests mapping,filtering,ports
check "masquerade random: address-and-port-dependent mapping: symmetric" \
  has sym "^result: address-and-port-dependent mapping / address-and-port-dependent filtering: symmetric$"
check "masquerade random: random port allocation" row sym "port allocation" "random"

# --- mapping lifetime: masquerade with a 4 s UDP timeout ----------------------
gw_rules <<'NFT'
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade
  }
}
NFT
nsx "$P-gw" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=4 net.netfilter.nf_conntrack_udp_timeout_stream=4
natcheck_out life h --server 203.0.113.10:3478 --tests lifetime --lifetime-max 10 --lifetime-res 0.5 --json
alive=$(sed -n 's/^    "alive_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
dead=$(sed -n 's/^    "dead_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
check "lifetime: the 4 s timeout lies in the bracket [$alive, $dead] s, at most 0.5 s wide" \
  awk -v a="${alive:-x}" -v d="${dead:-x}" 'BEGIN { exit !(a != "x" && d != "x" && a <= 4.2 && d >= 3.8 && d - a <= 0.5) }'

# --- a server without RFC 5780 ----------------------------------------------
natcheck_out plain h --server 203.0.113.30:3478
check "plain STUN server: exit 1" rc_is plain 1
check "plain STUN server: says it lacks RFC 5780" \
  grep -q "does not support RFC 5780 (no OTHER-ADDRESS" "$RP_TMP/plain.err"
tap_exit
