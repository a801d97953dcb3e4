#!/usr/bin/env bash
# Security groups enforced by meshd (issue 16), in two parts.
#
# 1. The ruleset with real traffic: meshd's renderer (agent/meshd/policy_nft.c,
#    driven by build/polnft) applies a group in [b]; a veth named like a mesh
#    interface stands in for the TUN:
#
#      [a] nm-peer 10.9.0.1/24 fd00:9::1/64 ---- nm-pol 10.9.0.2/24 fd00:9::2/64 [b]
#                                                 table inet natmesh (the group)
#
#    Allowed TCP ports connect (socat), forbidden ones do not, over IPv4 and
#    IPv6, in both directions (inbound rules on what arrives from nm-pol,
#    outbound on what b sends into it); replies of an allowed connection pass
#    (ct established); the per-rule counters and the final drops move; an empty
#    group permits nothing; the `nft -f` text of the same group is accepted by
#    nft and gives the same rules.
#
# 2. meshd's life cycle (the agent topology's pub and r1 only): the table is
#    in before the interface comes up, with the group kept in the state dir
#    from the last run, or nothing permitted; a service without security
#    groups means everything allowed (logged once, status says so); SIGTERM
#    removes the table; --no-policy installs none.
. "$(dirname "$0")/agent_common.bash"
NS=(a b pub r1)

need polnft meshd meshsvc meshstun
[ "$(id -u)" -eq 0 ] || { skip "agent_policy.sh needs root"; exit 0; }
command -v socat >/dev/null || { skip "agent_policy.sh needs socat"; exit 0; }

for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || exit 1; done
X a ip link add nm-peer type veth peer name nm-pol netns "$P-b" &&
	X a ip addr add 10.9.0.1/24 dev nm-peer && X a ip addr add fd00:9::1/64 dev nm-peer nodad &&
	X b ip addr add 10.9.0.2/24 dev nm-pol && X b ip addr add fd00:9::2/64 dev nm-pol nodad &&
	X a ip link set nm-peer up && X b ip link set nm-pol up || exit 1
# a TUN has no neighbour discovery; the veth standing in for it gets fixed entries
X a ip -6 neigh add fd00:9::2 lladdr "$(X b cat /sys/class/net/nm-pol/address)" dev nm-peer nud permanent &&
	X b ip -6 neigh add fd00:9::1 lladdr "$(X a cat /sys/class/net/nm-peer/address)" dev nm-pol nud permanent || exit 1

# listen NS PORT [6]: a TCP server answering "hi" (fork: one per connection)
listen() {
	local addr=0.0.0.0 fam=4
	[ "${3:-}" = 6 ] && addr="[::]" && fam=6
	ip netns exec "$P-$1" socat -T 2 "TCP$fam-LISTEN:$2,bind=$addr,reuseaddr,fork" SYSTEM:'echo hi' \
		>/dev/null 2>&1 &
	PIDS["l-$1-$2-$fam"]=$!
}
# connects NS HOST PORT: a connection that answers within 2 s
connects() {
	local h=$2
	[[ $h == *:* ]] && h="[$h]"
	[ "$(X "$1" timeout 3 socat -T 2 - "TCP:$h:$3,connect-timeout=2" </dev/null 2>/dev/null)" = hi ]
}
# probe NS DST: meshctl ping's echo request (ping.c: 16 bytes "natmesh
# meshctl!") from a raw socket, answered within 1 s
probe() {
	X "$1" python3 - "$2" <<-'EOF'
	import socket, struct, sys
	def csum(b):
	    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
	    s = (s >> 16) + (s & 0xffff); s += s >> 16
	    return ~s & 0xffff
	data = b"natmesh meshctl!"
	hdr = struct.pack("!BBHHH", 8, 0, 0, 0x6d01, 1)
	pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + data), 0x6d01, 1) + data
	s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
	s.settimeout(1)
	s.sendto(pkt, (sys.argv[1], 0))
	try:
	    while True:
	        r = s.recv(1500)
	        ihl = (r[0] & 15) * 4
	        if r[ihl] == 0 and r[ihl + 4:ihl + 6] == b"\x6d\x01":
	            sys.exit(0)
	except socket.timeout:
	    sys.exit(1)
	EOF
}
counter() { X b "$B/polnft" counters "$T/group.json" | awk -v k="$1" '$1 == k { print $2 }'; }

cat >"$T/group.json" <<'EOF'
{"id": "sg-b", "name": "b", "revision": 1,
 "inbound_rules": [
   {"ip_protocol": "tcp", "from_port": 8080, "to_port": 8081, "ip_ranges": ["10.9.0.1"], "groups": [], "group_addresses": []},
   {"ip_protocol": "tcp", "from_port": 9090, "to_port": 9090, "ip_ranges": ["10.9.0.100-10.9.0.200"]},
   {"ip_protocol": "tcp", "from_port": 8443, "to_port": 8443, "groups": ["sg-a"], "group_addresses": ["fd00:9::1"]},
   {"ip_protocol": "udp", "groups": ["empty"], "group_addresses": []}
 ],
 "outbound_rules": [
   {"ip_protocol": "tcp", "from_port": 7070, "to_port": 7070, "ip_ranges": ["10.9.0.0/24"]}
 ]}
