#!/usr/bin/env bash
# Port mapping in a lab gateway (sim/portmapd.h): miniupnpd answers clients
# nobody here wrote (Debian's upnpc and natpmpc) and a PCP client written to
# RFC 6887 (pcp_map.py); each mapping shows in the gateway's nftables,
# carries a datagram from the internet to the inside host, and goes away when
# deleted; the reboot step starts a new epoch with no mapping left. Gateways
# without port mapping (gw2) or with PCP only (gw3) answer nothing, or PCP only.
#
#            inet 203.0.113.10
#                  |
#   ------------ internet 203.0.113.0/24 -----------------------
#        |.2 wan              |.3 wan              |.4 wan
#   gw1 symmetric        gw2 symmetric        gw3 symmetric
#   port_mapping:        (none)               port_mapping: pcp
#   pcp nat-pmp upnp
#        |.1 lan              |.1 lan              |.1 lan
#   lan1 192.168.1.0/24  lan2 10.1.0.0/24     lan3 192.168.3.0/24
#        |.2                  |.2                  |.2
#        h1                   h2                   h3
#
# meshsim runs the lab with expectations that wait for files this script
# creates: go-reboot (then the step {"reboot": "gw1"}) and go-end.
set -uo pipefail
. "$(dirname "$0")/tap.bash"
BUILD=${BUILD:-build}
M="$BUILD/meshsim"
PCP="$(cd "$(dirname "$0")" && pwd)/pcp_map.py"
tmp=$(mktemp -d /tmp/sim_portmap.XXXXXX)
lab=""
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$lab" ] && "$M" down "$lab" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for t in "$M" /usr/sbin/miniupnpd "$(command -v upnpc)" "$(command -v natpmpc)" "$(command -v socat)"; do
  [ -x "$t" ] || { not_ok "missing ${t:-a tool}: tools/install-deps installs it"; exit 1; }
done

gw() {  # NAME WAN_IP LAN_PREFIX MODEL
  cat <<JSON
    { "name": "$1", "kind": "nat", "nat": $4, "wan": "wan",
      "links": [ { "network": "internet", "ifname": "wan", "address": "$2" },
                 { "network": "l$1", "ifname": "lan", "address": "$3.1" } ] },
    { "name": "h${1#gw}", "links": [ { "network": "l$1", "address": "$3.2" } ],
      "routes": [ { "dst": "default", "via": "$1" } ] },
JSON
}
cat >"$tmp/lab.json" <<JSON
{ "name": "sim-portmap", "timeout_s": 400,
  "networks": [ { "name": "internet", "cidr": "203.0.113.0/24" },
                { "name": "lgw1", "cidr": "192.168.1.0/24" },
                { "name": "lgw2", "cidr": "10.1.0.0/24" },
                { "name": "lgw3", "cidr": "192.168.3.0/24" } ],
  "nodes": [
$(gw gw1 203.0.113.2 192.168.1 '{ "preset": "symmetric", "port_mapping": ["pcp", "nat-pmp", "upnp"] }')
$(gw gw2 203.0.113.3 10.1.0 '"symmetric"')
$(gw gw3 203.0.113.4 192.168.3 '{ "preset": "symmetric", "port_mapping": ["pcp"] }')
    { "name": "inet", "links": [ { "network": "internet", "address": "203.0.113.10" } ] } ],
  "expectations": [
    { "name": "wait for go-reboot", "command": "test -e \${run}/go-reboot", "node": "inet", "within_ms": 300000 },
    { "reboot": "gw1" },
    { "name": "wait for go-end", "command": "test -e \${run}/go-end", "node": "inet", "within_ms": 300000 } ] }
JSON

# --- the schema ----------------------------------------------------------------
check "validate accepts the lab" "$M" validate "$tmp/lab.json"
refused() {  # SED_EXPR WANT: the lab edited by SED_EXPR is refused with WANT in the message
  sed "$1" "$tmp/lab.json" >"$tmp/bad.json"
  local out
  out=$("$M" validate "$tmp/bad.json" 2>&1)
  grep -qF "$2" <<<"$out"
}
check "a protocol listed twice is refused at its index" \
  refused 's/\["pcp", "nat-pmp", "upnp"\]/["pcp", "upnp", "pcp"]/' 'nodes[0].nat.port_mapping[2]: "pcp" is listed twice'
check "an unknown protocol is refused" \
  refused 's/\["pcp", "nat-pmp", "upnp"\]/["pcp", "igd"]/' 'nodes[0].nat.port_mapping[1]: unknown protocol "igd"'
check "an empty list is refused" \
  refused 's/\["pcp", "nat-pmp", "upnp"\]/[]/' 'nodes[0].nat.port_mapping: must be a non-empty array'
check "reboot of a gateway without port mapping is refused" \
  refused 's/"reboot": "gw1"/"reboot": "gw2"/' 'expectations[1].reboot: node "gw2" is not a NAT gateway with "port_mapping"'

