#!/usr/bin/env bash
# terminus-mgmtd end to end: terminusd on a DPDK TAP device in a private
# namespace, terminus-mgmtd on the same configuration serving the
# Prometheus endpoint on the namespace's loopback. Scrapes are parsed
# strictly and checked against terminusctl stats --json; mgmtd is killed
# with SIGKILL under a stream of connections, which must not lose one;
# terminus_up 0 once terminusd is gone; SIGHUP, SIGUSR1 and SIGTERM.
# Output is TAP.
# Usage: mgmtd_test.sh TERMINUSD TERMINUSCTL TERMINUS_MGMTD SRC_ROOT CERTS
set -uo pipefail

. "$(dirname "$(realpath "$0")")/tap_lib.sh"
lab_setup mg terminusd ctl mgmtd src certs -- "$@"
port=19145
mpid=
stream=
extra_cleanup() {
    [ -n "$stream" ] && { kill -KILL "$stream" 2>/dev/null; wait "$stream" 2>/dev/null; }
    [ -n "$mpid" ] && { kill -KILL "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null; }
    if [ -n "${KEEP_LOG:-}" ]; then
        cp "$work/log" /tmp/mgmtd_test.terminusd.log
        cat "$work"/mgmtd*.log > /tmp/mgmtd_test.mgmtd.log 2>/dev/null
    fi
}

# The strict reader of the text format (0.0.4) and the HTTP clients the
# checks below use, all run in the namespace.
cat > "$work/prom.py" <<'PY'
import json, re, socket, sys, threading, time, urllib.request

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*$')

def parse(text):
    """Every line # HELP, # TYPE or NAME{LABELS} VALUE; HELP and TYPE once
    per family and before its samples, which are contiguous; no series
    twice. Returns {(name, ((k, v), ...)): value} and the family types."""
    if not text.endswith("\n"):
        raise ValueError("no final line feed")
    helps, types, series, closed, current = {}, {}, {}, set(), None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("#"):
            m = re.match(r'# (HELP|TYPE) ([^ ]+)(?: (.*))?$', line)
            if not m or not NAME.match(m.group(2)):
                raise ValueError("a comment that is neither HELP nor TYPE, " + where)
            kind, fam, rest = m.group(1), m.group(2), m.group(3) or ""
            if fam in closed or fam == current:
                raise ValueError(kind + " after the family's samples, " + where)
            table = helps if kind == "HELP" else types
            if fam in table:
                raise ValueError(kind + " twice, " + where)
            if kind == "TYPE" and rest not in ("counter", "gauge"):
                raise ValueError("unexpected TYPE, " + where)
            table[fam] = rest
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? ([^ ]+)$', line)
        if not m:
            raise ValueError("not a sample, " + where)
        fam, raw, value = m.group(1), m.group(2), m.group(3)
        labels = []
        if raw:
            body, i = raw[1:-1], 0
            while i < len(body):
                eq = body.index("=", i)
                key = body[i:eq]
                if not LABEL.match(key) or body[eq + 1] != '"':
                    raise ValueError("bad label, " + where)
                j, val = eq + 2, ""
                while body[j] != '"':
                    if body[j] == "\\":
                        val += {"\\": "\\", '"': '"', "n": "\n"}[body[j + 1]]
                        j += 2
                    else:
                        val += body[j]
                        j += 1
                labels.append((key, val))
                i = j + 1
                if i < len(body):
                    if body[i] != ",":
                        raise ValueError("expected a comma, " + where)
                    i += 1
            if len({k for k, _ in labels}) != len(labels):
                raise ValueError("a label twice, " + where)
        if fam not in helps or fam not in types:
            raise ValueError("no HELP or TYPE before, " + where)
        if fam != current:
            if fam in closed:
                raise ValueError("samples not contiguous, " + where)
            if current:
                closed.add(current)
            current = fam
        key = (fam, tuple(sorted(labels)))
        if key in series:
            raise ValueError("series twice, " + where)
        series[key] = float(value)
    return series, types

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()

def one(series, fam, **labels):
    return series[(fam, tuple(sorted(labels.items())))]

def terminusctl(ctl, name):
    import subprocess
    return json.loads(subprocess.run([ctl, "stats", "--name", name, "--json"], check=True,
                                     capture_output=True, text=True).stdout)

def compare(url, ctl, name):
    """Every counter terminusctl shows the same just before and just after
    the scrape must be what the scrape says; and the labelled groups."""
    a = terminusctl(ctl, name)
    status, ctype, body = get(url)
    b = terminusctl(ctl, name)
    s, _ = parse(body)
    fams = {k[0] for k in s}
    checked = 0
    assert one(s, "terminus_up") == 1
    assert one(s, "terminus_process_pid") == a["pid"], "pid"
    assert one(s, "terminus_process_cores") == a["cores"], "cores"
    assert one(s, "terminus_process_start_time_seconds") == a["started"], "started"
    for group in ("net", "tcp", "proxy", "tls", "upstream_tls", "loop", "memory"):
        for stat, v in a["stats"].get(group, {}).items():
            if v != b["stats"][group][stat] or not isinstance(v, dict):
                continue  # moved while we looked (the loop's counters always do)
            if group == "tls" and stat.startswith("failed_"):
                fam, lab = None, None  # as tls_server's, below
            elif group == "upstream_tls" and stat.startswith("failed_"):
                fam, lab = "terminus_upstream_tls_handshake_failures_total", {"reason": stat[7:]}
            elif group == "tcp" and stat.startswith("conns_"):
                fam, lab = "terminus_tcp_connections", {"state": stat[6:].upper()}
            else:
                key = "terminus_%s_%s" % (group, stat)
                fam, lab = (key + "_total" if key + "_total" in fams else key), {}
            if fam is None:
                continue
            got = one(s, fam, **lab)
            assert got == v["total"], "%s %s: scraped %s, terminusctl %s" % (fam, lab, got, v["total"])
            checked += 1
    # Per TLS server block and reason, and the per-core sum they make.
    for where, stats in a["stats"].get("tls_server", {}).items():
        for stat, v in stats.items():
            if stat.startswith("failed_") and v == b["stats"]["tls_server"][where][stat]:
                got = one(s, "terminus_tls_handshake_failures_total", server=where, reason=stat[7:])
                assert got == v["total"], (where, stat, got, v["total"])
                checked += 1
    # Per upstream server, HAProxy's way.
    for where, stats in a["stats"].get("upstream", {}).items():
        group, server = where.rsplit("/", 1)
        for state in ("up", "down", "unavail", "unhealthy", "checking"):
            want = 1 if stats["state"] == state else 0
            assert one(s, "terminus_server_status", proxy=group, server=server, state=state.upper()) == want, (where, state)
        assert one(s, "terminus_server_current_sessions", proxy=group, server=server) == stats["conns"]["total"]
        assert one(s, "terminus_server_checks_total", proxy=group, server=server) == stats["checks"]["total"]
        checked += 3
    print("%d values agree with terminusctl (%d series, %d bytes)" % (checked, len(s), len(body)))

def check_up(url, want):
    status, ctype, body = get(url)
    s, types = parse(body)
    assert status == 200, status
    assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
    assert one(s, "terminus_up") == want, "terminus_up %s" % one(s, "terminus_up")
    assert ("process_open_fds", ()) in s and ("process_start_time_seconds", ()) in s
    has_process = any(k[0].startswith("terminus_process_") for k in s)
    assert has_process == (want == 1), "terminus_process_* %s" % has_process
    print("terminus_up %d, %d series" % (want, len(s)))

def raw(host, port, data, timeout=15):
    """Sends DATA, returns what came back until the close and how long."""
    t = time.time()
    c = socket.create_connection((host, port), timeout=timeout)
    if data:
        c.sendall(data)
    got = b""
    while True:
        try:
            d = c.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        got += d
    c.close()
    return got, time.time() - t

def concurrent(host, port, n):
    """N scrapes at once while a client that sends nothing holds a
    connection; every one is whole; then the silent one is closed by the
    server on its request timeout."""
    silent = socket.create_connection((host, port), timeout=30)
    t0 = time.time()
    results = [None] * n
    def scrape(i):
        try:
            results[i] = get("http://%s:%d/metrics" % (host, port))
        except Exception as e:
            results[i] = e
    threads = [threading.Thread(target=scrape, args=(i,)) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    for r in results:
        assert not isinstance(r, Exception) and r[0] == 200, r
        parse(r[2])
    during = time.time() - t0
    try:
        d = silent.recv(100)
    except ConnectionResetError:
        d = b""
    closed = time.time() - t0
    assert d == b"", d
    assert 3 <= closed <= 9, "the silent client was closed after %.1f s" % closed
    print("%d parallel scrapes whole in %.2f s beside a silent client, closed after %.1f s" % (n, during, closed))

def size(url):
    status, ctype, body = get(url)
    s, _ = parse(body)
    print("%d bytes, %d series, %d families" % (len(body), len(s), len({k[0] for k in s})))

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "up":
        check_up(sys.argv[2], int(sys.argv[3]))
    elif cmd == "concurrent":
        concurrent(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "size":
        size(sys.argv[2])
    elif cmd == "raw":
        got, took = raw(sys.argv[2], int(sys.argv[3]), sys.argv[4].encode().decode("unicode_escape").encode("latin-1"))
        print(got.split(b"\r\n")[0].decode(errors="replace"), "after %.1f s" % took)
    elif cmd == "big":
        got, took = raw(sys.argv[2], int(sys.argv[3]), b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
        print(got.split(b"\r\n")[0].decode(errors="replace"))
PY
prom() { in_ns timeout 120 python3 "$work/prom.py" "$@"; }
url=http://127.0.0.1:$port/metrics

ip netns add "$ns"
ip -n "$ns" link set lo up
cat > "$work/mgmt.conf" <<CONF
dataplane {
    port net_tap0 iface=$iface address=198.18.12.2/24 gateway=198.18.12.1;
    lcores 0-1;
    mbufs 32767;
    shutdown_timeout 2s;
}
mgmt {
    control unix:$work/control.sock;
    metrics 127.0.0.1:$port;
}
stream {
    proxy_half_close on;
    upstream echo {
        server 198.18.12.1:9001;
        server 198.18.12.1:9002;
    }
    upstream nobody { server 198.18.12.1:9009; }
    server { listen 80; proxy_pass echo; }
    server { listen 81; proxy_pass nobody; }
    server {
        listen 443 ssl;
        ssl_certificate     $certs/ecdsa.crt;
        ssl_certificate_key $certs/ecdsa.key;
        proxy_pass echo;
    }
}
CONF

# -t: the same diagnostics as terminusd's, FILE:LINE:COLUMN.
out=$("$mgmtd" -t -c "$work/mgmt.conf" 2>&1) && grep -q "test is successful" <<<"$out" &&
    ok "terminus-mgmtd -t accepts the configuration terminusd runs" ||
    not_ok "terminus-mgmtd -t accepts the configuration terminusd runs" "$out"
sed 's/proxy_pass echo; }/proxy_pas echo; }/' "$work/mgmt.conf" > "$work/broken.conf"
out=$("$mgmtd" -t -c "$work/broken.conf" 2>&1); rc=$?
[ "$rc" -eq 1 ] && grep -q "^$work/broken.conf:[0-9]*:[0-9]*: error: unknown directive \"proxy_pas\"" <<<"$out" &&
    ok "terminus-mgmtd -t refuses a broken file with its line and column" ||
    not_ok "terminus-mgmtd -t refuses a broken file with its line and column (status $rc)" "$out"

# Not through in_ns: $! must be the process itself, not a subshell.
ip netns exec "$ns" "$terminusd" -c "$work/mgmt.conf" -n "$name" >"$work/log" 2>&1 &
pid=$!
if ! wait_for 30 grep -q "terminusd: running" "$work/log"; then
    not_ok "terminusd starts with mgmt { control; metrics; }" "$(cat "$work/log")"
    echo "1..$n"; exit 1
fi
ok "terminusd starts with mgmt { control; metrics; }"
ip -n "$ns" addr add 198.18.12.1/24 dev "$iface"
ip -n "$ns" link set "$iface" up
ip netns exec "$ns" python3 "$here/lab_backend.py" 198.18.12.1 9001 9002 >"$work/backend.log" 2>&1 &
bg+=($!)
wait_for 10 grep -q ready "$work/backend.log" || not_ok "backends start" "$(cat "$work/backend.log")"

start_mgmtd() {  # start_mgmtd LOG: in the namespace, its loopback is the test's own
    ip netns exec "$ns" "$mgmtd" -c "$work/mgmt.conf" -n "$name" >"$1" 2>&1 &
    mpid=$!
    wait_for 10 grep -q "metrics: serving http://127.0.0.1:$port/metrics" "$1"
}
start_mgmtd "$work/mgmtd.log" && ok "terminus-mgmtd serves the metrics endpoint" ||
    not_ok "terminus-mgmtd serves the metrics endpoint" "$(cat "$work/mgmtd.log")"

# Traffic: echo sessions, refused upstream connects, TLS handshakes, and
# TLS failures (plain HTTP to the TLS port).
client() { in_ns timeout 300 python3 "$here/lab_client.py" "$@"; }
check "200 echo connections through terminusd" client echo 198.18.12.2 80 200 10000 8
check "a port whose upstream refuses closes the client" client refused 198.18.12.2 81
for i in 1 2 3; do
    in_ns timeout 10 openssl s_client -connect 198.18.12.2:443 -servername example.com -CAfile "$certs/ca.crt" \
        -brief </dev/null >"$work/s_client.log" 2>&1
done
grep -q "Verification: OK" "$work/s_client.log" && ok "TLS handshakes through terminusd" ||
    not_ok "TLS handshakes through terminusd" "$(cat "$work/s_client.log")"
for i in 1 2; do prom raw 198.18.12.2 443 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >/dev/null; done
json() { "$ctl" stats --name "$name" --json; }
idle() {
    json | python3 -c 'import json,sys; d=json.load(sys.stdin)["stats"]
sys.exit(d["proxy"]["sessions_active"]["total"] != 0 or d["tls"]["failed_malformed"]["total"] < 2)'
}
wait_for 10 idle || not_ok "terminusd goes idle after the traffic" "$(json)"

# The scrape, strictly parsed, against terminusctl --json read just before
# and just after it.
out=$(prom compare "$url" "$ctl" "$name" 2>&1) && ok "scrape parses strictly; $out" ||
    not_ok "scrape parses strictly and agrees with terminusctl stats --json" "$out"
out=$(prom up "$url" 1 2>&1) && ok "GET /metrics: 200, text format 0.0.4, terminus_up 1 ($out)" ||
    not_ok "GET /metrics: 200, text format 0.0.4, terminus_up 1" "$out"
body=$(in_ns curl -s "$url")
[ -n "${KEEP_LOG:-}" ] && printf '%s\n' "$body" > /tmp/mgmtd_test.metrics
grep -q '^terminus_tls_handshake_failures_total{server="'"$work"'/mgmt.conf:[0-9]*",reason="malformed"} [1-9]' <<<"$body" &&
    ok "TLS failures are labelled by server block and reason" ||
    not_ok "TLS failures are labelled by server block and reason" "$(grep handshake_failures <<<"$body")"
grep -q '^terminus_server_status{proxy="echo",server="198.18.12.1:9001",state="UP"} 1$' <<<"$body" &&
    grep -q '^terminus_server_status{proxy="echo",server="198.18.12.1:9001",state="DOWN"} 0$' <<<"$body" &&
    ok "an upstream server's state is one series per state" ||
    not_ok "an upstream server's state is one series per state" "$(grep server_status <<<"$body")"
accepts=$(sed -n 's/^terminus_proxy_accepts_total \([0-9]*\)$/\1/p' <<<"$body")
[ "${accepts:-0}" -ge 203 ] && ok "terminus_proxy_accepts_total counts the sessions ($accepts)" ||
    not_ok "terminus_proxy_accepts_total counts the sessions (got '${accepts:-}')"

# HTTP: the index page, 404, 405, HEAD, an oversized request.
out=$(in_ns curl -s -w ' %{http_code} %{content_type}' "http://127.0.0.1:$port/")
[[ "$out" == *'href="/metrics"'*' 200 text/html; charset=utf-8' ]] && ok "GET / is a page linking /metrics" ||
    not_ok "GET / is a page linking /metrics" "$out"
out=$(in_ns curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nothing")
[ "$out" = 404 ] && ok "another path is 404" || not_ok "another path is 404 (got $out)"
out=$(in_ns curl -s -D - -o /dev/null -X POST "$url")
grep -q "^HTTP/1.1 405" <<<"$out" && grep -qi "^Allow: GET, HEAD" <<<"$out" && ok "POST is 405 with Allow" ||
    not_ok "POST is 405 with Allow" "$out"
out=$(in_ns curl -s -I "$url")
head_len=$(in_ns curl -s -I "$url" -o /dev/null -w '%{size_download}')
grep -q "^HTTP/1.1 200" <<<"$out" && grep -qi "^Content-Length: [1-9]" <<<"$out" && [ "$head_len" = 0 ] &&
    ok "HEAD /metrics answers the headers only" || not_ok "HEAD /metrics answers the headers only" "$out"
out=$(prom big 127.0.0.1 "$port" 2>&1)
[[ "$out" == "HTTP/1.1 431"* ]] && ok "a request past 8 KiB is refused ($out)" ||
    not_ok "a request past 8 KiB is refused" "$out"
out=$(prom raw 127.0.0.1 "$port" 'BREW /metrics HTCPCP/1.0\r\n\r\n' 2>&1)
[[ "$out" == "HTTP/1.1 400"* ]] && ok "a bad request line is 400" || not_ok "a bad request line is 400" "$out"
out=$(prom concurrent 127.0.0.1 "$port" 20 2>&1) && ok "$out" ||
    not_ok "parallel scrapes beside a silent client, which times out" "$out"
# 100 scrapes with curl, one after the other: what each takes.
times=$(in_ns bash -c "for i in \$(seq 100); do curl -s -o /dev/null -w '%{http_code} %{time_total}\n' '$url'; done")
mean=$(awk '$1 != 200 {exit 1} {s += $2; if ($2 > max) max = $2}
            END {if (NR != 100) exit 1; printf "mean %.2f ms, max %.2f ms", 1000 * s / NR, 1000 * max}' <<<"$times")
size=$(prom size "$url" 2>&1)
[ -n "$mean" ] && ok "100 scrapes with curl: $mean; $size" || not_ok "100 scrapes with curl" "$times $size"

# SIGKILL under load: a stream of connections through terminusd while
# mgmtd dies and restarts; not one of them may fail.
in_ns timeout 300 python3 "$here/lab_client.py" echo 198.18.12.2 80 10000 2000 8 >"$work/stream.log" 2>&1 &
stream=$!
before=$(json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["proxy"]["accepts"]["total"])')
started() { [ "$(json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["proxy"]["accepts"]["total"])')" -ge $((before + 300)) ]; }
wait_for 60 started || not_ok "the stream of connections starts"
kill -KILL "$mpid"; wait "$mpid" 2>/dev/null; mpid=
if in_ns curl -s -o /dev/null --max-time 2 "$url"; then
    not_ok "the endpoint is gone with the killed mgmtd"
else
    ok "the endpoint is gone with the killed mgmtd"
fi
kill -0 "$pid" 2>/dev/null && ok "terminusd runs on without mgmtd" || not_ok "terminusd runs on without mgmtd"
start_mgmtd "$work/mgmtd2.log" && ok "terminus-mgmtd restarts on the same address at once" ||
    not_ok "terminus-mgmtd restarts on the same address at once" "$(cat "$work/mgmtd2.log")"
out=$(prom up "$url" 1 2>&1) && ok "the restarted mgmtd scrapes terminusd ($out)" ||
    not_ok "the restarted mgmtd scrapes terminusd" "$out"
kill -0 "$stream" 2>/dev/null && ok "the stream of connections outlasts the kill and the restart" ||
    not_ok "the stream of connections outlasts the kill and the restart" "$(cat "$work/stream.log")"
if wait "$stream"; then
    ok "no connection failed while mgmtd was killed and restarted ($(tail -1 "$work/stream.log"))"
else
    not_ok "no connection failed while mgmtd was killed and restarted" "$(cat "$work/stream.log")"
fi
stream=

# terminusd stops: the scrape still answers, terminus_up 0.
cp "/dev/shm/terminus-$name.stats" "$work/segment"
kill -TERM "$pid"
if wait_for 15 bash -c "! kill -0 $pid"; then
    wait "$pid"; pid=
else
    not_ok "terminusd stops on SIGTERM"
fi
out=$(prom up "$url" 0 2>&1) && ok "with terminusd stopped the scrape answers 200 ($out)" ||
    not_ok "with terminusd stopped the scrape answers 200 and terminus_up 0" "$out"
grep -q "terminusd is not running as instance \"$name\".*terminus_up 0" "$work/mgmtd2.log" &&
    ok "mgmtd logs that terminusd is gone" || not_ok "mgmtd logs that terminusd is gone" "$(cat "$work/mgmtd2.log")"
# What a terminusd killed with SIGKILL leaves: its segment, its pid gone.
cp "$work/segment" "/dev/shm/terminus-$name.stats"
out=$(prom up "$url" 0 2>&1) && grep -q "terminusd pid [0-9]* of instance \"$name\" is gone" "$work/mgmtd2.log" &&
    ok "a segment left by a dead terminusd is terminus_up 0 ($out)" ||
    not_ok "a segment left by a dead terminusd is terminus_up 0" "$out $(tail -3 "$work/mgmtd2.log")"
rm -f "/dev/shm/terminus-$name.stats"

# SIGHUP: a broken file is refused and the endpoint stays; a new metrics
# address rebinds. (terminusd is gone: the file is mgmtd's alone now.)
cp "$work/mgmt.conf" "$work/good.conf"
cp "$work/broken.conf" "$work/mgmt.conf"
kill -HUP "$mpid"
if wait_for 5 grep -q "SIGHUP: .* test failed ([0-9]* errors*): the running configuration stays" "$work/mgmtd2.log" &&
    grep -q "terminus-mgmtd: $work/mgmt.conf:[0-9]*:[0-9]*: error: unknown directive \"proxy_pas\"" "$work/mgmtd2.log" &&
    prom up "$url" 0 >/dev/null 2>&1; then
    ok "SIGHUP with a broken file: refused with its line, the endpoint serves on"
else
    not_ok "SIGHUP with a broken file: refused with its line, the endpoint serves on" "$(cat "$work/mgmtd2.log")"
fi
sed "s/metrics 127.0.0.1:$port;/metrics 127.0.0.1:$((port + 1));/" "$work/good.conf" > "$work/mgmt.conf"
kill -HUP "$mpid"
new=http://127.0.0.1:$((port + 1))/metrics
if wait_for 5 grep -q "SIGHUP: configuration file .* taken (metrics 127.0.0.1:$((port + 1)))" "$work/mgmtd2.log" &&
    prom up "$new" 0 >/dev/null 2>&1 && ! in_ns curl -s -o /dev/null --max-time 2 "$url"; then
    ok "SIGHUP with a new metrics address rebinds"
else
    not_ok "SIGHUP with a new metrics address rebinds" "$(cat "$work/mgmtd2.log")"
fi
kill -USR1 "$mpid"
wait_for 5 grep -q "SIGUSR1: reopening logs" "$work/mgmtd2.log" && ok "SIGUSR1 is taken (log reopening)" ||
    not_ok "SIGUSR1 is taken (log reopening)" "$(cat "$work/mgmtd2.log")"
kill -TERM "$mpid"
if wait_for 5 bash -c "! kill -0 $mpid"; then
    wait "$mpid"; rc=$?; mpid=
    [ "$rc" -eq 0 ] && grep -q "SIGTERM: exiting" "$work/mgmtd2.log" && ok "SIGTERM ends terminus-mgmtd cleanly" ||
        not_ok "SIGTERM ends terminus-mgmtd cleanly (status $rc)" "$(cat "$work/mgmtd2.log")"
else
    not_ok "SIGTERM ends terminus-mgmtd within 5 s"
fi
lines=$(grep -vc "^terminus-mgmtd: " "$work/mgmtd.log" "$work/mgmtd2.log" | awk -F: '{s += $NF} END {print s}')
[ "$lines" = 0 ] && ok "every line mgmtd logged starts with terminus-mgmtd:" ||
    not_ok "every line mgmtd logged starts with terminus-mgmtd:" "$(grep -v '^terminus-mgmtd: ' "$work"/mgmtd*.log)"

echo "1..$n"
[ "$fails" -eq 0 ]
