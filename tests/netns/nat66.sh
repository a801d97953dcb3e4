#!/usr/bin/env bash
# NAT66: every nat-models preset and variant applied to an IPv6 gateway
# (udpprobe nat, the ip6 natmesh_nat table), classified from the inside by
# natcheck over IPv6 against meshstun --rfc5780, which must find exactly the
# declared mapping, filtering, port allocation, hairpinning and mapping
# lifetime; coturn's turnutils_natdiscovery, an independent RFC 5780 client,
# must agree on mapping, filtering and hairpinning. A port range is checked
# with plain UDP probes. The inside is a ULA prefix the outside has no route
# to: only a translated packet gets an answer.
#
#  PFX-h: H fd00:1::2 --- PFX-gw: lan fd00:1::1 | wan 2001:db8::1 --- PFX-s: S 2001:db8::10
#                                                                             2001:db8::20
#                                                                             2001:db8::30
#  meshstun --rfc5780 on [2001:db8::10]:3478 + [2001:db8::20]:3478 (and :3479 each);
#  udpprobe echo on [2001:db8::30]:7000 and :7001
#  (addresses with nodad: no duplicate address detection to wait for)
set -u
cd "$(dirname "$0")/../.."
. tests/netns/report_common.bash
trap rp_cleanup EXIT
trap 'exit 1' INT TERM

NC=$BUILD/natcheck
STUN=$BUILD/meshstun
PROBE=$BUILD/udpprobe
for b in "$NC" "$STUN" "$PROBE"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
P=$RP_PFX

# rp_ns turns IPv6 off; this test wants it on, without DAD and router adverts
v6_ns() {
  rp_ns "$1" || return 1
  nsx "$P-$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
}
setup() {
  local n
  for n in h gw s; do v6_ns "$n" || return 1; done
  rp_link h a0 - gw lan - && rp_link gw wan - s s0 - &&
  nsx "$P-h" ip addr add fd00:1::2/64 dev a0 nodad &&
  nsx "$P-gw" ip addr add fd00:1::1/64 dev lan nodad &&
  nsx "$P-gw" ip addr add 2001:db8::1/64 dev wan nodad &&
  for a in 10 20 30; do nsx "$P-s" ip addr add 2001:db8::$a/64 dev s0 nodad || return 1; done &&
  nsx "$P-h" ip -6 route add default via fd00:1::1 &&
  nsx "$P-gw" sysctl -qw net.ipv6.conf.all.forwarding=1 || return 1
  rp_bg meshstun s "$STUN" --rfc5780 --listen '[2001:db8::10]:3478' --listen '[2001:db8::20]:3478'
  stun_pid=${RP_PIDS[-1]}
  rp_bg echo0 s "$PROBE" echo '[2001:db8::30]:7000' --timeout-ms 0
  rp_bg echo1 s "$PROBE" echo '[2001:db8::30]:7001' --timeout-ms 0
  for _ in $(seq 50); do
    [ "$(grep -c 'listening addr=\[2001:db8::' "$RP_TMP/meshstun.log")" -eq 4 ] &&
      [ -n "$(nsx "$P-s" ss -Hlun 'sport = :7001')" ] && [ -n "$(nsx "$P-s" ss -Hlun 'sport = :7000')" ] && return 0
    sleep 0.1
  done
  return 1
}
setup || { not_ok "topology setup"; exit 1; }
ok "topology: an IPv6 gateway between fd00:1::/64 and 2001:db8::/64, meshstun --rfc5780, two echo servers"

