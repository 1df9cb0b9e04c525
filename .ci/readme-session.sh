#!/usr/bin/env bash
# Runs the README's user-facing commands from a fresh clone of this repository's HEAD, as a
# new user would: install `ppspp` onto the PATH, hash, seed, get (by link, by hex ID and a
# hostname peer, with --json), decode, completions, man page, then ./demo.sh.
#
# The clone is fresh; the build reuses this checkout's target directory (CARGO_TARGET_DIR)
# so CI does not compile the workspace twice. Set FRESH_TARGET=1 for a cold build too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${FRESH_TARGET:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
fi

git clone -q "$repo" "$work/ppspp"
cd "$work/ppspp"

echo "-- cargo install --path ppspp-udp --locked (README: getting ppspp on the PATH)"
cargo install -q --locked --path ppspp-udp --root "$work/prefix"
export PATH="$work/prefix/bin:$PATH"
ppspp --version
ppspp --help | grep -q "Exit status: 0 done, 1 failed"

echo "-- ppspp hash / seed / get"
head -c 3000000 /dev/urandom > "$work/video.bin"
id=$(ppspp hash "$work/video.bin")
ppspp seed "$work/video.bin" --listen 127.0.0.1:0 > "$work/seed.out" 2> "$work/seed.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '^link ' "$work/seed.out" && break; sleep 0.1; done
cat "$work/seed.out"
test "$(sed -n 's/^swarm //p' "$work/seed.out")" = "$id"   # hash and seed agree by default
link=$(sed -n 's/^link //p' "$work/seed.out")
port=$(sed -n 's/^listening .*://p' "$work/seed.out")
ppspp get "$link" -o "$work/copy.bin"
cmp "$work/video.bin" "$work/copy.bin"
ppspp get "$id" --peer "localhost:$port" -o "$work/copy2.bin" --json > "$work/summary.json"
grep -q '"status":"complete"' "$work/summary.json"
cmp "$work/video.bin" "$work/copy2.bin"
ppspp get "$id" --peer "localhost:$port" -o "$work/copy3.bin" -q --peers-table --max-rate 50M
ls "$work/video.bin.ppspp-seed" > /dev/null   # the seed cache file the README explains

echo "-- usage errors exit 2 with one line"
set +e
ppspp get "$link" -o "$work/x" --timeout inf 2> "$work/err"; rc=$?
set -e
test "$rc" = 2 && test "$(wc -l < "$work/err")" = 1

echo "-- ppspp decode / completions / man"
ppspp decode 000000080200000000000000000000000000000064030000000000000000
ppspp completions bash > "$work/ppspp.bash"
ppspp man > "$work/ppspp.1"
test -s "$work/ppspp.bash" && grep -q '^\.TH' "$work/ppspp.1"

echo "-- ./demo.sh"
./demo.sh
echo "README session passed"
