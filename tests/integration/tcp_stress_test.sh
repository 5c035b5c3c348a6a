#!/usr/bin/env bash
# The TCP stack under stress, against kernel clients (issue #11): a storm
# of aborted TLS connections, bulk echo through random loss, and SYNs that
# land on 4-tuples terminusd holds in TIME-WAIT. terminusd runs on a DPDK
# TAP device with two lcores; storm_client.py is both the backends and the
# clients, in the TAP's namespace. The checks assert on what the clients
# saw and on terminusd's counters. Output is TAP.
# Usage: tcp_stress_test.sh TERMINUSD TERMINUSCTL SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup st terminusd ctl src certs -- "$@"
client=
# timeout(1) passes the TERM on to the client it runs.
extra_cleanup() { [ -n "$client" ] && { kill -TERM "$client" 2>/dev/null; wait "$client" 2>/dev/null; }; }

# storm SECONDS MODE ARGS...: a storm_client.py client, bounded in time. In
# the background and waited for, so that a signal to the test reaches the
# cleanup at once and the cleanup stops the client.
storm() {
    ip netns exec "$ns" timeout "$1" python3 "$here/storm_client.py" "${@:2}" &
    client=$!
    wait "$client"
    local rc=$?
    client=
    return $rc
}
# snap FILE: terminusd's counters now. counters A B [GROUP.]NAME...: how
# much each grew from snapshot A to B (tcp's when no group is named; with A
# "-", a gauge's value at B), "-" for one this terminusd does not have.
# One python3 for them all: on two cores that terminusd polls, each costs.
snap() { "$ctl" stats --name "$name" --json >"$1"; }
counters() {
    python3 - "$@" <<'PY'
import json, sys
a, b = sys.argv[1:3]
read = lambda f: json.load(open(f))["stats"]
sa = read(a) if a != "-" else None
sb = read(b)
out = []
for k in sys.argv[3:]:
    g, _, n = k.rpartition(".")
    g = g or "tcp"
    try:
        out.append(str(sb[g][n]["total"] - (sa[g][n]["total"] if sa else 0)))
    except KeyError:
        out.append("-")
print(" ".join(out))
PY
}
# diag A B NAME...: counters as one diagnostic line.
diag() {
    local a=$1 b=$2 line="#" k v
    shift 2
    read -ra v < <(counters "$a" "$b" "$@")
    for k in "$@"; do line+=" $k=${v[0]}"; v=("${v[@]:1}"); done
    echo "$line"
}
# load FILE: a client's JSON summary into shell variables c_KEY, printed
# as a diagnostic line.
load() {
    eval "$(python3 - "$1" <<'PY'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
print("echo %s" % shlex.quote("# " + ", ".join("%s=%s" % kv for kv in d.items())))
for k in ("connected", "connect_failed", "slow", "handshakes_ok", "responses_ok", "matched", "stalled"):
    d.setdefault(k, 0)
for k, v in d.items():
    print("c_%s=%s" % (k, shlex.quote(str(v))))
PY
)"
}
# kstat NAME: a counter of the namespace's kernel (the clients' and the
# backends' TCP), from /proc/net/netstat or /proc/net/snmp.
kstat() {
    in_ns cat /proc/net/netstat /proc/net/snmp | awk -v want="$1" '
        $1 == prev && NR % 2 == 0 { for (i = 2; i <= NF; i++) if (substr(prev, 1, length(prev) - 1) names[i] == want) print $i }
        { prev = $1; for (i = 2; i <= NF; i++) names[i] = $i }'
}
idle() {  # for wait_for: no session and no established connection left
    snap "$work/idle.json" && [ "$(counters - "$work/idle.json" proxy.sessions_active conns_established)" = "0 0" ]
}

ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$work/stress.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.7.2/24 gateway=198.18.7.1;
    lcores 0-1;
    mbufs 32767;
    max_connections 65536;
}
stream {
    upstream echo { server 198.18.7.1:9001; }
    upstream web { server 198.18.7.1:9080; }
    # The abort storm: TLS terminated in front of an HTTP backend.
    server {
        listen 443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass web;
    }
    # Bulk echo through loss.
    server { listen 80; proxy_pass echo; }
    # The backend closes after answering, so terminusd closes the client
    # side first and holds its TIME-WAIT.
    server { listen 81; proxy_pass web; }
}
CONF
# Not through in_ns: $! must be terminusd itself, not a subshell.
ip netns exec "$ns" "$terminusd" -c "$work/stress.conf" -n "$name" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts on two lcores"
ip -n "$ns" addr add 198.18.7.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/storm_client.py" backend 198.18.7.1 9001:echo 9080:http \
    >"$work/backend.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/backend.log" || not_ok "the backends start" "$(cat "$work/backend.log")"
