#!/usr/bin/env python3
"""A TCP backend that reads a PROXY protocol header (HAProxy's
doc/proxy-protocol.txt, versions 1 and 2) at the start of each connection,
with a parser of its own written from the spec (not from terminusd's), and
records what it read as one JSON line per connection in --log. Then it
echoes the rest of the stream (a FIN is answered with a FIN once all is
echoed), or with --respond sends a fixed reply, half-closes and discards
what the client sends until it closes.

Usage:
  pp_backend.py --listen ADDR:PORT --log FILE [--require v1|v2|any|none]
                [--respond TEXT] [--timeout S] [--max-header N]
  pp_backend.py --self-test

Prints "listening ADDR:PORT" (the real port when PORT is 0) once it
accepts. A connection whose header is missing, malformed or of the wrong
version (--require) is logged with "ok": false and an "error", then
closed.

Each JSON line (keys always present; null when not applicable):
  conn        int   1, 2, ... in accept order
  peer, local str   "ADDR:PORT" of the TCP connection itself
  ok          bool  a header as --require asks was read (always true for none)
  error       str   null, or one of: not_proxy too_long v1_protocol v1_syntax
                    v1_address v1_port v2_version v2_command v2_family
                    v2_short_address v2_tlv v2_tlv_length v2_duplicate_tlv
                    v2_ssl v2_checksum (the header), eof timeout (the
                    connection), wrong_version (--require)
  version     int   1 or 2; null for --require none or an error
  command     str   "PROXY" or "LOCAL" (v1 is always PROXY)
  family      str   "INET" "INET6" "UNIX" "UNSPEC" (v1 UNKNOWN, v2 LOCAL)
  transport   str   "STREAM" "DGRAM" "UNSPEC"
  src_addr, dst_addr  str  dotted IPv4, compressed IPv6, or the UNIX path
                    up to its first NUL; null for UNSPEC
  src_port, dst_port  int  null for UNSPEC and UNIX
  header_len  int   bytes of header consumed
  header_hex  str   those bytes, hex
  tlvs        list  v2 top-level TLVs in order: {"type", "length", "value_hex"}
  alpn, authority, netns  str  UTF-8 (undecodable bytes as \\xNN escapes)
  unique_id_hex  str
  noop        int   NOOP TLVs seen
  crc32c      obj   {"value": int, "valid": true} (an invalid one is an error)
  ssl         obj   {"client": int, "client_ssl", "cert_conn", "cert_sess":
                    bool, "verify": int, "version", "cn", "cipher", "sig_alg",
                    "key_alg": str or null, "tlvs": [sub-TLVs as above]}
"""
import argparse
import ipaddress
import json
import re
import socket
import sys
import threading

V1_MAX = 107
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
DEFAULT_MAX_HEADER = 4096
UNIQUE_ID_MAX = 128
AUTHORITY_MAX = 255

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_SUBTYPE_SSL_CN = 0x22
PP2_SUBTYPE_SSL_CIPHER = 0x23
PP2_SUBTYPE_SSL_SIG_ALG = 0x24
PP2_SUBTYPE_SSL_KEY_ALG = 0x25
PP2_TYPE_NETNS = 0x30

