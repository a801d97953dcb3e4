#!/usr/bin/env bash
# natcheck (RFC 5780 discovery) over IPv6, against meshstun --rfc5780 on two
# IPv6 addresses, from a host behind a gateway namespace that is in turn a
# plain IPv6 router, a stateful IPv6 firewall (unsolicited inbound dropped on
# its outside interface), an nftables NAT66 masquerade, a NAT66 `masquerade
# random`, and a NAT66 masquerade whose UDP conntrack timeout is 4 s (mapping
# lifetime). coturn's turnutils_natdiscovery runs the mapping and filtering
# tests against the same server as an independent client, and must agree.
#
#  PFX-h: H 2001:db8:1::2 --- PFX-gw: lan 2001:db8:1::1 | wan 2001:db8::1 --- PFX-s: S 2001:db8::10
#                                                                                     2001:db8::20
#  meshstun --rfc5780 on [2001:db8::10]:3478 + [2001:db8::20]:3478 (and :3479 each)
#  (addresses with nodad: no duplicate address detection to wait for)
set -u
cd "$(dirname "$0")/../.."
. tests/netns/report_common.bash
trap rp_cleanup EXIT

NC=$BUILD/natcheck
STUN=$BUILD/meshstun
for b in "$NC" "$STUN"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
command -v turnutils_natdiscovery >/dev/null || { skip "turnutils_natdiscovery missing (make deps)"; exit 0; }
P=$RP_PFX

# rp_ns turns IPv6 off; this test wants it on, without DAD and router adverts
v6_ns() {
  rp_ns "$1" || return 1
  nsx "$P-$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
}
for n in h gw s; do v6_ns "$n" || { not_ok "namespaces"; exit 1; }; done
rp_link h a0 - gw lan -
rp_link gw wan - s s0 -
nsx "$P-h" ip addr add 2001:db8:1::2/64 dev a0 nodad
nsx "$P-gw" ip addr add 2001:db8:1::1/64 dev lan nodad
nsx "$P-gw" ip addr add 2001:db8::1/64 dev wan nodad
nsx "$P-s" ip addr add 2001:db8::10/64 dev s0 nodad
nsx "$P-s" ip addr add 2001:db8::20/64 dev s0 nodad
nsx "$P-h" ip -6 route add default via 2001:db8:1::1
nsx "$P-s" ip -6 route add 2001:db8:1::/64 via 2001:db8::1	# only used while the gateway does not NAT
nsx "$P-gw" sysctl -qw net.ipv6.conf.all.forwarding=1
rp_bg meshstun s "$STUN" --rfc5780 --listen '[2001:db8::10]:3478' --listen '[2001:db8::20]:3478'
stun_pid=${RP_PIDS[-1]}
for _ in $(seq 50); do
  [ "$(grep -c 'listening addr=\[2001:db8::' "$RP_TMP/meshstun.log")" -eq 4 ] && break
  sleep 0.1
done
check "meshstun --rfc5780 listens on the four IPv6 addresses" \
  bash -c "for a in '[2001:db8::10]:3478' '[2001:db8::10]:3479' '[2001:db8::20]:3478' '[2001:db8::20]:3479'; do grep -qF \"listening addr=\$a\" '$RP_TMP/meshstun.log' || exit 1; done"

# natcheck_out NAME NS ARGS...: run natcheck, keep stdout, stderr and status
natcheck_out() {
  local name=$1 ns=$2; shift 2
  nsx "$P-$ns" timeout 120 "$NC" -q "$@" >"$RP_TMP/$name.out" 2>"$RP_TMP/$name.err"
  echo $? >"$RP_TMP/$name.rc"
  sed 's/^/# /' "$RP_TMP/$name.out" "$RP_TMP/$name.err"
}
# natdiscovery_out NAME ARGS...: coturn's client from the host
natdiscovery_out() {
  local name=$1; shift
  nsx "$P-h" timeout 60 turnutils_natdiscovery "$@" >"$RP_TMP/$name.out" 2>&1
  echo $? >"$RP_TMP/$name.rc"
}
has() { grep -q -- "$2" "$RP_TMP/$1.out"; }
row() { grep -q "^  $2 *$3" "$RP_TMP/$1.out"; }
rc_is() { [ "$(cat "$RP_TMP/$1.rc")" = "$2" ]; }
gw_rules() { nsx "$P-gw" nft flush ruleset && nsx "$P-gw" nft -f -; }
answers() { grep -c 'RFC 5780 response' "$RP_TMP/$1.out"; }
SERVER='[2001:db8::10]:3478'

# --- the gateway routes without NAT -----------------------------------------
gw_rules </dev/null
natcheck_out route h --server "$SERVER"
check "router: exit 0" rc_is route 0
check "router: other address [2001:db8::20]:3479" has route "(other address \[2001:db8::20\]:3479)"
check "router: mapped address = local address [2001:db8:1::2]" row route "mapped address" "\[2001:db8:1::2\]:"
check "router: no NAT" row route "NAT" "none detected"
check "router: endpoint-independent / endpoint-independent, no NAT detected" \
  has route "^result: endpoint-independent mapping / endpoint-independent filtering, no NAT detected$"
check "router: hairpinning not applicable, ports preserved" \
  bash -c "grep -q '^  hairpinning *not applicable' '$RP_TMP/route.out' && grep -q '^  port allocation *preserve ' '$RP_TMP/route.out'"
natcheck_out routejson h --server "$SERVER" --tests mapping,filtering --json
check "router --json: IPv6 addresses in brackets, no NAT" \
  bash -c "grep -q '\"other_address\": \"\[2001:db8::20\]:3479\"' '$RP_TMP/routejson.out' && grep -q '\"nat\": false' '$RP_TMP/routejson.out'"

