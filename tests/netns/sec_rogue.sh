#!/usr/bin/env bash
# A rogue member of the VPC against two honest agents (issue 15, points 1, 2
# and 5 in the lab). Topology of agent_common.bash; pub, gw1/n1, gw2/n2 and
# r1 are used:
#
#   n1 --[gw1 masquerade]--+
#                          +-- pub: meshsvc https://203.0.113.1:8080, meshstun :3478
#   n2 --[gw2 masquerade]--+
#                          +-- r1 203.0.113.21: the rogue, a real meshd (port
#                              51820) registered with the VPC's own key, plus
#                              curl with its device token and raw sockets
#
# n1 and n2 ping each other over the tunnel (-i 0.1) from before the first
# attack to after the last. The rogue asks to be a relay (registering with
# relay: true, then PATCHing its own device): 403 naming relay, and it stays
# no relay. It sends
# UDP into its tunnel to each honest agent with the other one's tunnel address
# as inner source: counted at the victim's interface, none is delivered, while
# the same datagrams with its own source before and after are. It registers
# each honest agent's public key (from the peer list it may read) with the
# VPC's multi-use key and with a single-use key: 409 naming public_key, with
# its own token 403, with a key challenge answered with its own private key
# 403 naming proof; the victims' tokens still answer 200, their devices are
# unchanged, and the single-use key is not spent (it registers a new device
# once afterwards, and then no more). It PATCHes its endpoints to loopback,
# link-local, multicast and broadcast addresses: 400 naming the endpoint's
# field, nothing stored, and nftables counters in n1 and n2 see no datagram to
# such addresses (while counting theirs to the rogue). At the end: each ping
# lost at most 1%, n1 <-> n2 is still direct and pings both ways, and both
# honest tokens answer 200.
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun
for c in openssl wg nft python3; do
	command -v "$c" >/dev/null || { skip "$c is not installed"; exit 0; }
done

PING_COUNT=${PING_COUNT:-200}	# -i 0.1: 20 s, about three times the attacks

if ! setup; then not_ok "topology"; exit 1; fi
throwaway_ca || { not_ok "throwaway CA"; exit 1; }
start_service --tls-cert "$T/svc.pem" --tls-key "$T/svc.key" || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }
VPC=$(api GET /api/vpcs | jq -r '.[0].id')
(umask 077 && api POST /api/reg-keys "{\"vpc_id\":\"$VPC\",\"single_use\":true}" >"$T/once.json")
ONCE_ID=$(jq -r .id "$T/once.json") ONCE=$(jq -r .secret "$T/once.json")
[ -n "$ONCE" ] && [ "$ONCE" != null ] || { not_ok "a single-use registration key"; dump_logs; exit 1; }

agent n1 n1
agent n2 n2
agent rogue r1 --listen-port 51820
registered() { [ -n "$(tunnel_ip "$1")" ]; }
check "n1, n2 and the rogue register with the VPC's key" \
	wait_for 10 eval 'registered n1 && registered n2 && registered rogue'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2) TR=$(tunnel_ip rogue)
check "n1 -> n2 is direct" wait_for 10 path_is n1 n2 direct
check "n2 -> n1 is direct" wait_for 5 path_is n2 n1 direct
check "n1 and n2 reach the rogue directly" wait_for 10 eval 'path_is n1 rogue direct && path_is n2 rogue direct'

devid() { jq -r .device_id "$T/state-$1/state.json"; }
tok() { cat "$T/state-$1/device.token"; }
ID1=$(devid n1) ID2=$(devid n2) IDR=$(devid rogue)
TOK1=$(tok n1) TOK2=$(tok n2) TOKR=$(tok rogue)
check "the agents saved their device ids and tokens" \
	eval '[ -n "$ID1" ] && [ -n "$ID2" ] && [ -n "$IDR" ] && [ -n "$TOK1" ] && [ -n "$TOK2" ] && [ -n "$TOKR" ]'
api GET /api/devices >"$T/devices-before.json"

