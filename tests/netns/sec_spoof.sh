#!/usr/bin/env bash
# A forged inner source address (issue 16): a test peer that holds the real
# private key of one device (n1, registered by a real meshd that is then
# stopped) and sends packets whose inner source is another device's tunnel
# address. All hosts are public (no NAT: the forger must reach n2 directly):
#
#   n1 203.0.113.11: the forger, wireguard-go + wg with n1's key, port 51820;
#                    peers n2 (allowed-ips n2's /32) and the relay (the VPC)
#   n2 203.0.113.12: meshd, port 51820                       --+
#   n3 203.0.113.13: meshd --relay-only, port 51820            +-- br0 in pub:
#   r1 203.0.113.21: meshd --relay, port 51820                 |   203.0.113.1
#                                                              |   meshsvc :8080
#                                               203.0.113.2 ---+   meshstun :3478
#
# (a) Direct: UDP to n2 with n3's tunnel address as source. n2's interface
#     delivers none (an nftables counter in n2) and n2's spoofed_sources
#     rises by as many; the same datagrams with n1's own source, before and
#     after, are delivered.
# (b) Through the relay: UDP to n3 with n2's tunnel address as source (n3 is
#     --relay-only, so it takes any VPC source from the relay: only the
#     relay's check stands between the forger and n3's interface). The relay
#     forwards none (n3's interface counter, the relay's relay_forwarded) and
#     its spoofed_sources rises; n1's own source is forwarded and delivered.
#     (Towards n2 the control could not pass: n2 reaches n1 directly, so it
#     refuses n1's address from the relay too.)
source "$(dirname "$0")/agent_common.bash"
source "$(dirname "$0")/wgref.bash"

need meshd meshsvc meshstun
[ -n "$WG_GO" ] || { skip "$WG_GO_WHY"; exit 0; }
wgref_note
for c in wg nft python3 jq; do
	command -v "$c" >/dev/null || { skip "$c is not installed"; exit 0; }
done

NS=(pub n1 n2 n3 r1)
N=50
IFF=nmf$$	# /var/run/wireguard/ is shared by every namespace: the pid in the name
spoof_cleanup() {
	cleanup
	rm -f "/var/run/wireguard/$IFF.sock"
}
trap spoof_cleanup EXIT

spoof_setup() {
	local n
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 || return 1
	wan n1 203.0.113.11 && wan n2 203.0.113.12 && wan n3 203.0.113.13 && wan r1 203.0.113.21
}
if ! spoof_setup; then not_ok "topology"; exit 1; fi
start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration keys"; dump_logs; exit 1; }
VPC_CIDR=$(api GET /api/vpcs | jq -r '.[0].ipv4_cidr')

agent relay r1 --relay --listen-port 51820
agent n1 n1 --listen-port 51820
agent n2 n2 --listen-port 51820
agent n3 n3 --listen-port 51820 --relay-only
registered() { [ -n "$(tunnel_ip "$1")" ]; }
check "the relay, n1, n2 and n3 register" \
	wait_for 10 eval 'registered relay && registered n1 && registered n2 && registered n3'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2) T3=$(tunnel_ip n3) TRL=$(tunnel_ip relay)
echo "# VPC $VPC_CIDR: n1 $T1, n2 $T2, n3 $T3, relay $TRL"
check "n2 -> n1 is direct" wait_for 10 path_is n2 n1 direct
check "n3 -> n1 is relayed" wait_for 10 path_is n3 n1 relayed
stop_agent n1
check "n1's meshd stopped and left its private key" test -s "$T/state-n1/private.key"

# the forger: n1's key, at n1's address and port
ip netns exec "$P-n1" env LOG_LEVEL=error "$WG_GO" -f "$IFF" >>"$T/forger.log" 2>&1 &
PIDS["forger"]=$!
up() { [ -S "/var/run/wireguard/$IFF.sock" ] && X n1 wg show "$IFF" >/dev/null 2>&1; }
pub() { api GET /api/devices | jq -r --arg ip "$1" '.[] | select(.tunnel_ip == $ip) | .public_key'; }
PK1=$(pub "$T1") PK2=$(pub "$T2") PKR=$(pub "$TRL")
wait_for 5 up && X n1 wg set "$IFF" private-key "$T/state-n1/private.key" listen-port 51820 \
	peer "$PK2" endpoint 203.0.113.12:51820 allowed-ips "$T2/32" \
	peer "$PKR" endpoint 203.0.113.21:51820 allowed-ips "$VPC_CIDR" &&
	X n1 ip addr add "$T1/32" dev "$IFF" && X n1 ip link set "$IFF" up &&
	X n1 ip route add "$VPC_CIDR" dev "$IFF" || { not_ok "the forger's wireguard-go with n1's key"; dump_logs; exit 1; }