# coturn's client: -L/-l pin the local address and port, so the reflexive
# address it reports must be exactly that (no NAT)
natdiscovery_out ndroute -m -f -L 2001:db8:1::2 -l 40000 -p 3478 2001:db8::10
check "natdiscovery over IPv6: every mapping and filtering test answered (4 RFC 5780 responses)" \
  test "$(answers ndroute)" -eq 4
check "natdiscovery over IPv6: endpoint-independent mapping and filtering, as natcheck says" \
  bash -c "grep -q 'NAT with Endpoint Independent Mapping' '$RP_TMP/ndroute.out' && grep -q 'NAT with Endpoint Independent Filtering' '$RP_TMP/ndroute.out'"
check "natdiscovery over IPv6: test II answered from the other address 2001:db8::20:3479" \
  grep -q 'Response origin: : 2001:db8::20:3479' "$RP_TMP/ndroute.out"
check "natdiscovery over IPv6: reflexive address is the host's own 2001:db8:1::2:40000" \
  grep -q 'UDP reflexive addr: 2001:db8:1::2:40000' "$RP_TMP/ndroute.out"

# --- a stateful IPv6 firewall without NAT: unsolicited inbound dropped -------
gw_rules <<'NFT'
table ip6 fw {
  chain through {
    type filter hook forward priority filter;
    iifname "wan" ct state new drop
  }
}
NFT
natcheck_out fw h --server "$SERVER" --tests mapping,filtering
check "firewall: exit 0" rc_is fw 0
check "firewall: no NAT, address-and-port-dependent filtering" \
  has fw "^result: endpoint-independent mapping / address-and-port-dependent filtering, no NAT detected (a firewall filters)$"
natdiscovery_out ndfw -f -L 2001:db8:1::2 -l 40001 -p 3478 2001:db8::10
check "natdiscovery behind the firewall: test I answered, II and III dropped: address-and-port-dependent filtering" \
  bash -c "[ \$(grep -c 'RFC 5780 response' '$RP_TMP/ndfw.out') -eq 1 ] && grep -q 'NAT with Address and Port Dependent Filtering' '$RP_TMP/ndfw.out'"

# --- NAT66 masquerade: port-preserving, endpoint-independent mapping ---------
gw_rules <<'NFT'
table ip6 nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade
  }
}
NFT
natcheck_out masq h --server "$SERVER"
check "NAT66 masquerade: exit 0" rc_is masq 0
check "NAT66 masquerade: mapped to the gateway [2001:db8::1]" row masq "mapped address" "\[2001:db8::1\]:"
check "NAT66 masquerade: endpoint-independent mapping, address-and-port-dependent filtering: port-restricted cone" \
  has masq "^result: endpoint-independent mapping / address-and-port-dependent filtering: port-restricted cone$"
check "NAT66 masquerade: ports preserved" row masq "port allocation" "preserve"
check "NAT66 masquerade: no hairpinning" row masq "hairpinning" "no"
check "NAT66 masquerade: findings line in nat-models' terms" \
  has masq "^findings: mapping=endpoint-independent filtering=address-and-port-dependent port_allocation=preserve hairpinning=off$"

# --- NAT66 masquerade random: symmetric --------------------------------------
gw_rules <<'NFT'
table ip6 nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade random
  }
}
NFT
natcheck_out sym h --server "$SERVER" --tests mapping,filtering,ports
check "NAT66 masquerade random: address-and-port-dependent mapping: symmetric" \
  has sym "^result: address-and-port-dependent mapping / address-and-port-dependent filtering: symmetric$"
check "NAT66 masquerade random: random port allocation" row sym "port allocation" "random"
natdiscovery_out ndsym -m -L 2001:db8:1::2 -l 40002 -p 3478 2001:db8::10
check "natdiscovery behind NAT66 masquerade random: 3 answers, address-and-port-dependent mapping, as natcheck says" \
  bash -c "[ \$(grep -c 'RFC 5780 response' '$RP_TMP/ndsym.out') -eq 3 ] && grep -q 'NAT with Address and Port Dependent Mapping' '$RP_TMP/ndsym.out'"

# --- mapping lifetime over IPv6: NAT66 masquerade with a 4 s UDP timeout ------
gw_rules <<'NFT'
table ip6 nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "wan" masquerade
  }
}
NFT
nsx "$P-gw" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=4 net.netfilter.nf_conntrack_udp_timeout_stream=4
natcheck_out life h --server "$SERVER" --tests lifetime --lifetime-max 10 --lifetime-res 0.5 --json
alive=$(sed -n 's/^    "alive_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
dead=$(sed -n 's/^    "dead_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
check "NAT66 lifetime: the 4 s timeout lies in the bracket [$alive, $dead] s, at most 0.5 s wide" \
  awk -v a="${alive:-x}" -v d="${dead:-x}" 'BEGIN { exit !(a != "x" && d != "x" && a <= 4.2 && d >= 3.8 && d - a <= 0.5) }'

# --- the server saw nothing it could not parse -----------------------------------
kill -TERM "$stun_pid"; wait "$stun_pid"; rc=$?
check "meshstun: SIGTERM exits 0, nothing malformed from natcheck or natdiscovery over IPv6" \
  bash -c "[ $rc -eq 0 ] && grep -Eq 'meshstun: counters received=[1-9][0-9]* answered=[1-9][0-9]* .* malformed=0 ' '$RP_TMP/meshstun.log'"
tap_exit
