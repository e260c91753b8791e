# shellcheck shell=bash
# Shared helpers for scripts/demo.sh, scripts/walkthrough.sh and scripts/lan.sh:
# messages, building the binaries, background processes that are always
# stopped, waiting for a log line with a deadline, sizes and checksums.
#
# Source it after `set -euo pipefail`. Written for bash 3.2 and later (the
# bash of macOS) with only POSIX tools, so the demo runs on a student's laptop.

# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034
MT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    MT_B=$'\033[1m' MT_DIM=$'\033[2m' MT_RED=$'\033[31m' MT_GRN=$'\033[32m'
    MT_YEL=$'\033[33m' MT_CYN=$'\033[36m' MT_N=$'\033[0m'
else
    MT_B='' MT_DIM='' MT_RED='' MT_GRN='' MT_YEL='' MT_CYN='' MT_N=''
fi

# The name in messages; scripts set it to their own.
MT_PROG=${MT_PROG:-$(basename "$0")}

mt_info() { printf '%s==>%s %s%s%s\n' "$MT_CYN" "$MT_N" "$MT_B" "$*" "$MT_N"; }
mt_note() { printf '    %s\n' "$*"; }
mt_ok() { printf '%sok%s  %s\n' "$MT_GRN" "$MT_N" "$*"; }
mt_warn() { printf '%s%s: warning:%s %s\n' "$MT_YEL" "$MT_PROG" "$MT_N" "$*" >&2; }
mt_err() { printf '%s%s: error:%s %s\n' "$MT_RED" "$MT_PROG" "$MT_N" "$*" >&2; }
mt_die() {
    mt_err "$*"
    exit 1
}

# ---------------------------------------------------------------- building