EOF
for p in 8080 8081 8082 9090; do listen b $p; done
listen b 8443 6
listen b 8080 6
for p in 7070 7071; do listen a $p; done
sleep 0.3
check "without a table: a reaches b:9090 (the servers answer)" connects a 10.9.0.2 9090

check "the group is applied (render and commit, as meshd does)" X b "$B/polnft" apply "$T/group.json" nm-pol
check "inbound tcp 8080 from a: connects" connects a 10.9.0.2 8080
check "inbound tcp 8081 (the top of the port range 8080-8081): connects" connects a 10.9.0.2 8081
check "inbound tcp 9090, allowed only from 10.9.0.100-10.9.0.200: refused" eval '! connects a 10.9.0.2 9090'
check "inbound over IPv6, tcp 8443 from the group's member fd00:9::1: connects" connects a fd00:9::2 8443
check "inbound over IPv6, tcp 8080 (its rule names an IPv4 address only): refused" eval '! connects a fd00:9::2 8080'
check "ping a -> b (no icmp rule): no answer" eval '! X a ping -c 1 -W 1 10.9.0.2'
check "outbound tcp 7070 to the VPC: b connects to a" connects b 10.9.0.1 7070
check "outbound tcp 7071 (no rule): refused" eval '! connects b 10.9.0.1 7071'
c0=$(counter "inbound_rules[0]"); ci=$(counter inbound_drop); co=$(counter outbound_drop)
check "counters: inbound_rules[0] counted the connections it let in (${c0:-none})" test "${c0:-0}" -ge 2
check "counters: inbound drops counted (${ci:-none})" test "${ci:-0}" -ge 3
check "counters: outbound drops counted (${co:-none})" test "${co:-0}" -ge 1
check "counters: outbound_rules[0] counted (replies of the inbound connections are not: established)" \
	test "$(counter "outbound_rules[0]")" -ge 1
check "nft list shows the rules with their comments" \
	eval 'X b nft list table inet natmesh | grep -q "comment \"inbound_rules\[2\]\""'

X b "$B/polnft" apply - nm-pol
check "no group (what meshd installs before the service answers): 8080 refused" eval '! connects a 10.9.0.2 8080'
check "... an ordinary ping a -> b is not answered" eval '! X a ping -c 1 -W 1 10.9.0.2'
check "... meshctl ping's echo request a -> b is (and its echo reply leaves b)" probe a 10.9.0.2

X b "$B/polnft" text "$T/group.json" nm-pol >"$T/group.nft"
X b "$B/polnft" apply "$T/group.json" nm-pol
X b nft list table inet natmesh | grep -c "comment \"" >"$T/n-nftnl"
X b nft -f - <<<"table inet natmesh
delete table inet natmesh
$(cat "$T/group.nft")"
check "the nft -f text of the group is accepted by nft" test $? -eq 0
X b nft list table inet natmesh | grep -c "comment \"" >"$T/n-text"
check "... and gives the same permit rules ($(cat "$T/n-nftnl") and $(cat "$T/n-text"))" \
	cmp -s "$T/n-nftnl" "$T/n-text"
# a change in one batch that keeps the unchanged sets (what meshd does from
# the second group on) gives the table a whole apply gives
cat >"$T/group2.json" <<'EOF'
{"id": "sg-b", "name": "b", "revision": 2,
 "inbound_rules": [
   {"ip_protocol": "tcp", "from_port": 8082, "to_port": 8082, "ip_ranges": ["10.9.0.1"]},
   {"ip_protocol": "tcp", "from_port": 9090, "to_port": 9090, "ip_ranges": ["10.9.0.1-10.9.0.3"]},
   {"ip_protocol": "tcp", "from_port": 8443, "to_port": 8443, "groups": ["sg-a"], "group_addresses": ["fd00:9::1"]},
   {"ip_protocol": "icmp", "ip_ranges": ["10.9.0.0/24"]}
 ],
 "outbound_rules": [
   {"ip_protocol": "tcp", "from_port": 7070, "to_port": 7071, "ip_ranges": ["10.9.0.0/24"]}
 ]}
