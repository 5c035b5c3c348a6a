#!/usr/bin/env python3
"""Drives connections through Terminus and checks every byte.

  lab_client.py echo ADDR PORT CONNS BYTES PARALLEL
      CONNS connections, PARALLEL at a time, each sends BYTES random bytes,
      half-closes, and must read back the same bytes (SHA-256 compared).
  lab_client.py refused ADDR PORT
      the connection must be closed (reset or EOF) within 5 s.
  lab_client.py read ADDR PORT EXPECTED [SNI CAFILE]
      reads until the server closes (over TLS to SNI, verified with
      CAFILE, when given: a close_notify is required) and must get the
      bytes EXPECTED (Python escapes, e.g. 'hi\\n').
Prints one line of results; exits 1 on any failure."""
import hashlib
import os
import socket
import sys
import threading
import time


def echo_one(addr, port, nbytes):
    data = os.urandom(nbytes)
    # Generous: a lost window update waits for the peer's next zero-window
    # probe, whose interval backs off (RFC 9293 3.8.6.1).
    s = socket.create_connection((addr, port), timeout=120)
    try:
        got = hashlib.sha256()
        received = 0
        def reader():
            nonlocal received
            while True:
                d = s.recv(65536)
                if not d:
                    return
                got.update(d)
                received += len(d)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)   # half-close: the echo still comes back
        t.join(60)
        return received == nbytes and got.digest() == hashlib.sha256(data).digest()
    finally:
        s.close()


def main():
    mode = sys.argv[1]
    if mode == "echo":
        addr, port, conns, nbytes, par = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        ok = 0
        failures = []
        lock = threading.Lock()
        remaining = list(range(conns))
        def worker():
            nonlocal ok
            while True:
                with lock:
                    if not remaining:
                        return
                    remaining.pop()
                try:
                    good = echo_one(addr, port, nbytes)
                except OSError as e:
                    good = False
                    with lock:
                        failures.append(str(e))
                with lock:
                    ok += good
        start = time.time()
        ts = [threading.Thread(target=worker) for _ in range(par)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        print("%d/%d connections verified in %.1fs %s" % (ok, conns, time.time() - start, failures[:3]))
        sys.exit(0 if ok == conns else 1)
    if mode == "slow":
        # Sends half, waits PAUSE seconds (the test stops terminusd then),
        # sends the rest; every byte must still come back.
        addr, port, pause = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        data = os.urandom(100000)
        s = socket.create_connection((addr, port), timeout=30)
        s.sendall(data[:50000])
        print("connected", flush=True)
        time.sleep(pause)
        s.sendall(data[50000:])
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
        print("slow connection %s" % ("verified" if got == data else "BROKEN %d" % len(got)))
        sys.exit(0 if got == data else 1)
    if mode == "halfclose":
        # Sends 1000 bytes, half-closes, reads to EOF: must get WANT bytes.
        addr, port, want = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        s = socket.create_connection((addr, port), timeout=10)
        s.sendall(b"h" * 1000)
        s.shutdown(socket.SHUT_WR)
        got = 0
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += len(d)
        except ConnectionResetError:
            pass
        print("%d bytes back after the half-close" % got)
        sys.exit(0 if got == want else 1)
    if mode == "idle":
        # Connects, stays silent; must be closed with a FIN (an orderly
        # end of stream, as nginx's proxy_timeout) between LO and HI s.
        addr, port, lo, hi = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
        s = socket.create_connection((addr, port), timeout=hi + 5)
        start = time.time()
        how = "still open"
        try:
            if s.recv(100) == b"":
                how = "closed with a FIN"
        except ConnectionResetError:
            how = "reset"
        except socket.timeout:
            pass
        took = time.time() - start
        print("%s after %.2fs" % (how, took))
        sys.exit(0 if how == "closed with a FIN" and lo <= took <= hi else 1)
    if mode == "read":
        addr, port = sys.argv[2], int(sys.argv[3])
        want = sys.argv[4].encode().decode("unicode_escape").encode("latin-1")
        s = socket.create_connection((addr, port), timeout=5)
        if len(sys.argv) > 6:
            import ssl
            ctx = ssl.create_default_context(cafile=sys.argv[6])
            s = ctx.wrap_socket(s, server_hostname=sys.argv[5])
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        print(repr(data))
        sys.exit(0 if data == want else 1)

    if mode == "refused":
        addr, port = sys.argv[2], int(sys.argv[3])
        start = time.time()
        try:
            s = socket.create_connection((addr, port), timeout=5)
            s.settimeout(5)
            s.sendall(b"hello")
            d = s.recv(100)
            closed = d == b""
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            closed = True
        except socket.timeout:
            closed = False
        print("closed after %.2fs" % (time.time() - start) if closed else "still open")
        sys.exit(0 if closed else 1)


if __name__ == "__main__":
    main()
