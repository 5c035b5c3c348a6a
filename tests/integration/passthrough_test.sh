#!/usr/bin/env bash
# SNI passthrough (ssl_preread), terminating and passing through on one
# ssl listen, and the PROXY protocol both ways, end to end: terminusd on a
# DPDK TAP device with two lcores; openssl s_server backends with their own
# certificates, echo backends and pp_backend.py (a PROXY protocol parser of
# its own) in the TAP's namespace; openssl s_client and Python clients
# there too. Output is TAP.
# Usage: passthrough_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup pt terminusd ctl src certs -- "$@"
extra_cleanup() { [ -n "${KEEP_LOG:-}" ] && cp -r "$work" /tmp/passthrough_test.work; }
export CERTS="$certs"
stat() {  # stat GROUP NAME: the total of a counter from terminusctl
    "$ctl" stats --name "pt$id" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['$1']['$2']['total'])"
}
stat_ge() { [ "$(stat "$1" "$2")" -ge "$3" ]; }  # for wait_for: counters publish 10 times a second
tls_sum() {  # every TLS counter added up: what terminating a client would move
    "$ctl" stats --name "pt$id" --json |
        python3 -c "import json,sys; print(sum(v['total'] for v in json.load(sys.stdin)['stats']['tls'].values()))"
}
# s_client [--full] NAME PORT [OPTIONS...]: one handshake, its brief summary
# on stdout (--full: everything s_client prints, ALPN included).
s_client() {
    local brief=-brief
    [ "$1" = --full ] && { brief=; shift; }
    local sni=$1 port=$2; shift 2
    in_ns timeout 10 openssl s_client -connect "198.18.0.2:$port" -servername "$sni" -CAfile "$certs/ca.crt" \
        -verify_return_error $brief "$@" </dev/null 2>&1
}
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
lines_ge() { [ "$(lines "$1")" -ge "$2" ]; }
count_of() { grep -c "$2" "$1"; }

# The Python clients, one program with a mode per kind of check.
cat > "$work/client.py" <<'PY'
import json, os, socket, ssl, struct, sys, time

CA = os.path.join(os.environ["CERTS"], "ca.crt")
DST = "198.18.0.2"


def hello_for(sni, ctx=None):
    """A real ClientHello for SNI, and the SSLObject that made it (its
    handshake can go on with whatever answers)."""
    ctx = ctx or ssl.create_default_context(cafile=CA)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, out, out.read()


def reframe(hello, size):
    """The ClientHello's handshake message cut into records of SIZE bytes."""
    assert hello[0] == 0x16 and struct.unpack(">H", hello[3:5])[0] == len(hello) - 5
    body = hello[5:]
    return b"".join(b"\x16" + hello[1:3] + struct.pack(">H", len(body[i:i + size])) + body[i:i + size]
                    for i in range(0, len(body), size))


def finish_handshake(sock, obj, inc, out):
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                sock.sendall(pending)
            d = sock.recv(65536)
            if not d:
                raise EOFError("the server closed during the handshake")
            inc.write(d)
    pending = out.read()
    if pending:
        sock.sendall(pending)


def tls_line(sock, obj, inc, out, line):
    """Sends LINE over the SSLObject, returns the line that comes back."""
    obj.write(line)
    sock.sendall(out.read())
    got = b""
    while not got.endswith(b"\n"):
        try:
            got += obj.read(65536)
        except ssl.SSLWantReadError:
            d = sock.recv(65536)
            if not d:
                break
            inc.write(d)
    return got


def cn_of(cert):
    return dict(x[0] for x in cert["subject"])["commonName"]


def rev_check(got, line):
    # s_server -rev answers each line reversed.
    return got == line[:-1][::-1] + b"\n"


