#!/usr/bin/env bash
# Re-encryption to the upstream (proxy_ssl) end to end: terminusd on a DPDK
# TAP device with two lcores, kernel "openssl s_server" upstreams in the
# TAP's namespace (a good one, one with an expired certificate, one that
# asks for a client certificate), Python and s_client clients. Every
# verification failure must be counted by its reason, and 200 client
# connections over both cores must cost one full upstream handshake.
# Output is TAP.
# Usage: reencrypt_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup re terminusd ctl src certs -- "$@"

# stat GROUP NAME [LABEL]: a counter's total across cores.
stat() {
    "$ctl" stats --name "re$id" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)['stats']['$1']
if '${3:-}': d = d['${3:-}']
print(d['$2']['total'])"
}
stat_ge() { [ "$(stat "$1" "$2" "${4:-}")" -ge "$3" ] 2>/dev/null; }  # stat_ge GROUP NAME MIN [LABEL]
# roundtrip PORT TEXT: one plain client connection; prints what came back.
roundtrip() {
    in_ns timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("198.18.0.2", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
try:
    while not out.endswith(b"\n"):
        b = s.recv(4096)
        if not b:
            break
        out += b
except (ConnectionResetError, socket.timeout):
    pass
print(out.decode(errors="replace").strip() or "<nothing>")' "$@"
}

# An expired certificate for the same names, from the test CA.
openssl req -new -newkey rsa:2048 -nodes -keyout "$work/expired.key" -subj "/CN=expired" -out "$work/expired.csr" \
    2>/dev/null
mkdir -p "$work/ca/new"
: > "$work/ca/index.txt"
echo 1000 > "$work/ca/serial"
cat > "$work/ca/ca.cnf" <<CNF
[ ca ]
default_ca = test
[ test ]
dir = $work/ca
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
subjectAltName = DNS:example.com
extendedKeyUsage = serverAuth
CNF
openssl ca -batch -config "$work/ca/ca.cnf" -cert "$certs/ca.crt" -keyfile "$certs/ca.key" -in "$work/expired.csr" \
    -out "$work/expired.crt" -startdate 20200101000000Z -enddate 20200201000000Z >/dev/null 2>&1 ||
    not_ok "an expired certificate can be made" "$(openssl ca -batch -config "$work/ca/ca.cnf" -cert "$certs/ca.crt" -keyfile "$certs/ca.key" -in "$work/expired.csr" -out "$work/expired.crt" -startdate 20200101000000Z -enddate 20200201000000Z 2>&1)"

ip netns add "$ns"
ip -n "$ns" link set lo up
ca="proxy_ssl on; proxy_ssl_trusted_certificate $certs/ca.crt; proxy_ssl_name example.com;"
cat > "$work/re.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
}
stream {
    upstream good { server 198.18.0.1:9443; }
    upstream reuse { server 198.18.0.1:9444; }
    upstream expired { server 198.18.0.1:9445; }
    upstream mtls { server 198.18.0.1:9446; }
    proxy_timeout 20s;
    server { listen 8080; proxy_pass good; $ca }
    server { listen 8081; proxy_pass good; proxy_ssl on; proxy_ssl_trusted_certificate $certs/other-ca.crt; proxy_ssl_name example.com; }
    server { listen 8082; proxy_pass good; proxy_ssl on; proxy_ssl_trusted_certificate $certs/ca.crt; proxy_ssl_name wrong.test; }
    server { listen 8083; proxy_pass expired; $ca }
    server { listen 8084; proxy_pass mtls; $ca }
    server { listen 8085; proxy_pass mtls; $ca proxy_ssl_certificate $certs/client.crt; proxy_ssl_certificate_key $certs/client.key; }
    server { listen 8086; proxy_pass reuse; $ca }
    server { listen 8087; proxy_pass good; proxy_ssl on; proxy_ssl_verify off; }
    server {
        listen 8443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass good;
        $ca
        proxy_ssl_server_name on;
    }
}
CONF
out=$("$terminusd" -t -c "$work/re.conf" 2>&1)
grep -q "re.conf:.*warning:.*proxy_ssl_verify" <<<"$out" && ok "terminusd -t warns where proxy_ssl_verify is turned off" ||
    not_ok "terminusd -t warns where proxy_ssl_verify is turned off" "$out"
ip netns exec "$ns" "$terminusd" -c "$work/re.conf" -n "re$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with nine re-encrypting servers"
ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
s_server() {  # s_server PORT ARGS...: a reversing TLS upstream in the namespace
    local port=$1; shift
    ip netns exec "$ns" openssl s_server -accept "198.18.0.1:$port" -rev -quiet "$@" >"$work/s$port.log" 2>&1 &
    bg+=($!)
}
s_server 9443 -cert "$certs/rsa.crt" -key "$certs/rsa.key"
s_server 9444 -cert "$certs/ecdsa.crt" -key "$certs/ecdsa.key"
s_server 9445 -cert "$work/expired.crt" -key "$work/expired.key"
s_server 9446 -cert "$certs/rsa.crt" -key "$certs/rsa.key" -Verify 1 -CAfile "$certs/client-ca.crt"
for p in 9443 9444 9445 9446; do
    wait_for 10 in_ns bash -c "exec 3<>/dev/tcp/198.18.0.1/$p" || not_ok "the upstream on $p starts"