# --- the lab ------------------------------------------------------------------
"$M" run "$tmp/lab.json" --out "$tmp/run" >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
for _ in $(seq 600); do grep -q "expect 1/" "$tmp/run.err" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run.err" | head -1)
if ! grep -q "expect 1/" "$tmp/run.err"; then
  not_ok "the lab is up with miniupnpd ready in gw1 and gw3"; sed 's/^/# /' "$tmp/run.err"; exit 1
fi
ok "the lab is up with miniupnpd ready in gw1 and gw3"
at() { local n=$1; shift; ip netns exec "$lab-$n" "$@"; }
log="$tmp/run/logs/gw1-miniupnpd.log"
check "miniupnpd enabled forwarding for the TEST-NET WAN (ext_perform_stun)" \
  grep -q "Port forwarding is now enabled" "$log"
check "miniupnpd's config names WAN and LAN" \
  eval 'grep -qx "ext_ifname=wan" "$tmp/run/portmap/gw1.conf" && grep -qx "listening_ip=lan" "$tmp/run/portmap/gw1.conf"'

# carried NODE IP EPORT IPORT: a datagram from inet to gw's EPORT reaches NODE's IPORT
carried() {
  local token="pm-$RANDOM-$3" got
  at "$1" timeout 4 socat -u "UDP4-RECV:$4,reuseaddr" - >"$tmp/got" 2>/dev/null &
  local r=$!
  sleep 0.5
  for _ in 1 2 3; do at inet sh -c "echo $token | socat -u - UDP4-SENDTO:$2:$3"; sleep 0.2; done
  wait $r
  got=$(head -1 "$tmp/got")
  [ "$got" = "$token" ]
}
in_nft() { at gw1 nft list ruleset | grep -q "dport $1 dnat ip to 192.168.1.2:$2"; }
nonce=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')   # h1's mapping nonce
pcp() { at h1 python3 "$PCP" 192.168.1.1 192.168.1.2 4100 "$1" "$2" 3 "$nonce"; }  # EPORT LIFETIME
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"; }

# --- PCP (RFC 6887) -----------------------------------------------------------
out=$(pcp 4100 600)
check "pcp: MAP answered SUCCESS with the WAN address" \
  eval '[ "$(json_field "$out" result)" = 0 ] && [ "$(json_field "$out" external_ip)" = 203.0.113.2 ]'
pcp_port=$(json_field "$out" external_port)
pcp_epoch=$(json_field "$out" epoch)
check "pcp: the mapping is in gw1's nftables" in_nft "$pcp_port" 4100
check "pcp: a datagram from the internet reaches h1" carried h1 203.0.113.2 "$pcp_port" 4100
out=$(pcp "$pcp_port" 0)
check "pcp: lifetime 0 deletes it (SUCCESS)" eval '[ "$(json_field "$out" result)" = 0 ]'
check "pcp: deleted, it leaves nftables" eval '! in_nft "$pcp_port" 4100'
check "pcp: deleted, the datagram no longer arrives" eval '! carried h1 203.0.113.2 "$pcp_port" 4100'

