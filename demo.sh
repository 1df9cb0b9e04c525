#!/usr/bin/env bash
# The main job on built-in defaults: the default swarm simulation, then a loopback
# seed-and-get demo with the `ppspp` program, then a loopback live stream. Needs only a Rust
# toolchain.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release -q -p ppspp-sim -p ppspp-udp
bin="${CARGO_TARGET_DIR:-target}/release"

echo "== swarm simulation (ppspp-sim, default scenario)"
"$bin"/ppspp-sim

echo
echo "== loopback seed and get (ppspp seed / ppspp get, 16 MiB, 1 KiB chunks)"
work=$(mktemp -d)
seeder=""
source_pid=""
cleanup() {
    [ -n "$seeder" ] && kill "$seeder" 2>/dev/null && wait "$seeder" 2>/dev/null
    [ -n "$source_pid" ] && kill "$source_pid" 2>/dev/null && wait "$source_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
head -c $((16 << 20)) /dev/urandom > "$work/content.bin"
"$bin"/ppspp seed "$work/content.bin" --listen 127.0.0.1:0 > "$work/seed.out" 2> "$work/seed.err" &
seeder=$!
for _ in $(seq 100); do
    grep -q '^link ' "$work/seed.out" 2>/dev/null && break
    sleep 0.1
done
cat "$work/seed.out"
link=$(sed -n 's/^link //p' "$work/seed.out")
"$bin"/ppspp get "$link" -o "$work/copy.bin" --timeout 60
cmp "$work/content.bin" "$work/copy.bin" && echo "copy is byte-identical"

echo
echo "== loopback live stream (ppspp live source / ppspp live get, 4 MiB at 1 MB/s, signed munros)"
head -c $((4 << 20)) /dev/urandom > "$work/stream.bin"
"$bin"/ppspp live source --input "$work/stream.bin" --listen 127.0.0.1:0 --rate 1000000 \
    > "$work/live.out" 2> "$work/live.err" &
source_pid=$!
for _ in $(seq 100); do
    grep -q '^listening ' "$work/live.out" 2>/dev/null && break
    sleep 0.1
done
cat "$work/live.out"
swarm=$(sed -n 's/^swarm //p' "$work/live.out")
addr=$(sed -n 's/^listening //p' "$work/live.out")
sleep 1
"$bin"/ppspp live get "$swarm" --peer "$addr" -o "$work/live.bin" --chunks 1024 --duration 30 \
    2> "$work/get.err"
cat "$work/get.err"
tune=$(sed -n 's/^tune-in //p' "$work/get.err")
if cmp -s <(tail -c +$((tune * 1024 + 1)) "$work/stream.bin" | head -c $((1024 * 1024))) "$work/live.bin"; then
    echo "live output is byte-identical to the stream from chunk $tune on"
else
    echo "live output differs from the stream" >&2
    exit 1
fi
