#!/usr/bin/env bash
# NAT models checked directly with plain UDP probes (no agent): for every
# preset and the port-allocation, address-dependent-mapping, hairpinning and
# timeout variants, does the mapping stay the same for two destinations, does
# a third host get in before and after the inside host sent to it, is the
# source port kept, does hairpinning work, does a mapping expire, do mappings
# stay in a configured port range, does a small range run out, and does link
# loss on wan drop the declared share of replies (counted per rate).
#
#   in1 10.0.1.2 --- lan1 10.0.1.1 +
#                                  | gw: the NAT model (udpprobe nat), wan 203.0.113.1
#   in2 10.0.2.2 --- lan2 10.0.2.1 +---- wan ---- eth0 ext: S1 203.0.113.10
#                                                          S2 203.0.113.20
#                                                          S3 203.0.113.30
# S1:3478, S1:3479 and S2:3478 run echo servers that answer with the source
# address they saw (the mapping). Each model uses its own block of inside
# ports, so conntrack entries of one model cannot help the next.
set -u
. "$(dirname "$0")/tap.bash"

BUILD=${BUILD:-build}
PROBE=$(realpath "$BUILD/udpprobe" 2>/dev/null)
P=nmt-nat-$$
NS=(in1 in2 gw ext)
T=$(mktemp -d)
pids=()

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${NS[@]}"; do ip netns del "$P-$n" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

X() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

if [ ! -x "$PROBE" ]; then
	not_ok "$BUILD/udpprobe is missing (make BUILD=$BUILD $BUILD/udpprobe)"
	exit 1
fi

setup() {
	local n
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X gw ip link add lan1 type veth peer name eth0 netns "$P-in1" &&
	X gw ip link add lan2 type veth peer name eth0 netns "$P-in2" &&
	X gw ip link add wan type veth peer name eth0 netns "$P-ext" &&
	X gw ip addr add 10.0.1.1/24 dev lan1 && X gw ip addr add 10.0.2.1/24 dev lan2 &&
	X gw ip addr add 203.0.113.1/24 dev wan &&
	X gw ip link set lan1 up && X gw ip link set lan2 up && X gw ip link set wan up &&
	X gw sysctl -qw net.ipv4.ip_forward=1 &&
	X in1 ip addr add 10.0.1.2/24 dev eth0 && X in1 ip link set eth0 up &&
	X in1 ip route add default via 10.0.1.1 &&
	X in2 ip addr add 10.0.2.2/24 dev eth0 && X in2 ip link set eth0 up &&
	X in2 ip route add default via 10.0.2.1 &&
	X ext ip addr add 203.0.113.10/24 dev eth0 && X ext ip addr add 203.0.113.20/24 dev eth0 &&
	X ext ip addr add 203.0.113.30/24 dev eth0 && X ext ip link set eth0 up || return 1
	for e in 203.0.113.10:3478 203.0.113.10:3479 203.0.113.20:3478; do
		# not through X: $! must be the server itself, not a subshell
		ip netns exec "$P-ext" "$PROBE" echo "$e" --timeout-ms 0 >/dev/null & pids+=($!)
		wait_bound ext "${e##*:}" || return 1
	done
}

wait_bound() {	# NS PORT: until a UDP socket is bound to PORT in NS
	for _ in $(seq 100); do
		[ -n "$(X "$1" ss -Hlun "sport = :$2")" ] && return 0
		sleep 0.02
	done
	return 1
}

nat() { X gw "$PROBE" nat "$1" --wan wan >/dev/null; }

# mapping NS BIND DEST: our address as DEST saw it
mapping() { X "$1" "$PROBE" ask "$2" "$3" --timeout-ms 1500; }

# deliver FROM_NS FROM TO TO_NS LISTEN: does a datagram from FROM to TO reach
# the socket LISTEN in TO_NS? Prints the source it arrived from.
deliver() {
	local out="$T/w.$RANDOM" w rc
	X "$4" "$PROBE" wait "$5" --timeout-ms 1000 >"$out" & w=$!
	wait_bound "$4" "${5##*:}"
	X "$1" "$PROBE" send "$2" "$3" --count 3 >/dev/null
	wait "$w"; rc=$?
	cat "$out"
	return $rc
}
gets_in() { deliver ext "$1" "$2" in1 "$3" >/dev/null; }
stays_out() { ! gets_in "$@"; }
port() { echo "${1##*:}"; }
no_reply() { ! mapping "$@" >/dev/null; }
replies() { mapping "$@" >/dev/null; }

