#!/usr/bin/env bash
# meshd's port mapping (issue 18) against a real miniupnpd (Debian's
# miniupnpd-nftables 2.3.1) in the gateway, by PCP, NAT-PMP and UPnP-IGD.
#
#   n1 10.1.0.2 --- lan 10.1.0.1 [gw1] wan 203.0.113.11 --- br0 in [pub]: 203.0.113.1 meshsvc :8080, meshstun :3478
#                       miniupnpd, nftables masquerade                    203.0.113.2 meshstun :3478
#                       meshstun 203.0.113.11:3478 + 127.0.0.1:3478 (for miniupnpd)
#
# The "internet" is a documentation range (ARCHITECTURE.md), which miniupnpd
# 2.3.1 treats as reserved on its WAN: it turns port forwarding off, ext_ip
# refuses such an address, and no option allows it (the first checks below
# show all three). What does: ext_perform_stun, which asks a STUN server
# whether the WAN address is really behind a NAT; the gateway runs its own
# meshstun --rfc5780 on its WAN address and 127.0.0.1, reached over lo, as
# meshsim's gateways do (sim/portmapd.c). Nothing leaves these namespaces.
#
# Per protocol (meshd --port-mapping restricts it: miniupnpd 2.3.1's one
# switch, enable_natpmp, turns PCP and NAT-PMP on together): the mapping
# appears in the gateway's nftables; a datagram from a port of pub that n1
# never talked to, sent to the mapped address, reaches n1's WireGuard port
# (and does not before); the service's record of n1 has an endpoint with
# source "portmap"; after a gateway "reboot" (miniupnpd restarted, its
# rules and conntrack flushed) meshd maps again within 5 s (PCP, NAT-PMP: the
# epoch; UPnP: the mapping asked for); SIGTERM removes the mapping. Then the
# default (PCP taken), a default route that moves and comes back (rtnetlink),
# and --no-port-mapping, which sends nothing to ports 5351 or 1900 (tcpdump
# in the gateway).
. "$(dirname "$0")/agent_common.bash"
NS=(pub gw1 n1)
API=http://203.0.113.1:8080
need meshd meshsvc meshstun meshctl
for b in miniupnpd conntrack tcpdump; do
	command -v "$b" >/dev/null || { skip "$b is not installed (tools/install-deps)"; exit 0; }
done

lab() {
	local n
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 &&
	X pub ip link add w-gw1 type veth peer name wan netns "$P-gw1" &&
	X pub ip link set w-gw1 master br0 && X pub ip link set w-gw1 up &&
	X gw1 ip addr add 203.0.113.11/24 dev wan && X gw1 ip link set wan up &&
	X gw1 ip link add lan type veth peer name eth0 netns "$P-n1" &&
	X gw1 ip addr add 10.1.0.1/24 dev lan && X gw1 ip link set lan up &&
	X gw1 sysctl -qw net.ipv4.ip_forward=1 &&
	X n1 ip addr add 10.1.0.2/24 dev eth0 && X n1 ip link set eth0 up &&
	X n1 ip route add default via 10.1.0.1 || return 1
	# miniupnpd adds its rules to the chains named in its config; the
	# base chains jump there first, then masquerade and drop new inbound
	X gw1 nft -f - <<-EOF
	table inet gw {
		chain forward { type filter hook forward priority 0; ct state established,related accept; jump miniupnpd; iifname "wan" ct state new drop; }
		chain miniupnpd { }
		chain input { type filter hook input priority 0; iifname "wan" ct state new drop; }
		chain prerouting { type nat hook prerouting priority -100; jump prerouting_miniupnpd; }
		chain prerouting_miniupnpd { }
		chain postrouting { type nat hook postrouting priority 100; jump postrouting_miniupnpd; oifname "wan" masquerade; }
		chain postrouting_miniupnpd { }
	}
	EOF
}

upnpd_conf() {	# FILE [extra lines]
	local f=$1; shift
	cat >"$f" <<-EOF
	ext_ifname=wan
	listening_ip=lan
	enable_natpmp=yes
	enable_upnp=yes
	secure_mode=yes
	upnp_table_name=gw
	upnp_nat_table_name=gw
	upnp_forward_chain=miniupnpd
	upnp_nat_chain=prerouting_miniupnpd
	upnp_nat_postrouting_chain=postrouting_miniupnpd
	lease_file=$T/upnpd.leases
	uuid=3d3cec3a-8cf0-11e0-98ee-00$(printf %010x $$)
	allow 1024-65535 10.1.0.0/24 1024-65535
	deny 0-65535 0.0.0.0/0 0-65535
	ext_perform_stun=yes
	ext_stun_host=203.0.113.11
	ext_stun_port=3478
	EOF
	printf '%s\n' "$@" >>"$f"
}

start_upnpd() {
	ip netns exec "$P-gw1" miniupnpd -d -f "$T/upnpd.conf" >>"$T/upnpd.log" 2>&1 &
	PIDS[upnpd]=$!
	wait_port gw1 u 5351
}

