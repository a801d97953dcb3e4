#!/usr/bin/env bash
# traversal-report on captures of real traffic between wireguard-go peers:
# a direct pair (A behind a masquerading NAT, C public; A first tries a dead
# candidate) and a relayed pair (A and B behind NATs, B's NAT symmetric; A's
# direct attempt at B fails, then A and B talk through the relay R). Then the
# same captures truncated and corrupted (a corrupt record header or garbage
# between records is skipped over to the next record). Every expectation
# that has an independent source is checked against tshark's reading of the
# same files.
#
#  PFX-a: A 10.0.1.2 --- PFX-na: 10.0.1.1 | 203.0.113.1 masquerade ---+
#  PFX-b: B 10.0.2.2 --- PFX-nb: 10.0.2.1 | 203.0.113.2 masq random --+-- PFX-i
#                             PFX-r: R 203.0.113.3 (relay, forwards) --+   (bridge
#                             PFX-c: C 203.0.113.4 (peer, meshstun) ---+  203.0.113/24)
#  tunnel: A 10.99.0.1, B 10.99.0.2, R 10.99.0.3, C 10.99.0.4
set -u
cd "$(dirname "$0")/../.."
. tests/netns/report_common.bash
trap rp_cleanup EXIT

TR=$BUILD/traversal-report
STUN=$BUILD/meshstun
for b in "$TR" "$STUN"; do
  [ -x "$b" ] || { not_ok "$b is built"; exit 1; }
done
HAVE_TSHARK=$(command -v tshark)
# tcheck: a check whose expectation comes from tshark, skipped without it
# reach_and_report NAME WHAT IP TRIES DIR: A pings IP through the tunnel (up
# to TRIES seconds, then 3 more), the captures stop, and traversal-report
# reads DIR into $RP_TMP/NAME.txt and NAME.json
reach_and_report() {
  local ok=0 i rc
  for i in $(seq "$4"); do
    nsx "$P-a" ping -c 1 -W 1 "$3" >/dev/null 2>&1 && { ok=1; break; }
  done
  nsx "$P-a" ping -c 3 -i 0.2 "$3" >/dev/null 2>&1
  sleep 0.3
  rp_stop_captures
  check "$1: $2" test $ok = 1
  "$TR" "$5" >"$RP_TMP/$1.txt" 2>&1; rc=$?
  "$TR" --json "$5" >"$RP_TMP/$1.json" 2>"$RP_TMP/$1.err"
  check "$1: traversal-report exits 0 ($rc)" test $rc = 0
  sed 's/^/# /' "$RP_TMP/$1.txt"
}

tcheck() {
  if [ -n "$HAVE_TSHARK" ]; then check "$@"; else skip "$1 (tshark is not installed)"; fi
}
[ -n "$WG_GO" ] || { not_ok "wireguard-go is installed ($WG_GO_WHY)"; exit 1; }
wgref_note
for t in wg tcpdump nft turnutils_stunclient; do
  command -v "$t" >/dev/null || { not_ok "$t is installed"; exit 1; }
done

P=$RP_PFX
W=w$$		# interface name stem: wireguard-go's UAPI socket path is global

# --- topology -------------------------------------------------------------
for n in a na b nb i r c; do rp_ns "$n" || { not_ok "namespaces"; exit 1; }; done
nsx "$P-i" ip link add br0 type bridge
nsx "$P-i" ip link set br0 up
rp_link a  a0  10.0.1.2/24   na n0  10.0.1.1/24
rp_link b  b0  10.0.2.2/24   nb n0  10.0.2.1/24
rp_link na n1  203.0.113.1/24 i pna -
rp_link nb n1  203.0.113.2/24 i pnb -
rp_link r  r0  203.0.113.3/24 i pr  -
rp_link c  c0  203.0.113.4/24 i pc  -
for p in pna pnb pr pc; do nsx "$P-i" ip link set "$p" master br0; done
nsx "$P-a" ip route add default via 10.0.1.1
nsx "$P-b" ip route add default via 10.0.2.1
for n in na nb r; do nsx "$P-$n" sysctl -qw net.ipv4.ip_forward=1; done
rp_masquerade na n1 "" && rp_masquerade nb n1 random || { not_ok "nftables NATs"; exit 1; }

for n in a b r c; do
  wg genkey >"$RP_TMP/$n.key"
  wg pubkey <"$RP_TMP/$n.key" >"$RP_TMP/$n.pub"
