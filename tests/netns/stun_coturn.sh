#!/usr/bin/env bash
# meshstun against coturn's independent STUN clients, on the loopback of a
# namespace this test creates (so ports and addresses are its own).
#
#   namespace nmstun-<pid>, interface lo: 127.0.0.0/8 and ::1
#
#     turnutils_stunclient / natdiscovery      meshstun
#     127.0.0.3 (client side)  ---- lo ----    127.0.0.1:3478  127.0.0.1:3479
#                                              127.0.0.2:3478  127.0.0.2:3479   (--rfc5780)
#                                              [::1]:3478                       (IPv6 run)
#
# Prints TAP lines (ok / not ok) for tools/run-tests.
set -uo pipefail
. "$(dirname "$0")/tap.bash"

cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MESHSTUN=$(realpath "$BUILD/meshstun")
STUNLOAD=$(realpath "$BUILD/stunload")
NS=nmstun-$$
tmp=$(mktemp -d /tmp/natmesh-stun.XXXXXX)
server_pid=

in_ns() { ip netns exec "$NS" "$@"; }

cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  ip netns del "$NS" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

for tool in turnutils_stunclient turnutils_natdiscovery tcpdump; do
  if ! command -v "$tool" >/dev/null; then skip "$tool missing (make deps)"; exit 0; fi
done
[ -x "$MESHSTUN" ] && [ -x "$STUNLOAD" ] || { not_ok "$BUILD/meshstun or stunload missing"; exit 1; }

ip netns add "$NS" || { not_ok "cannot create namespace $NS"; exit 1; }
in_ns ip link set lo up

