#!/usr/bin/env bash
# Configuration reloads under load: terminusd on a DPDK TAP device with two
# lcores, 1,000 connections (800 TCP, 200 TLS) held through an echo backend
# while the configuration is reloaded five times (terminusctl reload and
# SIGHUP in turn) between two files that swap a certificate and add and
# remove a listener; then reloads that must be refused. Every held
# connection's bytes are SHA-256-checked at its end. Output is TAP.
# Usage: reload_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup rld terminusd ctl src certs -- "$@"
sock="$work/control.sock"
tctl() { "$ctl" "$@" --socket "$sock"; }
stat_json() { "$ctl" stats --name "rld$id" --json; }
# The generation every core gives new connections, as the statistics say.
core_generations() {
    stat_json | python3 -c "import json,sys; print(*json.load(sys.stdin)['stats']['config']['generation']['per_core'])"
}
generation() { tctl status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['generation'])"; }
# The SHA-256 fingerprint of the certificate a new TLS client gets on PORT.
fingerprint() {
    in_ns timeout 10 openssl s_client -connect "198.18.0.2:$1" -servername example.com -CAfile "$certs/ca.crt" \
        -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
cert_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
answers() {  # answers PORT TEXT: a new connection gets TEXT from "return"
    in_ns timeout 20 python3 "$here/lab_client.py" read 198.18.0.2 "$1" "$2"
}
refused() { in_ns timeout 20 python3 "$here/lab_client.py" refused 198.18.0.2 "$1"; }
export ctl sock id ns certs here work
export -f tctl stat_json core_generations generation fingerprint in_ns

# config NAME CERT KEY RETURN_PORT: file NAME with the 9443 server on CERT,
# and a "return" server on RETURN_PORT (9100 in one file, 9200 in the other).
config() {
    cat > "$work/$1" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
    mbufs 32767;
}
mgmt { control unix:$sock; }
stream {
    upstream echo { server 198.18.0.1:9001; }
    proxy_timeout 5m;
    server { listen 9000; proxy_pass echo; }
    server {
        listen 9443 ssl;
        ssl_certificate     $2;
        ssl_certificate_key $3;
        proxy_pass echo;
    }
    # The same in both files: its tickets resume across reloads.
    server {
        listen 9444 ssl;
        ssl_certificate     $certs/rsa.crt;
        ssl_certificate_key $certs/rsa.key;
        proxy_pass echo;
    }
    server { listen $4; return "port $4\n"; }
}
CONF
}
config a.conf "$certs/rsa.crt" "$certs/rsa.key" 9100
config b.conf "$certs/ecdsa.crt" "$certs/ecdsa.key" 9200
fp_a=$(cert_fp "$certs/rsa.crt")
fp_b=$(cert_fp "$certs/ecdsa.crt")
cp "$work/a.conf" "$work/terminus.conf"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" "$terminusd" -c "$work/terminus.conf" -n "rld$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"
    exit 1
fi
ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.0.1 9001 >"$work/echo.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/echo.log" || not_ok "the echo backend starts"
check "terminusd starts on generation 1 and says where its control socket is" \
    bash -c "grep -q 'control socket $sock' '$work/log' && [ \"\$(generation)\" = 1 ] && echo generation 1"
[ "$(fingerprint 9443)" = "$fp_a" ] && ok "a new client gets the first certificate" ||
    not_ok "a new client gets the first certificate" "$(fingerprint 9443)"
check "port 9100 answers" answers 9100 'port 9100\n'
# A TLS 1.3 ticket comes after the handshake: s_client stays for it.
in_ns timeout 2 openssl s_client -connect 198.18.0.2:9444 -servername example.com -CAfile "$certs/ca.crt" \
    -sess_out "$work/ticket" -ign_eof <<<"" >"$work/s1" 2>&1

