#!/usr/bin/env python3
"""The abuser of tests/netns/svc_abuse.sh: many connections from one source
address, held for a while, and one line of counts at the end.

  svc_abuse.py slow HOST PORT SRC N SECS
      N connections that send a request head one line a second and never end
      it; prints "refused=R timedout=T open=O": closed by the service within a
      second (a connection limit), closed later (a header time limit), open.
  svc_abuse.py poll HOST PORT SRC N SECS PATH TOKEN
      N long polls of PATH with TOKEN; prints "s200=A s429=B retry_after=C
      closed=D none=E" after SECS: answers by status, 429s that carried
      Retry-After, connections closed without an answer, no answer yet.
"""
import select
import socket
import sys
import time


def connect(host, port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(2)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        return None
    s.setblocking(False)
    return s


def closed_now(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def slow(host, port, src, n, secs):
    socks = {}
    start = time.monotonic()
    refused = timedout = 0
    for i in range(n):
        s = connect(host, port, src)
        if s is None:
            refused += 1
            continue
        try:
            s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
        socks[s] = time.monotonic()
    line = 0
    while time.monotonic() - start < secs and socks:
        time.sleep(1)
        line += 1
        for s, opened in list(socks.items()):
            try:
                s.send(b"X-Line-%d: a\r\n" % line)
            except OSError:
                pass
            if closed_now(s):
                if time.monotonic() - opened < 1.5:
                    refused += 1
                else:
                    timedout += 1
                del socks[s]
                s.close()
    print("refused=%d timedout=%d open=%d" % (refused, timedout, len(socks)))


def poll(host, port, src, n, secs, path, token):
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (path, token)).encode()
    socks, got = {}, {}
    closed = 0
    for i in range(n):
        s = connect(host, port, src)
        if s is None:
            closed += 1
            continue
        try:
            s.send(req)
        except OSError:
            pass
        socks[s] = b""
    start = time.monotonic()
    while time.monotonic() - start < secs:
        live = [s for s in socks if s not in got]
        if not live:
            break
        r, _, _ = select.select(live, [], [], 0.2)
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                got[s] = None
                continue
            socks[s] += data
            if b"\r\n\r\n" in socks[s]:
                got[s] = socks[s]
    counts = {"s200": 0, "s429": 0, "retry_after": 0}
    for s, head in got.items():
        if head is None:
            closed += 1
            continue
        status = head.split(b" ", 2)[1].decode()
        counts["s" + status] = counts.get("s" + status, 0) + 1
        if status == "429" and b"\r\nretry-after:" in head.lower():
            counts["retry_after"] += 1
    print(" ".join("%s=%d" % kv for kv in counts.items()) +
          " closed=%d none=%d" % (closed, len(socks) - len(got)))
    sys.stdout.flush()
    for s in socks:
        s.close()


if __name__ == "__main__":
    mode, host, port, src, n, secs = sys.argv[1:7]
    if mode == "slow":
        slow(host, int(port), src, int(n), float(secs))
    else:
        poll(host, int(port), src, int(n), float(secs), sys.argv[7], sys.argv[8])
