#!/usr/bin/env bash
# Active health checks end to end (health_check, match): terminusd on a
# DPDK TAP device with two lcores checks Python backends in the TAP's
# namespace through its own TCP stack. Servers are taken out and put back
# as their answers change, "port=" checks another port, "mandatory" holds
# servers back until their first check, and with proxy_ssl the checks run
# over TLS and verify the certificate as the proxy does; what terminusctl
# stats shows is what is asserted, waited for with deadlines. Output is TAP.
# Usage: health_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup hc terminusd ctl src certs -- "$@"

# Backends: each port answers a health check ("PING") as its mode file
# $work/mode/PORT says — pong: "PONG"; wrong: "NOPE" and a close; close:
# a close at once — and a client ("who") with its own port number.
# PORT:CERT speaks TLS with $certs/CERT.crt.
mkdir -p "$work/mode"
cat > "$work/backend.py" <<'PY'
import os, socket, ssl, sys, threading

def handle(c, port, modes):
    try:
        first = c.recv(64)
        if first.startswith(b"PING"):
            try:
                mode = open(os.path.join(modes, str(port))).read().strip()
            except OSError:
                mode = "pong"
            if mode == "pong":
                c.sendall(b"PONG\r\n")
                while c.recv(4096):
                    pass
            elif mode == "wrong":
                c.sendall(b"NOPE\r\n")
        elif first:
            c.sendall(b"%d\n" % port)
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass
    except OSError:
        pass
    finally:
        c.close()

def handle_tls(c, port, modes, ctx):
    try:
        c = ctx.wrap_socket(c, server_side=True)
    except OSError:
        c.close()
        return
    handle(c, port, modes)

def serve(addr, port, modes, ctx):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(256)
    while True:
        c, _ = s.accept()
        if ctx:
            threading.Thread(target=handle_tls, args=(c, port, modes, ctx), daemon=True).start()
        else:
            threading.Thread(target=handle, args=(c, port, modes), daemon=True).start()

modes, certs = sys.argv[2], sys.argv[3]
for p in sys.argv[4:]:
    port, _, cert = p.partition(":")
    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, cert + ".crt"), os.path.join(certs, cert + ".key"))
    threading.Thread(target=serve, args=(sys.argv[1], int(port), modes, ctx), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
PY
mode() { echo "$2" > "$work/mode/$1"; }
for p in 9101 9102 9202 9302 9401 9501 9502 9503; do mode $p pong; done
mode 9201 wrong  # the service port fails the check: port= must look elsewhere

cat > "$work/health.conf" <<'CONF'
dataplane {
    port net_tap0 iface=IFACE address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
}
stream {
    match pong { send "PING\r\n"; expect "PONG"; }
    match pong_re { send "PING\r\n"; expect ~ "^PO[N]G\r\n$"; }
    upstream pair {
        server 198.18.0.1:9101;
        server 198.18.0.1:9102;
    }
    server { listen 80; proxy_pass pair; health_check interval=200ms fails=2 passes=2 match=pong; }
    upstream svc { server 198.18.0.1:9201; }
    server { listen 81; proxy_pass svc; health_check interval=200ms jitter=100ms port=9202 match=pong_re; }
    # 198.18.0.99 never answers ARP: its checks time out (5 s).
    upstream mand {
        server 198.18.0.99:9301;
        server 198.18.0.1:9302;
    }
    server { listen 82; proxy_pass mand; health_check interval=1s mandatory persistent match=pong; }
    upstream twin { server 198.18.0.99:9301; server 198.18.0.1:9302; }
    server { listen 83; proxy_pass twin; health_check interval=1s match=pong; }
    # Connecting is the check; nothing listens on 9409.
    upstream connect_only {
        server 198.18.0.1:9401;
        server 198.18.0.1:9409;
    }
    server { listen 84; proxy_pass connect_only; health_check interval=200ms; }
    # proxy_ssl: the checks are TLS, verified as the proxy's sessions are.
    upstream secure {
        server 198.18.0.1:9501;          # a certificate for api.example.com
        server 198.18.0.1:9502;          # one for db.example.com only
        server 198.18.0.1:9503;          # no TLS at all
    }
    server {
        listen 85;
        proxy_pass secure;
        proxy_ssl on;
        proxy_ssl_name api.example.com;
        proxy_ssl_server_name on;
        proxy_ssl_trusted_certificate CERTS/ca.crt;
        health_check interval=200ms match=pong;
    }
}
CONF
sed -i "s/IFACE/$iface/; s|CERTS|$certs|" "$work/health.conf"

ip netns add "$ns"
ip -n "$ns" link set lo up
# Not through in_ns: $! must be terminusd itself, not a subshell.
ip netns exec "$ns" "$terminusd" -c "$work/health.conf" -n "hc$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts with health checks" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with health checks"
grep -q "health checks: 12 servers checked from core 0" "$work/log" &&
    ok "twelve servers are checked, from core 0" || not_ok "twelve servers are checked, from core 0" "$(cat "$work/log")"

# stat SERVER FIELD: an upstream server's value in terminusctl stats --json
# (a state's name, a counter's total).
ustat() {
    "$ctl" stats --name "hc$id" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)["stats"]["upstream"][sys.argv[1]][sys.argv[2]]
print(v if isinstance(v, str) else v["total"])' "$1" "$2"
}
# is SERVER FIELD VALUE: the value is VALUE now.
is() { [ "$(ustat "$1" "$2" 2>/dev/null)" = "$3" ]; }
# at_least SERVER FIELD N
at_least() { [ "$(ustat "$1" "$2" 2>/dev/null || echo 0)" -ge "$3" ]; }
# expect_state SECONDS SERVER STATE NAME: waits for it, then ok / not ok.
expect_state() {
    if wait_for "$1" is "$2" state "$3"; then ok "$4"
    else not_ok "$4" "$2: state $(ustat "$2" state), last check $(ustat "$2" last_check), $(ustat "$2" checks_failed) of $(ustat "$2" checks) failed"; fi
}

