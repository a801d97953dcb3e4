#!/usr/bin/env bash
# meshd over an IPv6 underlay (2001:db8::/64, the documentation prefix):
#
#   n1 2001:db8::11 (IPv6 only) ------+
#   n2 2001:db8::12 (IPv6 only) ------+-- br0 in [pub]: 2001:db8::1  meshsvc :8080, meshstun :3478
#   n3 2001:db8::13 + 203.0.113.13 ---+                 2001:db8::2  meshstun (RFC 5780 alternate)
#   n4 2001:db8::14 + 203.0.113.14 ---+                 203.0.113.1  IPv4 too (n3, n4), meshstun :3478
#   n5 2001:db8::15 (eth6) -----------+                 203.0.113.2  IPv4 meshstun's alternate
#   n5 10.5.0.2 (eth0) -- [gw5] 203.0.113.15 (masquerade, drops new inbound) --+
#
# Shown: agents with no IPv4 at all register over IPv6, learn their reflexive
# address from an IPv6 STUN server through the WireGuard socket, report IPv6
# endpoints, and meet directly over IPv6 (ping across the tunnel, whose
# addresses stay IPv4), and find their filtering over IPv6 (RFC 5780; n2 is
# behind a host firewall); a dual-stack agent reports both families and reaches
# an IPv6-only one over IPv6 and nothing else; a dual-stack agent behind an
# IPv4 NAT with open IPv6 (n5) runs NAT discovery in each family and reports
# each family's behaviour; on a host without IPv6 (a seccomp filter refuses
# IPv6 sockets) meshd runs on IPv4 and reports no IPv6 endpoint. IPv6 NAT is
# not modeled.
API=http://[2001:db8::1]:8080
source "$(dirname "$0")/agent_common.bash"
NS=(pub n1 n2 n3 n4 gw5 n5)

need meshd meshsvc meshstun meshctl

# link NS: a veth from NS into pub's bridge (addresses added by the caller;
# nodad: no duplicate address detection wait in a lab we built)
link() {
	X pub ip link add "w-$1" type veth peer name eth0 netns "$P-$1" &&
	X pub ip link set "w-$1" master br0 && X pub ip link set "w-$1" up &&
	X "$1" ip link set eth0 up
}
setup6() {
	local n
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 2001:db8::1/64 dev br0 nodad && X pub ip addr add 2001:db8::2/64 dev br0 nodad &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 || return 1
	link n1 && X n1 ip addr add 2001:db8::11/64 dev eth0 nodad || return 1
	link n2 && X n2 ip addr add 2001:db8::12/64 dev eth0 nodad || return 1
	# n2 is behind a host firewall that drops new inbound flows
	X n2 nft -f - <<-EOF || return 1
	table ip6 fw {
		chain input { type filter hook input priority 0; iifname "eth0" ct state new drop; }
	}
	EOF
	link n3 && X n3 ip addr add 2001:db8::13/64 dev eth0 nodad && X n3 ip addr add 203.0.113.13/24 dev eth0 &&
	link n4 && X n4 ip addr add 2001:db8::14/64 dev eth0 nodad && X n4 ip addr add 203.0.113.14/24 dev eth0 || return 1
	# n5: IPv4 behind gw5's NAT (agent_common's site: masquerade and a
	# firewall, port-restricted cone), IPv6 straight on the bridge
	site 5 masquerade || return 1
	X pub ip link add w-n5 type veth peer name eth6 netns "$P-n5" &&
	X pub ip link set w-n5 master br0 && X pub ip link set w-n5 up && X n5 ip link set eth6 up &&
	X n5 ip addr add 2001:db8::15/64 dev eth6 nodad
}

# $T/no_ipv6.py CMD...: execs CMD with socket(AF_INET6, ...) refused
# (EAFNOSUPPORT) by a seccomp filter, as on a host booted without IPv6; the
# process stays the same one, so $! of a background run is CMD's pid
cat >"$T/no_ipv6.py" <<-'EOF'
	import ctypes, os, platform, struct, sys
	nr, audit = {"x86_64": (41, 0xc000003e), "aarch64": (198, 0xc00000b7)}[platform.machine()]
	def ins(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
	# arch, then syscall number, then args[0] (low half): socket(AF_INET6) -> errno 97
	prog = b"".join([ins(0x20, 0, 0, 4), ins(0x15, 0, 5, audit), ins(0x20, 0, 0, 0), ins(0x15, 0, 3, nr),
			 ins(0x20, 0, 0, 16), ins(0x15, 0, 1, 10), ins(0x06, 0, 0, 0x00050000 | 97),
			 ins(0x06, 0, 0, 0x7fff0000)])
	filt = ctypes.create_string_buffer(prog)
	fprog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(filt)))
	libc = ctypes.CDLL(None, use_errno=True)
	libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
	if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0):
	    sys.exit("no_ipv6: prctl: " + os.strerror(ctypes.get_errno()))
	os.execvp(sys.argv[1], sys.argv[1:])
	EOF
