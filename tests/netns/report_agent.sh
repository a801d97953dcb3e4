#!/usr/bin/env bash
# traversal-report on the agent's own traffic: meshd on three sites (two
# port-preserving masquerades, one symmetric) and a relay, as in
# agent_common.bash, captured on every host's and gateway's link. The report
# must call n1 <-> n2 direct, with the first data at the time tshark gives for
# the first WireGuard data frame between their gateways, and n2 <-> n3 relayed
# via r1 because n3's NAT maps per destination.
#
#   n1 10.1.0.2 --- [gw1 masquerade] 203.0.113.11 --+
#   n2 10.2.0.2 --- [gw2 masquerade] 203.0.113.12 --+-- pub: meshsvc, meshstun 203.0.113.1/.2
#   n3 10.3.0.2 --- [gw3 masquerade random] .13 ----+
#                       r1 203.0.113.21 (meshd --relay) +
# captures: n*-eth0, gw*-wan, r1-wan, pub-br0 (tcpdump, nanosecond stamps)
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun traversal-report
for t in tcpdump jq python3; do
  command -v "$t" >/dev/null || { not_ok "$t is installed"; exit 1; }
done
HAVE_TSHARK=$(command -v tshark)

setup || { not_ok "topology"; exit 1; }
C=$T/captures; mkdir -p "$C"
capture() {	# NS IF
  ip netns exec "$P-$1" tcpdump -n -U -s 0 --immediate-mode --time-stamp-precision=nano -i "$2" \
    -w "$C/$1-$2.pcap" udp >"$T/tcpdump-$1-$2.log" 2>&1 &
  PIDS[cap-$1-$2]=$!
}
for i in 1 2 3; do capture "n$i" eth0; capture "gw$i" wan; done
capture r1 wan
capture pub br0
for _ in $(seq 50); do
  [ "$(grep -l 'listening on' "$T"/tcpdump-*.log 2>/dev/null | wc -l)" -eq 8 ] && break
  sleep 0.1
done

start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }
agent r1 r1 --relay --listen-port 51820
agent n1 n1
agent n2 n2
agent n3 n3
registered() { [ -n "$(tunnel_ip "$1")" ]; }
check "the agents register" wait_for 15 eval 'registered n1 && registered n2 && registered n3'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2) T3=$(tunnel_ip n3)
check "n1 -> n2 is direct" wait_for 10 path_is n1 n2 direct
check "n2 -> n3 is relayed" wait_for 10 path_is n2 n3 relayed
check "ping n1 -> n2" wait_for 5 ping_ok n1 "$T2"
check "ping n2 -> n3" wait_for 5 ping_ok n2 "$T3"
X n2 ping -q -c 3 -i 0.2 "$T3" >/dev/null 2>&1	# a few more messages for the relay to forward
sleep 0.5
for k in "${!PIDS[@]}"; do
  case $k in cap-*) kill -TERM "${PIDS[$k]}"; wait "${PIDS[$k]}" 2>/dev/null; unset "PIDS[$k]" ;; esac
done

R=$T/report.txt
"$B/traversal-report" --name 10.1.0.2=n1 --name 10.2.0.2=n2 --name 10.3.0.2=n3 "$C" >"$R" 2>&1; rc=$?
"$B/traversal-report" --json "$C" >"$T/report.json" 2>/dev/null
grep -v '^  /' "$R" | sed -n '/^pair/,$p' | sed 's/^/# /'
check "traversal-report exits 0 ($rc)" test "$rc" = 0
check "n1 <-> n2: direct, the winning candidate is a gateway's mapping" \
  grep -Eq "^  direct, winning candidate 203\.0\.113\.1[12]:[0-9]+ \((A -> B|B -> A)\), first data at" \
  <(sed -n '/^pair n1 .* <-> n2 /,/^$/p' "$R")
check "n2 <-> n3: relayed via 203.0.113.21:51820" \
  grep -q "^  relayed via 203.0.113.21:51820, first data at" <(sed -n '/^pair n2 .* <-> n3 /,/^$/p' "$R")
check "n2 <-> n3: why names n3's endpoint-dependent mapping" \
  grep -q "why: .*the NAT in front of 10.3.0.2:[0-9]* mapped it to [0-9]* different ports, one per destination: endpoint-dependent mapping" \
  <(sed -n '/^pair n2 .* <-> n3 /,/^$/p' "$R")
if [ -n "$HAVE_TSHARK" ]; then
  v=$(sed -n 's/^  "t0_ns": \([0-9]*\),$/\1/p' "$T/report.json")
  t0="${v::-9}.${v: -9}"
  rep=$(sed -n '/^pair n1 .* <-> n2 /,/^$/p' "$R" | sed -n 's/.*first data at +\([0-9.]*\) s$/\1/p' | head -n 1)
  t_data=$(for f in "$C"/*.pcap; do
      tshark -r "$f" -Y 'wg.type == 4 && udp.length > 40 && (ip.addr == 10.1.0.2 || ip.addr == 203.0.113.11) && (ip.addr == 10.2.0.2 || ip.addr == 203.0.113.12)' \
        -T fields -e frame.time_epoch 2>/dev/null
    done | sort -n | head -n 1)
  check "n1 <-> n2: first data at +$rep s is tshark's first WireGuard data frame between n1 and n2" \
    awk -v a="$t0" -v r="$rep" -v b="$t_data" 'BEGIN { d = a + r - b; if (d < 0) d = -d; exit !(r != "" && b != "" && d < 0.000002) }'
else
  skip "n1 <-> n2 first data time (tshark is not installed)"
fi
tap_exit
