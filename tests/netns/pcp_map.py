#!/usr/bin/env python3
"""A PCP MAP client to RFC 6887 (sections 7.1, 7.2, 11.1): one request, one
answer, printed as JSON. Usage: pcp_map.py GATEWAY CLIENT_IP INTERNAL_PORT
SUGGESTED_EXTERNAL_PORT LIFETIME [TIMEOUT_S [NONCE_HEX]]. A client keeps its
mapping nonce (12 bytes) for renewals and the delete (lifetime 0): RFC 6887
11.2 refuses another nonce for an existing mapping. Exit 0 when an answer
with result SUCCESS came, 1 for another result code, 2 for no answer."""
import ipaddress, json, os, socket, struct, sys

PCP_VERSION, OP_MAP, PORT = 2, 1, 5351

def v4mapped(ip):
    return ipaddress.IPv6Address("::ffff:" + ip).packed

def request(client_ip, iport, eport, lifetime, nonce):
    hdr = struct.pack("!BBHI16s", PCP_VERSION, OP_MAP, 0, lifetime, v4mapped(client_ip))
    op = struct.pack("!12sB3xHH16s", nonce, socket.IPPROTO_UDP, iport, eport, v4mapped("0.0.0.0"))
    return hdr + op

def parse(buf, nonce):
    if len(buf) < 24 or len(buf) % 4 or len(buf) > 1100:
        raise ValueError("answer of %d bytes: not a PCP message" % len(buf))
    ver, op, _, result, lifetime, epoch = struct.unpack("!BBBBII", buf[:12])
    if ver != PCP_VERSION or op != (0x80 | OP_MAP):
        raise ValueError("version %d opcode 0x%02x: not a MAP answer" % (ver, op))
    out = {"result": result, "lifetime": lifetime, "epoch": epoch}
    if len(buf) >= 60:
        n, proto, iport, eport, eip = struct.unpack("!12sB3xHH16s", buf[24:60])
        if n != nonce:
            raise ValueError("nonce does not match the request")
        a = ipaddress.IPv6Address(eip)
        out.update(protocol=proto, internal_port=iport, external_port=eport,
                   external_ip=str(a.ipv4_mapped or a))
    return out

def main():
    gw, client_ip, iport, eport, lifetime = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
    nonce = bytes.fromhex(sys.argv[7]) if len(sys.argv) > 7 else os.urandom(12)
    if len(nonce) != 12:
        raise SystemExit("pcp_map.py: the nonce is 12 bytes (24 hex digits)")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((client_ip, 0))
    s.settimeout(timeout)
    s.sendto(request(client_ip, iport, eport, lifetime, nonce), (gw, PORT))
    try:
        buf, _ = s.recvfrom(2048)
    except socket.timeout:
        print(json.dumps({"error": "no answer in %.1f s" % timeout}))
        return 2
    ans = parse(buf, nonce)
    print(json.dumps(ans))
    return 0 if ans["result"] == 0 else 1

sys.exit(main())