def main():
    mode = sys.argv[1]
    if mode == "rev":
        # rev PORT SNI: a TLS client through to an s_server -rev backend.
        port, sni = int(sys.argv[2]), sys.argv[3]
        ctx = ssl.create_default_context(cafile=CA)
        s = ctx.wrap_socket(socket.create_connection((DST, port), timeout=10), server_hostname=sni)
        line = os.urandom(1500).hex().encode() + b"\n"
        s.sendall(line)
        got = b""
        while not got.endswith(b"\n"):
            d = s.recv(65536)
            if not d:
                break
            got += d
        print("CN=%s reversed=%s (%d bytes)" % (cn_of(s.getpeercert()), rev_check(got, line), len(got)))
    elif mode in ("trickle", "records"):
        # trickle|records PORT SNI: the ClientHello one byte per segment, or
        # cut into records of 4 bytes; then the handshake and a line.
        port, sni = int(sys.argv[2]), sys.argv[3]
        obj, inc, out, hello = hello_for(sni)
        sock = socket.create_connection((DST, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "trickle":
            for i in range(len(hello)):
                sock.send(hello[i:i + 1])
                time.sleep(0.002)
            sent = len(hello)
        else:
            framed = reframe(hello, 4)
            sock.sendall(framed)
            sent = len(framed)
        finish_handshake(sock, obj, inc, out)
        line = os.urandom(700).hex().encode() + b"\n"
        got = tls_line(sock, obj, inc, out, line)
        print("CN=%s reversed=%s (%d bytes of hello sent)" % (cn_of(obj.getpeercert()), rev_check(got, line), sent))
    elif mode == "raw":
        # raw PORT SNI SIZE: the ClientHello cut into records of SIZE bytes,
        # sent; the echo must give back exactly those bytes.
        port, sni, size = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        _, _, _, hello = hello_for(sni)
        framed = reframe(hello, size)
        sock = socket.create_connection((DST, port), timeout=10)
        sock.sendall(framed)
        got = b""
        while len(got) < len(framed):
            d = sock.recv(65536)
            if not d:
                break
            got += d
        print("identical=%s (%d records, %d bytes)" % (got == framed, (len(hello) - 5 + size - 1) // size, len(framed)))
    elif mode == "plain":
        # plain PORT DATA: sends DATA, prints what comes back, and our port.
        port, data = int(sys.argv[2]), sys.argv[3].encode()
        sock = socket.create_connection((DST, port), timeout=10)
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            d = sock.recv(65536)
            if not d:
                break
            got += d
        print(json.dumps({"addr": sock.getsockname()[0], "port": sock.getsockname()[1], "echo": got.decode(errors="replace")}))
    elif mode == "oversize":
        # oversize PORT: a record header announcing 16 KB of ClientHello,
        # then 2 KB of it (well formed as far as it goes); what happens.
        port = int(sys.argv[2])
        body = b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
        ext_len = 16384 - 4 - len(body) - 2
        body += struct.pack(">H", ext_len) + struct.pack(">HH", 0x0015, ext_len - 4)
        msg = b"\x01" + (16384 - 4).to_bytes(3, "big") + body
        data = b"\x16\x03\x01" + struct.pack(">H", 16384) + msg
        data += bytes(2048 - len(data))
        sock = socket.create_connection((DST, port), timeout=10)
        sock.sendall(data)
        t = time.time()
        try:
            d = sock.recv(100)
            print("%s after %.1fs" % ("FIN" if d == b"" else "data " + d.hex(), time.time() - t))
        except ConnectionResetError:
            print("reset after %.1fs" % (time.time() - t))
        except socket.timeout:
            print("nothing in 10 s")
    elif mode == "half":
        # half PORT SNI: half a ClientHello, then nothing; what happens.
        port, sni = int(sys.argv[2]), sys.argv[3]
        _, _, _, hello = hello_for(sni)
        t = time.time()  # before the connect: the timeout runs from the accept
        sock = socket.create_connection((DST, port), timeout=10)
        sock.sendall(hello[:len(hello) // 2])
        try:
            d = sock.recv(100)
            print("%s after %.1fs" % ("FIN" if d == b"" else "data " + d.hex(), time.time() - t))
        except ConnectionResetError:
            print("reset after %.1fs" % (time.time() - t))
        except socket.timeout:
            print("nothing in 10 s")
    elif mode == "tls":
        # tls PORT SNI ALPN [CERT KEY]: a terminated TLS client; a line
        # echoed; what it negotiated and its own address, as JSON.
        port, sni, alpn = int(sys.argv[2]), sys.argv[3], sys.argv[4]
        ctx = ssl.create_default_context(cafile=CA)
        ctx.set_alpn_protocols([alpn])
        if len(sys.argv) > 6:
            ctx.load_cert_chain(sys.argv[5], sys.argv[6])
        raw = socket.create_connection((DST, port), timeout=10)
        me = raw.getsockname()  # wrap_socket takes RAW over
        s = ctx.wrap_socket(raw, server_hostname=sni)
        s.sendall(b"ping over tls\n")
        got = b""
        while not got.endswith(b"\n"):
            d = s.recv(100)
            if not d:
                break
            got += d
        print(json.dumps({"addr": me[0], "port": me[1], "cipher": s.cipher()[0],
                          "version": s.version(), "alpn": s.selected_alpn_protocol(),
                          "cn": cn_of(s.getpeercert()), "echo": got.decode()}))
    elif mode == "hello_pp":
        # hello_pp PORT SNI: a ClientHello to a passthrough server whose
        # upstream echoes what follows its PROXY header.
        port, sni = int(sys.argv[2]), sys.argv[3]
        _, _, _, hello = hello_for(sni)
        sock = socket.create_connection((DST, port), timeout=10)
        sock.sendall(hello)
        got = b""
        while len(got) < len(hello):
            d = sock.recv(65536)
            if not d:
                break
            got += d
        print(json.dumps({"addr": sock.getsockname()[0], "port": sock.getsockname()[1],
                          "identical": got == hello, "hello_len": len(hello)}))
    elif mode == "pp_in":
        # pp_in PORT SRC HEADER_KIND DATA: a PROXY header of ours (v1, v2 or
        # bad), then DATA, from source address SRC; what comes back.
        port, src, kind, data = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].encode()
        if kind == "v2":
            addrs = socket.inet_aton("203.0.113.7") + socket.inet_aton("198.51.100.9") + struct.pack(">HH", 5555, 443)
            header = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack(">H", len(addrs)) + addrs
        elif kind == "v1":
            header = b"PROXY TCP4 203.0.113.8 198.51.100.9 6666 443\r\n"
        else:
            header = b"PROXY TCP4 203.0.113.8 198.51.100.9 6666\r\n"  # a port short
        sock = socket.socket()
        sock.settimeout(10)
        sock.bind((src, 0))
        sock.connect((DST, port))
        sock.sendall(header + data)
        got = b""
        how = "FIN"
        try:
            while len(got) < len(data):
                d = sock.recv(65536)
                if not d:
                    break
                got += d
        except ConnectionResetError:
            how = "reset"
        except socket.timeout:
            how = "timeout"
        print(json.dumps({"port": sock.getsockname()[1], "echo": got.decode(errors="replace"),
                          "end": how if len(got) < len(data) else "data"}))


main()
PY
client() { in_ns timeout 60 python3 "$work/client.py" "$@"; }

# pp_expect LOG LINE CLIENT_JSON EXPR...: every Python expression true of
# record r (line LINE of pp_backend's LOG) and c (the client's JSON).
pp_expect() {
    local log=$1 line=$2 c=$3; shift 3
    wait_for 5 lines_ge "$log" "$line" || { echo "no line $line in $log"; return 1; }
    python3 - "$log" "$line" "$c" "$@" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2]) - 1])
c = json.loads(sys.argv[3]) if sys.argv[3] else {}
bad = [e for e in sys.argv[4:] if not eval(e)]
for e in bad:
    print("false: " + e)
if bad:
    print("record: " + json.dumps(r, sort_keys=True))
    print("client: " + json.dumps(c, sort_keys=True))
    sys.exit(1)
print("%d facts" % len(sys.argv[4:]))
PY
}

ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$work/pt.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
    mbufs 32767;
}
stream {
    # The example's shape (config/examples/ssl-passthrough-sni.conf), with
    # a wildcard, a recording echo and a default for what is not TLS.
    map \$ssl_preread_server_name \$backend_name {
        hostnames;
        app1.example.com   app1;
        app2.example.com   app2;
        *.wild.example.com app2;
        rec.example.com    rec;
        default            plain;
    }
    upstream app1  { server 198.18.0.1:9441; }
    upstream app2  { server 198.18.0.1:9442; }
    upstream rec   { server 198.18.0.1:9002; }
    upstream plain { server 198.18.0.1:9003; }
    upstream echo  { server 198.18.0.1:9001; }
    proxy_timeout 30s;

    # Passthrough by SNI.
    server {
        listen 443;
        ssl_preread on;
        proxy_pass \$backend_name;
    }
    # The preread's limits.
    server {
        listen 8444;
        ssl_preread on;
        preread_buffer_size 1k;
        preread_timeout 1s;
        proxy_pass \$backend_name;
    }
    # One ssl listen: term.example.com terminated here, every other name
    # passed through.
    server {
        listen 8443 ssl;
        server_name term.example.com;
        ssl_certificate     $certs/server.crt;
        ssl_certificate_key $certs/server.key;
        proxy_pass echo;
    }
    server {
        listen 8443 ssl default_server;
        ssl_preread on;
        proxy_pass \$backend_name;
    }
    # PROXY protocol towards pp_backend.py: v2 for a terminated client...
    server {
        listen 9443 ssl;
        server_name term.example.com;
        ssl_certificate     $certs/server.crt;
        ssl_certificate_key $certs/server.key;
        ssl_alpn h2 http/1.1;
        proxy_protocol on;
        proxy_protocol_version 2;
        proxy_pass 198.18.0.1:9102;
    }
    # ...with a client certificate...
    server {
        listen 9445 ssl;
        server_name term.example.com;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        ssl_verify_client on;
        ssl_client_certificate $certs/client-ca.crt;
        proxy_protocol on;
        proxy_protocol_version 2;
        proxy_pass 198.18.0.1:9103;
    }
    # ...v1 for plain TCP...
    server {
        listen 9200;
        proxy_protocol on;
        proxy_pass 198.18.0.1:9101;
    }
    # ...and v2 for a passed-through one.
    server {
        listen 9444;
        ssl_preread on;
        proxy_protocol on;
        proxy_protocol_version 2;
        proxy_pass 198.18.0.1:9104;
    }
    # PROXY protocol from clients, believed from 198.18.0.1 only.
    server {
        listen 9300 proxy_protocol;
        set_real_ip_from 198.18.0.1/32;
        proxy_protocol on;
        proxy_pass 198.18.0.1:9105;
    }
}
CONF
ip netns exec "$ns" "$terminusd" -c "$work/pt.conf" -n "pt$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with passthrough, mixed and PROXY protocol servers"
ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" addr add 198.18.0.3/24 dev "$iface"
ip -n "$ns" link set "$iface" up

