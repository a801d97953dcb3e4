#!/usr/bin/env bash
# meshd against meshsvc over HTTPS with a throwaway CA (topology of
# agent_common.bash; only pub, gw1/n1 and gw2/n2 are used):
#
#   n1 --[gw1]--+
#               +-- pub: meshsvc https://203.0.113.1:8080 (certificate for IP 203.0.113.1)
#   n2 --[gw2]--+        meshstun 203.0.113.1/.2:3478
#
# n1 trusts the CA (--ca) and registers; n2 does not and must not register,
# saying why in one line; after n2 is restarted with --ca both connect
# directly and ping.
source "$(dirname "$0")/agent_common.bash"

need meshd meshsvc meshstun
command -v openssl >/dev/null || { skip "openssl is not installed"; exit 0; }

if ! setup; then not_ok "topology"; exit 1; fi
throwaway_ca || { not_ok "throwaway CA"; exit 1; }
start_service --tls-cert "$T/svc.pem" --tls-key "$T/svc.key" || { not_ok "meshsvc starts with TLS"; dump_logs; exit 1; }
start_stun || { not_ok "meshstun starts"; exit 1; }
make_vpc || { not_ok "VPC and registration key over HTTPS"; dump_logs; exit 1; }

agent n1 n1
CA= agent n2 n2
check "n1 (--ca) registers over HTTPS" wait_for 10 test -n "$(tunnel_ip n1)"
sleep 2
check "n2 (no --ca) does not register" test -z "$(tunnel_ip n2)"
check "n2 says why in its log" grep -q "certificate" "$T/n2.log"
unreach() { [ "$(ctl n2 '{"cmd":"status"}' | jq -r .service.reachable)" = false ]; }
check "n2 reports the service unreachable" unreach
stop_agent n2
agent n2 n2
check "n2 registers once it trusts the CA" wait_for 10 test -n "$(tunnel_ip n2)"
check "n1 -> n2 direct" wait_for 10 path_is n1 n2 direct
check "ping n1 -> n2 across the tunnel" ping_ok n1 "$(tunnel_ip n2)"

check "no sanitizer report in any log" bash -c "! grep -l 'AddressSanitizer\|LeakSanitizer\|runtime error' $T/*.log"

[ "$TAP_FAILS" -eq 0 ] || dump_logs
tap_exit