# 1,000 connections held for the whole test.
hold=60
ip netns exec "$ns" python3 "$here/hold_client.py" 198.18.0.2 9000 800 $hold "$work/ready-tcp" >"$work/hold-tcp" 2>&1 &
hold_tcp=$!
bg+=($hold_tcp)
ip netns exec "$ns" python3 "$here/hold_client.py" 198.18.0.2 9443 200 $hold "$work/ready-tls" example.com \
    "$certs/ca.crt" >"$work/hold-tls" 2>&1 &
hold_tls=$!
bg+=($hold_tls)
resets() {
    stat_json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['proxy']['resets_propagated']['total'])"
}
if wait_for 120 test -e "$work/ready-tcp" -a -e "$work/ready-tls"; then
    resets_before=$(resets)
    ok "1,000 connections are open ($(cat "$work/ready-tcp") TCP, $(cat "$work/ready-tls") TLS)"
else
    not_ok "1,000 connections are open" "$(cat "$work/hold-tcp" "$work/hold-tls")"
fi

# Five reloads, alternating files and ways.
for k in 1 2 3 4 5; do
    if [ $((k % 2)) = 1 ]; then file=b.conf fp=$fp_b port=9200 gone=9100; else file=a.conf fp=$fp_a port=9100 gone=9200; fi
    cp "$work/$file" "$work/terminus.conf"
    want=$((k + 1))
    if [ $((k % 2)) = 1 ]; then
        out=$(tctl reload 2>&1) && ok "reload $k (terminusctl): $out" || not_ok "reload $k (terminusctl)" "$out"
    else
        kill -HUP "$pid"
        wait_for 10 bash -c "[ \"\$(generation)\" = $want ]" && ok "reload $k (SIGHUP)" ||
            not_ok "reload $k (SIGHUP)" "$(tail -5 "$work/log")"
    fi
    wait_for 5 bash -c "[ \"\$(core_generations)\" = '$want $want' ]" &&
        ok "reload $k: generation $want on both cores ($(core_generations))" ||
        not_ok "reload $k: generation $want on both cores" "$(core_generations)"
    got=$(fingerprint 9443)
    [ "$got" = "$fp" ] && ok "reload $k: a new client gets $file's certificate" ||
        not_ok "reload $k: a new client gets $file's certificate" "got $got, want $fp"
    check "reload $k: the added port $port answers" answers $port "port $port\\n"
    check "reload $k: the removed port $gone is refused" refused $gone
done
resume() {  # resume: how a client with the saved ticket comes back (Reused or New)
    in_ns timeout 10 openssl s_client -connect 198.18.0.2:9444 -servername example.com -CAfile "$certs/ca.crt" \
        -sess_in "$work/ticket" </dev/null 2>&1 | grep -oE '^(Reused|New)' | head -1
}
[ "$(resume)" = Reused ] && ok "a ticket issued before the reloads still resumes" ||
    not_ok "a ticket issued before the reloads still resumes" "$(resume)"
check "the held sessions are seen on their generation (terminusctl sessions)" bash -c \
    "tctl sessions --top 5 --json | python3 -c \"import json,sys; j=json.load(sys.stdin); t=j['top']
print(j['active'], 'sessions,', j['by_stage']['relay'], 'relaying, the largest on generation', t[0]['generation'])
sys.exit(not (j['active'] >= 1000 and len(t) == 5 and all(x['generation'] == 1 for x in t) and j['generation'] == 6))\""
check "terminusctl upstreams shows the echo server and its connections" bash -c \
    "tctl upstreams --json | python3 -c \"import json,sys; s=json.load(sys.stdin)['upstreams'][0]['servers'][0]
print(s['server'], s['state'], s['conns'], 'connections'); sys.exit(not (s['state'] == 'up' and s['conns'] >= 1000))\""
check "terminusctl certs shows what generation 6 serves" bash -c \
    "tctl certs --json | python3 -c \"import json,sys; c=json.load(sys.stdin)['certs']
