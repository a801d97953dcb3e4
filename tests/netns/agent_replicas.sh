#!/usr/bin/env bash
# meshd and meshctl with several service URLs (issue 20's client side): they
# stick to one replica and move to the next when it fails, each kind of
# failure once. Topology of agent_common.bash; in [pub]:
#
#   203.0.113.99:8080  no host at all: the connection times out (1.5 s)
#   203.0.113.1:8081   a replica without its database: every answer 503
#   203.0.113.1:8082   nothing listening: the connection is refused
#   203.0.113.1:8080   meshsvc (SQLite in $T/svc.db)
#   203.0.113.1:8083   later: meshsvc again on the same database, the
#                      replica left when the one on 8080 is killed
#
# n1 is given all five in that order and registers through 8080; n2 only
# 8080. Then 8080 is killed (-9) and 8083 started: n1's long poll moves to
# 8083 and resumes from its revision; n3 (behind the symmetric NAT, and
# no relay here) registers through 8083 and n1 learns of it. meshctl
# takes the same list.
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun meshctl
command -v python3 >/dev/null || { skip "python3 is not installed"; exit 0; }

if ! setup; then not_ok "topology"; exit 1; fi
start_service || { not_ok "meshsvc starts"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; exit 1; }
make_vpc || { not_ok "VPC and registration key"; dump_logs; exit 1; }

# the replica without its database: a 503 with meshsvc's error shape
X pub python3 - >"$T/r503.log" 2>&1 <<-'EOF' &
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        body = b'{"error":"the database is unavailable"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PATCH = do_DELETE = answer
    def log_message(self, *a):
        print("503", self.command, self.path, flush=True)
HTTPServer(("203.0.113.1", 8081), H).serve_forever()
EOF
PIDS[r503]=$!
wait_port pub t 8081 || { not_ok "the 503 replica starts"; exit 1; }

LIST=http://203.0.113.99:8080,http://203.0.113.1:8081,http://203.0.113.1:8082,http://203.0.113.1:8080,http://203.0.113.1:8083
# n1 and n2 start together, alike but for n1's list: the list costs n1 the
# timeout (1.5 s) and two quick failures more than n2
t0=$EPOCHREALTIME
API=$LIST agent n1 n1
agent n2 n2
t1="" t2=""
for _ in $(seq 300); do
	[ -z "$t1" ] && [ -n "$(tunnel_ip n1)" ] && t1=$EPOCHREALTIME
	[ -z "$t2" ] && [ -n "$(tunnel_ip n2)" ] && t2=$EPOCHREALTIME
	[ -n "$t1" ] && [ -n "$t2" ] && break
	sleep 0.05
done
check "n1 registers through the fourth URL, n2 through its one" test -n "$t1" -a -n "$t2"
late_ms=$(awk -v a="$t2" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
echo "# n1 registered $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s after start, ${late_ms} ms after n2"
check "n1 is at most 3 s behind n2 (${late_ms} ms)" test "$late_ms" -lt 3000
check "n1 logged each failure with its reason" \
	test "$(grep -c 'service replica failed' "$T/n1.log")" -ge 3 -a \
	"$(grep -c 'replica failed url=http://203.0.113.99:8080 reason="[^"]*[Tt]imeout' "$T/n1.log")" -ge 1 -a \
	"$(grep -c 'replica failed url=http://203.0.113.1:8081 reason="HTTP 503 the database is unavailable"' "$T/n1.log")" -ge 1 -a \
	"$(grep -c 'replica failed url=http://203.0.113.1:8082 reason="[^"]*[Cc]onnect' "$T/n1.log")" -ge 1
check "the 503 replica saw n1's registration" grep -q "503 POST /api/devices" "$T/r503.log"
check "n1 -> n2 direct" wait_for 15 path_is n1 n2 direct
check "ping n1 -> n2" ping_ok n1 "$(tunnel_ip n2)"

# meshctl: the same list; the failures said on stderr, the answer from 8080
out=$(X pub "$B/meshctl" --service "${LIST%,*}" --token-file "$T/admin" --insecure-http -o json device list 2>"$T/ctl.err")
check "meshctl lists the devices through the fourth URL" test "$(jq length <<<"$out")" = 2
check "and says which replicas it tried" test "$(grep -c 'trying' "$T/ctl.err")" = 3
X pub "$B/meshctl" --service http://203.0.113.1:8082 --service http://203.0.113.1:8081 \
	--token-file "$T/admin" --insecure-http device list >/dev/null 2>"$T/ctl2.err"
check "meshctl fails when every replica fails, naming the last one's answer" \
	grep -q "HTTP 503: the database is unavailable" "$T/ctl2.err"

# the replica in use dies; another takes over its database (SQLite: one
# meshsvc at a time per file, so it starts once the first is gone)
kill -9 "${PIDS[svc]}"; wait "${PIDS[svc]}" 2>/dev/null; unset "PIDS[svc]"
ip netns exec "$P-pub" "$B/meshsvc" --listen 203.0.113.1:8083 --db "$T/svc.db" --admin-token-file "$T/admin" \
	>>"$T/svc2.log" 2>&1 &
PIDS[svc2]=$!
wait_port pub t 8083 || { not_ok "the second meshsvc starts"; dump_logs; exit 1; }
API=http://203.0.113.1:8083
check "n1 moves its long poll to 8083" wait_for 15 grep -q 'replica failed url=http://203.0.113.1:8080' "$T/n1.log"
agent n3 n3
check "n3 registers through 8083" wait_for 10 test -n "$(tunnel_ip n3)"
t0=$EPOCHREALTIME
knows_n3() { [ -n "$(path n1 n3)" ]; }
check "n1 learns of n3 through 8083" wait_for 10 knows_n3
t1=$EPOCHREALTIME
echo "# n1 listed n3 $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s after n3 registered"
check "ping n1 -> n2 still answered" ping_ok n1 "$(tunnel_ip n2)"
check "n1 did not register again (same device id)" \
	test "$(api GET /api/devices | jq '[.[] | select(.hostname == "n1")] | length')" = 1

check "no sanitizer report in any log" bash -c "! grep -l 'AddressSanitizer\|LeakSanitizer\|runtime error' $T/*.log"
[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
