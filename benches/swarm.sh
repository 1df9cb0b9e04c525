#!/usr/bin/env bash
# Loopback swarm: 1 seeder + 8 leechers, each its own process on 127.0.0.1, sharing a random
# file (default 64 MiB), in one run:
#   1. ppspp: `ppspp seed --no-cache`, then 8 `ppspp get` started at once, each listening on
#      its own port and given the seeder and every other leecher as --peer;
#   2. libtorrent 2.0 (python3-libtorrent) over TCP only, uTP off: the same swarm through
#      benches/libtorrent_swarm.py (a v1 torrent without trackers, PIECE_KIB pieces; every
#      leecher connects to the seeder and the other leechers; DHT, LSD, UPnP and NAT-PMP off,
#      no rate limits, several connections per IP allowed);
#   3. with UTP=1: libtorrent over uTP only, TCP off.
# A leecher exits once it has the whole file (it does not stay to seed). The swarm time is the
# wall time from starting the leechers to the last one's exit; each leecher's time is from the
# same start to its own exit. Every leecher's output is compared (cmp) with the original.
# RUNS rounds, each ppspp then libtorrent, then a markdown table: per round the swarm seconds
# and the ratio libtorrent / ppspp (above 1: ppspp finished first), and the medians; then
# every leecher's seconds.
#
# Usage: benches/swarm.sh            (builds `cargo build --release -p ppspp-udp`)
# Environment:
#   PPSPP_BIN    use this ppspp binary instead of building one
#   SIZE_MIB     file size in MiB (default 64)
#   RUNS         rounds (default 3)
#   LEECHERS     leechers per swarm (default 8)
#   CHUNK_SIZE   ppspp's chunk size in bytes (default 1024, ppspp's own default)
#   PIECE_KIB    libtorrent's piece size in KiB (default 256)
#   UTP          1 adds libtorrent over uTP (default 0)
#   GET_TIMEOUT  seconds allowed per leecher (default 300)
#   PYTHON       a python3 that can `import libtorrent` (default: python3, else /usr/bin/python3)
#   KEEP_WORK    keep the work directory (file, logs) instead of removing it
# python3-libtorrent is installed with apt-get when missing. Processes and the work directory
# are removed on exit. Leechers' times include process start-up: python's import of
# libtorrent is tens of ms on an idle machine, more with 8 starting on few CPUs; the
# libtorrent leechers' own times (torrent added -> complete) are printed on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-64}
RUNS=${RUNS:-3}
LEECHERS=${LEECHERS:-8}
CHUNK_SIZE=${CHUNK_SIZE:-1024}
PIECE_KIB=${PIECE_KIB:-256}
UTP=${UTP:-0}
GET_TIMEOUT=${GET_TIMEOUT:-300}
BASE_PORT=$((20000 + $$ % 20000)) # round r, swarm k uses BASE_PORT + 100 r + 30 k + 0..LEECHERS
HELPER=benches/libtorrent_swarm.py
for v in SIZE_MIB RUNS LEECHERS CHUNK_SIZE PIECE_KIB GET_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 64; }
done
((LEECHERS < 30)) || { echo "LEECHERS must be below 30 (port blocks)" >&2; exit 64; }

# ---- tools ------------------------------------------------------------------------------
# Debian's python3-libtorrent lands in /usr/bin/python3's path, which a python3 earlier on PATH
# (pyenv, a venv) does not see.
lt_python() {
    local p
    for p in ${PYTHON:-python3 /usr/bin/python3}; do
        "$p" -c 'import libtorrent' 2>/dev/null && { echo "$p"; return 0; }
    done
    return 1
}
if ! PY=$(lt_python); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing python3-libtorrent" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-libtorrent >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y python3-libtorrent >/dev/null; }
        PY=$(lt_python) || { echo "python3-libtorrent installed, but no python3 imports it" >&2; exit 1; }
    else
        echo "missing python3-libtorrent: install it (apt-get install -y python3-libtorrent)" >&2
        exit 1
    fi
fi
LT_VERSION=$("$PY" -c 'import libtorrent; print(libtorrent.__version__)')
if [[ -z ${PPSPP_BIN:-} ]]; then
    echo "building: cargo build --release -p ppspp-udp" >&2
    cargo build --release -p ppspp-udp >&2
    PPSPP_BIN=${CARGO_TARGET_DIR:-target}/release/ppspp
fi
PPSPP_BIN=$(readlink -f "$PPSPP_BIN")

WORK=$(mktemp -d /tmp/ppspp-swarm.XXXXXX)
pids=()
net_down() { :; } # lib.sh's cleanup calls it; there is no network to take down here
# shellcheck source=benches/lib.sh
source benches/lib.sh # wait_line, cleanup
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# The median of the numbers on stdin (empty without any).
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/orig"
"$PY" "$HELPER" make "$WORK/orig" "$WORK/orig.torrent" $((PIECE_KIB * 1024))

