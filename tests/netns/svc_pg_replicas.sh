#!/usr/bin/env bash
# Two meshsvc replicas on one PostgreSQL database: 2,000 concurrent
# registrations split between them get 2,000 distinct tunnel addresses and no
# error (each replica's IPAM in memory misses the other's addresses; the
# unique (vpc_id, ip_index) and a retry at the next address settle it); a
# single-use key raced on both registers exactly one device; revisions rise
# across replicas; a change through A wakes a long poll on B; an address
# freed through B is given again by A. No namespaces:
#
#   svcload / curl --HTTP 127.0.0.1--> meshsvc A --\
#                                                   >--Unix socket--> private postgres (pg.bash)
#   svcload / curl --HTTP 127.0.0.1--> meshsvc B --/
set -u
SVC_DB=pg
. "$(dirname "$0")/svc_lib.bash"

ulimit -n 4096 2>/dev/null

svc_start
URL_A=$URL
svc_replica
check "a second meshsvc runs on the same database" test -n "$URL_B"

VPC=$(ctl -o json vpc create replicas | jf id)
# the key is made through B, which has not seen the VPC (A made it)
URL=$URL_B
ctl -o json reg-key create --vpc "$VPC" --max-devices 4000 | jf secret >"$WORK/regkey"
check "B makes a key for the VPC that A made" test -s "$WORK/regkey"
URL=$URL_A

"$LOAD" register "$URL_A" "$WORK/regkey" 1000 32 "$WORK/a.txt" >"$WORK/a.out" 2>&1 &
la=$!
"$LOAD" register "$URL_B" "$WORK/regkey" 1000 32 "$WORK/b.txt" >"$WORK/b.out" 2>&1
wait "$la"
check "1,000 registrations through A: $(tail -n 1 "$WORK/a.out")" grep -q 'registered=1000 failed=0' "$WORK/a.out"
check "1,000 registrations through B, at the same time: $(tail -n 1 "$WORK/b.out")" \
	grep -q 'registered=1000 failed=0' "$WORK/b.out"
distinct=$(cat "$WORK/a.txt" "$WORK/b.txt" | cut -d' ' -f2 | sort -u | wc -l)
check "2,000 distinct tunnel addresses in the answers ($distinct)" test "$distinct" = 2000
check "and in the database" \
	test "$(pg_psql "SELECT count(DISTINCT tunnel_ip) FROM devices WHERE vpc_id = '$VPC'")" = 2000
taken=$(grep -c 'address taken by another meshsvc' "$WORK/svc.log" "$WORK/b.log" | awk -F: '{ s += $2 } END { print s }')
check "the replicas did meet on addresses, and moved on ($taken retries)" test "$taken" -gt 0
check "revisions are distinct and the VPC's is the newest" \
	test "$(pg_psql "SELECT count(DISTINCT d.revision) = 2000 AND max(d.revision) <= v.revision FROM devices d
		JOIN vpcs v ON v.id = d.vpc_id WHERE d.vpc_id = '$VPC' GROUP BY v.revision")" = t

# PATCHes alternating between the replicas: each answer's revision is above the last
read -r ID _ _ _ TOK < "$WORK/a.txt"
last=0 rising=1
for i in $(seq 10); do
	for u in "$URL_A" "$URL_B"; do
		rev=$(curl -s --max-time 20 -X PATCH -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
			--data-binary "{\"hostname\":\"h$i-${u##*:}\"}" "$u/api/devices/$ID" | jf revision)
		[ -n "$rev" ] && [ "$rev" -gt "$last" ] || rising=0
		last=${rev:-0}
	done
done
check "20 PATCHes alternating A and B: revisions rise (last $last)" test "$rising" = 1