# as NS TOKEN METHOD PATH [BODY]: a request from NS with TOKEN; the status on
# stdout, the answer's body in $T/out.json
as() {
	X "$1" curl -sS -m 5 --cacert "$CA" -o "$T/out.json" -w '%{http_code}' -X "$3" \
		-H "Authorization: Bearer $2" -H 'Content-Type: application/json' ${5:+-d "$5"} "$API$4"
}
field() { jq -r '.field // empty' "$T/out.json"; }
# refused WHAT STATUS FIELD NS TOKEN METHOD PATH [BODY]
refused() {
	local what=$1 want=$2 wantf=$3 code f
	shift 3
	code=$(as "$@")
	f=$(field)
	if [ "$code" = "$want" ] && [ "$f" = "$wantf" ]; then
		ok "$what: $code${f:+, field $f}"
	else
		not_ok "$what: want $want field $wantf, got ${code:-none} field ${f:-none}: $(head -c 200 "$T/out.json" 2>/dev/null)"
	fi
}

# nftables counters in each honest agent's namespace: UDP it sends to an
# address no agent should send to (but its own SSDP search for a UPnP
# gateway, issue 18: an M-SEARCH to 239.255.255.250:1900, counted apart;
# anything else there, a handshake aimed at it, still counts as bad), UDP it sends to the rogue's endpoint (so a
# zero above is not a counter that counts nothing), and datagrams to port
# 7777 that its interface delivers from the other honest agent's tunnel
# address (forged by the rogue) and from the rogue's own
counters() {	# NS IFNAME OTHER_TUNNEL_IP
	X "$1" nft -f - <<-EOF
	table inet nmt_rogue {
		counter bad_dst { }
		counter to_rogue { }
		counter forged { }
		counter own { }
		counter ssdp { }
		chain out {
			type filter hook output priority -300;
			ip daddr 239.255.255.250 udp dport 1900 @th,64,64 0x4d2d534541524348 counter name ssdp return
			meta l4proto udp ip daddr { 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255 } counter name bad_dst
			ip daddr 203.0.113.21 udp dport 51820 counter name to_rogue
		}
		chain in {
			type filter hook prerouting priority -300;
			iifname "$2" ip saddr $3 udp dport 7777 counter name forged
			iifname "$2" ip saddr $TR udp dport 7777 counter name own
		}
	}
	EOF
}
counters n1 nm-n1 "$T2" && counters n2 nm-n2 "$T1" || { not_ok "nftables counters in n1 and n2"; dump_logs; exit 1; }
count() { X "$1" nft -j list counter inet nmt_rogue "$2" | jq -r '.nftables[] | select(.counter) | .counter.packets'; }

# the honest traffic, both ways, counted across every attack
ip netns exec "$P-n1" ping -i 0.1 -c "$PING_COUNT" -W 1 "$T2" >"$T/ping1.txt" 2>&1 &
PIDS["ping1"]=$!
ip netns exec "$P-n2" ping -i 0.1 -c "$PING_COUNT" -W 1 "$T1" >"$T/ping2.txt" 2>&1 &
PIDS["ping2"]=$!
t_attack=$SECONDS

# --- point 1: relaying is granted, not claimed ---------------------------------
PKX=$(wg genkey | wg pubkey)
ndev=$(jq length "$T/devices-before.json")
refused "the rogue registers a new key claiming relay: true with the VPC's key" 403 relay \
	r1 "$(cat "$T/regkey")" POST /api/devices "{\"public_key\":\"$PKX\",\"hostname\":\"rogue2\",\"relay\":true}"
check "... and no device was created" test "$(api GET /api/devices | jq length)" = "$ndev"
refused "the rogue PATCHes its own device to relay: true" 403 relay \
	r1 "$TOKR" PATCH "/api/devices/$IDR" '{"relay":true}'
check "... and it is still no relay" test "$(api GET "/api/devices/$IDR" | jq -r .relay)" = false

