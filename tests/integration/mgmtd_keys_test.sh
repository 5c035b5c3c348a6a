#!/usr/bin/env bash
# terminus-mgmtd owns the session ticket keys and forwards reloads
# (mgmt/control_push.h): terminusd on a DPDK TAP device in a private
# namespace, mgmtd beside it on the same file. Tickets issued under mgmtd's
# keys resume across a SIGKILL and restart of mgmtd, across a restart of
# terminusd (mgmtd pushes its keys to the new one) and across mgmtd's
# rotation; resumptions are counted from terminusd's own counters, not only
# from s_client's word. SIGHUP to mgmtd reloads terminusd; a broken file is
# refused with FILE:LINE:COLUMN and the running generation serves on. With
# mgmtd gone for a rotation period, terminusd rotates its own keys again.
# Two rotation periods of 1 minute are waited for: about 2.5 minutes.
# Output is TAP.
# Usage: mgmtd_keys_test.sh TERMINUSD TERMINUSCTL TERMINUS_MGMTD SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup mk terminusd ctl mgmtd src certs -- "$@"
here="$src/tests/integration"
mpid=
extra_cleanup() {
    [ -n "$mpid" ] && { kill -KILL "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; }
    [ -n "${KEEP_LOG:-}" ] && cat "$work"/mgmtd*.log > /tmp/mgmtd_keys_test.mgmtd.log 2>/dev/null
}
sock="$work/control.sock"
tickets() {  # tickets FIELD: from terminusctl tickets --json
    "$ctl" tickets --socket "$sock" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}
stat() {  # stat GROUP NAME: the total of a counter
    "$ctl" stats --name "$name" --json |
        python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['$1']['$2']['total'])"
}
# The keys mgmtd made, oldest first, as its logs say (a run slower than a
# rotation period sees one more).
# mgmtd's lines: on its stderr, and in the error_log file once a reload names one
# (both programs write the file's top-level error_log).
mlog() { cat "$work"/mgmtd*.log "$work/error.log" 2>/dev/null; }
keys_made() { mlog | sed -n 's/.*session ticket key \([0-9a-f]\{32\}\) made.*/\1/p'; }
# eventually NAME SECONDS COMMAND...: ok once COMMAND succeeds within SECONDS.
eventually() {
    local what=$1; shift
    if wait_for "$@"; then ok "$what"; else not_ok "$what" "not within $1 s"; fi
}
generation() { "$ctl" status --socket "$sock" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['generation'])"; }
# get_ticket FILE [-tls1_2]: a full handshake that saves its ticket.
get_ticket() {
    local f=$1; shift
    in_ns timeout 3 openssl s_client -connect 198.18.14.2:443 -servername example.com -CAfile "$certs/ca.crt" \
        -sess_out "$f" -ign_eof "$@" <<<"" 2>&1 | grep -oE '^(Reused|New)' | head -1
}
# resume FILE [-tls1_2]: Reused or New, as s_client says.
resume() {
    local f=$1; shift
    in_ns timeout 5 openssl s_client -connect 198.18.14.2:443 -servername example.com -CAfile "$certs/ca.crt" \
        -sess_in "$f" "$@" </dev/null 2>&1 | grep -oE '^(Reused|New)' | head -1
}
# resumes NAME FILE [-tls1_2]: ok when FILE's ticket resumes and terminusd
# counts one more resumption by ticket.
resumes() {
    local what=$1 f=$2; shift 2
    local before got after
    before=$(stat tls handshakes_resumed_ticket)
    got=$(resume "$f" "$@")
    wait_for 3 bash -c "[ \$('$ctl' stats --name '$name' --json | python3 -c \"import json,sys; print(json.load(sys.stdin)['stats']['tls']['handshakes_resumed_ticket']['total'])\") -gt $before ]"
    after=$(stat tls handshakes_resumed_ticket)
    if [ "$got" = Reused ] && [ "$after" -gt "$before" ]; then
        ok "$what (s_client: $got; handshakes_resumed_ticket $before -> $after)"
    else
        not_ok "$what" "s_client: ${got:-nothing}; handshakes_resumed_ticket $before -> $after"
    fi
}

ip netns add "$ns"
ip -n "$ns" link set lo up
write_conf() {  # write_conf FILE PROXY_TIMEOUT [TOP-LEVEL LINE]
    cat > "$1" <<CONF
${3:-}
dataplane {
    port net_tap0 iface=$iface address=198.18.14.2/24 gateway=198.18.14.1;
    lcores 0-1;
    mbufs 16383;
    shutdown_timeout 1s;
}
mgmt {
    control unix:$sock;
    ticket_key_rotation 1m;
}
stream {
    upstream echo { server 198.18.14.1:9001; }
    server {
        listen 443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_timeout $2;
        proxy_pass echo;
    }
}
CONF
}
write_conf "$work/t.conf" 10m

