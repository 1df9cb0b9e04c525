#!/usr/bin/env bash
# Wide-area bench: ppspp, TCP and (optionally) libswift over emulated long, lossy and
# reordering links, in one run, one table.
#
# Hosts are network namespaces (ppwan0, ppwan1, ...; addresses 10.78.0.1, 10.78.0.2, ...)
# joined by the project's own link emulator, ppspp-netem (a TUN forwarder on the simulator's
# link model, ppspp-sim/src/path.rs): every host's egress gets the link's one-way delay, rate
# limit with a drop-tail queue of 1,000 packets, random loss and reordering. So a two-host
# path has the delay each way, the loss each way, and the rate limit on each direction.
# Links (the same presets as `ppspp-sim wan --link ...`):
#   B        50 ms each way (RTT 100 ms), 100 Mbit/s, no loss
#   A        20 ms each way (RTT 40 ms), 1% random loss each way, no rate limit
#   reorder  B with 2% of packets held back by up to 10 ms (reordered, none lost)
# Tests, per link:
#   1:1      `ppspp seed` in ppwan0 -> `ppspp get` in ppwan1 (random file, 1 KiB chunks),
#            with a ping from ppwan1 through the link during the transfer: the queueing delay
#            the transfer adds (median RTT during the transfer minus the idle minimum)
#   1+4      one seeder, four leechers in five namespaces; every leecher is given the seeder
#            and every other leecher as --peer and keeps serving (--seed-after) until all are
#            done; per-leecher rate from ppspp's own summary line
#   tcp      iperf3 ppwan0 -> ppwan1, CUBIC and (when the kernel has it) BBR
#   shared   (link B only) TCP CUBIC alone, then a ppspp 1:1 transfer with the
#            same CUBIC flow started 2 s into it on the same bottleneck: TCP alone vs shared,
#            and ppspp's rate over its whole transfer
#   libswift with LIBSWIFT_BIN set: libswift 1:1 and 1+4 on the same links (rate from when
#            each leecher had written the whole file, see benches/loopback.sh; its leechers are
#            given only the seeder, libswift takes one -t, and find each other by PEX)
# MB = 10^6 bytes, Mbit = 10^6 bits. ppspp's rate is its own summary's (bytes / seconds from
# start to the last verified chunk).
#
# Usage: benches/wan.sh [--links B,A,reorder] [--tests 1:1,1+4,tcp,shared,libswift]
#                       [--size-mib 64] [--runs 1] [--tcp-seconds 10] [--quick]
#                       [--congestion ledbat|rfc6817]
#   --quick   = --size-mib 8 --runs 1 --tcp-seconds 5 (a smoke run of a minute or two)
#   --congestion  ppspp's congestion controller (`ppspp seed/get --congestion`): the default
#             `ledbat` or `rfc6817` (LEDBAT exactly as specified), to compare the two
# Defaults: links B,A; tests 1:1,1+4,tcp,shared (and libswift when LIBSWIFT_BIN is set);
# 64 MiB; 1 run. Must run as root (namespaces, TUN). iperf3, jq, ping and iproute2 are
# installed with apt-get when missing.
# Environment:
#   PPSPP_BIN, NETEM_BIN  use these binaries instead of building (cargo build --release)
#   LIBSWIFT_BIN          the libswift `swift` binary
#   GET_TIMEOUT           seconds allowed per download (default 600)
#   KEEP_WORK             keep the work directory (logs) instead of removing it
# Namespaces, the emulator and every process started are removed on exit (trap).
set -euo pipefail
# The whole script is one compound command: bash parses it completely before running it, so
# editing the file during a long run cannot change what runs.
{
cd "$(dirname "$0")/.."

LINKS=B,A
TESTS=""
SIZE_MIB=64
RUNS=1
TCP_SECONDS=10
CC_ARGS=()
GET_TIMEOUT=${GET_TIMEOUT:-600}
while (($#)); do
    case $1 in
    --links) LINKS=$2; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --tcp-seconds) TCP_SECONDS=$2; shift 2 ;;
    --congestion) CC_ARGS=(--congestion "$2"); shift 2 ;;
    --quick) SIZE_MIB=8 RUNS=1 TCP_SECONDS=5; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
