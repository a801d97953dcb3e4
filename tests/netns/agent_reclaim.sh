#!/usr/bin/env bash
# meshd reclaims its device with a key proof: restarted with its state
# directory's device.token deleted, then with it corrupted (its private.key
# kept), it registers with the key, gets 409 for its own public key, answers
# a key challenge (lib/keyproof.h) and comes back as the same device: same
# id, same tunnel address, a working tunnel to its peer. Topology: see
# agent_common.bash (n1 and n2 behind their NATs, meshsvc and meshstun on pub).
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun

if ! setup; then not_ok "topology"; exit 1; fi
start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; dump_logs; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }

registered() { [ -n "$(tunnel_ip "$1")" ]; }
dev_id() { api GET /api/devices | jq -r --arg h "$1" '[.[] | select(.hostname == $h) | .id] | join(" ")'; }

agent n1 n1
agent n2 n2
check "n1 and n2 register" wait_for 10 eval 'registered n1 && registered n2'
T1=$(tunnel_ip n1) T2=$(tunnel_ip n2) ID1=$(dev_id n1)
check "n1 has a device id and a token file" test -n "$ID1" -a -s "$T/state-n1/device.token"
check "ping n1 -> n2 across the tunnel" wait_for 10 ping_ok n1 "$T2"

# reclaim WHAT: n1 restarts after WHAT was done to its token file
reclaim() {
	local old n
	old=$(cat "$T/state-n1/device.token" 2>/dev/null)
	n=$(grep -c 'reclaimed device ID with a key proof' "$T/n1.log")
	agent n1 n1
	check "n1 comes back registered ($1)" wait_for 15 registered n1
	check "n1 logs that it reclaimed its device ID with a key proof ($1)" \
		test "$(grep -c "reclaimed device ID with a key proof id=$ID1" "$T/n1.log")" = $((n + 1))
	check "the same device id, and no other device for n1 ($1)" test "$(dev_id n1)" = "$ID1"
	check "the same tunnel address ($1)" test "$(tunnel_ip n1)" = "$T1"
	check "a new token in device.token, mode 0600 ($1)" \
		bash -c "test -s '$T/state-n1/device.token' && test \"\$(cat '$T/state-n1/device.token')\" != '$old' &&
			 test \$(stat -c %a '$T/state-n1/device.token') = 600"
	check "ping n1 -> n2 across the tunnel again ($1)" wait_for 10 ping_ok n1 "$T2"
	check "ping n2 -> n1 across the tunnel again ($1)" wait_for 10 ping_ok n2 "$T1"
}

stop_agent n1
rm -f "$T/state-n1/device.token"
reclaim "device.token deleted"

stop_agent n1
(umask 077 && echo "nmdev_this-is-not-the-token-the-service-issued-000" >"$T/state-n1/device.token")
reclaim "device.token corrupted"
check "the service logged both reclaims" test "$(grep -c "device reclaimed with a key proof id=$ID1" "$T/svc.log")" = 2

# a key proof is no way around a lost key: another key is another device
stop_agent n1
rm -f "$T/state-n1/device.token" "$T/state-n1/private.key"
agent n1 n1
check "n1 with a new private key registers as a new device" \
	wait_for 15 eval '[ "$(dev_id n1 | wc -w)" = 2 ]'

[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
