#!/usr/bin/env python3
"""TLS clients for the lab, on Python's ssl module (the system's OpenSSL).

  tls_client.py echo ADDR PORT SNI CONNS BYTES PARALLEL [options]
      CONNS TLS connections, PARALLEL at a time; each sends BYTES random
      bytes and must read the same bytes back (SHA-256 compared).
  tls_client.py resume ADDR PORT SNI COUNT [options]
      one full handshake, then COUNT reconnections offering the last
      session; prints how many resumed.
options: --ca FILE (default: the lab CA), --cert FILE --key FILE (a client
certificate), --tls12 (TLS 1.2 only).
Prints one line of results; exits 1 on any failure."""
import argparse
import hashlib
import os
import select
import socket
import ssl
import sys
import threading
import time


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(ctx, args, session=None):
    raw = socket.create_connection((args.addr, args.port), timeout=60)
    return ctx.wrap_socket(raw, server_hostname=args.sni, session=session)


def echo_one(ctx, args):
    # One thread: an OpenSSL connection must not be read and written from
    # two threads at once, so sending and receiving interleave here.
    data = os.urandom(args.bytes)
    s = connect(ctx, args)
    try:
        s.setblocking(False)
        got = hashlib.sha256()
        received = sent = 0
        deadline = time.time() + 120
        while received < len(data) and time.time() < deadline:
            want_write = sent < len(data)
            r, w, _ = select.select([s], [s] if want_write else [], [], 1.0)
            if w or (want_write and not r):
                try:
                    sent += s.send(data[sent:sent + 16384])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            while True:
                try:
                    d = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not d:
                    deadline = 0
                    break
                got.update(d)
                received += len(d)
        info = (s.version(), s.cipher()[0])
        return received == len(data) and got.digest() == hashlib.sha256(data).digest(), info
    finally:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("sni")
    p.add_argument("count", type=int)
    p.add_argument("bytes", type=int, nargs="?", default=0)
    p.add_argument("parallel", type=int, nargs="?", default=1)
    p.add_argument("--ca", default=os.path.join(os.environ.get("CERTS", "."), "ca.crt"))
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls12", action="store_true")
    args = p.parse_args()
    ctx = context(args)
    start = time.time()
    if args.mode == "echo":
        ok = 0
        failures = []
        infos = set()
        lock = threading.Lock()
        remaining = list(range(args.count))
        def worker():
            nonlocal ok
            while True:
                with lock:
                    if not remaining:
                        return
                    remaining.pop()
                try:
                    good, info = echo_one(ctx, args)
                    with lock:
                        infos.add(info)
                        ok += good
                        if not good:
                            failures.append("bytes differ")
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    with lock:
                        failures.append(repr(e))
        threads = [threading.Thread(target=worker) for _ in range(args.parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("%d/%d connections verified in %.1fs %s %s" %
              (ok, args.count, time.time() - start, sorted(infos, key=str), failures[:3]))
        sys.exit(0 if ok == args.count else 1)
    if args.mode == "resume":
        s = connect(ctx, args)
        s.sendall(b"x")
        s.recv(1)  # TLS 1.3 tickets come after the handshake
        session = s.session
        s.close()
        resumed = 0
        for _ in range(args.count):
            s = connect(ctx, args, session)
            s.sendall(b"y")
            s.recv(1)
            resumed += s.session_reused
            session = s.session  # a cache entry serves once in TLS 1.3
            s.close()
        print("%d/%d resumed in %.1fs" % (resumed, args.count, time.time() - start))
        sys.exit(0 if resumed == args.count else 1)
    sys.exit("unknown mode " + args.mode)


if __name__ == "__main__":
    main()