wait_for 10 in_ns bash -c "exec 3<>/dev/tcp/198.18.7.2/80" || not_ok "terminusd answers on the lab address"

# 1. Abort storm: 3,000 TLS connections, 64 at a time, a quarter each
# reset after connect, garbage then close, reset after the handshake, and
# one request answered. Every SYN must be answered at once, whatever
# state the earlier connections on nearby 4-tuples were left in.
snap "$work/s1a.json"
syn0=$(kstat TcpExtTCPSynRetrans)
storm 100 abort 198.18.7.2 443 example.com 3000 64 --ca "$certs/ca.crt" --budget 60 \
    >"$work/abort.json" 2>"$work/abort.err"
wait_for 10 idle
snap "$work/s1b.json"
syn1=$(kstat TcpExtTCPSynRetrans)
if [ -s "$work/abort.json" ]; then
    load "$work/abort.json"
    lat="p50 $c_p50_ms ms, p99 $c_p99_ms ms, max $c_max_ms ms"
    [ "$c_connected" = 3000 ] && [ "$c_connect_failed" = 0 ] &&
        ok "abort storm: 3,000 connections, none failed to connect ($c_seconds s)" ||
        not_ok "abort storm: 3,000 connections, none failed to connect" \
            "$c_attempted attempted in 60 s, $c_connected connected, $c_connect_failed failed: $c_errors"
    [ "$c_slow" = 0 ] && ok "abort storm: no connect took 1 s or more ($lat)" ||
        not_ok "abort storm: no connect took 1 s or more ($c_slow did; $lat)" \
            "slowest (s, port, port used before): $c_slowest; SYNs retransmitted: $((syn1 - syn0))"
    [ "$c_handshakes_ok" = 1500 ] && ok "abort storm: all 1,500 handshakes completed" ||
        not_ok "abort storm: all 1,500 handshakes completed (got $c_handshakes_ok)" "$c_errors"
    [ "$c_responses_ok" = 750 ] && ok "abort storm: all 750 requests got their response" ||
        not_ok "abort storm: all 750 requests got their response (got $c_responses_ok)" "$c_errors"
else
    not_ok "abort storm: the client reports" "$(tail -20 "$work/abort.err")"
fi
# A kernel's RST carries exactly the next sequence number expected (RFC
# 5961 3.2): every one of the two resetting quarters' must be taken.
resets=$(counters "$work/s1a.json" "$work/s1b.json" resets_received)
[[ $resets =~ ^[0-9]+$ ]] && [ "$resets" -ge 1500 ] && ok "abort storm: terminusd took the 1,500 clients' RSTs (resets_received $resets)" ||
    not_ok "abort storm: terminusd took the 1,500 clients' RSTs (resets_received $resets)"
echo "# kernel SYN retransmissions during the storm: $((syn1 - syn0))"
diag "$work/s1a.json" "$work/s1b.json" accepts resets_received resets_sent rst_out_of_window rst_challenged \
    rst_time_wait rst_no_connection challenge_acks syn_challenged time_wait_reused time_wait_reset \
    time_wait_recycled orphan_resets out_of_window paws bad_cookie no_listener no_connection duplicate \
    tls.failed_malformed net.handoffs_in proxy.upstream_connects
diag - "$work/s1b.json" conns_time_wait
idle && ok "abort storm: no session and no established connection is left" ||
    not_ok "abort storm: no session and no established connection is left" \
        "sessions_active, established: $(counters - "$work/idle.json" proxy.sessions_active conns_established)"

# 2. Loss: 16 parallel 8 MB echo round trips, with 1% then 3% of the
# frames on the namespace's interface dropped at random, both ways (so
# on both of the proxy's legs).
for loss in 1 3; do
    in_ns nft -f - <<NFT
