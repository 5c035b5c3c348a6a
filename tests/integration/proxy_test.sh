#!/usr/bin/env bash
# The stream proxy end to end: terminusd on a DPDK TAP device, Python echo
# backends and clients in the TAP's network namespace. Every byte is
# checked with SHA-256; loss is injected with nftables; counters are read
# from terminusd's exit report. Output is TAP.
# Usage: proxy_test.sh TERMINUSD SRC_ROOT
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup px terminusd src -- "$@"
# The names file below, and a second instance's files if it was stopped.
extra_cleanup() { rm -rf "/etc/netns/$ns" "/var/run/dpdk/terminus-pxu$id" "/dev/shm/terminus-pxu$id".*; }

ip netns add "$ns"
ip -n "$ns" link set lo up
# Names for upstreams: "ip netns exec" shows the namespace these files as
# /etc/hosts and /etc/resolv.conf (DNS on the namespace's own loopback,
# where nothing answers, so an unknown name fails at once).
mkdir -p "/etc/netns/$ns"
printf '198.18.0.1 backend.lab.test\n' > "/etc/netns/$ns/hosts"
printf 'nameserver 127.0.0.1\n' > "/etc/netns/$ns/resolv.conf"
cat > "$work/proxy.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
    mbufs 32767;
    max_connections 65536;
    shutdown_timeout 8s;
}
stream {
    # The echo clients half-close and wait for their bytes (nginx's
    # default, off, would end the session at the client's FIN).
    proxy_half_close on;
    upstream echo {
        server 198.18.0.1:9001 weight=2;
        server 198.18.0.1:9002;
    }
    upstream first_refuses {
        server 198.18.0.1:9009;          # nothing listens: RST
        server 198.18.0.1:9001;
    }
    upstream all_down {
        server 198.18.0.1:9008;
        server 198.18.0.1:9009;
    }
    server { listen 80; proxy_pass echo; }
    server { listen 81; proxy_pass first_refuses; }
    server { listen 82; proxy_pass all_down; }
    upstream blackhole_first {
        server 198.18.0.99:9001;         # never answers ARP
        server 198.18.0.1:9001;
    }
    server { listen 83; proxy_pass 198.18.0.1:9002; }
    server { listen 84; proxy_timeout 1s; proxy_pass echo; }
    server { listen 85; proxy_connect_timeout 500ms; proxy_pass blackhole_first; }
    server { listen 86 backlog=16; proxy_pass echo; }
    server { listen 87; proxy_half_close off; proxy_pass 198.18.0.1:9003; }
    server { listen 88; proxy_pass 198.18.0.1:9003; }
    server { listen 89 so_keepalive=1s:1s:3; proxy_pass echo; }
    upstream hashed {
        hash \$remote_addr consistent;
        server 198.18.0.1:9004;
        server 198.18.0.1:9005;
    }
    upstream two_choices {
        random two least_conn;
        server 198.18.0.1:9006;
        server 198.18.0.1:9007;
    }
    server { listen 90; proxy_pass hashed; }
    server { listen 91; proxy_pass two_choices; }
    upstream named { server backend.lab.test:9002; }
    server { listen 92; proxy_pass named; }
    server { listen 93; proxy_pass backend.lab.test:9001; }
    # allow/deny: the first matching rule decides (the client is 198.18.0.1).
    server { listen 94; deny 198.18.0.1; allow all; proxy_pass echo; }
    server { listen 95; allow 198.18.0.0/24; deny all; proxy_pass echo; }
    # return instead of proxy_pass, with variables.
    server { listen 96; return "hello \$remote_addr:\$server_port\n"; }
    # limit_conn: two connections per client address; a dry run.
    limit_conn_zone \$binary_remote_addr zone=addr:1m;
    limit_conn_zone \$binary_remote_addr zone=dry:32k;
    server { listen 97; limit_conn addr 2; proxy_pass echo; }
    server { listen 98; limit_conn dry 1; limit_conn_dry_run on; limit_conn_log_level warn; proxy_pass echo; }
}
CONF
# Not through in_ns: $! must be terminusd itself, not a subshell.
ip netns exec "$ns" "$terminusd" -c "$work/proxy.conf" -n "px$id" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with sixteen proxied servers and one return"
grep -q "SIGTERM drains established sessions for 8 s (shutdown_timeout)" "$work/log" &&
    ok "shutdown_timeout sets the drain time" || not_ok "shutdown_timeout sets the drain time" "$(cat "$work/log")"
ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.0.1 9001 9002 9003:after-eof \
    9004:log 9005:log 9006:log 9007:log >"$work/backend.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/backend.log" || not_ok "backends start" "$(cat "$work/backend.log")"

client() { in_ns timeout 300 python3 "$here/lab_client.py" "$@"; }

