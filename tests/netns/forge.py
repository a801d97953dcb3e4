#!/usr/bin/env python3
"""forge.py DEV SRC DST N [TAG]: writes N UDP datagrams SRC:40000 -> DST:7777
into interface DEV with a raw socket (IP_HDRINCL; the kernel fills in the IP
checksum), 5 ms apart. Used by the security tests to forge inner sources
through a member's own tunnel. The payload is b"natmesh " + TAG."""
import socket
import struct
import sys
import time


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit("usage: forge.py DEV SRC DST N [TAG]")
    dev, src, dst, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    tag = sys.argv[5] if len(sys.argv) == 6 else "forge"
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    payload = b"natmesh " + tag.encode()
    udp = struct.pack("!HHHH", 40000, 7777, 8 + len(payload), 0) + payload
    for i in range(n):
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i + 1, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        s.sendto(ip + udp, (dst, 0))
        time.sleep(0.005)


if __name__ == "__main__":
    main()
