#!/usr/bin/env python3
"""Kernel clients and backends for tcp_stress_test.sh. Each client prints
one JSON object of counts and timings on stdout and leaves the verdicts
to the test.

  storm_client.py backend ADDR PORT:MODE...
      MODE echo: every byte comes back, and the client's FIN is answered
      with a FIN. MODE http: reads a request up to its blank line, answers
      "HTTP/1.0 200 OK" with a 1 KB body, and closes first.
  storm_client.py abort ADDR PORT SNI COUNT PARALLEL --ca FILE [--budget S]
      COUNT connections to a TLS server, PARALLEL at a time, in turn: reset
      right after connect (SO_LINGER 0), garbage (not TLS) then close, a
      full handshake then reset, a full handshake and one HTTP request.
  storm_client.py echo ADDR PORT CONNS BYTES [--deadline S]
      CONNS parallel round trips of BYTES each, SHA-256 compared.
  storm_client.py reuse ADDR PORT COUNT PORT_LO NPORTS PARALLEL --source ADDR [--budget S]
      COUNT HTTP requests from source ports PORT_LO.. PORT_LO+NPORTS-1,
      bound explicitly (SO_REUSEADDR) and cycled, so that new SYNs land on
      4-tuples the server holds in TIME-WAIT.
--budget bounds a client that meets a server in trouble: no connection
starts after it, and the summary says how many were attempted.

Connect latency is from connect() to its return: the SYN and its SYN-ACK.
Over a lab link it is well under a millisecond; a second or more is a
SYN the kernel had to send again (Linux's initial RTO is 1 s)."""
import argparse
import asyncio
import hashlib
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time

SLOW = 1.0            # seconds: a connect this slow retransmitted its SYN
CONNECT_TIMEOUT = 10  # the SYN is sent 3 more times (1, 3, 7 s) before giving up
BODY = 1024
LINGER0 = struct.pack("ii", 1, 0)


# Backends.

async def serve_echo(reader, writer):
    try:
        while True:
            d = await reader.read(65536)
            if not d:
                break
            writer.write(d)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def serve_http(reader, writer):
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % BODY + b"x" * BODY)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()  # we close first: the proxy in front closes the client side first


async def backends(addr, specs):
    servers = []
    for spec in specs:
        port, _, mode = spec.partition(":")
        handler = {"echo": serve_echo, "http": serve_http}[mode or "echo"]
        servers.append(await asyncio.start_server(handler, addr, int(port), backlog=1024, reuse_address=True))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# Shared by the clients.