# --- point 1: inner sources forged through the rogue's own tunnel --------------
# inject SRC DST N: N UDP datagrams SRC:40000 -> DST:7777 written into the
# rogue's interface (tests/netns/forge.py)
FORGE="$(cd "$(dirname "$0")" && pwd)/forge.py"
inject() {
	X r1 python3 "$FORGE" nm-rogue "$1" "$2" "$3" rogue
}
# forge NS IP OTHER OTHER_IP: OTHER's address forged towards NS at IP
forge() {
	local ns=$1 ip=$2 other=$3 oip=$4 own0 own1 own2 forged
	# the rogue's own source first: delivered (and the session is up)
	own0=$(count "$ns" own)
	through() { inject "$TR" "$ip" 1; [ "$(count "$ns" own)" -gt "$own0" ]; }
	wait_for 5 through
	own1=$(count "$ns" own)
	inject "$oip" "$ip" 50
	inject "$TR" "$ip" 50
	sleep 0.3
	own2=$(count "$ns" own)
	forged=$(count "$ns" forged)
	check "the rogue's datagrams with its own source reach $ns's interface ($((own2 - own1)) of 50)" \
		test $((own2 - own1)) -ge 45
	check "none of 50 with $other's address ($oip) forged as source does ($forged delivered)" test "$forged" = 0
}
forge n1 "$T1" n2 "$T2"
forge n2 "$T2" n1 "$T1"

# --- point 2: a registered public key does not change hands --------------------
as r1 "$TOKR" GET "/api/vpcs/$VPC/devices" >/dev/null
PK1=$(jq -r --arg id "$ID1" '.devices[] | select(.id == $id) | .public_key' "$T/out.json")
PK2=$(jq -r --arg id "$ID2" '.devices[] | select(.id == $id) | .public_key' "$T/out.json")
check "the rogue reads n1's and n2's public keys from its peer list" \
	eval '[ -n "$PK1" ] && [ "$PK1" != null ] && [ -n "$PK2" ] && [ "$PK2" != null ]'
# take NAME PUBLIC_KEY: the rogue registers NAME's key, in three ways
take() {
	local body="{\"public_key\":\"$2\",\"hostname\":\"$1\"}"
	refused "the rogue registers $1's public key with the VPC's multi-use key" 409 public_key \
		r1 "$(cat "$T/regkey")" POST /api/devices "$body"
	refused "the rogue registers $1's public key with a single-use key" 409 public_key \
		r1 "$ONCE" POST /api/devices "$body"
	refused "the rogue registers $1's public key with its own device token" 403 public_key \
		r1 "$TOKR" POST /api/devices "$body"
	# a key challenge for the victim's key, answered with the rogue's own private key
	local ch sk mac
	as r1 "$(cat "$T/regkey")" POST /api/devices/challenge "{\"public_key\":\"$2\"}" >/dev/null
	ch=$(jq -r .challenge "$T/out.json") sk=$(jq -r .service_key "$T/out.json")
	mac=$(python3 "$(dirname "$0")/svc_proof.py" "$T/state-rogue/private.key" "$ch" "$sk")
	refused "the rogue registers $1's public key with a key proof made with its own private key" 403 proof \
		r1 "$(cat "$T/regkey")" POST /api/devices \
		"{\"public_key\":\"$2\",\"hostname\":\"$1\",\"proof\":{\"challenge\":\"$ch\",\"mac\":\"$mac\"}}"
}
take n1 "$PK1"
take n2 "$PK2"
check "n1's token still answers 200 (GET its device)" test "$(as n1 "$TOK1" GET "/api/devices/$ID1")" = 200
check "n2's token still answers 200 (GET its device)" test "$(as n2 "$TOK2" GET "/api/devices/$ID2")" = 200
same() {	# ID: the device's key, address and relay flag as before the attacks
	[ "$(api GET "/api/devices/$1" | jq -c '[.public_key, .tunnel_ip, .relay]')" = \
		"$(jq -c --arg id "$1" '.[] | select(.id == $id) | [.public_key, .tunnel_ip, .relay]' "$T/devices-before.json")" ]
}
check "n1's and n2's devices are unchanged (key, tunnel address, relay)" eval 'same "$ID1" && same "$ID2"'
k=$(api GET "/api/reg-keys/$ONCE_ID" | jq -c '[.used, .registrations]')
check "the single-use key is not spent by refused registrations (used, registrations: $k)" test "$k" = '[false,0]'
refused "... so it registers a new device once" 201 "" r1 "$ONCE" POST /api/devices \
	"{\"public_key\":\"$(wg genkey | wg pubkey)\",\"hostname\":\"once\"}"
