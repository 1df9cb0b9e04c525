# Shell helpers shared by the bench scripts (sourced, not run).

# build_binaries: sets PPSPP_BIN and NETEM_BIN to absolute paths, building them (release) unless
# both are already given in the environment.
build_binaries() {
    if [[ -z ${PPSPP_BIN:-} || -z ${NETEM_BIN:-} ]]; then
        echo "building: cargo build --release -p ppspp-udp -p ppspp-netem" >&2
        cargo build --release -p ppspp-udp -p ppspp-netem >&2
        PPSPP_BIN=${PPSPP_BIN:-${CARGO_TARGET_DIR:-target}/release/ppspp}
        NETEM_BIN=${NETEM_BIN:-${CARGO_TARGET_DIR:-target}/release/ppspp-netem}
    fi
    PPSPP_BIN=$(readlink -f "$PPSPP_BIN")
    NETEM_BIN=$(readlink -f "$NETEM_BIN")
}

# wait_line FILE REGEX PID: waits until FILE has a line matching REGEX, while PID stays alive
# (at most 120 s).
wait_line() {
    local file=$1 regex=$2 pid=$3 t
    for ((t = 0; t < 1200; t++)); do
        grep -qE "$regex" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "process $pid died:" >&2; tail -5 "$file" >&2; return 1; }
        sleep 0.1
    done
    echo "timed out waiting for /$regex/ in $file" >&2
    return 1
}

# cleanup: the EXIT trap of the bench scripts: stops the jobs in the array `pids`, takes the
# network down (the script's `net_down`), and removes $WORK unless KEEP_WORK is set.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    net_down
    wait 2>/dev/null || true
    if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
