#!/usr/bin/env bash
# Takes the picture of the live swarm page for the docs (docs/img/swarm.png):
# starts a real swarm on this machine (a tracker with its web page, a seeder
# and leechers with limited upload rates, so the transfer lasts), waits until
# the tracker has the peers' STATS, and photographs /swarm/<info_hash> with
# headless chromium. See --help.
set -euo pipefail

MT_PROG=screenshot-swarm.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/screenshot-swarm.sh [OPTIONS]

Builds the release binaries, starts a tracker with its web page, one seeder
and N leechers on 127.0.0.1 (upload rates limited so the download takes
about half a minute), waits until the swarm page has edges to draw, then
saves a screenshot of the page taken with headless chromium. Every process
it starts is stopped at the end, also on failure and on Ctrl-C.

Options:
  --out FILE        where to save the PNG [default: docs/img/swarm.png]
  --size SIZE       size of the shared file, e.g. 32M [default: 48M]
  --leechers N      number of leechers, 1 to 12 [default: 4]
  --after SECS      seconds to let the swarm run before the picture, counted
                    from the first edge on the page [default: 6]
  --window WxH      browser window size [default: 1600x1000]
  -h, --help        show this help

Needs: chromium (Debian: apt-get install chromium) and curl.
Environment:
  MINITORRENT_BIN_DIR   use the binaries in this directory instead of building
  MINITORRENT_CHROMIUM  the browser binary [default: chromium on the PATH]
EOF
}

out=$MT_ROOT/docs/img/swarm.png
size_arg=48M
leechers=4
after=6
window=1600x1000

need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --out) need "$@"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --size) need "$@"; size_arg=$2; shift 2 ;;
    --size=*) size_arg=${1#*=}; shift ;;
    --leechers) need "$@"; leechers=$2; shift 2 ;;
    --leechers=*) leechers=${1#*=}; shift ;;
    --after) need "$@"; after=$2; shift 2 ;;
    --after=*) after=${1#*=}; shift ;;
    --window) need "$@"; window=$2; shift 2 ;;
    --window=*) window=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_err "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
done

size=$(mt_parse_size "$size_arg") || mt_die "--size $size_arg: not a size like 32M"
((size > 0)) || mt_die "--size must be more than 0 bytes"
if [[ ! $leechers =~ ^[0-9]+$ ]] || ((leechers < 1 || leechers > 12)); then
    mt_die "--leechers $leechers: give a number from 1 to 12"
fi
[[ $after =~ ^[0-9]+$ ]] || mt_die "--after $after: give whole seconds, e.g. 6"
[[ $window =~ ^([0-9]+)x([0-9]+)$ ]] || mt_die "--window $window: give WIDTHxHEIGHT, e.g. 1600x1000"
win_w=${BASH_REMATCH[1]}
win_h=${BASH_REMATCH[2]}

mt_find_chromium
command -v curl >/dev/null 2>&1 || mt_die "curl not found: install it (Debian: sudo apt-get install curl)"
out_dir=$(dirname "$out")
mkdir -p "$out_dir" || mt_die "cannot create $out_dir"

# ------------------------------------------------------------------ cleanup

work=''
cleanup() {
    set +e
    trap - INT TERM
    mt_stop_all
    [[ -n $work && -d $work ]] && rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; mt_info "Interrupted: stopping every process"; exit 130' INT TERM

# ------------------------------------------------------------------- swarm

mt_build
work=$(mktemp -d "${TMPDIR:-/tmp}/minitorrent-shot.XXXXXX")
logs=$work/logs
mkdir -p "$logs" "$work/seeder"

file_name=lecture-07.mp4
mt_info "Writing $(mt_human "$size") of random data to $file_name"
mt_random_file "$work/seeder/$file_name" "$size"

mt_info "Starting the tracker with its web page"
mt_start_tracker "$logs" --web 127.0.0.1:0
rc=0
mt_wait_for "$logs/tracker.out" 'web page on http' 10 "$MT_TRACKER_PID" || rc=$?
if ((rc)); then
    mt_tail_logs "$logs/tracker.out" "$logs/tracker.log"
    mt_die "the tracker printed no web page line: $(mt_why $rc 10 "'web page on' line") (does this build have --web?)"
fi
web=$(sed -n 's/.*web page on \(http[^ ]*\).*/\1/p' "$logs/tracker.out" | sed -n 1p)
web=${web%/}
mt_note "tracker at $MT_TRACKER_ADDR (UDP), web page at $web/"

common=(--bind 127.0.0.1 --port 0 --tracker "$MT_TRACKER_ADDR")
mt_info "Starting the seeder (upload limited to 2 MB/s)"
mt_start_peer seeder "$logs/seeder.out" "$logs/seeder.log" \
    "${common[@]}" --max-upload-rate 2M --dir "$work/seeder" seed "$work/seeder/$file_name"
rc=0
mt_wait_for "$logs/seeder.out" '^seeding ' 60 "$MT_PID" || rc=$?
if ((rc)); then
    mt_tail_logs "$logs/seeder.out" "$logs/seeder.log"
    mt_die "the seeder did not start seeding: $(mt_why $rc 60 "'seeding' line")"
fi
mt_wait_listed "$file_name" 15 || mt_die "the tracker does not list $file_name"
hash=$("$MT_PEER_BIN" --tracker "$MT_TRACKER_ADDR" search "$file_name" 2>/dev/null |
    awk -v n="$file_name" '$2 == n { print $1; exit }')
[[ $hash =~ ^[0-9a-f]{40}$ ]] || mt_die "cannot read the info hash of $file_name from 'minitorrent search'"
url=$web/swarm/$hash
mt_note "swarm page: $url"

mt_info "Starting $leechers leechers (upload limited to 1 MB/s each)"
for ((i = 1; i <= leechers; i++)); do
    mkdir -p "$work/leecher$i"
    mt_start_peer "leecher$i" "$logs/leecher$i.out" "$logs/leecher$i.log" \
        "${common[@]}" --max-upload-rate 1M --dir "$work/leecher$i" get "$file_name"
done

mt_info "Waiting for the peers' STATS to draw edges on the page"
tries=300
# (no `grep -q` in a pipeline: with pipefail, curl's SIGPIPE would count as a miss)
while :; do
    json=$(curl -fsS --max-time 2 "$web/api/swarms/$hash" 2>/dev/null || true)
    if [[ $(grep -E '"edges": *\[ *\{' <<<"$json" || true) ]]; then break; fi
    tries=$((tries - 1))
    ((tries > 0)) || mt_die "no edges in $web/api/swarms/$hash after 30 s (peers' STATS; logs in $logs)"
    sleep 0.1
done
mt_note "edges on the page; letting the swarm run $after s more"
sleep "$after"

mt_info "Taking the screenshot with $(basename "$MT_CHROMIUM")"
# (a few seconds of virtual time: the page polls, draws, and its nodes settle)
mt_screenshot "$url" "$out" "$win_w" "$win_h" "$logs"