# fan-out: a change through A wakes a long poll held by B (LISTEN/NOTIFY on
# a doorbell connection of its own wakes B's housekeeping)
sleep 1.5
rev_a=$(curl -s --max-time 20 -H "Authorization: Bearer $ADMIN" "$URL_A/api/vpcs/$VPC/devices?since=0" | jf revision)
rev_b=$(curl -s --max-time 20 -H "Authorization: Bearer $ADMIN" "$URL_B/api/vpcs/$VPC/devices?since=0" | jf revision)
check "B has caught up with the revisions made through A (A $rev_a, B $rev_b)" test "$rev_a" = "$rev_b"
# 20 rounds: a poll on B since its revision, then a PATCH on A
times=() woke=0
for i in $(seq 20); do
	rev_b=$(curl -s --max-time 20 -H "Authorization: Bearer $ADMIN" "$URL_B/api/vpcs/$VPC/devices?since=0" | jf revision)
	curl -s --max-time 30 -H "Authorization: Bearer $ADMIN" "$URL_B/api/vpcs/$VPC/devices?since=$rev_b&wait=20" \
		>"$WORK/poll.json" &
	poller=$!
	sleep 0.2
	t0=$(now_ms)
	curl -s -o /dev/null --max-time 20 -X PATCH -H "Authorization: Bearer $TOK" -H 'Content-Type: application/json' \
		--data-binary "{\"hostname\":\"fanout$i\"}" "$URL_A/api/devices/$ID"
	wait "$poller"
	times+=($(($(now_ms) - t0)))
	grep -q "\"hostname\": *\"fanout$i\"" "$WORK/poll.json" && woke=$((woke + 1))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
max=$(printf '%s\n' "${times[@]}" | sort -n | tail -n 1)
check "a long poll on B wakes with the change after a PATCH on A, 20 of 20 ($woke), each within 500 ms (ms: $sorted)" \
	bash -c "[ $woke = 20 ] && [ $max -lt 500 ]"

# a VPC full in A's memory, where B deleted a device: A reads its addresses again
api POST /api/vpcs "$ADMIN" '{"name":"small","ipv4_cidr":"10.9.0.0/29"}'
SMALL_VPC=$(jfield id)
api POST /api/reg-keys "$ADMIN" "{\"vpc_id\":\"$SMALL_VPC\"}"
SMALL_KEY=$(jfield secret)
n=0
for i in $(seq 10); do
	register "s$i" "$SMALL_KEY"
	[ "$STATUS" = 201 ] && n=$((n + 1)) && gone=$ID_s1
done
full=$STATUS
URL=$URL_B
api DELETE "/api/devices/$ID_s1" "$ADMIN"
deleted=$STATUS
URL=$URL_A
register s11 "$SMALL_KEY"
check "A fills a /29 ($n devices, then $full), B deletes one ($deleted), A registers into its address ($STATUS, $IP_s11)" \
	bash -c "[ $n -gt 0 ] && [ $full != 201 ] && [ $deleted = 204 ] && [ $STATUS = 201 ] && [ '$IP_s11' = '$IP_s1' ]"

# a single-use key raced on both replicas, 20 times
won=0 bad=0
for i in $(seq 20); do
	key=$(ctl -o json reg-key create --vpc "$VPC" --single-use | jf secret)
	racers=()
	for side in a b; do
		pub=$(wg genkey | wg pubkey)
		u=$URL_A; [ $side = b ] && u=$URL_B
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 -H "Authorization: Bearer $key" \
			-H 'Content-Type: application/json' --data-binary "{\"public_key\":\"$pub\",\"hostname\":\"race$i$side\"}" \
			"$u/api/devices" >"$WORK/race.$side" &
		racers+=($!)
	done
	wait "${racers[@]}"
	codes=$(cat "$WORK/race.a" "$WORK/race.b" | sort | tr '\n' ' ')
	[ "$(grep -c '^201' "$WORK/race.a" "$WORK/race.b" | awk -F: '{ s += $2 } END { print s }')" = 1 ] && won=$((won + 1)) ||
		{ bad=$((bad + 1)); echo "# round $i: $codes"; }
done
check "a single-use key raced on A and B registers exactly one device (20 of 20 rounds: $won)" test "$won" = 20
check "and the database agrees: one device per single-use key" \
	test "$(pg_psql "SELECT count(*) FROM reg_keys WHERE single_use <> 0 AND registrations <> 1")" = 0
finish
