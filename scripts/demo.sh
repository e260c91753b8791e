#!/usr/bin/env bash
# The localhost demo: a tracker, one seeder and three leechers swap a file of
# random data, then every download is checked byte for byte. See --help.
set -euo pipefail

MT_PROG=demo.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [OPTIONS]

Runs a whole swarm on this machine: builds the release binaries, starts a
tracker, one seeder and N leechers (each peer in its own directory under a
temp dir), seeds a file of random data, shows the downloads progressing,
checks every download against the original with SHA-256 and prints who got
how many bytes from whom. Every process it starts is stopped at the end, also
on failure and on Ctrl-C. Exits 0 only if every download is correct.

Options:
  --size SIZE        size of the test file, e.g. 4M, 64M, 1G (K/M/G = KiB/MiB/GiB)
                     [default: 64M]
  --leechers N       number of leechers, 1 to 20 [default: 3]
  --seed-rate RATE   limit the seeder's upload, e.g. 5M (bytes/s; k, M, G); the
                     leechers then get most pieces from each other
  --timeout SECS     give up if the downloads take longer
                     [default: 60 + 1 s per 2 MiB]
  --trace            run every process with --trace (each message it sends or
                     receives, one line each, in its log), show the first
                     leecher's messages on screen as they happen (floods of
                     REQUEST, PIECE, HAVE and SHA-1 lines condensed to counts)
                     and keep the logs at the end
  --watch            for a class watching the tracker's live swarm page on a
                     projector: the seeder's upload is limited so the swarm
                     takes about a minute (unless --seed-rate is given), the
                     page's address is printed, and on a terminal the demo
                     waits for Enter before the leechers start and before the
                     swarm stops
  --keep             keep the temp dir (files and logs) at the end
  --workdir DIR      where to make the temp dir [default: $TMPDIR or /tmp]
  -h, --help         show this help

Environment:
  MINITORRENT_BIN_DIR   use the binaries in this directory instead of building
EOF
}

size_arg=64M
leechers=3
seed_rate=''
timeout=''
trace=()
keep=0
watch=0
workparent=${TMPDIR:-/tmp}

need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --size) need "$@"; size_arg=$2; shift 2 ;;
    --size=*) size_arg=${1#*=}; shift ;;
    --leechers) need "$@"; leechers=$2; shift 2 ;;
    --leechers=*) leechers=${1#*=}; shift ;;
    --seed-rate) need "$@"; seed_rate=$2; shift 2 ;;
    --seed-rate=*) seed_rate=${1#*=}; shift ;;
    --timeout) need "$@"; timeout=$2; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --trace) trace=(--trace); shift ;;
    --keep) keep=1; shift ;;
    --watch) watch=1; shift ;;
    --workdir) need "$@"; workparent=$2; shift 2 ;;
    --workdir=*) workparent=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_err "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
done

size=$(mt_parse_size "$size_arg") || mt_die "--size $size_arg: not a size like 4M, 64M or 1G"
((size > 0)) || mt_die "--size must be more than 0 bytes"
if [[ ! $leechers =~ ^[0-9]+$ ]] || ((leechers < 1 || leechers > 20)); then
    mt_die "--leechers $leechers: give a number from 1 to 20"
fi
if ((watch)) && [[ -z $seed_rate ]]; then
    # The seeder must send every piece at least once: at size/60 bytes a
    # second the swarm takes about a minute, whatever the leechers do.
    seed_rate=$((size / 60 > 65536 ? size / 60 : 65536))
fi
if [[ -z $timeout ]]; then
    timeout=$((60 + size / 2097152))
    if ((watch && timeout < 240)); then timeout=240; fi
fi
if [[ ! $timeout =~ ^[0-9]+$ ]] || ((timeout == 0)); then
    mt_die "--timeout $timeout: give seconds, e.g. 120"
fi
rate_flag=()
if [[ -n $seed_rate ]]; then rate_flag=(--max-upload-rate "$seed_rate"); fi
[[ -d $workparent ]] || mt_die "--workdir $workparent: not a directory"

# ------------------------------------------------------------------ cleanup

