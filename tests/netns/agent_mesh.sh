#!/usr/bin/env bash
# meshd end to end: meshsvc and meshstun on a "public" segment, agents behind
# NAT gateways, relays on public hosts. Topology: see agent_common.bash
#
#   n1 --[gw1 masquerade]--+
#   n2 --[gw2 masquerade]--+-- pub: meshsvc 203.0.113.1:8080, meshstun 203.0.113.1/.2:3478
#   n3 --[gw3 masquerade random (symmetric)]--+
#                    r1 203.0.113.21 (meshd --relay), r2 203.0.113.22 (meshd --relay)
#
# Shown: n1 and n2 connect directly and ping across the tunnel; the control
# socket reports the path the test observed; a new local address is noticed
# within a second and reported; n3 is reported symmetric_nat;
# n2 <-> n3 falls back to the relay within the direct timeout and pings;
# handshake round trips to the relays are measured; two agents on different
# relays still ping each other; each agent reports its NAT's mapping and
# filtering behaviour (RFC 5780) to the service and in meshctl status;
# a meshd restart keeps tunnel IP and port; --relay-only reaches the other
# through the relay; a service restart during traffic loses no ping; killing
# the relay in use moves relayed peers to the other relay within 10 s, and
# restarting it lets them through it again within 5 s;
# meshctl peers -o json (when meshctl is built) reports the observed path;
# relays answer STUN on their WireGuard port; a gateway that turns symmetric
# is noticed by the next discovery round; SIGTERM removes the interface.
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun

if ! setup; then not_ok "topology"; exit 1; fi
start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }

registered() { [ -n "$(tunnel_ip "$1")" ]; }

agent n1 n1
agent n2 n2
check "n1 and n2 register" wait_for 10 eval 'registered n1 && registered n2'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2)
check "n1 and n2 get distinct tunnel addresses" test -n "$T1" -a -n "$T2" -a "$T1" != "$T2"

# 1. direct through two port-preserving NATs
check "n1 -> n2 path is direct" wait_for 10 path_is n1 n2 direct
check "n2 -> n1 path is direct" wait_for 5 path_is n2 n1 direct
check "ping n1 -> n2 across the tunnel" ping_ok n1 "$T2"
check "ping n2 -> n1 across the tunnel" ping_ok n2 "$T1"
ep=$(ctl n1 '{"cmd":"peers"}' | jq -r '.peers[] | select(.name == "n2") | .endpoint')
check "n1 uses n2's reflexive endpoint (gw2's address), endpoint=$ep" test "${ep%:*}" = 203.0.113.12
rtt=$(ctl n1 '{"cmd":"ping","peer":"n2"}' | jq -r '.rtt_ms // empty')
check "control-socket ping n1 -> n2 answers (rtt_ms=$rtt)" test -n "$rtt"

# 1b. a new local address is noticed at once (rtnetlink notification; the
# poll behind it runs every 30 s)
before=$(grep -c 'local addresses changed' "$T/n1.log")
noticed() { [ "$(grep -c 'local addresses changed' "$T/n1.log")" -gt "$before" ]; }
t0=$(date +%s%N)
X n1 ip addr add 10.1.0.99/24 dev eth0
for _ in $(seq 100); do noticed && break; sleep 0.02; done
ms=$((($(date +%s%N) - t0) / 1000000))
check "n1 notices a new local address within 1 s (${ms} ms)" eval 'noticed && [ "$ms" -lt 1000 ]'
has_ep() { ctl n1 '{"cmd":"status"}' | jq -e '[.endpoints[]? | select(.address | startswith("10.1.0.99:"))] | length == 1' >/dev/null; }
check "n1's status lists the new local endpoint 10.1.0.99" wait_for 2 has_ep
X n1 ip addr del 10.1.0.99/24 dev eth0
gone() { ! ctl n1 '{"cmd":"status"}' | jq -e '.endpoints[]? | select(.address | startswith("10.1.0.99:"))' >/dev/null; }
check "n1's status drops it once removed" wait_for 2 gone

