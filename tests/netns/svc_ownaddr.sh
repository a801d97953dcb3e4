#!/usr/bin/env bash
# meshsvc refuses endpoints at its own addresses (issue 15, point 5: every
# agent of the VPC sends handshakes to its peers' endpoints, so one at the
# service aims them all at it), whatever the port, with 400 naming the field.
# One namespace, nothing routed:
#
#   [nmt-own-PID]  lo, eth0: 192.0.2.10/24, 192.0.2.11/24, 2001:db8::10/64
#                  (eth0's veth peer eth1 in the same namespace keeps it up)
#                  (later 192.0.2.30, 192.0.2.31)
#   curl, meshctl ---HTTP---> meshsvc --listen 192.0.2.10:0, then [::]:0
#
# Shown: listening on one address, that address is refused at any port (in a
# registration and in a PATCH, the field named) and the host's other
# addresses are not; listening on a wildcard, every interface address is
# refused, IPv6 too; an address added after the start is refused on a
# request that came in on it (getsockname) and, past the refresh interval
# (10 s), on any; a refused body changes nothing stored.
set -u
. "$(dirname "$0")/svc_lib.bash"

NS=nmt-own-$$
trap 'ip netns del "$NS" 2>/dev/null; cleanup' EXIT
if ! ip netns add "$NS" || ! ip -n "$NS" link set lo up ||
	! ip -n "$NS" link add eth0 type veth peer name eth1 || ! ip -n "$NS" link set eth1 up ||
	! ip -n "$NS" link set eth0 up ||
	! ip -n "$NS" addr add 192.0.2.10/24 dev eth0 || ! ip -n "$NS" addr add 192.0.2.11/24 dev eth0 ||
	! ip -n "$NS" addr add 2001:db8::10/64 dev eth0 nodad; then
	not_ok "the namespace $NS"; exit 1
fi
# meshsvc, curl and meshctl in the namespace (svc_lib runs $SVC, curl and $CTL)
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$(realpath "$SVC")" >"$WORK/meshsvc-ns"
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$NS" "$(realpath "$CTL")" >"$WORK/meshctl-ns"
chmod +x "$WORK/meshsvc-ns" "$WORK/meshctl-ns"
SVC=$WORK/meshsvc-ns CTL=$WORK/meshctl-ns
curl() { ip netns exec "$NS" curl "$@"; }

# ep ADDR...: an endpoints array, the first "local", the rest STUN mappings
ep() {
	local out="{\"source\":\"local\",\"address\":\"$1\"}" a
	shift
	for a in "$@"; do out+=",{\"source\":\"stun:198.51.100.1:3478\",\"address\":\"$a\"}"; done
	echo "\"endpoints\":[$out]"
}
# refused WHAT FIELD: the last answer was a 400 naming FIELD and the reason
refused() {
	if [ "$STATUS:$(jfield field)" = "400:$2" ] && grep -q "the service's own address" <<<"$OUT"; then
		ok "$1: 400 field $2"
	else
		not_ok "$1: 400 field $2 (got $STATUS: $OUT)"
	fi
}
patch() { api PATCH "/api/devices/$ID_a" "$TOK_a" "{$(ep "$@")}"; }

# --- one listen address ------------------------------------------------------------
svc_start --listen 192.0.2.10:0
PORT=${URL##*:}
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" | jf secret)
register a "$KEY" "$(ep 192.0.2.10:51820)"
refused "registering with an endpoint at the listen address" "endpoints[0].address"
register a "$KEY" "$(ep 192.0.2.20:51820)"
check "registering with another endpoint: 201" test "$STATUS" = 201
patch 192.0.2.20:51820 "192.0.2.10:$PORT"
refused "a PATCH with the listen address and port as second endpoint" "endpoints[1].address"
patch 192.0.2.10:9
refused "the listen address at another port" "endpoints[0].address"
patch 192.0.2.11:51820
check "listening on one address, the host's others are no endpoint of the service's: 200" test "$STATUS" = 200
patch 192.0.2.20:51820
svc_stop

# --- a wildcard: the host's interface addresses -----------------------------------------
svc_start --listen "[::]:0"
PORT=${URL##*:}
URL=http://192.0.2.10:$PORT
patch 192.0.2.11:51820
refused "listening on [::], an interface address" "endpoints[0].address"
patch "[2001:db8::10]:51820"
refused "listening on [::], an IPv6 interface address" "endpoints[0].address"
patch 192.0.2.20:51820 "[::ffff:192.0.2.10]:1"
refused "an IPv4-mapped interface address" "endpoints[1].address"
patch 192.0.2.20:51820 192.0.2.21:4000
check "other addresses: 200" test "$STATUS" = 200
ip -n "$NS" addr add 192.0.2.30/24 dev eth0
ip -n "$NS" addr add 192.0.2.31/24 dev eth0
URL=http://192.0.2.30:$PORT
patch 192.0.2.30:51820
refused "an address added since the start, the request came in on it" "endpoints[0].address"
URL=http://192.0.2.10:$PORT
api GET "/api/devices/$ID_a" "$TOK_a"
check "refused bodies changed nothing stored" \
	jq -e '[.endpoints[].address] == ["192.0.2.20:51820", "192.0.2.21:4000"]' <<<"$OUT"
sleep 10.2
patch 192.0.2.31:51820
refused "an address added since the start, past the refresh interval, on another address" "endpoints[0].address"
finish
