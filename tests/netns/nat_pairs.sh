#!/usr/bin/env bash
# UDP hole punching between two hosts behind two NAT gateways, for every
# unordered pair of the four presets, with plain UDP probes (no agent): each
# host learns its mapping from an echo server, then both send to the other's
# mapping and answer whatever source they hear (as WireGuard roaming does).
# Theory: direct for every pair except port-restricted-cone with symmetric and
# symmetric with symmetric.
#
#   a 10.0.0.2 --- lan  ga (model A)  wan 203.0.113.1 --+
#                                                       br0 net: S1 203.0.113.10 (echo)
#   b 10.0.0.2 --- lan  gb (model B)  wan 203.0.113.2 --+
set -u
. "$(dirname "$0")/tap.bash"

BUILD=${BUILD:-build}
PROBE=$(realpath "$BUILD/udpprobe" 2>/dev/null)
P=nmt-natp-$$
NS=(a b ga gb net)
T=$(mktemp -d)
echo_pid=

cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
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
	local n g
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X net ip link add br0 type bridge && X net ip link set br0 up &&
	X net ip addr add 203.0.113.10/24 dev br0 || return 1
	for g in a b; do
		X net ip link add "v$g" type veth peer name wan netns "$P-g$g" &&
		X net ip link set "v$g" master br0 && X net ip link set "v$g" up &&
		X "g$g" ip link add lan type veth peer name eth0 netns "$P-$g" &&
		X "g$g" ip addr add 10.0.0.1/24 dev lan && X "g$g" ip link set lan up &&
		X "g$g" ip link set wan up && X "g$g" sysctl -qw net.ipv4.ip_forward=1 &&
		X "$g" ip addr add 10.0.0.2/24 dev eth0 && X "$g" ip link set eth0 up &&
		X "$g" ip route add default via 10.0.0.1 || return 1
	done
	X ga ip addr add 203.0.113.1/24 dev wan && X gb ip addr add 203.0.113.2/24 dev wan || return 1
	ip netns exec "$P-net" "$PROBE" echo 203.0.113.10:3478 --timeout-ms 0 >/dev/null & echo_pid=$!
	for _ in $(seq 100); do
		[ -n "$(X net ss -Hlun 'sport = :3478')" ] && return 0
		sleep 0.02
	done
	return 1
}

# punch MODEL_A MODEL_B PORT: prints "yes" when both heard each other
punch() {
	local pa=10.0.0.2:$3 pb=10.0.0.2:$(($3 + 1)) ma mb fa fb w1 w2
	X ga "$PROBE" nat "$1" --wan wan >/dev/null && X gb "$PROBE" nat "$2" --wan wan >/dev/null || return 1
	ma=$(X a "$PROBE" ask "$pa" 203.0.113.10:3478) && mb=$(X b "$PROBE" ask "$pb" 203.0.113.10:3478) || return 1
	for _ in 1 2 3; do
		X a "$PROBE" send "$pa" "$mb" --count 1 && X b "$PROBE" send "$pb" "$ma" --count 1
		X a "$PROBE" wait "$pa" --timeout-ms 400 >"$T/a" & w1=$!
		X b "$PROBE" wait "$pb" --timeout-ms 400 >"$T/b" & w2=$!
		sleep 0.1
		X a "$PROBE" send "$pa" "$mb" --count 1 && X b "$PROBE" send "$pb" "$ma" --count 1
		wait "$w1" "$w2"
		fa=$(cat "$T/a") fb=$(cat "$T/b")
		[ -n "$fa" ] && mb=$fa
		[ -n "$fb" ] && ma=$fb
		if [ -n "$fa" ] && [ -n "$fb" ]; then echo yes; return 0; fi
	done
	echo no
}

setup || { not_ok "topology setup"; exit 1; }

presets=(full-cone restricted-cone port-restricted-cone symmetric)
port=20000
for ((i = 0; i < 4; i++)); do
	for ((j = i; j < 4; j++)); do
		a=${presets[i]} b=${presets[j]} want=yes
		case "$a/$b" in
		port-restricted-cone/symmetric | symmetric/symmetric) want=no ;;
		esac
		got=$(punch "$a" "$b" $port)
		port=$((port + 10))
		if [ "$got" = "$want" ]; then
			ok "$a with $b: direct=$got"
		else
			not_ok "$a with $b: direct=${got:-error}, theory says $want"
		fi
	done
done

tap_exit