# 2. relays, and a symmetric NAT
agent r1 r1 --relay --listen-port 51820
agent r2 r2 --relay --listen-port 51820
check "r1 and r2 register" wait_for 10 eval 'registered r1 && registered r2'
agent n3 n3
check "n3 registers" wait_for 10 registered n3
T3=$(tunnel_ip n3)
sym() { [ "$(api GET /api/devices | jq -r '.[] | select(.hostname == "n3") | .symmetric_nat')" = true ]; }
check "n3 behind masquerade random is reported with symmetric_nat=true" wait_for 10 sym
sym2() { [ "$(api GET /api/devices | jq -r '.[] | select(.hostname == "n2") | .symmetric_nat')" = false ]; }
check "n2 behind masquerade is reported with symmetric_nat=false" sym2
start=$SECONDS
check "n2 -> n3 falls back to the relay" wait_for 8 path_is n2 n3 relayed
check "n2 -> n3 relayed within the direct timeout (3 s) plus 1 s (took $((SECONDS - start)) s)" \
	test $((SECONDS - start)) -le 4
check "n3 -> n2 path is relayed" wait_for 8 path_is n3 n2 relayed
check "ping n3 -> n2 through the relay" wait_for 5 ping_ok n3 "$T2"
check "ping n2 -> n3 through the relay" ping_ok n2 "$T3"
check "n1 <-> n2 stay direct" path_is n1 n2 direct
# issue 7: each agent knows its NAT (RFC 5780 against meshstun --rfc5780)
check "n2 behind masquerade reports nat endpoint-independent mapping, address-and-port-dependent filtering" \
	wait_for 15 natok n2 endpoint-independent address-and-port-dependent
check "n3 behind masquerade random reports nat address-and-port-dependent mapping and filtering" \
	wait_for 15 natok n3 address-and-port-dependent address-and-port-dependent
echo "# nat n2: $(natf n2 mapping)/$(natf n2 filtering), n3: $(natf n3 mapping)/$(natf n3 filtering)"
# hairpinning (RFC 5780 4.7) is the run's last test: plain masquerade does not
# hairpin (the scenarios hairpin-on and hairpin-off show both answers)
hairpin_off() { [ "$(ctl "$1" '{"cmd":"status"}' | jq -r '.nat | "\(.hairpinning) \(.running)"')" = "false false" ]; }
check "n2 finds no hairpinning behind masquerade, and its discovery ends" wait_for 15 hairpin_off n2
check "n2 reports hairpinning false to the service" wait_for 5 eval '[ "$(natf n2 hairpinning)" = false ]'
check "n3 finds no hairpinning behind masquerade random" wait_for 15 hairpin_off n3
if [ -x "$B/meshctl" ]; then
	line=$(X n2 "$B/meshctl" --control "$T/n2.sock" status 2>>"$T/meshctl.err" | grep '^NAT')
	check "meshctl status on n2 shows '$line'" \
		test "$line" = "NAT (IPv4):   endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone)"
	line=$(X n3 "$B/meshctl" --control "$T/n3.sock" status 2>>"$T/meshctl.err" | grep '^NAT')
	check "meshctl status on n3 shows '$line'" \
		test "$line" = "NAT (IPv4):   address-and-port-dependent mapping, address-and-port-dependent filtering (symmetric)"
fi
hsrtt() { ctl n3 '{"cmd":"peers"}' | jq -e '[.peers[] | select(.relay) | .handshake_rtt_ms | numbers | select(. > 0)] | length == 2' >/dev/null; }
check "n3 measured the handshake round trip to both relays" wait_for 10 hsrtt