# The checks every model gets. NAME MAPPING(ei|ad|apd) FILTERING PORTS(preserve|other) BASE
behaviour() {
	local name=$1 map=$2 filt=$3 ports=$4 base=$5
	local in=10.0.1.2:$base m1 m2 m3 src

	m1=$(mapping in1 "$in" 203.0.113.10:3478) || { not_ok "$name: no reply from S1"; return; }
	m2=$(mapping in1 "$in" 203.0.113.20:3478)
	m3=$(mapping in1 "$in" 203.0.113.10:3479)
	case $map in
	ei) check "$name: same mapping for S1 and S2 ($m1, $m2)" [ "$m1" = "$m2" ] ;;
	ad) check "$name: same mapping for two ports of S1 ($m1, $m3)" [ "$m1" = "$m3" ]
	    check "$name: new mapping for S2 ($m1, $m2)" [ "$m1" != "$m2" ] ;;
	apd) check "$name: new mapping for S2 ($m1, $m2)" [ "$m1" != "$m2" ]
	     check "$name: new mapping for another port of S1 ($m1, $m3)" [ "$m1" != "$m3" ] ;;
	esac
	if [ "$ports" = preserve ]; then
		check "$name: source port $base kept ($m1)" [ "$(port "$m1")" = "$base" ]
	else
		check "$name: source port $base not kept ($m1)" [ "$(port "$m1")" != "$base" ]
	fi

	# filtering, RFC 4787 section 5
	if [ "$filt" = ei ]; then
		check "$name: S3 gets in before the inside host sent to it" gets_in 203.0.113.30:5000 "$m1" "$in"
	else
		check "$name: S3 stays out before the inside host sent to it" stays_out 203.0.113.30:5000 "$m1" "$in"
	fi
	if [ "$filt" = apd ]; then
		check "$name: S1 from another port stays out" stays_out 203.0.113.10:3490 "$m1" "$in"
	else
		check "$name: S1 from another port gets in" gets_in 203.0.113.10:3490 "$m1" "$in"
	fi
	src=$(deliver in1 "$in" 203.0.113.30:5000 ext 203.0.113.30:5000)
	check "$name: S3 gets in after the inside host sent to it (reply to $src)" gets_in 203.0.113.30:5000 "$src" "$in"
	if [ "$map" = ei ]; then
		check "$name: S3 saw the same mapping as S1 ($src)" [ "$src" = "$m1" ]
	fi
}

hairpin_check() {	# NAME ON(1|0) MAPPING(ei|apd) BASE
	local name=$1 on=$2 map=$3 a=10.0.1.2:$4 b=10.0.2.2:$4 ma mb seen
	ma=$(mapping in1 "$a" 203.0.113.10:3478) && mb=$(mapping in2 "$b" 203.0.113.10:3478) ||
		{ not_ok "$name: no mapping for the hairpin hosts"; return; }
	seen=$(deliver in2 "$b" "$ma" in1 "$a")
	if [ "$on" = 1 ]; then
		check "$name: in2 reaches in1 through its mapping $ma" [ -n "$seen" ]
		# RFC 4787 REQ-9: the source is external; with EIM it is in2's mapping
		if [ "$map" = ei ]; then
			check "$name: hairpinned source is in2's mapping ($seen, $mb)" [ "$seen" = "$mb" ]
		else
			check "$name: hairpinned source is a new external mapping ($seen, $mb)" \
				[ "${seen%:*}" = 203.0.113.1 -a "$seen" != "$mb" ]
		fi
	else
		check "$name: in2 does not reach in1 through its mapping $ma" [ -z "$seen" ]
	fi
}

expiry_check() {	# NAME MODEL BASE: udp_timeout 3 s
	local name=$1 in=10.0.1.2:$3 m
	nat "$2" || { not_ok "$name: apply $2"; return; }
	m=$(mapping in1 "$in" 203.0.113.10:3478) || { not_ok "$name: no reply from S1"; return; }
	sleep 1
	check "$name: S1 gets in 1 s after the last packet" gets_in 203.0.113.10:3478 "$m" "$in"
	sleep 4.2
	check "$name: S1 stays out 4 s after the last packet (timeout 3 s)" stays_out 203.0.113.10:3478 "$m" "$in"
}

