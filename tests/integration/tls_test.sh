#!/usr/bin/env bash
# TLS termination end to end: terminusd on a DPDK TAP device with two
# lcores, openssl s_client, curl and Python clients in the TAP's namespace,
# an echo backend and an HTTP backend. Output is TAP.
# Usage: tls_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup tls terminusd ctl src certs -- "$@"
export CERTS="$certs"
client() { in_ns timeout 300 python3 "$here/tls_client.py" "$@"; }
# s_client [--full] NAME PORT [OPTIONS...]: one handshake, its brief
# summary on stdout (--full: everything s_client prints, ALPN included).
s_client() {
    local brief=-brief
    [ "$1" = --full ] && { brief=; shift; }
    local sni=$1 port=$2; shift 2
    in_ns timeout 10 openssl s_client -connect "198.18.0.2:$port" -servername "$sni" -CAfile "$certs/ca.crt" \
        -verify_return_error $brief "$@" </dev/null 2>&1
}
stat() {  # stat GROUP NAME: the total of a counter from terminusctl
    "$ctl" stats --name "tls$id" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['$1']['$2']['total'])"
}
stat_ge() { [ "$(stat "$1" "$2")" -ge "$3" ]; }  # for wait_for: counters publish 10 times a second

ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$work/tls.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
    mbufs 32767;
}
stream {
    upstream echo { server 198.18.0.1:9001; }
    upstream web { server 198.18.0.1:9080; }
    ssl_session_cache shared:SSL:10m;
    proxy_timeout 30s;

    # SNI over three names, a wildcard and the default server.
    server {
        listen 443 ssl;
        server_name example.com;
        ssl_certificate     $certs/rsa.crt;
        ssl_certificate_key $certs/rsa.key;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        ssl_alpn h2 http/1.1;
        proxy_pass echo;
    }
    server {
        listen 443 ssl;
        server_name api.example.com;
        ssl_certificate     $certs/rsa.crt;
        ssl_certificate_key $certs/rsa.key;
        proxy_pass echo;
    }
    server {
        listen 443 ssl;
        server_name *.example.com;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass echo;
    }
    server {
        listen 443 ssl default_server;
        server_name default.test;
        ssl_certificate     $certs/server.crt;
        ssl_certificate_key $certs/encrypted.key;
        ssl_password_file   $certs/password.txt;
        proxy_pass echo;
    }
    # Unknown names are refused outright.
    server {
        listen 444 ssl;
        server_name example.com;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass echo;
    }
    server {
        listen 444 ssl default_server;
        ssl_reject_handshake on;
        proxy_pass echo;
    }
    # Client certificates.
    server {
        listen 445 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        ssl_verify_client on;
        ssl_client_certificate $certs/client-ca.crt;
        proxy_pass echo;
    }
    # A short handshake timeout and no session cache ("none" would inherit
    # the shared zone, as in nginx; the handshake storm below must leave
    # memory as it found it), and an HTTP backend for curl.
    server {
        listen 446 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        ssl_handshake_timeout 2s;
        ssl_session_cache off;
        proxy_pass echo;
    }
    # Resumption from the session cache alone (no tickets).
    server {
        listen 447 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        ssl_session_tickets off;
        proxy_pass echo;
    }
    server {
        listen 8443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass web;
    }
    # return over TLS: the value, a close_notify, a FIN.
    server {
        listen 448 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        return "sni=\$ssl_server_name\n";
    }
}
CONF
ip netns exec "$ns" "$terminusd" -c "$work/tls.conf" -n "tls$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with ten TLS servers on six addresses"
ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.0.1 9001 >"$work/echo.log" 2>&1 &
bg+=($!)
mkdir -p "$work/www"
head -c 100000000 /dev/urandom > "$work/www/100m.bin"
want=$(sha256sum "$work/www/100m.bin" | cut -d' ' -f1)
(cd "$work/www" && exec ip netns exec "$ns" python3 -m http.server 9080 --bind 198.18.0.1) >"$work/http.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/echo.log" || not_ok "the echo backend starts"
wait_for 10 in_ns bash -c "exec 3<>/dev/tcp/198.18.0.1/9080" || not_ok "the HTTP backend starts"

