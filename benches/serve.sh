#!/usr/bin/env bash
# `ppspp serve` bench: watching while it downloads, on an emulated link, against a plain
# `ppspp get` of the same file in the same run; and one process with 1,000 swarms.
#
# Link: two network namespaces (ppsv0 seeder 10.81.0.1, ppsv1 viewer 10.81.0.2) joined by
# ppspp-netem: 20 Mbit/s each way, 30 ms each way (RTT 60 ms), drop-tail queue of 1,000
# packets, no loss. The seeder is `ppspp serve --seed FILE` in ppsv0; every measurement
# starts a fresh viewer `ppspp serve` in ppsv1 (nothing cached) and reads through its gateway
# with a small HTTP client (benches/serve_client.py) on the viewer's loopback:
#   get        `ppspp get LINK -o FILE`: seconds to the whole file (the baseline)
#   stream     GET /<hex> read as fast as it comes: request to first byte, to first 1 MB, to
#              the last byte; stalls of a player at 4 Mbit/s that starts after the first
#              1 MB (count and seconds the data was not there when the player needed it)
#   seek       GET /<hex> from 0; after 1 MB, a second request `Range: bytes=<70%>-` (a seek
#              during playback): request to its first byte, and stalls after the seek
#   cold70     a fresh viewer's first request is `Range: bytes=<70%>-`: request to first byte
# Then `ppspp serve --seed DIR` of 1,000 files (4 KiB each) on one socket, and of 1 file:
# resident memory (VmRSS) and CPU over 10 idle seconds.
# MB = 10^6 bytes. Times are from the client's clock; ratios are against `get` in the same run.
#
# Usage: benches/serve.sh [--size-mib 32] [--runs 1] [--skip-many]
# Needs root (namespaces, TUN), python3 and iproute2. PPSPP_BIN / NETEM_BIN use those
# binaries instead of building (cargo build --release). KEEP_WORK keeps the work directory.
set -euo pipefail
{
cd "$(dirname "$0")/.."

SIZE_MIB=32
RUNS=1
MANY=1
while (($#)); do
    case $1 in
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --skip-many) MANY=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] ||
    { echo "--size-mib and --runs take positive integers" >&2; exit 64; }
if [[ $(id -u) != 0 ]]; then
    echo "serve.sh needs root (network namespaces and TUN devices)" >&2
    exit 1
fi
[[ -c /dev/net/tun ]] || { echo "no /dev/net/tun" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (apt-get install python3)" >&2; exit 1; }
# shellcheck source=benches/lib.sh
source benches/lib.sh # build_binaries, wait_line, cleanup
build_binaries
CLIENT=$(readlink -f benches/serve_client.py)

NS=ppsv
TUN=ppst
NET=10.81.0
exec 9>/run/ppspp-serve-bench.lock
flock -n 9 || { echo "another serve.sh is running" >&2; exit 1; }
WORK=$(mktemp -d /tmp/ppspp-serve-bench.XXXXXX)
pids=()
NETEM_PID=""
net_down() {
    local i p
    for ((i = 0; i < 2; i++)); do
        for p in $(ip netns pids "$NS$i" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    done
    if [[ -n $NETEM_PID ]]; then kill "$NETEM_PID" 2>/dev/null || true; wait "$NETEM_PID" 2>/dev/null || true; fi
    NETEM_PID=""
    for ((i = 0; i < 2; i++)); do
        [[ -e /run/netns/$NS$i ]] && ip netns del "$NS$i" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
addr() { echo "$NET.$(($1 + 1))"; }
stop() { kill "$@" 2>/dev/null || true; wait "$@" 2>/dev/null || true; }

net_down
for i in 0 1; do
    ip netns add "$NS$i"
    ip -n "$NS$i" link set lo up
done
"$NETEM_BIN" --hosts 2 --tun-prefix "$TUN" --subnet "$NET" --delay-ms 30 --rate-mbit 20 \
    >"$WORK/netem.log" 2>&1 &
NETEM_PID=$!
wait_line "$WORK/netem.log" '^ready' "$NETEM_PID"
for i in 0 1; do
    ip link set "$TUN$i" netns "$NS$i"
    ip -n "$NS$i" link set "$TUN$i" mtu 1500 txqueuelen 1000 up
    ip -n "$NS$i" addr add "$(addr "$i")/24" dev "$TUN$i"
done
ip netns exec "${NS}1" ping -c 2 -i 0.2 -W 2 "$(addr 0)" >/dev/null ||
    { echo "no path through the emulator" >&2; exit 1; }

BYTES=$((SIZE_MIB * 1024 * 1024))
head -c "$BYTES" /dev/urandom >"$WORK/orig"
ip netns exec "${NS}0" "$PPSPP_BIN" serve --listen "$(addr 0):7000" --http 127.0.0.1:0 \
    --seed "$WORK/orig" >"$WORK/seed.out" 2>"$WORK/seed.err" &
SEED_PID=$!
pids+=("$SEED_PID")
wait_line "$WORK/seed.out" '^link ' "$SEED_PID"
LINK=$(sed -n 's/^link //p' "$WORK/seed.out")
HEX=$(sed -n 's/^swarm \([0-9a-f]*\) .*/\1/p' "$WORK/seed.out")
QUERY=${LINK#*\?}
echo "seeding $SIZE_MIB MiB: $LINK" >&2

# A fresh viewer in ppsv1 on HTTP port 8080; sets VIEW_PID.
viewer_start() {
    : >"$WORK/view.out"
    ip netns exec "${NS}1" "$PPSPP_BIN" serve --listen "$(addr 1):7001" --http 127.0.0.1:8080 \
        >"$WORK/view.out" 2>>"$WORK/view.err" &
    VIEW_PID=$!
    pids+=("$VIEW_PID")
    wait_line "$WORK/view.out" '^http ' "$VIEW_PID"
}
client() { ip netns exec "${NS}1" python3 "$CLIENT" "$@"; }

declare -A SUM
add() { SUM[$1]=$(awk "BEGIN { print ${SUM[$1]:-0} + $2 }"); }
for ((run = 1; run <= RUNS; run++)); do
    echo "run $run" >&2
    rm -f "$WORK/got"
    t=$(ip netns exec "${NS}1" "$PPSPP_BIN" get "$LINK" -o "$WORK/got" --listen "$(addr 1):7001" -q |
        sed -n 's/^complete .* in \([0-9.]*\) s,.*/\1/p')
    cmp -s "$WORK/orig" "$WORK/got" || { echo "get: output differs" >&2; exit 1; }
    echo "  get: $t s" >&2
    add get "$t"

    viewer_start
    client stream --url "http://127.0.0.1:8080/$HEX?$QUERY" --size "$BYTES" \
        --check "$WORK/orig" >"$WORK/stream.json"
    stop "$VIEW_PID"
    echo "  stream: $(cat "$WORK/stream.json")" >&2
    for k in ttfb first_mb last_byte stalls stall_s; do
        add "stream_$k" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['$k'])" "$WORK/stream.json")"
    done

    viewer_start
    client seek --url "http://127.0.0.1:8080/$HEX?$QUERY" --size "$BYTES" \
        --check "$WORK/orig" >"$WORK/seek.json"
    stop "$VIEW_PID"
    echo "  seek: $(cat "$WORK/seek.json")" >&2
    for k in seek_ttfb stalls stall_s; do
        add "seek_$k" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['$k'])" "$WORK/seek.json")"
    done

    viewer_start
    client cold70 --url "http://127.0.0.1:8080/$HEX?$QUERY" --size "$BYTES" \
        --check "$WORK/orig" >"$WORK/cold.json"
    stop "$VIEW_PID"
    echo "  cold70: $(cat "$WORK/cold.json")" >&2
    add cold70_ttfb "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seek_ttfb'])" "$WORK/cold.json")"
done
mean() { awk "BEGIN { printf \"%.3f\", ${SUM[$1]} / $RUNS }"; }
G=$(mean get)
echo
echo "## ppspp serve on 20 Mbit/s, RTT 60 ms ($SIZE_MIB MiB, mean of $RUNS run(s))"
echo
echo "| measure | seconds | vs get (whole file) |"
echo "|---|---|---|"
echo "| ppspp get, whole file (baseline) | $G | 1.00 |"
for k in stream_ttfb stream_first_mb stream_last_byte seek_seek_ttfb cold70_ttfb; do
    v=$(mean "$k")
    echo "| $k | $v | $(awk "BEGIN { printf \"%.3f\", $v / $G }") |"
done
echo "| stalls at 4 Mbit/s (from 0): count, seconds | $(mean stream_stalls), $(mean stream_stall_s) | |"
echo "| stalls at 4 Mbit/s after the seek: count, seconds | $(mean seek_stalls), $(mean seek_stall_s) | |"
stop "$SEED_PID"

if ((MANY)); then
    net_down
    # One process, 1,000 swarms on one socket, idle; then 1 swarm, for the ratio.
    measure_idle() {
        local dir=$1 n=$2 pid rss t0 t1
        "$PPSPP_BIN" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --seed "$dir" \
            >"$WORK/many.out" 2>"$WORK/many.err" &
        pid=$!
        pids+=("$pid")
        local t
        for ((t = 0; t < 3000; t++)); do
            (($(grep -c '^link ' "$WORK/many.out") >= n)) && break
            kill -0 "$pid" 2>/dev/null || { echo "serve died" >&2; cat "$WORK/many.err" >&2; exit 1; }
            sleep 0.1
        done
        sleep 2
        t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        sleep 10
        t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
        stop "$pid"
        # CPU percent of one core over the 10 s (clock ticks / 100 Hz / 10 s * 100).
        echo "$rss $(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / $(getconf CLK_TCK) / 10 * 100 }")"
    }
    mkdir -p "$WORK/many" "$WORK/one"
    for ((i = 0; i < 1000; i++)); do head -c 4096 /dev/urandom >"$WORK/many/f$(printf %04d "$i")"; done
    cp "$WORK/many/f0000" "$WORK/one/"
    read -r rss1 cpu1 < <(measure_idle "$WORK/one" 1)
    read -r rssN cpuN < <(measure_idle "$WORK/many" 1000)
    echo
    echo "## ppspp serve idle: 1,000 swarms on one socket vs 1"
    echo
    echo "| swarms | VmRSS KiB | CPU % of a core, 10 s idle |"
    echo "|---|---|---|"
    echo "| 1 | $rss1 | $cpu1 |"
    echo "| 1000 | $rssN | $cpuN |"
    echo "| ratio | $(awk "BEGIN { printf \"%.2f\", $rssN / $rss1 }") | |"
    echo "| per extra swarm | $(awk "BEGIN { printf \"%.1f\", ($rssN - $rss1) / 999 }") KiB | |"
fi
exit 0
}