# swarm START: runs `START i` in the background for every leecher i at once (START must exec
# the leecher, so that the job's pid is the leecher's and cleanup can stop it) and waits for
# them all. Sets swarm_s (start to the last exit) and leech_s[i]; fails if any leecher fails.
swarm() {
    local start=$1 i p pid rc t t0 ok=0 left=() rest end=()
    local -A idx=()
    leech_s=()
    t0=$EPOCHREALTIME
    for ((i = 1; i <= LEECHERS; i++)); do
        "$start" "$i" &
        left+=($!)
        pids+=($!)
        idx[$!]=$i
    done
    while ((${#left[@]})); do
        rc=0
        wait -n -p pid "${left[@]}" || rc=$?
        t=$EPOCHREALTIME
        i=${idx[$pid]}
        end[i]=$t
        ((rc == 0)) || { echo "  leecher $i exited with status $rc" >&2; ok=1; }
        rest=()
        for p in "${left[@]}"; do ((p == pid)) || rest+=("$p"); done
        left=("${rest[@]}")
    done
    # Subtracted only now: a fork for awk between two waits would delay the next exit's time.
    for ((i = 1; i <= LEECHERS; i++)); do leech_s[i]=$(calc "${end[i]} - $t0" 3); done
    swarm_s=$(calc "$t - $t0" 3)
    return $ok
}

# check_outputs NAME OUT ERR: compares every leecher's output (OUT, with %d for the leecher's
# number) with the original; for one that differs, prints the end of its stderr (ERR, likewise).
check_outputs() {
    local i out err ok=0
    for ((i = 1; i <= LEECHERS; i++)); do
        # shellcheck disable=SC2059 # the formats are the callers' paths
        printf -v out "$2" "$i"
        # shellcheck disable=SC2059
        printf -v err "$3" "$i"
        if ! cmp -s "$WORK/orig" "$out"; then
            echo "  $1 leecher $i: output missing or differs; its stderr:" >&2
            tail -5 "$err" >&2
            ok=1
        fi
    done
    return $ok
}

# ---- ppspp ------------------------------------------------------------------------------
ppspp_leech() {
    local i=$1 j peers=(--peer "127.0.0.1:$PORT")
    for ((j = 1; j <= LEECHERS; j++)); do ((j == i)) || peers+=(--peer "127.0.0.1:$((PORT + j))"); done
    exec timeout "$GET_TIMEOUT" "$PPSPP_BIN" get "$SWARM" "${peers[@]}" -o "$WORK/ppspp$i" \
        --listen "127.0.0.1:$((PORT + i))" --chunk-size "$CHUNK_SIZE" --quiet \
        >"$WORK/ppspp$i.out" 2>"$WORK/ppspp$i.err"
}

# ppspp_run ROUND: sets swarm_s and leech_s, or fails.
ppspp_run() {
    local i spid ok=0
    PORT=$((BASE_PORT + 100 * $1))
    rm -f "$WORK"/ppspp[0-9]*
    : >"$WORK/seed.out"
    "$PPSPP_BIN" seed "$WORK/orig" --no-cache --listen "127.0.0.1:$PORT" --chunk-size "$CHUNK_SIZE" \
        --quiet >"$WORK/seed.out" 2>"$WORK/seed.err" &
    spid=$!
    pids+=("$spid")
    wait_line "$WORK/seed.out" '^link ' "$spid" || return 1
    SWARM=$(sed -n 's/^swarm //p' "$WORK/seed.out")
    swarm ppspp_leech || ok=1
    stop "$spid"
    check_outputs ppspp "$WORK/ppspp%d" "$WORK/ppspp%d.err" || ok=1
    # Which peers each leecher got data from: the seeder alone would mean no swarming.
    echo "  ppspp leechers' sources: $(sed -n 's/.*from \([0-9]*\) peer(s).*/\1/p' \
        "$WORK"/ppspp[0-9]*.out | tr '\n' ' ')peers" >&2
    return $ok
}

# ---- libtorrent -------------------------------------------------------------------------
lt_leech() {
    local i=$1 j ports=("$PORT")
    for ((j = 1; j <= LEECHERS; j++)); do ((j == i)) || ports+=($((PORT + j))); done
    # The helper's own TIMEOUT fails it cleanly; timeout(1) only if it hangs beyond that.
    export TIMEOUT=$GET_TIMEOUT
    exec timeout $((GET_TIMEOUT + 30)) "$PY" "$HELPER" leech \
        "$WORK/orig.torrent" "$WORK/lt$i" $((PORT + i)) "$TRANSPORT" "${ports[@]}" \
        >"$WORK/lt$i.out" 2>"$WORK/lt$i.err"
}

# lt_run ROUND tcp|utp: sets swarm_s and leech_s, or fails.
lt_run() {
    local i spid ok=0 own
    TRANSPORT=$2
    PORT=$((BASE_PORT + 100 * $1 + 30 * $([[ $2 == tcp ]] && echo 1 || echo 2)))
    for ((i = 1; i <= LEECHERS; i++)); do rm -rf "$WORK/lt$i" && mkdir "$WORK/lt$i"; done
    : >"$WORK/lt-seed.out"
    "$PY" "$HELPER" seed "$WORK/orig.torrent" "$WORK" "$PORT" "$TRANSPORT" \
        >"$WORK/lt-seed.out" 2>"$WORK/lt-seed.err" &
    spid=$!
    pids+=("$spid")
    wait_line "$WORK/lt-seed.out" '^seeding' "$spid" || return 1
    swarm lt_leech || ok=1
    stop "$spid"
    check_outputs libtorrent "$WORK/lt%d/orig" "$WORK/lt%d.err" || ok=1
    own=$(sed -n 's/^complete //p' "$WORK"/lt[0-9]*.out | sort -g | tail -1)
    echo "  libtorrent leechers' own times (torrent added -> complete): slowest ${own:-?} s" >&2
    return $ok
}

# ---- rounds -------------------------------------------------------------------------------
declare -A SW LS # SW[impl,round]: swarm seconds; LS[impl,round]: the leechers' seconds
impls=(ppspp tcp)
((UTP)) && impls+=(utp)
for ((r = 1; r <= RUNS; r++)); do
    for k in "${impls[@]}"; do
        echo "round $r/$RUNS: $k, 1 + $LEECHERS peers, $SIZE_MIB MiB..." >&2
        swarm_s="" leech_s=()
        if [[ $k == ppspp ]]; then run=(ppspp_run "$r"); else run=(lt_run "$r" "$k"); fi
        if "${run[@]}"; then
            SW[$k,$r]=$swarm_s
            echo "  swarm $swarm_s s" >&2
        else
            echo "  round $r $k failed (swarm ${swarm_s:-?} s); logs in $WORK (KEEP_WORK=1 keeps them)" >&2
        fi
        LS[$k,$r]=$(for ((i = 1; i <= LEECHERS; i++)); do printf '%s ' "${leech_s[i]:--}"; done)
    done
done

# ---- report -------------------------------------------------------------------------------
v() { echo "${1:--}"; }
ratio() { [[ -n ${1:-} && -n ${2:-} ]] && calc "$1 / $2" 2 || echo "-"; }
col_median() {
    local k=$1 r
    for ((r = 1; r <= RUNS; r++)); do [[ -z ${SW[$k,$r]:-} ]] || echo "${SW[$k,$r]}"; done | median
}
ratio_median() {
    local k=$1 r
    for ((r = 1; r <= RUNS; r++)); do
        [[ -z ${SW[$k,$r]:-} || -z ${SW[ppspp,$r]:-} ]] || calc "${SW[$k,$r]} / ${SW[ppspp,$r]}" 4
        echo
    done | sed '/^$/d' | median
}
name() { case $1 in ppspp) echo ppspp ;; tcp) echo "libtorrent TCP" ;; utp) echo "libtorrent uTP" ;; esac; }
echo
echo "Loopback swarm, 1 seeder + $LEECHERS leechers, ${SIZE_MIB} MiB random file, $(nproc) CPUs, \
$(uname -r); ppspp ${CHUNK_SIZE} B chunks, libtorrent $LT_VERSION ${PIECE_KIB} KiB pieces"
echo
hdr="| run | ppspp s | libtorrent TCP s | TCP / ppspp |"
rule="|---|---:|---:|---:|"
((UTP)) && hdr+=" libtorrent uTP s | uTP / ppspp |" && rule+="---:|---:|"
echo "$hdr"
echo "$rule"
for ((r = 1; r <= RUNS; r++)); do
    line="| $r | $(v "${SW[ppspp,$r]:-}") | $(v "${SW[tcp,$r]:-}") | $(ratio "${SW[tcp,$r]:-}" "${SW[ppspp,$r]:-}") |"
    ((UTP)) && line+=" $(v "${SW[utp,$r]:-}") | $(ratio "${SW[utp,$r]:-}" "${SW[ppspp,$r]:-}") |"
    echo "$line"
done
line="| median | $(v "$(col_median ppspp)") | $(v "$(col_median tcp)") | $(v "$(ratio_median tcp)") |"
((UTP)) && line+=" $(v "$(col_median utp)") | $(v "$(ratio_median utp)") |"
echo "$line"
echo
echo "Each leecher's seconds (start to exit), leechers 1..$LEECHERS:"
echo
echo "| run | swarm | leechers |"
echo "|---|---|---|"
for ((r = 1; r <= RUNS; r++)); do
    for k in "${impls[@]}"; do echo "| $r | $(name "$k") | ${LS[$k,$r]% } |"; done
done