EOF
listing() { X b nft list table inet natmesh | sed 's/counter packets [0-9]* bytes [0-9]*/counter/' | sort; }
X b "$B/polnft" apply "$T/group.json" nm-pol
check "a change from the group to another: one batch" X b "$B/polnft" change "$T/group.json" "$T/group2.json" nm-pol
listing >"$T/l-change"
X b "$B/polnft" apply "$T/group2.json" nm-pol
listing >"$T/l-whole"
check "... the same table as applying the new group whole" cmp -s "$T/l-change" "$T/l-whole"
cmp -s "$T/l-change" "$T/l-whole" || diff "$T/l-change" "$T/l-whole" | sed 's/^/# /'
X b "$B/polnft" apply "$T/group.json" nm-pol
X b "$B/polnft" change "$T/group.json" "$T/group2.json" nm-pol
check "after the change: tcp 8082 connects" connects a 10.9.0.2 8082
check "after the change: tcp 8080 refused" eval '! connects a 10.9.0.2 8080'
check "after the change: 9090 from 10.9.0.1 connects (its set changed)" connects a 10.9.0.2 9090
check "after the change: ping a -> b answered" X a ping -c 1 -W 1 10.9.0.2
check "after the change: outbound 7071 connects" connects b 10.9.0.1 7071
check "polnft remove deletes the table" X b "$B/polnft" remove
check "... gone" eval '! X b nft list table inet natmesh 2>/dev/null'

# ---- 2. meshd ---------------------------------------------------------------
X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 &&
	wan r1 203.0.113.21 || exit 1
start_service && start_stun || { not_ok "service"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC"; dump_logs; exit 1; }

# a group kept from the last run, and a service that does not answer
mkdir -p "$T/state-m1" && chmod 700 "$T/state-m1"
cp "$T/group.json" "$T/state-m1/security_group.json"
API=http://203.0.113.1:8099 agent m1 r1
check "the kept group is in before the service answers" wait_for 5 \
	eval 'X r1 nft list table inet natmesh 2>/dev/null | grep -q "comment \"inbound_rules\[0\]\""'
check "... and before the interface came up (log order)" \
	eval 'awk "/security group from the last run applied/ { p = NR } /up ifname=nm-m1/ { u = NR } END { exit !(p && u && p < u) }" "$T/m1.log"'
check "status: the group, its rules, the source" \
	eval 'ctl m1 "{\"cmd\":\"status\"}" | jq -e ".policy.group.id == \"sg-b\" and .policy.source == \"saved\" and (.policy.inbound_rules | length) == 4 and .policy.enforced"'
"$B/meshctl" --control "$T/m1.sock" status >"$T/m1.status" 2>&1
sed 's/^/# /' "$T/m1.status"
check "meshctl status: the group, each rule on its line with its packets, the drops" \
	eval 'grep -q "^policy:       group b (id sg-b, revision 1, kept from the last run)" "$T/m1.status" &&
		[ "$(grep -c "^    \[[0-9]\] .*(.* packets)" "$T/m1.status")" -eq 5 ] &&
		grep -q "^    \[1\] tcp port 9090 from 10.9.0.100-10.9.0.200 (0 packets)" "$T/m1.status" &&
		grep -q "^  dropped:    [0-9]* inbound, [0-9]* outbound" "$T/m1.status"'
stop_agent m1
check "SIGTERM removes the table" eval '! X r1 nft list table inet natmesh 2>/dev/null'

echo '{"inbound_rules": "garbage"}' >"$T/state-m1/security_group.json"
API=http://203.0.113.1:8099 agent m1 r1
check "a bad kept group: the table permits nothing (no rule with a comment)" wait_for 5 \
	eval 'X r1 nft list table inet natmesh 2>/dev/null | grep -q "counter packets 0 bytes 0 drop" &&
		! X r1 nft list table inet natmesh | grep -q comment'
check "... the log names why" grep -q "saved security group ignored" "$T/m1.log"
stop_agent m1

agent m2 r1
check "the service's default group: registered, everything allowed" wait_for 10 \
	eval 'ctl m2 "{\"cmd\":\"status\"}" | jq -e ".service.registered and .policy.source == \"service\" and .policy.group.name == \"default\""'
check "... the table has an allow-all rule each way" \
	eval '[ "$(X r1 nft list table inet natmesh | grep -c "counter packets [0-9]* bytes [0-9]* accept comment")" -eq 2 ]'
check "... logged once" test "$(grep -c "security group applied .*name=default" "$T/m2.log")" -eq 1
check "... kept for the next start (allow all from the first packet)" \
	jq -e '.inbound_rules[0].ip_protocol == "any" and .name == "default"' "$T/state-m2/security_group.json"
stop_agent m2
check "SIGTERM removes the table (registered agent)" eval '! X r1 nft list table inet natmesh 2>/dev/null'

agent m3 r1 --no-policy
check "--no-policy: registered" wait_for 10 eval 'ctl m3 "{\"cmd\":\"status\"}" | jq -e ".service.registered and (.policy.enforced | not) and .policy.source == \"off\""'
check "--no-policy: no table" eval '! X r1 nft list table inet natmesh 2>/dev/null'
check "--no-policy: the service records that the device does not enforce" \
	eval 'api GET /api/devices | jq -e ".[] | select(.hostname == \"m3\") | .enforces_policy == false"'
stop_agent m3

if [ "$TAP_FAILS" -gt 0 ]; then dump_logs; fi
tap_exit
