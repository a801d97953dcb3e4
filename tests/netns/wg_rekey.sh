#!/usr/bin/env bash
# The rekey and reject limits in real time, against wireguard-go. Three pairs
# run at once, each a ping every PING_I s through the tunnel and a capture on
# meshwg's veth (times are taken from the capture and from ping -D, both the
# wall clock; t0 is the first handshake response on the wire):
#
#   r: meshwg initiates. Its second initiation comes REKEY_AFTER_TIME after t0
#      (on the next send), the new session carries the data, no ping is lost.
#   x: meshwg initiates, then an nft rule in B drops every handshake message
#      (types 1 and 2). meshwg retries from REKEY_AFTER_TIME on, every
#      REKEY_TIMEOUT; pings get answers until REJECT_AFTER_TIME and none after;
#      meshwg sends no data after it, and a data packet of B's replayed before
#      and after it is counted as rx_replay, then rx_expired.
#   g: wireguard-go initiates and rekeys at REKEY_AFTER_TIME; meshwg, the
#      responder, answers, moves to the new session, and initiates nothing.
#
#   nmt-wg-PIDT-a (meshwg)                          nmt-wg-PIDT-b (wireguard-go)
#   wgaPIDT 100.64.0.1 -- va 192.0.2.1 == veth == vb 192.0.2.2 -- wgbPIDT 100.64.0.2
#   tcpdump on va                                   x only: nft drops types 1, 2
#   (T: r, x, g)
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
NAP=
rk_cleanup() { [ -n "$NAP" ] && kill "$NAP" 2>/dev/null; wg_cleanup; }
trap rk_cleanup EXIT; trap 'exit 1' INT TERM
wgref_note

# WireGuard whitepaper 6.1 / kernel timers.c, in seconds
REKEY_AFTER_TIME=120 REJECT_AFTER_TIME=180 REKEY_TIMEOUT=5 KEEPALIVE_TIMEOUT=10
REKEY_JITTER=0.334	# REKEY_TIMEOUT_JITTER_MAX_JIFFIES, HZ/3, rounded up
PING_I=0.5
SLACK=1		# for one event: process scheduling, sanitizers, the capture
# how long each pair pings (the first ping starts the handshake); x goes on
# past REJECT_AFTER_TIME + KEEPALIVE_TIMEOUT, when meshwg's passive keepalive
# would be due
RUN_R=$((REKEY_AFTER_TIME + 20)) RUN_X=$((REJECT_AFTER_TIME + 2 * KEEPALIVE_TIMEOUT - 2))
ADDR_A=192.0.2.1 ADDR_B=192.0.2.2

