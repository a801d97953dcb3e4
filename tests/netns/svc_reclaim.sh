#!/usr/bin/env bash
# meshsvc on loopback: a device that lost its token but holds its WireGuard
# private key reclaims its identity with a key proof (lib/keyproof.h), the
# MAC computed independently by tests/netns/svc_proof.py (python's
# cryptography and hashlib). Wrong, reused, expired and other-key proofs are
# refused with 403 naming "proof" and change nothing. No namespaces:
#
#   curl / svc_proof.py ---HTTP 127.0.0.1:(kernel's pick)---> meshsvc --challenge-ttl 1
set -u
. "$(dirname "$0")/svc_lib.bash"

PROOF=$(dirname "$0")/svc_proof.py
python3 -c 'import cryptography' 2>/dev/null || { skip "python3 cryptography is not installed"; exit 0; }

svc_start --challenge-ttl 1
VPC=$(ctl -o json vpc create lab --cidr 10.30.0.0/24 | jf id)
KEY=$(ctl reg-key create --vpc "$VPC" | sed -n 's/^secret (shown only now): //p')
check "a VPC and a registration key" test -n "$VPC" -a -n "$KEY"

register a "$KEY"
check "device a registers: 201" test "$STATUS" = 201
ID=$ID_a IP=$IP_a OLD=$TOK_a
PUB_a=$(wg pubkey <"$WORK/a.key")
new_key m >/dev/null		# the attacker's own key
PUB_m=$(wg pubkey <"$WORK/m.key")

# challenge PUB [TOKEN]: sets STATUS, OUT, CH and SK
challenge() {
	api POST /api/devices/challenge "${2-$KEY}" "{\"public_key\":\"$1\"}"
	CH=$(jfield challenge) SK=$(jfield service_key)
}
# reclaim NAME PUB CHALLENGE MAC [TOKEN]: a registration of PUB with a proof
reclaim() {
	api POST /api/devices "${5-$KEY}" "{\"public_key\":\"$2\",\"hostname\":\"$1\",\"proof\":{\"challenge\":\"$3\",\"mac\":\"$4\"}}"
}

# --- the challenge ----------------------------------------------------------
challenge "$PUB_a"
check "a registration key gets a challenge: 32 bytes, a service key, 1 s to answer" \
	bash -c "test '$STATUS' = 200 && test \$(base64 -d <<<'$CH' | wc -c) = 32 &&
		 test \$(base64 -d <<<'$SK' | wc -c) = 32 && test '$(jfield expires_in_s)' = 1"
CH1=$CH SK1=$SK
challenge "$PUB_a"
check "each challenge is fresh, with a service key of its own" test "$CH:$SK" != "$CH1:$SK1"
challenge "$PUB_a" "$OLD"
check "a device token gets no challenge: 403" test "$STATUS" = 403
challenge "$PUB_a" "$ADMIN"
check "nor the admin: 403" test "$STATUS" = 403
challenge "$PUB_a" ""
check "nor anyone without a token: 401" test "$STATUS" = 401
api POST /api/devices/challenge "$KEY" '{"public_key":"nope"}'
check "a malformed public key: 400 naming public_key" test "$STATUS:$(jfield field)" = 400:public_key
api POST /api/devices/challenge "$KEY" "{\"public_key\":\"$PUB_a\",\"extra\":1}"
check "an unknown field: 400 naming it" test "$STATUS:$(jfield field)" = 400:extra

# --- refused proofs change nothing -------------------------------------------
register a "$KEY"
check "without a proof the key cannot take a registered public key: 409" test "$STATUS" = 409
before=$(db_digest)
challenge "$PUB_a"
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/m.key" "$CH" "$SK")"
check "a MAC made with another private key: 403 naming proof" test "$STATUS:$(jfield field)" = 403:proof
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/a.key" "$CH" "$SK")"
check "then the right MAC for that challenge: 403, a challenge is used once" \
	test "$STATUS:$(jfield field)" = 403:proof
challenge "$PUB_m"
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/a.key" "$CH" "$SK")"
check "a challenge issued for another public key: 403 naming proof" test "$STATUS:$(jfield field)" = 403:proof
challenge "$PUB_a"
sleep 1.3
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/a.key" "$CH" "$SK")"
check "the right MAC after the challenge expired: 403, saying so" \
	bash -c "test '$STATUS:$(jfield field)' = 403:proof && grep -q expired <<<'$OUT'"
RND=$(head -c 32 /dev/urandom | base64)
reclaim a "$PUB_a" "$RND" "$RND"
check "a challenge never issued: 403 naming proof" test "$STATUS:$(jfield field)" = 403:proof
api POST /api/devices "$KEY" "{\"public_key\":\"$PUB_a\",\"proof\":{\"challenge\":\"$RND\"}}"
check "a proof without its mac: 400 naming proof.mac" test "$STATUS:$(jfield field)" = 400:proof.mac
challenge "$PUB_a"
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/a.key" "$CH" "$SK")" "$OLD"
check "a proof with the device token: 400 naming proof" test "$STATUS:$(jfield field)" = 400:proof
check "none of these changed the database" test "$(db_digest)" = "$before"
api GET /api/whoami "$OLD"
check "and the device's token still works" test "$STATUS" = 200

# --- the reclaim --------------------------------------------------------------
challenge "$PUB_a"
MAC=$("$PROOF" "$WORK/a.key" "$CH" "$SK")
reclaim a "$PUB_a" "$CH" "$MAC"
NEW=$("$LOAD" open-token "$WORK/a.key" "$(jfield device_token)" 2>/dev/null)
check "the right proof: 200, the same id and tunnel address" \
	test "$STATUS:$(jfield id):$(jfield tunnel_ip)" = "200:$ID:$IP"
check "with a new token sealed to the device's key" test "${NEW:0:6}" = nmdev_ -a "$NEW" != "$OLD"
api GET /api/whoami "$OLD"
check "the old token is refused: 401" test "$STATUS" = 401
api GET /api/whoami "$NEW"
check "the new one is the device's" test "$STATUS:$(jfield device_id)" = "200:$ID"
reclaim a "$PUB_a" "$CH" "$MAC"
check "the same proof again: 403, used" test "$STATUS:$(jfield field)" = 403:proof
check "meshsvc logs the reclaim" grep -q "device reclaimed with a key proof id=$ID" "$WORK/svc.log"

# a reclaim is a successful registration: it spends a single-use key
SKEY=$(ctl reg-key create --vpc "$VPC" --single-use | sed -n 's/^secret (shown only now): //p')
challenge "$PUB_a" "$SKEY"
reclaim a "$PUB_a" "$CH" "$("$PROOF" "$WORK/a.key" "$CH" "$SK")" "$SKEY"
check "a reclaim with a single-use key: 200, the same id" test "$STATUS:$(jfield id)" = "200:$ID"
register d "$SKEY"
check "which it used up: the next registration with it is 401" test "$STATUS" = 401

api GET /metrics "$ADMIN"
metric() { sed -n "s/^$1 //p" <<<"$OUT"; }
check "/metrics counts 2 reclaims and 6 refused proofs (the 400s never reached a challenge)" \
	test "$(metric meshsvc_devices_reclaimed_total):$(metric meshsvc_key_proofs_refused_total)" = 2:6
check "and at least the one challenge answered too late as expired" \
	test "$(metric meshsvc_challenges_expired_total)" -ge 1
check "8 challenges issued, none evicted" \
	test "$(metric meshsvc_challenges_issued_total):$(metric meshsvc_challenges_evicted_total)" = 8:0
finish
