#!/usr/bin/env python3
"""Clients, a TLS backend and the log checker of access_log_test.sh.

  al_sessions.py tlsecho ADDR PORT CERT KEY
      a TLS echo server (the passthrough's upstream): each connection's
      bytes come back; at the client's EOF it closes (no close_notify).
  al_sessions.py run ADDR OUT.json
      one session of every kind the test logs (plain echo, TLS terminated
      with a resumption, TLS passed through, denied, return, no upstream,
      a failed handshake, a server with access_log off); writes what each
      did, byte for byte, as the client saw it.
  al_sessions.py plain ADDR PORT N OUT.json
      N plain echo sessions, one after the other.
  al_sessions.py hold ADDR PORT FLAG OUT.json
      one plain session that sends, waits for the file FLAG, then ends.
  al_sessions.py check DID.json MAIN.log JSON.log ODD.log [--prefix P]
      every line of the logs parsed field by field against what the
      clients did.
Exits 1 with the reasons on any mismatch."""
import json
import os
import re
import socket
import ssl
import sys
import threading
import time


def now():
    return time.time()


def plain_echo(addr, port, size):
    data = os.urandom(size)
    t0 = now()
    s = socket.create_connection((addr, port), timeout=30)
    local = s.getsockname()[1]
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    assert got == data, "echo of %d bytes came back as %d" % (size, len(got))
    return {"kind": "plain", "port": local, "server_port": port, "sent": size, "received": len(got),
            "t0": t0, "t1": now()}


def tls_client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def tls_terminated(addr, port, sni, size, ctx, session=None):
    """TLS to terminusd, which decrypts: the bytes counted are plaintext."""
    data = os.urandom(size)
    t0 = now()
    raw = socket.create_connection((addr, port), timeout=30)
    local = raw.getsockname()[1]
    s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    s.sendall(data)
    got = b""
    while len(got) < size:
        d = s.recv(65536)
        if not d:
            break
        got += d
    assert got == data, "TLS echo of %d bytes came back as %d" % (size, len(got))
    rec = {"kind": "tls", "port": local, "server_port": port, "sent": size, "received": len(got), "sni": sni,
           "protocol": s.version(), "cipher": s.cipher()[0], "reused": s.session_reused, "t0": t0}
    sess = s.session
    s.close()
    rec["t1"] = now()
    return rec, sess


class CountingSocket:
    """Raw bytes on the wire under an ssl.SSLObject: what passthrough relays."""

    def __init__(self, sock):
        self.sock, self.sent, self.received = sock, 0, 0

    def send(self, b):
        self.sock.sendall(b)
        self.sent += len(b)

    def recv(self):
        d = self.sock.recv(65536)
        self.received += len(d)
        return d


def tls_passthrough(addr, port, sni, size):
    data = os.urandom(size)
    t0 = now()
    sock = socket.create_connection((addr, port), timeout=30)
    local = sock.getsockname()[1]
    cs = CountingSocket(sock)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_client_ctx().wrap_bio(inc, out, server_hostname=sni)

    def pump_out():
        d = out.read()
        if d:
            cs.send(d)

    def pump_in():
        d = cs.recv()
        if not d:
            inc.write_eof()
            return False
        inc.write(d)
        return True

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out()
            if not pump_in():
                raise RuntimeError("EOF in the handshake")
    pump_out()
    obj.write(data)
    pump_out()
    got = b""
    while len(got) < size:
        try:
            got += obj.read(65536)
        except ssl.SSLWantReadError:
            if not pump_in():
                break
    assert got == data, "passthrough echo of %d bytes came back as %d" % (size, len(got))
    # Half-close: the backend sees EOF and closes; everything until then counts.
    sock.shutdown(socket.SHUT_WR)
    while cs.recv():
        pass
    sock.close()
    return {"kind": "passthrough", "port": local, "server_port": port, "sent": cs.sent, "received": cs.received,
            "sni": sni, "t0": t0, "t1": now()}


def raw_session(addr, port, kind, send=b""):
    """A session terminusd ends itself: what came back before the close."""
    t0 = now()
    s = socket.create_connection((addr, port), timeout=30)
    local = s.getsockname()[1]
    if send:
        s.sendall(send)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    s.close()
    return {"kind": kind, "port": local, "server_port": port, "sent": len(send), "received": len(got),
            "body": got.decode("latin-1"), "t0": t0, "t1": now()}


def run(addr, out):
    did = []
    for size in (1, 1000, 65536, 300000, 7):
        did.append(plain_echo(addr, 80, size))
    ctx = tls_client_ctx()
    first, sess = tls_terminated(addr, 443, "www.example.com", 5000, ctx)
    did.append(first)
    again, _ = tls_terminated(addr, 443, "www.example.com", 123, ctx, session=sess)
    did.append(again)
    did.append(tls_passthrough(addr, 8443, "pass.example.com", 4321))
    did.append(raw_session(addr, 81, "denied"))
    did.append(raw_session(addr, 82, "return"))
    did.append(raw_session(addr, 83, "refused"))
    did.append(raw_session(addr, 443, "tls_failed", b"GET / HTTP/1.0\r\n\r\n"))
    did.append(raw_session(addr, 4443, "tls_failed_quiet", b"GET / HTTP/1.0\r\n\r\n"))
    off = plain_echo(addr, 84, 10)
    off["kind"] = "off"
    did.append(off)
    json.dump(did, open(out, "w"))
    print("%d sessions of %d kinds" % (len(did), len({d["kind"] for d in did})))


