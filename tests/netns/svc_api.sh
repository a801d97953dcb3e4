#!/usr/bin/env bash
# meshsvc over HTTP on loopback: the whole lifecycle (meshctl and curl), the
# auth matrix, and malformed bodies that must be refused without touching the
# database. No namespaces:
#
#   curl / meshctl / svcload ---HTTP 127.0.0.1:(kernel's pick)---> meshsvc ($WORK/db)
set -u
. "$(dirname "$0")/svc_lib.bash"

svc_start
check "admin token file created with mode 0600" test "$(stat -c %a "$WORK/db.admin-token")" = 600
check "meshsvc says where the admin token is" grep -q "admin token (mode 0600) path=$WORK/db.admin-token" "$WORK/svc.log"

# issue 15, point 10: the admin token opens everything; meshctl refuses a
# token file others may read, and names the fix
cp "$WORK/db.admin-token" "$WORK/shared-token"
chmod 644 "$WORK/shared-token"
out=$("$CTL" --service "$URL" $(insecure) --token-file "$WORK/shared-token" vpc list 2>&1)
rc=$?
check "meshctl refuses a token file group or others may read, naming chmod 600 FILE" \
	bash -c "test $rc = 1 && grep -q 'chmod 600 $WORK/shared-token' <<<'$out'"
chmod 600 "$WORK/shared-token"
check "and takes it with mode 0600" "$CTL" --service "$URL" $(insecure) --token-file "$WORK/shared-token" vpc list

api GET /healthz ""
check "/healthz answers without a token" test "$STATUS" = 200

# --- lifecycle ------------------------------------------------------------------
out=$(ctl vpc create lab --cidr 10.20.0.0/29)
check "meshctl vpc create prints a table" grep -q '^ID  *NAME  *IPV4_CIDR' <<<"$out"
VPC=$(ctl -o json vpc list | jf id)
check "meshctl -o json vpc list has the VPC" test -n "$VPC"
out=$(ctl reg-key create --vpc "$VPC" --description lifecycle)
KEY=$(sed -n 's/^secret (shown only now): //p' <<<"$out")
check "meshctl reg-key create shows the secret once" test -n "$KEY"
api GET /api/reg-keys "$ADMIN"
check "the secret is not listed again" bash -c "! grep -q secret <<<'$OUT'"

register a "$KEY" '"os":"linux","endpoints":[{"source":"local","address":"10.0.0.2:51820"}]'
check "a device registers: 201 and the first host address" test "$STATUS:$IP_a" = "201:10.20.0.1"
check "the answer carries the VPC's prefix" grep -q '"ipv4_cidr":"10.20.0.0/29"' <<<"$OUT"
check "the sealed device token opens with the WireGuard private key" test "${TOK_a:0:6}" = nmdev_
new_key stranger >/dev/null
check "and not with another key" bash -c "! '$LOAD' open-token '$WORK/stranger.key' '$(jfield device_token)' 2>/dev/null"
first_tok=$TOK_a
register a "$TOK_a"
check "registering the same key again with its token: 200, same id and address" test "$STATUS:$IP_a" = "200:10.20.0.1"
api GET /api/whoami "$first_tok"
check "re-registration replaced the device token" test "$STATUS" = 401
api GET /api/whoami "$TOK_a"
check "whoami names the device and reflects its source address" \
	bash -c "grep -q '\"scope\":\"device\"' <<<'$OUT' && grep -q '\"source_address\":\"127.0.0.1:[0-9]*\"' <<<'$OUT'"
register b "$KEY"
check "a second device gets the next address" test "$STATUS:$IP_b" = "201:10.20.0.2"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(jfield revision)
check "a device reads its VPC's peer list" bash -c "test '$STATUS' = 200 && grep -q '$ID_b' <<<'$OUT'"
api PATCH "/api/devices/$ID_a" "$TOK_a" '{"endpoints":[{"source":"stun:127.0.0.1:3478","address":"203.0.113.7:40000"}],"symmetric_nat":true,"nat":{"mapping":"address-and-port-dependent","filtering":"address-and-port-dependent","hairpinning":false}}'
check "a device PATCHes itself" bash -c "test '$STATUS' = 200 && grep -q 203.0.113.7:40000 <<<'$OUT'"
api GET "/api/vpcs/$VPC/devices?since=$REV" "$TOK_b"
check "the change is in the list since the last revision, alone" \
	bash -c "grep -q '$ID_a' <<<'$OUT' && ! grep -q '$ID_b' <<<'$OUT' && grep -q '\"full\":false' <<<'$OUT'"
