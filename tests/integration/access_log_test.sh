#!/usr/bin/env bash
# The access log and the error log end to end: terminusd on a DPDK TAP
# device in a private namespace, terminus-mgmtd writing its access logs.
# Sessions of every kind (plain, TLS terminated and resumed, passed
# through, denied, return, no upstream, a failed handshake, access_log
# off) are parsed field by field in two formats (one escape=json) and an
# if= log, against what each client did; logrotate's SIGUSR1 to both
# processes; mgmtd stopped (terminusd serves on, drops are counted and
# exactly the rest is written when mgmtd is back); a reload that changes
# log_format (a session held across it keeps the old one); error_log
# levels in files, main and per server. Output is TAP.
# Usage: access_log_test.sh TERMINUSD TERMINUSCTL TERMINUS_MGMTD SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup al terminusd ctl mgmtd src certs -- "$@"
mpid=
hold=
extra_cleanup() {
    [ -n "$hold" ] && { kill -KILL "$hold" 2>/dev/null; wait "$hold" 2>/dev/null; }
    [ -n "$mpid" ] && { kill -KILL "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; }
    if [ -n "${KEEP_LOG:-}" ]; then
        mkdir -p /tmp/access_log_test && cp -r "$work"/. /tmp/access_log_test/
    fi
}

sessions() { in_ns timeout 300 python3 "$here/al_sessions.py" "$@"; }
counter() {  # counter GROUP NAME: the total terminusctl shows
    "$ctl" stats --name "$name" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['$1']['$2']['total'])"
}
lines() { [ -f "$1" ] && grep -c . "$1" || echo 0; }

ip netns add "$ns"
ip -n "$ns" link set lo up
write_conf() {  # write_conf PREFIX QUIET_LEVEL
    cat > "$work/al.conf" <<CONF
error_log $work/error.log info;
dataplane {
    port net_tap0 iface=$iface address=198.18.21.2/24 gateway=198.18.21.1;
    lcores 0-1;
    shutdown_timeout 2s;
}
mgmt {
    control unix:$work/control.sock;
    access_log_buffer 64k;
}
stream {
    proxy_half_close on;
    log_format main '$1\$remote_addr:\$remote_port \$server_addr:\$server_port [\$time_local] \$protocol \$status '
                    '\$bytes_sent \$bytes_received \$session_time "\$upstream_addr" "\$upstream_bytes_sent" '
                    '"\$upstream_bytes_received" "\$upstream_connect_time" "\$ssl_protocol" "\$ssl_cipher" '
                    '"\$ssl_server_name" "\$ssl_session_reused" "\$ssl_preread_server_name" \$connection \$msec';
    log_format js escape=json '{"remote_addr":"\$remote_addr","remote_port":"\$remote_port",'
                    '"server_port":"\$server_port","status":"\$status","bytes_sent":"\$bytes_sent",'
                    '"sni":"\$ssl_server_name","preread":"\$ssl_preread_server_name","protocol":"\$ssl_protocol",'
                    '"reused":"\$ssl_session_reused","time":"\$time_iso8601","msec":"\$msec",'
                    '"upstream":"\$upstream_addr","tag":"\$tag"}';
    map \$server_port \$tag { 80 plain; 443 tls; 8443 pass; default other; }
    map \$remote_port \$odd { ~[13579]\$ 1; default 0; }
    upstream echo { server 198.18.21.1:9001; }
    upstream tlsback { server 198.18.21.1:9443; }
    access_log $work/main.log main;
    access_log $work/all.json js;
    server {
        listen 80;
        proxy_pass echo;
        access_log $work/main.log main;
        access_log $work/all.json js;
        access_log $work/odd.log main if=\$odd;
    }
    server {
        listen 443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass echo;
    }
    server {
        listen 4443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        error_log $work/quiet.log $2;
        proxy_pass echo;
    }
    server { listen 8443; ssl_preread on; proxy_pass tlsback; }
    server { listen 81; deny all; proxy_pass echo; }
    server { listen 82; return "hello\n"; }
    server { listen 83; proxy_pass 198.18.21.1:9009; }
    server { listen 84; proxy_pass echo; access_log off; }
}
CONF
}
write_conf "" error

# What terminusd refuses at start: a variable the log cannot write, gzip.
sed "s/\\\$msec';/\$msec \$ssl_client_s_dn';/" "$work/al.conf" > "$work/bad.conf"
out=$("$terminusd" -c "$work/bad.conf" -n "$name" 2>&1); rc=$?
[ "$rc" -ne 0 ] && grep -q "al.conf\|bad.conf" <<<"$out" && grep -q 'cannot write "\$ssl_client_s_dn"' <<<"$out" &&
    ok "terminusd refuses a log_format variable the access log cannot write, by name and line" ||
    not_ok "terminusd refuses a log_format variable the access log cannot write (status $rc)" "$out"

