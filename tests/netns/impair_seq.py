#!/usr/bin/env python3
"""Sequence-numbered UDP for sim_impair.sh.

  impair_seq.py send DEST PORT COUNT GAP_US    COUNT datagrams "seq N" to DEST:PORT
  impair_seq.py recv PORT IDLE_MS              prints each datagram's N, in arrival
                                               order, until IDLE_MS without one
  impair_seq.py stats FILE                     "received unique duplicated reordered"
                                               (reordered: first arrivals below the
                                               highest number seen before them)
  impair_seq.py pcap FILE PORT                 the N of every UDP datagram to PORT
                                               in a pcap (Ethernet, IPv4), in order
  impair_seq.py owd-send DEST PORT COUNT GAP_US  datagrams carrying their send time
  impair_seq.py owd-recv PORT COUNT            each one's one-way delay in microseconds,
                                               from the kernel's receive timestamp
                                               (SO_TIMESTAMPNS; CLOCK_REALTIME, which
                                               every namespace of a host shares)
"""
import socket
import struct
import sys
import time


def send(dest, port, count, gap_us):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = time.monotonic()
    for i in range(count):
        s.sendto(b"seq %d" % i + b"." * 64, (dest, port))
        t += gap_us / 1e6
        while time.monotonic() < t:
            pass


def recv(port, idle_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("0.0.0.0", port))
    s.settimeout(10)  # the first one may take a while to start
    out = []
    try:
        while True:
            data = s.recv(2048)
            out.append(data.split(b".")[0].split()[1].decode())
            s.settimeout(idle_ms / 1000)
    except socket.timeout:
        pass
    print("\n".join(out))


def stats(path):
    seqs = [int(x) for x in open(path).read().split()]
    seen, top, reordered = set(), -1, 0
    for n in seqs:
        if n in seen:
            continue
        seen.add(n)
        if n < top:
            reordered += 1
        top = max(top, n)
    print(len(seqs), len(seen), len(seqs) - len(seen), reordered)


def owd_send(dest, port, count, gap_us):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = time.monotonic()
    for i in range(count):
        s.sendto(struct.pack("!Iq", i, time.time_ns()), (dest, port))
        t += gap_us / 1e6
        while time.monotonic() < t:
            pass


def owd_recv(port, count):
    SO_TIMESTAMPNS = 35
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(10)
    out = []
    try:
        for _ in range(count):
            data, anc, _, _ = s.recvmsg(64, 64)
            for level, kind, val in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", val[:16])
                    sent = struct.unpack("!Iq", data[:12])[1]
                    out.append("%.1f" % ((sec * 10**9 + nsec - sent) / 1000))
            s.settimeout(2)
    except socket.timeout:
        pass
    print("\n".join(out))


def pcap(path, port):
    data = open(path, "rb").read()
    out = []
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        pkt = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        ihl = (pkt[14] & 15) * 4
        udp = 14 + ihl
        if struct.unpack_from("!H", pkt, udp + 2)[0] != port:
            continue
        payload = pkt[udp + 8:]
        if payload.startswith(b"seq "):
            out.append(payload.split(b".")[0].split()[1].decode())
    print("\n".join(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "recv":
        recv(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "stats":
        stats(sys.argv[2])
    elif cmd == "owd-send":
        owd_send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "owd-recv":
        owd_recv(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "pcap":
        pcap(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
