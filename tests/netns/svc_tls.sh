#!/usr/bin/env bash
# meshsvc over HTTPS with a throwaway CA made here by openssl: curl and meshctl
# trust it through --cacert/--ca, refuse the certificate without it, and plain
# HTTP gets nothing. No namespaces:
#
#   curl / meshctl --HTTPS 127.0.0.1--> meshsvc --tls-cert srv.pem --tls-key srv.key
set -u
. "$(dirname "$0")/svc_lib.bash"

pki() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj "/CN=nmt throwaway CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$WORK/srv.key" -out "$WORK/srv.csr" &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$WORK/ext" &&
	openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
		-CAcreateserial -days 1 -extfile "$WORK/ext" -out "$WORK/srv.pem"
} 2>/dev/null
check "openssl makes a throwaway CA and a server certificate for 127.0.0.1" pki

svc_start --tls-cert "$WORK/srv.pem" --tls-key "$WORK/srv.key"
check "meshsvc serves https" grep -q '^https://127.0.0.1:' <<<"$URL"
CURL_TLS=(--cacert "$WORK/ca.pem")
api GET /healthz ""
check "curl trusting the CA: /healthz 200" test "$STATUS" = 200
curl -s -o /dev/null "$URL/healthz"
rc=$?
check "curl without the CA refuses the certificate (exit $rc)" test "$rc" = 60
plain=${URL/https:/http:}
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$plain/healthz")
check "plain HTTP on the HTTPS port gets no HTTP answer (HTTPS only)" test "$code" = 000

VPC=$("$CTL" --service "$URL" --token-file "$WORK/db.admin-token" --ca "$WORK/ca.pem" -o json vpc create tls | jf id)
check "meshctl --ca creates a VPC over HTTPS" test -n "$VPC"
out=$("$CTL" --service "$URL" --token-file "$WORK/db.admin-token" vpc list 2>&1)
rc=$?
check "meshctl without --ca: one line about the certificate, exit 1" \
	bash -c "[ $rc = 1 ] && [ \$(wc -l <<<'$out') = 1 ] && grep -qi certificate <<<'$out'"
KEY=$("$CTL" --service "$URL" --token-file "$WORK/db.admin-token" --ca "$WORK/ca.pem" -o json reg-key create --vpc "$VPC" | jf secret)
register a "$KEY"
check "a device registers over HTTPS and opens its token" test "$STATUS:${TOK_a:0:6}" = "201:nmdev_"
api GET "/api/vpcs/$VPC/devices" "$TOK_a"
check "and reads its peers over HTTPS" test "$STATUS" = 200
svc_stop TERM

"$SVC" --listen 127.0.0.1:0 --db "$WORK/db2" --tls-cert "$WORK/srv.pem" >"$WORK/bad.log" 2>&1
check "--tls-cert without --tls-key is refused" test $? = 2
"$SVC" --listen 127.0.0.1:0 --db "$WORK/db2" --tls-cert "$WORK/ca.key" --tls-key "$WORK/srv.pem" >"$WORK/bad.log" 2>&1
check "a key and certificate that are not one is refused with a log line" \
	bash -c "[ $? = 1 ] && grep -q 'cannot start the HTTP server' '$WORK/bad.log'"
finish
