#!/usr/bin/env bash
# Takes the pictures of the peer's own web interface for docs/CLIENT.md
# (docs/img/peer-web.png and docs/img/peer-web-torrent.png): starts a
# tracker and two `minitorrent web` peers on this machine, shares files
# through the first one's page, starts a download on the second one (the
# seeder's upload limited, so it is under way when photographed), and
# photographs the second one's main page and the download's page with
# headless chromium. See --help.
set -euo pipefail

MT_PROG=screenshot-web.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/screenshot-web.sh [OPTIONS]

Builds the release binaries, starts a tracker and two peers with their web
interface (`minitorrent web`) on 127.0.0.1, uploads three files to the
first peer through its page's API, has the second peer download one of
them (the first peer's upload limited to 1 MB/s so the download is under
way) and pause another, then saves screenshots of the second peer's main
page and of the download's page. Every process it starts is stopped at the
end, also on failure and on Ctrl-C.

Options:
  --out-dir DIR     where to save the PNGs [default: docs/img]
  --window WxH      browser window size [default: 1400x900]
  -h, --help        show this help

Needs: chromium (Debian: apt-get install chromium) and curl.
Environment:
  MINITORRENT_BIN_DIR   use the binaries in this directory instead of building
  MINITORRENT_CHROMIUM  the browser binary [default: chromium on the PATH]
EOF
}

out_dir=$MT_ROOT/docs/img
window=1400x900
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --out-dir) need "$@"; out_dir=$2; shift 2 ;;
    --out-dir=*) out_dir=${1#*=}; shift ;;
    --window) need "$@"; window=$2; shift 2 ;;
    --window=*) window=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_err "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
done
[[ $window =~ ^([0-9]+)x([0-9]+)$ ]] || mt_die "--window $window: give WIDTHxHEIGHT, e.g. 1400x900"
win_w=${BASH_REMATCH[1]}
win_h=${BASH_REMATCH[2]}
mt_find_chromium
command -v curl >/dev/null 2>&1 || mt_die "curl not found: install it (Debian: sudo apt-get install curl)"
mkdir -p "$out_dir" || mt_die "cannot create $out_dir"

work=''
cleanup() {
    set +e
    trap - INT TERM
    mt_stop_all
    [[ -n $work && -d $work ]] && rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; mt_info "Interrupted: stopping every process"; exit 130' INT TERM

mt_build
work=$(mktemp -d "${TMPDIR:-/tmp}/minitorrent-webshot.XXXXXX")
logs=$work/logs
mkdir -p "$logs" "$work/a" "$work/b" "$work/files"

mt_info "Starting the tracker"
mt_start_tracker "$logs" --web off

# web_peer NAME DIR ARGS...: starts `minitorrent web` and sets PAGE to its URL.
web_peer() {
    local name=$1 dir=$2
    shift 2
    mt_start_peer "$name" "$logs/$name.out" "$logs/$name.log" --bind 127.0.0.1 --port 0 \
        --tracker "$MT_TRACKER_ADDR" --no-discover web --listen 127.0.0.1:0 --dir "$dir" "$@"
    local rc=0
    mt_wait_for "$logs/$name.out" '^web interface: ' 10 "$MT_PID" || rc=$?
    if ((rc)); then
        mt_tail_logs "$logs/$name.out" "$logs/$name.log"
        mt_die "$name printed no web interface line: $(mt_why $rc 10 "'web interface' line")"
    fi
    PAGE=$(sed -n 's/^web interface: \(http[^ ]*\).*/\1/p' "$logs/$name.out" | sed -n 1p)
    PAGE=${PAGE%/}
}

# api PAGE METHOD PATH [curl args...]: one call of a page's API, its answer on stdout.
api() {
    local page=$1 method=$2 path=$3
    shift 3
    curl -fsS --max-time 30 -X "$method" "$@" "$page$path"
}

command -v python3 >/dev/null 2>&1 || mt_die "python3 not found (it reads the pages' JSON here)"
# wait_state PAGE NAME STATE: waits up to 60 s for NAME's row to be in STATE.
wait_state() {
    local page=$1 name=$2 state=$3 tries=600 json
    while :; do
        json=$(api "$page" GET /api/torrents 2>/dev/null || echo '{}')
        if python3 -c '
import json, sys
rows = json.loads(sys.argv[1]).get("torrents", [])
sys.exit(0 if any(r["name"] == sys.argv[2] and r["state"] == sys.argv[3] for r in rows) else 1)
' "$json" "$name" "$state"; then
            return 0
        fi
        tries=$((tries - 1))
        ((tries > 0)) || mt_die "$name never reached '$state' at $page (logs in $logs)"
        sleep 0.1
    done
}

mt_info "Starting the first peer (upload limited to 1 MB/s) and sharing three files from its page"
web_peer peer-a "$work/a" --max-upload-rate 1M
page_a=$PAGE
mt_random_file "$work/files/lecture-07.mp4" $((48 * 1024 * 1024))
mt_random_file "$work/files/slides.pdf" $((3 * 1024 * 1024))
mt_random_file "$work/files/lab-3-captures.pcapng" $((6 * 1024 * 1024))
for f in lecture-07.mp4 slides.pdf lab-3-captures.pcapng; do
    api "$page_a" PUT "/api/upload?name=$f" --data-binary "@$work/files/$f" >/dev/null ||
        mt_die "uploading $f to $page_a failed"
done
for f in lecture-07.mp4 slides.pdf lab-3-captures.pcapng; do
    wait_state "$page_a" "$f" seeding
done
mt_note "shared through $page_a/"

mt_info "Starting the second peer: one download under way, one paused, one done"
web_peer peer-b "$work/b"
page_b=$PAGE
for f in slides.pdf lecture-07.mp4 lab-3-captures.pcapng; do
    api "$page_b" POST /api/add -H 'Content-Type: application/json' \
        --data "{\"source\": \"$f\"}" >/dev/null || mt_die "adding $f at $page_b failed"
    [[ $f == slides.pdf ]] && wait_state "$page_b" "$f" seeding
done
wait_state "$page_b" lab-3-captures.pcapng downloading
hash_of() {
    api "$page_b" GET /api/torrents | python3 -c '
import json, sys
print(next(r["info_hash"] for r in json.load(sys.stdin)["torrents"] if r["name"] == sys.argv[1]))
' "$1"
}
api "$page_b" POST "/api/torrents/$(hash_of lab-3-captures.pcapng)/pause" >/dev/null
movie=$(hash_of lecture-07.mp4)
mt_note "letting the download run 8 s"
sleep 8

mt_info "Taking the screenshots with $(basename "$MT_CHROMIUM")"
mt_screenshot "$page_b/" "$out_dir/peer-web.png" "$win_w" "$win_h" "$logs"
mt_screenshot "$page_b/torrent/$movie" "$out_dir/peer-web-torrent.png" "$win_w" "$win_h" "$logs"