# Backends: two TLS servers of their own (s_server -rev answers each line
# reversed), echoes (9002 and 9003 log each connection), pp_backend.py.
ip netns exec "$ns" openssl s_server -accept 198.18.0.1:9441 -cert "$certs/rsa.crt" -key "$certs/rsa.key" \
    -rev >"$work/app1.log" 2>&1 </dev/null &
bg+=($!)
ip netns exec "$ns" openssl s_server -accept 198.18.0.1:9442 -cert "$certs/ecdsa.crt" -key "$certs/ecdsa.key" \
    -alpn h2,http/1.1 -rev >"$work/app2.log" 2>&1 </dev/null &
bg+=($!)
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.0.1 9001 9002:log 9003:log >"$work/echo.log" 2>&1 &
bg+=($!)
for p in 9101:v1 9102:v2 9103:v2 9104:v2 9105:any; do
    ip netns exec "$ns" python3 "$here/pp_backend.py" --listen "198.18.0.1:${p%:*}" --require "${p#*:}" \
        --log "$work/pp${p%:*}.log" >"$work/pp${p%:*}.out" 2>&1 &
    bg+=($!)
done
ready=1
for f in app1 app2; do wait_for 10 grep -q ACCEPT "$work/$f.log" || { ready=0; not_ok "s_server $f starts" "$(cat "$work/$f.log")"; }; done
wait_for 10 grep -q ready "$work/echo.log" || { ready=0; not_ok "the echo backends start"; }
for p in 9101 9102 9103 9104 9105; do
    wait_for 10 grep -q listening "$work/pp$p.out" || { ready=0; not_ok "pp_backend $p starts" "$(cat "$work/pp$p.out")"; }
