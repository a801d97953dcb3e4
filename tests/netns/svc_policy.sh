#!/usr/bin/env bash
# meshsvc's security groups (issue 16) on loopback: the whole API lifecycle by
# curl and by meshctl, the 400s that name their field, the 409s that name who
# is in the way, a device reading only its own group, peer lists filtered by
# policy, and a waiting long poll answered within 100 ms of a PATCH that hides
# a peer (its id in "deleted") and of one that shows it again. No namespaces:
#
#   curl / meshctl (admin) ---\
#   curl (devices a b c r) ----+-- HTTP 127.0.0.1 --> meshsvc
#   curl (device a, waiting) -/
#
#   groups: clients (a)  --tcp/80-->  web (b)  --tcp/5432-->  db (c);  r: a relay
set -u
. "$(dirname "$0")/svc_lib.bash"

svc_start
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" | jf secret)
RKEY=$(ctl -o json reg-key create --vpc "$VPC" --relay | jf secret)
VPC2=$(ctl -o json vpc create other | jf id)
KEY2=$(ctl -o json reg-key create --vpc "$VPC2" | jf secret)
register a "$KEY"
A_REG=$OUT
register b "$KEY"
register c "$KEY"
register r "$RKEY"
register x "$KEY2"
register n "$KEY" '"enforces_policy":false'
N_REG=$OUT

# q JQ-FILTER: jq on $OUT, raw output
q() { jq -r "$1" <<<"$OUT"; }
# ctl_jq FILTER ARGS...: meshctl -o json ARGS, its answer true to the jq FILTER
ctl_jq() { local f=$1; shift; ctl -o json "$@" | jq -e "$f"; }
has() { grep -qF -- "$1" <<<"$2"; }
lacks() { ! grep -qF -- "$1" <<<"$2"; }
conflict_naming() { [ "$STATUS" = 409 ] || return 1; for w; do has "$w" "$OUT" || return 1; done; }
status_field() { # EXPECTED-STATUS EXPECTED-FIELD
	[ "$STATUS" = "$1" ] && [ "$(jq -r '.field // ""' <<<"$OUT")" = "$2" ]
}

# --- the default group ----------------------------------------------------------------------
api GET "/api/security-groups?vpc_id=$VPC" "$ADMIN"
DEF=$(q '.[0].id')
check "a new VPC has one group, default, allowing everything both ways" \
	test "$STATUS $(q 'length') $(q '.[0].name') $(q '.[0].inbound_rules[0].ip_protocol') $(q '.[0].outbound_rules[0].ip_protocol')" = "200 1 default any any"
api GET "/api/devices/$ID_a" "$ADMIN"
check "a new device is in its VPC's default group and enforces policy" \
	test "$(q .security_group_id) $(q .enforces_policy)" = "$DEF true"
check "a registration with enforces_policy false is stored and shown" \
	test "$(jq -r .enforces_policy <<<"$N_REG")" = false
register n "$TOK_n" '"enforces_policy":true'
check "registering again with its token updates it" test "$STATUS $(q .enforces_policy)" = "200 true"
register n "$TOK_n" '"enforces_policy":false'
check "both ways" test "$STATUS $(q .enforces_policy)" = "200 false"
check "the registration answer carries the device's own group, resolved (every member address)" \
	test "$(jq -r '.security_group.id' <<<"$A_REG") $(jq -r '.security_group.inbound_rules[0] | has("group_addresses")' <<<"$A_REG")" = "$DEF true"
check "a device that is no relay gets no security_groups" test "$(jq -r 'has("security_groups")' <<<"$A_REG")" = false

# --- the lifecycle by curl --------------------------------------------------------------------
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC\",\"name\":\"clients\",\"description\":\"people\",\"outbound_rules\":[{\"ip_protocol\":\"any\"}]}"
CLIENTS=$(q .id)
check "POST a group: 201, no inbound rules when none are given" \
	test "$STATUS $(q .name) $(q '.inbound_rules | length') $(q .description)" = "201 clients 0 people"
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC\",\"name\":\"web\",\"inbound_rules\":[{\"ip_protocol\":\"tcp\",\"from_port\":80,\"to_port\":80,\"groups\":[\"clients\"]}],\"outbound_rules\":[{\"ip_protocol\":\"any\"}]}"
WEB=$(q .id)
check "a rule's group named by name is stored and returned as its id" \
	test "$STATUS $(q '.inbound_rules[0].groups[0]')" = "201 $CLIENTS"