# Handshakes: protocols, certificates, cipher families, SNI, ALPN.
expect() {  # expect NAME PATTERN... -- S_CLIENT ARGS: every pattern in the summary
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
expect "TLS 1.3 with the ECDSA certificate" "Protocol version: TLSv1.3" "Peer certificate: CN = ecdsa" \
    "Verification: OK" -- example.com 443 -tls1_3
expect "TLS 1.3 with the RSA certificate for an RSA-only client" "Peer certificate: CN = rsa" \
    -- example.com 443 -tls1_3 -sigalgs rsa_pss_rsae_sha256
for suite in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256; do
    expect "TLS 1.3 $suite" "Ciphersuite: $suite" -- example.com 443 -tls1_3 -ciphersuites "$suite"
done
for cipher in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 \
              ECDHE-RSA-CHACHA20-POLY1305; do
    expect "TLS 1.2 $cipher" "Protocol version: TLSv1.2" "Ciphersuite: $cipher" -- example.com 443 -tls1_2 -cipher "$cipher"
done
expect "SNI api.example.com picks its own server block" "Peer certificate: CN = rsa" -- api.example.com 443
expect "SNI app.example.com picks *.example.com" "Peer certificate: CN = ecdsa" -- app.example.com 443
expect "an unknown name gets the default server (its key behind ssl_password_file)" \
    "Peer certificate: CN = server" -- unknown.test 443
out=$(s_client --full example.com 443 -alpn http/1.1,h2)
grep -q "ALPN protocol: h2" <<<"$out" && ok "ALPN picks h2 (the server's preference)" || not_ok "ALPN picks h2" "$out"
out=$(s_client example.com 443 -tls1_1 -cipher 'DEFAULT@SECLEVEL=0')
grep -q "Protocol version" <<<"$out" && not_ok "TLS 1.1 is refused by default" "$out" || ok "TLS 1.1 is refused by default"
out=$(s_client example.com 443 -tls1 -cipher 'DEFAULT@SECLEVEL=0')
grep -q "Protocol version" <<<"$out" && not_ok "TLS 1.0 is refused by default" "$out" || ok "TLS 1.0 is refused by default"
out=$(s_client nobody.test 444)
grep -q "unrecognized name" <<<"$out" && ok "ssl_reject_handshake refuses an unknown name with unrecognized_name" ||
    not_ok "ssl_reject_handshake refuses an unknown name" "$out"
expect "ssl_reject_handshake lets the known name through" "Protocol version: TLSv1.3" -- example.com 444

# return over TLS: the value with its variables, then a close_notify.
check "return over TLS sends its value and a close_notify" \
    in_ns timeout 10 python3 "$here/lab_client.py" read 198.18.0.2 448 'sni=example.com\n' example.com "$certs/ca.crt"

# Data through TLS, both ways, over both cores.
check "64 TLS connections echo 256 KB each, SHA-256 verified" client echo 198.18.0.2 443 example.com 64 262144 16
check "TLS 1.2 connections echo too" client echo 198.18.0.2 443 example.com 8 65536 4 --tls12

# Resumption.
check "200 TLS 1.3 reconnections over 2 lcores resume from tickets" client resume 198.18.0.2 443 example.com 200
check "200 TLS 1.2 reconnections resume from tickets" client resume 198.18.0.2 443 example.com 200 --tls12
check "200 TLS 1.3 reconnections over 2 lcores resume from the shared session cache" \
    client resume 198.18.0.2 447 example.com 200
check "200 TLS 1.2 reconnections resume from the shared session cache" client resume 198.18.0.2 447 example.com 200 --tls12
wait_for 3 stat_ge tls handshakes_resumed_cache 400 && wait_for 3 stat_ge tls sessions_received 2 &&
    ok "cache resumptions and exchanged sessions are counted ($(stat tls handshakes_resumed_cache) resumed, $(stat tls sessions_received) received)" ||
    not_ok "cache resumptions are counted" "$(stat tls handshakes_resumed_cache) $(stat tls sessions_received)"
in_ns timeout 10 openssl s_client -connect 198.18.0.2:443 -servername example.com -CAfile "$certs/ca.crt" \
    -sess_out "$work/sess.pem" -ign_eof </dev/null >/dev/null 2>&1 <<<"" 
out=$(in_ns timeout 10 openssl s_client -connect 198.18.0.2:443 -servername example.com -CAfile "$certs/ca.crt" \
    -sess_in "$work/sess.pem" </dev/null 2>&1)
grep -q "^Reused, TLSv1.3" <<<"$out" && ok "s_client -sess_out/-sess_in resumes" ||
    not_ok "s_client -sess_out/-sess_in resumes" "$(grep -E 'New|Reused' <<<"$out")"
wait_for 3 stat_ge tls handshakes_resumed_ticket 401 &&
    ok "resumed handshakes are counted ($(stat tls handshakes_resumed_ticket) by ticket)" ||
    not_ok "resumed handshakes are counted (got '$(stat tls handshakes_resumed_ticket)')"

# Client certificates.
check "mTLS: a client certificate from the right CA is accepted" client echo 198.18.0.2 445 example.com 2 1000 1 \
    --cert "$certs/client.crt" --key "$certs/client.key"
client echo 198.18.0.2 445 example.com 1 1000 1 >/dev/null 2>&1 &&
    not_ok "mTLS: no certificate is refused" || ok "mTLS: no certificate is refused"
client echo 198.18.0.2 445 example.com 1 1000 1 --cert "$certs/other-client.crt" --key "$certs/other-client.key" \
    >/dev/null 2>&1 && not_ok "mTLS: a certificate from another CA is refused" ||
    ok "mTLS: a certificate from another CA is refused"
wait_for 3 stat_ge tls failed_no_client_cert 1 && wait_for 3 stat_ge tls failed_bad_client_cert 1 &&
    ok "mTLS refusals are counted by reason" || not_ok "mTLS refusals are counted by reason"

# Hostile clients.
start=$(date +%s.%N)
out=$(in_ns timeout 10 python3 - <<'PY'
import socket, ssl, time
ctx = ssl.create_default_context()
s = socket.create_connection(("198.18.0.2", 446))
inc = ssl.MemoryBIO(); outb = ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, outb, server_hostname="example.com")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outb.read()
s.sendall(hello[: len(hello) // 2])   # half a ClientHello, then nothing
t = time.time()
s.settimeout(8)
try:
    d = s.recv(100)
    print("closed after %.1fs (%s)" % (time.time() - t, "FIN" if d == b"" else repr(d[:8])))
except ConnectionResetError:
    print("reset after %.1fs" % (time.time() - t))
PY
)
grep -Eq "closed after [12]\.[0-9]s \(FIN\)" <<<"$out" && ok "half a ClientHello is closed at ssl_handshake_timeout ($out)" ||
    not_ok "half a ClientHello is closed at ssl_handshake_timeout" "$out"
wait_for 3 stat_ge tls failed_timeout 1 && ok "the handshake timeout is counted" ||
    not_ok "the handshake timeout is counted"
out=$(in_ns timeout 10 python3 -c '
import socket
s = socket.create_connection(("198.18.0.2", 446)); s.sendall(b"\x16\x03\x01\x00\x32" + b"\xff" * 50)
s.settimeout(5); d = s.recv(100); print(d.hex() or "EOF")')
[[ "$out" == 150303000202* ]] && ok "a garbage ClientHello gets a fatal alert and a close ($out)" ||
    not_ok "a garbage ClientHello gets a fatal alert and a close" "$out"
out=$(in_ns timeout 10 python3 -c '
import socket
s = socket.create_connection(("198.18.0.2", 446)); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(5); d = s.recv(100); print(d.hex() or "EOF")')
[ "$out" = EOF ] && ok "plain HTTP to a TLS port is closed (OpenSSL sends no alert for it)" ||
    not_ok "plain HTTP to a TLS port is closed" "$out"
out=$(in_ns timeout 10 python3 -c '
import socket, struct
s = socket.create_connection(("198.18.0.2", 446))
n = 16384 + 2049
s.sendall(b"\x16\x03\x01" + struct.pack(">H", n) + b"\0" * n)
s.settimeout(5); d = s.recv(100); print(d.hex() or "EOF")')
[[ "$out" == 15*16 ]] && ok "an oversized record gets record_overflow ($out)" || not_ok "an oversized record gets record_overflow" "$out"
wait_for 3 stat_ge tls failed_malformed 3 && ok "malformed input is counted ($(stat tls failed_malformed))" ||
    not_ok "malformed input is counted (got $(stat tls failed_malformed))"

# curl through Terminus to an HTTP backend, 100 MB checked.
fetch() {
    in_ns timeout 300 curl -s --cacert "$certs/ca.crt" --resolve example.com:8443:198.18.0.2 \
        https://example.com:8443/100m.bin | sha256sum | cut -d' ' -f1
}
got=$(fetch)
[ "$got" = "$want" ] && ok "curl fetches 100 MB through TLS, SHA-256 verified" ||
    not_ok "curl fetches 100 MB through TLS" "got $got want $want"
in_ns nft -f - <<NFT
table netdev loss {
    chain ingress {
        type filter hook ingress device "$iface" priority 0; policy accept;
        numgen random mod 100 < 1 drop
    }
}
NFT
got=$(fetch)
[ "$got" = "$want" ] && ok "curl fetches 100 MB through TLS with 1% loss, SHA-256 verified" ||
    not_ok "curl fetches 100 MB through TLS with 1% loss" "got $got want $want"
in_ns nft delete table netdev loss

# 5,000 sequential full handshakes: nothing grows (under 2 MB of RSS, about
# 400 bytes a handshake; 10,000 took a minute of the suite for the same bound).
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
mbufs() { stat memory mbufs_in_use; }
storm() {
    in_ns timeout 600 python3 - "$1" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ok = 0
for _ in range(int(sys.argv[1])):
    s = ctx.wrap_socket(socket.create_connection(("198.18.0.2", 446)), server_hostname="example.com")
    ok += 1
    s.close()
print(ok)
PY
}
storm 1000 >/dev/null
sleep 1
r1=$(rss); m1=$(mbufs)
done_n=$(storm 5000)
sleep 2
r2=$(rss); m2=$(mbufs)
if [ "$done_n" = 5000 ] && [ $((r2 - r1)) -lt 2048 ] && [ "$m2" -le $((m1 + 64)) ]; then
    ok "5,000 sequential handshakes: RSS $r1 -> $r2 kB, mbufs $m1 -> $m2"
else
    not_ok "5,000 sequential handshakes leave memory flat" "done $done_n, RSS $r1 -> $r2 kB, mbufs $m1 -> $m2"
fi

# Failures per server block: the block at the line of "listen 446 ssl"'s server.
line=$(($(grep -n "listen 446 ssl" "$work/tls.conf" | cut -d: -f1) - 1))
per=$("$ctl" stats --name "tls$id" --json | python3 -c "import json,sys; d=json.load(sys.stdin)['stats']['tls_server']; print(d['$work/tls.conf:$line']['failed_timeout']['total'], d['$work/tls.conf:$line']['failed_malformed']['total'])" 2>&1)
[ "$per" = "1 3" ] && ok "failures are counted per server block (tls.conf:$line: timeout 1, malformed 3)" ||
    not_ok "failures are counted per server block" "$per"
# Read whole first: with pipefail, grep -q quitting at its match can make
# terminusctl die of SIGPIPE and the pipeline fail.
prom=$("$ctl" stats --name "tls$id" --prometheus)
grep -q "^terminus_tls_server_failed_timeout_total{core=\"[01]\",server=\"$work/tls.conf:$line\"} 1$" <<<"$prom" &&
    ok "terminusctl stats --prometheus labels them server=\"FILE:LINE\"" ||
    not_ok "terminusctl stats --prometheus labels them by server" "$(grep failed_timeout <<<"$prom")"
bad=$(stat tls bad_records)
[ "$bad" = 0 ] && ok "clients that close without close_notify are not bad records" ||
    not_ok "clients that close without close_notify are not bad records (got $bad)"
full=$(stat tls handshakes_full)
[ "${full:-0}" -ge 6000 ] && ok "terminusctl stats shows the TLS counters ($full full handshakes)" ||
    not_ok "terminusctl stats shows the TLS counters (got '$full')"

# Record sizes: a 1 MB response to a client slower than the upstream (a
# small receive window read at a steady pace, as a client across the
# internet is) leaves in 16 KB records after the first few small ones, not
# in one record per TCP segment received from the upstream (about 725).
head -c 1048576 /dev/urandom > "$work/www/1m.bin"
want1m=$(sha256sum "$work/www/1m.bin" | cut -d' ' -f1)
r0=$(stat tls records_encrypted); b0=$(stat tls bytes_encrypted)
got=$(in_ns timeout 60 python3 - "$certs/ca.crt" <<'PY'
import hashlib, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
raw.connect(("198.18.0.2", 8443))
s = ctx.wrap_socket(raw, server_hostname="example.com")
s.sendall(b"GET /1m.bin HTTP/1.0\r\nHost: example.com\r\n\r\n")
data = b""
while True:
    d = s.recv(16384)
    if not d:
        break
    data += d
    time.sleep(0.002)
print(hashlib.sha256(data.partition(b"\r\n\r\n")[2]).hexdigest())
PY
)
if [ "$got" = "$want1m" ] && wait_for 3 stat_ge tls bytes_encrypted $((b0 + 1048576)); then
    records=$(($(stat tls records_encrypted) - r0)); bytes=$(($(stat tls bytes_encrypted) - b0))
    [ "$records" -le 100 ] &&
        ok "a 1 MB response to a slow reader leaves in $records records ($((bytes / records)) bytes on average)" ||
        not_ok "a 1 MB response to a slow reader leaves in 16 KB records" "$records records for $bytes bytes"
else
    not_ok "a 1 MB response to a slow reader arrives whole" "got $got want $want1m"
fi
kill -TERM "$pid"
if wait_for 20 bash -c "! kill -0 $pid"; then
    wait "$pid"; rc=$?; pid=
    [ "$rc" -eq 0 ] && ok "terminusd stops on SIGTERM" || not_ok "terminusd stops on SIGTERM (status $rc)"
else
    not_ok "terminusd stops on SIGTERM within 20 s"
fi
grep -q "TLS handshake failed (timeout) from 198.18.0.1" "$work/log" &&
    ok "failures are logged with the client address" || not_ok "failures are logged with the client address" "$(grep TLS "$work/log" | head)"
echo "1..$n"
[ "$fails" -eq 0 ]