setup || { not_ok "topology setup"; exit 1; }

base=10000
for preset in full-cone restricted-cone port-restricted-cone symmetric; do
	if ! nat "$preset"; then not_ok "apply $preset"; continue; fi
	case $preset in
	full-cone) behaviour $preset ei ei preserve $base ;;
	restricted-cone) behaviour $preset ei ad preserve $base ;;
	port-restricted-cone) behaviour $preset ei apd preserve $base ;;
	symmetric) behaviour $preset apd apd random $base ;;
	esac
	hairpin_check "$preset" 0 ei $((base + 1))
	base=$((base + 100))
done

# port allocation and mapping variants
variant() {	# NAME MODEL MAPPING FILTERING PORTS
	if nat "$2"; then behaviour "$1" "$3" "$4" "$5" $base; else not_ok "apply $1: $2"; fi
	base=$((base + 100))
}
variant "EIM/APDF random" '{"preset":"port-restricted-cone","port_allocation":"random"}' ei apd random
variant "EIM/EIF sequential" '{"preset":"full-cone","port_allocation":"sequential"}' ei ei sequential
variant "ADM/ADF random" \
	'{"mapping":"address-dependent","filtering":"address-dependent","port_allocation":"random"}' ad ad random

if nat '{"preset":"symmetric","port_allocation":"sequential"}'; then
	s=()
	for i in 0 1 2; do s+=("$(port "$(mapping in1 10.0.1.2:$((base + i)) 203.0.113.10:3478)")"); done
	check "APDM sequential: consecutive ports for new mappings (${s[*]})" \
		[ $((s[1] - s[0])) = 1 -a $((s[2] - s[1])) = 1 ]
	a=$(port "$(mapping in1 10.0.1.2:$((base + 3)) 203.0.113.10:3478)")
	b=$(port "$(mapping in1 10.0.1.2:$((base + 3)) 203.0.113.20:3478)")
	check "APDM sequential: next port for the next destination ($a, $b)" [ $((b - a)) = 1 ]
else
	not_ok "apply APDM sequential"
fi

# an external port range (RFC 4787 4.2.2): mappings stay inside it, and a small
# one runs out (Linux NAT keeps each 5-tuple unique, so a range of N ports
# holds N mappings towards one remote endpoint)
base=$((base + 100))
if nat '{"preset":"symmetric","port_range":"40000-40003"}'; then
	in_range() { [ -n "$1" ] && [ "$1" -ge 40000 ] && [ "$1" -le 40003 ]; }
	s=() inside=1
	for i in 0 1 2 3; do s+=("$(port "$(mapping in1 10.0.1.2:$((base + i)) 203.0.113.10:3478)")"); done
	for p in "${s[@]}"; do in_range "$p" || inside=0; done
	check "port range 40000-40003: 4 new mappings inside it (${s[*]})" [ "$inside" = 1 ]
	check "port range 40000-40003: 4 distinct ports" [ "$(printf '%s\n' "${s[@]}" | sort -u | wc -l)" = 4 ]
	check "port range 40000-40003: a fifth mapping to S1 finds no port (no reply)" \
		no_reply in1 10.0.1.2:$((base + 4)) 203.0.113.10:3478
	m=$(mapping in1 10.0.1.2:$((base + 4)) 203.0.113.20:3478)
	check "port range 40000-40003: ... while S2 still gets one ($m)" in_range "$(port "$m")"
else
	not_ok "apply port range"
fi
base=$((base + 100))

for preset in full-cone port-restricted-cone symmetric; do
	map=ei; [ $preset = symmetric ] && map=apd
	if nat "{\"preset\":\"$preset\",\"hairpinning\":true}"; then
		hairpin_check "$preset hairpinning on" 1 $map $base
	else
		not_ok "apply $preset with hairpinning"
	fi
	base=$((base + 100))
done

expiry_check "full-cone timeout" '{"preset":"full-cone","udp_timeout":3}' $base
base=$((base + 100))
expiry_check "port-restricted-cone timeout" '{"preset":"port-restricted-cone","udp_timeout":3}' $base
base=$((base + 100))

