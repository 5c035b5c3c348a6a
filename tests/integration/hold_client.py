#!/usr/bin/env python3
"""Holds many connections open through Terminus while something else
happens (reloads, a management process killed), checking every byte.

  hold_client.py ADDR PORT CONNS SECONDS READY_FILE [SNI CAFILE]

Opens CONNS connections to an echo backend behind ADDR:PORT (over TLS to
SNI, verified with CAFILE, when given), writes the number established to
READY_FILE once all are, then for SECONDS keeps sending random chunks on
every connection and reading their echo, one SHA-256 per direction. At
the end each half-closes and must read back exactly what it sent before
the echo's close. Prints one line; exits 1 if any connection failed to
open, was reset, stalled or got other bytes than it sent."""
import hashlib
import os
import random
import socket
import ssl
import sys
import threading
import time


def main():
    addr, port, conns, seconds, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    sni = sys.argv[6] if len(sys.argv) > 6 else None
    ctx = None
    if sni:
        ctx = ssl.create_default_context(cafile=sys.argv[7])
    threading.stack_size(256 * 1024)
    lock = threading.Lock()
    opened = [0]
    failures = []
    sent_total = [0]
    connected = threading.Barrier(conns + 1, timeout=120)
    go = threading.Event()

    def fail(i, what):
        with lock:
            failures.append(f"conn {i}: {what}")

    def one(i):
        s = None
        try:
            raw = socket.create_connection((addr, port), timeout=60)
            s = ctx.wrap_socket(raw, server_hostname=sni) if ctx else raw
            with lock:
                opened[0] += 1
        except OSError as e:
            fail(i, f"connect: {e!r}")
        try:
            connected.wait()
        except threading.BrokenBarrierError:
            pass
        if s is None:
            return
        go.wait()
        out, back = hashlib.sha256(), hashlib.sha256()
        sent = received = 0
        rnd = random.Random(i)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                chunk = os.urandom(rnd.randint(256, 4096))
                s.sendall(chunk)
                out.update(chunk)
                sent += len(chunk)
                want = len(chunk)
                while want:
                    d = s.recv(want)
                    if not d:
                        raise OSError("closed by the peer mid-session")
                    back.update(d)
                    received += len(d)
                    want -= len(d)
                time.sleep(rnd.uniform(0.2, 0.6))
            # The end: a half-close, then the echo's close.
            if ctx:
                s = s.unwrap()  # close_notify; the echo's comes back at its end
            s.shutdown(socket.SHUT_WR)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                back.update(d)
                received += len(d)
            if received != sent or out.digest() != back.digest():
                fail(i, f"sent {sent} bytes, got {received} back, digests {'equal' if out.digest() == back.digest() else 'differ'}")
            with lock:
                sent_total[0] += sent
        except (OSError, ssl.SSLError) as e:
            fail(i, f"after {sent} bytes sent, {received} back: {e!r}")
        finally:
            try:
                s.close()
            except OSError:
                pass

    threads = []
    for i in range(conns):
        t = threading.Thread(target=one, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        if i % 50 == 49:
            time.sleep(0.05)  # the SYNs in waves: the backlog is 511
    try:
        connected.wait()
    except threading.BrokenBarrierError:
        pass
    with open(ready + ".tmp", "w") as f:
        f.write(f"{opened[0]}\n")
    os.rename(ready + ".tmp", ready)
    go.set()
    for t in threads:
        t.join(seconds + 180)
    alive = sum(t.is_alive() for t in threads)
    if alive:
        failures.append(f"{alive} connections stalled")
    kind = "TLS" if ctx else "TCP"
    print(f"{opened[0]} of {conns} {kind} connections held {seconds:.0f} s, {sent_total[0]} bytes echoed "
          f"SHA-256-checked, {len(failures)} failed")
    for f in failures[:10]:
        print("  " + f)
    sys.exit(1 if failures or opened[0] != conns else 0)


if __name__ == "__main__":
    main()
