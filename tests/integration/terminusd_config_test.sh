#!/usr/bin/env bash
# terminusd -t / -T through the real binary: every example validates, the
# NGINX guide's example with SSLv3 restored is refused, and each broken file
# in config_broken/ gives exactly the messages in its .expected file.
# Output is TAP. Usage: terminusd_config_test.sh TERMINUSD SRC_ROOT CERTS_DIR
set -uo pipefail

terminusd=$(realpath "$1")
src=$(realpath "$2")
certs=$(realpath "$3")
. "$(dirname "$(realpath "$0")")/tap_lib.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Examples, in a copy whose certs/ are the test certificates.
mkdir -p "$work/examples"
cp "$src"/config/examples/*.conf "$work/examples/"
ln -s "$certs" "$work/examples/certs"
cd "$work/examples"
for f in *.conf; do
    out=$("$terminusd" -t -c "$f" 2>&1)
    if [ $? -eq 0 ] && grep -qx "terminusd: configuration file $f test is successful" <<<"$out"; then
        ok "example $f validates"
    else
        not_ok "example $f validates" "$out"
    fi
    dump=$("$terminusd" -T -c "$f" 2>/dev/null)
    if [ $? -eq 0 ] && head -1 <<<"$dump" | grep -q "^# configuration file $work/examples/$f:" &&
       grep -q '  # default$' <<<"$dump"; then
        ok "example $f dumps with -T"
    else
        not_ok "example $f dumps with -T" "$dump"
    fi
    # What -T prints is itself a configuration that validates.
    printf '%s\n' "$dump" > "dumped-$f.txt"
    out=$("$terminusd" -t -c "dumped-$f.txt" 2>&1)
    if [ $? -eq 0 ]; then ok "-T output of $f validates"; else not_ok "-T output of $f validates" "$out"; fi
    rm -f "dumped-$f.txt"
done

# The guide's complete example as published lists SSLv3.
sed 's/^\( *ssl_protocols *\)TLSv1 /\1SSLv3 TLSv1 /' tls-termination-tcp.conf > guide-sslv3.conf
out=$("$terminusd" -t -c guide-sslv3.conf 2>&1)
rc=$?
expected="guide-sslv3.conf:28:31: error: SSLv3 is insecure (RFC 7568 deprecates SSLv3, RFC 6176 SSLv2) and not supported: remove it from \"ssl_protocols\""
if [ $rc -eq 1 ] && grep -qxF "$expected" <<<"$out" &&
   grep -qx "terminusd: configuration file guide-sslv3.conf test failed (1 error)" <<<"$out"; then
    ok "the guide's example with SSLv3 is refused"
else
    not_ok "the guide's example with SSLv3 is refused" "$out"
fi
# With SSLv3 removed it validates with exactly the two warnings.
out=$("$terminusd" -t -c tls-termination-tcp.conf 2>&1)
if [ "$(grep -c ': warning: TLSv1\(.1\)\? is deprecated' <<<"$out")" = 2 ]; then
    ok "TLSv1 and TLSv1.1 draw one warning each"
else
    not_ok "TLSv1 and TLSv1.1 draw one warning each" "$out"
fi
out=$("$terminusd" -t -q -c tls-termination-tcp.conf 2>&1)
if [ $? -eq 0 ] && ! grep -q warning <<<"$out"; then ok "-q hides warnings"; else not_ok "-q hides warnings" "$out"; fi

# Broken files: exact messages, in file order, all of them in one run.
mkdir -p "$work/broken"
cp -r "$here"/config_broken/. "$work/broken/"
ln -s "$certs" "$work/broken/certs"
cd "$work/broken"
for f in *.conf; do
    expected_file="$here/config_broken/${f%.conf}.expected"
    out=$("$terminusd" -t -c "$f" 2>&1 | sed "s|$work/broken|\$DIR|g")
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 1 ] && [ "$out" = "$(cat "$expected_file")" ]; then
        ok "broken $f gives the expected messages"
    else
        not_ok "broken $f gives the expected messages (rc $rc)" "$(diff <(printf '%s\n' "$out") "$expected_file")"
    fi
done

# Usage errors.
"$terminusd" -t -c /nonexistent/terminus.conf >/dev/null 2>"$work/err"
if [ $? -eq 1 ] && grep -q 'cannot open "/nonexistent/terminus.conf": No such file or directory' "$work/err"; then
    ok "a missing configuration file is reported"
else
    not_ok "a missing configuration file is reported" "$(cat "$work/err")"
fi
"$terminusd" -x >/dev/null 2>&1
if [ $? -eq 2 ]; then ok "an unknown option exits 2"; else not_ok "an unknown option exits 2"; fi

echo "1..$n"
[ "$fails" -eq 0 ]
