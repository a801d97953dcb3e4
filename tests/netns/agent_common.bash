# Shared topology for the agent tests (sourced by tests/netns/agent_*.sh).
#
#   n1 10.1.0.2 --- lan 10.1.0.1 [gw1] wan 203.0.113.11 --+
#   n2 10.2.0.2 --- lan 10.2.0.1 [gw2] wan 203.0.113.12 --+
#   n3 10.3.0.2 --- lan 10.3.0.1 [gw3] wan 203.0.113.13 --+-- br0 in [pub]: 203.0.113.1  meshsvc :8080, meshstun :3478
#                                   r1 203.0.113.21 ------+                 203.0.113.2  meshstun :3478
#                                   r2 203.0.113.22 ------+
#
# Gateways are nftables masquerade NATs with a firewall that drops new
# inbound flows ("masquerade" keeps ports when it can: endpoint-independent
# mapping, address-and-port-dependent filtering on Linux; "masquerade random"
# maps every destination to another port: a symmetric NAT). r1 and r2 are public hosts for relays. Every name carries
# $P (prefix and pid); cleanup removes namespaces and processes on any exit.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/tap.bash"

BUILD=${BUILD:-build}
B=$(realpath "$BUILD")
P=nmt-ag-$$
NS=(pub gw1 gw2 gw3 n1 n2 n3 r1 r2)
T=$(mktemp -d /tmp/nmt-ag-$$.XXXXXX)
declare -A PIDS