# sleeps in the background so that INT/TERM end the wait at once
nap() { sleep "$1" & NAP=$!; wait "$NAP"; NAP=; }
# sleep_until EPOCH
sleep_until() { local d; d=$(awk -v t="$1" -v n="$(date +%s.%N)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }'); nap "$d"; }
# fcmp A OP B: float comparison
fcmp() { awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }	# to show
fdiff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }	# to compare

# packets FILE: "epoch src type sender receiver" per WireGuard message of the
# two daemons (port 51820 on both ends; the replays in x come from another port)
packets() {
  tshark -r "$1" -d udp.port==51820,wg -Y 'udp.srcport == 51820 && udp.dstport == 51820' \
    -T fields -e frame.time_epoch -e ip.src -e wg.type -e wg.sender -e wg.receiver \
    -E separator=' ' 2>/dev/null | awk '{ if (NF == 4) { $5 = $4; $4 = "-" } print }'
}
# nth N SRC TYPE AFTER FILE: the Nth message of TYPE from SRC after epoch AFTER
nth() { awk -v n="$1" -v s="$2" -v t="$3" -v a="$4" '$2 == s && $3 == t && $1 > a && ++c == n { print; exit }' "$5"; }
# count SRC TYPE FROM TO FILE: messages of TYPE from SRC in [FROM, TO)
count() { awk -v s="$1" -v t="$2" -v f="$3" -v e="$4" '$2 == s && $3 == t && $1 >= f && $1 < e { c++ } END { print c + 0 }' "$5"; }
# last_time SRC TYPE FILE
last_time() { awk -v s="$1" -v t="$2" '$2 == s && $3 == t { l = $1 } END { printf "%.6f", l }' "$3"; }
# data_on SRC RECEIVER FROM TO FILE: "on other" data messages from SRC in
# [FROM, TO), to RECEIVER and to any other index
data_on() {
  awk -v s="$1" -v r="$2" -v f="$3" -v e="$4" '$2 == s && $3 == 4 && $1 >= f && $1 < e { if ($5 == r) on++; else other++ }
    END { print on + 0, other + 0 }' "$5"
}

# wgstat IFNAME KEY: KEY from meshwg's latest SIGUSR1 stats line
wgstat() { grep ' stats ' "$WG_TMP/$1.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# stats_now PID IFNAME: asks for a stats line and waits for it
stats_now() {
  local n; n=$(grep -c ' stats ' "$WG_TMP/$2.log")
  kill -USR1 "$1"
  for _ in $(seq 50); do [ "$(grep -c ' stats ' "$WG_TMP/$2.log")" -gt "$n" ] && return 0; sleep 0.05; done
  return 1
}

# pings_in SECONDS: how many pings go out in that time
pings_in() { awk -v s="$1" -v i="$PING_I" 'BEGIN { print int(s / i) }'; }
# ping_summary FILE: "transmitted received"
ping_summary() { sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$1"; }

# pair T: a meshwg(A) <-> wireguard-go(B) pair named by T, capturing on va;
# its names, keys and pid in R_*[T]
declare -A R_NSA R_NSB R_IFA R_IFB R_PUBA R_PUBB R_PIDA R_CAP
pair() {
  local t=$1
  wg_names "$t"
  wg_pair meshwg wireguard-go || return 1
  R_NSA[$t]=$NS_A R_NSB[$t]=$NS_B R_IFA[$t]=$IF_A R_IFB[$t]=$IF_B
  R_PUBA[$t]=$PUB_A R_PUBB[$t]=$PUB_B R_PIDA[$t]=$PID_A
  nsx "$NS_A" tcpdump -i va -n -U -w "$WG_TMP/$t.pcap" udp 2>"$WG_TMP/$t.tcpdump" &
  R_CAP[$t]=$!
  for _ in $(seq 100); do grep -qs 'listening on' "$WG_TMP/$t.tcpdump" && return 0; sleep 0.05; done
  return 1
}

for t in r x g; do
  pair "$t" || { not_ok "pair $t: set up"; exit 1; }
done

# pings: r and x from meshwg's side, g from wireguard-go's (it initiates)
nsx "${R_NSA[r]}" ping -n -D -i "$PING_I" -w "$RUN_R" 100.64.0.2 >"$WG_TMP/r.ping" 2>&1 & PING_R=$!
nsx "${R_NSA[x]}" ping -n -D -i "$PING_I" -w "$RUN_X" 100.64.0.2 >"$WG_TMP/x.ping" 2>&1 & PING_X=$!
nsx "${R_NSB[g]}" ping -n -D -i "$PING_I" -w "$RUN_R" 100.64.0.1 >"$WG_TMP/g.ping" 2>&1 & PING_G=$!

# x: block every handshake once the first session is there
for _ in $(seq 100); do
  [ "$(nsx "${R_NSA[x]}" wg show "${R_IFA[x]}" latest-handshakes | awk '{ print $2 }')" -gt 0 ] 2>/dev/null && break
  sleep 0.05
done
check "x: the first handshake completed" \
  test "$(nsx "${R_NSA[x]}" wg show "${R_IFA[x]}" latest-handshakes | awk '{ print $2 }')" -gt 0
nsx "${R_NSB[x]}" nft -f - <<'NFT'
table inet nmtrk {
  chain in { type filter hook input priority 0; udp dport 51820 @th,64,8 { 1, 2 } drop; }
  chain out { type filter hook output priority 0; udp sport 51820 @th,64,8 { 1, 2 } drop; }
}
NFT
check "x: nft drops handshake messages in B" test $? -eq 0
HS_X=$(nsx "${R_NSA[x]}" wg show "${R_IFA[x]}" latest-handshakes | awk '{ print $2 }')
# the capture is written as packets come; the response may lag a little
for _ in $(seq 50); do
  packets "$WG_TMP/x.pcap" >"$WG_TMP/x.early"
  T0_X=$(nth 1 "$ADDR_B" 2 0 "$WG_TMP/x.early" | cut -d' ' -f1)
  [ -n "$T0_X" ] && break
  sleep 0.1
done
[ -n "$T0_X" ] || { not_ok "x: the first response is in the capture"; exit 1; }

# x: one data message of B's, replayed (from another port) before and after
# REJECT_AFTER_TIME: the replay window refuses the first, the age the second
replay_x() {
  local hex
  hex=$(tshark -r "$WG_TMP/x.pcap" -d udp.port==51820,wg -c 200 \
    -Y "ip.src == $ADDR_B && udp.srcport == 51820 && wg.type == 4" -T fields -e udp.payload 2>/dev/null | sed -n 2p)
  [ -n "$hex" ] || return 1
  nsx "${R_NSB[x]}" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("192.0.2.2", 40000))
s.sendto(bytes.fromhex(sys.argv[1]), ("192.0.2.1", 51820))' "$hex"
}
# r and g are checked up to the end of their pings: after it, wireguard-go
# 0.0.20250522 (not 0.0.20220316) initiates once more, KEEPALIVE_TIMEOUT +
# REKEY_TIMEOUT after its last ping although meshwg's reply came 0.3 ms
# later and its own passive keepalive 10 s on says it took the reply (as the
# capture reads, its new-handshake timer is armed after the send, once the
# reply has already stopped it)
wait "$PING_R" "$PING_G"
END_RG=$(date +%s.%N)
stats_now "${R_PIDA[r]}" "${R_IFA[r]}"; stats_now "${R_PIDA[g]}" "${R_IFA[g]}"

sleep_until "$(awk -v t="$T0_X" -v r="$REJECT_AFTER_TIME" 'BEGIN { printf "%.3f", t + r - 4 }')"
replay_x; rc1=$?
sleep 0.2
stats_now "${R_PIDA[x]}" "${R_IFA[x]}"
REPLAY1=$(wgstat "${R_IFA[x]}" rx_replay) EXPIRED1=$(wgstat "${R_IFA[x]}" rx_expired)
sleep_until "$(awk -v t="$T0_X" -v r="$REJECT_AFTER_TIME" -v s="$SLACK" 'BEGIN { printf "%.3f", t + r + 2 * s }')"
replay_x; rc2=$?
sleep 0.2
stats_now "${R_PIDA[x]}" "${R_IFA[x]}"
REPLAY2=$(wgstat "${R_IFA[x]}" rx_replay) EXPIRED2=$(wgstat "${R_IFA[x]}" rx_expired)

wait "$PING_X"
sleep 0.5
for t in r x g; do
  kill "${R_CAP[$t]}" 2>/dev/null; wait "${R_CAP[$t]}" 2>/dev/null
  packets "$WG_TMP/$t.pcap" >"$WG_TMP/$t.pk"
done
stats_now "${R_PIDA[x]}" "${R_IFA[x]}"

# ---- r and g: the rekey ------------------------------------------------------
# rekey_checks T INITIATOR RESPONDER WHO: WHO (the initiator's name) rekeys
rekey_checks() {
  local t=$1 ini=$2 resp=$3 who=$4 f="$WG_TMP/$1.pk" t0 i2 ti2 r2 tr2 hi lo sent recv on other
  t0=$(nth 1 "$resp" 2 0 "$f" | cut -d' ' -f1)
  [ -n "$t0" ] || { not_ok "$t: the first response is in the capture"; return; }
  i2=$(nth 1 "$ini" 1 "$t0" "$f")
  ti2=${i2%% *}
  hi=$(awk -v a="$REKEY_AFTER_TIME" -v b="$PING_I" -v c="$SLACK" 'BEGIN { print a + b + c }')
  check "$t: $who's second initiation $(fsub "${ti2:-0}" "$t0") s after the first session (REKEY_AFTER_TIME on the next send: $REKEY_AFTER_TIME-$hi s)" \
    eval 'test -n "$ti2" && fcmp "$(fdiff "$ti2" "$t0")" ">=" "$REKEY_AFTER_TIME" && fcmp "$(fdiff "$ti2" "$t0")" "<=" "$hi"'
  r2=$(nth 1 "$resp" 2 "${ti2:-0}" "$f")
  tr2=${r2%% *}
  local dt="no response"
  [ -n "$tr2" ] && dt="in $(awk -v a="$tr2" -v b="$ti2" 'BEGIN { printf "%.1f", (a - b) * 1000 }') ms"
  check "$t: the rekey was answered ($dt)" \
    eval 'test -n "$tr2" && fcmp "$(fdiff "$tr2" "$ti2")" "<" "$SLACK"'
  [ -n "$tr2" ] || return
  # (type sender receiver) of the new response: the initiator sends to its
  # sender index, the responder to its receiver index
  read -r _ _ _ rs rr <<<"$r2"
  lo=$(awk -v a="$tr2" -v c="$SLACK" 'BEGIN { printf "%.6f", a + c }')
  read -r on other < <(data_on "$ini" "$rs" "$lo" "$END_RG" "$f")
  check "$t: $ini's data after the rekey on the new session: $on messages, $other on the old" \
    test "$on" -ge 10 -a "$other" -eq 0
  read -r on other < <(data_on "$resp" "$rr" "$lo" "$END_RG" "$f")
  check "$t: $resp's data after the rekey on the new session: $on messages, $other on the old" \
    test "$on" -ge 10 -a "$other" -eq 0
  # a veth drops nothing, and both sides keep the old session until the new
  # one is confirmed (5.4.5, 6.3), so no ping may be lost
  read -r sent recv < <(ping_summary "$WG_TMP/$t.ping")
  check "$t: no ping lost across the rekey ($recv of $sent answered)" \
    test "${sent:-0}" -ge "$(pings_in $((REKEY_AFTER_TIME + 10)))" -a "${sent:-0}" = "${recv:-x}"
}
rekey_checks r "$ADDR_A" "$ADDR_B" meshwg
check "r: meshwg counted 2 initiations sent, 2 responses, nothing expired" \
  test "$(wgstat "${R_IFA[r]}" initiations_tx)/$(wgstat "${R_IFA[r]}" responses_rx)/$(wgstat "${R_IFA[r]}" rx_expired)" = 2/2/0

rekey_checks g "$ADDR_B" "$ADDR_A" wireguard-go
check "g: meshwg, the responder, initiated nothing ($(count "$ADDR_A" 1 0 1e12 "$WG_TMP/g.pk") initiations)" \
  test "$(count "$ADDR_A" 1 0 1e12 "$WG_TMP/g.pk")" -eq 0
check "g: meshwg counted 2 initiations received, 2 responses sent, nothing expired" \
  test "$(wgstat "${R_IFA[g]}" initiations_rx)/$(wgstat "${R_IFA[g]}" responses_tx)/$(wgstat "${R_IFA[g]}" rx_expired)" = 2/2/0
T0_G=$(nth 1 "$ADDR_A" 2 0 "$WG_TMP/g.pk" | cut -d' ' -f1)
HS_G=$(nsx "${R_NSA[g]}" wg show "${R_IFA[g]}" latest-handshakes | awk '{ print $2 }')
check "g: wg show on meshwg: latest handshake $(fsub "${HS_G:-0}" "${T0_G:-0}") s after the first (whole seconds)" \
  fcmp "$(fdiff "${HS_G:-0}" "${T0_G:-0}")" ">=" $((REKEY_AFTER_TIME - 1))

# ---- x: rekey attempts and the reject limit ------------------------------------
f="$WG_TMP/x.pk"
t1=$(nth 1 "$ADDR_A" 1 "$T0_X" "$f" | cut -d' ' -f1)
hi=$(awk -v a="$REKEY_AFTER_TIME" -v b="$PING_I" -v c="$SLACK" 'BEGIN { print a + b + c }')
check "x: meshwg's first rekey attempt $(fsub "${t1:-0}" "$T0_X") s after the session ($REKEY_AFTER_TIME-$hi s)" \
  eval 'test -n "$t1" && fcmp "$(fdiff "$t1" "$T0_X")" ">=" "$REKEY_AFTER_TIME" && fcmp "$(fdiff "$t1" "$T0_X")" "<=" "$hi"'
# then one every REKEY_TIMEOUT (the retransmit timer, + up to the jitter) or
# at the first ping past REKEY_TIMEOUT, whichever is first
n=$(count "$ADDR_A" 1 "$(awk -v t="$T0_X" -v r="$REKEY_AFTER_TIME" 'BEGIN { printf "%.6f", t + r }')" \
  "$(awk -v t="$T0_X" -v r="$REJECT_AFTER_TIME" 'BEGIN { printf "%.6f", t + r }')" "$f")
nmin=$(awk -v a="$REKEY_AFTER_TIME" -v j="$REJECT_AFTER_TIME" -v k="$REKEY_TIMEOUT" -v p="$PING_I" -v x="$REKEY_JITTER" -v s="$SLACK" \
  'BEGIN { g = k + (p > x ? p : x) + s / 10; print 1 + int((j - (a + p + s)) / g) }')
nmax=$((1 + (REJECT_AFTER_TIME - REKEY_AFTER_TIME) / REKEY_TIMEOUT))
check "x: meshwg retried the handshake every REKEY_TIMEOUT until REJECT_AFTER_TIME: $n initiations ($nmin-$nmax)" \
  test "$n" -ge "$nmin" -a "$n" -le "$nmax"
check "x: no handshake got through (latest handshake unchanged on meshwg, no second response)" \
  test "$(nsx "${R_NSA[x]}" wg show "${R_IFA[x]}" latest-handshakes | awk '{ print $2 }')" = "$HS_X" \
    -a "$(count "$ADDR_B" 2 0 1e12 "$f")" -eq 1
late=$(awk -v t="$T0_X" -v r="$REJECT_AFTER_TIME" 'BEGIN { printf "%.6f", t + r }')
check "x: meshwg still initiates after REJECT_AFTER_TIME (pings staged): $(count "$ADDR_A" 1 "$late" 1e12 "$f")" \
  test "$(count "$ADDR_A" 1 "$late" 1e12 "$f")" -ge 1

# pings: answered without a gap up to just before REJECT_AFTER_TIME, none after
read -r last_seq last_t nrep < <(sed -n 's/^\[\([0-9.]*\)\] .*icmp_seq=\([0-9]*\) .*/\1 \2/p' "$WG_TMP/x.ping" |
  awk '{ if ($2 > s) s = $2; t = $1; n++ } END { printf "%d %.6f %d\n", s, t, n }')
read -r sent recv < <(ping_summary "$WG_TMP/x.ping")
lo=$((REJECT_AFTER_TIME - 2)) hi=$((REJECT_AFTER_TIME + SLACK))
check "x: the last ping answered $(fsub "$last_t" "$T0_X") s after the session ($lo-$hi s)" \
  eval 'fcmp "$(fdiff "$last_t" "$T0_X")" ">=" "$lo" && fcmp "$(fdiff "$last_t" "$T0_X")" "<=" "$hi"'
check "x: every ping before it answered ($nrep answers, up to icmp_seq=$last_seq), then $((sent - recv)) unanswered" \
  test "$nrep" -eq "$last_seq" -a "$recv" -eq "$nrep" -a $((sent - recv)) -ge "$(pings_in $((RUN_X - REJECT_AFTER_TIME - 2 * SLACK)))"
lt=$(last_time "$ADDR_A" 4 "$f")
check "x: meshwg's last data message $(fsub "$lt" "$T0_X") s after the session ($((REJECT_AFTER_TIME - 1))-$hi s): it sends nothing on an expired session" \
  eval 'fcmp "$(fdiff "$lt" "$T0_X")" ">=" "$((REJECT_AFTER_TIME - 1))" && fcmp "$(fdiff "$lt" "$T0_X")" "<=" "$hi"'
echo "# x: wireguard-go's last data message $(fsub "$(last_time "$ADDR_B" 4 "$f")" "$T0_X") s after the session"
check "x: a replayed data message before REJECT_AFTER_TIME counted as a replay (rx_replay=$REPLAY1 rx_expired=$EXPIRED1)" \
  test $rc1 -eq 0 -a "${REPLAY1:-0}" -eq 1 -a "${EXPIRED1:-1}" -eq 0
check "x: the same message after it counted as expired (rx_replay=$REPLAY2 rx_expired=$EXPIRED2)" \
  test $rc2 -eq 0 -a "${REPLAY2:-0}" -eq 1 -a "${EXPIRED2:-0}" -eq 1

for t in r x g; do check "$t: meshwg still running" kill -0 "${R_PIDA[$t]}"; done
tap_exit