# --- the lifecycle by meshctl -----------------------------------------------------------------
DB=$(ctl -o json security-group create --vpc "$VPC" --name db --description "the database" \
	--inbound '[{"ip_protocol":"tcp","from_port":5432,"to_port":5432,"groups":["web"]}]' \
	--outbound '[{"ip_protocol":"any"}]' | jf id)
check "meshctl security-group create makes a group" test -n "$DB"
echo '[{"ip_protocol":"icmp","ip_ranges":["10.9.0.0/16"]}]' >"$WORK/rules.json"
SPARE=$(ctl -o json security-group create --vpc "$VPC" --name spare --inbound @"$WORK/rules.json" | jf id)
check "meshctl takes rules from @FILE" \
	ctl_jq '.inbound_rules[0].ip_ranges[0] == "10.9.0.0/16"' security-group show "$SPARE"
SHOW=$(ctl security-group show "$DB")
check "meshctl security-group show: a rule a line, groups by name" grep -q '^in  tcp 5432-5432 from groups web$' <<<"$SHOW"
check "meshctl security-group show: the outbound rule" grep -q '^out any to anyone in the VPC$' <<<"$SHOW"
LIST=$(ctl security-group list --vpc "$VPC")
check "meshctl security-group list --vpc: a row per group" test "$(grep -c "$VPC" <<<"$LIST")" = 5
check "meshctl security-group list -o json: every VPC's groups" \
	test "$(ctl -o json security-group list | jq length)" = 6
check "meshctl security-group update renames and describes" \
	ctl_jq '.name == "spare2" and .description == "later"' security-group update "$SPARE" --name spare2 --description later
check "meshctl security-group delete deletes an unused group" \
	has "deleted security-group $SPARE" "$(ctl security-group delete "$SPARE")"
api GET "/api/security-groups/$SPARE" "$ADMIN"
check "a deleted group is 404" test "$STATUS" = 404
check "meshctl device update --security-group takes a name" \
	ctl_jq ".security_group_id == \"$CLIENTS\"" device update "$ID_a" --security-group clients
api PATCH "/api/devices/$ID_b" "$ADMIN" "{\"security_group_id\":\"$WEB\"}"
check "the admin's PATCH of security_group_id takes an id" test "$STATUS $(q .security_group_id)" = "200 $WEB"
api PATCH "/api/devices/$ID_c" "$ADMIN" '{"security_group_id":"db"}'
check "and a name" test "$STATUS $(q .security_group_id)" = "200 $DB"