# 2b. agents on different relays still reach each other: gw3 drops n3's STUN
# probes to n2's relay, so n3 finds it dead and moves to the other one, while
# WireGuard through it still works. Each side then receives the other's
# packets from a relay that does not hold the VPC CIDR at the receiver.
r_n2=$(ctl n2 '{"cmd":"status"}' | jq -r '.relay_in_use // empty')
case "$r_n2" in r1) raddr=203.0.113.21 ;; r2) raddr=203.0.113.22 ;; *) raddr= ;; esac
if [ -n "$raddr" ]; then
	X gw3 nft add table ip probe
	X gw3 nft add chain ip probe pfwd '{ type filter hook forward priority -10; }'
	X gw3 nft add rule ip probe pfwd ip daddr "$raddr" udp dport 51820 @th,96,32 0x2112a442 drop
	other() { local r; r=$(ctl n3 '{"cmd":"status"}' | jq -r '.relay_in_use // empty'); [ -n "$r" ] && [ "$r" != "$r_n2" ]; }
	check "n3 uses another relay than n2 ($r_n2) once its probes to it go unanswered" wait_for 12 other
	check "n2 stays on $r_n2" test "$(ctl n2 '{"cmd":"status"}' | jq -r '.relay_in_use // empty')" = "$r_n2"
	check "ping n3 -> n2 with each on its own relay" wait_for 5 ping_ok n3 "$T2"
	check "ping n2 -> n3 with each on its own relay" ping_ok n2 "$T3"
	X gw3 nft delete table ip probe
else
	not_ok "n2 reports a relay in use (got '$r_n2')"
fi
relay_ep() { ctl n2 '{"cmd":"status"}' | jq -e '.endpoints[] | select(.source == "relay")' >/dev/null; }
check "the relays answer STUN on their WireGuard port (n2 reports a relay-seen endpoint)" wait_for 25 relay_ep

if [ -x "$B/meshctl" ]; then
	got=$(X n2 "$B/meshctl" --control "$T/n2.sock" peers -o json 2>"$T/meshctl.err" |
		jq -r '.peers[] | select(.name == "n3") | .path')
	# needs meshctl's main to hand its argv to meshctl_local_dispatch() first
	check "meshctl peers -o json reports n3 relayed on n2 (got '$got')" test "$got" = relayed
	got=$(X n2 "$B/meshctl" --control "$T/n2.sock" peers -o json 2>>"$T/meshctl.err" |
		jq -r '.peers[] | select(.name == "n1") | .path')
	check "meshctl peers -o json reports n1 direct on n2 (got '$got')" test "$got" = direct
else
	skip "meshctl peers -o json: $BUILD/meshctl is not built"
fi

# 3. a service restart during traffic loses no ping
ip netns exec "$P-n1" ping -i 0.2 -c 40 -W 1 "$T2" >"$T/ping-svc.txt" 2>&1 &
PIDS[ping]=$!
sleep 1
kill "${PIDS[svc]}"; wait "${PIDS[svc]}" 2>/dev/null; unset "PIDS[svc]"
sleep 2
start_service
wait "${PIDS[ping]}"; unset "PIDS[ping]"
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping-svc.txt")
check "a service restart during traffic loses no ping (loss ${loss:-?}%)" test "${loss:-x}" = 0
back() { [ "$(ctl n1 '{"cmd":"status"}' | jq -r .service.reachable)" = true ]; }
check "n1 sees the service again after its restart" wait_for 40 back

# 4. restart keeps tunnel IP and port; --relay-only goes through the relay
port1=$(ctl n1 '{"cmd":"status"}' | jq -r .listen_port)
stop_agent n1
agent n1 n1 --relay-only
check "n1 comes back registered" wait_for 10 registered n1
check "n1 keeps its tunnel IP across a restart" test "$(tunnel_ip n1)" = "$T1"
check "n1 keeps its listen port across a restart" \
	test "$(ctl n1 '{"cmd":"status"}' | jq -r .listen_port)" = "$port1"
check "--relay-only n1 -> n2 path is relayed" wait_for 10 path_is n1 n2 relayed
# n2 still holds n1 as direct; what it sends there goes unanswered
ip netns exec "$P-n2" ping -i 1 -c 40 -W 1 "$T1" >/dev/null 2>&1 &
PIDS[ping2]=$!
check "n2 -> n1 falls back to the relay once its sends go unanswered" wait_for 35 path_is n2 n1 relayed
check "ping n1 -> n2 through the relay (--relay-only)" wait_for 5 ping_ok n1 "$T2"
kill "${PIDS[ping2]}" 2>/dev/null; wait "${PIDS[ping2]}" 2>/dev/null; unset "PIDS[ping2]"

