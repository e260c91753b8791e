#!/usr/bin/env bash
# Peer benchmark (not a test): moves a random file over loopback from 1 seeder
# to 1 leecher, then from 1 seeder to 4 leechers at once, checks every copy
# byte for byte, and prints MB/s and each process's peak RSS.
#
#   scripts/bench-peer.sh                 # 1 GiB in /dev/shm (measures the engine, not the disk)
#   SIZE_MB=256 scripts/bench-peer.sh     # smaller file
#   BENCH_DIR=/tmp scripts/bench-peer.sh  # include the disk
#   PEER_ARGS="--encryption require" scripts/bench-peer.sh  # flags for every peer (here: RC4)
#
# For 1 -> 4 it also prints the CPU time (user + system) the five processes
# spent on it, per MB delivered: on 2 cores the swarm is CPU-bound.
# Targets on the 2-core reference machine: >= 600 MB/s for 1 -> 1, peak RSS
# <= 64 MiB per peer.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-1024}
read -r -a peer_args <<< "${PEER_ARGS:-}"
PIECE=${PIECE:-}
if [[ -z "${BENCH_DIR:-}" ]]; then
    need_kb=$(( SIZE_MB * 1024 * 6 ))
    if [[ -d /dev/shm ]] && [[ $(df -Pk /dev/shm | awk 'NR==2 {print $4}') -gt $need_kb ]]; then
        BENCH_DIR=/dev/shm
    else
        BENCH_DIR=${TMPDIR:-/tmp}
    fi
fi

cargo build --release -q -p minitorrent -p minitorrent-tracker
BIN=$PWD/target/release/minitorrent
TRACKER_BIN=${TRACKER_BIN:-$PWD/target/release/minitorrent-tracker}
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "bench-peer: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "$BENCH_DIR/mt-bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_line() { # file pattern
    for _ in $(seq 1 600); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench-peer: timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    exit 1
}
peak_rss() { awk -F': ' '/Maximum resident set size/ {printf "%.1f MiB", $2/1024}' "$1"; }
now() { date +%s.%N; }

echo "bench-peer: ${SIZE_MB} MiB in $BENCH_DIR ($(nproc) cores)"
mkdir -p "$work/seed"
head -c $(( SIZE_MB * 1024 * 1024 )) /dev/urandom > "$work/seed/big.bin"

"$TRACKER_BIN" --bind 127.0.0.1:0 --db "$work/tracker.db" > "$work/tracker.out" 2>&1 &
pids+=($!)
wait_line "$work/tracker.out" "listening on"
tracker=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/tracker.out" | head -1 | awk '{print $3}')

create_args=()
[[ -n $PIECE ]] && create_args=(--piece-length "$PIECE")
"$BIN" create "$work/seed/big.bin" -o "$work/big.torrent" --tracker "$tracker" "${create_args[@]}" > "$work/create.out"
grep -E '^created' "$work/create.out"

$TIME -v -o "$work/seeder.time" "$BIN" seed "$work/big.torrent" --dir "$work/seed" --tracker "$tracker" "${peer_args[@]}" \
    > "$work/seeder.out" 2> "$work/seeder.err" &
seeder=$!
pids+=($seeder)
wait_line "$work/seeder.out" "^seeding"

# CPU seconds (user + system) a process has used so far, from /proc.
cpu_of() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# The seeder's own process (GNU time's child).
seeder_proc=$(pgrep -P "$seeder" | head -1)

# 1 seeder -> 1 leecher
mkdir -p "$work/l1"
seeder_cpu0=$(cpu_of "${seeder_proc:-$seeder}")
t0=$(now)
$TIME -v -o "$work/l1.time" "$BIN" get "$work/big.torrent" --no-seed --dir "$work/l1" --tracker "$tracker" "${peer_args[@]}" \
    > "$work/l1.out" 2> "$work/l1.err"
t1=$(now)
cmp "$work/seed/big.bin" "$work/l1/big.bin"
grep '^done:' "$work/l1.out"
one=$(awk -v s="$SIZE_MB" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", s*1048576/(b-a)/1e6}')
echo "1 -> 1: $one MB/s wall clock (process start to exit), leecher peak RSS $(peak_rss "$work/l1.time")"
l1_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$work/l1.time")
s1_cpu=$(awk -v a="$seeder_cpu0" -v b="$(cpu_of "${seeder_proc:-$seeder}")" 'BEGIN { print b - a }')
awk -v l="$l1_cpu" -v s="$s1_cpu" -v mb="$SIZE_MB" 'BEGIN {
    printf "1 -> 1 CPU: %.2f s (leecher %.2f s, seeder %.2f s), %.2f ms per MB delivered\n",
        l + s, l, s, (l + s) * 1000 / (mb * 1.048576) }'
rm -rf "$work/l1"

seeder_cpu0=$(cpu_of "${seeder_proc:-$seeder}")

# 1 seeder -> 4 leechers at once
t0=$(now)
lp=()
for i in 1 2 3 4; do
    mkdir -p "$work/m$i"
    $TIME -v -o "$work/m$i.time" "$BIN" get "$work/big.torrent" --no-seed --dir "$work/m$i" --tracker "$tracker" "${peer_args[@]}" \
        --stats "$work/m$i.json" > "$work/m$i.out" 2> "$work/m$i.err" &
    lp+=($!)
done
for p in "${lp[@]}"; do wait "$p"; done
t1=$(now)
for i in 1 2 3 4; do
    cmp "$work/seed/big.bin" "$work/m$i/big.bin"
    echo "  leecher $i: $(grep '^done:' "$work/m$i.out" | sed 's/^done: //'), peak RSS $(peak_rss "$work/m$i.time")"
    grep '^  from' "$work/m$i.out" | sed 's/^/    /'
done
four=$(awk -v s="$SIZE_MB" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", 4*s*1048576/(b-a)/1e6}')
echo "1 -> 4: $four MB/s delivered in total, $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}') s until the last leecher finished"
seeder_cpu=$(awk -v a="$seeder_cpu0" -v b="$(cpu_of "${seeder_proc:-$seeder}")" 'BEGIN { print b - a }')
leechers_cpu=$(for i in 1 2 3 4; do
    awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$work/m$i.time"
done | awk '{ s += $1 } END { print s }')
awk -v l="$leechers_cpu" -v s="$seeder_cpu" -v mb="$SIZE_MB" 'BEGIN {
    printf "1 -> 4 CPU: %.2f s (leechers %.2f s, seeder %.2f s), %.2f ms per MB delivered\n",
        l + s, l, s, (l + s) * 1000 / (4 * mb * 1.048576) }'

pkill -INT -P "$seeder" || true  # GNU time ignores SIGINT; signal its child
wait "$seeder" || true
echo "seeder peak RSS $(peak_rss "$work/seeder.time")"
echo "all copies identical (cmp)"