refused "... and then no more" 401 "" r1 "$ONCE" POST /api/devices \
	"{\"public_key\":\"$(wg genkey | wg pubkey)\",\"hostname\":\"twice\"}"

# --- point 5: endpoints that would aim the agents elsewhere --------------------
for a in 127.0.0.1:51820 169.254.169.254:80 224.0.0.1:51820 255.255.255.255:51820; do
	refused "the rogue PATCHes its endpoint to $a" 400 'endpoints[0].address' \
		r1 "$TOKR" PATCH "/api/devices/$IDR" "{\"endpoints\":[{\"source\":\"local\",\"address\":\"$a\"}]}"
done
refused "the rogue PATCHes a usable endpoint followed by 169.254.169.254:80" 400 'endpoints[1].address' \
	r1 "$TOKR" PATCH "/api/devices/$IDR" \
	'{"endpoints":[{"source":"local","address":"203.0.113.21:51820"},{"source":"local","address":"169.254.169.254:80"}]}'
stored=$(api GET "/api/devices/$IDR" | jq -r '[.endpoints[].address] | join(" ")')
check "none of them is stored (the rogue's endpoints: $stored)" \
	eval '! grep -Eq "(^| )(127\.|169\.254\.|22[4-9]\.|23[0-9]\.|255\.255\.255\.255)" <<<"$stored"'
sleep 2	# a peer-list update reaches the agents within milliseconds
t_attack=$((SECONDS - t_attack))

check "the pings were still running when the attacks ended (${t_attack} s)" \
	kill -0 "${PIDS[ping1]}" "${PIDS[ping2]}"
# lost PING FROM TO: the summary of the ping PIDS[PING], at most 1% lost
lost() {
	local sent got
	wait "${PIDS[$1]}"; unset "PIDS[$1]"
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1/p' "$T/$1.txt")
	got=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\2/p' "$T/$1.txt")
	echo "# ping $2 -> $3 across the attacks: ${sent:-?} sent, ${got:-?} received"
	check "the ping $2 -> $3 lost at most 1% across the attacks (${got:-?} of ${sent:-?} answered)" \
		eval '[ -n "$sent" ] && [ "$sent" -gt 0 ] && [ $(( (sent - got) * 100 )) -le "$sent" ]'
}
lost ping1 n1 n2
lost ping2 n2 n1

for n in n1 n2; do
	b=$(count "$n" bad_dst) r=$(count "$n" to_rogue)
	check "$n sent no UDP to loopback, link-local, multicast or broadcast ($b), while $r to the rogue" \
		eval '[ "$b" = 0 ] && [ "$r" -gt 0 ]'
done
check "n1 -> n2 is still direct" path_is n1 n2 direct
check "n2 -> n1 is still direct" path_is n2 n1 direct
check "ping n1 -> n2 across the tunnel after the attacks" ping_ok n1 "$T2"
check "ping n2 -> n1 across the tunnel after the attacks" ping_ok n2 "$T1"
check "n1 and n2 still hold the tunnel addresses they had" \
	eval '[ "$(tunnel_ip n1)" = "$T1" ] && [ "$(tunnel_ip n2)" = "$T2" ]'
check "n1's token answers 200 at the end" test "$(as n1 "$TOK1" GET "/api/devices/$ID1")" = 200
check "n2's token answers 200 at the end" test "$(as n2 "$TOK2" GET "/api/devices/$ID2")" = 200
check "n1 and n2 kept their tokens (no new registration)" \
	eval '[ "$(tok n1)" = "$TOK1" ] && [ "$(tok n2)" = "$TOK2" ]'

check "no sanitizer report in any log" bash -c "! grep -l 'AddressSanitizer\|LeakSanitizer\|runtime error' $T/*.log"

[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