ip netns exec "$ns" "$terminusd" -c "$work/al.conf" -n "$name" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "running; SIGTERM" "$work/error.log"; then
    not_ok "terminusd starts with error_log in a file" "$(cat "$work/log" "$work/error.log" 2>/dev/null)"
    echo "1..$n"; exit 1
fi
grep -q "\[notice\] $pid#0: access log: /dev/shm/terminus-$name.log, 127 records of 512 bytes per core" "$work/error.log" &&
    ok "terminusd starts, its error log in the file with nginx's time, level and pid" ||
    not_ok "terminusd starts, its error log in the file with nginx's time, level and pid" "$(cat "$work/error.log")"
ip -n "$ns" addr add 198.18.21.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.21.1 9001 >"$work/backend.log" 2>&1 &
bg+=($!)
ip netns exec "$ns" python3 "$here/al_sessions.py" tlsecho 198.18.21.1 9443 "$certs/rsa.crt" "$certs/rsa.key" \
    >"$work/tlsecho.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/backend.log" && wait_for 10 grep -q ready "$work/tlsecho.log" ||
    not_ok "backends start" "$(cat "$work/backend.log" "$work/tlsecho.log")"

start_mgmtd() {
    ip netns exec "$ns" "$mgmtd" -c "$work/al.conf" -n "$name" >>"$work/mgmtd.log" 2>&1 &
    mpid=$!
    wait_for 10 grep -q "access log: reading /dev/shm/terminus-$name.log" "$work/error.log"
}
start_mgmtd && ok "terminus-mgmtd attaches to terminusd's rings" ||
    not_ok "terminus-mgmtd attaches to terminusd's rings" "$(cat "$work/mgmtd.log" "$work/error.log")"

# Every kind of session, then every line checked against the clients.
check "sessions of every kind" sessions run 198.18.21.2 "$work/did.json"
want=$(python3 -c "import json; print(sum(1 for d in json.load(open('$work/did.json')) if d['kind'] != 'off'))")
wait_for 10 test "$(lines "$work/main.log")" -ge "$want" && wait_for 10 test "$(lines "$work/all.json")" -ge "$want"
check "every field of every line, in both formats, and if= by the map" \
    python3 "$here/al_sessions.py" check "$work/did.json" "$work/main.log" "$work/all.json" "$work/odd.log"
[ "$(lines "$work/main.log")" -eq "$want" ] && ok "one line per session, none for access_log off" ||
    not_ok "one line per session, none for access_log off ($(lines "$work/main.log") for $want)" "$(cat "$work/main.log")"
perm=$(stat -c %a "$work/main.log")
[ "$perm" = 640 ] && ok "access log files are created 0640" || not_ok "access log files are created 0640 ($perm)"

# error_log levels: the main log (info) has the failed handshake on 443;
# the server on 4443 has its own, at error, which leaves it out.
port443=$(python3 -c "import json; print([d['port'] for d in json.load(open('$work/did.json')) if d['kind'] == 'tls_failed'][0])")
port4443=$(python3 -c "import json; print([d['port'] for d in json.load(open('$work/did.json')) if d['kind'] == 'tls_failed_quiet'][0])")
grep -q "\[info\] $pid#0: TLS handshake failed (malformed) from 198.18.21.1:$port443, SNI \"\", server at $work/al.conf:" \
    "$work/error.log" && ok "error_log info in a file: the TLS failure line is there" ||
    not_ok "error_log info in a file: the TLS failure line is there" "$(cat "$work/error.log")"
! grep -q "TLS handshake failed.*:$port4443," "$work/error.log" "$work/quiet.log" 2>/dev/null &&
    ok "a server's error_log at error: its TLS failure line is not written" ||
    not_ok "a server's error_log at error: its TLS failure line is not written" "$(cat "$work/quiet.log" 2>&1)"

# logrotate: both processes reopen on SIGUSR1.
mv "$work/main.log" "$work/main.log.1"
mv "$work/error.log" "$work/error.log.1"
kill -USR1 "$mpid" "$pid"
wait_for 10 grep -q "SIGUSR1: reopening logs" "$work/error.log" || true
check "sessions after logrotate" sessions plain 198.18.21.2 80 3 "$work/rotated.json"
wait_for 10 test "$(lines "$work/main.log")" -ge 3
check "after SIGUSR1 the new file gets the new lines" \
    python3 "$here/al_sessions.py" check "$work/rotated.json" "$work/main.log" "$work/all.json" "$work/odd.log"
[ "$(lines "$work/main.log.1")" -eq "$want" ] && ok "the rotated file keeps its lines and gets no new ones" ||
    not_ok "the rotated file keeps its lines and gets no new ones ($(lines "$work/main.log.1"))"