no_ipv6() { python3 "$T/no_ipv6.py" "$@"; }

if ! setup6; then not_ok "topology"; exit 1; fi
check "n1 has no IPv4 address but loopback" test -z "$(X n1 ip -4 -o addr show scope global)"
ip netns exec "$P-pub" "$B/meshsvc" --listen "[::]:8080" --db "$T/svc.db" --admin-token-file "$T/admin" \
	>>"$T/svc.log" 2>&1 &
PIDS[svc]=$!
wait_port pub t 8080 || { not_ok "meshsvc starts on [::]:8080"; dump_logs; exit 1; }
ip netns exec "$P-pub" "$B/meshstun" --listen "[2001:db8::1]:3478" --listen "[2001:db8::2]:3478" --rfc5780 \
	>"$T/stun.log" 2>&1 &
PIDS[stun]=$!
wait_port pub u 3478 || { not_ok "meshstun starts on [2001:db8::1]:3478"; dump_logs; exit 1; }
ip netns exec "$P-pub" "$B/meshstun" --listen 203.0.113.1:3478 --listen 203.0.113.2:3478 --rfc5780 \
	>"$T/stun4.log" 2>&1 &
PIDS[stun4]=$!
wait_for 4 eval '[ -n "$(X pub ss -Hlun "src 203.0.113.2:3478")" ]' ||
	{ not_ok "meshstun starts on 203.0.113.1:3478"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }

# agent6 NAME: meshd in namespace NAME with the IPv6 STUN server only
agent6() {
	ip netns exec "$P-$1" "$B/meshd" --service "$API" --insecure-http --reg-key-file "$T/regkey" \
		--stun "[2001:db8::1]:3478" --ifname "nm-$1" --hostname "$1" --state-dir "$T/state-$1" \
		--control "$T/$1.sock" >>"$T/$1.log" 2>&1 &
	PIDS[$1]=$!
}
registered() { [ -n "$(tunnel_ip "$1")" ]; }
# eps NAME: the endpoints NAME reports in its status, one "source address" per line
eps() { ctl "$1" '{"cmd":"status"}' | jq -r '.endpoints[]? | "\(.source) \(.address)"'; }
has_eps() { # NAME PATTERN...: every pattern matches a line of eps NAME
	local e p; e=$(eps "$1"); shift
	for p in "$@"; do grep -q -- "$p" <<<"$e" || return 1; done
}
peer_ep() { ctl "$1" '{"cmd":"peers"}' | jq -r --arg n "$2" '.peers[] | select(.name == $n) | .endpoint'; }

agent6 n1
agent6 n2
check "n1 and n2 register with the service over IPv6" wait_for 10 eval 'registered n1 && registered n2'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2)
check "n1 reports its IPv6 local endpoint and the reflexive one from the IPv6 STUN server" \
	wait_for 5 has_eps n1 '^local \[2001:db8::11\]:' '^stun:\[2001:db8::1\]:3478 \[2001:db8::11\]:'
port1=$(ctl n1 '{"cmd":"status"}' | jq -r .listen_port)
check "the reflexive port is the WireGuard socket's ($port1): STUN went out through it" \
	has_eps n1 "^stun:\[2001:db8::1\]:3478 \[2001:db8::11\]:$port1\$"
check "the service has n1's IPv6 endpoints" \
	eval "api GET /api/devices | jq -e '[.[] | select(.hostname == \"n1\") | .endpoints[] | select(.address | startswith(\"[2001:db8::11]:\"))] | length >= 2' >/dev/null"
check "n1 -> n2 path is direct" wait_for 10 path_is n1 n2 direct
check "n2 -> n1 path is direct" wait_for 5 path_is n2 n1 direct
check "ping n1 -> n2 across the tunnel ($T2)" ping_ok n1 "$T2"
check "ping n2 -> n1 across the tunnel ($T1)" ping_ok n2 "$T1"
ep=$(peer_ep n1 n2)
check "n1 sends to n2 at its IPv6 address (endpoint=$ep)" test "${ep%:*}" = "[2001:db8::12]"
# NAT behaviour discovery (RFC 5780) over IPv6, against the IPv6 STUN server
check "n1 (no NAT, no firewall) finds endpoint-independent mapping and filtering over IPv6" \
	wait_for 15 natok n1 endpoint-independent endpoint-independent
