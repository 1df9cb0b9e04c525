#!/usr/bin/env bash
# Loopback speed, in one run:
#   1. raw UDP throughput (iperf3, receiver's rate) at ppspp's datagram sizes: ~1,100 B
#      (1 KiB chunks) and ~8,300 B (8 KiB chunks);
#   2. `ppspp seed` -> `ppspp get` of a random file (default 256 MiB) with 1 KiB and 8 KiB
#      chunks: MB/s from the leecher's wall time, CPU seconds per GiB for seeder and leecher;
#   3. with LIBSWIFT_BIN set: libswift -> libswift for the same file (1 KiB, and 8 KiB with
#      -z 8192 on both sides). Its MB/s is taken from when the leecher had written the whole
#      file (polled every 10 ms), not from its exit: libswift notices completion only on whole
#      seconds. The table's wall column is its exit time.
# Then a markdown table with the ratios ppspp 1 KiB : raw UDP 1100 B, ppspp : libswift.
#
# Usage: benches/loopback.sh            (builds `cargo build --release -p ppspp-udp`)
# Environment:
#   PPSPP_BIN      use this ppspp binary instead of building one
#   LIBSWIFT_BIN   the libswift `swift` binary (part 3 is skipped without it)
#   SIZE_MIB       file size in MiB (default 256)
#   UDP_SECONDS    seconds per iperf3 run (default 5)
#   GET_TIMEOUT    seconds allowed per download (default 300)
# Everything runs on 127.0.0.1; processes and temp files are removed on exit.
# MB = 10^6 bytes (as ppspp's own summary line); seeder CPU excludes hashing the file
# (it is sampled from /proc/PID/stat once the seeder is serving, and again at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${SIZE_MIB:-256}
UDP_SECONDS=${UDP_SECONDS:-5}
GET_TIMEOUT=${GET_TIMEOUT:-300}
BASE_PORT=$((20000 + $$ % 20000)) # fixed per run: BASE_PORT .. BASE_PORT+9

# ---- tools ------------------------------------------------------------------------------
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v jq >/dev/null || need+=(jq)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; }
    else
        echo "missing ${need[*]}: install them (apt-get install -y ${need[*]})" >&2
        exit 1
    fi
fi
if [[ -z ${PPSPP_BIN:-} ]]; then
    echo "building: cargo build --release -p ppspp-udp" >&2
    cargo build --release -p ppspp-udp >&2
    PPSPP_BIN=${CARGO_TARGET_DIR:-target}/release/ppspp
fi
PPSPP_BIN=$(readlink -f "$PPSPP_BIN")
TICK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/ppspp-loopback.XXXXXX)
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# CPU seconds (user+system) a live process has used so far.
cpu_of() {
    local f
    read -ra f <"/proc/$1/stat" # comm has no spaces: ppspp, swift
    awk -v u="${f[13]}" -v s="${f[14]}" -v t="$TICK" 'BEGIN { printf "%.3f", (u + s) / t }'
}
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# shellcheck source=benches/lib.sh
source benches/lib.sh # wait_line

# ---- 1. raw UDP -------------------------------------------------------------------------
# Receiver's bits/s of an unlimited-rate UDP stream of LEN-byte datagrams, as MB/s.
raw_udp() {
    local len=$1 port=$BASE_PORT
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$WORK/iperf-s.log" 2>&1 &
    pids+=($!)
    sleep 0.3
    iperf3 -c 127.0.0.1 -u -b 0 -l "$len" -t "$UDP_SECONDS" -p "$port" --json >"$WORK/iperf.json"
    wait "${pids[-1]}" 2>/dev/null || true
    local bps
    bps=$(jq '.end.sum_received.bits_per_second' "$WORK/iperf.json")
    calc "$bps / 8 / 1e6"
}
# CPU seconds per GiB of the last raw_udp run: "SENDER RECEIVER" (iperf3's own CPU figures,
# per GiB it sent and per GiB that arrived).
raw_udp_cpu() {
    jq -r '.end as $e | [($e.cpu_utilization_percent.host_total / 100 * $e.sum_sent.seconds
            / ($e.sum_sent.bytes / 1073741824)),
        ($e.cpu_utilization_percent.remote_total / 100 * $e.sum_received.seconds
            / ($e.sum_received.bytes / 1073741824))] | map(. * 1000 | round / 1000) | join(" ")' \
        "$WORK/iperf.json"
}
echo "raw UDP (iperf3, ${UDP_SECONDS} s each)..." >&2
udp1100=$(raw_udp 1100)
udp8300=$(raw_udp 8300)
read -r udp8300_send_cpu udp8300_recv_cpu <<<"$(raw_udp_cpu)"

# ---- 2./3. transfers ----------------------------------------------------------------------
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/orig"
BYTES=$((SIZE_MIB * 1024 * 1024))
GIB=$(calc "$BYTES / 1073741824" 6)

