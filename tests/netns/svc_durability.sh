#!/usr/bin/env bash
# meshsvc durability on loopback: a restart serves everything again, and kill -9
# in the middle of a registration load loses no acknowledged device, nor any
# device that a long poll was shown (group commit answers neither before the
# commit). Also: many concurrent registrations never share a tunnel address.
# No namespaces:
#
#   svcload register (64, then 32 connections) --\
#   svcload poll (48 long polls) ------------------+--HTTP 127.0.0.1--> meshsvc ($WORK/db) <--- kill -9
set -u
. "$(dirname "$0")/svc_lib.bash"

svc_start
VPC=$(ctl -o json vpc create lab | jf id)
KEY=$(ctl -o json reg-key create --vpc "$VPC" --max-devices 100000 | jf secret)
echo "$KEY" >"$WORK/regkey"
register a "$KEY"
register b "$KEY"
api PATCH "/api/devices/$ID_a" "$TOK_a" '{"endpoints":[{"source":"local","address":"10.0.0.9:51820"}],"relay":true}'
token_before=$(cat "$WORK/db.admin-token")
list_before=$(ctl -o json device list | grep -v '"online"\|"last_seen"')
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
rev_before=$(jfield revision)

# --- restart ------------------------------------------------------------------------
svc_stop TERM
svc_start
check "restart keeps the admin token file" test "$(cat "$WORK/db.admin-token")" = "$token_before"
check "restart serves the same devices, addresses and endpoints" \
	test "$(ctl -o json device list | grep -v '"online"\|"last_seen"')" = "$list_before"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
check "device tokens and the revision survive a restart" test "$STATUS:$(jfield revision)" = "200:$rev_before"
register c "$KEY"
check "registration keys survive; the next address follows" test "$STATUS:$IP_c" = "201:100.64.0.3"

# --- concurrent registrations -----------------------------------------------------------
"$LOAD" register "$URL" "$WORK/regkey" 1000 64 "$WORK/conc.txt" >"$WORK/conc.out"
check "1000 registrations over 64 connections all succeed" grep -q "registered=1000 failed=0" "$WORK/conc.out"
check "and no tunnel address is handed out twice" test "$(cut -d' ' -f2 "$WORK/conc.txt" | sort -u | wc -l)" = 1000

# --- kill -9 during a registration load ------------------------------------------------------
# 48 long polls, asking again and again until meshsvc dies: the devices they are shown
"$LOAD" poll "$URL" "$WORK/db.admin-token" "$VPC" 48 "$WORK/seen.txt" >"$WORK/poll.out" 2>&1 &
reader=$!
"$LOAD" register "$URL" "$WORK/regkey" 4000 32 "$WORK/acked.txt" >"$WORK/load.out" 2>&1 &
load=$!
for i in $(seq 200); do
	[ -s "$WORK/acked.txt" ] && [ "$(wc -l <"$WORK/acked.txt")" -ge 300 ] && break
	sleep 0.02
done
svc_stop KILL
wait "$load"
wait "$reader"
acked=$(wc -l <"$WORK/acked.txt")
check "the load was cut short by kill -9 ($acked acknowledged)" bash -c "[ $acked -ge 300 ] && [ $acked -lt 4000 ]"
svc_start
ctl -o json device list >"$WORK/after.json"
missing=0
while read -r id ip _; do
	grep -A8 "\"id\": \"$id\"" "$WORK/after.json" | grep -q "\"tunnel_ip\": \"$ip\"" || missing=$((missing + 1))
done <"$WORK/acked.txt"
check "every acknowledged device is there after kill -9, with its address ($missing missing)" test "$missing" = 0
grep -o '"id": "[^"]*"' "$WORK/after.json" | cut -d'"' -f4 | sort -u >"$WORK/after.ids"
sort -u "$WORK/seen.txt" >"$WORK/seen.ids"
unseen=$(comm -23 "$WORK/seen.ids" "$WORK/after.ids" | wc -l)
check "and every device a long poll was shown ($(wc -l <"$WORK/seen.ids") shown, $unseen missing)" \
	bash -c "[ -s '$WORK/seen.ids' ] && [ $unseen = 0 ]"
ips=$(grep -o '"tunnel_ip": "[^"]*"' "$WORK/after.json")
check "all tunnel addresses are distinct" test "$(sort <<<"$ips" | uniq -d | wc -l)" = 0
read -r _ _ _ _ tok < <(tail -n 1 "$WORK/acked.txt")
api GET /api/whoami "$tok"
check "the last acknowledged device's token works after kill -9" test "$STATUS" = 200
register d "$KEY"
check "registration goes on after the crash with a fresh address" \
	bash -c "test '$STATUS' = 201 && ! grep -q '\"tunnel_ip\": \"$IP_d\"' '$WORK/after.json'"
finish