check "one connection relays 1 MB both ways, half-closed" client echo 198.18.0.2 80 1 1048576 1
check "64 parallel connections relay 256 KB each, SHA-256 verified" client echo 198.18.0.2 80 64 262144 64
check "10,000 short connections, none fails" client echo 198.18.0.2 80 10000 100 16
check "a refusing upstream is skipped for the next one" client echo 198.18.0.2 81 20 1000 4
check "proxy_pass to a single address works" client echo 198.18.0.2 83 10 10000 2
check "with every upstream down the client is closed at once" client refused 198.18.0.2 82
check "proxy_timeout 1s closes an idle session" client idle 198.18.0.2 84 0.8 3
check "proxy_half_close on: the reply after the client's FIN arrives" client halfclose 198.18.0.2 88 1000
# One client address: "hash $remote_addr consistent" sends all its
# connections to one server; "random two least_conn" spreads them.
accepts() { grep -c "accepted $1" "$work/backend.log"; }
check "hash \$remote_addr consistent relays" client echo 198.18.0.2 90 20 1000 4
h4=$(accepts 9004); h5=$(accepts 9005)
{ [ "$h4" -eq 20 ] && [ "$h5" -eq 0 ]; } || { [ "$h4" -eq 0 ] && [ "$h5" -eq 20 ]; } &&
    ok "hash \$remote_addr consistent keeps one client on one server ($h4/$h5)" ||
    not_ok "hash \$remote_addr consistent keeps one client on one server (got $h4/$h5)"
check "random two least_conn relays" client echo 198.18.0.2 91 20 1000 4
r6=$(accepts 9006); r7=$(accepts 9007)
[ "$r6" -gt 0 ] && [ "$r7" -gt 0 ] && [ $((r6 + r7)) -eq 20 ] &&
    ok "random two least_conn uses both servers ($r6/$r7)" ||
    not_ok "random two least_conn uses both servers (got $r6/$r7)"
check "an upstream server given by host name is resolved at start" client echo 198.18.0.2 92 10 1000 2
check "proxy_pass HOST:PORT is resolved at start" client echo 198.18.0.2 93 10 1000 2
sed 's/backend.lab.test:9002/nowhere.lab.test:9002/' "$work/proxy.conf" > "$work/unknown.conf"
out=$(in_ns timeout 20 "$terminusd" -c "$work/unknown.conf" -n "pxu$id" 2>&1)
grep -q 'unknown.conf:[0-9]*:[0-9]*: error: host not found in upstream "nowhere.lab.test:9002"' <<<"$out" &&
    ok "an upstream name that does not resolve is refused at start with its line" ||
    not_ok "an upstream name that does not resolve is refused at start with its line" "$out"