# --- refusals that name the field -------------------------------------------------------------
sg() { api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC\",\"name\":\"t\",$1}"; }
rule() { sg "\"inbound_rules\":[$1]"; }
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC\"}"
check "no name: 400 field name" status_field 400 name
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC\",\"name\":\"$(printf 'n%.0s' $(seq 64))\"}"
check "a name of 64 characters: 400 field name" status_field 400 name
api POST /api/security-groups "$ADMIN" '{"name":"t"}'
check "no vpc_id: 400 field vpc_id" status_field 400 vpc_id
api POST /api/security-groups "$ADMIN" '{"vpc_id":"00000000-0000-4000-8000-000000000000","name":"t"}'
check "an unknown VPC: 400 field vpc_id" status_field 400 vpc_id
sg '"colour":"red"'
check "an unknown field: 400 names it" status_field 400 colour
rule '{"ip_protocol":"sctp"}'
check "an unknown protocol: 400 field inbound_rules[0].ip_protocol" status_field 400 'inbound_rules[0].ip_protocol'
rule '{"ip_protocol":"tcp","from_port":1,"to_port":70000}'
check "a port past 65535: 400 field inbound_rules[0].to_port" status_field 400 'inbound_rules[0].to_port'
rule '{"ip_protocol":"tcp","from_port":90,"to_port":80}'
check "from_port > to_port: 400 field inbound_rules[0].from_port" status_field 400 'inbound_rules[0].from_port'
rule '{"ip_protocol":"icmp","from_port":1,"to_port":2}'
check "ports on icmp: 400 field inbound_rules[0].from_port" status_field 400 'inbound_rules[0].from_port'
rule '{"ip_protocol":"any"},{"ip_ranges":["10.0.0.1/8"]}'
check "a CIDR with host bits: 400 field inbound_rules[1].ip_ranges[0]" status_field 400 'inbound_rules[1].ip_ranges[0]'
rule '{"ip_ranges":["10.0.0.0/8","10.0.0.1-fd00::1"]}'
check "a range across families: 400 field inbound_rules[0].ip_ranges[1]" status_field 400 'inbound_rules[0].ip_ranges[1]'
rule '{"ip_ranges":["10.0.0.9-10.0.0.1"]}'
check "a range that ends before it starts: 400 field inbound_rules[0].ip_ranges[0]" status_field 400 'inbound_rules[0].ip_ranges[0]'
rule '{"groups":["clients","nope"]}'
check "an unknown group: 400 field inbound_rules[0].groups[1]" status_field 400 'inbound_rules[0].groups[1]'
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC2\",\"name\":\"far\"}"
FAR=$(q .id)
sg "\"outbound_rules\":[{\"groups\":[\"$FAR\"]}]"
check "another VPC's group: 400 field outbound_rules[0].groups[0]" status_field 400 'outbound_rules[0].groups[0]'
sg "\"inbound_rules\":[$(for i in $(seq 257); do printf '{}%s' "$([ "$i" -lt 257 ] && echo ,)"; done)]"
check "257 rules: 400 field inbound_rules" status_field 400 inbound_rules
rule "{\"ip_ranges\":[$(for i in $(seq 65); do printf '"10.0.%d.0/24"%s' "$i" "$([ "$i" -lt 65 ] && echo ,)"; done)]}"
check "65 ranges in a rule: 400 field inbound_rules[0].ip_ranges" status_field 400 'inbound_rules[0].ip_ranges'
api PATCH "/api/security-groups/$DB" "$ADMIN" '{"id":"x"}'
check "a read-only field in a PATCH: 400 names it" status_field 400 id
api PATCH "/api/devices/$ID_a" "$ADMIN" '{"security_group_id":"nope"}'
check "a device moved to an unknown group: 400 field security_group_id" status_field 400 security_group_id
api PATCH "/api/devices/$ID_a" "$ADMIN" "{\"security_group_id\":\"$FAR\"}"
check "a device moved to another VPC's group: 400 field security_group_id" status_field 400 security_group_id
api GET "/api/devices/$ID_a" "$ADMIN"
check "and it stayed where it was" test "$(q .security_group_id)" = "$CLIENTS"

# --- conflicts that name who ------------------------------------------------------------------
sg '"description":"once"'
T=$(q .id)
sg '"description":"again"'
check "a name taken in the VPC: 409 field name" status_field 409 name
api POST /api/security-groups "$ADMIN" "{\"vpc_id\":\"$VPC2\",\"name\":\"t\"}"
check "the same name in another VPC: 201" test "$STATUS" = 201
api DELETE "/api/security-groups/$T" "$ADMIN"
check "DELETE an unused group: 204" test "$STATUS" = 204
api PATCH "/api/security-groups/$CLIENTS" "$ADMIN" '{"name":"web"}'
check "a rename onto a taken name: 409 field name" status_field 409 name
api DELETE "/api/security-groups/$DEF" "$ADMIN"
check "deleting the default group: 409" test "$STATUS" = 409
api DELETE "/api/security-groups/$WEB" "$ADMIN"
check "deleting a group that a device uses and a rule names: 409 naming both" \
	conflict_naming "$ID_b" db