done

check_rt() {  # check_rt NAME PORT: the reversed line comes back
    local got
    got=$(roundtrip "$2" "hello terminus")
    [ "$got" = "sunimret olleh" ] && ok "$1" || not_ok "$1" "got: $got; $(tail -3 "$work/log")"
}
check_rt "a plain client is re-encrypted to a verified upstream" 8080
wait_for 5 stat_ge upstream_tls handshakes_full 1 && ok "the upstream handshake is counted ($(stat upstream_tls handshakes_full) full)" ||
    not_ok "the upstream handshake is counted"

# refused CHECK PORT COUNTER: nothing comes back, the reason is counted and logged.
refused() {
    local name=$1 port=$2 counter=$3
    local got
    got=$(roundtrip "$port" "should not pass")
    if [ "$got" != "<nothing>" ]; then not_ok "$name" "got: $got"; return; fi
    if ! wait_for 5 stat_ge upstream_tls "failed_$counter" 1; then
        not_ok "$name" "failed_$counter is $(stat upstream_tls "failed_$counter"); $(tail -3 "$work/log")"
        return
    fi
    ok "$name (failed_$counter $(stat upstream_tls "failed_$counter"))"
}
refused "an upstream certificate from another CA is refused" 8081 unknown_ca
refused "an upstream certificate for another name is refused" 8082 name_mismatch
refused "an expired upstream certificate is refused" 8083 expired
refused "an upstream that requires a client certificate refuses us without one" 8084 client_cert_required
grep -q "upstream TLS handshake with 198.18.0.1:9443 failed (unknown_ca" "$work/log" &&
    grep -q "(name_mismatch" "$work/log" && ok "verify failures are logged with their reason" ||
    not_ok "verify failures are logged with their reason" "$(grep upstream "$work/log")"
check_rt "proxy_ssl_certificate satisfies an upstream that requires one" 8085
check_rt "proxy_ssl_verify off accepts any upstream certificate" 8087
out=$(echo "hello tls" | in_ns timeout 10 openssl s_client -connect 198.18.0.2:8443 -servername example.com \
    -CAfile "$certs/ca.crt" -quiet 2>/dev/null | head -1)
[ "$out" = "slt olleh" ] && ok "a TLS client is terminated and re-encrypted" || not_ok "a TLS client is terminated and re-encrypted" "got: $out"

# Upstream session reuse across cores: 200 sequential connections land on
# both lcores; only the first may pay a full handshake.
label="reuse/198.18.0.1:9444"
out=$(in_ns timeout 120 python3 -c '
import socket
bad = 0
ports = set()
for i in range(200):
    s = socket.create_connection(("198.18.0.2", 8086), timeout=5)
    ports.add(s.getsockname()[1] & 1)
    s.sendall(b"abc\n")
    got = b""
    while not got.endswith(b"\n"):
        b = s.recv(100)
        if not b:
            break
        got += b
    bad += got != b"cba\n"
    s.close()
print(bad)' 2>&1)
[ "$out" = "0" ] && ok "200 client connections through proxy_ssl, every reply right" || not_ok "200 client connections through proxy_ssl" "$out"
wait_for 5 stat_ge proxy_ssl_peer handshakes_resumed 199 "$label"
full=$(stat proxy_ssl_peer handshakes_full "$label")
resumed=$(stat proxy_ssl_peer handshakes_resumed "$label")
[ "$full" = 1 ] && [ "$resumed" -ge 199 ] && ok "upstream sessions are reused: $full full and $resumed resumed upstream handshakes" ||
    not_ok "upstream sessions are reused across cores" "full $full, resumed $resumed"
per_core=$("$ctl" stats --name "re$id" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)['stats']['proxy_ssl_peer']['$label']['handshakes_resumed']
per = [v for k, v in sorted(d.items()) if k != 'total']
per = per[0] if len(per) == 1 and isinstance(per[0], list) else per
print(' '.join(str(v) for v in per))")
read -r r0 r1 <<<"$per_core"
[ "${r0:-0}" -gt 0 ] && [ "${r1:-0}" -gt 0 ] && ok "both cores resumed upstream sessions ($r0 and $r1)" ||
    not_ok "both cores resumed upstream sessions" "per core: $per_core"
wait_for 5 stat_ge upstream_tls sessions_received 1 && ok "sessions crossed between the cores ($(stat upstream_tls sessions_received) received)" ||
    not_ok "sessions crossed between the cores"

kill -TERM "$pid"
wait_for 20 bash -c "! kill -0 $pid" && ok "terminusd stops on SIGTERM" || not_ok "terminusd stops on SIGTERM"
pid=
echo "1..$n"
[ "$fails" -eq 0 ]