# Sets MT_TRACKER_BIN and MT_PEER_BIN. Builds release binaries with cargo,
# showing its progress, unless MINITORRENT_BIN_DIR names a directory that
# already holds both binaries (to try another build without rebuilding).
mt_build() {
    local dir
    if [[ -n ${MINITORRENT_BIN_DIR:-} ]]; then
        dir=$MINITORRENT_BIN_DIR
        mt_info "Using the binaries in $dir (MINITORRENT_BIN_DIR)"
    else
        command -v cargo >/dev/null 2>&1 ||
            mt_die "cargo not found: install the Rust toolchain from https://rustup.rs and open a new terminal"
        mt_info "Building the release binaries: cargo build --release"
        mt_note "(the first build downloads and compiles about 60 crates: about 2 minutes on 2 cores)"
        if ! (cd "$MT_ROOT" && cargo build --release); then
            mt_die "cargo build --release failed (see cargo's messages above)"
        fi
        dir=${CARGO_TARGET_DIR:-$MT_ROOT/target}
        [[ $dir == /* ]] || dir=$MT_ROOT/$dir
        dir=$dir/release
    fi
    MT_TRACKER_BIN=$dir/minitorrent-tracker
    MT_PEER_BIN=$dir/minitorrent
    [[ -x $MT_TRACKER_BIN ]] || mt_die "no tracker binary at $MT_TRACKER_BIN"
    [[ -x $MT_PEER_BIN ]] || mt_die "no peer binary at $MT_PEER_BIN"
}

# --------------------------------------------------------- sizes and data

# "64M", "4MiB", "1G", "512k", "1000" → bytes (K/M/G are powers of 1024).
mt_parse_size() {
    local s=$1 num unit mult
    if [[ ! $s =~ ^([0-9]+)[[:space:]]*([kKmMgG]?)(i?[bB])?$ ]]; then
        return 1
    fi
    num=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
    '') mult=1 ;;
    k | K) mult=1024 ;;
    m | M) mult=1048576 ;;
    g | G) mult=1073741824 ;;
    esac
    echo $((num * mult))
}

# Bytes → "64.0 MiB".
mt_human() {
    awk -v b="$1" 'BEGIN {
        split("B KiB MiB GiB TiB", u, " "); i = 1
        while (b >= 1024 && i < 5) { b /= 1024; i++ }
        if (i == 1) printf "%d B", b; else printf "%.1f %s", b, u[i]
    }'
}

# Writes N random bytes to FILE.
mt_random_file() {
    head -c "$2" /dev/urandom >"$1"
}

mt_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

mt_sha1_stdin() {
    if command -v sha1sum >/dev/null 2>&1; then
        sha1sum | cut -d' ' -f1
    else
        shasum -a 1 | cut -d' ' -f1
    fi
}

# Free space in KiB on the file system holding DIR.
mt_free_kib() {
    df -Pk "$1" | awk 'NR == 2 { print $4 }'
}

# ------------------------------------------------------ background processes

MT_PIDS=()
MT_PID_NAMES=()

# mt_spawn NAME OUT ERR CMD ARGS...: runs CMD in the background with stdout
# in OUT and stderr in ERR; remembers it so mt_stop_all stops it. Sets MT_PID.
mt_spawn() {
    local name=$1 out=$2 err=$3
    shift 3
    "$@" </dev/null >"$out" 2>"$err" &
    MT_PID=$!
    MT_PIDS+=("$MT_PID")
    MT_PID_NAMES+=("$name")
}

mt_alive() {
    kill -0 "$1" 2>/dev/null
}

# Waits up to SECS (default 5) for PID to exit; 0 if it did.
mt_wait_exit() {
    local pid=$1 tries=$((${2:-5} * 10))
    while mt_alive "$pid"; do
        tries=$((tries - 1))
        ((tries > 0)) || return 1
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
    return 0
}

# Stops PID like Ctrl-C does (SIGTERM: the binaries shut down cleanly and
# tell the tracker EXIT), then SIGKILL after SECS (default 5) seconds.
mt_stop() {
    local pid=$1
    mt_alive "$pid" || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    if ! mt_wait_exit "$pid" "${2:-5}"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

# Stops every process mt_spawn started: the peers first, all at once, so
# their EXIT still reaches the tracker, then the tracker. Each wave gets
# SIGTERM, and SIGKILL after 5 s; reports any that could not be stopped.
mt_stop_all() {
    local i pid peers=() trackers=()
    ((${#MT_PIDS[@]} > 0)) || return 0
    for i in "${!MT_PIDS[@]}"; do
        if [[ ${MT_PID_NAMES[$i]} == tracker ]]; then
            trackers+=("$i")
        else
            peers+=("$i")
        fi
    done
    if ((${#peers[@]} > 0)); then _mt_stop_wave "${peers[@]}"; fi
    if ((${#trackers[@]} > 0)); then _mt_stop_wave "${trackers[@]}"; fi
    MT_PIDS=()
    MT_PID_NAMES=()
}

# _mt_stop_wave INDEX...: stops the processes at these indexes of MT_PIDS.
_mt_stop_wave() {
    local i pid tries=50 left
    for i in "$@"; do
        kill -TERM "${MT_PIDS[$i]}" 2>/dev/null || true
    done
    while :; do
        left=0
        for i in "$@"; do
            if mt_alive "${MT_PIDS[$i]}"; then left=1; fi
        done
        ((left)) || break
        tries=$((tries - 1))
        ((tries > 0)) || break
        sleep 0.1
    done
    for i in "$@"; do
        pid=${MT_PIDS[$i]}
        if mt_alive "$pid"; then
            mt_warn "${MT_PID_NAMES[$i]} (pid $pid) ignored SIGTERM for 5 s: killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
        if mt_alive "$pid"; then
            mt_err "${MT_PID_NAMES[$i]} (pid $pid) is still running"
        fi
    done
}

# Seconds since the epoch, with decimals where the shell offers them.
mt_now() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        echo "${EPOCHREALTIME/,/.}"
    else
        date +%s
    fi
}

# Seconds from START (an mt_now value) to now, one decimal.
mt_since() {
    awk -v a="$1" -v b="$(mt_now)" 'BEGIN { printf "%.1f", b - a }'
}

# ----------------------------------------------------------------- waiting

# mt_wait_for FILE ERE SECS [PID]: polls FILE until a line matches ERE.
# Returns 0 when found, 1 on timeout, 2 when PID exited first.
mt_wait_for() {
    local file=$1 re=$2 tries=$(($3 * 10)) pid=${4:-}
    while :; do
        if [[ -f $file ]] && grep -Eq -- "$re" "$file"; then
            return 0
        fi
        if [[ -n $pid ]] && ! mt_alive "$pid"; then
            # One last look: it may have written the line and then exited.
            if [[ -f $file ]] && grep -Eq -- "$re" "$file"; then return 0; fi
            return 2
        fi
        tries=$((tries - 1))
        ((tries > 0)) || return 1
        sleep 0.1
    done
}

# mt_why RC SECS WHAT: mt_wait_for's failure in words.
mt_why() {
    if (($1 == 2)); then
        echo "it exited (its log is above)"
    else
        echo "no $3 within $2 s (its log is above)"
    fi
}

# Prints the last N (default 15) lines of each FILE, labelled.
mt_tail_logs() {
    local n=15 f
    if [[ $1 =~ ^[0-9]+$ ]]; then
        n=$1
        shift
    fi
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf '%s--- last %s lines of %s ---%s\n' "$MT_DIM" "$n" "$f" "$MT_N" >&2
        tail -n "$n" "$f" >&2
    done
}

# ------------------------------------------------------------ the binaries

# mt_start_tracker DIR [TRACKER FLAGS...]: starts a tracker on a free port of
# 127.0.0.1 (unless the flags include --bind), its catalogue in DIR/tracker.db
# (unless they include --db), its web page on a free port (unless they
# include --web); logs in DIR/tracker.out and DIR/tracker.log.
# Sets MT_TRACKER_PID, MT_TRACKER_ADDR (HOST:PORT) and MT_TRACKER_WEB (the
# web page's URL, empty with --web off).
mt_start_tracker() {
    local dir=$1 db=(--db "$1/tracker.db") a prev='' bind_ip=127.0.0.1
    local has_bind=0 has_web=0 web_off=0 bind=() web=()
    shift
    for a in "$@"; do
        case $prev in
            --bind) has_bind=1 bind_ip=${a%:*} ;;
            --web) has_web=1; if [[ $a == off ]]; then web_off=1; fi ;;
        esac
        if [[ $a == --db ]]; then db=(); fi
        prev=$a
    done
    ((has_bind)) || bind=(--bind 127.0.0.1:0)
    # The web page on a free port of the same IP: with a fixed --bind port
    # it would take port 8080, where two scripts at once collide.
    ((has_web)) || web=(--web "$bind_ip:0")
    mt_spawn tracker "$dir/tracker.out" "$dir/tracker.log" \
        "$MT_TRACKER_BIN" ${bind[@]+"${bind[@]}"} ${db[@]+"${db[@]}"} ${web[@]+"${web[@]}"} "$@"
    MT_TRACKER_PID=$MT_PID
    local rc=0
    mt_wait_for "$dir/tracker.out" 'listening on ' 10 "$MT_TRACKER_PID" || rc=$?
    if ((rc)); then
        mt_tail_logs "$dir/tracker.out" "$dir/tracker.log"
        mt_die "the tracker did not start: $(mt_why $rc 10 "a 'listening on' line")"
    fi
    MT_TRACKER_ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$dir/tracker.out" | sed -n 1p)
    [[ -n $MT_TRACKER_ADDR ]] || mt_die "cannot read the tracker's address from $dir/tracker.out"
    MT_TRACKER_WEB=
    if ((!web_off)); then
        # The web line follows the listening line at once.
        mt_wait_for "$dir/tracker.out" 'web page on ' 5 "$MT_TRACKER_PID" || true
        MT_TRACKER_WEB=$(sed -n 's/.*web page on \([^ ]*\).*/\1/p' "$dir/tracker.out" | sed -n 1p)
    fi
}

# mt_start_peer NAME OUT ERR PEER ARGS...: starts a peer and waits for its
# "listening on HOST:PORT" line. Sets MT_PID and MT_PEER_ADDR.
mt_start_peer() {
    local name=$1 out=$2 err=$3
    shift 3
    mt_spawn "$name" "$out" "$err" "$MT_PEER_BIN" "$@"
    local rc=0
    mt_wait_for "$out" '^listening on ' 10 "$MT_PID" || rc=$?
    if ((rc)); then
        mt_tail_logs "$out" "$err"
        mt_die "$name did not start: $(mt_why $rc 10 "a 'listening on' line")"
    fi
    # shellcheck disable=SC2034
    MT_PEER_ADDR=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$out" | sed -n 1p)
}

# mt_wait_listed NAME SECS: polls `minitorrent search NAME` until the tracker
# lists the file with at least one seeder (so a `get NAME` will find it).
mt_wait_listed() {
    local name=$1 tries=$(($2 * 5))
    local out
    while :; do
        out=$("$MT_PEER_BIN" --tracker "$MT_TRACKER_ADDR" search "$name" 2>/dev/null || true)
        # (no `grep -q` in a pipeline: it may exit before the writer, and
        # pipefail would turn that SIGPIPE into a failure)
        if [[ $(grep -F -- " $name " <<<"$out" || true) =~ seeders\ [1-9] ]]; then
            return 0
        fi
        tries=$((tries - 1))
        ((tries > 0)) || return 1
        sleep 0.2
    done
}

# mt_find_chromium: sets MT_CHROMIUM to $MINITORRENT_CHROMIUM or the first
# chromium on the PATH, or dies saying how to install one.
mt_find_chromium() {
    MT_CHROMIUM=${MINITORRENT_CHROMIUM:-}
    if [[ -z $MT_CHROMIUM ]]; then
        local c
        for c in chromium chromium-browser google-chrome google-chrome-stable; do
            if command -v "$c" >/dev/null 2>&1; then
                MT_CHROMIUM=$(command -v "$c")
                break
            fi
        done
    fi
    [[ -n $MT_CHROMIUM && -x $MT_CHROMIUM ]] ||
        mt_die "no chromium found: install it (Debian: sudo apt-get install chromium) or set MINITORRENT_CHROMIUM"
}

# mt_screenshot URL PNG WIDTH HEIGHT LOGDIR: loads URL in headless chromium
# (a fresh profile below LOGDIR), lets its scripts run 3 s of virtual time,
# and saves a WIDTHxHEIGHT screenshot to PNG; dies with chromium's messages
# when no picture came out.
mt_screenshot() {
    local url=$1 png=$2 w=$3 h=$4 logs=$5
    local profile
    profile=$(mktemp -d "$logs/chromium-profile.XXXXXX")
    rm -f "$png"
    local limit=()
    if command -v timeout >/dev/null 2>&1; then limit=(timeout 60); fi
    HOME=$profile ${limit[@]+"${limit[@]}"} "$MT_CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-dev-shm-usage --disable-quic --no-first-run --no-default-browser-check \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --disable-crash-reporter --mute-audio --hide-scrollbars \
        --user-data-dir="$profile" --window-size="$w,$h" --virtual-time-budget=3000 \
        --screenshot="$png" "$url" >"$logs/chromium.out" 2>"$logs/chromium.log" || true
    rm -rf "$profile"
    if [[ ! -s $png ]]; then
        mt_tail_logs "$logs/chromium.log"
        mt_die "chromium saved no screenshot at $png (its messages are above)"
    fi
    mt_ok "saved $png ($(mt_human "$(wc -c <"$png" | tr -d ' ')")) of $url"
}