start_terminusd() {  # start_terminusd LOG
    ip netns exec "$ns" "$terminusd" -c "$work/t.conf" -n "$name" >"$1" 2>&1 &
    pid=$!
    wait_for 30 grep -q "terminusd: running;" "$1"
}
start_mgmtd() {  # start_mgmtd LOG
    ip netns exec "$ns" "$mgmtd" -c "$work/t.conf" -n "$name" >"$1" 2>&1 &
    mpid=$!
    wait_for 10 grep -q "running (pid" "$1"
}
if ! start_terminusd "$work/log"; then
    not_ok "terminusd starts" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts"
# The TAP device is terminusd's: a new one at each start, to address again.
net_up() {
    ip -n "$ns" addr add 198.18.14.1/24 dev "$iface" && ip -n "$ns" link set "$iface" up || return 1
    ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.14.1 9001 >"$work/backend.log" 2>&1 &
    bg+=($!)
    wait_for 10 grep -q ready "$work/backend.log"
}
net_up || not_ok "the backend starts" "$(cat "$work/backend.log")"

# Alone, terminusd rotates its own keys.
[ "$(tickets rotated_by)" = terminusd ] && ok "without mgmtd, terminusd rotates its own ticket keys" ||
    not_ok "without mgmtd, terminusd rotates its own ticket keys" "$("$ctl" tickets --socket "$sock" --json)"
own=$(tickets current)

start_mgmtd "$work/mgmtd.log" && ok "terminus-mgmtd starts" || not_ok "terminus-mgmtd starts" "$(cat "$work/mgmtd.log")"
key1=$(sed -n 's/.*session ticket key \([0-9a-f]\{32\}\) made.*/\1/p' "$work/mgmtd.log" | head -1)
eventually "mgmtd's key is pushed to terminusd at once" 10 bash -c "[ \"\$('$ctl' tickets --socket '$sock' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"current\"])')\" = '$key1' ] && echo $key1"
[ "$(tickets rotated_by)" = terminus-mgmtd ] && [ "$(tickets previous)" = "$own" ] &&
    ok "terminusctl tickets: rotated by terminus-mgmtd, terminusd's own key now the previous one" ||
    not_ok "terminusctl tickets: rotated by terminus-mgmtd" "$("$ctl" tickets --socket "$sock" --json)"
out=$("$ctl" tickets --socket "$sock" 2>&1)
grep -q "rotated by terminus-mgmtd every 60 s" <<<"$out" && grep -q "current   $key1" <<<"$out" &&
    ok "terminusctl tickets prints the table" || not_ok "terminusctl tickets prints the table" "$out"
grep -q "session ticket key $key1 from terminus-mgmtd encrypts new tickets" "$work/log" &&
    ok "terminusd logs the key it took" || not_ok "terminusd logs the key it took" "$(tail -5 "$work/log")"

# Tickets under mgmtd's first key, TLS 1.3 and 1.2.
[ "$(get_ticket "$work/t13")" = New ] && [ "$(get_ticket "$work/t12" -tls1_2)" = New ] &&
    ok "full handshakes issue tickets (TLS 1.3 and 1.2)" || not_ok "full handshakes issue tickets"
resumes "a TLS 1.3 ticket under mgmtd's key resumes" "$work/t13"
resumes "a TLS 1.2 ticket under mgmtd's key resumes" "$work/t12" -tls1_2

# mgmtd killed and restarted: a new key, the old one still decrypts.
kill -KILL "$mpid"; wait "$mpid" 2>/dev/null; mpid=
start_mgmtd "$work/mgmtd2.log" || not_ok "terminus-mgmtd restarts" "$(cat "$work/mgmtd2.log")"
key2=$(sed -n 's/.*session ticket key \([0-9a-f]\{32\}\) made.*/\1/p' "$work/mgmtd2.log" | head -1)
wait_for 10 bash -c "[ \"\$('$ctl' tickets --socket '$sock' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"current\"])')\" = '$key2' ]" &&
    [ "$(tickets previous)" = "$key1" ] &&
    ok "a restarted mgmtd pushes a new key; the killed one's decrypts" ||
    not_ok "a restarted mgmtd pushes a new key; the killed one's decrypts" "$("$ctl" tickets --socket "$sock" --json)"
resumes "a ticket issued before mgmtd's SIGKILL resumes after its restart" "$work/t13"
get_ticket "$work/t13b" >/dev/null

