#!/usr/bin/env bash
# Bad input at meshwg's port: random datagrams, truncated messages, nonzero
# reserved bytes, wrong MACs, a captured data packet replayed and the same
# packet with its tag corrupted. Each is dropped and counted (the counters of
# the "stats" log line meshwg writes on SIGUSR1), the replayed packet reaches
# the TUN once only, and the tunnel keeps working.
#
#   nmt-wg-PID-a: meshwg wgaPID 100.64.0.1     <== veth ==>  nmt-wg-PID-b: wireguard-go wgbPID 100.64.0.2
#   va 192.0.2.1:51820  <-- wgflood (junk, replay) from 192.0.2.2 --   vb 192.0.2.2
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note

# stat KEY: the counter from a fresh stats line of meshwg A
stat() {
  local n before
  before=$(grep -c ' stats ' "$WG_TMP/$IF_A.log")
  kill -USR1 "$PID_A"
  for _ in $(seq 50); do
    n=$(grep -c ' stats ' "$WG_TMP/$IF_A.log")
    [ "$n" -gt "$before" ] && break
    sleep 0.05
  done
  grep ' stats ' "$WG_TMP/$IF_A.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

ping_ok() { nsx "$1" ping -q -c 3 -i 0.2 -w 10 "$2" >/dev/null 2>&1; }
flood() { nsx "$NS_B" "$BUILD/wgflood" "$@" --to 192.0.2.1:51820; }

if ! wg_pair meshwg wireguard-go; then not_ok "set up"; exit 1; fi
check "tunnel up before the bad input" ping_ok "$NS_A" 100.64.0.2

# -- junk ----------------------------------------------------------------------
declare -A base
for k in rx_bad_type rx_bad_length rx_bad_mac rx_replay rx_bad_auth rx_unknown_index rx_data; do base[$k]=$(stat $k); done
out=$(flood junk --count 200) || not_ok "wgflood junk ran"
echo "# $out"
sleep 0.5
d() { echo $(( $(stat "$1") - ${base[$1]} )); }
dropped=$(( $(d rx_bad_type) + $(d rx_bad_length) + $(d rx_bad_mac) + $(d rx_unknown_index) ))
check "truncated messages counted (rx_bad_length +$(d rx_bad_length) >= 1200)" test "$(d rx_bad_length)" -ge 1200
check "reserved bytes set counted (rx_bad_type +$(d rx_bad_type) >= 200)" test "$(d rx_bad_type)" -ge 200
check "wrong mac1 counted (rx_bad_mac +$(d rx_bad_mac) >= 400)" test "$(d rx_bad_mac)" -ge 400
check "every junk datagram dropped and counted ($dropped >= 2000)" test "$dropped" -ge 2000
check "tunnel works after the junk" ping_ok "$NS_A" 100.64.0.2

# -- replay ----------------------------------------------------------------------
# count the echo requests of one size that reach A through the tunnel
nsx "$NS_A" nft -f - <<NFT
table inet nmtwgrx {
  counter echo_in { }
  chain in { type filter hook input priority 0; iifname "$IF_A" icmp type echo-request ip length 1228 counter name echo_in; }
}
NFT
echo_in() { nsx "$NS_A" nft list counter inet nmtwgrx echo_in | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
nsx "$NS_A" timeout 10 tcpdump -q -i va -w "$WG_TMP/data.pcap" -c 1 \
  'udp dst port 51820 and udp[8] = 4 and greater 1200' >/dev/null 2>&1 &
tcpd=$!
sleep 1
nsx "$NS_B" ping -q -c 1 -s 1200 -W 3 100.64.0.1 >/dev/null
wait $tcpd
check "one data packet captured" test -s "$WG_TMP/data.pcap"
check "the captured packet was delivered once ($(echo_in))" test "$(echo_in)" -eq 1
base[rx_replay]=$(stat rx_replay) base[rx_bad_auth]=$(stat rx_bad_auth)
ep_before=$(nsx "$NS_A" wg show "$IF_A" endpoints | awk '{ print $2 }')
flood replay --pcap "$WG_TMP/data.pcap" --times 5 >/dev/null
flood replay --pcap "$WG_TMP/data.pcap" --corrupt >/dev/null
sleep 0.5
check "replayed packet dropped and counted 5 times (rx_replay +$(d rx_replay))" test "$(d rx_replay)" -eq 5
check "forged copy (counter far ahead, tag broken) fails authentication (rx_bad_auth +$(d rx_bad_auth))" test "$(d rx_bad_auth)" -eq 1
check "the replayed packet was not delivered again ($(echo_in))" test "$(echo_in)" -eq 1
check "replays did not move the endpoint ($ep_before)" \
  test "$(nsx "$NS_A" wg show "$IF_A" endpoints | awk '{ print $2 }')" = "$ep_before"
check "tunnel works after the replays" ping_ok "$NS_B" 100.64.0.1
check "meshwg still running" kill -0 "$PID_A"
tap_exit