SERVER='[2001:db8::10]:3478'
# nat MODEL: apply it on the gateway, with no conntrack entry of the model before
nat() {
  nsx "$P-gw" "$PROBE" nat "$1" --wan wan >/dev/null && nsx "$P-gw" conntrack -F -f ipv6 >/dev/null 2>&1
  nsx "$P-gw" nft list table ip6 natmesh_nat >/dev/null 2>&1
}
# natcheck_out NAME ARGS...: natcheck from the host, stdout kept
natcheck_out() {
  local name=$1; shift
  nsx "$P-h" timeout 120 "$NC" -q --rto 50 --rc 4 --server "$SERVER" "$@" >"$RP_TMP/$name.out" 2>"$RP_TMP/$name.err"
  echo $? >"$RP_TMP/$name.rc"
  sed 's/^/# /' "$RP_TMP/$name.out" "$RP_TMP/$name.err"
}
# natdiscovery_out NAME PORT ARGS...: coturn's client from the host's PORT
natdiscovery_out() {
  local name=$1 port=$2; shift 2
  nsx "$P-h" timeout 60 turnutils_natdiscovery "$@" -L fd00:1::2 -l "$port" -p 3478 2001:db8::10 \
    >"$RP_TMP/$name.out" 2>&1
  grep -E '^NAT with|hairpinning|UDP reflexive' "$RP_TMP/$name.out" | sed 's/^/# coturn: /'
}
has() { grep -q -- "$2" "$RP_TMP/$1.out"; }
row() { grep -q "^  $2 *$3" "$RP_TMP/$1.out"; }
rc_is() { [ "$(cat "$RP_TMP/$1.rc")" = "$2" ]; }
long() { case $1 in ei) echo endpoint-independent ;; ad) echo address-dependent ;; apd) echo address-and-port-dependent ;; esac; }
words() { case $1 in ei) echo "Endpoint Independent" ;; ad) echo "Address Dependent" ;; apd) echo "Address and Port Dependent" ;; esac; }

# --- the four presets: natcheck's result and findings, coturn's mapping and filtering
HAVE_COTURN=1
command -v turnutils_natdiscovery >/dev/null || { HAVE_COTURN=0; skip "turnutils_natdiscovery missing (make deps): no coturn cross-check"; }
lport=41000
preset() {	# PRESET TYPE-NAME MAPPING FILTERING PORTS, as declared
  local name=$1 type=$2 map=$3 filt=$4 ports=$5
  nat "$name" || { check "$name: NAT66 applied" false; return; }
  natcheck_out "$name" --tests mapping,filtering,hairpin,ports
  check "NAT66 $name: natcheck exits 0" rc_is "$name" 0
  check "NAT66 $name: mapped to the gateway's address [2001:db8::1]" row "$name" "mapped address" "\[2001:db8::1\]:"
  check "NAT66 $name: natcheck says $type" has "$name" "^result: $(long "$map") mapping / $(long "$filt") filtering: $type\$"
  check "NAT66 $name: findings as declared" has "$name" \
    "^findings: mapping=$(long "$map") filtering=$(long "$filt") port_allocation=$ports hairpinning=off\$"
  [ $HAVE_COTURN = 1 ] || return
  natdiscovery_out "nd-$name" $lport -m -f
  lport=$((lport + 1))
  check "NAT66 $name: coturn finds $(words "$map") Mapping and $(words "$filt") Filtering" \
    bash -c "grep -qx 'NAT with $(words "$map") Mapping!' '$RP_TMP/nd-$name.out' &&
             grep -qx 'NAT with $(words "$filt") Filtering!' '$RP_TMP/nd-$name.out'"
}
preset full-cone "full cone" ei ei preserve
preset restricted-cone "restricted cone" ei ad preserve
preset port-restricted-cone "port-restricted cone" ei apd preserve
preset symmetric "symmetric" apd apd random

# --- hairpinning on and off ---------------------------------------------------
hairpin() {	# NAME MODEL ON(on|off)
  local name=$1
  nat "$2" || { check "$name: NAT66 applied" false; return; }
  natcheck_out "hp-$name" --tests mapping,hairpin
  check "NAT66 $name: natcheck finds hairpinning=$3" has "hp-$name" "^findings: .* hairpinning=$3\$"
  [ $HAVE_COTURN = 1 ] || return
  natdiscovery_out "ndhp-$name" $lport -H
  lport=$((lport + 1))
  if [ "$3" = on ]; then
    check "NAT66 $name: coturn finds successful hairpinning" grep -q 'successful hairpinning' "$RP_TMP/ndhp-$name.out"
  else
    check "NAT66 $name: coturn's hairpin request does not come back" \
      bash -c "! grep -q 'successful hairpinning' '$RP_TMP/ndhp-$name.out'"
  fi
}
hairpin "port-restricted-cone hairpinning" '{"preset":"port-restricted-cone","hairpinning":true}' on
hairpin "symmetric hairpinning" '{"preset":"symmetric","hairpinning":true}' on
hairpin "port-restricted-cone" port-restricted-cone off