# NAT findings per address family (meshd's runs): the service fills in the
# top level from IPv4 (else IPv6) for readers of the top level alone
api PATCH "/api/devices/$ID_a" "$TOK_a" '{"nat":{"ipv6":{"mapping":"endpoint-independent","filtering":"endpoint-independent"},"ipv4":{"mapping":"endpoint-independent","filtering":"address-and-port-dependent","hairpinning":false}}}'
check "a device PATCHes per-family NAT findings" test "$STATUS" = 200
api GET "/api/vpcs/$VPC/devices?since=$REV" "$TOK_b"
natj() { jq -e --arg id "$ID_a" ".devices[] | select(.id == \$id) | .nat | $1" <<<"$OUT" >/dev/null; }
check "its peer reads both families" \
	natj '.ipv4.filtering == "address-and-port-dependent" and .ipv4.hairpinning == false and .ipv6.filtering == "endpoint-independent"'
check "and the top level is the IPv4 one" natj '.mapping == "endpoint-independent" and .filtering == "address-and-port-dependent" and .hairpinning == false'
api GET "/api/devices/$ID_a" "$ADMIN"
check "the device listing has both families" \
	bash -c "jq -e '.nat.ipv4.filtering == \"address-and-port-dependent\" and .nat.ipv6.filtering == \"endpoint-independent\"' >/dev/null <<<'$OUT'"
api PATCH "/api/devices/$ID_a" "$TOK_a" '{"nat":{"filtering":"endpoint-independent","ipv4":{"filtering":"address-and-port-dependent"}}}'
check "a top level that contradicts the IPv4 findings: 400 naming nat.filtering" \
	test "$STATUS:$(jfield field)" = "400:nat.filtering"
api PATCH "/api/devices/$ID_a" "$TOK_a" '{"nat":{"ipv6":{"filtering":"open"}}}'
check "a bad IPv6 filtering: 400 naming nat.ipv6.filtering" test "$STATUS:$(jfield field)" = "400:nat.ipv6.filtering"
out=$(ctl device list --vpc "$VPC")
check "meshctl device list shows both devices" bash -c "grep -q '10.20.0.1 ' <<<'$out' && grep -q '10.20.0.2 ' <<<'$out'"
out=$(ctl device delete "$ID_b")
check "meshctl device delete" test "$out" = "deleted device $ID_b"
api GET "/api/vpcs/$VPC/devices?since=$REV" "$TOK_a"
check "the deletion is reported to long-pollers" grep -q "\"deleted\":\[\"$ID_b\"\]" <<<"$OUT"
register c "$KEY"
check "the released address is handed out again" test "$STATUS:$IP_c" = "201:10.20.0.2"
for n in d e f g h; do register "$n" "$KEY"; done
check "a /29 holds six devices" test "$IP_g" = 10.20.0.6
register h "$KEY"
check "then the VPC is full: 409" test "$STATUS" = 409
# (less --insecure-http's warning, which says only that $URL is http://)
out=$(ctl vpc delete "$VPC" 2>&1 | grep -v '^meshctl: warning: the service URL')
check "deleting a VPC with devices: one clear line, 409" bash -c "[ \$(wc -l <<<'$out') = 1 ] && grep -q 'HTTP 409' <<<'$out'"
api DELETE "/api/devices/$ID_c" "$TOK_c"
check "a device deletes itself" test "$STATUS" = 204
api GET /metrics "$ADMIN"
check "/metrics counts requests by route and status, devices and waiters" \
	bash -c "grep -q 'meshsvc_http_requests_total{route=\"/api/devices\",method=\"POST\",code=\"201\"} 7' <<<'$OUT' && grep -q '^meshsvc_devices 5' <<<'$OUT' && grep -q '^meshsvc_watch_waiters 0' <<<'$OUT'"

