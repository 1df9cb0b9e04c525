#!/usr/bin/env python3
"""The HTTP reader of benches/serve.sh: reads a `ppspp serve` gateway response as fast as it
comes, timestamps what arrives, checks the bytes against the original file, and replays the
arrivals through a player model (4 Mbit/s, starting once 1 MB is buffered) to count stalls.

Modes (one JSON object on stdout, seconds):
  stream  GET from 0: ttfb, first_mb, last_byte, stalls, stall_s
  seek    GET from 0; after 1 MB, GET Range: bytes=<70%>- (the first response is dropped):
          seek_ttfb (second request to its first byte), stalls and stall_s after the seek
  cold70  the first request is Range: bytes=<70%>-: seek_ttfb
"""

import argparse
import json
import socket
import sys
import time
from urllib.parse import urlsplit

RATE = 4_000_000 / 8  # the player's bitrate, bytes per second
STARTUP = 1_000_000  # bytes buffered before the player starts


def open_response(url, offset):
    """Sends GET (with a Range from `offset` if > 0); returns (socket, time sent, status,
    content length, the body bytes already read with the headers)."""
    u = urlsplit(url)
    s = socket.create_connection((u.hostname, u.port or 80))
    path = u.path + ("?" + u.query if u.query else "")
    req = f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n"
    if offset:
        req += f"Range: bytes={offset}-\r\n"
    t0 = time.monotonic()
    s.sendall((req + "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(f"connection closed in the headers: {buf!r}")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return s, t0, status, length, body


class Reader:
    """One response being read: arrivals as (time, bytes so far), content checked."""

    def __init__(self, url, offset, original):
        self.sock, self.t0, self.status, self.length, first = open_response(url, offset)
        if self.status not in (200, 206):
            sys.exit(f"status {self.status}")
        self.offset = offset
        self.original = original
        self.got = 0
        self.arrivals = []
        self.first_byte = None
        if first:
            self.take(first)

    def take(self, data):
        now = time.monotonic()
        if self.first_byte is None:
            self.first_byte = now
        at = self.offset + self.got
        if self.original[at:at + len(data)] != data:
            sys.exit(f"bytes at {at} differ from the original")
        self.got += len(data)
        self.arrivals.append((now, self.got))

    def read_until(self, total):
        while self.got < total:
            data = self.sock.recv(1 << 20)
            if not data:
                sys.exit(f"response ended at {self.got} of {self.length}")
            self.take(data)

    def time_to(self, n):
        for t, got in self.arrivals:
            if got >= n:
                return t - self.t0
        return None


def stalls(arrivals, total):
    """Replays arrivals through the player: starts once STARTUP bytes (or all) are there,
    plays at RATE, stalls when the next byte is not there yet. Returns (count, seconds)."""
    need = min(STARTUP, total)
    i = next(k for k, (_, got) in enumerate(arrivals) if got >= need)
    clock, avail = arrivals[i]
    played, count, stalled = 0.0, 0, 0.0
    for t, got in arrivals[i + 1:]:
        # Play from `clock` to `t` with `avail` bytes there.
        can = (t - clock) * RATE
        if played + can >= avail:
            gap = (t - clock) - (avail - played) / RATE
            if gap > 1e-3:
                count += 1
                stalled += gap
            played = avail
        else:
            played += can
        clock, avail = t, got
    return count, stalled


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["stream", "seek", "cold70"])
    p.add_argument("--url", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--check", required=True)
    a = p.parse_args()
    with open(a.check, "rb") as f:
        original = f.read()
    size = a.size
    at70 = size * 7 // 10
    out = {}
    if a.mode == "stream":
        r = Reader(a.url, 0, original)
        r.read_until(size)
        n, s = stalls(r.arrivals, size)
        out = {"ttfb": r.first_byte - r.t0, "first_mb": r.time_to(1_000_000),
               "last_byte": r.arrivals[-1][0] - r.t0, "stalls": n, "stall_s": s}
    elif a.mode == "seek":
        first = Reader(a.url, 0, original)
        first.read_until(1_000_000)
        second = Reader(a.url, at70, original)
        first.sock.close()  # the player drops the old response
        second.read_until(size - at70)
        n, s = stalls(second.arrivals, size - at70)
        out = {"seek_ttfb": second.first_byte - second.t0, "stalls": n, "stall_s": s}
    else:
        r = Reader(a.url, at70, original)
        r.read_until(size - at70)
        out = {"seek_ttfb": r.first_byte - r.t0}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