check "proxy_half_close off: the client's FIN ends the session" client halfclose 198.18.0.2 87 0
# so_keepalive: a client silent for 2.5 s is probed (and answers), and the
# session still works afterwards.
out=$(in_ns timeout 20 python3 -c '
import socket, time
s = socket.create_connection(("198.18.0.2", 89), timeout=10)
time.sleep(2.5)
s.sendall(b"still here")
print(s.recv(100).decode())
' 2>&1)
probes=$("$(dirname "$terminusd")/../mgmt/terminusctl" stats --name "px$id" --json |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["tcp"]["keepalive_probes"]["total"])')
if [ "$out" = "still here" ] && [ "${probes:-0}" -ge 1 ]; then
    ok "so_keepalive probes an idle client ($probes probes) and the session lives on"
else
    not_ok "so_keepalive probes an idle client (got '$out', $probes probes)"
fi
check "proxy_connect_timeout moves on from a silent upstream" client echo 198.18.0.2 85 2 1000 1

# allow/deny, as nginx's access module: a denied client is closed before
# anything is proxied; the others are served.
check "deny 198.18.0.1 closes that client's connection unserved" client refused 198.18.0.2 94
check "allow 198.18.0.0/24 before deny all serves the client" client echo 198.18.0.2 95 2 10000 1
access=$("$(dirname "$terminusd")/../mgmt/terminusctl" stats --name "px$id" --json |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["proxy"]["access_denied"]["total"])')
[ "${access:-0}" -eq 1 ] && ok "access_denied counts the one denied connection" ||
    not_ok "access_denied counts the one denied connection (got ${access:-none})"

# return: the value with its variables, then the connection closes.
check "return sends its value with variables and closes" client read 198.18.0.2 96 'hello 198.18.0.1:96\n'

# limit_conn: PORT takes at most N connections from one address; the
# one over is closed unserved; one closed makes room.
limit_conn() {  # limit_conn PORT N EXTRA_ALLOWED(0|1)
    in_ns timeout 60 python3 - "$@" <<'PY'
import socket, sys, time
port, n, extra = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
def served(s):
    try:
        s.sendall(b"ping")
        s.settimeout(5)
        return s.recv(4) == b"ping"
    except OSError:
        return False
held = [socket.create_connection(("198.18.0.2", port), timeout=5) for _ in range(n)]
assert all(served(s) for s in held), "the first connections are served"
over = socket.create_connection(("198.18.0.2", port), timeout=5)
if served(over) != extra:
    sys.exit(f"connection {n + 1} {'refused' if extra else 'served'}")
over.close()
held.pop().close()
time.sleep(0.3)
again = socket.create_connection(("198.18.0.2", port), timeout=5)
assert served(again), "a connection after one closed is served"
print(f"{n} served, the one over {'served (dry run)' if extra else 'closed'}, one closed makes room")
PY
}
check "limit_conn addr 2: a third connection from one address is closed" limit_conn 97 2 0
check "limit_conn_dry_run on: the one over the limit is served and counted" limit_conn 98 1 1
limits=$("$(dirname "$terminusd")/../mgmt/terminusctl" stats --name "px$id" --json | python3 -c '
import json,sys; p=json.load(sys.stdin)["stats"]["proxy"]
print(p["limit_conn_rejected"]["total"], p["limit_conn_dry_run"]["total"])')
[ "$limits" = "1 1" ] && ok "limit_conn_rejected and limit_conn_dry_run count them (1 1)" ||
    not_ok "limit_conn_rejected and limit_conn_dry_run count them" "got $limits"
grep -q 'terminusd: \[error\] limiting connections by zone "addr", client 198.18.0.1' "$work/log" &&
    grep -q 'terminusd: \[warn\] limiting connections, dry run, by zone "dry"' "$work/log" &&
    ok "the log says which zone limited whom, at limit_conn_log_level" ||
    not_ok "the log says which zone limited whom" "$(grep limit "$work/log")"

# 1% random loss on frames from terminusd into the namespace.
in_ns nft add table netdev tmloss
in_ns nft add chain netdev tmloss in "{ type filter hook ingress device $iface priority 0; }"
in_ns nft add rule netdev tmloss in numgen random mod 100 '<' 1 counter drop
check "64 parallel connections survive 1% loss, SHA-256 verified" client echo 198.18.0.2 80 64 262144 16
dropped=$(in_ns nft list chain netdev tmloss in | sed -n 's/.*packets \([0-9]*\).*/\1/p')
[ "${dropped:-0}" -gt 0 ] && ok "nftables dropped $dropped frames on the way" || not_ok "nftables dropped frames" "$(in_ns nft list ruleset)"
in_ns nft delete table netdev tmloss

# A SYN flood larger than the backlog: the namespace's kernel is kept from
# resetting the half-open connections, so they fill the backlog of 16 and
# SYN cookies answer the rest; a real client still gets through.
in_ns nft add table inet tmflood
in_ns nft add chain inet tmflood out "{ type filter hook output priority 0; }"
in_ns nft add rule inet tmflood out ip daddr 198.18.0.2 tcp dport 86 tcp flags '&' rst == rst drop
in_ns python3 "$here/syn_flood.py" 198.18.0.1 198.18.0.2 86 2000
check "a client connects during a SYN flood (SYN cookies)" client echo 198.18.0.2 86 5 10000 1
in_ns nft delete table inet tmflood
ctl=$(dirname "$terminusd")/../mgmt/terminusctl
flood=$("$ctl" stats --name "px$id" --json)
if python3 -c 'import json,sys; t=json.load(sys.stdin)["stats"]["tcp"]; assert t["syn_cookies_sent"]["total"] > 100, t["syn_cookies_sent"]; assert t["syn_cookies_ok"]["total"] >= 1, t["syn_cookies_ok"]' <<<"$flood"; then
    ok "SYN cookies were sent and validated"
else
    not_ok "SYN cookies were sent and validated" "$(grep -o '"syn_cookies[^]]*]' <<<"$flood")"
fi

# A client that stops reading: backpressure holds memory flat.
ip netns exec "$ns" timeout 30 python3 -c '
import socket, time
s = socket.create_connection(("198.18.0.2", 80))
s.setblocking(False)
sent = 0
end = time.time() + 4
while time.time() < end:
    try:
        sent += s.send(b"x" * 65536)
    except BlockingIOError:
        time.sleep(0.05)
