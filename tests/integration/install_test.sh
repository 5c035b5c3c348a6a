#!/usr/bin/env bash
# meson install into a scratch DESTDIR: the binaries, the systemd units,
# sysusers.d and tmpfiles.d land where systemd reads them, the units name
# binaries that were installed, the example configuration validates, and
# systemd's own tools accept the files (systemd-analyze verify,
# systemd-sysusers and systemd-tmpfiles with --root inside the scratch
# directory), or are skipped with the reason. Nothing is written outside
# the scratch directory except meson's own log in BUILD/meson-logs.
# Output is TAP. Usage: install_test.sh BUILD_DIR SRC_ROOT TEST_CERTS
set -uo pipefail

build=$(realpath "$1")
src=$(realpath "$2")
certs=$(realpath "$3")
dest=$(mktemp -d)

cleanup() { rm -rf "$dest"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

. "$src/tests/integration/tap_lib.sh"
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

# What meson means to install: built file -> destination.
installed=$(meson introspect "$build" --installed) || {
    not_ok "meson introspect --installed" "$installed"; echo "1..$n"; exit 1; }
pairs=$(python3 -c 'import json, sys
for k, v in json.load(sys.stdin).items(): print(k + "\t" + v)' <<<"$installed")
dest_of() { awk -F'\t' -v b="$1" '{ n = split($2, p, "/"); if (p[n] == b) { print $2; exit } }' <<<"$pairs"; }

# --no-rebuild: meson test built this test's depends; a file missing here
# is a target that was added to the install without being added to them.
missing=$(awk -F'\t' '{ print $1 }' <<<"$pairs" | while read -r f; do [ -e "$f" ] || echo "$f"; done)
if [ -z "$missing" ]; then ok "every file meson installs is built ($(wc -l <<<"$pairs") files)"
else not_ok "every file meson installs is built (add the missing targets to the install test's depends)" "$missing"
    echo "1..$n"; exit 1; fi

out=$(meson install -C "$build" --no-rebuild --destdir "$dest" 2>&1)
if [ $? -eq 0 ]; then ok "meson install --destdir exits 0"
else not_ok "meson install --destdir exits 0" "$out"; echo "1..$n"; exit 1; fi

outside=$(grep -v '^#' "$build/meson-logs/install-log.txt" | grep -v "^$dest/")
[ -z "$outside" ] && ok "everything installed is under the scratch DESTDIR" ||
    not_ok "everything installed is under the scratch DESTDIR" "$outside"

prefix=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')

for bin in terminusd terminusctl; do
    to=$(dest_of "$bin")
    if [ -n "$to" ] && [ -x "$dest$to" ]; then ok "$bin is installed ($to)"; else not_ok "$bin is installed" "$pairs"; fi
done
out=$("$dest$(dest_of terminusd)" -v 2>&1) && ok "the installed terminusd runs ($out)" ||
    not_ok "the installed terminusd runs" "$out"

# Where systemd reads units, sysusers.d and tmpfiles.d: its pkg-config
# file when there is one (as dist/meson.build asks), else under the prefix.
sd_var() { pkg-config --variable="$1" systemd 2>/dev/null | grep . || echo "$prefix/lib/$2"; }
unit_dir=$(sd_var systemdsystemunitdir systemd/system)
sysusers_dir=$(sd_var sysusersdir sysusers.d)
tmpfiles_dir=$(sd_var tmpfilesdir tmpfiles.d)
for f in "$unit_dir/terminusd.service" "$unit_dir/terminus-mgmtd.service" \
         "$sysusers_dir/terminus.conf" "$tmpfiles_dir/terminus.conf"; do
    [ -f "$dest$f" ] && ok "installed $f" || not_ok "installed $f" "$(cd "$dest" && find . -type f)"
done
example=$(dest_of terminus.conf.example)
[ -n "$example" ] && [ -f "$dest$example" ] && ok "installed the example configuration ($example)" ||
    not_ok "installed the example configuration" "$pairs"

units=("$dest$unit_dir/terminusd.service" "$dest$unit_dir/terminus-mgmtd.service")
left=$(grep -n '@[A-Z_]*@' "${units[@]}" 2>&1)
[ -z "$left" ] && ok "no @VARIABLE@ is left in the units" || not_ok "no @VARIABLE@ is left in the units" "$left"

# Every program an Exec line names: under the prefix, installed here (an
# executable file under DESTDIR); elsewhere (/bin/kill), on this system.
# terminus-mgmtd is checked once this tree installs it.
mgmtd_installed=$(dest_of terminus-mgmtd)
for unit in "${units[@]}"; do
    name=$(basename "$unit")
    if [ "$name" = terminus-mgmtd.service ] && [ -z "$mgmtd_installed" ]; then
        skip "$name names installed programs" "this tree does not install terminus-mgmtd yet"
        continue
    fi
    progs=$(sed -n 's/^Exec\(Start\|StartPre\|Reload\)=[-+!@:]*\([^ ]*\).*/\2/p' "$unit" | sort -u)
    bad=
    for p in $progs; do
        case $p in
            "$prefix"/*) [ -x "$dest$p" ] || bad+="$p is not installed under DESTDIR"$'\n' ;;
            *) [ -x "$p" ] || bad+="$p is not on this system"$'\n' ;;
        esac
    done
    [ -n "$progs" ] && [ -z "$bad" ] && ok "$name names installed programs ($(echo $progs))" ||
        not_ok "$name names installed programs" "${bad%$'\n'}"
done

tsu="$dest$unit_dir/terminusd.service"
grep -q '^User=terminus$' "$tsu" && grep -q '^Type=simple$' "$tsu" && grep -q '^LimitMEMLOCK=infinity$' "$tsu" &&
    grep -q '^ExecStartPre=.*terminusd -t -q -c /etc/terminus/terminus.conf$' "$tsu" &&
    grep -q '^ExecReload=.*terminusctl reload -c /etc/terminus/terminus.conf$' "$tsu" &&
    ok "terminusd.service: Type=simple, User=terminus, LimitMEMLOCK=infinity, -t before start, terminusctl reloads" ||
    not_ok "terminusd.service: Type=simple, User=terminus, LimitMEMLOCK=infinity, -t before start, terminusctl reloads" "$(cat "$tsu")"

# The example, with certificates where it expects them, through the
# installed terminusd; and its shutdown_timeout (the default, 10 s) under
# the unit's TimeoutStopSec, so that systemd never cuts the drain short.
conf_dir="$dest/check"
mkdir -p "$conf_dir"
cp "$dest$example" "$conf_dir/terminus.conf"
ln -s "$certs" "$conf_dir/certs"
out=$("$dest$(dest_of terminusd)" -t -q -c "$conf_dir/terminus.conf" 2>&1) &&
    ok "the installed example validates (terminusd -t)" || not_ok "the installed example validates (terminusd -t)" "$out"
drain=$("$dest$(dest_of terminusd)" -T -c "$conf_dir/terminus.conf" 2>/dev/null | sed -n 's/^ *shutdown_timeout *\([0-9]*\)s;.*/\1/p' | head -1)
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$tsu")
if [ -n "$drain" ] && [ -n "$stop" ] && [ "$stop" -gt "$drain" ]; then
    ok "TimeoutStopSec ($stop s) is above shutdown_timeout ($drain s)"
else
    not_ok "TimeoutStopSec is above shutdown_timeout" "TimeoutStopSec='$stop' shutdown_timeout='$drain'"
fi

# systemd's tools, each inside the scratch root.
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$dest/etc"
    out=$(systemd-sysusers --root="$dest" 2>&1)
    if [ $? -eq 0 ] && grep -q '^terminus:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$dest/etc/passwd" &&
       grep -q '^terminus:x:[0-9]*:$' "$dest/etc/group"; then
        ok "systemd-sysusers --root makes the terminus user and group ($(grep '^terminus:' "$dest/etc/passwd"))"
    else
        not_ok "systemd-sysusers --root makes the terminus user and group" "$out"
    fi
else
    skip "systemd-sysusers makes the terminus user and group" "systemd-sysusers is not installed"
fi
if command -v systemd-tmpfiles >/dev/null && [ -f "$dest/etc/passwd" ]; then
    out=$(systemd-tmpfiles --root="$dest" --create 2>&1)
    uid=$(awk -F: '$1 == "terminus" { print $3 }' "$dest/etc/passwd")
    got=$(stat -c '%a %u %g' "$dest/run/terminus" 2>&1)
    [ "$got" = "750 $uid $uid" ] && ok "systemd-tmpfiles --root makes /run/terminus 0750 terminus:terminus" ||
        not_ok "systemd-tmpfiles --root makes /run/terminus 0750 terminus:terminus" "$out"$'\n'"$got"
else
    skip "systemd-tmpfiles makes /run/terminus" "systemd-tmpfiles is not installed, or there is no terminus user to own it"
fi
if command -v systemd-analyze >/dev/null; then
    # The units as installed, with their programs under DESTDIR, verified
    # against this system's units (targets) and binaries (/bin/kill).
    # verify exits 0 on an unknown key, so any output is a failure.
    mkdir -p "$dest/verify"
    verify=()
    for unit in "${units[@]}"; do
        [ "$(basename "$unit")" = terminus-mgmtd.service ] && [ -z "$mgmtd_installed" ] && continue
        sed "s#^\(Exec[A-Za-z]*=[-+!@:]*\)$prefix/#\1$dest$prefix/#" "$unit" >"$dest/verify/$(basename "$unit")"
        verify+=("$dest/verify/$(basename "$unit")")
    done
    out=$(systemd-analyze verify --man=no "${verify[@]}" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && [ -z "$out" ] && ok "systemd-analyze verify accepts $(cd "$dest/verify" && echo *)" ||
        not_ok "systemd-analyze verify accepts the units" "$out"
else
    skip "systemd-analyze verify accepts the units" "systemd-analyze is not installed"
fi

echo "1..$n"
[ "$fails" -eq 0 ]