done
pub() { cat "$RP_TMP/$1.pub"; }
rp_wg a "${W}a" 10.99.0.1/24 "$RP_TMP/a.key" &&
rp_wg b "${W}b" 10.99.0.2/24 "$RP_TMP/b.key" &&
rp_wg r "${W}r" 10.99.0.3/24 "$RP_TMP/r.key" &&
rp_wg c "${W}c" 10.99.0.4/24 "$RP_TMP/c.key" || { not_ok "wireguard-go interfaces"; exit 1; }
rp_bg meshstun c "$STUN" --listen 203.0.113.4:3478

# first_epoch FILTER FILE...: earliest frame time (epoch) matching FILTER, via tshark
first_epoch() {
  local filter=$1 f; shift
  for f in "$@"; do
    tshark -r "$f" -Y "$filter" -T fields -e frame.time_epoch 2>/dev/null
  done | sort -n | head -n 1
}
# close A B [TOL]: |A - B| <= TOL seconds
close() { awk -v a="$1" -v b="$2" -v t="${3:-0.000002}" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; }

# report_t0 FILE: epoch of the report's t=0 from its JSON
report_t0() {
  local v
  v=$(sed -n 's/^  "t0_ns": \([0-9]*\),$/\1/p' "$1")
  [ ${#v} -gt 9 ] && echo "${v::-9}.${v: -9}"
}

# --- 1: direct pair A <-> C ----------------------------------------------
D=$RP_TMP/direct; mkdir -p "$D"
rp_capture a  a0  "$D/link-a-na.pcap"
rp_capture na any "$D/gw-na-any.pcap"		# both sides of the NAT: Linux cooked
rp_capture c  c0  "$D/link-c-i.pcap"
nsx "$P-c" wg set "${W}c" peer "$(pub a)" allowed-ips 10.99.0.1/32
# A's first candidate for C is dead, the second is C's address
nsx "$P-a" wg set "${W}a" peer "$(pub c)" allowed-ips 10.99.0.4/32 endpoint 203.0.113.99:51820
nsx "$P-a" timeout 5 turnutils_stunclient -p 3478 203.0.113.4 >"$RP_TMP/stunclient-a.log" 2>&1
nsx "$P-a" ping -c 1 -W 1 10.99.0.4 >/dev/null 2>&1
nsx "$P-a" wg set "${W}a" peer "$(pub c)" endpoint 203.0.113.4:51820
reach_and_report direct "A reaches C through the tunnel" 10.99.0.4 20 "$D"
check "direct: pair A <-> C is direct with winning candidate 203.0.113.4:51820" \
  grep -q "direct, winning candidate 203.0.113.4:51820 (A -> B), first data at" "$RP_TMP/direct.txt"
check "direct: the dead candidate 203.0.113.99:51820 is listed as unanswered" \
  grep -q "handshake initiation 0x[0-9a-f]* to candidate 203.0.113.99:51820.*: no answer" "$RP_TMP/direct.txt"
# with the peers' keys, mac1 proves whom the dead candidate's initiation was
# for (C); a key nobody used proves nothing and leaves the inference
"$TR" --key "$(pub a)=A" --key "$(pub c)=C" "$D" >"$RP_TMP/direct-keys.txt" 2>&1
"$TR" --json --key "$(pub a)=A" --key "$(pub c)=C" "$D" >"$RP_TMP/direct-keys.json" 2>/dev/null
check "direct, --key: the dead candidate's initiation is proven by mac1 to be for C" \
  grep -q "A -> B .*handshake initiation 0x[0-9a-f]* to candidate 203.0.113.99:51820 (no host there; peer proven by mac1, key C): no answer" "$RP_TMP/direct-keys.txt"
check "direct, --key: the keys' labels name the peers that answered with them" \
  grep -q "^pair A (10.0.1.2:51820) <-> C (203.0.113.4:51820): direct" "$RP_TMP/direct-keys.txt"
check "direct, --key: JSON says peer_by_mac1 for it, and names the key of every initiation" \
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ev = [e for p in d["pairs"] for e in p.get("events", []) if e.get("type") == "handshake-initiation"]
dead = [e for e in ev if e["candidate"] == "203.0.113.99:51820"]
sys.exit(not (dead and all(e["peer_by_mac1"] and not e["peer_inferred"] for e in dead)
              and all(e["mac1_key"] == "C" for e in ev if e["from"] == "A")))' "$RP_TMP/direct-keys.json"
"$TR" --key "$(wg genkey | wg pubkey)=X" "$D" >"$RP_TMP/direct-wrongkey.txt" 2>&1
check "direct, a key no message used: the dead candidate is still only inferred" \
  grep -q "to candidate 203.0.113.99:51820 (no host there; peer taken from the next attempt): no answer" "$RP_TMP/direct-wrongkey.txt"
# tshark's WireGuard dissector checks mac1 against the keys it is given
# (wg.receiver_pubkey): its receiver for the initiation to the dead
# candidate must be C's key too
wg_receiver=$(tshark -r "$D/link-a-na.pcap" -o "uat:wg_keys:\"Public\",\"$(pub c)\"" \
  -Y 'wg.type == 1 && ip.dst == 203.0.113.99' -T fields -e wg.receiver_pubkey 2>/dev/null | sort -u)
tcheck "direct, --key: tshark finds C's key in the mac1 of the dead candidate's initiation ($wg_receiver)" \
  test "$wg_receiver" = "$(pub c)"
check "direct: the NAT translation of A's WireGuard socket is found" \
  grep -q "10.0.1.2:51820 -> 203.0.113.1:[0-9]*  (wireguard" "$RP_TMP/direct.txt"
check "direct: A's STUN probe is answered with its mapped address" \
  grep -q "STUN success from 203.0.113.4:3478: mapped 203.0.113.1:" "$RP_TMP/direct.txt"
# the first data packet by tshark: WireGuard transport data with a payload
t_data=$(first_epoch 'wg.type == 4 && udp.length > 40' "$D"/*.pcap)
t_first=$(first_epoch 'wg || stun' "$D"/*.pcap)
t0=$(report_t0 "$RP_TMP/direct.json")
rep=$(sed -n 's/.*direct, winning candidate .*, first data at +\([0-9.]*\) s$/\1/p' "$RP_TMP/direct.txt" | head -n 1)
tcheck "direct: t=0 is the first STUN/WireGuard frame tshark sees ($t0 vs $t_first)" close "$t0" "$t_first"
tcheck "direct: first data time +$rep s equals tshark's first data frame" \
  close "$(awk -v a="$t0" -v b="$rep" 'BEGIN { printf "%.9f", a + b }')" "$t_data"

# the captures are standard: tshark's own dissectors find both protocols
for f in "$D/link-a-na.pcap" "$D/link-c-i.pcap" "$D/gw-na-any.pcap"; do
  tcheck "tshark decodes WireGuard in $(basename "$f")" test "$(tshark -r "$f" -Y wg 2>/dev/null | wc -l)" -gt 0
  tcheck "tshark decodes STUN in $(basename "$f")" test "$(tshark -r "$f" -Y stun 2>/dev/null | wc -l)" -gt 0
done

# --- 2: relayed pair A <-> R <-> B ---------------------------------------
R=$RP_TMP/relayed; mkdir -p "$R"
rp_capture a  a0  "$R/link-a-na.pcap"
rp_capture na n1  "$R/link-na-i.pcap"
rp_capture b  b0  "$R/link-b-nb.pcap"
rp_capture nb n1  "$R/link-nb-i.pcap"
rp_capture r  r0  "$R/link-r-i.pcap"
rp_capture r  "${W}r" "$R/tunnel-r.pcap" icmp	# inner packets: raw IP
nsx "$P-a" wg set "${W}a" peer "$(pub c)" remove
nsx "$P-r" wg set "${W}r" peer "$(pub a)" allowed-ips 10.99.0.1/32 peer "$(pub b)" allowed-ips 10.99.0.2/32
nsx "$P-b" wg set "${W}b" peer "$(pub r)" allowed-ips 10.99.0.0/24 endpoint 203.0.113.3:51820
# B learns its mapping, then opens its NAT towards R
nsx "$P-b" timeout 5 turnutils_stunclient -p 3478 203.0.113.4 >"$RP_TMP/stunclient-b.log" 2>&1
nsx "$P-b" ping -c 1 -W 2 10.99.0.3 >/dev/null 2>&1
# A tries B directly at B's NAT address with its own port: a symmetric NAT drops it
nsx "$P-a" wg set "${W}a" peer "$(pub b)" allowed-ips 10.99.0.2/32 endpoint 203.0.113.2:51820 \
  peer "$(pub r)" allowed-ips 10.99.0.3/32 endpoint 203.0.113.3:51820
nsx "$P-a" ping -c 1 -W 1 10.99.0.2 >/dev/null 2>&1
# give up on direct: B's tunnel address moves to the relay
nsx "$P-a" wg set "${W}a" peer "$(pub b)" remove
nsx "$P-a" wg set "${W}a" peer "$(pub r)" allowed-ips 10.99.0.2/32,10.99.0.3/32
reach_and_report relayed "A reaches B through R" 10.99.0.2 10 "$R"
check "relayed: pair 10.0.1.2:51820 <-> 10.0.2.2:51820 is relayed" \
  grep -q "^pair 10.0.1.2:51820 <-> 10.0.2.2:51820: relayed" "$RP_TMP/relayed.txt"
check "relayed: the relay is R 203.0.113.3:51820" \
  grep -q "relayed via 203.0.113.3:51820, first data at" "$RP_TMP/relayed.txt"
check "relayed: why: the direct candidate 203.0.113.2:51820 got no answer, B's NAT is endpoint-dependent" \
  grep -q "why: 1 direct handshake initiation got no answer (candidates 203.0.113.2:51820); .*endpoint-dependent mapping" "$RP_TMP/relayed.txt"
# the first relayed packet by tshark: the first ICMP A -> B on R's tunnel interface
t_inner=$(first_epoch 'ip.src == 10.99.0.1 && ip.dst == 10.99.0.2' "$R/tunnel-r.pcap")
t0=$(report_t0 "$RP_TMP/relayed.json")
rep=$(sed -n 's/.*relayed via .*, first data at +\([0-9.]*\) s$/\1/p' "$RP_TMP/relayed.txt" | head -n 1)
tcheck "relayed: first relayed data +$rep s is when R decrypted A's first packet for B (tshark, within 5 ms)" \
  close "$(awk -v a="$t0" -v b="$rep" 'BEGIN { printf "%.9f", a + b }')" "$t_inner" 0.005
check "relayed: B's symmetric NAT mapping is followed to B" \
  grep -q "10.0.2.2:51820 -> 203.0.113.2:[0-9]*  (wireguard" "$RP_TMP/relayed.txt"

# --- 3: damaged captures -------------------------------------------------
X=$RP_TMP/damaged; mkdir -p "$X"
src=$R/link-a-na.pcap
# record offsets, walked by hand: a 24-byte file header, then per record a
# 16-byte header whose third word (little endian here) is the captured length
size=$(stat -c %s "$src")
caplens=(); offs=(); off=24
while [ $((off + 16)) -le "$size" ]; do
  l=$(od -An -tu4 -j $((off + 8)) -N4 "$src" | tr -d ' ')
  offs+=("$off"); caplens+=("$l"); off=$((off + 16 + l))
done
n=${#caplens[@]}
check "damaged: the $n records end at the file size" test "$off" = "$size"
if [ -n "$HAVE_TSHARK" ]; then
  check "damaged: tshark counts the same $n records" test "$(tshark -r "$src" 2>/dev/null | wc -l)" = "$n"
fi

head -c $((size - 10)) "$src" >"$X/truncated.pcap"
"$TR" "$X/truncated.pcap" >"$RP_TMP/trunc.txt" 2>&1; rc=$?
check "truncated: exits 1" test $rc = 1
check "truncated: names the file and the offset of the last record (${offs[n - 1]})" \
  grep -q "truncated.pcap: read error at byte offset ${offs[n - 1]}:" "$RP_TMP/trunc.txt"
check "truncated: still reports the $((n - 1)) records before it" \
  grep -q "truncated.pcap: $((n - 1)) records" "$RP_TMP/trunc.txt"

k=$((n / 2))
cp "$src" "$X/badlen.pcap"
# caplen of record k := 0x7fffffff
printf '\xff\xff\xff\x7f' | dd of="$X/badlen.pcap" bs=1 seek=$((offs[k] + 8)) conv=notrunc status=none
"$TR" "$X/badlen.pcap" "$D/link-c-i.pcap" >"$RP_TMP/badlen.txt" 2>&1; rc=$?
"$TR" --json "$X/badlen.pcap" >"$RP_TMP/badlen.json" 2>/dev/null
skipped=$((offs[k + 1] - offs[k]))
check "corrupt length: exits 1" test $rc = 1
check "corrupt length: warns with the file, offset ${offs[k]}, resumed at ${offs[k + 1]}, $skipped bytes skipped" \
  grep -q "badlen.pcap: warning: corrupt record header at byte offset ${offs[k]} (captured length 2147483647 above the snaplen [0-9]*), resumed at byte offset ${offs[k + 1]}: $skipped bytes skipped" "$RP_TMP/badlen.txt"
check "corrupt length: no read error, the file is read to its end" \
  bash -c "! grep -q 'badlen.pcap: read error' '$RP_TMP/badlen.txt'"
check "corrupt length: counts the $k records before it and the $((n - k - 1)) after it, and reads the other file" \
  bash -c "grep -q 'badlen.pcap: $((n - 1)) records, .*, 1 damaged record header skipped over ($skipped bytes)' '$RP_TMP/badlen.txt' && grep -q '^pair ' '$RP_TMP/badlen.txt'"
check "corrupt length: the JSON has the resync (1, $skipped bytes, ${offs[k]} -> ${offs[k + 1]})" \
  bash -c "grep -q '\"records\": $((n - 1)),' '$RP_TMP/badlen.json' && grep -q '\"resyncs\": 1,' '$RP_TMP/badlen.json' &&
    grep -q '\"skipped_bytes\": $skipped,' '$RP_TMP/badlen.json' && grep -q '\"offset\": ${offs[k]},' '$RP_TMP/badlen.json' &&
    grep -q '\"resumed_offset\": ${offs[k + 1]},' '$RP_TMP/badlen.json'"

# 37 bytes of garbage between two records: exactly those are skipped
{ head -c "${offs[k]}" "$src"; printf '\xff%.0s' $(seq 37); tail -c +$((offs[k] + 1)) "$src"; } >"$X/garbage.pcap"
"$TR" "$X/garbage.pcap" >"$RP_TMP/garbage.txt" 2>&1; rc=$?
check "garbage: exits 1, warns at ${offs[k]}, resumes at $((offs[k] + 37)), 37 bytes skipped" \
  bash -c "[ $rc = 1 ] && grep -q 'garbage.pcap: warning: corrupt record header at byte offset ${offs[k]} (.*), resumed at byte offset $((offs[k] + 37)): 37 bytes skipped' '$RP_TMP/garbage.txt'"
check "garbage: all $n records are read" grep -q "garbage.pcap: $n records" "$RP_TMP/garbage.txt"

# flipped bytes inside packets (not headers): read to the end, no crash
cp "$src" "$X/flipped.pcap"
for j in $(seq 0 $((n - 1))); do
  [ "${caplens[j]}" -gt 60 ] || continue
  printf '\x5a\xa5\x00\xff' | dd of="$X/flipped.pcap" bs=1 seek=$((offs[j] + 16 + 20 + j % 30)) conv=notrunc status=none
done
"$TR" --json "$X/flipped.pcap" >"$RP_TMP/flipped.json" 2>&1; rc=$?
check "flipped payload bytes: every record is read, exit 0 ($rc)" \
  bash -c "[ $rc = 0 ] && grep -q '\"records\": $n,' '$RP_TMP/flipped.json'"

head -c 16 /dev/urandom >"$X/notpcap.pcap"
"$TR" "$X/notpcap.pcap" "$src" >"$RP_TMP/notpcap.txt" 2>&1; rc=$?
check "not a pcap: reported at offset 0, the other file still read (exit $rc)" \
  bash -c "[ $rc = 1 ] && grep -q 'notpcap.pcap: read error at byte offset 0:' '$RP_TMP/notpcap.txt' && grep -q '^link \|^pair ' '$RP_TMP/notpcap.txt'"

# --- pcapng (what Wireshark writes): same verdicts -----------------------
if command -v editcap >/dev/null; then
  G=$RP_TMP/pcapng; mkdir -p "$G"
  for f in "$R"/*.pcap; do editcap -F pcapng "$f" "$G/$(basename "$f" .pcap).pcapng"; done
  "$TR" "$G" >"$RP_TMP/pcapng.txt" 2>&1; rc=$?
  check "pcapng: the relayed run reads the same (exit $rc)" \
    bash -c "[ $rc = 0 ] && diff <(grep -v '^ */' '$RP_TMP/relayed.txt' | sed 's/\.pcap\>//g') <(grep -v '^ */' '$RP_TMP/pcapng.txt' | sed 's/\.pcapng\>//g') >&2"
else
  skip "pcapng: editcap is not installed"
fi
tap_exit