stop_upnpd() { stop_agent upnpd; }

# the facts of miniupnpd 2.3.1 the lab rests on, each seen, not assumed
facts() {
	local out
	upnpd_conf "$T/f1.conf"
	sed -i '/^ext_perform_stun\|^ext_stun/d' "$T/f1.conf"
	out=$(X gw1 timeout 2 miniupnpd -d -f "$T/f1.conf" 2>&1)
	check "miniupnpd 2.3.1 with WAN 203.0.113.11 turns forwarding off ('Port forwarding is impossible')" \
		grep -q "Reserved / private IP address 203.0.113.11 on ext interface wan: Port forwarding is impossible" <<<"$out"
	upnpd_conf "$T/f2.conf" ext_ip=203.0.113.11
	sed -i '/^ext_perform_stun\|^ext_stun/d' "$T/f2.conf"
	out=$(X gw1 timeout 2 miniupnpd -d -f "$T/f2.conf" 2>&1)
	check "... and ext_ip= does not allow it: 'option ext_ip contains reserved / private address'" \
		grep -q "option ext_ip contains reserved / private address" <<<"$out"
	X gw1 ip addr add 100.64.0.11/24 dev wan && X gw1 ip addr del 203.0.113.11/24 dev wan
	out=$(X gw1 timeout 2 miniupnpd -d -f "$T/f1.conf" 2>&1)
	check "... nor WAN 100.64.0.11 (100.64/10)" grep -q "Reserved / private IP address 100.64.0.11" <<<"$out"
	X gw1 ip addr add 203.0.113.11/24 dev wan && X gw1 ip addr del 100.64.0.11/24 dev wan
	upnpd_conf "$T/f3.conf"
	out=$(X gw1 timeout 3 miniupnpd -d -f "$T/f3.conf" 2>&1)
	check "... ext_perform_stun with the gateway's own STUN server: no 'impossible', NAT-PMP/PCP listening" \
		eval '! grep -q "Port forwarding is impossible" <<<"$out" && grep -q "Listening for NAT-PMP/PCP traffic on port 5351" <<<"$out"'
}

status() { "$B/meshctl" --control "$T/n1.sock" -o json status 2>/dev/null; }
pm() { status | jq -r ".port_mapping.$1 // empty"; }
mapped() { [ "$(pm state)" = mapped ]; }
nft_has() { X gw1 nft list chain inet gw prerouting_miniupnpd | grep -q "dnat ip to 10.1.0.2:$1"; }
nft_gone() { ! nft_has "$1"; }

start_n1() {	# [meshd args]
	ip netns exec "$P-n1" "$B/meshd" --service "$API" --insecure-http --reg-key-file "$T/regkey" \
		--stun 203.0.113.1:3478 --stun 203.0.113.2:3478 --ifname "nm-n1" --hostname n1 \
		--state-dir "$T/state-n1" --control "$T/n1.sock" --no-policy ${MESHD_ARGS:-} "$@" >>"$T/n1.log" 2>&1 &
	PIDS[n1]=$!
}

# a datagram from pub's port 40999 (nothing inside ever sent there) to
# ADDR:PORT, seen arriving at n1's WireGuard port PORT_IN
reaches() {	# EXT_IP EXT_PORT PORT_IN
	local cap="$T/cap.$RANDOM"
	ip netns exec "$P-n1" timeout 3 tcpdump -n -i eth0 -c 1 "udp and src port 40999 and dst port $3" >"$cap" 2>/dev/null &
	local tp=$!
	sleep 0.5
	for _ in 1 2 3; do echo probe | X pub socat -u - "UDP4-SENDTO:$1:$2,bind=203.0.113.1:40999"; sleep 0.2; done
	wait "$tp"
	grep -q "203.0.113.1.40999 > 10.1.0.2.$3" "$cap"
}

svc_portmap() { api GET /api/devices | jq -e --arg a "$1" '.[] | select(.hostname == "n1") | .endpoints[] | select(.source == "portmap" and .address == $a)' >/dev/null; }

reboot_gw() {
	stop_upnpd
	X gw1 nft flush chain inet gw prerouting_miniupnpd
	X gw1 nft flush chain inet gw postrouting_miniupnpd
	X gw1 nft flush chain inet gw miniupnpd
	rm -f "$T/upnpd.leases"
	X gw1 conntrack -F >/dev/null 2>&1
	start_upnpd
}