# ---- the hashing every leecher must do --------------------------------------------------
# CPU seconds per GiB of `ppspp hash` with 8 KiB chunks (every leaf and parent hash; the file
# is in the page cache): a lower bound on any verifying leecher's CPU per GiB.
echo "hashing (ppspp hash, 8 KiB chunks)..." >&2
/usr/bin/time -f '%e %U %S' -o "$WORK/hash.time" "$PPSPP_BIN" hash "$WORK/orig" \
    --chunk-size 8192 >/dev/null
read -r _ hu hs <"$WORK/hash.time"
hash8192_cpu=$(calc "($hu + $hs) / $GIB" 3)

# Sets: mbs (leecher wall MB/s), wall, seed_cpu, get_cpu (CPU s per GiB).
ppspp_run() {
    local cs=$1 port=$((BASE_PORT + 1)) out=$WORK/ppspp.out c0 c1
    rm -f "$out"
    : >"$WORK/seed.out"
    "$PPSPP_BIN" seed "$WORK/orig" --no-cache --listen "127.0.0.1:$port" --chunk-size "$cs" \
        --quiet >"$WORK/seed.out" 2>"$WORK/seed.err" &
    local spid=$!
    pids+=("$spid")
    wait_line "$WORK/seed.out" '^link ' "$spid" || return 1
    local swarm
    swarm=$(sed -n 's/^swarm //p' "$WORK/seed.out")
    c0=$(cpu_of "$spid")
    /usr/bin/time -f '%e %U %S' -o "$WORK/get.time" \
        timeout "$GET_TIMEOUT" "$PPSPP_BIN" get "$swarm" --peer "127.0.0.1:$port" -o "$out" \
        --chunk-size "$cs" --listen "127.0.0.1:$((port + 1))" --quiet >"$WORK/get.out" 2>"$WORK/get.err" ||
        { echo "ppspp get (chunk $cs) failed:" >&2; cat "$WORK/get.err" "$WORK/get.time" >&2; return 1; }
    c1=$(cpu_of "$spid")
    kill "$spid"
    wait "$spid" 2>/dev/null || true
    cmp "$WORK/orig" "$out" || { echo "ppspp output differs (chunk $cs)" >&2; return 1; }
    rm -f "$out"
    local e u s
    read -r e u s <"$WORK/get.time"
    wall=$e
    mbs=$(calc "$BYTES / 1e6 / $e")
    seed_cpu=$(calc "($c1 - $c0) / $GIB")
    get_cpu=$(calc "($u + $s) / $GIB")
    echo "ppspp ${cs} B chunks: $(cat "$WORK/get.out")" >&2
}

libswift_run() {
    local cs=$1 port=$((BASE_PORT + 3)) out=$WORK/swift.out c0 c1 z=()
    ((cs == 1024)) || z=(-z "$cs")
    rm -f "$WORK"/orig.mhash "$WORK"/orig.mbinmap "$out" "$out".mhash "$out".mbinmap
    : >"$out"
    : >"$WORK/sseed.out"
    "$LIBSWIFT_BIN" -f "$WORK/orig" "${z[@]}" -l "127.0.0.1:$port" -w 600s \
        >"$WORK/sseed.out" 2>/dev/null &
    local spid=$!
    pids+=("$spid")
    wait_line "$WORK/sseed.out" '^Root hash: ' "$spid" || return 1
    local hash
    hash=$(sed -n 's/^Root hash: //p' "$WORK/sseed.out")
    c0=$(cpu_of "$spid")
    local t0 t1="" tpid kpid="" gpid="" i io
    t0=$(date +%s.%N)
    /usr/bin/time -f '%e %U %S' -o "$WORK/sget.time" \
        timeout "$GET_TIMEOUT" "$LIBSWIFT_BIN" -h "$hash" "${z[@]}" -t "127.0.0.1:$port" \
        -l "127.0.0.1:$((port + 1))" -w 0s -f "$out" >/dev/null 2>&1 &
    tpid=$!
    # libswift only notices completion on whole seconds (its exit time is quantised), so also
    # time when its leecher has written the whole file: /proc/PID/io wchar reaches the file
    # size (the .mhash it also writes is under 1% of that: if anything, this favours libswift).
    for ((i = 0; i < 200; i++)); do
        [[ -n $kpid ]] || kpid=$(pgrep -P "$tpid" | head -1 || true)
        [[ -z $kpid ]] || gpid=$(pgrep -P "$kpid" | head -1 || true)
        [[ -z $gpid ]] || break
        sleep 0.005
    done
    while [[ -n $gpid ]] && kill -0 "$gpid" 2>/dev/null; do
        io=$(sed -n 's/^wchar: //p' "/proc/$gpid/io" 2>/dev/null) || break
        if [[ -n $io ]] && ((io >= BYTES)); then
            t1=$(date +%s.%N)
            break
        fi
        sleep 0.01
    done
    wait "$tpid" ||
        { echo "libswift download (chunk $cs) failed" >&2; cat "$WORK/sget.time" >&2; return 1; }
    c1=$(cpu_of "$spid")
    kill "$spid"
    wait "$spid" 2>/dev/null || true
    cmp "$WORK/orig" "$out" || { echo "libswift output differs (chunk $cs)" >&2; return 1; }
    rm -f "$out" "$out".mhash "$out".mbinmap
    local e u s
    read -r e u s <"$WORK/sget.time"
    wall=$e
    # The rate from when the data was all written, when that was seen.
    local data_s=$e
    [[ -z $t1 ]] || data_s=$(calc "$t1 - $t0" 3)
    mbs=$(calc "$BYTES / 1e6 / $data_s")
    seed_cpu=$(calc "($c1 - $c0) / $GIB")
    get_cpu=$(calc "($u + $s) / $GIB")
    local seen="(not seen; rate from the exit time)"
    [[ -z $t1 ]] || seen="$data_s s"
    echo "libswift ${cs} B chunks: exited after $wall s, all data written after $seen" >&2
}