done
[ $ready = 1 ] && ok "the backends start (two s_server, three echoes, five pp_backend)"

# 1. Passthrough by SNI: each backend's own certificate, its own ALPN, data.
tls0=$(tls_sum)
pt0=$(stat proxy passthrough); pd0=$(stat proxy preread_done)
expect() {  # expect NAME PATTERN... -- S_CLIENT ARGS: every pattern in the output
    local name=$1; shift
    local patterns=()
    while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
    shift
    local out
    out=$(s_client "$@")
    for p in "${patterns[@]}"; do
        grep -q -- "$p" <<<"$out" || { not_ok "$name" "$out"; return; }
    done
    ok "$name"
}
expect "passthrough: app1.example.com reaches s_server app1 (its RSA certificate)" \
    "Peer certificate: CN = rsa" "Verification: OK" -- app1.example.com 443
expect "passthrough: app2.example.com reaches s_server app2 (its ECDSA certificate)" \
    "Peer certificate: CN = ecdsa" "Verification: OK" -- app2.example.com 443
expect "passthrough: a hostnames wildcard (x.wild.example.com) reaches app2" \
    "Peer certificate: CN = ecdsa" -- x.wild.example.com 443
out=$(s_client --full app2.example.com 443 -alpn h2)
grep -q "^ALPN protocol: h2" <<<"$out" && ok "passthrough: app2's own ALPN choice reaches the client (h2)" ||
    not_ok "passthrough: app2's own ALPN choice reaches the client" "$(grep -E 'ALPN|CN|error' <<<"$out")"