in_ns python3 -c "import socket; s=socket.create_connection(('198.18.21.2',443)); s.sendall(b'x'*20); s.recv(10)" 2>/dev/null
wait_for 5 grep -q "\[info\] $pid#0: TLS handshake failed" "$work/error.log" &&
    ok "terminusd reopens its error log on SIGUSR1" ||
    not_ok "terminusd reopens its error log on SIGUSR1" "$(cat "$work/error.log"; tail -3 "$work/error.log.1")"

# mgmtd away: terminusd serves on; what does not fit the rings is dropped
# and counted, the rest is written once mgmtd is back.
kill -TERM "$mpid"; wait "$mpid"; mpid=
dropped0=$(counter proxy access_log_dropped)
check "400 sessions with terminus-mgmtd stopped" sessions plain 198.18.21.2 80 400 "$work/away.json"
dropped=$(( $(counter proxy access_log_dropped) - dropped0 ))
[ "$dropped" -gt 0 ] && [ "$dropped" -lt 400 ] && ok "records that did not fit the rings are counted ($dropped dropped)" ||
    not_ok "records that did not fit the rings are counted ($dropped)"
grep -q "\[error\] $pid#0: core [01]: [0-9]* access log records dropped" "$work/error.log" &&
    ok "the drops are logged (at most once a second per core)" ||
    not_ok "the drops are logged" "$(grep -i dropped "$work/error.log")"
before=$(lines "$work/main.log")
start_mgmtd && ok "terminus-mgmtd restarted" || not_ok "terminus-mgmtd restarted" "$(tail "$work/mgmtd.log")"
# Each record either dropped (counted; the counters are published ten
# times a second) or written once mgmtd is back.
accounted() {
    dropped=$(( $(counter proxy access_log_dropped) - dropped0 ))
    got=$(( $(lines "$work/main.log") - before ))
    [ $((got + dropped)) -eq 400 ]
}
wait_for 10 accounted
accounted && ok "what the rings held is written at restart: $got lines + $dropped dropped = 400 sessions" ||
    not_ok "what the rings held is written at restart: $got lines + $dropped dropped, 400 sessions"
check "logging resumes" sessions plain 198.18.21.2 80 2 "$work/back.json"
wait_for 10 test "$(lines "$work/main.log")" -ge $((before + 402 - dropped))  # two more
check "sessions after the restart are logged" \
    python3 "$here/al_sessions.py" check "$work/back.json" "$work/main.log" "$work/all.json" "$work/odd.log"

# A reload that changes log_format (and the quiet server's level): terminusd
# reloads alone (terminusctl), mgmtd reads the file again for the new
# generation's records; a session held across the reload keeps the old.
ip netns exec "$ns" python3 "$here/al_sessions.py" hold 198.18.21.2 80 "$work/release" "$work/held.json" \
    >"$work/hold.log" 2>&1 &
hold=$!
wait_for 10 test -f "$work/release.up"
write_conf "v2 " info
out=$("$ctl" reload -c "$work/al.conf" 2>&1) && ok "terminusctl reload takes a changed log_format" ||
    not_ok "terminusctl reload takes a changed log_format" "$out"
check "sessions of the new generation" sessions plain 198.18.21.2 80 3 "$work/v2.json"
touch "$work/release"
wait "$hold"; hold=
before=$(lines "$work/main.log")
wait_for 10 grep -q "^v2 " "$work/main.log"
wait_for 10 test "$(lines "$work/main.log")" -ge $((before + 1))
check "the new generation's records use the new log_format" \
    python3 "$here/al_sessions.py" check "$work/v2.json" "$work/main.log" "$work/all.json" "$work/odd.log" --prefix v2
check "a session of the old generation keeps its log_format" \
    python3 "$here/al_sessions.py" check "$work/held.json" "$work/main.log" "$work/all.json" "$work/odd.log"
in_ns python3 -c "import socket; s=socket.create_connection(('198.18.21.2',4443)); s.sendall(b'x'*20); s.recv(10)" 2>/dev/null
wait_for 5 grep -q "\[info\] $pid#0: TLS handshake failed .*server at $work/al.conf:" "$work/quiet.log" &&
    ok "a reload to error_log info for the server: its failure line is written to its file" ||
    not_ok "a reload to error_log info for the server" "$(cat "$work/quiet.log" 2>&1)"

kill -TERM "$mpid"; wait "$mpid"; rc=$?; mpid=
[ "$rc" -eq 0 ] && ok "terminus-mgmtd exits cleanly on SIGTERM" || not_ok "terminus-mgmtd exits cleanly ($rc)"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" -eq 0 ] && [ ! -e "/dev/shm/terminus-$name.log" ] && ok "terminusd exits and removes its access log segment" ||
    not_ok "terminusd exits and removes its access log segment ($rc)"

echo "1..$n"
[ "$fails" -eq 0 ]