print(sent, flush=True)
time.sleep(30)
' >"$work/stall.log" 2>&1 &
stall=$!
sleep 2
m1=$("$ctl" stats --name "px$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["memory"]["mbufs_in_use"]["total"])')
sleep 3
m2=$("$ctl" stats --name "px$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["memory"]["mbufs_in_use"]["total"])')
sent=$(head -1 "$work/stall.log")
kill "$stall" 2>/dev/null; wait "$stall" 2>/dev/null
# Four 64 KB windows and queues of 2 KB mbufs, plus the pools' caches.
if [ -n "$m1" ] && [ -n "$m2" ] && [ "$m2" -le $((m1 + 64)) ] && [ "$m2" -lt 4000 ]; then
    ok "a reader that stops reading holds memory flat ($m1 then $m2 mbufs; the writer got $sent bytes in)"
else
    not_ok "a reader that stops reading holds memory flat ($m1 then $m2 mbufs, $sent bytes)"
fi

# terminusctl reads the statistics segment while terminusd runs; with no
# client left, no session and no established connection remain.
wait_for 5 bash -c "\"$ctl\" stats --name px$id --json | python3 -c 'import json,sys; d=json.load(sys.stdin)[\"stats\"]; sys.exit(d[\"proxy\"][\"sessions_active\"][\"total\"] != 0 or d[\"tcp\"][\"conns_established\"][\"total\"] != 0)'"
json=$("$ctl" stats --name "px$id" --json 2>&1)
if python3 -c 'import json,sys; d=json.load(sys.stdin)["stats"]; assert d["proxy"]["accepts"]["total"] >= 10000; assert d["proxy"]["sessions_active"]["total"] == 0; assert d["tcp"]["conns_established"]["total"] == 0; assert d["loop"]["busy_iterations"]["total"] > 0' <<<"$json"; then
    ok "terminusctl stats --json: accepts counted, sessions and established connections back to 0"
else
    not_ok "terminusctl stats --json: counters back to idle" "$(python3 -c 'import json,sys; d=json.load(sys.stdin)["stats"]; print({k: v["total"] for k, v in d["tcp"].items() if k.startswith("conns")}, d["proxy"]["sessions_active"])' <<<"$json")"
fi
table=$("$ctl" stats --name "px$id" 2>&1)
grep -q "^  accepts " <<<"$table" && ok "terminusctl stats prints a table" || not_ok "terminusctl stats prints a table" "$table"

# Graceful shutdown: an established session finishes, a new one is refused.
in_ns timeout 60 python3 "$here/lab_client.py" slow 198.18.0.2 80 2 >"$work/slow.log" 2>&1 &
slow=$!
wait_for 10 grep -q connected "$work/slow.log"
kill -TERM "$pid"
wait_for 10 grep -q "draining: new connections are refused" "$work/log" ||
    not_ok "terminusd says it is draining" "$(tail -5 "$work/log")"
check "during the drain a new connection is refused" client refused 198.18.0.2 80
if wait "$slow"; then ok "an established session finishes during the drain ($(tail -1 "$work/slow.log"))"
else not_ok "an established session finishes during the drain" "$(cat "$work/slow.log")"; fi
if wait_for 15 bash -c "! kill -0 $pid"; then
    wait "$pid"; rc=$?; pid=
    [ "$rc" -eq 0 ] && ok "SIGTERM stops terminusd once drained" || not_ok "SIGTERM stops terminusd (status $rc)"
else
    not_ok "SIGTERM stops terminusd within 15 s"
fi
counter() { sed -n "s/^terminusd:  *$1  *\([0-9]*\) .*/\1/p" "$work/log"; }
"$ctl" stats --name "px$id" >/dev/null 2>&1 && not_ok "the statistics segment goes away with terminusd" ||
    ok "the statistics segment goes away with terminusd"
active=$(counter proxy_sessions_active)
[ "$active" = 0 ] && ok "no session is left open" || not_ok "no session is left open (got '$active')" "$(grep '^terminusd:  ' "$work/log")"
fails_up=$(counter proxy_upstream_failures)
# max_fails=1 takes the refusing server out for fail_timeout after its
# first failure on each core, so only a few of the 20 sessions meet it.
[ "${fails_up:-0}" -ge 1 ] && [ "${fails_up:-0}" -lt 20 ] &&
    ok "refused upstream connects are counted, then the server is avoided ($fails_up)" ||
    not_ok "refused upstream connects are counted, then the server is avoided (got '$fails_up')"
nolive=$(counter proxy_no_live_upstream)
[ "${nolive:-0}" -ge 1 ] && ok "no live upstream is counted ($nolive)" || not_ok "no live upstream is counted (got '$nolive')"
retrans=$(counter tcp_retransmits)
[ "${retrans:-0}" -gt 0 ] && ok "loss was repaired by retransmission ($retrans segments)" || not_ok "loss was repaired by retransmission" "$(grep '^terminusd:  ' "$work/log")"

echo "1..$n"
[ "$fails" -eq 0 ]
