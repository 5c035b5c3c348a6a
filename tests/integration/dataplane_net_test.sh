#!/usr/bin/env bash
# terminusd on a DPDK TAP device whose kernel side is in a private network
# namespace: ARP answered, ping answered (also with 2 lcores, so ARP is
# flooded between cores), hostile frames counted and dropped, directives
# not implemented yet refused by name, SIGTERM stops it cleanly.
# Output is TAP. Usage: dataplane_net_test.sh TERMINUSD SRC_ROOT
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup net terminusd src -- "$@"

ip netns add "$ns"
cat > "$work/net.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.0.2/24 gateway=198.18.0.1;
    lcores 0-1;
    mbufs 8191;
}
CONF

ip netns exec "$ns" "$terminusd" -c "$work/net.conf" -n "net$id" >"$work/log" 2>&1 &
pid=$!
if wait_for 30 grep -q "terminusd: running" "$work/log"; then
    ok "terminusd starts on a TAP device with 2 lcores"
else
    not_ok "terminusd starts on a TAP device with 2 lcores" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
grep -q "no free hugepages: running on anonymous memory" "$work/log" && ok "the log says when it runs without hugepages" ||
    not_ok "the log says when it runs without hugepages" "$(cat "$work/log")"
mac=$(sed -n 's/.*MAC \([0-9A-F:]*\),.*/\1/p' "$work/log" | head -1)
[ -n "$mac" ] && ok "the log names the port's MAC ($mac)" || not_ok "the log names the port's MAC"

ip -n "$ns" addr add 198.18.0.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up

out=$(ip netns exec "$ns" ping -c 5 -i 0.2 -W 2 198.18.0.2 2>&1)
if grep -q " 0% packet loss" <<<"$out"; then ok "ping is answered"; else not_ok "ping is answered" "$out"; fi
neigh=$(ip -n "$ns" neigh show 198.18.0.2)
if grep -qi "lladdr $mac" <<<"$neigh"; then ok "ARP for 198.18.0.2 is answered with the port's MAC"
else not_ok "ARP for 198.18.0.2 is answered with the port's MAC" "$neigh"; fi

out=$(ip netns exec "$ns" ping -c 3 -i 0.2 -W 2 -s 1400 -p 7465726d696e7573 198.18.0.2 2>&1)
if grep -q " 0% packet loss" <<<"$out"; then ok "a 1400-byte ping comes back"; else not_ok "a 1400-byte ping comes back" "$out"; fi

ip netns exec "$ns" python3 "$src/tests/integration/send_frames.py" "$iface" "$mac" 198.18.0.1 198.18.0.2
out=$(ip netns exec "$ns" ping -c 2 -i 0.2 -W 2 198.18.0.2 2>&1)
if grep -q " 0% packet loss" <<<"$out"; then ok "ping still answered after hostile frames"; else not_ok "ping still answered after hostile frames" "$out"; fi

kill -TERM "$pid"
if wait_for 10 bash -c "! kill -0 $pid"; then
    wait "$pid"; rc=$?
    pid=
    [ "$rc" -eq 0 ] && ok "SIGTERM stops terminusd with status 0" || not_ok "SIGTERM stops terminusd with status 0 (got $rc)"
else
    not_ok "SIGTERM stops terminusd within 10 s"
fi
counter() { sed -n "s/^terminusd:  *$1  *\([0-9]*\) .*/\1/p" "$work/log"; }
for c in icmp_echo_answered:10 arp_requests_answered:1 ip_bad_checksum:1 ip_bad_header:2 \
         ip_fragments:1 eth_unknown_type:1 arp_bad:1 icmp_bad:1 icmp_frag_needed:1; do
    name=${c%%:*}; min=${c##*:}
    v=$(counter "$name")
    if [ -n "$v" ] && [ "$v" -ge "$min" ]; then ok "counter $name = $v (>= $min)"
    else not_ok "counter $name >= $min (got '${v}')" "$(grep '^terminusd:  ' "$work/log")"; fi
done

# refused_at_start NAME FILE PATTERN: terminusd exits 1 on FILE (written
# from stdin) with a diagnostic matching PATTERN.
refused_at_start() {
    local what=$1 conf="$work/$2" pattern=$3 out rc
    cat > "$conf"
    out=$("$terminusd" -c "$conf" -n "net$id" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && grep -q "$pattern" <<<"$out"; then ok "$what"; else not_ok "$what (rc $rc)" "$out"; fi
}
# Directives the dataplane does not implement yet are refused by name.
refused_at_start "a directive not implemented yet is refused by name at start" stream.conf \
    'stream.conf:4:39: error: "proxy_download_rate" is valid but the dataplane does not implement it yet' <<CONF
dataplane { port net_tap0 iface=${iface}x address=198.18.0.2/24; }
stream {
    upstream b { server 198.18.0.1:8080; }
    server { listen 80; proxy_pass b; proxy_download_rate 10k; }
}
CONF
# A crypto device is refused too: no record engine submits to one yet.
refused_at_start "crypto cryptodev:DEVICE is refused at start, not silently done in software" cdev.conf \
    'cdev.conf:1:[0-9]*: error: "crypto cryptodev:crypto_aesni_mb0" (OpenSSL protects every record today' <<CONF
dataplane { port net_tap0 iface=${iface}x address=198.18.0.2/24; crypto cryptodev:crypto_aesni_mb0; }
stream {
    upstream b { server 198.18.0.1:8080; }
    server { listen 80; proxy_pass b; }
}
CONF

echo "1..$n"
[ "$fails" -eq 0 ]
