#!/usr/bin/env bash
# The benchmark harness end to end, in seconds: perf/macro/run --smoke runs
# every workload against terminusd (terminus-loadgen over net_memif),
# nginx and HAProxy (over the loadgen's TAP, in a namespace) and writes
# its JSON, Markdown and charts. No figure is asserted: only that each
# run did what it claims (the harness fails a resumed run that did not
# resume, or one where connections failed) and that the output is whole.
# Needs root.   usage: macro_smoke_test.sh BUILD_DIR SOURCE_ROOT
set -uo pipefail
build=$1
src=$2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/tap_lib.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! command -v nginx >/dev/null || ! command -v haproxy >/dev/null; then
    not_ok "nginx and haproxy are installed (scripts/install-deps)"
    echo "1..$n"; exit 1
fi
if "$src/perf/macro/run" --smoke --no-build --build-dir "$build" --out "$out" >"$out/stdout" 2>"$out/stderr"; then
    ok "perf/macro/run --smoke ($(grep -c 'macro: rep' "$out/stderr") runs)"
else
    not_ok "perf/macro/run --smoke" "$(tail -30 "$out/stderr")"
fi
check "latest.json has every workload for every system" /usr/bin/python3 -c "
import json, sys
d = json.load(open('$out/latest.json'))
want = ['full_tls13_ecdsa', 'full_tls13_rsa', 'full_tls12_ecdsa', 'resumed_tls13_ticket', 'resumed_tls12_cache',
        'resumed_tls12_ticket', 'bulk_download', 'bulk_upload', 'idle_tls', 'plain_tcp', 'passthrough_tls13',
        'reencrypt_resumed']
for w in want:
    for s in ('terminus', 'nginx', 'haproxy'):
        r = d['summary'][w][s]
        assert r['reps'] == 1 and r['rate'] > 0, (w, s, r)
        assert (r['memory_per_connection'] if w == 'idle_tls' else r['cpu_per_unit_us']) is not None, (w, s)
    for run in d['runs'][w]['terminus']:
        if w.startswith('resumed'):
            assert run['handshakes_resumed'] >= 0.95 * (run['handshakes_full'] + run['handshakes_resumed']), run
    for s in ('terminus', 'nginx', 'haproxy'):
        for run in d['runs'][w][s]:
            if w == 'passthrough_tls13':  # the backend did the handshakes, in full
                assert run['backend_full'] >= run['loadgen']['counts']['completed'] > 0, (s, run)
            if w == 'reencrypt_resumed':  # the upstream sessions resumed
                assert run['backend_resumed'] >= 0.95 * (run['backend_full'] + run['backend_resumed']), (s, run)
assert d['machine']['openssl_speed']['ecdsa_p256_sign_us'] > 0
print(len(want), 'workloads x 3 systems')
"
check "latest.md has the table" grep -q "| plain_tcp | connection |" "$out/latest.md"
for png in rate cpu latency; do
    check "$png.png is a PNG" bash -c "head -c 8 '$out/$png.png' | od -An -c | grep -q 'P   N   G'"
done
# The checks can fail: a "resumed" run that resumed nothing, a run with
# failed connections, a full-handshake run that resumed, a passthrough
# that terminated, a re-encryption whose upstream sessions did not resume.
check "the harness refuses runs that did not do what they claim" /usr/bin/python3 -c "
import importlib.machinery, importlib.util
loader = importlib.machinery.SourceFileLoader('macro', '$src/perf/macro/run')
spec = importlib.util.spec_from_loader('macro', loader)
m = importlib.util.module_from_spec(spec); loader.exec_module(m)
counts = dict(completed=100, failed_connect=0, failed_tls=0, failed_reset=0, bytes_sent=0, bytes_received=0)
def run(full, resumed, backend=(0, 0), upstream=None, **kw):
    r = {'loadgen': {'counts': dict(counts, **kw)}, 'handshakes_full': full, 'handshakes_resumed': resumed,
         'backend_full': backend[0], 'backend_resumed': backend[1]}
    if upstream:
        r['upstream_full'], r['upstream_resumed'] = upstream
    return r
bad = [('resumed_tls13_ticket', 'resumed', run(100, 0)), ('full_tls13_ecdsa', 'full', run(50, 50)),
       ('plain_tcp', 'plain', run(0, 0, failed_reset=10)), ('bulk_download', 'bytes', run(0, 0)),
       ('passthrough_tls13', 'passthrough', run(100, 0, (100, 0))),   # terminated, not passed through
       ('passthrough_tls13', 'passthrough', run(0, 0, (10, 0))),      # the backend saw few of them
       ('reencrypt_resumed', 'reencrypt', run(2, 98, (50, 50))),     # upstream sessions not resumed
       ('reencrypt_resumed', 'reencrypt', run(2, 98, (2, 98), (50, 50)))]  # ...by terminusd's counters
for w, kind, r in bad:
    try:
        m.check(w, kind, 'terminus', r)
    except RuntimeError:
        continue
    raise SystemExit(f'{w}: accepted')
m.check('resumed_tls13_ticket', 'resumed', 'terminus', run(2, 98))
m.check('passthrough_tls13', 'passthrough', 'terminus', run(0, 0, (100, 0)))
m.check('reencrypt_resumed', 'reencrypt', 'terminus', run(2, 98, (2, 98), (2, 98)))
print(len(bad), 'bad runs refused, three good ones accepted')
"
echo "1..$n"
[ "$fails" -eq 0 ]