work=''
ok=0
cleanup() {
    set +e
    trap - INT TERM
    mt_stop_all
    [[ -n $work && -d $work ]] || return
    if ((keep)); then
        echo "Files and logs kept in $work"
    elif ((ok && ${#trace[@]} == 0)); then
        rm -rf "$work"
    else
        # The logs explain the failure; the data would only fill the disk.
        find "$work" -type f \( -name '*.bin' -o -name '*.part' \) -delete 2>/dev/null
        echo "Logs kept in $work/logs"
    fi
}
trap cleanup EXIT
trap 'echo; mt_info "Interrupted: stopping every process"; exit 130' INT TERM

# -------------------------------------------------------------------- setup

mt_build

work=$(mktemp -d "$workparent/minitorrent-demo.XXXXXX")
logs=$work/logs
mkdir -p "$logs" "$work/seeder"

free=$(mt_free_kib "$work" || echo 0)
need_kib=$(((leechers + 1) * (size / 1024 + 1) + 1024))
if [[ $free =~ ^[0-9]+$ ]] && ((free > 0 && free < need_kib)); then
    mt_die "$work has $(mt_human $((free * 1024))) free; the demo needs about $(mt_human $((need_kib * 1024))) (pick a smaller --size or another --workdir)"
fi

file_name="demo-$(printf '%s' "$size_arg" | tr -cd 'A-Za-z0-9').bin"
original=$work/seeder/$file_name
mt_info "Writing $(mt_human "$size") of random data to $file_name"
mt_random_file "$original" "$size"
want_sha=$(mt_sha256 "$original")
mt_note "sha256 $want_sha"

mt_info "Starting the tracker"
mt_start_tracker "$logs" ${trace[@]+"${trace[@]}"}
mt_note "tracker at $MT_TRACKER_ADDR (UDP); its web page: ${MT_TRACKER_WEB:-off}"

# Peer names and their listening addresses, for reading the stats files.
names=()
addrs=()
pids=()

common=(--bind 127.0.0.1 --port 0 --tracker "$MT_TRACKER_ADDR" ${trace[@]+"${trace[@]}"})

mt_info "Starting the seeder (it hashes the file first)"
mt_start_peer seeder "$logs/seeder.out" "$logs/seeder.log" \
    "${common[@]}" ${rate_flag[@]+"${rate_flag[@]}"} --dir "$work/seeder" seed "$original"
names+=(seeder)
addrs+=("$MT_PEER_ADDR")
pids+=("$MT_PID")
seed_deadline=$((30 + size / 10485760))
rc=0
mt_wait_for "$logs/seeder.out" '^seeding ' "$seed_deadline" "$MT_PID" || rc=$?
if ((rc)); then
    mt_tail_logs "$logs/seeder.out" "$logs/seeder.log" "$logs/tracker.log"
    mt_die "the seeder did not start seeding: $(mt_why $rc "$seed_deadline" "'seeding' line")"
fi
if ! mt_wait_listed "$file_name" 15; then
    mt_tail_logs "$logs/seeder.log" "$logs/tracker.log"
    mt_die "the tracker does not list $file_name 15 s after the seeder started"
fi
mt_note "seeder listening on $MT_PEER_ADDR${seed_rate:+, upload limited to $seed_rate/s}"
info_hash=$(sed -n 's/.* info hash \([0-9a-f]\{40\}\).*/\1/p' "$logs/seeder.out" | sed -n 1p)
if [[ -n ${MT_TRACKER_WEB:-} && -n $info_hash ]]; then
    mt_info "Watch the swarm live in a browser: ${MT_TRACKER_WEB}swarm/$info_hash"
    mt_note "(peers, who sends to whom, and how many peers hold each piece, refreshed every second)"
fi
if ((watch)) && [[ -t 0 ]]; then
    read -r -p "Open the page, then press Enter to start the leechers... " _ || true
fi

mt_info "Starting $leechers leechers: each asks the tracker for $file_name by name"
start_time=$(mt_now)
for ((i = 1; i <= leechers; i++)); do
    n=leecher$i
    mkdir -p "$work/$n"
    mt_start_peer "$n" "$logs/$n.out" "$logs/$n.log" \
        "${common[@]}" --dir "$work/$n" --stats "$logs/$n.stats.json" get "$file_name"
    names+=("$n")
    addrs+=("$MT_PEER_ADDR")
    pids+=("$MT_PID")
    mt_note "$n listening on $MT_PEER_ADDR"
done

# ------------------------------------------------------------- live trace

# --trace: leecher1's trace on screen while the demo runs. follow_trace
# prints the lines added to its log since the last call; listening addresses
# become names, and runs of REQUEST, PIECE, CANCEL, HAVE, "SHA-1 ok" and
# STATS (one a second to the tracker) lines one line of counts. The log itself keeps every line.
trace_file=''
trace_seen=0
trace_names=''
if ((${#trace[@]})); then
    trace_file=$logs/leecher1.log
    for ((i = 0; i <= leechers; i++)); do
        trace_names+="${addrs[$i]}=${names[$i]} "
    done
    mt_info "leecher1's trace, live (--trace; the whole of it is in $trace_file)"
    mt_note "Each line: time, peer or tracker message, sender → receiver, the message."
    mt_note "A peer's name stands for its listening address; other ports are those the"
    mt_note "system gave an outgoing TCP connection or a UDP socket (the tracker is"
    mt_note "$MT_TRACKER_ADDR). Runs of block messages are condensed to counts."
fi

follow_trace() {
    [[ -n $trace_file && -f $trace_file ]] || return 0
    local n
    n=$(wc -l <"$trace_file" | tr -d ' ')
    ((n > trace_seen)) || return 0
    sed -n "$((trace_seen + 1)),${n}p" "$trace_file" |
        NAMES=$trace_names DIM=$MT_DIM OFF=$MT_N awk '
        BEGIN {
            nn = split(ENVIRON["NAMES"], pairs, " ")
            nk = split("REQUEST,PIECE,CANCEL,SHA-1 ok,HAVE,STATS", kind, ",")
        }
        # Every ADDR (not followed by a digit) in s becomes its name.
        function named(s,    k, a, at, out, next_ch) {
            for (k = 1; k <= nn; k++) {
                split(pairs[k], a, "=")
                out = ""
                while ((at = index(s, a[1])) > 0) {
                    next_ch = substr(s, at + length(a[1]), 1)
                    if (next_ch ~ /[0-9]/) {
                        out = out substr(s, 1, at + length(a[1]) - 1)
                    } else {
                        out = out substr(s, 1, at - 1) a[2]
                    }
                    s = substr(s, at + length(a[1]))
                }
                s = out s
            }
            return s
        }
        function flush(    k, line) {
            if (!runs) return
            line = ""
            for (k = 1; k <= nk; k++) {
                if (count[kind[k]]) line = line (line == "" ? "" : ", ") count[kind[k]] " " kind[k]
                count[kind[k]] = 0
            }
            printf "    %s%s … %s  %s%s\n", ENVIRON["DIM"], first, last, line, ENVIRON["OFF"]
            runs = 0
        }
        # Lines that are not trace lines: only warnings and errors.
        !/^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\./ {
            if (/WARN|ERROR/) { flush(); print "    " $0 }
            next
        }
        {
            k = ""
            if (/  REQUEST piece /) k = "REQUEST"
            else if (/  PIECE [0-9]/) k = "PIECE"
            else if (/  CANCEL piece /) k = "CANCEL"
            else if (/  HAVE [0-9]/) k = "HAVE"
            else if (/ SHA-1 ok /) k = "SHA-1 ok"
            else if (/  STATS [0-9]+ files? /) k = "STATS"
            if (k != "") {
                if (!runs++) first = $1
                count[k]++
                last = $1
                next
            }
            flush()
            print "    " named($0)
        }
        END { flush() }'
    trace_seen=$n
}

# ----------------------------------------------------------------- progress

# One leecher's state: "done", "failed", "NN%" or "starting".
state_of() {
    local i=$1 n=${names[$1]} part kib
    if grep -q '^done: ' "$logs/$n.out" 2>/dev/null; then
        echo "done"
    elif ! mt_alive "${pids[$i]}"; then
        echo failed
    else
        part=$work/$n/$file_name.part
        if [[ -f $part ]]; then
            # The .part file is sparse: the blocks on disk are the pieces
            # written so far. Capped below 100% until the peer says done.
            kib=$(du -k "$part" | cut -f1)
            awk -v k="$kib" -v s="$size" 'BEGIN { p = k * 1024 * 100 / s; if (p > 99) p = 99; printf "%d%%\n", p }'
        else
            echo starting
        fi
    fi
}

bar() {
    local pct=$1 w=24 full
    full=$((pct * w / 100))
    printf '['
    printf '%*s' "$full" '' | tr ' ' '#'
    printf '%*s' $((w - full)) '' | tr ' ' '.'
    printf ']'
}

tty=0
# (the live trace would scroll the redrawn bars away: a line now and then instead)
if [[ -t 1 ]] && ((${#trace[@]} == 0)); then tty=1; fi
drawn=0
last_line=''
last_print=-10

show_progress() {
    local i s pct line=''
    if ((tty)); then
        if ((drawn)); then printf '\033[%dA' "$leechers"; fi
        for ((i = 1; i <= leechers; i++)); do
            s=$(state_of "$i")
            case $s in
            done) pct=100 ;;
            *%) pct=${s%\%} ;;
            *) pct=0 ;;
            esac
            printf '\033[2K    %-10s %s %s\n' "${names[$i]}" "$(bar "$pct")" "$s"
        done
        drawn=1
    else
        for ((i = 1; i <= leechers; i++)); do
            line+="  ${names[$i]} $(state_of "$i")"
        done
        if [[ $line != "$last_line" ]] && ((SECONDS - last_print >= 2)); then
            printf '    %5s s%s\n' "$(mt_since "$start_time")" "$line"
            last_line=$line
            last_print=$SECONDS
        fi
    fi
}

mt_info "Downloading (timeout ${timeout} s)"
deadline=$((SECONDS + timeout))
failed=''
polls=0
while :; do
    # The trace once a second: fewer, fuller lines of counts.
    if ((polls++ % 4 == 0)); then follow_trace; fi
    show_progress
    all_done=1
    for ((i = 1; i <= leechers; i++)); do
        case $(state_of "$i") in
        done) ;;
        failed) failed+=" ${names[$i]}" ;;
        *) all_done=0 ;;
        esac
    done
    if [[ -n $failed ]]; then
        ((tty)) || show_progress
        for ((i = 1; i <= leechers; i++)); do
            mt_tail_logs "$logs/${names[$i]}.out" "$logs/${names[$i]}.log"
        done
        mt_die "a leecher exited before finishing:$failed (logs above)"
    fi
    ((all_done)) && break
    if ((SECONDS >= deadline)); then
        waiting=''
        for ((i = 1; i <= leechers; i++)); do
            [[ $(state_of "$i") == "done" ]] || waiting+=" ${names[$i]}"
        done
        for ((i = 0; i <= leechers; i++)); do
            mt_tail_logs "$logs/${names[$i]}.out" "$logs/${names[$i]}.log"
        done
        mt_tail_logs "$logs/tracker.log"
        mt_die "timed out after $timeout s; still downloading:$waiting (the tail of each log is above; --timeout gives more time)"
    fi
    sleep 0.25
done
follow_trace
last_print=-10
show_progress
elapsed=$(mt_since "$start_time")
if [[ -n $trace_file ]]; then
    mt_note "(leecher1's trace resumes once every process is told to stop)"
fi

# ------------------------------------------------------------------- verify

mt_info "Checking every download against the original (SHA-256)"
bad=0
verdict=()
for ((i = 1; i <= leechers; i++)); do
    n=${names[$i]}
    got=$work/$n/$file_name
    if [[ ! -f $got ]]; then
        verdict[i]=MISSING
        bad=1
        mt_err "$n: $got does not exist"
    elif [[ $(mt_sha256 "$got") == "$want_sha" ]] && cmp -s "$original" "$got"; then
        verdict[i]=OK
    else
        verdict[i]=CORRUPT
        bad=1
        mt_err "$n: $got differs from the original"
    fi
done

# ------------------------------------------------------------------ summary

# A number from the stats JSON (one key per line, as the peer writes it).
json_num() {
    sed -n "s/^ *\"$2\": *\([0-9.eE+-]*\),\{0,1\} *$/\1/p" "$1" | sed -n 1p
}

# "ADDR BYTES" for each entry of bytes_from_peers.
from_peers() {
    awk '
        /"bytes_from_peers": *\{ *\}/ { exit }
        /"bytes_from_peers": *\{/ { inside = 1; next }
        inside && /\}/ { exit }
        inside && split($0, f, "\"") >= 3 {
            n = f[3]; gsub(/[^0-9]/, "", n); print f[2], n
        }' "$1"
}

# The demo name of the peer listening on ADDR (or ADDR if none is).
name_of() {
    local k port=${1##*:}
    for k in "${!addrs[@]}"; do
        if [[ ${addrs[$k]} == "$1" ]]; then
            echo "${names[$k]}"
            return
        fi
    done
    for k in "${!addrs[@]}"; do
        if [[ ${addrs[$k]##*:} == "$port" ]]; then
            echo "${names[$k]}"
            return
        fi
    done
    echo "$1"
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo
printf '%s%-10s %8s %8s %12s %13s  %-8s %s%s\n' "$MT_B" peer time MiB/s 'from seeder' 'from leechers' sha256 'leechers it got pieces from' "$MT_N"
total_from_leechers=0
for ((i = 1; i <= leechers; i++)); do
    n=${names[$i]}
    stats=$logs/$n.stats.json
    secs='?' rate='?' from_seed=0 from_others=0 detail=''
    if [[ -s $stats ]]; then
        secs=$(json_num "$stats" seconds)
        rate=$(json_num "$stats" mib_per_s)
        secs=$(awk -v s="$secs" 'BEGIN { printf "%.2f s", s }')
        rate=$(awk -v r="$rate" 'BEGIN { printf "%.1f", r }')
        while read -r who bytes; do
            [[ -n $who ]] || continue
            if [[ $who == seeder ]]; then
                from_seed=$((from_seed + bytes))
            else
                from_others=$((from_others + bytes))
                detail+="${detail:+, }$who $(mib "$bytes") MiB"
            fi
        done < <(from_peers "$stats" | while read -r addr bytes; do
            echo "$(name_of "$addr") $bytes"
        done | sort)
    fi
    total_from_leechers=$((total_from_leechers + from_others))
    case ${verdict[i]} in
    OK) v="${MT_GRN}OK${MT_N}      " ;;
    *) v="${MT_RED}${verdict[i]}${MT_N} " ;;
    esac
    printf '%-10s %8s %8s %8s MiB %9s MiB  %s %s\n' "$n" "$secs" "$rate" \
        "$(mib "$from_seed")" "$(mib "$from_others")" "$v" "${detail:--}"
done
echo
total=$((size * leechers))
echo "$leechers leechers downloaded $(mt_human "$total") in about $elapsed s;" \
    "$(awk -v a="$total_from_leechers" -v t="$total" 'BEGIN { printf "%.0f%%", t ? a * 100 / t : 0 }')" \
    "of it came from other leechers rather than the seeder."
if ((!bad)) && ((total_from_leechers == 0)) && ((leechers > 1)); then
    mt_note "(on localhost the seeder is fast enough to serve everyone; try --seed-rate 10M to see the leechers share pieces)"
fi

if ((watch)) && [[ -t 0 ]]; then
    read -r -p "Every leecher is now a seeder too: press Enter to stop the swarm... " _ || true
fi
mt_info "Stopping every process"
mt_stop_all
if [[ -n $trace_file ]]; then
    # What leecher1 did since: seeding to the others, then EXIT and its OK.
    mt_info "The rest of leecher1's trace"
    follow_trace
    echo
    mt_note "Every message of every process is in $logs:"
    mt_note "  tracker.log, seeder.log, leecher1.log (the trace above, in full) ... leecher$leechers.log"
    mt_note "  e.g.  grep -E 'BITFIELD|INTERESTED|UNCHOKE' $logs/leecher1.log"
fi
if ((bad)); then
    mt_die "some downloads are not identical to the original"
fi
ok=1
if ((leechers == 1)); then
    mt_ok "the download is identical to the original; every process stopped"
else
    mt_ok "all $leechers downloads are identical to the original; every process stopped"
fi
