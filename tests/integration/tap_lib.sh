# Shared helpers of the integration tests: TAP output, checks, waiting
# for a condition (never a fixed sleep) and the lab of a test of terminusd
# in a network namespace. Source it first; it sets n, fails and here (this
# folder).
n=0
fails=0
here=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
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

# lab_setup NAME VAR... -- ARG...: the lab of a test that runs terminusd
# (instance NAME$id) in a network namespace of its own. Sets each VAR to the
# real path of its ARG, in order (exit 2 when they are not as many), and
#   id     $$
#   name   NAME$id, terminusd's instance (-n)
#   ns     tmNAME$id, the namespace, which the test creates
#   iface  tNAME$id, the TAP device's kernel side
#   work   a new scratch directory
#   pid    empty: terminusd's pid, for the test to set
#   bg     (): the test's other background processes, for it to add to
# and makes lab_cleanup the EXIT trap (bash runs it on SIGTERM and SIGINT
# too). A test with more to undo defines extra_cleanup, which runs first.
lab_setup() {
    local prefix=$1 vars=() v
    shift
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    if [ $# -ne ${#vars[@]} ]; then
        echo "usage: $(basename "$0") ${vars[*]^^}" >&2
        exit 2
    fi
    for v in "${vars[@]}"; do printf -v "$v" %s "$(realpath "$1")"; shift; done
    id=$$
    name=$prefix$id
    ns=tm$name
    iface=t$name
    work=$(mktemp -d)
    pid=
    bg=()
    # The names as they are now: a signal can come while a function has a
    # local of the same name (check's "name"), or after the test reused one.
    trap "lab_cleanup $(printf '%q ' "$name" "$ns" "$work")" EXIT
}
# lab_cleanup NAME NS WORK: extra_cleanup if the test has one (with
# everything still there), then SIGKILL to terminusd ($pid), to $bg and to
# whatever else still runs in the namespace (a client the test was waiting
# for when it was stopped); the namespace deleted; with KEEP_LOG set
# terminusd's log kept as /tmp/SCRIPT.log; the scratch directory removed,
# and the files of the instance that a terminusd killed with SIGKILL leaves
# behind (its DPDK runtime directory, its /dev/shm segments: .stats,
# .stats.next, .log).
lab_cleanup() {
    local name=$1 ns=$2 work=$3 p
    declare -F extra_cleanup >/dev/null && extra_cleanup
    for p in $pid "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    [ -n "${KEEP_LOG:-}" ] && [ -f "$work/log" ] && cp "$work/log" "/tmp/$(basename "$0" .sh).log"
    rm -rf "$work" "/var/run/dpdk/terminus-$name" "/dev/shm/terminus-$name".*
}