out=$(s_client --full app1.example.com 443 -alpn h2)
grep -q "^No ALPN negotiated" <<<"$out" && ok "passthrough: app1 (no -alpn) negotiates none, as it would directly" ||
    not_ok "passthrough: app1 negotiates no ALPN" "$(grep -E 'ALPN|CN|error' <<<"$out")"
out=$(client rev 443 app1.example.com 2>&1)
[[ "$out" == "CN=rsa reversed=True"* ]] && ok "passthrough: 3 KB round-trip through app1, reversed by it ($out)" ||
    not_ok "passthrough: data round-trips through app1" "$out"
out=$(client rev 443 app2.example.com 2>&1)
[[ "$out" == "CN=ecdsa reversed=True"* ]] && ok "passthrough: 3 KB round-trip through app2 ($out)" ||
    not_ok "passthrough: data round-trips through app2" "$out"
if wait_for 3 stat_ge proxy passthrough $((pt0 + 7)) && wait_for 3 stat_ge proxy preread_done $((pd0 + 7)); then
    ok "passthrough and preread_done count the 7 sessions ($(stat proxy passthrough), $(stat proxy preread_done))"
else
    not_ok "passthrough and preread_done count the 7 sessions" \
        "passthrough $pt0 -> $(stat proxy passthrough), preread_done $pd0 -> $(stat proxy preread_done)"
fi
tls1=$(tls_sum)
[[ "$tls0" =~ ^[0-9]+$ ]] && [ "$tls1" = "$tls0" ] && ok "passed-through sessions leave every TLS counter alone (sum $tls1)" ||
    not_ok "passed-through sessions leave the TLS counters alone" "sum $tls0 -> $tls1"

# 2. A ClientHello in pieces.
out=$(client trickle 443 app1.example.com 2>&1)
[[ "$out" == "CN=rsa reversed=True"* ]] && ok "a ClientHello one byte per TCP segment is routed by SNI to app1 ($out)" ||
    not_ok "a ClientHello one byte per TCP segment is routed by SNI" "$out"
out=$(client records 443 app2.example.com 2>&1)
[[ "$out" == "CN=ecdsa reversed=True"* ]] &&
    ok "a ClientHello in 4-byte TLS records is routed by SNI to app2, which finishes it ($out)" ||
    not_ok "a ClientHello in 4-byte TLS records is routed by SNI to app2" "$out"
