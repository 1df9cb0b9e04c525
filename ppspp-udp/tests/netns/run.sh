#!/usr/bin/env bash
# Multi-host swarm over real kernel UDP: one seeder and 5 leechers, each in its own network
# namespace, joined by veth pairs to a bridge in a hub namespace (10.77.0.0/24, nothing
# leaves the namespaces this script creates). Every leecher's link is shaped to 50 Mbit/s
# each way (tc tbf on both ends of its veth pair) and every node drops 1% of the ppspp
# datagrams it receives (an nftables numgen rule on its input hook). The seeder serves a
# random file; each leecher runs `ppspp get --seed-after --listen ITS_ADDR:6778` against the
# seeder, learns the other leechers through PEX and serves them too (PPSPP_NETNS_MESH=1 also
# names the other leechers with --peer). All must complete and equal the original (cmp).
#
# Usage (as root):  PPSPP_BIN=target/release/ppspp ppspp-udp/tests/netns/run.sh
# Environment:
#   PPSPP_BIN            the ppspp binary (required; the Rust test passes CARGO_BIN_EXE_ppspp)
#   PPSPP_NETNS_SIZE     file size in bytes (default 8 MiB)
#   PPSPP_NETNS_LEECHERS number of leechers, 1..200 (default 5)
#   PPSPP_NETNS_MESH     0 (default): `--peer SEEDER` only; 1: also `--peer` every other leecher
#   PPSPP_NETNS_LIMIT    seconds allowed for all downloads (default 40); the whole script is
#                        additionally bounded by `timeout` (LIMIT + 30 s)
# Exit status: 0 all leechers complete and identical; 77 prerequisites missing (the reason is
# printed as "skipped: ..."); anything else is a failure. Namespaces, processes and temp
# files are always removed (trap on EXIT).
set -euo pipefail

LIMIT=${PPSPP_NETNS_LIMIT:-40}

# Bound the whole run: re-exec under timeout(1) once. timeout signals the whole process
# group with TERM; the TERM trap below turns that into a normal exit, which cleans up.
if [[ -z ${_PPSPP_NETNS_TIMED:-} ]] && command -v timeout >/dev/null; then
    export _PPSPP_NETNS_TIMED=1
    exec timeout -k 10 $((LIMIT + 30)) bash "$0" "$@"
fi

skip() {
    echo "skipped: $*"
    exit 77
}

[[ $(id -u) == 0 ]] || skip "not root (network namespaces need CAP_NET_ADMIN)"
: "${PPSPP_BIN:?set PPSPP_BIN to the ppspp binary}"
[[ -x $PPSPP_BIN ]] || { echo "PPSPP_BIN=$PPSPP_BIN is not executable" >&2; exit 1; }
PPSPP_BIN=$(readlink -f "$PPSPP_BIN")