table netdev tmstloss {
    chain in {
        type filter hook ingress device "$iface" priority 0; policy accept;
        numgen random mod 100 < $loss counter drop
    }
    chain out {
        type filter hook egress device "$iface" priority 0; policy accept;
        numgen random mod 100 < $loss counter drop
    }
}
NFT
    snap "$work/s2a.json"
    rs0=$(kstat TcpRetransSegs)
    storm 150 echo 198.18.7.2 80 16 8388608 --deadline 120 >"$work/echo$loss.json" 2>"$work/echo$loss.err"
    snap "$work/s2b.json"
    rs1=$(kstat TcpRetransSegs)
    dropped=$(in_ns nft list table netdev tmstloss | awk 'NF >= 5 && $(NF-4) == "packets" { n += $(NF-3) } END { print n + 0 }')
    in_ns nft delete table netdev tmstloss
    if [ -s "$work/echo$loss.json" ]; then
        load "$work/echo$loss.json"
        [ "$c_matched" = 16 ] && [ "$c_stalled" = 0 ] &&
            ok "$loss% loss: 16 parallel 8 MB round trips, SHA-256 matched, none stalled (slowest $c_slowest_round_trip_s s)" ||
            not_ok "$loss% loss: 16 parallel 8 MB round trips, SHA-256 matched, none stalled" \
                "matched $c_matched, stalled $c_stalled, slowest $c_slowest_round_trip_s s: $c_errors"
    else
        not_ok "$loss% loss: the echo client reports" "$(tail -20 "$work/echo$loss.err")"
    fi
    retrans=$(counters "$work/s2a.json" "$work/s2b.json" retransmits)
    [ "${dropped:-0}" -gt 0 ] && [ "$retrans" -gt 0 ] &&
        ok "$loss% loss: nftables dropped $dropped frames and terminusd retransmitted $retrans segments" ||
        not_ok "$loss% loss: frames were dropped and terminusd retransmitted" "dropped ${dropped:-0}, retransmits $retrans"
    diag "$work/s2a.json" "$work/s2b.json" retransmits fast_retransmits sack_retransmits rto_expired ooo_held \
        ooo_full no_memory out_of_window duplicate paws net.handoffs_in
    echo "# kernel retransmissions (clients and backend): $((rs1 - rs0))"
done

# 3. Closing first at the server, then port reuse: requests to a server
# whose backend closes first, from source ports bound in turn, so that
# each new SYN meets the 4-tuple terminusd still holds in TIME-WAIT (60 s)
# from the port's last connection and must take it over (RFC 6191, RFC
# 9293 3.10.7.4). First 10,000 from 1,000 ports (each 4-tuple reused
# within a second or so), then 2,000 from 20 ports, each reused as soon
# as our kernel has closed its side (microseconds after terminusd entered
# TIME-WAIT). Ports 20000-21019 are below the kernel's ephemeral range,
# so nothing else uses them.
reuse_pass() {  # reuse_pass LABEL COUNT PORT_LO NPORTS BUDGET
    local label=$1 count=$2 lo=$3 ports=$4 budget=$5 r=$work/reuse$3.json
    snap "$work/s3a.json"
    syn0=$(kstat TcpExtTCPSynRetrans)
    storm $((budget + 30)) reuse 198.18.7.2 81 "$count" "$lo" "$ports" 20 --source 198.18.7.1 --budget "$budget" \
        >"$r" 2>"$work/reuse.err"
    wait_for 10 idle
    snap "$work/s3b.json"
    syn1=$(kstat TcpExtTCPSynRetrans)
    if [ -s "$r" ]; then
        load "$r"
        local lat="p50 $c_p50_ms ms, p99 $c_p99_ms ms, max $c_max_ms ms"
        [ "$c_connected" = "$count" ] && [ "$c_connect_failed" = 0 ] &&
            ok "$label: $count connections from $ports ports, none failed to connect ($c_seconds s)" ||
            not_ok "$label: $count connections from $ports ports, none failed to connect" \
                "$c_attempted attempted in $budget s, $c_connected connected, $c_connect_failed failed: $c_errors"
        [ "$c_slow" = 0 ] && ok "$label: no connect took 1 s or more ($lat)" ||
            not_ok "$label: no connect took 1 s or more ($c_slow did; $lat)" \
                "slowest (s, port): $c_slowest; SYNs retransmitted: $((syn1 - syn0))"
        [ "$c_responses_ok" = "$count" ] && ok "$label: all $count requests got their response" ||
            not_ok "$label: all $count requests got their response (got $c_responses_ok)" "$c_errors"
    else
        not_ok "$label: the client reports" "$(tail -20 "$work/reuse.err")"
    fi
    local reused
    reused=$(counters "$work/s3a.json" "$work/s3b.json" time_wait_reused)
    [[ $reused =~ ^[0-9]+$ ]] && [ "$reused" -gt 0 ] && ok "$label: SYNs took over TIME-WAIT 4-tuples (time_wait_reused $reused)" ||
        not_ok "$label: SYNs took over TIME-WAIT 4-tuples (time_wait_reused $reused)"
    echo "# kernel SYN retransmissions: $((syn1 - syn0))"
    diag "$work/s3a.json" "$work/s3b.json" accepts time_wait_reused time_wait_reset time_wait_recycled \
        syn_challenged challenge_acks rst_out_of_window rst_time_wait rst_challenged resets_received resets_sent \
        paws out_of_window duplicate no_connection net.handoffs_in
    diag - "$work/s3b.json" conns_time_wait
}
reuse_pass "port reuse" 10000 20000 1000 60
reuse_pass "immediate port reuse" 2000 21000 20 30

kill -0 "$pid" 2>/dev/null && ok "terminusd is still running" || not_ok "terminusd is still running" "$(tail -20 "$work/log")"
echo "1..$n"
[ "$fails" -eq 0 ]
