#!/usr/bin/env bash
# meshwg as a daemon, the way wireguard-go is run: `meshwg IFNAME` returns once
# the interface and /var/run/wireguard/IFNAME.sock exist; SIGTERM removes both.
# Also --help, refused arguments, and JSON logs.
#
#   nmt-wg-PID-a: meshwg wgaPID (no peers, nothing else)
set -u
cd "$(dirname "$0")/../.."
. tests/netns/wg_common.bash
trap wg_cleanup EXIT; trap 'exit 1' INT TERM
SOCK="/var/run/wireguard/$IF_A.sock"

check "--help exits 0 and shows the usage" bash -c "'$BUILD/meshwg' --help | grep -q 'usage: meshwg'"
"$BUILD/meshwg" >/dev/null 2>&1; check "no interface name: exit 2" test $? -eq 2
"$BUILD/meshwg" -f "an-interface-name-too-long" >/dev/null 2>&1; check "a name longer than IFNAMSIZ: exit 2" test $? -eq 2
"$BUILD/meshwg" --log-format xml x >/dev/null 2>&1; check "bad --log-format: exit 2" test $? -eq 2
for n in 0 65 two; do
  "$BUILD/meshwg" -f --threads "$n" x >/dev/null 2>&1; check "bad --threads $n: exit 2" test $? -eq 2
done

wg_ns_add "$NS_A" || { not_ok "set up"; exit 1; }
nsx "$NS_A" "$BUILD/meshwg" "$IF_A" >"$WG_TMP/daemon.log" 2>&1
check "meshwg IFNAME daemonizes and exits 0" test $? -eq 0
check "the socket exists when the parent returns" test -S "$SOCK"
check "the interface exists, MTU 1420" bash -c "ip netns exec $NS_A ip link show $IF_A | grep -q 'mtu 1420'"
pid=$(ip netns pids "$NS_A" | head -n 1)
WG_PIDS+=("$pid")
check "wg show works on it" nsx "$NS_A" wg show "$IF_A"
check "a thread per CPU it may run on ($(nproc)): $(ls /proc/"$pid"/task | wc -l)" \
  test "$(ls /proc/"$pid"/task | wc -l)" -eq "$(nproc)"
check "wg set listen-port and private-key work" \
  bash -c "umask 077; wg genkey >$WG_TMP/k && ip netns exec $NS_A wg set $IF_A listen-port 51999 private-key $WG_TMP/k"
check "wg show reads them back" \
  test "$(nsx "$NS_A" wg show "$IF_A" listen-port)" = 51999 -a \
       "$(nsx "$NS_A" wg show "$IF_A" private-key)" = "$(cat "$WG_TMP/k")"
check "a bad set request is answered errno=22 (EINVAL)" \
  bash -c "printf 'set=1\\nlisten_port=99999\\n\\n' | socat -t 2 - UNIX-CONNECT:$SOCK | grep -qx 'errno=22'"
check "an unknown operation is answered errno=22" \
  bash -c "printf 'frob=1\\n\\n' | socat -t 2 - UNIX-CONNECT:$SOCK | grep -qx 'errno=22'"
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "SIGTERM stops it" bash -c "! kill -0 $pid 2>/dev/null"
check "SIGTERM removed the socket" test ! -e "$SOCK"
check "SIGTERM removed the interface" bash -c "! ip netns exec $NS_A ip link show $IF_A 2>/dev/null"

ip netns exec "$NS_A" "$BUILD/meshwg" -f --log-format json "$IF_A" >"$WG_TMP/json.log" 2>&1 &
jpid=$!
WG_PIDS+=("$jpid")
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.05; done
kill -TERM "$jpid"; wait "$jpid"
check "foreground with --log-format json: exit 0 on SIGTERM" test $? -eq 0
check "every log line is a JSON object" jq -e -s 'length > 2 and all(.[]; type == "object")' "$WG_TMP/json.log"
tap_exit