class Tally:
    """Counts and connect latencies, from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.latencies = []
        self.slow = []   # (seconds, source port, whether that port was used before)
        self.errors = {}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, what, e):
        key = "%s: %s" % (what, type(e).__name__ if not getattr(e, "strerror", None) else e.strerror)
        with self.lock:
            self.errors[key] = self.errors.get(key, 0) + 1

    def connected(self, seconds, port, reused):
        with self.lock:
            self.latencies.append(seconds)
            if seconds >= SLOW:
                self.slow.append((round(seconds, 3), port, reused))

    def summary(self, **extra):
        lat = sorted(self.latencies)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None
        out = dict(self.counts)
        out.update(connected=len(lat), slow=len(self.slow), p50_ms=pct(0.50), p99_ms=pct(0.99),
                   max_ms=round(lat[-1] * 1000, 2) if lat else None,
                   slowest=sorted(self.slow, reverse=True)[:8], errors=self.errors)
        out.update(extra)
        return out


def timed_connect(tally, addr, port, source=None, seen=None):
    """A connected socket, or None (counted as a connect failure). SOURCE:
    the (address, port) to bind first, with SO_REUSEADDR."""
    s = socket.socket()
    if source is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(CONNECT_TIMEOUT)
    try:
        if source is not None:
            s.bind(source)
    except OSError as e:
        tally.add("connect_failed")
        tally.error("bind", e)
        s.close()
        return None
    t = time.monotonic()
    try:
        s.connect((addr, port))
        took = time.monotonic() - t
    except OSError as e:
        # A connect that timed out is the slowest of all.
        tally.add("connect_failed")
        tally.error("connect", e)
        if time.monotonic() - t >= SLOW:
            with tally.lock:
                tally.slow.append((round(time.monotonic() - t, 3), source[1] if source else None, "failed"))
        s.close()
        return None
    local = s.getsockname()[1]
    reused = False
    if seen is not None:
        with tally.lock:
            reused = local in seen
            seen.add(local)
    tally.connected(took, local, reused)
    return s


def run_parallel(n_jobs, parallel, job, stop_at=None):
    """JOB(0..N_JOBS-1), PARALLEL at a time; none started after STOP_AT."""
    nxt = iter(range(n_jobs))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next(nxt, None)
            if i is None or (stop_at is not None and time.monotonic() > stop_at):
                return
            job(i)
    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def read_to_eof(s, limit):
    data = b""
    while len(data) <= limit:
        d = s.recv(65536)
        if not d:
            break
        data += d
    return data


TCP_CLOSE = 7  # tcp_states.h; the first byte of struct tcp_info


def wait_closed(s, seconds):
    deadline = time.monotonic() + seconds
    while s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_CLOSE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def http_ok(data):
    head, _, body = data.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.0 200 OK") and len(body) == BODY


# Clients.

KINDS = ("reset_after_connect", "garbage", "reset_after_handshake", "request")


def abort(args):
    tally = Tally()
    seen = set()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(args.ca)
    request = b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % args.sni.encode()

    def job(i):
        kind = KINDS[i % 4]
        tally.add(kind)
        s = timed_connect(tally, args.addr, args.port, seen=seen)
        if s is None:
            return
        try:
            if kind == "reset_after_connect":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            elif kind == "garbage":
                # Never a TLS record: its first byte is no content type.
                s.sendall(b"\x00" + random.randbytes(300))
            else:
                t = s
                s = ctx.wrap_socket(t, server_hostname=args.sni)  # handshakes; t is detached
                tally.add("handshakes_ok")
                if kind == "reset_after_handshake":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                else:
                    s.sendall(request)
                    if http_ok(read_to_eof(s, 4 * BODY)):
                        tally.add("responses_ok")
        except (OSError, ssl.SSLError) as e:
            tally.error(kind, e)
        finally:
            s.close()

    t0 = time.monotonic()
    run_parallel(args.count, args.parallel, job, stop_at=t0 + args.budget)
    print(json.dumps(tally.summary(seconds=round(time.monotonic() - t0, 1), distinct_ports=len(seen),
                                   attempted=sum(tally.counts.get(k, 0) for k in KINDS))))


def echo(args):
    tally = Tally()
    times = []

    def job(i):
        data = random.Random(i).randbytes(args.bytes)
        want = hashlib.sha256(data).hexdigest()
        t0 = time.monotonic()
        s = timed_connect(tally, args.addr, args.port)
        if s is None:
            return
        s.settimeout(args.deadline)
        failed = []

        def send():
            try:
                s.sendall(data)
            except OSError as e:
                failed.append(e)
        sender = threading.Thread(target=send)
        sender.start()
        got = hashlib.sha256()
        n = 0
        deadline = t0 + args.deadline
        try:
            while n < len(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                s.settimeout(left)
                d = s.recv(1 << 20)
                if not d:
                    break
                got.update(d)
                n += len(d)
        except socket.timeout:
            tally.add("stalled")
        except OSError as e:
            tally.error("recv", e)
        finally:
            try:
                s.shutdown(socket.SHUT_RDWR)  # also wakes a sender stuck on a full window
            except OSError:
                pass
            sender.join()
            s.close()
        took = time.monotonic() - t0
        with tally.lock:
            times.append(took)
        if n == len(data) and got.hexdigest() == want and not failed:
            tally.add("matched")
        else:
            tally.add("mismatched")
            tally.error("round trip", ValueError("%d of %d bytes" % (n, len(data))))

    t0 = time.monotonic()
    run_parallel(args.conns, args.conns, job)
    times.sort()
    print(json.dumps(tally.summary(seconds=round(time.monotonic() - t0, 1),
                                   slowest_round_trip_s=round(times[-1], 1) if times else None,
                                   fastest_round_trip_s=round(times[0], 1) if times else None)))


def reuse(args):
    tally = Tally()
    request = b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n"
    # Each worker owns its own ports, so no two connections in flight
    # share one, and takes them in turn: a port is reused after NPORTS /
    # PARALLEL of its worker's connections, well inside the server's 60 s
    # TIME-WAIT (with NPORTS == PARALLEL, at once).
    per_worker = args.count // args.parallel
    stop_at = time.monotonic() + args.budget
    attempted = [0]
    ports = [list(range(args.port_lo + w, args.port_lo + args.nports, args.parallel)) for w in range(args.parallel)]
    slowest = [0.0]

    def worker(w):
        mine = ports[w]
        for k in range(per_worker):
            if time.monotonic() > stop_at:
                return
            with tally.lock:
                attempted[0] += 1
            bind_port = mine[k % len(mine)]
            t0 = time.monotonic()
            s = timed_connect(tally, args.addr, args.port, source=(args.source, bind_port))
            if s is None:
                continue
            try:
                s.settimeout(CONNECT_TIMEOUT)
                s.sendall(request)
                if http_ok(read_to_eof(s, 4 * BODY)):
                    tally.add("responses_ok")
                # Our FIN, then wait for its ACK (LAST-ACK to CLOSED), so
                # that our kernel has let go of the 4-tuple before it is
                # bound again: terminusd alone holds it, in TIME-WAIT.
                s.shutdown(socket.SHUT_WR)
                if not wait_closed(s, 5):
                    tally.add("fin_unacked")
            except OSError as e:
                tally.error("request", e)
            finally:
                s.close()
            took = time.monotonic() - t0
            with tally.lock:
                slowest[0] = max(slowest[0], took)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(tally.summary(seconds=round(time.monotonic() - t0, 1), attempted=attempted[0],
                                   ports=args.nports, slowest_request_s=round(slowest[0], 3))))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "backend":
        asyncio.run(backends(sys.argv[2], sys.argv[3:]))
        return
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("abort")
    a.add_argument("addr")
    a.add_argument("port", type=int)
    a.add_argument("sni")
    a.add_argument("count", type=int)
    a.add_argument("parallel", type=int)
    a.add_argument("--ca", default=os.path.join(os.environ.get("CERTS", "."), "ca.crt"))
    a.add_argument("--budget", type=float, default=60, help="seconds: no new connection after them")
    e = sub.add_parser("echo")
    e.add_argument("addr")
    e.add_argument("port", type=int)
    e.add_argument("conns", type=int)
    e.add_argument("bytes", type=int)
    e.add_argument("--deadline", type=float, default=120)
    r = sub.add_parser("reuse")
    r.add_argument("addr")
    r.add_argument("port", type=int)
    r.add_argument("count", type=int)
    r.add_argument("port_lo", type=int)
    r.add_argument("nports", type=int)
    r.add_argument("parallel", type=int)
    r.add_argument("--source", required=True, help="the client's own address, to bind")
    r.add_argument("--budget", type=float, default=60, help="seconds: no new connection after them")
    args = p.parse_args()
    {"abort": abort, "echo": echo, "reuse": reuse}[args.mode](args)


if __name__ == "__main__":
    main()