cleanup() {
	local k
	for k in "${!PIDS[@]}"; do kill "${PIDS[$k]}" 2>/dev/null; done
	for k in "${!PIDS[@]}"; do wait "${PIDS[$k]}" 2>/dev/null; done
	for n in "${NS[@]}"; do ip netns del "$P-$n" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

X() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

need() {
	local b
	for b in "$@"; do
		if [ ! -x "$B/$b" ]; then
			not_ok "$BUILD/$b is missing (make BUILD=$BUILD $BUILD/$b)"
			exit 1
		fi
	done
}

# wan NS ADDR: a veth from NS into pub's bridge
wan() {
	X pub ip link add "w-$1" type veth peer name wan netns "$P-$1" &&
	X pub ip link set "w-$1" master br0 && X pub ip link set "w-$1" up &&
	X "$1" ip addr add "$2/24" dev wan && X "$1" ip link set wan up
}

# site I MODE: gwI with a NAT (MODE "masquerade" or "masquerade random") and nI behind it
site() {
	local i=$1 mode=$2
	wan "gw$i" "203.0.113.1$i" || return 1
	X "gw$i" ip link add lan type veth peer name eth0 netns "$P-n$i" &&
	X "gw$i" ip addr add "10.$i.0.1/24" dev lan && X "gw$i" ip link set lan up &&
	X "gw$i" sysctl -qw net.ipv4.ip_forward=1 &&
	X "n$i" ip addr add "10.$i.0.2/24" dev eth0 && X "n$i" ip link set eth0 up &&
	X "n$i" ip route add default via "10.$i.0.1" || return 1
	# the input drop is what a home router's firewall does; without it an
	# unsolicited datagram to the gateway is confirmed by conntrack and its
	# tuple then clashes with the mapping the inside host needs (the NAT
	# would pick another port, and hole punching would fail for that reason)
	X "gw$i" nft -f - <<-EOF
	table ip nat {
		chain post { type nat hook postrouting priority 100; oifname "wan" $mode; }
	}
	table ip filter {
		chain input_new { type filter hook input priority 0; iifname "wan" ct state new drop; }
		chain forward_new { type filter hook forward priority 0; iifname "wan" ct state new drop; }
	}
	EOF
}

setup() {
	local n
	for n in "${NS[@]}"; do ip netns add "$P-$n" && X "$n" ip link set lo up || return 1; done
	X pub ip link add br0 type bridge && X pub ip link set br0 up &&
	X pub ip addr add 203.0.113.1/24 dev br0 && X pub ip addr add 203.0.113.2/24 dev br0 || return 1
	site 1 masquerade && site 2 masquerade && site 3 "masquerade random" || return 1
	wan r1 203.0.113.21 && wan r2 203.0.113.22 || return 1
}

wait_port() {	# NS PROTO PORT
	for _ in $(seq 200); do
		[ -n "$(X "$1" ss -Hln"$2" "sport = :$3")" ] && return 0
		sleep 0.02
	done
	return 1
}

start_service() {	# [extra meshsvc flags, e.g. --tls-cert F --tls-key F]
	# ip netns exec execs the program, so $! is its pid (a shell function
	# in the background would be a subshell whose child survives a kill)
	ip netns exec "$P-pub" "$B/meshsvc" --listen 203.0.113.1:8080 --db "$T/svc.db" --admin-token-file "$T/admin" \
		"$@" >>"$T/svc.log" 2>&1 &
	PIDS[svc]=$!
	wait_port pub t 8080
}

start_stun() {
	ip netns exec "$P-pub" "$B/meshstun" --listen 203.0.113.1:3478 --listen 203.0.113.2:3478 --rfc5780 >"$T/stun.log" 2>&1 &
	PIDS[stun]=$!
	wait_port pub u 3478
}

API=${API:-http://203.0.113.1:8080}
CA=${CA:-}	# a CA file for an HTTPS service
api() {	# METHOD PATH [BODY]: as admin, prints the body
	X pub curl -sS -m 5 ${CA:+--cacert "$CA"} -X "$1" -H "Authorization: Bearer $(cat "$T/admin")" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "$API$2"
}

# a VPC, a reusable registration key in $T/regkey and one that mints relays
# (relaying is granted by the admin, never claimed) in $T/relaykey; both 0600:
# meshd refuses a key file that group or others may read
make_vpc() {
	local vpc
	vpc=$(api POST /api/vpcs '{"name":"t"}' | jq -r .id) || return 1
	[ -n "$vpc" ] && [ "$vpc" != null ] || return 1
	(umask 077 && api POST /api/reg-keys "{\"vpc_id\":\"$vpc\"}" | jq -r .secret >"$T/regkey")
	(umask 077 && api POST /api/reg-keys "{\"vpc_id\":\"$vpc\",\"relay\":true}" | jq -r .secret >"$T/relaykey")
	[ -s "$T/regkey" ] && [ "$(cat "$T/regkey")" != null ] &&
		[ -s "$T/relaykey" ] && [ "$(cat "$T/relaykey")" != null ]
}

# agent NAME NS [ARGS...]: meshd in NS, interface and files named after NAME;
# with --relay it registers with the key that mints relays; MESHD_ARGS (e.g.
# "--threads 1") go to every agent
agent() {
	local name=$1 ns=$2 key=regkey svc=(--service "$API"); shift 2
	[[ " $* " == *" --relay "* ]] && key=relaykey
	# an http:// service (the default here, on the lab's own links) needs
	# --insecure-http (agent_tls.sh sets an https:// one); a meshd from
	# before it, as the benches compare, takes http:// without it
	[[ $API == http://* ]] && "$B/meshd" --help 2>/dev/null | grep -q -- --insecure-http &&
		svc+=(--insecure-http)
	ip netns exec "$P-$ns" "$B/meshd" "${svc[@]}" --reg-key-file "$T/$key" \
		--stun 203.0.113.1:3478 --stun 203.0.113.2:3478 \
		--ifname "nm-$name" --hostname "$name" --state-dir "$T/state-$name" \
		--control "$T/$name.sock" ${CA:+--ca "$CA"} ${MESHD_ARGS:-} "$@" >>"$T/$name.log" 2>&1 &
	PIDS[$name]=$!
}

stop_agent() {
	kill "${PIDS[$1]}" 2>/dev/null && wait "${PIDS[$1]}" 2>/dev/null
	unset "PIDS[$1]"
}

# ctl NAME JSON: one request to the agent's control socket, the answer on stdout
ctl() {
	python3 - "$T/$1.sock" "$2" <<-'EOF'
	import socket, sys
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.settimeout(5)
	s.connect(sys.argv[1])
	s.sendall(sys.argv[2].encode() + b"\n")
	buf = b""
	while not buf.endswith(b"\n"):
	    d = s.recv(65536)
	    if not d:
	        break
	    buf += d
	sys.stdout.write(buf.decode())
	EOF
}

# tunnel_ip NAME: the agent's tunnel address (empty until registered)
tunnel_ip() { ctl "$1" '{"cmd":"status"}' 2>/dev/null | jq -r '.tunnel_ip // empty'; }

# wait_for SECONDS CMD...: until CMD succeeds
wait_for() {
	local t=$1; shift
	local end=$((SECONDS + t))
	while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.1; done
	"$@"
}

# path FROM TO: the path FROM reports for peer TO (direct|relayed|connecting|failed)
path() { ctl "$1" '{"cmd":"peers"}' 2>/dev/null | jq -r --arg n "$2" '.peers[] | select(.name == $n) | .path'; }
path_is() { [ "$(path "$1" "$2")" = "$3" ]; }

# natf HOST FIELD: a field of the NAT findings HOST reported to the service
# (empty until it has); natok HOST MAPPING FILTERING: both as given
natf() { api GET /api/devices | jq -r --arg h "$1" --arg f "$2" '.[] | select(.hostname == $h) | .nat[$f] | select(. != null)'; }
natok() { [ "$(natf "$1" mapping)" = "$2" ] && [ "$(natf "$1" filtering)" = "$3" ]; }

# ping_ok NS IP: one echo answered within 1 s
ping_ok() { X "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1; }

dump_logs() {
	local f
	for f in "$T"/*.log; do echo "# --- $(basename "$f")"; tail -n 40 "$f" | sed 's/^/# /'; done
}

# throwaway_ca: a CA and a certificate for the service at 203.0.113.1 in $T
# (ca.pem, svc.pem, svc.key); points API at https and CA at the CA
throwaway_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
		-out "$T/ca.pem" -days 2 -subj /CN=nmt-ca >/dev/null 2>&1 &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/svc.key" \
		-out "$T/svc.csr" -subj /CN=203.0.113.1 >/dev/null 2>&1 &&
	printf 'subjectAltName=IP:203.0.113.1\n' >"$T/ext" &&
	openssl x509 -req -in "$T/svc.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
		-out "$T/svc.pem" -days 2 -extfile "$T/ext" >/dev/null 2>&1 || return 1
	API=https://203.0.113.1:8080
	CA=$T/ca.pem
}
