#!/usr/bin/env bash
# Benchmarks minitorrent-tracker over loopback. Builds release, starts the
# tracker with one worker pinned to core 0 and the load generator
# (tracker-load) pinned to core 1, runs for a bounded time, prints the figures.
#
#   scripts/bench-tracker.sh [MODE] [SECONDS] [-- extra tracker-load arguments]
#
# MODE:
#   json        JSON REQUEST/HEARTBEAT/REGISTER mix (60/30/10)      [default]
#   announce    BEP 15 announces
#   connect     BEP 15 connects
#   http        HTTP tracker announces (GET /announce on the web port) over
#               CONNECTIONS (8) kept-alive connections, one request in
#               flight on each; the tracker's web threads share core 0
#   memory      register 1,000,000 peers with BEP 15 announces; tracker RSS per peer
#   memory-json the same through JSON REGISTER
#   web         json and announce, each twice in a row: with --web off, then
#               with the web page on and a client polling its swarm API
#               (/api/swarms/<info_hash>) every second, as an open swarm
#               page does
#   all         every mode above, one after the other
#
# Environment: PEERS (10000; 1000000 for memory), FILES (1000), WINDOW (256),
# CONNECTIONS (8, for http; the tracker takes at most 16 from one address),
# DB (the tracker's --db: a file in a temp dir by default, as deployed;
# DB=none compares with the catalogue in memory only).
# Figures depend on the machine and on whatever else runs on it; the load
# generator also prints the tracker's CPU time per reply, which is steadier.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-json}"
secs="${2:-10}"
shift $(( $# > 2 ? 2 : $# )) || true
[[ "${1:-}" == "--" ]] && shift

cargo build --release -q -p minitorrent-tracker --bins

# taskset may be missing or the machine may have one core; run unpinned then.
pin0=() pin1=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
  pin0=(taskset -c 0) pin1=(taskset -c 1)
fi

# poll_web URL LOG: what an open swarm page does: GET /api/swarms/<ih> every
# second (the first swarm listed), one status code per line in LOG.
poll_web() {
  local url="$1" log="$2" ih=""
  while :; do
    if [[ -z "$ih" ]]; then
      ih="$(curl -s --max-time 2 "${url}api/swarms" | grep -o '"info_hash":"[0-9a-f]\{40\}"' | head -1 | cut -d'"' -f4 || true)"
    fi
    if [[ -n "$ih" ]]; then
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 2 "${url}api/swarms/$ih" >>"$log" || echo failed >>"$log"
    fi
    sleep 1
  done
}

run() { # run MODE SECONDS TRACKER-ARGS... -- LOAD-ARGS...  (POLL_WEB=1: poll the web page)
  local m="$1" s="$2"; shift 2
  local targs=() largs=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do targs+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  largs=("$@")

  local out; out="$(mktemp)"
  local dbdir; dbdir="$(mktemp -d)"
  local db="${DB:-$dbdir/tracker.db}"
  RUST_LOG=warn "${pin0[@]}" target/release/minitorrent-tracker --bind 127.0.0.1:0 --workers 1 --db "$db" "${targs[@]}" >"$out" 2>&1 &
  local tpid=$!
  local addr=""
  for _ in $(seq 100); do
    addr="$(sed -n 's/^minitorrent-tracker listening on //p' "$out")"
    [[ -n "$addr" ]] && break
    sleep 0.1
  done
  if [[ -z "$addr" ]]; then echo "tracker did not start:"; cat "$out"; kill "$tpid" 2>/dev/null; return 1; fi
  local web; web="$(sed -n 's/^minitorrent-tracker web page on //p' "$out")"
  echo "== $m: tracker pid $tpid on $addr (1 worker, core 0, --db $db), load on core 1; web page: ${web:-off}"
  local ppid="" plog=""
  if [[ -n "${POLL_WEB:-}" ]]; then
    if [[ -z "$web" ]]; then echo "POLL_WEB set but the web page is off"; kill "$tpid"; return 1; fi
    command -v curl >/dev/null || { echo "polling the web page needs curl"; kill "$tpid"; return 1; }
    plog="$(mktemp)"
    poll_web "$web" "$plog" &
    ppid=$!
  fi
  local rc=0
  local wargs=()
  [[ -n "$web" ]] && wargs=(--web "$(echo "$web" | sed 's|^http://||; s|/$||')")
  timeout $((s + 240)) "${pin1[@]}" target/release/tracker-load --tracker "$addr" --tracker-pid "$tpid" \
    --mode "$m" --window "${WINDOW:-256}" --duration "$s" "${wargs[@]}" "${largs[@]}" || rc=$?
  if [[ -n "$ppid" ]]; then
    kill "$ppid" 2>/dev/null || true
    wait "$ppid" 2>/dev/null || true
    echo "   web poller: $(grep -c . "$plog" || true) requests to /api/swarms/<ih>, $(grep -c '^200$' "$plog" || true) answered 200"
    rm -f "$plog"
  fi
  kill "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  rm -f "$out"
  rm -rf "$dbdir"
  return "$rc"
}

peers="${PEERS:-10000}"
files="${FILES:-1000}"
mem_peers="${PEERS:-1000000}"

one() {
  local m="$1"; shift
  case "$m" in
    json)        run json "$secs" -- --peers "$peers" --files "$files" "$@" ;;
    announce)    run announce "$secs" -- --peers "$peers" --files "$files" "$@" ;;
    connect)     run connect "$secs" -- "$@" ;;
    http)        run http-announce "$secs" --web 127.0.0.1:0 -- --peers "$peers" --files "$files" \
                   --connections "${CONNECTIONS:-8}" "$@" ;;
    memory)      run fill "$secs" --peer-timeout 3600 -- --via bep15 --peers "$mem_peers" --files "$files" "$@" ;;
    memory-json) run fill "$secs" --peer-timeout 3600 -- --via json --peers "$mem_peers" --files "$files" "$@" ;;
    web)
      for w in json announce; do
        echo "### $w, --web off"
        run "$w" "$secs" --web off -- --peers "$peers" --files "$files" "$@"
        echo "### $w, web page on, its swarm API polled every second"
        POLL_WEB=1 run "$w" "$secs" -- --peers "$peers" --files "$files" "$@"
      done ;;
    *) echo "unknown mode $m (json, announce, connect, http, memory, memory-json, web, all)"; return 2 ;;
  esac
}

if [[ "$mode" == all ]]; then
  for m in json announce connect http memory memory-json web; do one "$m" "$@"; done
else
  one "$mode" "$@"
fi