check "the forger's public key is n1's" \
	test "$(X n1 wg show "$IFF" public-key)" = "$PK1"

# datagrams to port 7777 that a victim's interface delivers, by inner source
counters() {	# NS IFNAME FORGED_SRC
	X "$1" nft -f - <<-EOF
	table inet nmt_spoof {
		counter forged { }
		counter own { }
		chain in {
			type filter hook prerouting priority -300;
			iifname "$2" ip saddr $3 udp dport 7777 counter name forged
			iifname "$2" ip saddr $T1 udp dport 7777 counter name own
		}
	}
	EOF
}
counters n2 nm-n2 "$T3" && counters n3 nm-n3 "$T2" || { not_ok "nftables counters in n2 and n3"; dump_logs; exit 1; }
count() { X "$1" nft -j list counter inet nmt_spoof "$2" | jq -r '.nftables[] | select(.counter) | .counter.packets'; }
status() { ctl "$1" '{"cmd":"status"}' | jq -r "$2"; }
spoofed() { status "$1" '.policy.spoofed_sources'; }
forwarded() { status relay '.relay_forwarded'; }

# inject SRC DST N: N UDP datagrams SRC:40000 -> DST:7777 written into the
# forger's interface (tests/netns/forge.py)
FORGE="$(cd "$(dirname "$0")" && pwd)/forge.py"
inject() {
	X n1 python3 "$FORGE" "$IFF" "$1" "$2" "$3" spoof
}

# forge WHAT VICTIM_NS DST FORGED_SRC FORGED_NAME COUNTER_NS: own source
# first (until one is delivered: the sessions are up), N forged, N own; the
# counter of spoofed sources read from COUNTER_NS (the victim or the relay)
forge() {
	local what=$1 ns=$2 dst=$3 src=$4 sname=$5 cns=$6 own0 own1 own2 bad0 bad1 fw0 fw1 fw2 forged
	own0=$(count "$ns" own)
	through() { inject "$T1" "$dst" 1; [ "$(count "$ns" own)" -gt "$own0" ]; }
	check "$what: a datagram with n1's own source reaches $ns's interface" wait_for 8 through
	sleep 0.3
	own1=$(count "$ns" own) bad0=$(spoofed "$cns") fw0=$(forwarded)
	inject "$src" "$dst" "$N"
	sleep 0.3
	bad1=$(spoofed "$cns") fw1=$(forwarded)
	inject "$T1" "$dst" "$N"
	sleep 0.3
	own2=$(count "$ns" own) forged=$(count "$ns" forged) fw2=$(forwarded)
	echo "# $what: own $((own2 - own1)) of $N delivered, forged $forged delivered;" \
		"$cns spoofed_sources +$((bad1 - bad0)); relay_forwarded +$((fw1 - fw0)) forged, +$((fw2 - fw1)) own"
	check "$what: none of $N with $sname's address ($src) forged as source reaches $ns's interface ($forged)" \
		test "$forged" = 0
	check "$what: $cns counts them in spoofed_sources (+$((bad1 - bad0)))" test $((bad1 - bad0)) -ge $((N - 5))
	check "$what: $N with n1's own source after them reach $ns's interface ($((own2 - own1)))" \
		test $((own2 - own1)) -ge $((N - 5))
	if [ "$cns" = relay ]; then
		check "$what: the relay forwarded none of the forged ones (+$((fw1 - fw0)))" test $((fw1 - fw0)) -lt 5
		check "$what: the relay forwarded the own ones (+$((fw2 - fw1)))" test $((fw2 - fw1)) -ge $((N - 5))
	fi
}
forge "direct to n2" n2 "$T2" "$T3" n3 n2
forge "through the relay to n3" n3 "$T3" "$T2" n2 relay

check "the forger's handshake with n2 is the one in use (wg show)" \
	test "$(X n1 wg show "$IFF" latest-handshakes | awk -v k="$PK2" '$1 == k { print $2 }')" -gt 0
check "n2, n3 and the relay are still running" kill -0 "${PIDS[n2]}" "${PIDS[n3]}" "${PIDS[relay]}"
check "no sanitizer report in any log" bash -c "! grep -l 'AddressSanitizer\|LeakSanitizer\|runtime error' $T/*.log"

[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