one_protocol() {	# PROTO
	local proto=$1 port ext eip eport t0 ms remaps
	start_n1 --port-mapping "$proto"
	if ! wait_for 10 mapped; then
		not_ok "$proto: meshd mapped its port through miniupnpd ($(pm state))"
		stop_agent n1
		return
	fi
	port=$(status | jq -r .listen_port)
	ext=$(pm external) eip=${ext%:*} eport=${ext##*:}
	ok "$proto: mapped udp $port -> $ext in $(pm first_mapping_ms) ms, lifetime $(pm lifetime_s) s, renewal in $(pm renew_in_s) s"
	check "$proto: meshctl status says protocol $proto" [ "$(pm protocol)" = "$proto" ]
	check "$proto: meshctl status (text) has 'port mapping: $proto at gateway 10.1.0.1: udp $port -> $ext, lifetime 7200 s, renewal in ...'" \
		eval '"$B/meshctl" --control "$T/n1.sock" status | grep -q "^port mapping: $proto at gateway 10.1.0.1: udp $port -> $ext, lifetime 7200 s, renewal in [0-9]* s$"'

	check "$proto: the mapping is in the gateway's nftables (dnat to 10.1.0.2:$port)" nft_has "$port"
	check "$proto: a datagram from the internet to $ext reaches n1:$port" reaches "$eip" "$eport" "$port"
	check "$proto: the service's record of n1 has {source: portmap, address: $ext}" wait_for 10 svc_portmap "$ext"
	remaps=$(pm remaps)
	t0=$(date +%s%N)
	reboot_gw
	if wait_for 8 eval 'nft_has "$port" && [ "$(pm remaps)" -gt "$remaps" ] && mapped'; then
		ms=$((($(date +%s%N) - t0) / 1000000))
		check "$proto: after the gateway's reboot the mapping is back in $ms ms (within 5 s)" [ "$ms" -le 5000 ]
		check "$proto: ... and the internet reaches n1 through it again" reaches "$eip" "$eport" "$port"
	else
		not_ok "$proto: after the gateway's reboot the mapping is back (remaps $(pm remaps))"
	fi
	stop_agent n1
	check "$proto: meshd's SIGTERM removed the mapping from nftables" wait_for 3 nft_gone "$port"
	grep "port mapping" "$T/n1.log" | tail -n 3 | sed 's/^/# /'
	: >"$T/n1.log"
}

setup_all() {
	lab || return 1
	ip netns exec "$P-pub" "$B/meshsvc" --listen 203.0.113.1:8080 --db "$T/svc.db" --admin-token-file "$T/admin" \
		>>"$T/svc.log" 2>&1 &
	PIDS[svc]=$!
	wait_port pub t 8080 || return 1
	ip netns exec "$P-pub" "$B/meshstun" --listen 203.0.113.1:3478 --listen 203.0.113.2:3478 >"$T/stun.log" 2>&1 &
	PIDS[stun]=$!
	wait_port pub u 3478 || return 1
	ip netns exec "$P-gw1" "$B/meshstun" --listen 203.0.113.11:3478 --listen 127.0.0.1:3478 --rfc5780 \
		>"$T/gwstun.log" 2>&1 &
	PIDS[gwstun]=$!
	wait_port gw1 u 3478 && make_vpc
}

if ! setup_all; then
	not_ok "lab setup"
	dump_logs
	tap_exit
fi
facts
upnpd_conf "$T/upnpd.conf"
start_upnpd || not_ok "miniupnpd listens on 10.1.0.1:5351"
# the control: before any mapping, the datagram does not get in
check "without a mapping a datagram from the internet to 203.0.113.11:51820 does not reach n1" \
	eval '! reaches 203.0.113.11 51820 51820'
for proto in ${PROTOS:-pcp nat-pmp upnp}; do one_protocol "$proto"; done

# the default: every protocol offered, PCP taken
start_n1
if wait_for 10 mapped; then
	check "default: of the three, meshd took pcp ($(pm protocol), $(pm first_mapping_ms) ms)" [ "$(pm protocol)" = pcp ]
	# the default route moves to another address of the gateway (where
	# miniupnpd does not listen), and back: rtnetlink tells meshd at once
	# (its poll is every 30 s)
	X gw1 ip addr add 10.1.0.254/24 dev lan
	X n1 ip route replace default via 10.1.0.254
	check "gateway change: meshd probes 10.1.0.254 within 1 s" wait_for 1 eval '[ "$(pm gateway)" = 10.1.0.254 ]'
	X n1 ip route replace default via 10.1.0.1
	check "gateway back: mapped again through 10.1.0.1 within 5 s" \
		wait_for 5 eval '[ "$(pm gateway)" = 10.1.0.1 ] && mapped'
else
	not_ok "default: meshd mapped its port ($(pm state))"
fi
stop_agent n1

# --no-port-mapping: nothing to 5351 or 1900
ip netns exec "$P-gw1" timeout 4 tcpdump -n -i lan -c 1 "udp and (dst port 5351 or dst port 1900)" >"$T/quiet" 2>/dev/null &
tp=$!
sleep 0.5
start_n1 --no-port-mapping
wait "$tp"
check "--no-port-mapping: meshctl status says off" [ "$(pm state)" = off ]
check "--no-port-mapping: no datagram to port 5351 or 1900 in 3.5 s (tcpdump in the gateway)" \
	eval '! grep -q "10.1.0.2" "$T/quiet"'
stop_agent n1
[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