# refusals and errors reach the shell as one line naming the field
err=$(X gw "$PROBE" nat '{"mapping":"address-dependent"}' --wan wan 2>&1 >/dev/null)
check "ADM with port preservation is refused ($err)" grep -q '^udpprobe: port_allocation: preserve needs' <<<"$err"
err=$(X gw "$PROBE" nat full-cone --wan nosuch0 2>&1 >/dev/null)
check "a WAN without an address is refused ($err)" grep -q 'nosuch0 has no IPv4 address' <<<"$err"

# link loss: 100 % drops every reply arriving on wan, 0 % removes the chain.
# The loss chain sees ARP on wan too, so gw and ext get fixed neighbours
# first: a lost ARP reply would otherwise drop datagrams of its own.
udp_in() { X "$1" awk '/^Udp:/ { if (n++) print $2 }' /proc/net/snmp; }	# NS: InDatagrams
mac_gw=$(X gw cat /sys/class/net/wan/address) mac_s1=$(X ext cat /sys/class/net/eth0/address)
X gw ip neigh replace 203.0.113.10 lladdr "$mac_s1" dev wan nud permanent
X ext ip neigh replace 203.0.113.1 lladdr "$mac_gw" dev eth0 nud permanent
nat port-restricted-cone
if X gw "$PROBE" loss wan 100; then
	check "loss 100% on wan: no reply" no_reply in1 10.0.1.2:$base 203.0.113.10:3478
	X gw "$PROBE" loss wan 0
	check "loss 0% on wan: replies again" replies in1 10.0.1.2:$((base + 1)) 203.0.113.10:3478
	check "loss 0% removed the chain" [ -z "$(X gw nft list chain netdev natmesh_loss in-wan 2>/dev/null)" ]

	# Loss per rate, counted: in1 sends N datagrams to S1's echo server in
	# batches and counts the replies. The loss hook is gw's wan ingress only:
	# requests cross lan1's ingress and leave by wan, so they are never
	# dropped (S1's UDP InDatagrams must grow by exactly N), and a reply
	# comes back with probability q = 1 - p/100. The count is Binomial(N, q);
	# it must lie within N q +- 5 sd, sd = sqrt(N q (1 - q)), which a right
	# model misses with probability < 1e-6 per rate (exact binomial tails:
	# 6e-7..8e-7). With N = 2000 the bounds are 10%: 1733..1867, 30%:
	# 1298..1502, 50%: 889..1111, 90%: 133..267. They catch, with probability
	# 1 - 1e-11 or better: the rate ignored (N replies), the rate inverted
	# (100 - p; except at 50%, where it is the same thing) and loss applied
	# twice (q^2), and any delivery rate off by more than ~11 percentage
	# points. They cannot tell p from p +- 1 (nor anything within ~3 points):
	# that takes 10 sd < 0.01 N, N >= 250000 at 50%. The 0% control with the
	# same N and batches shows the path itself loses nothing.
	n=2000
	for p in 0 10 30 50 90; do
		if ! X gw "$PROBE" loss wan $p; then not_ok "apply loss $p%"; continue; fi
		read -r lo hi mean < <(awk -v n=$n -v p=$p 'BEGIN {
			m = n * (100 - p) / 100; d = 5 * sqrt(n * (100 - p) * p / 10000)
			lo = m - d; if (lo != int(lo)) lo = int(lo) + 1
			printf "%d %d %.0f\n", lo < 0 ? 0 : lo, int(m + d), m }')
		before=$(udp_in ext)
		got=$(X in1 "$PROBE" tally 10.0.1.2:$((base + 10 + p)) 203.0.113.10:3478 \
			--count $n --timeout-ms 200) || got=-1
		req=$(( $(udp_in ext) - before ))
		check "loss $p% on wan: S1 got $req of $n requests, $got replies, expected $lo..$hi ($mean +- 5 sd)" \
			[ "$req" = $n -a "$got" -ge "$lo" -a "$got" -le "$hi" ]
	done
	X gw "$PROBE" loss wan 0
else
	not_ok "apply loss"
fi
X gw ip neigh del 203.0.113.10 dev wan
X ext ip neigh del 203.0.113.1 dev eth0

X gw "$PROBE" nat --remove
check "remove deletes the table" [ -z "$(X gw nft list table ip natmesh_nat 2>/dev/null)" ]
err=$(X gw "$PROBE" nat --remove 2>&1)
check "removing it again names the table ($err)" \
	grep -q 'netlink: delete table natmesh_nat: No such file or directory' <<<"$err"

tap_exit