api DELETE "/api/security-groups/$CLIENTS" "$ADMIN"
check "deleting a group named by another's rule: 409 naming that group" conflict_naming web
api GET "/api/security-groups/$WEB" "$ADMIN"
check "the refused deletes changed nothing" test "$STATUS $(q .name)" = "200 web"

# --- who may read and write -------------------------------------------------------------------
api GET "/api/security-groups/$CLIENTS" "$TOK_a"
check "a device reads its own group" test "$STATUS $(q .id)" = "200 $CLIENTS"
api GET "/api/security-groups/$WEB" "$TOK_a"
check "another group of its VPC: 403" test "$STATUS" = 403
api GET "/api/security-groups/$FAR" "$TOK_a"
check "a group of another VPC: 404" test "$STATUS" = 404
api GET /api/security-groups "$TOK_a"
check "a device may not list groups: 403" test "$STATUS" = 403
api POST /api/security-groups "$TOK_a" "{\"vpc_id\":\"$VPC\",\"name\":\"mine\"}"
check "a device may not create one: 403" test "$STATUS" = 403
api PATCH "/api/devices/$ID_a" "$TOK_a" "{\"security_group_id\":\"$DEF\"}"
check "a device may not change its own group: 403 field security_group_id" status_field 403 security_group_id
api GET /api/security-groups/"$DB" "$ADMIN"
DB_REV=$(q .revision)
api PATCH "/api/security-groups/$DB" "$TOK_c" '{"description":"mine"}'
check "nor change its group: 403" test "$STATUS" = 403

# --- peer lists filtered by policy ------------------------------------------------------------
peers() { api GET "/api/vpcs/$VPC/devices" "$1"; q '[.devices[].id] | sort | join(" ")'; }
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
check "a client sees web, the default group and the relay, not db (nor itself: clients allow nothing in)" \
	test "$(peers "$TOK_a")" = "$(sorted "$ID_b" "$ID_n" "$ID_r")"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
check "nothing of db reaches a client: not its key" lacks "$(wg pubkey <"$WORK/c.key")" "$OUT"
api GET "/api/devices/$ID_c" "$TOK_a"
check "a device hidden by policy is 404 to a client's GET /api/devices/{id}" test "$STATUS" = 404
api GET "/api/devices/$ID_b" "$TOK_a"
check "a visible one is 200" test "$STATUS $(q .id)" = "200 $ID_b"
api GET "/api/devices/$ID_a" "$TOK_a"
check "and itself, whatever its group allows" test "$STATUS $(q .id)" = "200 $ID_a"
check "db sees web, the default group and the relay" test "$(peers "$TOK_c")" = "$(sorted "$ID_b" "$ID_n" "$ID_r")"
check "web sees clients (in), db (out), the default group and the relay, not itself" \
	test "$(peers "$TOK_b")" = "$(sorted "$ID_a" "$ID_c" "$ID_n" "$ID_r")"
check "the default group sees every device (it allows everything both ways)" \
	test "$(peers "$TOK_n")" = "$(sorted "$ID_a" "$ID_b" "$ID_c" "$ID_n" "$ID_r")"
check "the relay sees every device" test "$(peers "$TOK_r")" = "$(sorted "$ID_a" "$ID_b" "$ID_c" "$ID_n" "$ID_r")"
api GET "/api/vpcs/$VPC/devices" "$TOK_r"
check "and gets every group of the VPC, resolved" \
	test "$(q '.security_groups | length') $(q '[.security_groups[].name] | sort | join(",")')" = "4 clients,db,default,web"
check "the admin's list is unfiltered" test "$(peers "$ADMIN")" = "$(sorted "$ID_a" "$ID_b" "$ID_c" "$ID_n" "$ID_r")"
api GET "/api/vpcs/$VPC/devices" "$TOK_b"
check "a device's answer carries its own group with each named group's member addresses" \
	test "$(q .security_group.id) $(q '.security_group.inbound_rules[0].group_addresses | join(",")')" = "$WEB $IP_a"
check "every device object carries security_group_id" test "$(q '[.devices[] | has("security_group_id")] | all')" = true