# 5a. the relay in use restarts (same key, same port): it has lost every
# session, and n3 behind its symmetric NAT cannot be reached at any address
# the relay knows. The relay starts a handshake to the source of the first
# packet that arrives for a session it no longer has (n3's next ping), and
# reaches n2, which has nothing to send to it until its next keepalive (20 s),
# at n2's reflexive address. So n3 <-> n2 through it work again within 5 s,
# not after WireGuard's 15 s without an answer on n3's side (before: 10-20 s;
# with the first part only: 9.4 s)
inuse=$(ctl n3 '{"cmd":"status"}' | jq -r '.relay_in_use // empty')
if [ "$inuse" = r1 ] || [ "$inuse" = r2 ]; then
	check "ping n3 -> n2 through $inuse before it restarts" wait_for 5 ping_ok n3 "$T2"
	check "ping n2 -> n3 through $inuse before it restarts" wait_for 5 ping_ok n2 "$T3"
	stop_agent "$inuse"
	agent "$inuse" "$inuse" --relay --listen-port 51820
	t0=$(date +%s%N)
	has_peers() { [ "$(ctl "$inuse" '{"cmd":"status"}' 2>/dev/null | jq -r .peers)" = 4 ]; }
	wait_for 5 has_peers && echo "# the restarted $inuse had its 4 peers after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	if wait_for 5 ping_ok n3 "$T2"; then
		ok "ping n3 -> n2 through the restarted $inuse within 5 s ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
	else
		not_ok "ping n3 -> n2 through the restarted $inuse within 5 s"
	fi
	check "ping n2 -> n3 through the restarted $inuse" wait_for 5 ping_ok n2 "$T3"
	check "n3 still uses $inuse" test "$(ctl n3 '{"cmd":"status"}' | jq -r '.relay_in_use // empty')" = "$inuse"
	check "the restarted $inuse started the handshake to n3 (log)" \
		grep -q 'handshake to a peer still sending on a lost session.*peer=n3' "$T/$inuse.log"
	check "... and counts it in its status" \
		test "$(ctl "$inuse" '{"cmd":"status"}' | jq -r '.lost_session_handshakes')" -ge 1
else
	not_ok "n3 reports a relay in use (got '$inuse')"
fi

# 5. the relay in use dies: relayed peers move to the other one within 10 s
inuse=$(ctl n3 '{"cmd":"status"}' | jq -r '.relay_in_use // empty')
if [ "$inuse" = r1 ] || [ "$inuse" = r2 ]; then
	stop_agent "$inuse"
	start=$SECONDS
	moved() { local r; r=$(ctl n3 '{"cmd":"status"}' | jq -r '.relay_in_use // empty'); [ -n "$r" ] && [ "$r" != "$inuse" ]; }
	check "n3 moves off the dead relay $inuse" wait_for 12 moved
	check "ping n3 -> n2 through the other relay within 10 s of the kill" \
		wait_for $((10 - (SECONDS - start))) ping_ok n3 "$T2"
	echo "# relay failover took $((SECONDS - start)) s"
else
	not_ok "n3 reports a relay in use (got '$inuse')"
fi

# 6. moving into a symmetric NAT is noticed by the next discovery round
X gw2 nft flush chain ip nat post
X gw2 nft add rule ip nat post oifname wan masquerade random
X gw2 conntrack -F >/dev/null 2>&1
check "n2 moved behind a symmetric NAT is reported symmetric_nat=true within 25 s" \
	wait_for 25 eval '[ "$(api GET /api/devices | jq -r ".[] | select(.hostname == \"n2\") | .symmetric_nat")" = true ]'

# SIGTERM removes the interface
stop_agent n2
check "SIGTERM removes n2's interface" bash -c "! ip netns exec $P-n2 ip link show nm-n2 >/dev/null 2>&1"

# with a SANITIZE=address,undefined build, the agents stopped above have
# written their reports (leaks included) by now
check "no sanitizer report in any log" bash -c "! grep -l 'AddressSanitizer\|LeakSanitizer\|runtime error' $T/*.log"

[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