# mandatory: before any check is done the servers are "checking"; without
# it they start "up". Read before the namespace's side is even up, well
# within the 5 s the first check to 198.18.0.99 takes.
# The segment is published ten times a second: wait for the first.
reported() { [ -n "$(ustat "$1" state 2>/dev/null)" ]; }
wait_for 5 reported twin/198.18.0.99:9301
m_far=$(ustat mand/198.18.0.99:9301 state)
t_far=$(ustat twin/198.18.0.99:9301 state)
[ "$m_far" = checking ] && [ "$t_far" = up ] &&
    ok "mandatory: a server not checked yet is checking (without it: up)" ||
    not_ok "mandatory: a server not checked yet is checking (without it: up)" "mand: $m_far, twin: $t_far"

ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$work/backend.py" 198.18.0.1 "$work/mode" "$certs" 9101 9102 9201 9202 9302 9401 \
    9501:server 9502:postgres 9503 >"$work/backend.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/backend.log" || not_ok "backends start" "$(cat "$work/backend.log")"

# who PORT N: N connections through terminusd's PORT; prints how many
# each backend took ("9101=10 9102=10"), "-" for those that got nothing.
who() {
    in_ns timeout 60 python3 -c '
import collections, socket, sys
seen = collections.Counter()
for _ in range(int(sys.argv[2])):
    try:
        s = socket.create_connection(("198.18.0.2", int(sys.argv[1])), timeout=5)
        s.sendall(b"who\n")
        data = b""
        while True:
            d = s.recv(100)
            if not d:
                break
            data += d
        s.close()
        seen[data.decode().strip() or "-"] += 1
    except OSError:
        seen["-"] += 1
print(" ".join("%s=%d" % kv for kv in sorted(seen.items())))' "$1" "$2"
}

expect_state 20 pair/198.18.0.1:9101 up "a server that answers PONG is up"
wait_for 20 at_least pair/198.18.0.1:9102 checks 3
[ "$(ustat pair/198.18.0.1:9102 state)" = up ] && is pair/198.18.0.1:9102 last_check passed &&
    ok "checks repeat every interval and pass ($(ustat pair/198.18.0.1:9102 checks) checks)" ||
    not_ok "checks repeat every interval and pass" "$(ustat pair/198.18.0.1:9102 state) $(ustat pair/198.18.0.1:9102 last_check)"
# From here on the healthy server's checks must all pass.
failed_before=$(ustat pair/198.18.0.1:9101 checks_failed)
checks_before=$(ustat pair/198.18.0.1:9101 checks)
both() { [[ "$1" =~ ^9101=[0-9]+\ 9102=[0-9]+$ ]]; }
out=$(who 80 20)
both "$out" && ok "both servers take connections ($out)" || not_ok "both servers take connections" "$out"