# --- NAT-PMP (RFC 6886) with natpmpc -------------------------------------------
out=$(at h1 timeout 10 natpmpc -g 192.168.1.1 -a 4200 4200 udp 600 2>&1)
check "nat-pmp: natpmpc maps port 4200" grep -q "Mapped public port 4200 protocol UDP to local port 4200" <<<"$out"
pmp_epoch=$(sed -n 's/^epoch = \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
check "nat-pmp: the mapping is in gw1's nftables" in_nft 4200 4200
check "nat-pmp: a datagram from the internet reaches h1" carried h1 203.0.113.2 4200 4200
out=$(at h1 timeout 10 natpmpc -g 192.168.1.1 -a 4200 4200 udp 0 2>&1)
check "nat-pmp: lifetime 0 deletes it" eval '! in_nft 4200 4200'
check "nat-pmp: deleted, the datagram no longer arrives" eval '! carried h1 203.0.113.2 4200 4200'

# --- UPnP IGD with upnpc -------------------------------------------------------
# -i: miniupnpc 2.2.4 calls an IGD whose external address is reserved (TEST-NET)
# "not connected" and stops without it
upnpc() { at h1 timeout 20 upnpc -i -m eth0 "$@" 2>&1; }
out=$(upnpc -a 192.168.1.2 4300 4300 UDP)
check "upnp: SSDP finds gw1's IGD and AddPortMapping succeeds" \
  grep -q "external 203.0.113.2:4300 UDP is redirected to internal 192.168.1.2:4300" <<<"$out"
check "upnp: upnpc -l lists it" eval 'upnpc -l | grep -q "UDP  4300->192.168.1.2:4300"'
check "upnp: the mapping is in gw1's nftables" in_nft 4300 4300
check "upnp: a datagram from the internet reaches h1" carried h1 203.0.113.2 4300 4300
upnpc -d 4300 UDP >/dev/null
check "upnp: upnpc -d removes it from nftables" eval '! in_nft 4300 4300'
check "upnp: deleted, the datagram no longer arrives" eval '! carried h1 203.0.113.2 4300 4300'

# --- the model stays for everything else; gateways that map nothing or PCP only
check "gw1: an unmapped port stays closed to the internet" eval '! carried h1 203.0.113.2 4400 4400'
out=$(at h2 python3 "$PCP" 10.1.0.1 10.1.0.2 4100 4100 600 2); rc=$?
check "gw2 (no port_mapping): PCP gets no answer" eval '[ $rc -eq 2 ]'
check "gw2 (no port_mapping): natpmpc gets no answer" eval '! at h2 timeout 6 natpmpc -g 10.1.0.1 -a 4200 4200 udp 600 >/dev/null 2>&1'
check "gw2 (no port_mapping): upnpc finds no IGD" eval '! at h2 timeout 20 upnpc -i -m eth0 -l 2>&1 | grep -q rootDesc'
out=$(at h3 python3 "$PCP" 192.168.3.1 192.168.3.2 4100 4100 600)
check "gw3 (pcp only): PCP maps" eval '[ "$(json_field "$out" result)" = 0 ]'
check "gw3 (pcp only): NAT-PMP gets no answer" eval '! at h3 timeout 6 natpmpc -g 192.168.3.1 -a 4200 4200 udp 600 >/dev/null 2>&1'
check "gw3 (pcp only): no UPnP IGD" eval '! at h3 timeout 20 upnpc -i -m eth0 -l 2>&1 | grep -q rootDesc'

# --- reboot: a new epoch, no mapping left ---------------------------------------
out=$(pcp 4100 600)
pcp_before=$(json_field "$out" epoch)
out=$(at h1 timeout 10 natpmpc -g 192.168.1.1 -a 4200 4200 udp 600 2>&1)
pmp_before=$(sed -n 's/^epoch = \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
check "before the reboot: both mappings are in nftables" eval 'in_nft 4100 4100 && in_nft 4200 4200'
touch "$tmp/run/go-reboot"
for _ in $(seq 300); do grep -q "expect 3/" "$tmp/run.err" && break; sleep 0.1; done
check "the reboot step passes" grep -q "^\[.*\]   pass .*gw1: NAT state flushed" "$tmp/run.err"
check "after the reboot: no mapping is left in nftables" eval '! in_nft 4100 4100 && ! in_nft 4200 4200'
check "after the reboot: the datagram no longer arrives" eval '! carried h1 203.0.113.2 4100 4100'
check "after the reboot: gw1's conntrack table was flushed" eval '[ "$(at gw1 conntrack -L 2>/dev/null | grep -c "dport=4100")" -eq 0 ]'
out=$(pcp 4100 600)
pcp_after=$(json_field "$out" epoch)
echo "# pcp epoch: first $pcp_epoch, before the reboot $pcp_before, after $pcp_after"
check "pcp: the epoch after the reboot is smaller (RFC 6887 8.5)" \
  eval '[ -n "$pcp_after" ] && [ "$pcp_after" -lt "$pcp_before" ]'
check "pcp: mapping again works and carries traffic" carried h1 203.0.113.2 4100 4100
out=$(at h1 timeout 10 natpmpc -g 192.168.1.1 -a 4200 4200 udp 600 2>&1)
pmp_after=$(sed -n 's/^epoch = \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
echo "# nat-pmp epoch: first $pmp_epoch, before the reboot $pmp_before, after $pmp_after"
check "nat-pmp: the epoch after the reboot is smaller (RFC 6886 3.6)" \
  eval '[ -n "$pmp_after" ] && [ -n "$pmp_before" ] && [ "$pmp_after" -lt "$pmp_before" ]'

# --- the end ------------------------------------------------------------------
touch "$tmp/run/go-end"
wait $pid; rc=$?
pid=""
check "the run passes" eval '[ $rc -eq 0 ] && grep -q "\"verdict\": \"PASS\"" "$tmp/run/report.json"'
check "no namespace, state file or miniupnpd of the lab is left" \
  eval '[ "$(ip netns list | grep -c "^$lab-")" -eq 0 ] && [ ! -e "/run/meshsim/$lab.json" ] && ! pgrep -f "$tmp/run/portmap" >/dev/null'
lab=""
grep -o "pass ([0-9.]* s) gw1: NAT state flushed" "$tmp/run.err" | sed 's/^/# reboot step: /'

# --- SIGINT while miniupnpd runs: nothing of the lab is left -------------------
"$M" run "$tmp/lab.json" --out "$tmp/run2" --no-capture >/dev/null 2>"$tmp/run2.err" &
pid=$!
for _ in $(seq 600); do grep -q "expect 1/" "$tmp/run2.err" 2>/dev/null && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
lab=$(sed -n 's/.*lab \(nms[0-9a-f]*\):.*/\1/p' "$tmp/run2.err" | head -1)
check "a second lab runs miniupnpd" pgrep -f "$tmp/run2/portmap/gw1.conf"
kill -INT $pid
wait $pid; rc=$?
pid=""
check "SIGINT: run ends with 130 and no namespace or miniupnpd of the lab is left" \
  eval '[ $rc -eq 130 ] && [ "$(ip netns list | grep -c "^$lab-")" -eq 0 ] && ! pgrep -f "$tmp/run2/portmap" >/dev/null'
lab=""
tap_exit