# --- the revision scheme, filtered -------------------------------------------------------------
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(q .revision)
api PATCH "/api/devices/$ID_c" "$TOK_c" '{"endpoints":[{"source":"local","address":"10.0.0.3:4000"}]}'
api GET "/api/vpcs/$VPC/devices?since=$REV" "$TOK_a"
check "a hidden device's change reaches a client as its id in deleted, nothing more" \
	test "$(q .full) $(q '.devices | length') $(q '.deleted | join(" ")')" = "false 0 $ID_c"
check "not its new endpoint" lacks 10.0.0.3:4000 "$OUT"
api GET "/api/vpcs/$VPC/devices?since=$REV" "$TOK_b"
check "a device that sees it gets the change itself" test "$(q '[.devices[].id] | join(" ")')" = "$ID_c"

# --- long polls wake within 100 ms of a policy change -------------------------------------------
waiters() { api GET /metrics "$ADMIN"; sed -n 's/^meshsvc_watch_waiters //p' <<<"$OUT"; }
until_waiters() { for i in $(seq 100); do [ "$(waiters)" = "$1" ] && return 0; sleep 0.02; done; return 1; }
POLLS=()
poll() { # NAME TOKEN SINCE
	(curl -s --max-time 60 -H "Authorization: Bearer $2" \
		"$URL/api/vpcs/$VPC/devices?since=$3&wait=30" >"$WORK/$1.json"; now_ms >"$WORK/$1.t") &
	POLLS+=($!)
}
wait_polls() { wait "${POLLS[@]}"; POLLS=(); }
# woken NAME WHAT PATH BODY: a poll from the client's last revision waits, the
# admin PATCHes PATH with BODY; sets OUT to the answer and MS to the wake latency
woken() {
	poll "$1" "$TOK_a" "$REV"
	until_waiters 1
	sleep 0.2
	local t0
	t0=$(now_ms)
	api PATCH "$3" "$ADMIN" "$4"
	wait_polls
	MS=$(($(cat "$WORK/$1.t") - t0))
	echo "# wake latency, $2: $MS ms"
	OUT=$(cat "$WORK/$1.json")
}
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
REV=$(q .revision)

woken hide "a PATCH that hides web from a client" "/api/security-groups/$WEB" '{"inbound_rules":[{"ip_protocol":"tcp","from_port":80,"to_port":80,"groups":["db"]}]}'
check "a PATCH that hides a peer answers the waiting poll within 100 ms (took $MS ms)" test "$MS" -lt 100
check "with the hidden peer's id in deleted and not in devices" \
	test "$(q '.full') $(q "[.deleted[] | select(. == \"$ID_b\")] | length") $(q "[.devices[].id | select(. == \"$ID_b\")] | length")" = "false 1 0"
check "and nothing else: what the change did not touch is not sent again" \
	test "$(q '.devices | length') $(q '.deleted | join(" ")')" = "0 $ID_b"
check "and its own group, as it is now" test "$(q .security_group.id)" = "$CLIENTS"
REV=$(q .revision)

woken show "a PATCH that shows web to a client again" "/api/security-groups/$WEB" '{"inbound_rules":[{"ip_protocol":"tcp","from_port":80,"to_port":80,"groups":["clients"]}]}'
check "a PATCH that shows a peer answers the waiting poll within 100 ms (took $MS ms)" test "$MS" -lt 100
check "with the peer in devices, and nothing else" test "$(q '[.devices[].id] | join(" ")') $(q '.deleted | length')" = "$ID_b 0"
REV=$(q .revision)

woken move "a PATCH moving db's device to web" "/api/devices/$ID_c" '{"security_group_id":"web"}'
check "moving a device to another group answers the poll within 100 ms (took $MS ms), the moved one shown" \
	test "$MS" -lt 100 -a "$(q "[.devices[].id | select(. == \"$ID_c\")] | length")" = 1
ctl device update "$ID_c" --security-group db >/dev/null

api GET "/api/security-groups/$DB" "$ADMIN"
check "a group's revision is that of its last change" test "$(q .revision)" = "$DB_REV"
finish