print([(x['path'].split('/')[-1], x['key'], x['days_left']) for x in c])
sys.exit(not (c[0]['path'].endswith('ecdsa.crt') and c[0]['key'] == 'EC 256' and 'example.com' in c[0]['names']))\""
# Ticket-key rotation: the previous key still decrypts, the one before not.
tctl tickets rotate >/dev/null
[ "$(resume)" = Reused ] && ok "after one ticket-key rotation the old ticket still resumes" ||
    not_ok "after one ticket-key rotation the old ticket still resumes" "$(resume)"
tctl tickets rotate >/dev/null
[ "$(resume)" = New ] && ok "after two rotations it no longer does (a full handshake)" ||
    not_ok "after two rotations it no longer does" "$(resume)"

# Refused reloads: the running generation (6, file b) stays and serves.
bad() {  # bad NAME EXPECTED_REGEX: file terminus.conf is refused with it
    local out rc
    out=$(tctl reload 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -Eq "$2" <<<"$out" && [ "$(generation)" = 6 ] && [ "$(fingerprint 9443)" = "$fp_b" ]; then
        ok "$1 is refused and generation 6 still serves ($(grep -E "$2" <<<"$out" | head -1))"
    else
        not_ok "$1 is refused and generation 6 still serves" "rc $rc: $out"
    fi
}
sed 's/proxy_pass echo;$/proxy_pass echo/' "$work/b.conf" > "$work/terminus.conf"
bad "a syntax error" "terminus.conf:[0-9]+:[0-9]+: error"
sed "s|ssl_certificate_key $certs/ecdsa.key;|ssl_certificate_key $certs/rsa.key;|" "$work/b.conf" > "$work/terminus.conf"
bad "a key that does not match its certificate" "refused|key"
sed "s|lcores 0-1;|lcores 0;|" "$work/b.conf" > "$work/terminus.conf"
bad "a change of lcores" "terminus.conf:[0-9]+:[0-9]+: error: \"lcores\" changed: a reload cannot apply it"
cp "$work/b.conf" "$work/terminus.conf"
check "terminusctl check says a good file would load, and applies nothing" \
    bash -c "tctl check && [ \"\$(generation)\" = 6 ]"
sed 's|server { listen 9000; proxy_pass echo; }|server { listen 9000; proxy_pass echo; proxy_timeout forever; }|' \
    "$work/b.conf" > "$work/bad.conf"
check "terminusctl check FILE names the file and line of the error" \
    bash -c "out=\$(tctl check '$work/bad.conf' 2>&1); rc=\$?; grep -E 'bad.conf:[0-9]+:[0-9]+: error' <<<\"\$out\" && [ \$rc -ne 0 ]"

if wait "$hold_tcp"; then ok "TCP: $(head -1 "$work/hold-tcp")"; else not_ok "TCP connections survive the reloads" "$(cat "$work/hold-tcp")"; fi
if wait "$hold_tls"; then ok "TLS: $(head -1 "$work/hold-tls")"; else not_ok "TLS connections survive the reloads" "$(cat "$work/hold-tls")"; fi
resets_after=$(resets)
[ "$resets_after" = "${resets_before:-x}" ] && ok "no session was reset while the connections were held (resets propagated: $resets_after in all)" ||
    not_ok "no session was reset while the connections were held" "resets propagated: ${resets_before:-?} before, $resets_after after"
check "the retired generations are freed once their sessions ended" \
    wait_for 20 bash -c "tctl status --json | python3 -c \"import json,sys; g=json.load(sys.stdin)['generations']; sys.exit(len(g) != 1)\" && grep -c 'freed: no core serves it' '$work/log'"

kill -TERM "$pid"
wait "$pid" 2>/dev/null
rc=$?
pid=
[ $rc -eq 0 ] && [ ! -e "$sock" ] && ok "terminusd stops with status 0 and removes its control socket" ||
    not_ok "terminusd stops with status 0 and removes its control socket" "status $rc; $(tail -5 "$work/log")"
echo "1..$n"
[ $fails -eq 0 ]