# Tools: install what is missing (Debian package names), skip if that fails.
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v tc >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v cmp >/dev/null || need+=(diffutils)
if ((${#need[@]})); then
    if command -v apt-get >/dev/null; then
        echo "installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null 2>&1; } ||
            skip "cannot install ${need[*]}"
    else
        skip "missing ${need[*]} and no apt-get"
    fi
fi

SIZE=${PPSPP_NETNS_SIZE:-$((8 * 1024 * 1024))}
N=${PPSPP_NETNS_LEECHERS:-5}
MESH=${PPSPP_NETNS_MESH:-0}
((N >= 1 && N <= 200)) || { echo "PPSPP_NETNS_LEECHERS must be 1..200" >&2; exit 2; }
PORT=6778
RATE=50mbit
LOSS=1 # percent, per receiving node

# Unique names, so concurrent runs do not collide (each run has its own private subnet).
P="ppspp-netns-$$"
HUB="$P-hub"
nodes=("$P-seed")
for ((i = 1; i <= N; i++)); do nodes+=("$P-l$i"); done
addr() { echo "10.77.0.$(($1 + 1))"; } # node 0 = seeder
in_ns() { ip netns exec "$@"; }

WORK=$(mktemp -d /tmp/ppspp-netns.XXXXXX)
pids=()
created=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # Anything still inside our namespaces was started by this script.
    for ns in "${created[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
    for ns in "${created[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---- topology ---------------------------------------------------------------------------
ip netns add "$HUB" 2>"$WORK/err" || skip "ip netns add failed: $(cat "$WORK/err")"
created+=("$HUB")
in_ns "$HUB" ip link add br0 type bridge
in_ns "$HUB" ip link set br0 up
in_ns "$HUB" ip link set lo up
for i in "${!nodes[@]}"; do
    ns=${nodes[$i]}
    port=p$i # the bridge port (in the hub namespace)
    ip netns add "$ns"
    created+=("$ns")
    # Create the pair inside the node's namespace, its peer directly in the hub's: nothing
    # ever appears in the caller's namespace.
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$HUB"
    in_ns "$HUB" ip link set "$port" master br0 up
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip addr add "$(addr "$i")/24" dev eth0
    in_ns "$ns" ip link set eth0 up
    if ((i > 0)); then
        # 50 Mbit/s each way: leecher uplink (its veth) and downlink (the bridge port).
        in_ns "$ns" tc qdisc add dev eth0 root tbf rate $RATE burst 32kbit latency 50ms
        in_ns "$HUB" tc qdisc add dev "$port" root tbf rate $RATE burst 32kbit latency 50ms
    fi
    # 1% random loss of the ppspp datagrams this node receives.
    in_ns "$ns" nft add table inet t
    in_ns "$ns" nft add chain inet t input '{ type filter hook input priority 0; }'
    in_ns "$ns" nft add rule inet t input udp dport $PORT numgen random mod 100 '<' $LOSS counter drop
done
# Wait for the bridge ports to forward (no STP on a fresh bridge, but links come up async).
for ((t = 0; t < 50; t++)); do
    in_ns "${nodes[1]}" ping -c1 -W1 "$(addr 0)" >/dev/null 2>&1 && break
    sleep 0.1
done

# ---- seeder -------------------------------------------------------------------------------
head -c "$SIZE" /dev/urandom >"$WORK/orig"
: >"$WORK/seed.out" # the background job opens it asynchronously
in_ns "${nodes[0]}" "$PPSPP_BIN" seed "$WORK/orig" --no-cache --listen "$(addr 0):$PORT" --quiet \
    >"$WORK/seed.out" 2>"$WORK/seed.err" &
pids+=($!)
swarm=""
for ((t = 0; t < 300; t++)); do
    swarm=$(sed -n 's/^swarm //p' "$WORK/seed.out")
    [[ -n $swarm ]] && grep -q '^link ' "$WORK/seed.out" && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$WORK/seed.err" >&2; echo "seeder died" >&2; exit 1; }
    sleep 0.1
done
[[ -n $swarm ]] || { echo "seeder printed no swarm line" >&2; exit 1; }
echo "netns swarm: 1 seeder $(addr 0) + $N leechers $(addr 1)..$(addr "$N"), $SIZE bytes," \
    "links $RATE each way, $LOSS% loss on receive, mesh=$MESH"
echo "swarm $swarm"

# ---- leechers -----------------------------------------------------------------------------
start=$(date +%s.%N)
for ((i = 1; i <= N; i++)); do
    : >"$WORK/l$i.out"
    peers=(--peer "$(addr 0):$PORT")
    if [[ $MESH == 1 ]]; then
        for ((j = 1; j <= N; j++)); do ((j != i)) && peers+=(--peer "$(addr "$j"):$PORT"); done
    fi
    in_ns "${nodes[$i]}" timeout -k 5 "$LIMIT" "$PPSPP_BIN" get "$swarm" "${peers[@]}" \
        --listen "$(addr "$i"):$PORT" -o "$WORK/out$i" --timeout 20 --quiet --seed-after \
        >"$WORK/l$i.out" 2>"$WORK/l$i.err" &
    pids+=($!)
done

# Each leecher prints its summary line on completion and then keeps serving (--seed-after).
deadline=$(($(date +%s) + LIMIT))
failed=0
while :; do
    done_count=0
    for ((i = 1; i <= N; i++)); do
        if grep -q '^complete ' "$WORK/l$i.out"; then
            done_count=$((done_count + 1))
        elif ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "leecher $i exited before completing:" >&2
            tail -5 "$WORK/l$i.err" >&2
            failed=1
        fi
    done
    ((failed == 0 && done_count < N)) || break
    if (($(date +%s) >= deadline)); then
        echo "timed out after $LIMIT s: $done_count of $N leechers complete" >&2
        failed=1
        break
    fi
    sleep 0.1
done
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

# ---- results ------------------------------------------------------------------------------
printf '\n%-8s %-10s %10s %8s %8s  %s\n' leecher address bytes seconds MB/s "peers used"
for ((i = 1; i <= N; i++)); do
    line=$(grep '^complete ' "$WORK/l$i.out" || true)
    if [[ -z $line ]]; then
        printf '%-8s %-10s %10s %8s %8s  %s\n' "l$i" "$(addr "$i")" - - - "INCOMPLETE"
        continue
    fi
    # complete OUT: N bytes (D downloaded, R resumed) in S s, X MB/s, from P peer(s): ADDR…
    bytes=$(sed -E 's/.*: ([0-9]+) bytes.*/\1/' <<<"$line")
    secs=$(sed -E 's/.* in ([0-9.]+) s,.*/\1/' <<<"$line")
    mbs=$(sed -E 's/.* ([0-9.]+) MB\/s.*/\1/' <<<"$line")
    used=$(sed -E 's/.*from ([0-9]+) peer.*/\1/' <<<"$line")
    if cmp -s "$WORK/orig" "$WORK/out$i"; then same=identical; else same=DIFFERENT; failed=1; fi
    printf '%-8s %-10s %10s %8s %8s  %s (%s)\n' "l$i" "$(addr "$i")" "$bytes" "$secs" "$mbs" "$used" "$same"
done
drops=0
for ns in "${nodes[@]}"; do
    d=$(in_ns "$ns" nft list chain inet t input | sed -nE 's/.*counter packets ([0-9]+).*/\1/p')
    drops=$((drops + ${d:-0}))
done
echo "all done in ${wall} s wall; datagrams dropped by the loss rules: $drops"

if ((failed)); then
    for ((i = 1; i <= N; i++)); do
        echo "--- leecher $i stderr (tail)" >&2
        tail -5 "$WORK/l$i.err" >&2 || true
    done
    echo "FAIL" >&2
    exit 1
fi
echo "PASS: $N leechers complete, outputs identical to the original"