r0=$(count_of "$work/echo.log" "accepted 9002")
out=$(client raw 443 rec.example.com 3 2>&1)
if [[ "$out" == "identical=True"* ]] && wait_for 3 test "$(count_of "$work/echo.log" "accepted 9002")" -gt "$r0"; then
    ok "3-byte records reach the rec.example.com upstream byte for byte ($out)"
else
    not_ok "3-byte records reach the rec.example.com upstream byte for byte" "$out; 9002 accepts $r0 -> $(count_of "$work/echo.log" "accepted 9002")"
fi

# 3. What is not a ClientHello.
nt0=$(stat proxy preread_not_tls); d0=$(count_of "$work/echo.log" "accepted 9003")
out=$(client plain 443 "GET / HTTP/1.0 (not TLS)" 2>&1)
if [[ "$out" == *'"echo": "GET / HTTP/1.0 (not TLS)"'* ]] && wait_for 3 stat_ge proxy preread_not_tls $((nt0 + 1)) &&
    [ "$(count_of "$work/echo.log" "accepted 9003")" -gt "$d0" ]; then
    ok "plain text on the preread port goes to the map's default and counts preread_not_tls"
else
    not_ok "plain text on the preread port goes to the map's default" \
        "$out; preread_not_tls $nt0 -> $(stat proxy preread_not_tls); 9003 accepts $d0 -> $(count_of "$work/echo.log" "accepted 9003")"
fi
bf0=$(stat proxy preread_buffer_full)
out=$(client oversize 8444 2>&1)
[[ "$out" =~ ^reset\ after\ 0\. ]] && wait_for 3 stat_ge proxy preread_buffer_full $((bf0 + 1)) &&
    ok "2 KB of a 16 KB ClientHello past preread_buffer_size 1k: reset at once, preread_buffer_full ($out)" ||
    not_ok "a ClientHello past preread_buffer_size resets the client" "$out; preread_buffer_full $bf0 -> $(stat proxy preread_buffer_full)"
pto0=$(stat proxy preread_timeouts)
# Closed with a reset or a FIN: the bytes were peeked, not read, and a
# close with unread bytes resets, as nginx's MSG_PEEK preread does on
# Linux (a FIN when it reads them into its buffer instead).
out=$(client half 8444 app1.example.com 2>&1)
[[ "$out" =~ ^(FIN|reset)\ after\ [12]\. ]] && wait_for 3 stat_ge proxy preread_timeouts $((pto0 + 1)) &&
    ok "half a ClientHello is closed at preread_timeout 1s and counted ($out)" ||
    not_ok "half a ClientHello is closed at preread_timeout" "$out; preread_timeouts $pto0 -> $(stat proxy preread_timeouts)"

# 4. One ssl port, both ways.
h0=$(stat tls handshakes_full); pt0=$(stat proxy passthrough)
expect "mixed: term.example.com is terminated by terminusd (its own certificate)" \
    "Peer certificate: CN = server" "Protocol version: TLSv1.3" -- term.example.com 8443
wait_for 3 stat_ge tls handshakes_full $((h0 + 1)) && ok "mixed: the terminated handshake is counted" ||
    not_ok "mixed: the terminated handshake is counted" "handshakes_full $h0 -> $(stat tls handshakes_full)"
out=$(client tls 8443 term.example.com http/1.1 2>&1)
[[ "$out" == *'"cn": "server"'*'"echo": "ping over tls\n"'* ]] &&
    ok "mixed: data through the terminated server reaches its echo upstream" || not_ok "mixed: data through the terminated server" "$out"
expect "mixed: app2.example.com on the same port is passed through to s_server app2" \
    "Peer certificate: CN = ecdsa" -- app2.example.com 8443
out=$(client rev 8443 app1.example.com 2>&1)
[[ "$out" == "CN=rsa reversed=True"* ]] && ok "mixed: app1.example.com is passed through, data reversed by app1 ($out)" ||
    not_ok "mixed: app1.example.com is passed through" "$out"