# SIGHUP to mgmtd: terminusd reloads; a broken file is refused.
g=$(generation)
write_conf "$work/t.conf" 11m "error_log $work/error.log notice;"
kill -HUP "$mpid"
eventually "SIGHUP to mgmtd reloads terminusd (generation $g -> $((g + 1)))" 15 bash -c "[ \"\$('$ctl' status --socket '$sock' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"generation\"])')\" = $((g + 1)) ] && echo generation $((g + 1))"
wait_for 10 bash -c "cat '$work'/mgmtd2.log '$work'/error.log 2>/dev/null | grep -q 'terminusd: generation $((g + 1)) from $work/t.conf'" &&
    ok "mgmtd logs terminusd's answer" || not_ok "mgmtd logs terminusd's answer" "$(mlog | tail -5)"
sed -i 's/proxy_timeout 11m;/proxy_timeout 11 minutes;/' "$work/t.conf"
kill -HUP "$mpid"
if wait_for 10 grep -q "$work/t.conf:[0-9]*:[0-9]*: error" "$work/error.log"; then
    ok "mgmtd refuses a broken file with FILE:LINE:COLUMN, in the error_log ($(grep -m1 -o "t.conf:[0-9]*:[0-9]*: error.*" "$work/error.log"))"
else
    not_ok "mgmtd refuses a broken file with FILE:LINE:COLUMN, in the error_log" "$(mlog | tail -5)"
fi
sleep 1
[ "$(generation)" = $((g + 1)) ] && ok "terminusd's generation $((g + 1)) still serves" ||
    not_ok "terminusd's generation $((g + 1)) still serves" "generation $(generation)"
resumes "terminusd serves through the refused reload" "$work/t13b"
write_conf "$work/t.conf" 11m

# mgmtd's own rotation (ticket_key_rotation 1m after it started): the new
# key encrypts, the one before decrypts.
eventually "mgmtd rotates its key after ticket_key_rotation" 75 bash -c "[ \$(cat '$work'/mgmtd*.log '$work'/error.log 2>/dev/null | grep -c 'session ticket key [0-9a-f]* made') -ge 3 ]"
key3=$(keys_made | tail -1)
eventually "terminusd takes the rotated key (in the error_log the reload named)" 10 \
    grep -q "session ticket key $key3 from terminus-mgmtd" "$work/error.log"
grep -q "session ticket key $key3" "$work/log" && not_ok "after the reload nothing more goes to stderr" ||
    ok "after the reload nothing more goes to stderr"
[ "$(tickets current)" = "$key3" ] && [ "$(tickets previous)" = "$key2" ] &&
    ok "after mgmtd's rotation its previous key decrypts" ||
    not_ok "after mgmtd's rotation its previous key decrypts" "$("$ctl" tickets --socket "$sock" --json)"
resumes "a ticket under mgmtd's previous key resumes" "$work/t13b"

# terminusd restarted: mgmtd gives the new one both keys, and tickets
# issued by the old terminusd resume on the new one.
kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
for b in "${bg[@]}"; do kill -KILL "$b" 2>/dev/null; wait "$b" 2>/dev/null; done
bg=()
if start_terminusd "$work/log2" && net_up; then
    ok "terminusd restarts beside mgmtd"
else
    not_ok "terminusd restarts beside mgmtd" "$(cat "$work/log2")"
fi
eventually "mgmtd pushes its keys to the restarted terminusd" 15 grep -q "session ticket key $key3 from terminus-mgmtd encrypts new tickets" "$work/log2"
[ "$(tickets current)" = "$key3" ] && [ "$(tickets previous)" = "$key2" ] &&
    ok "the restarted terminusd holds mgmtd's current and previous keys" ||
    not_ok "the restarted terminusd holds mgmtd's current and previous keys" "$("$ctl" tickets --socket "$sock" --json)"
resumes "a ticket from the old terminusd, under mgmtd's previous key, resumes on the new one" "$work/t13b"
get_ticket "$work/t13c" >/dev/null
resumes "a ticket under mgmtd's current key resumes" "$work/t13c"

# mgmtd gone for a rotation period (1m): terminusd rotates by itself again.
kill -KILL "$mpid"; wait "$mpid" 2>/dev/null; mpid=
eventually "with mgmtd gone for a rotation period, terminusd rotates its own keys again" 90 bash -c \
    "[ \"\$('$ctl' tickets --socket '$sock' --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j[\"rotated_by\"], j[\"current\"] != \"$key3\")')\" = 'terminusd True' ] && echo rotated"
grep -q "pushed no ticket key for one rotation period" "$work/log2" && ok "terminusd logs that it rotates again" ||
    not_ok "terminusd logs that it rotates again" "$(tail -5 "$work/log2")"
[ "$(tickets previous)" = "$key3" ] && ok "mgmtd's last key is the previous one" ||
    not_ok "mgmtd's last key is the previous one" "$("$ctl" tickets --socket "$sock" --json)"
resumes "a ticket under mgmtd's last key still resumes" "$work/t13c"

kill -0 "$pid" 2>/dev/null && ok "terminusd runs on" || not_ok "terminusd runs on"
echo "1..$n"
[ "$fails" -eq 0 ]
