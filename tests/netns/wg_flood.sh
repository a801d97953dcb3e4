#!/usr/bin/env bash
# Handshake flood (whitepaper 5.3): thousands of initiations per second with a
# valid mac1 from 64 source addresses put meshwg under load; it answers them
# with cookie replies instead of doing Diffie-Hellman, and a legitimate peer
# still completes a new handshake meanwhile (with the cookie in its mac2).
#
#   nmt-wg-PID-a: meshwg wgaPID 100.64.0.1       nmt-wg-PID-b: wireguard-go wgbPID 100.64.0.2
#   va 192.0.2.1:51820  <======= veth =======>   vb 192.0.2.2 (the peer)
#                        <-- wgflood initiations  vb 192.0.2.10 .. 192.0.2.73 (the flood)
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note

RATE=${WG_FLOOD_RATE:-4000}
SECS=${WG_FLOOD_SECONDS:-20}

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
handshake_of_b() { nsx "$NS_A" wg show "$IF_A" latest-handshakes | awk -v k="$PUB_B" '$1 == k { print $2 }'; }

if ! wg_pair meshwg wireguard-go; then not_ok "set up"; exit 1; fi
check "tunnel up before the flood" nsx "$NS_B" ping -q -c 2 -w 10 100.64.0.1
sources=()
for i in $(seq 10 73); do nsx "$NS_B" ip addr add "192.0.2.$i/24" dev vb; sources+=("192.0.2.$i"); done
from=$(IFS=,; echo "${sources[*]}")
cookies0=$(stat cookie_replies_tx) responses0=$(stat responses_tx)

nsx "$NS_B" "$BUILD/wgflood" initiations --to 192.0.2.1:51820 --pubkey "$PUB_A" --from "$from" \
  --rate "$RATE" --seconds "$SECS" >"$WG_TMP/flood.out" 2>&1 &
flood_pid=$!
sleep 3

# both sides forget the session; B must handshake again, under the flood
t0=$(date +%s)
nsx "$NS_A" wg set "$IF_A" peer "$PUB_B" remove && wg_peer_a endpoint 192.0.2.2:51820
nsx "$NS_B" wg set "$IF_B" peer "$PUB_A" remove && wg_peer_b endpoint 192.0.2.1:51820
check "the peer completes a handshake during the flood" nsx "$NS_B" ping -q -c 1 -w $((SECS - 5)) 100.64.0.1
hs=$(handshake_of_b)
check "meshwg reports that handshake ($hs >= $t0)" test "${hs:-0}" -ge "$t0"
check "flood still running when the peer got through" kill -0 "$flood_pid"
wait "$flood_pid"
out=$(cat "$WG_TMP/flood.out"); echo "# $out"
sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$out")
got=$(sed -n 's/.*cookie_replies=\([0-9]*\).*/\1/p' <<<"$out")
check "flood rate: $((${sent:-0} / SECS)) initiations/s >= 2000" test "$((${sent:-0} / SECS))" -ge 2000
check "the flood got cookie replies ($got)" test "${got:-0}" -gt $((${sent:-0} / 2))
check "meshwg counted its cookie replies (+$(( $(stat cookie_replies_tx) - cookies0 )))" \
  test $(( $(stat cookie_replies_tx) - cookies0 )) -gt $((${sent:-0} / 2))
check "meshwg answered the peer's initiation (responses_tx +$(( $(stat responses_tx) - responses0 )))" \
  test $(( $(stat responses_tx) - responses0 )) -ge 1
check "tunnel works after the flood" nsx "$NS_A" ping -q -c 2 -w 10 100.64.0.2
check "meshwg still running" kill -0 "$PID_A"
grep ' stats ' "$WG_TMP/$IF_A.log" | tail -n 1 | sed 's/^/# /'
tap_exit