SSL_SUBTYPES = {
    PP2_SUBTYPE_SSL_VERSION: "version",
    PP2_SUBTYPE_SSL_CN: "cn",
    PP2_SUBTYPE_SSL_CIPHER: "cipher",
    PP2_SUBTYPE_SSL_SIG_ALG: "sig_alg",
    PP2_SUBTYPE_SSL_KEY_ALG: "key_alg",
}
FAMILIES = {0: "UNSPEC", 1: "INET", 2: "INET6", 3: "UNIX"}
TRANSPORTS = {0: "UNSPEC", 1: "STREAM", 2: "DGRAM"}


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32C (Castagnoli) as RFC 4960 appendix B and PP2_TYPE_CRC32C use."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Invalid(Exception):
    """The bytes are not, and cannot become, a valid header."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def text(b):
    return b.decode("utf-8", errors="backslashreplace")


def empty_record():
    return {
        "version": None, "command": None, "family": None, "transport": None,
        "src_addr": None, "src_port": None, "dst_addr": None, "dst_port": None,
        "header_len": None, "header_hex": None, "tlvs": [], "alpn": None,
        "authority": None, "netns": None, "unique_id_hex": None, "noop": 0,
        "crc32c": None, "ssl": None,
    }


# ---- version 1 (2.1) ----

V4_RE = re.compile(rb"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")
V6_CHARS_RE = re.compile(rb"[0-9A-Fa-f:.]+")
PORT_RE = re.compile(rb"0|[1-9][0-9]{0,4}")
V1_TOKENS = (b"TCP4 ", b"TCP6 ", b"UNKNOWN")


def v1_ip4(b):
    m = V4_RE.fullmatch(b)
    if not m or any(int(g) > 255 for g in m.groups()):
        raise Invalid("v1_address")
    return ".".join(g.decode() for g in m.groups())


def v1_ip6(b):
    # 2.1: hex groups, one "::"; inet_ntop's dotted tail is accepted. No
    # scope ids, no brackets.
    if not V6_CHARS_RE.fullmatch(b):
        raise Invalid("v1_address")
    try:
        return str(ipaddress.IPv6Address(b.decode()))
    except ValueError:
        raise Invalid("v1_address") from None


def v1_port(b):
    if not PORT_RE.fullmatch(b) or int(b) > 65535:
        raise Invalid("v1_port")
    return int(b)


def parse_v1(buf, cap):
    limit = min(V1_MAX, cap)
    head = buf[:limit]
    if head[:6] != b"PROXY "[:len(head)]:
        raise Invalid("not_proxy")
    if len(head) <= 6:
        return None
    rest = head[6:]
    if not any(tok[:len(rest)] == rest[:len(tok)] for tok in V1_TOKENS):
        raise Invalid("v1_protocol")
    cr = head.find(b"\r", 6)
    lf = head.find(b"\n", 6)
    if lf != -1 and (cr == -1 or lf < cr):
        raise Invalid("v1_syntax")  # an LF without its CR
    if cr == -1:
        if len(head) >= limit:
            raise Invalid("too_long")
        return None
    if cr + 1 >= limit:
        raise Invalid("too_long")
    if cr + 1 >= len(buf):
        return None
    if buf[cr + 1:cr + 2] != b"\n":
        raise Invalid("v1_syntax")  # a CR without its LF
    line = head[6:cr]
    rec = empty_record()
    rec.update(version=1, command="PROXY", header_len=cr + 2)
    if line.startswith(b"UNKNOWN"):
        if len(line) > 7 and line[7:8] != b" ":
            raise Invalid("v1_protocol")
        rec.update(family="UNSPEC", transport="UNSPEC")
        return rec
    if line[:5] not in (b"TCP4 ", b"TCP6 "):
        raise Invalid("v1_protocol")
    fields = line[5:].split(b" ")
    if len(fields) != 4 or not all(fields):
        raise Invalid("v1_syntax")
    ip = v1_ip4 if line[:4] == b"TCP4" else v1_ip6
    rec.update(family="INET" if line[:4] == b"TCP4" else "INET6", transport="STREAM",
               src_addr=ip(fields[0]), dst_addr=ip(fields[1]))
    rec.update(src_port=v1_port(fields[2]), dst_port=v1_port(fields[3]))
    return rec


# ---- version 2 (2.2) ----

def split_tlvs(data, bad):
    """Yields the TLVs of DATA as (type, value, offset) triples, one at a
    time so that the first fault found is the one reported; BAD names the
    error when one runs past the end."""
    off = 0
    while off < len(data):
        if len(data) - off < 3:
            raise Invalid(bad)
        length = int.from_bytes(data[off + 1:off + 3], "big")
        if off + 3 + length > len(data):
            raise Invalid(bad)
        yield data[off], data[off + 3:off + 3 + length], off
        off += 3 + length


def tlv_json(t, v):
    return {"type": t, "length": len(v), "value_hex": v.hex()}


def parse_ssl(value):
    if len(value) < 5:
        raise Invalid("v2_ssl")
    client = value[0]
    ssl = {
        "client": client, "client_ssl": bool(client & 0x01),
        "cert_conn": bool(client & 0x02), "cert_sess": bool(client & 0x04),
        "verify": int.from_bytes(value[1:5], "big"),
        "version": None, "cn": None, "cipher": None, "sig_alg": None, "key_alg": None,
        "tlvs": [],
    }
    seen = set()
    for t, v, _ in split_tlvs(value[5:], "v2_ssl"):
        ssl["tlvs"].append(tlv_json(t, v))
        if t in SSL_SUBTYPES:
            if t in seen:
                raise Invalid("v2_duplicate_tlv")
            seen.add(t)
            ssl[SSL_SUBTYPES[t]] = text(v)
    return ssl


def parse_v2(buf, cap):
    if buf[:12] != V2_SIG[:len(buf)]:
        raise Invalid("not_proxy")
    if len(buf) > 12:
        if buf[12] >> 4 != 2:
            raise Invalid("v2_version")
        if buf[12] & 0x0F not in (0, 1):
            raise Invalid("v2_command")
    proxy = len(buf) > 12 and buf[12] & 0x0F == 1
    if len(buf) > 13 and proxy and (buf[13] >> 4 not in FAMILIES or buf[13] & 0x0F not in TRANSPORTS):
        raise Invalid("v2_family")
    if len(buf) < 16:
        return None
    length = int.from_bytes(buf[14:16], "big")
    total = 16 + length
    if total > cap:
        raise Invalid("too_long")
    fam, trans = buf[13] >> 4, buf[13] & 0x0F
    # LOCAL ignores the block and its family; an unspecified family or
    # transport leaves the block's layout unknown: skipped too.
    known = proxy and fam != 0 and trans != 0
    addr_len = {1: 12, 2: 36, 3: 216}[fam] if known else 0
    if length < addr_len:
        raise Invalid("v2_short_address")
    if len(buf) < total:
        return None
    hdr = buf[:total]
    rec = empty_record()
    rec.update(version=2, command="PROXY" if proxy else "LOCAL", header_len=total,
               family=FAMILIES[fam] if known else "UNSPEC",
               transport=TRANSPORTS[trans] if known else "UNSPEC")
    if not known:
        return rec
    a = hdr[16:16 + addr_len]
    if fam == 1:
        rec.update(src_addr=str(ipaddress.IPv4Address(a[0:4])), dst_addr=str(ipaddress.IPv4Address(a[4:8])),
                   src_port=int.from_bytes(a[8:10], "big"), dst_port=int.from_bytes(a[10:12], "big"))
    elif fam == 2:
        rec.update(src_addr=str(ipaddress.IPv6Address(a[0:16])), dst_addr=str(ipaddress.IPv6Address(a[16:32])),
                   src_port=int.from_bytes(a[32:34], "big"), dst_port=int.from_bytes(a[34:36], "big"))
    else:
        rec.update(src_addr=text(a[:108].split(b"\x00")[0]), dst_addr=text(a[108:].split(b"\x00")[0]))

    base = 16 + addr_len
    seen = set()
    crc_at = None
    for t, v, off in split_tlvs(hdr[base:], "v2_tlv"):
        rec["tlvs"].append(tlv_json(t, v))
        if t == PP2_TYPE_AUTHORITY and len(v) > AUTHORITY_MAX:
            raise Invalid("v2_tlv_length")
        if t == PP2_TYPE_UNIQUE_ID and len(v) > UNIQUE_ID_MAX:
            raise Invalid("v2_tlv_length")
        if t == PP2_TYPE_CRC32C and len(v) != 4:
            raise Invalid("v2_tlv_length")
        if t in (PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_CRC32C, PP2_TYPE_UNIQUE_ID,
                 PP2_TYPE_SSL, PP2_TYPE_NETNS):
            if t in seen:
                raise Invalid("v2_duplicate_tlv")
            seen.add(t)
        if t == PP2_TYPE_ALPN:
            rec["alpn"] = text(v)
        elif t == PP2_TYPE_AUTHORITY:
            rec["authority"] = text(v)
        elif t == PP2_TYPE_CRC32C:
            crc_at = base + off + 3
            rec["crc32c"] = {"value": int.from_bytes(v, "big"), "valid": None}
        elif t == PP2_TYPE_NOOP:
            rec["noop"] += 1
        elif t == PP2_TYPE_UNIQUE_ID:
            rec["unique_id_hex"] = v.hex()
        elif t == PP2_TYPE_SSL:
            if len(v) < 5:
                raise Invalid("v2_ssl")
            rec["ssl"] = parse_ssl(v)
        elif t == PP2_TYPE_NETNS:
            rec["netns"] = text(v)
    if crc_at is not None:
        # 2.2.3: the checksum of the whole header, its own field zeroed.
        zeroed = hdr[:crc_at] + b"\x00\x00\x00\x00" + hdr[crc_at + 4:]
        if crc32c(zeroed) != rec["crc32c"]["value"]:
            raise Invalid("v2_checksum")
        rec["crc32c"]["valid"] = True
    return rec


def parse_header(buf, cap=DEFAULT_MAX_HEADER):
    """Returns None (need more bytes) or the record of a complete header;
    raises Invalid."""
    if not buf:
        return None
    if buf[:1] == b"P":
        rec = parse_v1(buf, cap)
    elif buf[:1] == b"\r":
        rec = parse_v2(buf, cap)
    else:
        raise Invalid("not_proxy")
    if rec is None and len(buf) >= cap:
        raise Invalid("too_long")
    if rec is not None:
        rec["header_hex"] = buf[:rec["header_len"]].hex()
    return rec


# ---- the server ----

class Backend:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.count = 0
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None

    def record(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            if self.log:
                self.log.write(line + "\n")
                self.log.flush()

    def read_header(self, c):
        """Returns (record, bytes after the header) or raises Invalid."""
        buf = b""
        while True:
            rec = parse_header(buf, self.args.max_header)
            if rec is not None:
                return rec, buf[rec["header_len"]:]
            try:
                d = c.recv(65536)
            except socket.timeout:
                raise Invalid("timeout") from None
            if not d:
                raise Invalid("eof")
            buf += d

    def handle(self, c, n):
        base = {"conn": n, "peer": "%s:%d" % c.getpeername()[:2],
                "local": "%s:%d" % c.getsockname()[:2], "ok": True, "error": None}
        try:
            if self.args.require == "none":
                rec, rest = empty_record(), b""
            else:
                c.settimeout(self.args.timeout)
                try:
                    rec, rest = self.read_header(c)
                except Invalid as e:
                    rec = empty_record()
                    rec.update(base, ok=False, error=e.code)
                    self.record(rec)
                    return
                want = {"v1": 1, "v2": 2}.get(self.args.require)
                if want is not None and rec["version"] != want:
                    rec.update(base, ok=False, error="wrong_version")
                    self.record(rec)
                    return
                c.settimeout(None)
            rec.update(base)
            self.record(rec)
            if self.args.respond is not None:
                c.sendall(self.args.respond.encode())
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass
                return
            if rest:
                c.sendall(rest)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def serve(self, s):
        while True:
            c, _ = s.accept()
            with self.lock:
                self.count += 1
                n = self.count
            threading.Thread(target=self.handle, args=(c, n), daemon=True).start()


def listen(addr):
    host, _, port = addr.rpartition(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(1024)
    return s


# ---- --self-test ----

def _tlv(t, v):
    return bytes([t, len(v) >> 8, len(v) & 0xFF]) + v


def self_test():
    failures = []
    count = [0]

    def check(name, cond):
        count[0] += 1
        if not cond:
            failures.append(name)

    def done(name, b, **want):
        try:
            rec = parse_header(b)
        except Invalid as e:
            check("%s: refused (%s)" % (name, e.code), False)
            return None
        check(name + ": done", rec is not None)
        if rec is None:
            return None
        for k, v in want.items():
            check("%s: %s=%r, not %r" % (name, k, v, rec.get(k)), rec.get(k) == v)
        # Every shorter prefix needs more; the payload after it is not read.
        for k in range(len(b)):
            try:
                check("%s: prefix %d needs more" % (name, k), parse_header(b[:k]) is None)
            except Invalid as e:
                check("%s: prefix %d refused (%s)" % (name, k, e.code), False)
        again = parse_header(b + b"GET / HTTP/1.1\r\n\r\n")
        check(name + ": payload ignored", again is not None and again["header_len"] == len(b))
        return rec

    def bad(name, b, code, cap=DEFAULT_MAX_HEADER):
        try:
            rec = parse_header(b, cap)
            check("%s: accepted (%r), wanted %s" % (name, rec, code), False)
        except Invalid as e:
            check("%s: %s, wanted %s" % (name, e.code, code), e.code == code)

    # CRC32C: the check value and RFC 3720 B.4.
    check("crc 123456789", crc32c(b"123456789") == 0xE3069283)
    check("crc zeros", crc32c(bytes(32)) == 0x8A9136AA)
    check("crc ones", crc32c(b"\xff" * 32) == 0x62A8AB43)
    check("crc ascending", crc32c(bytes(range(32))) == 0x46DD794E)
    check("crc descending", crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C)

    # v1, 2.1's example and limits.
    done("v1 spec", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", version=1,
         command="PROXY", family="INET", src_addr="192.168.0.1", dst_addr="192.168.0.11",
         src_port=56324, dst_port=443, header_len=47)
    done("v1 max tcp4", b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
         header_len=56, src_port=65535)
    done("v1 tcp6", b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n", family="INET6",
         src_addr="2001:db8::1", dst_addr="::ffff:c000:201", dst_port=0)
    done("v1 unknown", b"PROXY UNKNOWN\r\n", family="UNSPEC", header_len=15, src_addr=None)
    f = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    worst = b"PROXY UNKNOWN " + f + b" " + f + b" 65535 65535\r\n"
    check("worst is 107", len(worst) == 107)
    done("v1 worst", worst, header_len=107)
    bad("v1 108", b"PROXY UNKNOWN " + f + b" " + f + b" 65535 655350\r\n", "too_long")
    bad("v1 no crlf", b"PROXY UNKNOWN " + b"x" * 200, "too_long")
    bad("v1 cap", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "too_long", cap=20)
    for line, code in [
        (b"GET / HTTP/1.1\r\n", "not_proxy"),
        (b"PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not_proxy"),
        (b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_protocol"),
        (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_protocol"),
        (b"PROXY UNKNOWNX\r\n", "v1_protocol"),
        (b"PROXY GET", "v1_protocol"),
        (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "v1_syntax"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "v1_syntax"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "v1_syntax"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "v1_syntax"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1_syntax"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n", "v1_syntax"),
        (b"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", "v1_address"),
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "v1_address"),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "v1_address"),
        (b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "v1_address"),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 1::2::3 ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 12345:: ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP6 ::1.2.3.04 ::1 1 2\r\n", "v1_address"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "v1_port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "v1_port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -1\r\n", "v1_port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", "v1_port"),
    ]:
        bad(repr(line), line, code)

    # v2 (2.2), bytes written out from the structures in the spec.
    sig = bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A])
    check("signature", sig == V2_SIG)
    a4 = bytes([192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB])
    tcp4 = sig + b"\x21\x11\x00\x0c" + a4
    done("v2 tcp4", tcp4, version=2, command="PROXY", family="INET", transport="STREAM",
         src_addr="192.168.0.1", dst_addr="192.168.0.11", src_port=56324, dst_port=443,
         header_len=28, tlvs=[])
    done("v2 local", sig + b"\x20\x00\x00\x00", command="LOCAL", family="UNSPEC", header_len=16)
    done("v2 local ignores family", sig + b"\x20\xff\x00\x03abc", command="LOCAL", header_len=19)
    done("v2 unspec", sig + b"\x21\x00\x00\x04abcd", command="PROXY", family="UNSPEC", tlvs=[])
    done("v2 udp4", sig + b"\x21\x12\x00\x0c" + a4, transport="DGRAM")
    a6 = bytes.fromhex("20010db8000000000000000000000001" "20010db8000000000000000000000002") + b"\x30\x39\x00\x50"
    done("v2 tcp6", sig + b"\x21\x21\x00\x24" + a6, family="INET6", src_addr="2001:db8::1",
         dst_addr="2001:db8::2", src_port=12345, dst_port=80, header_len=52)
    unix = b"/run/src.sock".ljust(108, b"\0") + b"/run/dst.sock".ljust(108, b"\0")
    done("v2 unix", sig + b"\x21\x31\x00\xd8" + unix, family="UNIX", src_addr="/run/src.sock",
         dst_addr="/run/dst.sock", src_port=None, header_len=232)

    # HAProxy's make_proxy_line_v2 for a TLS client, by hand: CRC32C, ALPN,
    # AUTHORITY, SSL (VERSION, CN, KEY_ALG, SIG_ALG, CIPHER). The checksum
    # was computed bit by bit, with no table.
    tls = (sig + b"\x21\x11\x00\x70" + a4
           + b"\x03\x00\x04\xc8\x0c\xf6\x4e"
           + b"\x01\x00\x02" + b"h2"
           + b"\x02\x00\x0b" + b"example.com"
           + b"\x20\x00\x47" + b"\x07\x00\x00\x00\x00"
           + b"\x21\x00\x07" + b"TLSv1.3"
           + b"\x22\x00\x05" + b"alice"
           + b"\x25\x00\x07" + b"RSA2048"
           + b"\x24\x00\x0a" + b"RSA-SHA256"
           + b"\x23\x00\x16" + b"TLS_AES_128_GCM_SHA256")
    check("tls is 128", len(tls) == 128)
    rec = done("v2 tls", tls, alpn="h2", authority="example.com", header_len=128,
               crc32c={"value": 0xC80CF64E, "valid": True})
    if rec:
        s = rec["ssl"] or {}
        check("ssl client", s.get("client") == 7 and s.get("client_ssl") and s.get("cert_conn")
              and s.get("cert_sess"))
        check("ssl verify", s.get("verify") == 0)
        check("ssl strings", (s.get("version"), s.get("cn"), s.get("key_alg"), s.get("sig_alg"),
                              s.get("cipher")) == ("TLSv1.3", "alice", "RSA2048", "RSA-SHA256",
                                                   "TLS_AES_128_GCM_SHA256"))
        check("tlv order", [t["type"] for t in rec["tlvs"]] == [3, 1, 2, 0x20])
    for i in range(16, len(tls)):
        b = bytearray(tls)
        b[i] ^= 1
        try:
            parse_header(bytes(b))
            check("flip %d accepted" % i, False)
        except Invalid:
            check("flip %d" % i, True)
    b = bytearray(tls)
    b[38] ^= 0x20
    bad("h2 -> H2", bytes(b), "v2_checksum")

    def with_tlvs(t):
        body = a4 + t
        return sig + b"\x21\x11" + len(body).to_bytes(2, "big") + body

    rec = done("v2 others", with_tlvs(_tlv(4, b"\xff\xff") + _tlv(5, b"\x01\x02\x03") + _tlv(0x30, b"blue")
                                      + _tlv(0xE0, b"\xab\xcd") + _tlv(1, b"") + _tlv(4, b"")),
               noop=2, unique_id_hex="010203", netns="blue", alpn="", ssl=None)
    if rec:
        check("custom tlv", {"type": 0xE0, "length": 2, "value_hex": "abcd"} in rec["tlvs"])
    done("v2 plain ssl", with_tlvs(_tlv(0x20, b"\x00\x00\x00\x00\x00")),
         ssl={"client": 0, "client_ssl": False, "cert_conn": False, "cert_sess": False,
              "verify": 0, "version": None, "cn": None, "cipher": None, "sig_alg": None,
              "key_alg": None, "tlvs": []})

    for name, b, code in [
        ("bad sig", b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x55\x0a\x21\x11\x00\x00", "not_proxy"),
        ("version 1", sig + b"\x11\x11\x00\x0c" + a4, "v2_version"),
        ("version 3", sig + b"\x31\x11\x00\x0c" + a4, "v2_version"),
        ("command 2", sig + b"\x22\x11\x00\x0c" + a4, "v2_command"),
        ("family 4", sig + b"\x21\x41\x00\x0c" + a4, "v2_family"),
        ("transport 3", sig + b"\x21\x13\x00\x0c" + a4, "v2_family"),
        ("short inet", sig + b"\x21\x11\x00\x0b" + a4[:11], "v2_short_address"),
        ("short inet6", sig + b"\x21\x21\x00\x0c" + a4, "v2_short_address"),
        ("short unix", sig + b"\x21\x31\x00\x24" + bytes(36), "v2_short_address"),
        ("over cap", sig + b"\x21\x11\xff\xff", "too_long"),
        ("tlv overrun", with_tlvs(b"\x01\x00\x03h2"), "v2_tlv"),
        ("tlv huge", with_tlvs(b"\xe0\xff\xff\x00"), "v2_tlv"),
        ("tlv partial", with_tlvs(b"\x01\x00"), "v2_tlv"),
        ("tlv one byte", with_tlvs(b"\x04"), "v2_tlv"),
        ("crc len 3", with_tlvs(b"\x03\x00\x03\x00\x00\x00"), "v2_tlv_length"),
        ("unique id 129", with_tlvs(_tlv(5, b"u" * 129)), "v2_tlv_length"),
        ("authority 256", with_tlvs(_tlv(2, b"a" * 256)), "v2_tlv_length"),
        ("two alpn", with_tlvs(_tlv(1, b"a") + _tlv(1, b"b")), "v2_duplicate_tlv"),
        ("two ssl", with_tlvs(_tlv(0x20, b"\x01" + bytes(4)) * 2), "v2_duplicate_tlv"),
        ("two versions", with_tlvs(_tlv(0x20, b"\x01" + bytes(4) + _tlv(0x21, b"") * 2)),
         "v2_duplicate_tlv"),
        ("ssl 4 bytes", with_tlvs(_tlv(0x20, b"\x01" + bytes(3))), "v2_ssl"),
        ("ssl sub overrun", with_tlvs(b"\x20\x00\x09\x01\x00\x00\x00\x00\x21\x00\x02T" + _tlv(4, b"")),
         "v2_ssl"),
    ]:
        bad(name, b, code)
    try:
        check("unique id 128", parse_header(with_tlvs(_tlv(5, b"u" * 128))) is not None)
        check("v2 wait", parse_header(sig + b"\x21\x11\x00\x28" + a4) is None)
    except Invalid as e:
        check("valid refused: " + e.code, False)

    # End to end over loopback: a v2 header and payload in one write, echo.
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log")
        args = argparse.Namespace(log=log, require="v2", respond=None, timeout=5.0,
                                  max_header=DEFAULT_MAX_HEADER)
        s = listen("127.0.0.1:0")
        threading.Thread(target=Backend(args).serve, args=(s,), daemon=True).start()
        c = socket.create_connection(s.getsockname())
        c.sendall(tls + b"ping")
        got = c.recv(4)
        c.shutdown(socket.SHUT_WR)
        rest = c.recv(100)
        c.close()
        check("echo", got == b"ping" and rest == b"")
        c = socket.create_connection(s.getsockname())
        c.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
        check("wrong version closed", c.recv(10) == b"")
        c.close()
        with open(log) as fh:
            lines = [json.loads(x) for x in fh]
        check("two lines", len(lines) == 2)
        if len(lines) == 2:
            check("line 1", lines[0]["ok"] and lines[0]["authority"] == "example.com"
                  and lines[0]["ssl"]["cipher"] == "TLS_AES_128_GCM_SHA256" and lines[0]["conn"] == 1)
            check("line 2", not lines[1]["ok"] and lines[1]["error"] == "wrong_version")

    for f_ in failures:
        print("FAIL " + f_)
    print("self-test: %d checks, %d failed" % (count[0], len(failures)))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", help="ADDR:PORT")
    ap.add_argument("--log", help="append one JSON line per connection here")
    ap.add_argument("--require", choices=["v1", "v2", "any", "none"], default="any")
    ap.add_argument("--respond", help="send this instead of echoing")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the header")
    ap.add_argument("--max-header", type=int, default=DEFAULT_MAX_HEADER)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.listen or not args.log:
        ap.error("--listen and --log are needed")
    s = listen(args.listen)
    print("listening %s:%d" % s.getsockname()[:2], flush=True)
    try:
        Backend(args).serve(s)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
