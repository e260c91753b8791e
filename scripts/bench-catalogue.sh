#!/usr/bin/env bash
# Benchmarks the tracker's catalogue writer: how many completion events per
# second it writes to SQLite (WAL, synchronous=FULL, batched transactions)
# before it drops any. Builds release and runs catalogue-bench twice on a
# database in a temp dir:
#   1. flooding (rate 0): the queue overflows; "written/s" is the ceiling;
#   2. paced at 80% of that ceiling: "dropped 0" confirms it holds there.
#
#   scripts/bench-catalogue.sh [SECONDS]      (default 5)
#
# Environment: SWARMS (1000) the completions are spread over.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-5}"
cargo build --release -q -p minitorrent-tracker --bins
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bench=target/release/catalogue-bench
echo "== flood: completions as fast as one thread records them"
out="$("$bench" --db "$tmp/bench.db" --seconds "$secs" --rate 0 --swarms "${SWARMS:-1000}")"
echo "$out"
ceiling="$(sed -n 's/.*written while recording (\([0-9]*\)\/s).*/\1/p' <<<"$out" | head -1)"
rate=$(( ${ceiling:-0} * 8 / 10 ))
if [[ "$rate" -gt 0 ]]; then
  echo "== paced at $rate/s (80% of what the writer wrote while flooded)"
  "$bench" --db "$tmp/bench.db" --seconds "$secs" --rate "$rate" --swarms "${SWARMS:-1000}"
fi