# --- auth matrix ------------------------------------------------------------------
VPC2=$(ctl -o json vpc create other --cidr 10.30.0.0/24 | jf id)
KEY2=$(ctl -o json reg-key create --vpc "$VPC2" | jf secret)
register x "$KEY2"
matrix() { # description method path token expected [body]
	api "$2" "$3" "$4" "${6-}"
	[ $# -ge 6 ] || api "$2" "$3" "$4"
	if [ "$STATUS" = "$5" ]; then ok "$1: $5"; else not_ok "$1: $5 (got $STATUS: $OUT)"; fi
}
matrix "no token, list VPCs" GET /api/vpcs "" 401
matrix "no token, register" POST /api/devices "" 401 '{}'
matrix "no token, whoami" GET /api/whoami "" 401
matrix "no token, metrics" GET /metrics "" 401
matrix "no token, peer list" GET "/api/vpcs/$VPC/devices" "" 401
matrix "unknown token" GET /api/vpcs "nmadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" 401
matrix "malformed token" GET /api/vpcs "hello" 401
matrix "device token creates a VPC" POST /api/vpcs "$TOK_a" 403 '{"name":"nope"}'
matrix "device token lists reg-keys" GET /api/reg-keys "$TOK_a" 403
matrix "device token reads metrics" GET /metrics "$TOK_a" 403
matrix "device token registers" POST /api/devices "$TOK_a" 403 '{}'
matrix "reg-key lists VPCs" GET /api/vpcs "$KEY" 403
matrix "reg-key reads a peer list" GET "/api/vpcs/$VPC/devices" "$KEY" 403
matrix "admin PATCHes a device's report" PATCH "/api/devices/$ID_a" "$ADMIN" 403 '{"hostname":"admin-set"}'
matrix "a device PATCHes another of its VPC" PATCH "/api/devices/$ID_d" "$TOK_a" 403 '{"relay":true}'
matrix "a device deletes another of its VPC" DELETE "/api/devices/$ID_d" "$TOK_a" 403
matrix "another VPC's device reads the peer list" GET "/api/vpcs/$VPC/devices" "$TOK_x" 404
matrix "another VPC's device reads the VPC" GET "/api/vpcs/$VPC" "$TOK_x" 404
matrix "another VPC's device reads a device" GET "/api/devices/$ID_a" "$TOK_x" 404
matrix "another VPC's device PATCHes a device" PATCH "/api/devices/$ID_a" "$TOK_x" 404 '{"relay":true}'
matrix "another VPC's device deletes a device" DELETE "/api/devices/$ID_a" "$TOK_x" 404
matrix "admin reads any peer list" GET "/api/vpcs/$VPC/devices" "$ADMIN" 200
matrix "a device reads a device of its VPC" GET "/api/devices/$ID_d" "$TOK_a" 200
ONCE=$(ctl -o json reg-key create --vpc "$VPC2" --single-use | jf secret)
register y "$ONCE"
check "a single-use key registers one device" test "$STATUS" = 201
register y "$TOK_y"
check "that device may register again with its token" test "$STATUS" = 200
register z "$ONCE"
check "a used single-use key: 401" test "$STATUS" = 401

# --- device identity is proven by its token, not its public key (issue 15, point 2):
# the public key is known to the whole VPC, a registration key to many
register v "$KEY2"
VTOK=$TOK_v
cp "$WORK/v.key" "$WORK/rogue.key"
register rogue "$KEY2"
check "registering a victim's public key with a multi-use key: 409 field public_key" \
	test "$STATUS:$(jfield field)" = "409:public_key"
api GET /api/whoami "$VTOK"
check "and the victim's token still answers" test "$STATUS" = 200
ONCE2=$(ctl -o json reg-key create --vpc "$VPC2" --single-use | jf secret)
register rogue "$ONCE2"
check "registering a victim's public key with a single-use key: refused" test "$STATUS" = 409
api GET /api/whoami "$VTOK"
check "and the victim's token still answers" test "$STATUS" = 200
register w "$ONCE2"
check "the refused attempt did not use the single-use key" test "$STATUS" = 201
register v2 "$ONCE2"
check "its first registration did" test "$STATUS" = 401
register rogue "$TOK_x"
check "another device's token cannot register the victim's key: 403" test "$STATUS:$(jfield field)" = "403:public_key"
api GET /api/whoami "$VTOK"
check "and the victim's token still answers" test "$STATUS" = 200
register v "$VTOK"
check "the victim registers again with its own token: 200, same device" test "$STATUS:$ID_v" = "200:$(jfield id)"
api GET /api/whoami "$VTOK"
check "which replaces that token" test "$STATUS" = 401
# the quota of a key (default 1000)
QKEY=$(ctl -o json reg-key create --vpc "$VPC2" --max-devices 2 | tee "$WORK/q.json" | jf secret)
check "a key shows its quota" test "$(jfield max_devices "$(cat "$WORK/q.json")")" = 2
register q1 "$QKEY"
register q2 "$QKEY"
check "a key with --max-devices 2 registers two devices" bash -c "test -n '$IP_q1' && test '$STATUS' = 201"
register q3 "$QKEY"
check "and refuses the third: 403 naming max_devices" bash -c "test '$STATUS' = 403 && grep -q max_devices <<<'$OUT'"
check "a key's default quota is 1000" test "$(ctl -o json reg-key create --vpc "$VPC2" | jf max_devices)" = 1000
# --- relays are granted, not claimed (issue 15, point 1) ------------------------------
api PATCH "/api/devices/$ID_x" "$TOK_x" '{"relay":true}'
check "a device token cannot make itself a relay: 403 field relay" test "$STATUS:$(jfield field)" = "403:relay"
api GET "/api/devices/$ID_x" "$ADMIN"
check "and it is still no relay" grep -q '"relay":false' <<<"$OUT"
api PATCH "/api/devices/$ID_x" "$TOK_x" '{"relay":false}'
check "naming the relay flag it has is no claim: 200" test "$STATUS" = 200
register claim "$KEY2" '"relay":true'
check "registering with relay:true and a key that mints no relays: 403 field relay" \
	test "$STATUS:$(jfield field)" = "403:relay"
RELAYKEY=$(ctl -o json reg-key create --vpc "$VPC2" --relay | jf secret)
register r1 "$RELAYKEY" '"relay":true'
check "a key created with --relay registers relays" bash -c "test '$STATUS' = 201 && grep -q '\"relay\":true' <<<'$OUT'"
out=$(ctl device update "$ID_x" --relay)
check "meshctl device update --relay: the admin grants relaying" bash -c "grep -q '^$ID_x ' <<<'$out'"
api GET "/api/devices/$ID_x" "$ADMIN"
check "the device is a relay now" grep -q '"relay":true' <<<"$OUT"
out=$(ctl -o json device update "$ID_x" --no-relay)
check "meshctl device update --no-relay takes it back" bash -c "jq -e '.relay == false' >/dev/null <<<'$out'"

SOON=$(ctl -o json reg-key create --vpc "$VPC2" --expires-at "$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)" | jf secret)
sleep 3
register z "$SOON"
check "an expired key: 401" test "$STATUS" = 401
KID=$(ctl -o json reg-key create --vpc "$VPC2" | tee "$WORK/k.json" | jf id)
GONE=$(jfield secret "$(cat "$WORK/k.json")")
ctl reg-key delete "$KID" >/dev/null
register z "$GONE"
check "a deleted key: 401" test "$STATUS" = 401

# --- malformed bodies: the right status, and the database untouched ----------------
before=$(db_digest)
bad() { # description method path token expected field body
	api "$2" "$3" "$4" "$7"
	local f
	f=$(jfield field)
	if [ "$STATUS" = "$5" ] && [ "$f" = "$6" ]; then ok "$1: $5${6:+ field $6}"; else not_ok "$1: want $5 ${6}, got $STATUS: $OUT"; fi
}
PUB=$(new_key m)
bad "truncated JSON" POST /api/devices "$KEY" 400 "" "{\"public_key\":\"$PUB\""
bad "not an object" POST /api/vpcs "$ADMIN" 400 "" '["lab"]'
bad "empty body" POST /api/vpcs "$ADMIN" 400 "" ''
bad "duplicate key" POST /api/vpcs "$ADMIN" 400 "" '{"name":"a","name":"b"}'
bad "wrong type: name" POST /api/vpcs "$ADMIN" 400 name '{"name":12}'
bad "wrong type: single_use" POST /api/reg-keys "$ADMIN" 400 single_use "{\"vpc_id\":\"$VPC\",\"single_use\":\"yes\"}"
bad "wrong type: endpoints" POST /api/devices "$KEY" 400 endpoints "{\"public_key\":\"$PUB\",\"endpoints\":\"10.0.0.1:1\"}"
bad "unknown field" POST /api/vpcs "$ADMIN" 400 colour '{"name":"c","colour":"red"}'
bad "read-only field" POST /api/devices "$KEY" 400 tunnel_ip "{\"public_key\":\"$PUB\",\"tunnel_ip\":\"10.20.0.9\"}"
bad "bad base64 key" POST /api/devices "$KEY" 400 public_key '{"public_key":"not/base64!!"}'
bad "key of 31 bytes" POST /api/devices "$KEY" 400 public_key '{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}'
bad "low-order key" POST /api/devices "$KEY" 400 public_key '{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}'
bad "bad CIDR" POST /api/vpcs "$ADMIN" 400 ipv4_cidr '{"name":"c","ipv4_cidr":"10.0.0.0/33"}'
bad "CIDR with host bits" POST /api/vpcs "$ADMIN" 400 ipv4_cidr '{"name":"c","ipv4_cidr":"10.0.0.1/24"}'
bad "bad endpoint port" POST /api/devices "$KEY" 400 "endpoints[0].address" "{\"public_key\":\"$PUB\",\"endpoints\":[{\"source\":\"local\",\"address\":\"10.0.0.1:70000\"}]}"
bad "key for another VPC" POST /api/devices "$KEY" 400 vpc_id "{\"public_key\":\"$PUB\",\"vpc_id\":\"$VPC2\"}"
bad "reg-key for no VPC" POST /api/reg-keys "$ADMIN" 404 vpc_id '{"vpc_id":"00000000-0000-4000-8000-000000000000"}'
bad "duplicate VPC name" POST /api/vpcs "$ADMIN" 409 name '{"name":"lab"}'
head -c 10485760 /dev/zero | tr '\0' 'x' >"$WORK/big"
STATUS=$(curl -s -o "$WORK/out" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' --data-binary @"$WORK/big" "$URL/api/vpcs")
check "a 10 MB body: 413" test "$STATUS" = 413
STATUS=$(curl -s -o "$WORK/out" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big" "$URL/api/vpcs")
check "a 10 MB chunked body: 413" test "$STATUS" = 413
check "none of the refused bodies changed the database" test "$(db_digest)" = "$before"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(jfield revision)
for body in '{"os":"x"}' '{"endpoints":[{"source":"moon","address":"1.2.3.4:5"}]}' '{}' '{"relay":1}' '{"nat":{"mapping":"x"}}'; do
	api PATCH "/api/devices/$ID_a" "$TOK_a" "$body"
	[ "$STATUS" = 400 ] || not_ok "PATCH $body: 400 (got $STATUS)"
done
# issue 15, point 5: no endpoint that makes every agent a reflector
for a in 127.0.0.1:51820 '[::1]:51820' 0.0.0.0:1 224.0.0.1:5 255.255.255.255:5 '[ff02::1]:5' 169.254.169.254:80 '[fe80::1]:5'; do
	api PATCH "/api/devices/$ID_a" "$TOK_a" "{\"endpoints\":[{\"source\":\"local\",\"address\":\"198.51.100.7:5\"},{\"source\":\"local\",\"address\":\"$a\"}]}"
	[ "$STATUS:$(jfield field)" = "400:endpoints[1].address" ] || not_ok "PATCH endpoint $a: 400 field endpoints[1].address (got $STATUS: $OUT)"
done
register ep "$KEY" '"endpoints":[{"source":"local","address":"169.254.169.254:80"}]'
check "a registration with a link-local endpoint: 400 naming the field" test "$STATUS:$(jfield field)" = "400:endpoints[0].address"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
check "refused PATCH bodies: 400 and no new revision" test "$(jfield revision)" = "$REV"
api GET "/api/vpcs/$VPC/devices?since=x" "$TOK_a"
check "a bad since: 400 field since" test "$STATUS:$(jfield field)" = "400:since"
api GET "/api/vpcs/$VPC/devices?wait=9999" "$TOK_a"
check "a bad wait: 400 field wait" test "$STATUS:$(jfield field)" = "400:wait"
api GET "/api/vpcs/not-a-uuid" "$ADMIN"
check "an unknown path: 404" test "$STATUS" = 404
api PUT /api/vpcs "$ADMIN" '{}'
check "a wrong method: 405" test "$STATUS" = 405

svc_stop TERM
check "SIGTERM stops meshsvc cleanly" grep -q "stopping signal=SIGTERM" "$WORK/svc.log"
finish