# A wrong answer: fails=2 failed checks take the server out.
mode 9102 wrong
expect_state 10 pair/198.18.0.1:9102 unhealthy "a server answering NOPE becomes unhealthy"
is pair/198.18.0.1:9102 last_check mismatch && at_least pair/198.18.0.1:9102 checks_failed 2 &&
    ok "its last check is a mismatch, after at least fails=2 failed checks" ||
    not_ok "its last check is a mismatch, after at least fails=2 failed checks" \
        "$(ustat pair/198.18.0.1:9102 last_check), $(ustat pair/198.18.0.1:9102 checks_failed) failed"
out=$(who 80 20)
[ "$out" = "9101=20" ] && ok "new connections all go to the other server ($out)" ||
    not_ok "new connections all go to the other server" "$out"
table=$("$ctl" stats --name "hc$id")
grep -A1 "^upstream server pair/198.18.0.1:9102$" <<<"$table" | grep -q "state *unhealthy$" &&
    ok "terminusctl stats shows it unhealthy" || not_ok "terminusctl stats shows it unhealthy" "$table"
prom=$("$ctl" stats --name "hc$id" --prometheus)
grep -qx 'terminus_upstream_state{state="unhealthy",server="pair/198.18.0.1:9102"} 1' <<<"$prom" &&
    grep -qx 'terminus_upstream_state{state="up",server="pair/198.18.0.1:9101"} 1' <<<"$prom" &&
    ok "terminusctl stats --prometheus: one state set per server" ||
    not_ok "terminusctl stats --prometheus: one state set per server" "$(grep upstream_state <<<"$prom")"
grep -q "upstream pair server 198.18.0.1:9102 is unhealthy (health_check at .*health.conf:[0-9]*: mismatch)" "$work/log" &&
    ok "the log says it went unhealthy and why" || not_ok "the log says it went unhealthy and why" "$(cat "$work/log")"

# Answering again: passes=2 passed checks put it back.
mode 9102 pong
expect_state 10 pair/198.18.0.1:9102 up "a server answering PONG again is up again"
out=$(who 80 20)
both "$out" && ok "it takes connections again ($out)" || not_ok "it takes connections again" "$out"

# port=: the check goes to 9202 (regex match), connections to 9201.
expect_state 10 svc/198.18.0.1:9201 up "port=: checked on another port (the service port would fail)"
out=$(who 81 4)
[ "$out" = "9201=4" ] && ok "port=: connections still go to the server's own port ($out)" ||
    not_ok "port=: connections still go to the server's own port" "$out"
mode 9202 close
expect_state 10 svc/198.18.0.1:9201 unhealthy "port=: the health port closing takes the server out"
is svc/198.18.0.1:9201 last_check closed && ok "its last check: closed" ||
    not_ok "its last check: closed" "$(ustat svc/198.18.0.1:9201 last_check)"
out=$(who 81 3)
[ "$out" = "-=3" ] && ok "an unhealthy only server takes no connection ($out)" ||
    not_ok "an unhealthy only server takes no connection" "$out"
mode 9202 pong
expect_state 10 svc/198.18.0.1:9201 up "port=: back when the health port answers"

# mandatory: the reachable server passes its first check and is up; the
# unreachable one, once its first check timed out, is unhealthy.
expect_state 20 mand/198.18.0.1:9302 up "mandatory: the reachable server is up once checked"
out=$(who 82 6)
[ "$out" = "9302=6" ] && ok "mandatory: connections go to the checked server only ($out)" ||
    not_ok "mandatory: connections go to the checked server only" "$out"
expect_state 15 mand/198.18.0.99:9301 unhealthy "mandatory: a server whose first check times out is unhealthy"
is mand/198.18.0.99:9301 last_check timeout && ok "its last check: timeout" ||
    not_ok "its last check: timeout" "$(ustat mand/198.18.0.99:9301 last_check)"
expect_state 15 twin/198.18.0.99:9301 unhealthy "without mandatory, the same server goes from up to unhealthy"