wait_for 3 stat_ge proxy passthrough $((pt0 + 2)); wait_for 3 stat_ge tls handshakes_full $((h0 + 2))
h1=$(stat tls handshakes_full)
[ "$(stat proxy passthrough)" -eq $((pt0 + 2)) ] && [ "$h1" -eq $((h0 + 2)) ] &&
    ok "mixed: 2 passed through, 2 terminated (handshakes_full $h0 -> $h1)" ||
    not_ok "mixed: 2 passed through, 2 terminated" "passthrough $pt0 -> $(stat proxy passthrough), handshakes_full $h0 -> $h1"

# 5. PROXY protocol headers we send, as pp_backend.py reads them.
c=$(client tls 9443 term.example.com h2 2>&1)
check "PROXY v2 for a terminated TLS client: addresses, authority, ALPN, SSL TLV" pp_expect "$work/pp9102.log" 1 "$c" \
    "r['ok'] and r['version'] == 2 and r['command'] == 'PROXY' and r['family'] == 'INET'" \
    "(r['src_addr'], r['src_port']) == (c['addr'], c['port']) == ('198.18.0.1', c['port'])" \
    "(r['dst_addr'], r['dst_port']) == ('198.18.0.2', 9443)" \
    "r['authority'] == 'term.example.com'" "r['alpn'] == 'h2' == c['alpn']" \
    "r['ssl'] and r['ssl']['client_ssl'] and not r['ssl']['cert_conn'] and not r['ssl']['cert_sess']" \
    "r['ssl']['version'] == 'TLSv1.3' == c['version']" "r['ssl']['cipher'] == c['cipher']" \
    "c['echo'] == 'ping over tls\n'"
log=$work/pp9102.log
out=$( (wait_for 10 lines_ge "$log" 2) | in_ns timeout 10 openssl s_client -connect 198.18.0.2:9443 \
    -servername term.example.com -CAfile "$certs/ca.crt" -alpn http/1.1 -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -brief 2>&1)
suite=$(sed -n 's/^Ciphersuite: //p' <<<"$out")
check "PROXY v2: the SSL TLV names the suite s_client negotiated (${suite:-none}) and its ALPN" pp_expect "$log" 2 "" \
    "r['ssl']['cipher'] == '$suite' == 'TLS_CHACHA20_POLY1305_SHA256'" "r['alpn'] == 'http/1.1'"
c=$(client tls 9445 term.example.com h2 "$certs/client.crt" "$certs/client.key" 2>&1)
check "PROXY v2 with a verified client certificate: cert_conn, cert_sess, verify 0, its CN" pp_expect "$work/pp9103.log" 1 "$c" \
    "r['ok'] and r['version'] == 2" "(r['src_addr'], r['src_port']) == ('198.18.0.1', c['port'])" \
    "r['ssl']['cn'] == 'client'" \
    "(r['dst_addr'], r['dst_port']) == ('198.18.0.2', 9445)" \
    "r['ssl']['client_ssl'] and r['ssl']['cert_conn'] and r['ssl']['cert_sess']" "r['ssl']['verify'] == 0" \
    "r['ssl']['version'] == 'TLSv1.3'" "r['ssl']['cipher'] == c['cipher']" "r['alpn'] is None and c['alpn'] is None"
c=$(client plain 9200 "plain through v1" 2>&1)
check "PROXY v1 for plain TCP: the client's and our addresses" pp_expect "$work/pp9101.log" 1 "$c" \
    "r['ok'] and r['version'] == 1 and r['family'] == 'INET'" \
    "(r['src_addr'], r['src_port']) == ('198.18.0.1', c['port'])" "(r['dst_addr'], r['dst_port']) == ('198.18.0.2', 9200)" \
    "r['header_hex'] == ('PROXY TCP4 198.18.0.1 198.18.0.2 %d 9200\r\n' % c['port']).encode().hex()" \
    "c['echo'] == 'plain through v1'"
