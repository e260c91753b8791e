#!/usr/bin/env bash
# Benchmarks minitorrent-tracker over loopback: builds release, starts the
# tracker pinned to core 0 and the load generator (tracker-load) on core 1,
# runs for a bounded time and prints the figures.
#
#   scripts/bench-tracker.sh [SECONDS] [-- extra tracker-load arguments]
#
# Environment: PEERS (10000), FILES (1000), WINDOW (256).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
shift || true
[[ "${1:-}" == "--" ]] && shift
peers="${PEERS:-10000}"
files="${FILES:-1000}"
window="${WINDOW:-256}"

cargo build --release -q -p minitorrent-tracker --bins

# taskset may be missing or the machine may have one core; run unpinned then.
pin0=() pin1=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
  pin0=(taskset -c 0) pin1=(taskset -c 1)
fi

out="$(mktemp)"
RUST_LOG=warn "${pin0[@]}" target/release/minitorrent-tracker --bind 127.0.0.1:0 >"$out" 2>&1 &
tracker_pid=$!
trap 'kill "$tracker_pid" 2>/dev/null || true; wait "$tracker_pid" 2>/dev/null || true; rm -f "$out"' EXIT

addr=""
for _ in $(seq 100); do
  addr="$(sed -n 's/^minitorrent-tracker listening on //p' "$out")"
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "tracker did not start:"; cat "$out"; exit 1; }
echo "tracker pid $tracker_pid on $addr (core 0); load on core 1; ${secs}s"

timeout $((secs + 180)) "${pin1[@]}" target/release/tracker-load --tracker "$addr" \
  --tracker-pid "$tracker_pid" --peers "$peers" --files "$files" --window "$window" --duration "$secs" "$@"