# start meshstun in the namespace with the given arguments; waits for it to bind
start_server() {
  # not through in_ns: $! must be meshstun itself (ip netns exec execs it)
  : >"$tmp/server.log"
  ip netns exec "$NS" "$MESHSTUN" "$@" >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    [ "$(grep -Ec 'listening addr=|"msg":"listening"' "$tmp/server.log")" -ge "$expect_socks" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/server.log"
  return 1
}

# SIGTERM; returns meshstun's exit status
stop_server() {
  local rc
  kill -TERM "$server_pid"
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$server_pid"; rc=$?
  server_pid=
  return $rc
}

# --- 1. plain server: turnutils_stunclient sees its own address --------------
expect_socks=1
start_server --listen 127.0.0.1:3478 || { not_ok "meshstun did not start"; exit 1; }
ncpu=$(nproc); [ "$ncpu" -gt 64 ] && ncpu=64
check "threads default to one per CPU it may use ($ncpu)" grep -q "started .*threads=$ncpu\$" "$tmp/server.log"

# the client's source port, as the wire shows it, is what the server must report
: >"$tmp/tcpdump.err"
in_ns tcpdump -i lo -n -l -c 1 'udp and dst port 3478 and src host 127.0.0.3' >"$tmp/tcpdump.txt" 2>"$tmp/tcpdump.err" &
td=$!
for _ in $(seq 50); do grep -q 'listening on' "$tmp/tcpdump.err" && break; sleep 0.1; done
in_ns timeout 10 turnutils_stunclient -L 127.0.0.3 -p 3478 127.0.0.1 >"$tmp/stunclient.txt" 2>&1
wait "$td"
src=$(sed -n 's/.* IP 127\.0\.0\.3\.\([0-9]*\) > 127\.0\.0\.1\.3478.*/\1/p' "$tmp/tcpdump.txt" | head -n1)
refl=$(sed -n 's/.*UDP reflexive addr: \([0-9.:]*\).*/\1/p' "$tmp/stunclient.txt" | head -n1)
check "turnutils_stunclient gets an answer" test -n "$refl"
check "reflexive address is the client's own (127.0.0.3:$src, got $refl)" test -n "$src" -a "$refl" = "127.0.0.3:$src"

# --- 2. malformed packets are counted, the server keeps answering ------------
# one datagram each: printf may write in pieces, cat writes the file at once
send_raw() {
  printf "$1" >"$tmp/pkt"
  in_ns bash -c "cat '$tmp/pkt' >/dev/udp/127.0.0.1/3478"
}
cookie='\x21\x12\xa4\x42'
tid='\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c'
send_raw '\x00\x01\x00\x00\x21\x12'                                   # truncated header
send_raw "\\x00\\x01\\x00\\x00\\xde\\xad\\xbe\\xef$tid"                  # wrong magic cookie
send_raw "\\x00\\x01\\x00\\x05$cookie$tid\\x80\\x22\\x00\\x01\\x41"      # length not a multiple of 4
send_raw "\\x00\\x01\\x00\\x08$cookie$tid\\x80\\x22\\x00\\x08\\x41\\x42\\x43\\x44"  # attribute past end
send_raw "\\x00\\x01\\x00\\x10$cookie$tid\\x80\\x22\\x00\\x04ABCD\\x80\\x22\\x00\\x04EFGH"  # duplicated attribute
send_raw "\\x00\\x01\\x00\\x08$cookie$tid\\x80\\x28\\x00\\x04\\x00\\x00\\x00\\x00"  # bad fingerprint
send_raw "\\x80\\x01\\x00\\x00$cookie$tid"                          # first two bits set
send_raw '\x01\x00\x00\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00'  # WireGuard-like (no cookie)
sent_malformed=8 malformed_reasons=7
out=$(in_ns timeout 10 turnutils_stunclient -p 3478 127.0.0.1 2>&1)
check "still answers after malformed packets" grep -q 'UDP reflexive addr: 127.0.0.1:' <<<"$out"

# --- 3. rate limit per source IP --------------------------------------------
# (the default allows bursts of 100; stunload with one socket and a window of
# 500 asks for more than that at once)
load=$(in_ns "$STUNLOAD" --server 127.0.0.1:3478 --sockets 1 --window 500 --batch 50 --duration 1 --warmup 0 2>&1)
answered=$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$load")
check "per-IP limit holds a burst to about 100 + 50/s (answered ${answered:-none})" test "${answered:-0}" -ge 50 -a "${answered:-999}" -le 250

stop_server; rc=$?
check "SIGTERM: meshstun exits 0 (status $rc)" test "$rc" -eq 0
counters=$(grep 'counters ' "$tmp/server.log")
malformed=$(sed -n 's/.* malformed=\([0-9]*\).*/\1/p' <<<"$counters")
limited=$(sed -n 's/.* rate_limited=\([0-9]*\).*/\1/p' <<<"$counters")
check "malformed packets counted ($malformed of $sent_malformed)" test "${malformed:-0}" -eq "$sent_malformed"
check "each malformation counted under its own reason ($malformed_reasons)" \
  test "$(grep -c 'malformed reason=' "$tmp/server.log")" -eq "$malformed_reasons"
check "rate-limited answers counted (${limited:-none})" test "${limited:-0}" -gt 0
check "malformed-packet log is rate limited" test "$(grep -c 'dropped malformed packet' "$tmp/server.log")" -le 2

# --- 3b. threads: one socket per thread on the address, sources spread ------
start_server --listen 127.0.0.1:3478 --threads 4 || not_ok "meshstun --threads 4 did not start"
out=$(in_ns timeout 10 turnutils_stunclient -L 127.0.0.3 -p 3478 127.0.0.1 2>&1)
check "--threads 4: turnutils_stunclient gets its address" grep -q 'UDP reflexive addr: 127.0.0.3:' <<<"$out"
in_ns "$MESHSTUN" --listen 127.0.0.1:3478 >"$tmp/second.log" 2>&1; rc=$?
check "--threads 4: a second server on the address is refused (status $rc)" \
  grep -q 'cannot open socket addr=127.0.0.1:3478 err="Address already in use"' "$tmp/second.log"
# one IP, four sockets: still one limiter (the kernel keeps an IP on one thread)
load=$(in_ns "$STUNLOAD" --server 127.0.0.1:3478 --sockets 4 --sources 1 --window 500 --batch 50 --duration 1 --warmup 0 2>&1)
answered=$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$load")
check "--threads 4: per-IP limit still holds one IP to about 100 + 50/s (answered ${answered:-none})" \
  test "${answered:-0}" -ge 50 -a "${answered:-999}" -le 250
# 16 client IPs, a few requests each (within their limits)
load=$(in_ns "$STUNLOAD" --server 127.0.0.1:3478 --sockets 16 --sources 16 --window 4 --batch 4 --duration 1 --warmup 0 2>&1)
answered16=$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' <<<"$load")
check "--threads 4: 16 client IPs answered (${answered16:-none})" test "${answered16:-0}" -gt 0
stop_server; rc=$?
check "--threads 4: SIGTERM exits 0 (status $rc)" test "$rc" -eq 0
busy=$(grep -c 'thread counters thread=[0-3] received=[1-9]' "$tmp/server.log")
check "--threads 4: the sources spread over the threads ($busy of 4 received)" test "$busy" -ge 2
total=$(sed -n 's/.*counters received=\([0-9]*\).*/\1/p' "$tmp/server.log")
sum=$(sed -n 's/.*thread counters thread=[0-9]* received=\([0-9]*\).*/\1/p' "$tmp/server.log" | awk '{ s += $1 } END { print s + 0 }')
check "--threads 4: the counters add up ($sum = ${total:-none})" test "$sum" = "${total:-x}"

# --- 4. IPv6 ------------------------------------------------------------------
expect_socks=1
start_server --listen '[::1]:3478' --log-format json || not_ok "meshstun on [::1] did not start"
out=$(in_ns timeout 10 turnutils_stunclient -p 3478 ::1 2>&1)
# (coturn prints IPv6 endpoints without brackets)
check "IPv6: turnutils_stunclient gets ::1 back" grep -q 'IPv6. UDP reflexive addr: ::1:[0-9]' <<<"$out"
stop_server; rc=$?
check "IPv6: SIGTERM exits 0" test "$rc" -eq 0
check "--log-format json writes JSON lines" grep -q '^{.*"component":"meshstun".*"received":' "$tmp/server.log"

# --- 5. RFC 5780: natdiscovery mapping and filtering tests --------------------
in_ns "$MESHSTUN" --listen 127.0.0.1:3478 --rfc5780 >/dev/null 2>&1; rc=$?
check "--rfc5780 with a single address is refused (status $rc)" test "$rc" -eq 2
# two threads: a CHANGE-REQUEST answer leaves through the answering thread's
# own socket of the other address
expect_socks=4
start_server --listen 127.0.0.1:3478 --listen 127.0.0.2:3478 --rfc5780 --threads 2 ||
  { not_ok "meshstun --rfc5780 did not start"; exit 1; }
for s in 127.0.0.1:3478 127.0.0.1:3479 127.0.0.2:3478 127.0.0.2:3479; do
  check "--rfc5780 listens on $s" grep -q "listening addr=$s" "$tmp/server.log"
done

out=$(in_ns timeout 60 turnutils_natdiscovery -m -f -L 127.0.0.3 -l 40000 -p 3478 127.0.0.1 2>&1)
echo "$out" >"$tmp/natdiscovery.txt"
responses=$(grep -c 'RFC 5780 response' <<<"$out")
check "natdiscovery: every test answered ($responses RFC 5780 responses, 4 expected)" test "$responses" -eq 4
check "natdiscovery: mapping test concludes (no NAT here: endpoint independent)" \
  grep -q 'NAT with Endpoint Independent Mapping' <<<"$out"
check "natdiscovery: filtering test concludes (endpoint independent)" \
  grep -q 'NAT with Endpoint Independent Filtering' <<<"$out"
check "natdiscovery: OTHER-ADDRESS is the alternate IP and port" grep -q 'Other addr: : 127.0.0.2:3479' <<<"$out"
check "natdiscovery: test II answered from the alternate address (CHANGE-REQUEST ip+port)" \
  grep -q 'Response origin: : 127.0.0.2:3479' <<<"$out"
check "natdiscovery: test I of mapping to the alternate IP answered from it" \
  grep -q 'Response origin: : 127.0.0.2:3478' <<<"$out"
check "natdiscovery: reflexive address is the client's 127.0.0.3:40000" \
  grep -q 'UDP reflexive addr: 127.0.0.3:40000' <<<"$out"
check "natdiscovery: no ALG rewrote MAPPED-ADDRESS" grep -q 'No ALG: Mapped == XOR-Mapped' <<<"$out"

# with -P every request carries 1500 bytes of PADDING (the fragmentation test)
out=$(in_ns timeout 60 turnutils_natdiscovery -m -f -P -p 3478 127.0.0.1 2>&1)
check "natdiscovery -P (PADDING): every test answered" test "$(grep -c 'RFC 5780 response' <<<"$out")" -eq 4

# Filtering test III (CHANGE-REQUEST: change port only) runs only when test
# II (change IP and port) gets no answer: drop what the alternate IP sends to
# the client port, as an address-dependent filtering NAT would.
if in_ns nft -f - <<'NFT'
table inet nmstun {
  chain in {
    type filter hook input priority 0;
    ip saddr 127.0.0.2 udp dport 40001 drop
  }
}
NFT
then
  out=$(in_ns timeout 60 turnutils_natdiscovery -f -L 127.0.0.3 -l 40001 -p 3478 127.0.0.1 2>&1)
  echo "$out" >>"$tmp/natdiscovery.txt"
  check "natdiscovery filtering test III: change-port answer from 127.0.0.1:3479" \
    grep -q 'Response origin: : 127.0.0.1:3479' <<<"$out"
  check "natdiscovery: address dependent filtering detected behind the nft rule" \
    grep -q 'NAT with Address Dependent Filtering' <<<"$out"
  in_ns nft delete table inet nmstun
else
  not_ok "nft rule for the filtering test III"
fi

stop_server; rc=$?
check "RFC 5780: SIGTERM exits 0" test "$rc" -eq 0
check "RFC 5780: nothing malformed from coturn's clients" grep -q ' malformed=0 ' "$tmp/server.log"

tap_exit