def plain_many(addr, port, n, out):
    did = []
    for i in range(n):
        did.append(plain_echo(addr, port, 100 + i))
    json.dump(did, open(out, "w"))
    print("%d plain sessions" % n)


def hold(addr, port, flag, out):
    data = b"held across a reload"
    t0 = now()
    s = socket.create_connection((addr, port), timeout=60)
    local = s.getsockname()[1]
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        got += s.recv(65536)
    open(flag + ".up", "w").write(str(local))
    deadline = now() + 60
    while not os.path.exists(flag) and now() < deadline:
        time.sleep(0.05)
    s.shutdown(socket.SHUT_WR)
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    json.dump([{"kind": "plain", "port": local, "server_port": port, "sent": len(data), "received": len(got),
                "t0": t0, "t1": now()}], open(out, "w"))
    print("held session from port %d" % local)


def tlsecho(addr, port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(64)
    print("ready", flush=True)

    def serve(c):
        try:
            s = ctx.wrap_socket(c, server_side=True)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


# ---------------------------------------------------------------------------
# The checker.

MAIN = re.compile(
    r'(?P<prefix>\S+ )?(?P<remote_addr>[\d.]+):(?P<remote_port>\d+) (?P<server_addr>[\d.]+):(?P<server_port>\d+) '
    r'\[(?P<time_local>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] (?P<protocol>\w+) (?P<status>\d{3}) '
    r'(?P<bytes_sent>\d+) (?P<bytes_received>\d+) (?P<session_time>\d+\.\d{3}) "(?P<upstream_addr>[^"]*)" '
    r'"(?P<upstream_bytes_sent>[^"]*)" "(?P<upstream_bytes_received>[^"]*)" "(?P<upstream_connect_time>[^"]*)" '
    r'"(?P<ssl_protocol>[^"]*)" "(?P<ssl_cipher>[^"]*)" "(?P<ssl_server_name>[^"]*)" '
    r'"(?P<ssl_session_reused>[^"]*)" "(?P<ssl_preread_server_name>[^"]*)" (?P<connection>\d+) '
    r'(?P<msec>\d+\.\d{3})$')

UPSTREAM = "198.18.21.1"
TERMINUS = "198.18.21.2"


def expect_main(d, f, errors, prefix):
    """What the main.log line of session D must say, field by field."""
    where = "port %d (%s)" % (d["port"], d["kind"])
    def want(key, value):
        if f[key] != value:
            errors.append("%s: %s is %r, expected %r" % (where, key, f[key], value))
    want("prefix", prefix)
    want("remote_addr", UPSTREAM)  # the namespace's address is the client's
    want("server_addr", TERMINUS)
    want("server_port", str(d["server_port"]))
    want("protocol", "TCP")
    status = {"plain": "200", "tls": "200", "passthrough": "200", "denied": "403", "return": "200",
              "refused": "502", "tls_failed": "500", "tls_failed_quiet": "500"}[d["kind"]]
    want("status", status)
    # terminusd sent what the client received (an alert of a failed
    # handshake is not the session's bytes).
    sent = d["received"] if d["kind"] in ("plain", "tls", "passthrough", "return") else 0
    received = d["sent"] if d["kind"] in ("plain", "tls", "passthrough") else 0
    want("bytes_sent", str(sent))
    want("bytes_received", str(received))
    proxied = d["kind"] in ("plain", "tls", "passthrough")
    if proxied:
        up_port = {80: 9001, 443: 9001, 8443: 9443}[d["server_port"]]
        want("upstream_addr", "%s:%d" % (UPSTREAM, up_port))
        want("upstream_bytes_sent", str(received))
        want("upstream_bytes_received", str(sent))
        if not re.match(r"^\d+\.\d{3}$", f["upstream_connect_time"]):
            errors.append("%s: upstream_connect_time %r" % (where, f["upstream_connect_time"]))
    elif d["kind"] == "refused":
        want("upstream_addr", "%s:9009" % UPSTREAM)
        want("upstream_connect_time", "-")
        want("upstream_bytes_sent", "0")
    else:
        want("upstream_addr", "-")
        want("upstream_connect_time", "-")
    if d["kind"] == "tls":
        want("ssl_protocol", d["protocol"])
        want("ssl_cipher", d["cipher"])
        want("ssl_server_name", d["sni"])
        want("ssl_session_reused", "r" if d["reused"] else ".")
    elif d["kind"] in ("tls_failed", "tls_failed_quiet"):
        want("ssl_protocol", "-")
        want("ssl_cipher", "-")
        want("ssl_server_name", "")  # TLS, but no SNI ever came
        want("ssl_session_reused", ".")
    else:
        for k in ("ssl_protocol", "ssl_cipher", "ssl_server_name", "ssl_session_reused"):
            want(k, "-")
    want("ssl_preread_server_name", d["sni"] if d["kind"] == "passthrough" else "-")
    # Times: the session's end, as the client saw it (to the millisecond,
    # give or take the scheduling of two processes).
    msec = float(f["msec"])
    if not d["t0"] - 0.5 <= msec <= d["t1"] + 0.5:
        errors.append("%s: msec %s outside the session [%.3f, %.3f]" % (where, f["msec"], d["t0"], d["t1"]))
    st = float(f["session_time"])
    if st > d["t1"] - d["t0"] + 0.5:
        errors.append("%s: session_time %s, the client saw %.3f s" % (where, f["session_time"], d["t1"] - d["t0"]))
    tl = time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(int(msec)))
    if not f["time_local"].startswith(tl):
        errors.append("%s: time_local %s for msec %s" % (where, f["time_local"], f["msec"]))