c=$(client hello_pp 9444 pass.example.com 2>&1)
check "PROXY v2 for a passed-through client: authority is the preread SNI, no SSL TLV, the hello unchanged" \
    pp_expect "$work/pp9104.log" 1 "$c" \
    "r['ok'] and r['version'] == 2" "(r['src_addr'], r['src_port']) == ('198.18.0.1', c['port'])" \
    "(r['dst_addr'], r['dst_port']) == ('198.18.0.2', 9444)" "r['authority'] == 'pass.example.com'" \
    "r['ssl'] is None and r['alpn'] is None" "c['identical']"
wait_for 3 stat_ge proxy proxy_headers_sent 5 && [ "$(stat proxy proxy_headers_sent)" = 5 ] && ok "proxy_headers_sent counts the 5 headers ($(stat proxy proxy_headers_sent))" ||
    not_ok "proxy_headers_sent counts the 5 headers" "$(stat proxy proxy_headers_sent)"

# 6. PROXY protocol headers clients send.
log=$work/pp9105.log
ph0=$(stat proxy proxy_headers)
c=$(client pp_in 9300 198.18.0.1 v2 "through a v2 header" 2>&1)
check "a v2 header from a trusted sender: data relayed, the header we send says 203.0.113.7:5555" pp_expect "$log" 1 "$c" \
    "c['end'] == 'data' and c['echo'] == 'through a v2 header'" "r['ok'] and r['version'] == 1" \
    "(r['src_addr'], r['src_port']) == ('203.0.113.7', 5555)" "(r['dst_addr'], r['dst_port']) == ('198.51.100.9', 443)"
c=$(client pp_in 9300 198.18.0.1 v1 "through a v1 header" 2>&1)
check "a v1 header from a trusted sender: the header we send says 203.0.113.8:6666" pp_expect "$log" 2 "$c" \
    "c['end'] == 'data' and c['echo'] == 'through a v1 header'" \
    "(r['src_addr'], r['src_port']) == ('203.0.113.8', 6666)" "(r['dst_addr'], r['dst_port']) == ('198.51.100.9', 443)"
wait_for 3 stat_ge proxy proxy_headers $((ph0 + 2)) && ok "proxy_headers counts both ($(stat proxy proxy_headers))" ||
    not_ok "proxy_headers counts both" "$ph0 -> $(stat proxy proxy_headers)"
pu0=$(stat proxy proxy_header_untrusted)
c=$(client pp_in 9300 198.18.0.3 v2 "from an untrusted sender" 2>&1)
if [[ "$c" == *'"echo": ""'* && "$c" != *'"end": "data"'* && "$c" != *'"end": "timeout"'* ]] &&
    wait_for 3 stat_ge proxy proxy_header_untrusted $((pu0 + 1)) && [ "$(lines "$log")" = 2 ]; then
    ok "a v2 header from 198.18.0.3 (outside set_real_ip_from) is refused, nothing relayed ($c)"
else
    not_ok "a v2 header from outside set_real_ip_from is refused" \
        "$c; untrusted $pu0 -> $(stat proxy proxy_header_untrusted); upstream lines $(lines "$log")"
fi
pi0=$(stat proxy proxy_header_invalid)
c=$(client pp_in 9300 198.18.0.1 bad "after a malformed header" 2>&1)
if [[ "$c" == *'"echo": ""'* && "$c" != *'"end": "data"'* && "$c" != *'"end": "timeout"'* ]] &&
    wait_for 3 stat_ge proxy proxy_header_invalid $((pi0 + 1)) && [ "$(lines "$log")" = 2 ]; then
    ok "a malformed v1 header is refused and counted proxy_header_invalid ($c)"
else
    not_ok "a malformed v1 header is refused and counted" \
        "$c; invalid $pi0 -> $(stat proxy proxy_header_invalid); upstream lines $(lines "$log")"
fi

kill -TERM "$pid"
if wait_for 20 bash -c "! kill -0 $pid"; then
    wait "$pid"; rc=$?; pid=
    [ "$rc" -eq 0 ] && ok "terminusd stops on SIGTERM" || not_ok "terminusd stops on SIGTERM (status $rc)"
else
    not_ok "terminusd stops on SIGTERM within 20 s"
fi
echo "1..$n"
[ "$fails" -eq 0 ]