check "n2 behind its firewall finds endpoint-independent mapping, address-and-port-dependent filtering" \
	wait_for 15 natok n2 endpoint-independent address-and-port-dependent
check "and n1's status says no NAT" eval '[ "$(ctl n1 "{\"cmd\":\"status\"}" | jq -r .nat.behind_nat)" = false ]'
# natfam HOST FAMILY FIELD: a field of one family's findings in the service
natfam() { api GET /api/devices | jq -r --arg h "$1" --arg a "$2" --arg f "$3" '.[] | select(.hostname == $h) | .nat[$a][$f] | select(. != null)'; }
check "n2 (IPv6 only) reports them as its IPv6 findings, and no IPv4 ones" \
	eval '[ "$(natfam n2 ipv6 filtering)" = address-and-port-dependent ] &&
	      [ "$(api GET /api/devices | jq -r ".[] | select(.hostname == \"n2\") | .nat.ipv4")" = null ]'
st=$("$B/meshctl" --control "$T/n2.sock" status)
check "meshctl status on n2: one NAT line, for IPv6" \
	eval '[ "$(grep -c "^NAT" <<<"$st")" = 1 ] && grep -q "^NAT (IPv6): *endpoint-independent mapping, address-and-port-dependent filtering" <<<"$st"'

# a dual-stack agent: both families reported, IPv6 used towards n1
agent6 n3
check "n3 registers" wait_for 10 registered n3
T3=$(tunnel_ip n3)
check "dual-stack n3 reports an IPv4 and an IPv6 local endpoint" \
	wait_for 5 has_eps n3 '^local 203\.0\.113\.13:' '^local \[2001:db8::13\]:'
check "n3 -> n1 path is direct" wait_for 10 path_is n3 n1 direct
check "ping n3 -> n1 across the tunnel ($T1)" ping_ok n3 "$T1"
check "ping n1 -> n3 across the tunnel ($T3)" ping_ok n1 "$T3"
ep=$(peer_ep n3 n1)
check "n3 sends to n1 over IPv6 (endpoint=$ep)" test "${ep%:*}" = "[2001:db8::11]"
ep=$(peer_ep n1 n3)
check "n1 sends to n3 over IPv6, the only family it has (endpoint=$ep)" test "${ep%:*}" = "[2001:db8::13]"

# a dual-stack agent behind an IPv4 NAT with open IPv6: one NAT discovery
# run per family, each against the first --stun server of its family (the
# IPv6 one given first), each with its own verdict
ip netns exec "$P-n5" "$B/meshd" --service "$API" --insecure-http --reg-key-file "$T/regkey" \
	--stun "[2001:db8::1]:3478" --stun 203.0.113.1:3478 --ifname nm-n5 --hostname n5 \
	--state-dir "$T/state-n5" --control "$T/n5.sock" >>"$T/n5.log" 2>&1 &
PIDS[n5]=$!
check "n5 registers" wait_for 10 registered n5
check "dual-stack n5 reports its IPv4 reflexive endpoint (gw5) and its IPv6 one" \
	wait_for 5 has_eps n5 '^stun:203\.0\.113\.1:3478 203\.0\.113\.15:' '^stun:\[2001:db8::1\]:3478 \[2001:db8::15\]:'
check "n5 over IPv4 (gw5's NAT): endpoint-independent mapping, address-and-port-dependent filtering" \
	wait_for 20 eval '[ "$(natfam n5 ipv4 mapping)" = endpoint-independent ] &&
			  [ "$(natfam n5 ipv4 filtering)" = address-and-port-dependent ]'
check "n5 over IPv6 (no NAT, no firewall): endpoint-independent mapping and filtering" \
	wait_for 20 eval '[ "$(natfam n5 ipv6 mapping)" = endpoint-independent ] &&
			  [ "$(natfam n5 ipv6 filtering)" = endpoint-independent ]'
check "the service's top level is n5's IPv4 findings, though the IPv6 server came first" \
	natok n5 endpoint-independent address-and-port-dependent
natdone() { "$B/meshctl" --control "$T/$1.sock" -o json status | jq -e '.nat.ipv4.running == false and .nat.ipv6.running == false' >/dev/null; }
check "both of n5's runs end (hairpinning tested too)" wait_for 20 natdone n5
js=$("$B/meshctl" --control "$T/n5.sock" -o json status)
jqe() { jq -e "$2" >/dev/null <<<"$1"; }	# JSON FILTER: FILTER is true of JSON
check "meshctl status -o json on n5: behind a NAT over IPv4 (server 203.0.113.1:3478), not over IPv6" \
	jqe "$js" '.nat.ipv4.behind_nat == true and .nat.ipv4.server == "203.0.113.1:3478" and
		   .nat.ipv6.behind_nat == false and .nat.ipv6.server == "[2001:db8::1]:3478" and
		   .nat.ipv4.type == "port-restricted cone"'
check "and its top level is the IPv4 run's" jqe "$js" '.nat.behind_nat == true and .nat.server == "203.0.113.1:3478"'
st=$("$B/meshctl" --control "$T/n5.sock" status)
check "meshctl status on n5: a NAT line per family" \
	eval 'grep -q "^NAT (IPv4): *endpoint-independent mapping, address-and-port-dependent filtering (port-restricted cone)$" <<<"$st" &&
	      grep -q "^NAT (IPv6): *endpoint-independent mapping, endpoint-independent filtering (no NAT)$" <<<"$st"'
check "n5 logged a verdict per family" \
	eval 'grep -q "NAT behaviour family=ipv4 .*filtering=address-and-port-dependent behind_nat=true" "$T/n5.log" &&
	      grep -q "NAT behaviour family=ipv6 .*filtering=endpoint-independent behind_nat=false" "$T/n5.log"'
check "n5 is not called symmetric: its IPv4 and IPv6 mappings differ by family, not by destination" \
	eval '[ "$(ctl n5 "{\"cmd\":\"status\"}" | jq -r .symmetric_nat)" = false ]'
check "n3, given an IPv6 --stun server only, runs IPv6 discovery only" \
	eval '[ "$(ctl n3 "{\"cmd\":\"status\"}" | jq -r ".nat.ipv4, (.nat.ipv6 | type)" | tr "\n" " ")" = "null object " ]'

# a host without IPv6: meshd falls back to an IPv4 socket and reports no IPv6
# endpoint, although the interface has one; it registers over IPv4 with the
# same meshsvc (on [::], which takes both families) and meets n3 over IPv4
ip netns exec "$P-n4" python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)' 2>/dev/null &&
	! no_ipv6 ip netns exec "$P-n4" python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)' 2>/dev/null