def expect_json(d, j, errors):
    where = "json port %d (%s)" % (d["port"], d["kind"])
    def want(key, value):
        if j.get(key) != value:
            errors.append("%s: %s is %r, expected %r" % (where, key, j.get(key), value))
    want("remote_addr", UPSTREAM)
    want("server_port", str(d["server_port"]))
    want("bytes_sent", str(d["received"] if d["kind"] in ("plain", "tls", "passthrough", "return") else 0))
    want("sni", d.get("sni", "") if d["kind"] == "tls" else "")
    want("preread", d["sni"] if d["kind"] == "passthrough" else "")
    want("protocol", d["protocol"] if d["kind"] == "tls" else "")
    want("reused", ("r" if d["reused"] else ".") if d["kind"] == "tls" else
         ("." if d["kind"].startswith("tls_failed") else ""))
    want("tag", {80: "plain", 443: "tls", 8443: "pass"}.get(d["server_port"], "other"))
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", j.get("time", "")):
        errors.append("%s: time_iso8601 %r" % (where, j.get("time")))


def check(did_path, main_path, json_path, odd_path, prefix=""):
    did = json.load(open(did_path))
    errors = []
    lines = [l for l in open(main_path).read().split("\n") if l]
    by_port = {}
    for l in lines:
        m = MAIN.match(l)
        if not m:
            errors.append("main.log: a line that does not parse: %r" % l)
            continue
        f = {k: (v if v is not None else "") for k, v in m.groupdict().items()}
        by_port.setdefault((int(f["remote_port"]), int(f["server_port"])), []).append(f)
    jlines = [l for l in open(json_path).read().split("\n") if l]
    jby_port = {}
    for l in jlines:
        try:
            j = json.loads(l)
        except ValueError as e:
            errors.append("json log: %s: %r" % (e, l))
            continue
        jby_port.setdefault((int(j["remote_port"]), int(j["server_port"])), []).append(j)
    odd = [l for l in open(odd_path).read().split("\n") if l] if odd_path != "-" else []
    odd_ports = {int(MAIN.match(l).group("remote_port")) for l in odd if MAIN.match(l)}
    conns = set()
    # An ephemeral port may come back in a long test: a session's line is
    # the one of its ports that ended while it ran.
    def during(d, fs, key):
        return [f for f in fs if d["t0"] - 0.5 <= float(f[key]) <= d["t1"] + 0.5]
    for d in did:
        got = during(d, by_port.get((d["port"], d["server_port"]), []), "msec")
        if d["kind"] == "off":
            if got:
                errors.append("port %d: access_log off, yet logged: %r" % (d["port"], got))
            continue
        if len(got) != 1:
            errors.append("port %d (%s): %d lines in main.log" % (d["port"], d["kind"], len(got)))
            continue
        expect_main(d, got[0], errors, prefix)
        conns.add(got[0]["connection"])
        js = during(d, jby_port.get((d["port"], d["server_port"]), []), "msec")
        if len(js) != 1:
            errors.append("port %d (%s): %d lines in the json log" % (d["port"], d["kind"], len(js)))
        else:
            expect_json(d, js[0], errors)
        if odd_path != "-":
            is_odd = d["server_port"] == 80 and d["port"] % 2 == 1
            if is_odd != (d["port"] in odd_ports):
                errors.append("port %d: in odd.log %s, its port is %s" %
                              (d["port"], d["port"] in odd_ports, "odd" if d["port"] % 2 else "even"))
    if len(conns) != len([d for d in did if d["kind"] != "off"]):
        errors.append("$connection is not unique: %d values for %d sessions" % (len(conns), len(did)))
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("%d sessions: every field of %d main and %d json lines as the clients saw them" %
          (len(did), len(lines), len(jlines)))


def main():
    cmd = sys.argv[1]
    if cmd == "tlsecho":
        tlsecho(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "run":
        run(sys.argv[2], sys.argv[3])
    elif cmd == "plain":
        plain_many(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "check":
        args = sys.argv[2:]
        prefix = ""
        if "--prefix" in args:
            i = args.index("--prefix")
            prefix = args[i + 1] + " "
            del args[i:i + 2]
        check(*args, prefix=prefix)


if __name__ == "__main__":
    main()