done
if [[ -z $TESTS ]]; then
    TESTS=1:1,1+4,tcp,shared
    [[ -z ${LIBSWIFT_BIN:-} ]] || TESTS+=,libswift
fi
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ && $TCP_SECONDS =~ ^[1-9][0-9]*$ ]] ||
    { echo "--size-mib, --runs and --tcp-seconds take positive integers" >&2; exit 64; }
has_test() { [[ ,$TESTS, == *,$1,* ]]; }

if [[ $(id -u) != 0 ]]; then
    echo "wan.sh needs root (network namespaces and TUN devices)" >&2
    exit 1
fi
[[ -c /dev/net/tun ]] || { echo "no /dev/net/tun: the kernel has no TUN support" >&2; exit 1; }

# ---- tools ------------------------------------------------------------------------------
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v jq >/dev/null || need+=(jq)
command -v ping >/dev/null || need+=(iputils-ping)
command -v ip >/dev/null || need+=(iproute2)
if ((${#need[@]})); then
    if command -v apt-get >/dev/null; then
        echo "installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; }
    else
        echo "missing ${need[*]}: install them" >&2
        exit 1
    fi
fi
# shellcheck source=benches/lib.sh
source benches/lib.sh # build_binaries, wait_line, cleanup
build_binaries
BBR=0
grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null ||
    modprobe tcp_bbr 2>/dev/null || true
grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null && BBR=1

# ---- state and cleanup --------------------------------------------------------------------
NS=ppwan        # namespaces ppwan0 ..
TUN=ppwt        # TUN devices ppwt0 ..
NET=10.78.0     # host i is $NET.(i+1)
exec 9>/run/ppspp-wan.lock
flock -n 9 || { echo "another wan.sh is running (/run/ppspp-wan.lock)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/ppspp-wan.XXXXXX)
pids=()
NETEM_PID=""
HOSTS=0
net_down() {
    if [[ -n $NETEM_PID ]]; then
        kill "$NETEM_PID" 2>/dev/null || true
        wait "$NETEM_PID" 2>/dev/null || true
        NETEM_PID=""
    fi
    local i p
    for ((i = 0; i < 8; i++)); do
        # Anything still running in our namespaces (a download cut short) is ours: stop it.
        for p in $(ip netns pids "$NS$i" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
        ip netns del "$NS$i" 2>/dev/null || true
    done
    HOSTS=0
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
net_down # namespaces left over by a killed run

calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# Runs a command in host I's namespace. Start background jobs with `ip netns exec` directly,
# not through this function: `$!` must be the process itself, not a subshell.
nsx() { local i=$1; shift; ip netns exec "$NS$i" "$@"; }
addr() { echo "$NET.$(($1 + 1))"; }

# net_up LINK HOSTS: namespaces joined through the emulator.
net_up() {
    local link=$1 n=$2 i
    net_down
    for ((i = 0; i < n; i++)); do
        ip netns add "$NS$i"
        ip -n "$NS$i" link set lo up
        nsx "$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    "$NETEM_BIN" --hosts "$n" --link "$link" --tun-prefix "$TUN" --subnet "$NET" \
        >"$WORK/netem-$link-$n.log" 2>&1 &
    NETEM_PID=$!
    wait_line "$WORK/netem-$link-$n.log" '^ready' "$NETEM_PID"
    for ((i = 0; i < n; i++)); do
        ip link set "$TUN$i" netns "$NS$i"
        ip -n "$NS$i" link set "$TUN$i" mtu 1500 txqueuelen 1000 up
        ip -n "$NS$i" addr add "$(addr "$i")/24" dev "$TUN$i"
        # TCP buffers large enough for 100 Mbit/s x 100 ms (autotuning's ceiling).
        nsx "$i" sysctl -qw net.ipv4.tcp_rmem="4096 131072 33554432" \
            net.ipv4.tcp_wmem="4096 65536 33554432"
    done
    HOSTS=$n
    nsx 1 ping -c 2 -i 0.2 -W 2 "$(addr 0)" >/dev/null ||
        { echo "no path through the emulator" >&2; cat "$WORK/netem-$link-$n.log" >&2; return 1; }
}

# ---- table --------------------------------------------------------------------------------
ROWS=()
# row LINK TEST RUN MBIT NOTE
row() {
    local mbit=$4
    if [[ -n $mbit ]]; then
        ROWS+=("| $1 | $2 | $3 | $mbit | $(calc "$mbit / 8") | ${5:-} |")
    else
        ROWS+=("| $1 | $2 | $3 | - | - | ${5:-failed} |")
    fi
    echo "  $1 $2 run $3: ${mbit:-failed} Mbit/s ${5:-}" >&2
}

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/orig"
BYTES=$((SIZE_MIB * 1024 * 1024))

# Starts `ppspp seed` in host 0; sets SWARM and SEED_PID.
seed_start() {
    : >"$WORK/seed.out"
    ip netns exec "${NS}0" "$PPSPP_BIN" seed "${CC_ARGS[@]}" "$WORK/orig" --no-cache --listen "$(addr 0):7000" --quiet \
        >"$WORK/seed.out" 2>"$WORK/seed.err" &
    SEED_PID=$!
    pids+=("$SEED_PID")
    wait_line "$WORK/seed.out" '^link ' "$SEED_PID"
    SWARM=$(sed -n 's/^swarm //p' "$WORK/seed.out")
}
stop() { kill "$@" 2>/dev/null || true; wait "$@" 2>/dev/null || true; }
# Mbit/s from a `ppspp get` summary line in FILE ("complete ...: N bytes ... in T s, ...").
summary_mbit() {
    local t
    t=$(sed -n 's/^complete .* in \([0-9.]*\) s,.*/\1/p' "$1" | head -1)
    [[ -n $t ]] && calc "$BYTES * 8 / 1e6 / $t" 1
}
# Median of the numbers on stdin.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# ppspp 1:1 with a ping through the link; sets MBIT and NOTE.
ppspp_1to1() {
    MBIT="" NOTE=""
    local idle busy ppid out=$WORK/get.out1
    idle=$(nsx 1 ping -c 10 -i 0.1 "$(addr 0)" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -g | head -1)
    seed_start || return 1
    rm -f "$WORK/leech1"
    ip netns exec "${NS}1" ping -i 0.2 "$(addr 0)" >"$WORK/ping.out" 2>&1 &
    ppid=$!
    pids+=("$ppid")
    if nsx 1 timeout "$GET_TIMEOUT" "$PPSPP_BIN" get "${CC_ARGS[@]}" "$SWARM" --peer "$(addr 0):7000" \
        -o "$WORK/leech1" --listen "$(addr 1):7001" --quiet >"$out" 2>"$WORK/get.err1"; then
        MBIT=$(summary_mbit "$out")
        cmp -s "$WORK/orig" "$WORK/leech1" || { MBIT=""; NOTE="output differs"; }
    else
        NOTE="get failed: $(tail -1 "$WORK/get.err1")"
    fi
    stop "$ppid" "$SEED_PID"
    # Skip the first second of pings (the handshake, before any data).
    busy=$(sed -n 's/.*icmp_seq=\([0-9]*\).*time=\([0-9.]*\) ms/\1 \2/p' "$WORK/ping.out" |
        awk '$1 > 5 { print $2 }' | median)
    [[ -n $busy && -n $idle ]] &&
        NOTE+="ping idle ${idle} ms, during transfer median ${busy} ms (+$(calc "$busy - $idle" 1) ms)"
    rm -f "$WORK/leech1"
    return 0
}

# ppspp 1 seeder + 4 leechers; appends one row per leecher.
ppspp_1plus4() {
    local link=$1 run=$2 i j lp=() t0 done_all
    seed_start || return 1
    for ((i = 1; i <= 4; i++)); do
        local peers=(--peer "$(addr 0):7000")
        for ((j = 1; j <= 4; j++)); do ((j == i)) || peers+=(--peer "$(addr "$j"):7001"); done
        rm -f "$WORK/leech$i"
        : >"$WORK/get.out$i"
        ip netns exec "$NS$i" timeout "$GET_TIMEOUT" "$PPSPP_BIN" get "${CC_ARGS[@]}" "$SWARM" "${peers[@]}" \
            -o "$WORK/leech$i" --listen "$(addr "$i"):7001" --quiet --seed-after \
            >"$WORK/get.out$i" 2>"$WORK/get.err$i" &
        lp+=($!)
        pids+=($!)
    done
    t0=$SECONDS
    while ((SECONDS - t0 < GET_TIMEOUT)); do
        done_all=1
        for ((i = 1; i <= 4; i++)); do
            grep -q '^complete ' "$WORK/get.out$i" || done_all=0
        done
        ((done_all)) && break
        local alive=0
        for p in "${lp[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.2
    done
    stop "${lp[@]}" "$SEED_PID"
    for ((i = 1; i <= 4; i++)); do
        local m note=""
        m=$(summary_mbit "$WORK/get.out$i" || true)
        if [[ -n $m ]]; then
            note=$(sed -n 's/.*from \([0-9]*\) peer(s).*/from \1 peers/p' "$WORK/get.out$i")
            cmp -s "$WORK/orig" "$WORK/leech$i" || { m=""; note="output differs"; }
        else
            note="incomplete: $(tail -1 "$WORK/get.err$i" 2>/dev/null)"
        fi
        row "$link" "ppspp 1+4 leecher $i" "$run" "$m" "$note"
        rm -f "$WORK/leech$i"
    done
}

# iperf3 from host 0 to host 1 for TCP_SECONDS with congestion control CC; prints Mbit/s.
tcp_run() {
    local cc=$1 port=${2:-5201} spid
    ip netns exec "${NS}1" iperf3 -s -1 -B "$(addr 1)" -p "$port" >"$WORK/iperf-s.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    sleep 0.3
    if nsx 0 iperf3 -c "$(addr 1)" -p "$port" -C "$cc" -t "$TCP_SECONDS" --json >"$WORK/iperf-$cc.json" 2>&1; then
        stop "$spid"
        calc "$(jq '.end.sum_received.bits_per_second' "$WORK/iperf-$cc.json") / 1e6" 1
    else
        stop "$spid"
        return 1
    fi
}

# TCP CUBIC alone, then TCP CUBIC sharing the bottleneck with a ppspp 1:1 transfer.
shared_run() {
    local link=$1 run=$2 alone with ipid gpid out=$WORK/get.shared
    alone=$(tcp_run cubic || true)
    row "$link" "shared: TCP CUBIC alone" "$run" "$alone" ""
    seed_start || return 1
    rm -f "$WORK/leechS"
    ip netns exec "${NS}1" timeout "$GET_TIMEOUT" "$PPSPP_BIN" get "${CC_ARGS[@]}" "$SWARM" --peer "$(addr 0):7000" \
        -o "$WORK/leechS" --listen "$(addr 1):7001" --quiet >"$out" 2>"$WORK/get.errS" &
    gpid=$!
    pids+=("$gpid")
    sleep 2
    local t0=$SECONDS
    with=$(tcp_run cubic 5202 || true)
    local tcp_end=$((SECONDS - t0))
    wait "$gpid" 2>/dev/null || true
    stop "$SEED_PID"
    local share=""
    [[ -n $alone && -n $with ]] && share="TCP keeps $(calc "100 * $with / $alone" 0)% of its rate alone"
    row "$link" "shared: TCP CUBIC with ppspp" "$run" "$with" "$share"
    local m note
    m=$(summary_mbit "$out" || true)
    note="whole transfer; TCP ran from its 2nd s for ${tcp_end} s"
    [[ -n $m ]] || note="get failed: $(tail -1 "$WORK/get.errS")"
    row "$link" "shared: ppspp with TCP" "$run" "$m" "$note"
    rm -f "$WORK/leechS"
}

# libswift 1:1 (see benches/loopback.sh for why the rate is taken from the leecher's writes).
libswift_1to1() {
    MBIT="" NOTE=""
    local spid tpid kpid="" gpid="" i io t0 t1="" out=$WORK/swift.out
    rm -f "$WORK"/orig.mhash "$WORK"/orig.mbinmap "$out" "$out".mhash "$out".mbinmap
    : >"$out"
    : >"$WORK/sseed.out"
    ip netns exec "${NS}0" "$LIBSWIFT_BIN" -f "$WORK/orig" -l "$(addr 0):7100" -w 900s >"$WORK/sseed.out" 2>/dev/null &
    spid=$!
    pids+=("$spid")
    wait_line "$WORK/sseed.out" '^Root hash: ' "$spid" || return 1
    local hash
    hash=$(sed -n 's/^Root hash: //p' "$WORK/sseed.out")
    t0=$(date +%s.%N)
    ip netns exec "${NS}1" timeout "$GET_TIMEOUT" "$LIBSWIFT_BIN" -h "$hash" -t "$(addr 0):7100" \
        -l "$(addr 1):7101" -w 0s -f "$out" >/dev/null 2>&1 &
    tpid=$!
    pids+=("$tpid")
    # ip netns exec -> timeout -> swift: find swift's pid and watch its written bytes.
    for ((i = 0; i < 400; i++)); do
        gpid=$(pgrep -P "$tpid" | head -1 || true)
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
    local ok=1
    wait "$tpid" || ok=0
    stop "$spid"
    if ((ok)) && cmp -s "$WORK/orig" "$out"; then
        [[ -n $t1 ]] || t1=$(date +%s.%N)
        MBIT=$(calc "$BYTES * 8 / 1e6 / ($t1 - $t0)" 1)
    else
        NOTE="libswift download failed or differs"
    fi
    rm -f "$out" "$out".mhash "$out".mbinmap "$WORK"/orig.mhash "$WORK"/orig.mbinmap
}

# libswift 1 seeder + 4 leechers (each told about the seeder only: libswift has one -t; it
# learns the others by PEX); per-leecher rate from when it had written the whole file.
libswift_1plus4() {
    local link=$1 run=$2 spid i t lp=() t0 tdone=() io hash
    rm -f "$WORK"/orig.mhash "$WORK"/orig.mbinmap
    : >"$WORK/sseed.out"
    ip netns exec "${NS}0" "$LIBSWIFT_BIN" -f "$WORK/orig" -l "$(addr 0):7100" -w 900s >"$WORK/sseed.out" 2>/dev/null &
    spid=$!
    pids+=("$spid")
    wait_line "$WORK/sseed.out" '^Root hash: ' "$spid" || return 1
    hash=$(sed -n 's/^Root hash: //p' "$WORK/sseed.out")
    t0=$(date +%s.%N)
    for ((i = 1; i <= 4; i++)); do
        rm -f "$WORK/sleech$i" "$WORK/sleech$i".mhash "$WORK/sleech$i".mbinmap
        : >"$WORK/sleech$i"
        ip netns exec "$NS$i" "$LIBSWIFT_BIN" -h "$hash" -t "$(addr 0):7100" -l "$(addr "$i"):7101" \
            -w "${GET_TIMEOUT}s" -f "$WORK/sleech$i" >/dev/null 2>&1 &
        lp[i]=$!
        pids+=($!)
        tdone[i]=""
    done
    local left=4
    while ((left > 0)) && [[ $(calc "$(date +%s.%N) - $t0" 0) -lt $GET_TIMEOUT ]]; do
        left=0
        for ((i = 1; i <= 4; i++)); do
            [[ -z ${tdone[i]} ]] || continue
            io=$(sed -n 's/^wchar: //p' "/proc/${lp[i]}/io" 2>/dev/null || true)
            if [[ -n $io ]] && ((io >= BYTES)); then
                tdone[i]=$(date +%s.%N)
            else
                kill -0 "${lp[i]}" 2>/dev/null && left=$((left + 1))
            fi
        done
        sleep 0.02
    done
    # wchar also counts the .mhash/.mbinmap files: give the content up to 60 s more to be
    # complete before comparing (the rate still counts from the wchar time, which if anything
    # favours libswift).
    local ok=()
    for ((i = 1; i <= 4; i++)); do
        ok[i]=0
        [[ -n ${tdone[i]} ]] || continue
        for ((t = 0; t < 120; t++)); do
            cmp -s "$WORK/orig" "$WORK/sleech$i" && { ok[i]=1; break; }
            kill -0 "${lp[i]}" 2>/dev/null || break
            sleep 0.5
        done
        ((ok[i])) || cmp -s "$WORK/orig" "$WORK/sleech$i" && ok[i]=1
    done
    stop "${lp[@]}" "$spid"
    for ((i = 1; i <= 4; i++)); do
        if ((ok[i])); then
            row "$link" "libswift 1+4 leecher $i" "$run" "$(calc "$BYTES * 8 / 1e6 / (${tdone[i]} - $t0)" 1)" ""
        else
            row "$link" "libswift 1+4 leecher $i" "$run" "" "incomplete or differs"
        fi
        rm -f "$WORK/sleech$i" "$WORK/sleech$i".mhash "$WORK/sleech$i".mbinmap
    done
    rm -f "$WORK"/orig.mhash "$WORK"/orig.mbinmap
}

# ---- runs ---------------------------------------------------------------------------------
IFS=, read -ra LINK_LIST <<<"$LINKS"
for link in "${LINK_LIST[@]}"; do
    case $link in B | A | reorder) ;; *) echo "unknown link $link (B, A, reorder)" >&2; exit 64 ;; esac
    if has_test 1:1 || has_test tcp || has_test shared || has_test libswift; then
        net_up "$link" 2
        echo "link $link, 2 hosts: $(head -1 "$WORK/netem-$link-2.log")" >&2
        for ((r = 1; r <= RUNS; r++)); do
            if has_test 1:1; then
                ppspp_1to1 || true
                row "$link" "ppspp 1:1" "$r" "$MBIT" "$NOTE"
            fi
            if has_test tcp; then
                row "$link" "TCP CUBIC" "$r" "$(tcp_run cubic || true)" ""
                ((BBR)) && row "$link" "TCP BBR" "$r" "$(tcp_run bbr || true)" ""
            fi
            if has_test libswift && [[ -n ${LIBSWIFT_BIN:-} ]]; then
                libswift_1to1 || true
                row "$link" "libswift 1:1" "$r" "$MBIT" "$NOTE"
            fi
            if has_test shared && [[ $link == B ]]; then
                shared_run "$link" "$r" || true
            fi
        done
        kill "$NETEM_PID" 2>/dev/null || true
        wait "$NETEM_PID" 2>/dev/null || true
        NETEM_PID=""
        echo "  emulator: $(grep -h '^host' "$WORK/netem-$link-2.log" | tr '\n' ';')" >&2
    fi
    if has_test 1+4 || has_test libswift; then
        net_up "$link" 5
        for ((r = 1; r <= RUNS; r++)); do
            has_test 1+4 && { ppspp_1plus4 "$link" "$r" || true; }
            if has_test libswift && [[ -n ${LIBSWIFT_BIN:-} ]]; then
                libswift_1plus4 "$link" "$r" || true
            fi
        done
        kill "$NETEM_PID" 2>/dev/null || true
        wait "$NETEM_PID" 2>/dev/null || true
        NETEM_PID=""
        echo "  emulator: $(grep -h '^host' "$WORK/netem-$link-5.log" | tr '\n' ';')" >&2
    fi
    net_down
done

# ---- report -------------------------------------------------------------------------------
echo
echo "Wide-area bench: ${SIZE_MIB} MiB random file, 1 KiB chunks, TCP ${TCP_SECONDS} s runs;" \
    "$(nproc) CPUs, $(uname -r); links: B 50 ms each way 100 Mbit/s; A 20 ms each way 1% loss;" \
    "reorder = B + 2% of packets reordered by up to 10 ms (ppspp-netem)"
echo
echo "| link | test | run | Mbit/s | MB/s | notes |"
echo "|---|---|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
exit 0
}
