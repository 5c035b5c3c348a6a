# Shared helpers of the integration tests: TAP output, checks and waiting
# for a condition (never a fixed sleep). Source it; it sets n and fails.
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'
    return 0
}
# wait_for SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}
# check NAME COMMAND...: ok when COMMAND succeeds (its last line in the
# name), not ok with its output as diagnostics otherwise.
check() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$name ($(tail -1 <<<"$out"))"; else not_ok "$name" "$out"; fi
}
# in_ns COMMAND...: in the test's namespace $ns. Not for processes whose
# pid the test needs ($! would be this function's subshell).
in_ns() { ip netns exec "$ns" "$@"; }