declare -A MBS WALL SCPU GCPU
for cs in 1024 8192; do
    echo "ppspp ${SIZE_MIB} MiB, ${cs} B chunks..." >&2
    if ppspp_run "$cs"; then
        MBS[p$cs]=$mbs WALL[p$cs]=$wall SCPU[p$cs]=$seed_cpu GCPU[p$cs]=$get_cpu
    fi
done
if [[ -n ${LIBSWIFT_BIN:-} ]]; then
    for cs in 1024 8192; do
        echo "libswift ${SIZE_MIB} MiB, ${cs} B chunks..." >&2
        if libswift_run "$cs"; then
            MBS[s$cs]=$mbs WALL[s$cs]=$wall SCPU[s$cs]=$seed_cpu GCPU[s$cs]=$get_cpu
        fi
    done
fi

# ---- report -------------------------------------------------------------------------------
v() { echo "${1:--}"; }
ratio() { [[ -n ${1:-} && -n ${2:-} ]] && calc "$1 / $2" 3 || echo "n/a"; }
echo
echo "Loopback, ${SIZE_MIB} MiB random file, $(nproc) CPUs, $(uname -r)"
echo
echo "| run | wall s | MB/s | seeder CPU s/GiB | leecher CPU s/GiB |"
echo "|---|---:|---:|---:|---:|"
echo "| raw UDP, 1100 B datagrams (iperf3 receiver) | | $udp1100 | | |"
echo "| raw UDP, 8300 B datagrams (iperf3 receiver) | | $udp8300 | | |"
for k in p1024 p8192 s1024 s8192; do
    case $k in
    p*) name="ppspp ${k#p} B chunks" ;;
    s*) [[ -n ${LIBSWIFT_BIN:-} ]] || continue; name="libswift ${k#s} B chunks" ;;
    esac
    echo "| $name | $(v "${WALL[$k]:-}") | $(v "${MBS[$k]:-}") | $(v "${SCPU[$k]:-}") | $(v "${GCPU[$k]:-}") |"
done
echo
echo "| ratio | value |"
echo "|---|---:|"
echo "| ppspp 1 KiB / raw UDP 1100 B | $(ratio "${MBS[p1024]:-}" "$udp1100") |"
echo "| ppspp 8 KiB / raw UDP 8300 B | $(ratio "${MBS[p8192]:-}" "$udp8300") |"
if [[ -n ${LIBSWIFT_BIN:-} ]]; then
    echo "| ppspp 1 KiB / libswift 1 KiB | $(ratio "${MBS[p1024]:-}" "${MBS[s1024]:-}") |"
    echo "| ppspp 8 KiB / libswift 8 KiB | $(ratio "${MBS[p8192]:-}" "${MBS[s8192]:-}") |"
fi

# ---- what this machine allows at 8 KiB ------------------------------------------------------
# Any verifying transfer of 8 KiB chunks over loopback costs at least the hashing plus what the
# kernel charges to send and to receive the datagrams (raw UDP's CPU per GiB), all on this
# machine's CPUs; and a single-threaded leecher pays the hashing plus the receiving alone.
ncpu=$(nproc)
all_cpu=$(calc "$hash8192_cpu + $udp8300_send_cpu + $udp8300_recv_cpu" 3)
leech_cpu=$(calc "$hash8192_cpu + $udp8300_recv_cpu" 3)
ceil_all=$(calc "$ncpu / $all_cpu * 1073741824 / 1e6")
ceil_leech=$(calc "1 / $leech_cpu * 1073741824 / 1e6")
echo
echo "Ceiling at 8 KiB on this machine (CPU s/GiB: hashing $hash8192_cpu, raw UDP send \
$udp8300_send_cpu + receive $udp8300_recv_cpu):"
echo
echo "| bound | MB/s |"
echo "|---|---:|"
echo "| all $ncpu CPUs busy: $ncpu / (hash + UDP send + UDP receive) | $ceil_all |"
echo "| one leecher thread: 1 / (hash + UDP receive) | $ceil_leech |"
echo "| ppspp 8 KiB measured | $(v "${MBS[p8192]:-}") |"
if [[ -n ${LIBSWIFT_BIN:-} && -n ${MBS[s8192]:-} ]]; then
    echo "| 10 x libswift 8 KiB (the target) | $(calc "10 * ${MBS[s8192]}") |"
fi