check "(the no-IPv6 wrapper refuses IPv6 sockets, and only under it)" test $? = 0
python3 "$T/no_ipv6.py" ip netns exec "$P-n4" "$B/meshd" --service http://203.0.113.1:8080 --insecure-http --reg-key-file "$T/regkey" \
	--ifname nm-n4 --hostname n4 \
	--state-dir "$T/state-n4" --control "$T/n4.sock" >>"$T/n4.log" 2>&1 &
PIDS[n4]=$!
check "without IPv6 meshd says so and runs on IPv4" wait_for 5 grep -q "no IPv6 on this host" "$T/n4.log"
check "its WireGuard socket is 0.0.0.0" wait_for 5 eval '[ -n "$(X n4 ss -Hlun "sport = :$(ctl n4 "{\"cmd\":\"status\"}" | jq -r .listen_port)" | grep "0\.0\.0\.0:")" ]'
check "it reports its IPv4 local endpoint and no IPv6 one" \
	wait_for 5 eval 'has_eps n4 "^local 203\.0\.113\.14:" && ! has_eps n4 "2001:db8"'
check "n4 registers over IPv4 with the service listening on [::]" wait_for 10 registered n4
T4=$(tunnel_ip n4)
check "n4 -> n3 path is direct" wait_for 10 path_is n4 n3 direct
check "ping n4 -> n3 across the tunnel ($T3)" ping_ok n4 "$T3"
ep=$(peer_ep n3 n4)
check "n3 sends to n4 over IPv4, the only family n4 reports (endpoint=$ep)" test "${ep%:*}" = 203.0.113.14
check "while n3 beside it, with IPv6, listens on [::]" \
	eval '[ -n "$(X n3 ss -Hlun "sport = :$(ctl n3 "{\"cmd\":\"status\"}" | jq -r .listen_port)" | grep "\[::\]:\|\*:")" ]'

for n in n1 n2 n3 n4 n5; do stop_agent "$n"; done
check "no agent logged an error" eval '! grep -h " error " "$T"/n?.log'
check "no sanitizer report in any log" eval '! grep -l "Sanitizer\|runtime error" "$T"/*.log'
[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
