#!/usr/bin/env bash
# The main job on built-in defaults: the default swarm simulation, then a loopback
# seed-and-get demo with the `ppspp` program. Needs only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release -q -p ppspp-sim -p ppspp-udp

echo "== swarm simulation (ppspp-sim, default scenario)"
./target/release/ppspp-sim

echo
echo "== loopback seed and get (ppspp seed / ppspp get, 16 MiB, 1 KiB chunks)"
work=$(mktemp -d)
seeder=""
cleanup() {
    [ -n "$seeder" ] && kill "$seeder" 2>/dev/null && wait "$seeder" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
head -c $((16 << 20)) /dev/urandom > "$work/content.bin"
./target/release/ppspp seed "$work/content.bin" --listen 127.0.0.1:0 > "$work/seed.out" 2> "$work/seed.err" &
seeder=$!
for _ in $(seq 100); do
    grep -q '^link ' "$work/seed.out" 2>/dev/null && break
    sleep 0.1
done
cat "$work/seed.out"
link=$(sed -n 's/^link //p' "$work/seed.out")
./target/release/ppspp get "$link" -o "$work/copy.bin" --timeout 60
cmp "$work/content.bin" "$work/copy.bin" && echo "copy is byte-identical"