# --- mapping and port allocation variants ---------------------------------------
variant() {	# NAME MODEL FINDINGS
  nat "$2" || { check "$1: NAT66 applied" false; return; }
  local f=var-${1//[^a-zA-Z0-9]/_}
  natcheck_out "$f" --tests mapping,filtering,ports
  check "NAT66 $1: findings $3" has "$f" "^findings: $3\$"
}
variant "EIM/APDF sequential" '{"preset":"port-restricted-cone","port_allocation":"sequential"}' \
  "mapping=endpoint-independent filtering=address-and-port-dependent port_allocation=sequential"
variant "APDM sequential" '{"preset":"symmetric","port_allocation":"sequential"}' \
  "mapping=address-and-port-dependent filtering=address-and-port-dependent port_allocation=sequential"
variant "EIM/EIF random" '{"preset":"full-cone","port_allocation":"random"}' \
  "mapping=endpoint-independent filtering=endpoint-independent port_allocation=random"
variant "ADM/ADF random" '{"mapping":"address-dependent","filtering":"address-dependent","port_allocation":"random"}' \
  "mapping=address-dependent filtering=address-dependent port_allocation=random"

# --- mapping lifetime: udp_timeout 2 s ------------------------------------------
if nat '{"preset":"port-restricted-cone","udp_timeout":2}'; then
  natcheck_out life --tests lifetime --lifetime-max 5 --lifetime-res 0.5 --json
  alive=$(sed -n 's/^    "alive_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
  dead=$(sed -n 's/^    "dead_s": \([0-9.]*\),*$/\1/p' "$RP_TMP/life.out")
  check "NAT66 udp_timeout 2 s: within natcheck's lifetime bracket [$alive, $dead] s, at most 0.5 s wide" \
    awk -v a="${alive:-x}" -v d="${dead:-x}" 'BEGIN { exit !(a != "x" && d != "x" && a <= 2.2 && d >= 1.8 && d - a <= 0.5) }'
else
  check "udp_timeout 2 s: NAT66 applied" false
fi

# --- a port range: mappings inside it, a small one runs out ----------------------
mapping() { nsx "$P-h" "$PROBE" ask "$1" "$2" --timeout-ms 1000; }
port() { echo "${1##*:}"; }
if nat '{"preset":"symmetric","port_range":"40000-40003"}'; then
  s=() inside=1
  for i in 0 1 2 3; do s+=("$(port "$(mapping "[fd00:1::2]:$((43000 + i))" '[2001:db8::30]:7000')")"); done
  for p in "${s[@]}"; do [ -n "$p" ] && [ "$p" -ge 40000 ] && [ "$p" -le 40003 ] || inside=0; done
  check "NAT66 port range 40000-40003: 4 new mappings inside it (${s[*]})" [ "$inside" = 1 ]
  check "NAT66 port range 40000-40003: 4 distinct ports" [ "$(printf '%s\n' "${s[@]}" | sort -u | wc -l)" = 4 ]
  check "NAT66 port range 40000-40003: a fifth mapping to the same server finds no port" \
    bash -c "! ip netns exec '$P-h' '$PROBE' ask '[fd00:1::2]:43004' '[2001:db8::30]:7000' --timeout-ms 1000 >/dev/null 2>&1"
  m=$(mapping '[fd00:1::2]:43004' '[2001:db8::30]:7001')
  check "NAT66 port range 40000-40003: ... while another server port still gets one ($m)" \
    bash -c "[[ '$m' == '[2001:db8::1]:4000'[0-3] ]]"
else
  check "port range: NAT66 applied" false
fi

# --- the ip table is untouched by NAT66, and remove takes the ip6 table ----------
check "no ip (IPv4) natmesh_nat table on an IPv6-only WAN" bash -c "! ip netns exec '$P-gw' nft list table ip natmesh_nat >/dev/null 2>&1"
nsx "$P-gw" "$PROBE" nat --remove
check "udpprobe nat --remove deletes the ip6 table" bash -c "! ip netns exec '$P-gw' nft list table ip6 natmesh_nat >/dev/null 2>&1"

kill -TERM "$stun_pid"; wait "$stun_pid"; rc=$?
check "meshstun: SIGTERM exits 0, nothing malformed over IPv6" \
  bash -c "[ $rc -eq 0 ] && grep -Eq 'meshstun: counters received=[1-9][0-9]* answered=[1-9][0-9]* .* malformed=0 ' '$RP_TMP/meshstun.log'"
tap_exit