# Connect-only checks: a refused connect fails.
expect_state 10 connect_only/198.18.0.1:9409 unhealthy "connect-only: a server that refuses is unhealthy"
is connect_only/198.18.0.1:9409 last_check refused && is connect_only/198.18.0.1:9401 state up &&
    ok "connect-only: refused there, up where something listens" ||
    not_ok "connect-only: refused there, up where something listens" \
        "$(ustat connect_only/198.18.0.1:9409 last_check) $(ustat connect_only/198.18.0.1:9401 state)"
out=$(who 84 4)
[ "$out" = "9401=4" ] && ok "connect-only: connections go to the live server ($out)" ||
    not_ok "connect-only: connections go to the live server" "$out"

# proxy_ssl: a TLS check passes where the proxy's sessions would succeed.
expect_state 15 secure/198.18.0.1:9501 up "proxy_ssl: a server with a valid certificate passes its TLS checks"
expect_state 15 secure/198.18.0.1:9502 unhealthy "proxy_ssl: a certificate for another name fails the check"
# Only the checks made TLS handshakes with it: the proxy sent it nothing.
mismatches=$("$ctl" stats --name "hc$id" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["upstream_tls"]["failed_name_mismatch"]["total"])')
is secure/198.18.0.1:9502 last_check tls && [ "${mismatches:-0}" -ge 1 ] &&
    ok "its last check: tls; upstream TLS counts the name mismatch ($mismatches)" ||
    not_ok "its last check: tls; upstream TLS counts the name mismatch" "$(ustat secure/198.18.0.1:9502 last_check), $mismatches"
expect_state 15 secure/198.18.0.1:9503 unhealthy "proxy_ssl: a server without TLS fails the check"
is secure/198.18.0.1:9503 last_check tls && ok "its last check: tls" ||
    not_ok "its last check: tls" "$(ustat secure/198.18.0.1:9503 last_check)"
out=$(who 85 4)
[ "$out" = "9501=4" ] && ok "proxy_ssl: connections go to the server that passed, re-encrypted ($out)" ||
    not_ok "proxy_ssl: connections go to the server that passed, re-encrypted" "$out"

# A reload keeps what the checks found (NGINX Plus: "mandatory" without
# "persistent" would check every server again first): right after it, the
# unreachable servers are still unhealthy, not "up" or "checking", and the
# counts go on.
checks_twin=$(ustat twin/198.18.0.99:9301 checks)
core0_generation() {
    "$ctl" stats --name "hc$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["config"]["generation"]["per_core"][0])'
}
kill -HUP "$pid"
if wait_for 10 bash -c "[ \"\$(\"$ctl\" stats --name hc$id --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"stats\"][\"config\"][\"generation\"][\"per_core\"][0])')\" = 2 ]"; then
    st="mand $(ustat mand/198.18.0.99:9301 state), twin $(ustat twin/198.18.0.99:9301 state)"
    [ "$st" = "mand unhealthy, twin unhealthy" ] && at_least twin/198.18.0.99:9301 checks "$checks_twin" &&
        ok "a reload (SIGHUP) keeps the servers' health and check counts ($st)" ||
        not_ok "a reload (SIGHUP) keeps the servers' health and check counts" "$st; twin checks $(ustat twin/198.18.0.99:9301 checks), $checks_twin before"
else
    not_ok "a reload (SIGHUP) makes generation 2" "$(tail -5 "$work/log")"
fi

# The other server of the pair was checked all along, and passed.
at_least pair/198.18.0.1:9101 checks $((checks_before + 10)) && is pair/198.18.0.1:9101 checks_failed "$failed_before" &&
    ok "the healthy server's checks went on and passed ($((checks_before)) then $(ustat pair/198.18.0.1:9101 checks))" ||
    not_ok "the healthy server's checks went on and passed" \
        "$(ustat pair/198.18.0.1:9101 checks) checks, $(ustat pair/198.18.0.1:9101 checks_failed) failed, $failed_before before"

# Health checks do not hold up a graceful stop.
kill -TERM "$pid"
if wait_for 20 bash -c "! kill -0 $pid"; then
    wait "$pid"; rc=$?; pid=
    [ "$rc" -eq 0 ] && ok "SIGTERM stops terminusd" || not_ok "SIGTERM stops terminusd (status $rc)" "$(tail -20 "$work/log")"
else
    not_ok "SIGTERM stops terminusd within 20 s"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
