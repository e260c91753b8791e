#!/usr/bin/env bash
# Swarm benchmark on an emulated LAN (issue 11): one seeder and N leechers,
# each in its own network namespace on a bridge, every link shaped with tc;
# the time until every leecher has the file, against the theoretical minimum
# D_min, for minitorrent and for libtorrent. Run `scripts/bench-swarm.sh --help`.
# Needs root, iproute2 (ip, tc) and python3 (python3-libtorrent for libtorrent).
set -euo pipefail

MT_PROG=bench-swarm.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HELPER=$MT_ROOT/scripts/bench-swarm.py

usage() {
    cat <<'EOF'
Usage: scripts/bench-swarm.sh [OPTIONS]

Builds an emulated LAN: a bridge in the tracker's network namespace and one
namespace per peer joined to it by a veth pair. Each peer's link is shaped in
both directions with tc (htb; under it fq_codel, or where the kernel lacks it
a byte FIFO holding 50 ms): its upload on the veth end inside its namespace,
its download on the bridge end. Checks the shaping with a plain TCP transfer
(refuses to go on when it is more than 10% off), then runs the same swarm (1 seeder, N leechers released at
the same instant, leechers keep seeding) with minitorrent and with libtorrent,
K times each, verifies every copy with sha256 and prints, per run, the time
until the last leecher is done, each leecher's time, the ratio to D_min and the
bytes the seeder sent (its egress qdisc's counter) divided by the file size F.

  D_min = max( F/u_s , F/min(d_i) , N*F/(u_s + sum u_i) )   (Kurose & Ross)

Options:
  --leechers N         leechers (default 8)
  --size SIZE          file size: 32M, 256M, 1G, bytes (default 32M; M = MiB)
  --runs K             runs per client; the summary shows the median (default 3)
  --seed-up RATE       the seeder's upload (default 40mbit)
  --seed-down RATE     the seeder's download (default 40mbit)
  --up RATE            each leecher's upload (default 40mbit)
  --down RATE          each leecher's download (default 40mbit)
  --slow-leecher RATE  leecher 1 on a slow link: RATE both ways
  --clients LIST       minitorrent,libtorrent (default both), or just one
  --timeout SECS       give up on a run after SECS (default 20 * D_min + 30)
  --no-calibrate       go on even if the shaping is more than 10% off its rate
  --keep               keep the work directory (logs) after the run
  --timeline           also print, per half second of each run, the seeder's
                       upload and the leechers' download and upload in Mbit/s
                       on the wire (from the tc counters): where links sat idle
  -h, --help           this text

RATE is what tc takes: 40mbit, 100mbit, 1gbit, 500kbit (k, m, g = 10^3, 10^6,
10^9 bit/s). Rates are on the wire (Ethernet + IP + TCP headers count), so TCP
payload gets about 95.6% of them. Leecher times count from the common start
instant to the leecher's "done" line; the seeder's bytes come from tc, so
they are the same measure for both clients.

Environment: MINITORRENT_BIN_DIR=DIR uses the binaries in DIR instead of
`cargo build --release`; BENCH_DIR=DIR holds the data (default /dev/shm when it
has room, else $TMPDIR or /tmp).

Example: sudo MINITORRENT_BIN_DIR=target/release scripts/bench-swarm.sh --leechers 4 --runs 1
EOF
}

# ------------------------------------------------------------------ options

N=8 SIZE_ARG=32M RUNS=3 SEED_UP=40mbit SEED_DOWN=40mbit UP=40mbit DOWN=40mbit
SLOW='' CLIENTS=minitorrent,libtorrent TIMEOUT='' CALIBRATE=1 KEEP=0 TIMELINE=0
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --leechers) need "$@"; N=$2; shift 2 ;;
    --size) need "$@"; SIZE_ARG=$2; shift 2 ;;
    --runs) need "$@"; RUNS=$2; shift 2 ;;
    --seed-up) need "$@"; SEED_UP=$2; shift 2 ;;
    --seed-down) need "$@"; SEED_DOWN=$2; shift 2 ;;
    --up) need "$@"; UP=$2; shift 2 ;;
    --down) need "$@"; DOWN=$2; shift 2 ;;
    --slow-leecher) need "$@"; SLOW=$2; shift 2 ;;
    --clients) need "$@"; CLIENTS=$2; shift 2 ;;
    --timeout) need "$@"; TIMEOUT=$2; shift 2 ;;
    --no-calibrate) CALIBRATE=0; shift ;;
    --keep) KEEP=1; shift ;;
    --timeline) TIMELINE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_die "unknown option '$1' (see --help)" ;;
    esac
done

if [[ ! $N =~ ^[0-9]+$ ]] || ((N < 1 || N > 200)); then
    mt_die "--leechers must be 1 to 200, not '$N'"
fi
if [[ ! $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 1)); then
    mt_die "--runs must be a positive number, not '$RUNS'"
fi
[[ -z $TIMEOUT || $TIMEOUT =~ ^[0-9]+$ ]] || mt_die "--timeout must be whole seconds, not '$TIMEOUT'"
F=$(mt_parse_size "$SIZE_ARG") || mt_die "cannot read --size '$SIZE_ARG' (try 32M, 256M, 1G)"
((F > 0)) || mt_die "--size must be more than 0"

# RATE → bit/s, as tc reads it (SI prefixes).
rate_bps() {
    [[ $1 =~ ^([0-9]+(\.[0-9]+)?)([kKmMgG]?)bit$ ]] || return 1
    awk -v n="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[3]}" 'BEGIN {
        m = 1; if (u ~ /[kK]/) m = 1e3; if (u ~ /[mM]/) m = 1e6; if (u ~ /[gG]/) m = 1e9
        printf "%.0f", n * m }'
}
for r in SEED_UP SEED_DOWN UP DOWN SLOW; do
    [[ -z ${!r} ]] && continue
    rate_bps "${!r}" >/dev/null || mt_die "cannot read rate '${!r}': write it as tc does, e.g. 40mbit, 500kbit, 1gbit"
done
USE_MT=0 USE_LT=0
IFS=, read -r -a _cl <<<"$CLIENTS"
for c in "${_cl[@]}"; do
    case $c in
    minitorrent) USE_MT=1 ;;
    libtorrent) USE_LT=1 ;;
    *) mt_die "--clients takes minitorrent, libtorrent or both (comma-separated), not '$c'" ;;
    esac
done

# ------------------------------------------------------------ preconditions

((EUID == 0)) || mt_die "needs root (network namespaces and tc): run it with sudo"
for t in ip tc python3 sha256sum awk; do
    command -v "$t" >/dev/null 2>&1 || mt_die "'$t' not found: install iproute2 (ip, tc), python3 and coreutils"
done
ip netns list >/dev/null 2>&1 || mt_die "'ip netns' does not work here (no network namespaces?)"
# The helper's python: PYTHON, else python3, else /usr/bin/python3 when only
# that one has libtorrent (a pyenv or venv python3 does not see Debian's).
PY=${PYTHON:-python3}
if ((USE_LT)) && [[ -z ${PYTHON:-} ]] && ! "$PY" -c 'import libtorrent' 2>/dev/null &&
    [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import libtorrent' 2>/dev/null; then
    PY=/usr/bin/python3
fi
if ((USE_LT)) && ! "$PY" -c 'import libtorrent' 2>/dev/null; then
    if command -v apt-get >/dev/null 2>&1; then
        mt_info "Installing python3-libtorrent (apt-get install -y python3-libtorrent)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-libtorrent >/dev/null ||
            mt_die "apt-get install python3-libtorrent failed: install it, or run with --clients minitorrent"
        [[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
        "$PY" -c 'import libtorrent' 2>/dev/null ||
            mt_die "$PY still cannot import libtorrent: set PYTHON to a python3 that can"
    else
        mt_die "python3 cannot import libtorrent: install python3-libtorrent (or pip install libtorrent), or run with --clients minitorrent"
    fi
fi

mt_build

# ------------------------------------------------------------- namespaces

# Names carry this script's PID, so a run killed with SIGKILL leaves names
# the next run recognises as stale (their PID is gone) and removes.
NS_PREFIX=mtsb
TAG=$NS_PREFIX$$
NS_T=$TAG-t NS_S=$TAG-s
NET=10.$((($$ % 200) + 20)).0
TRACKER_IP=$NET.1 SEEDER_IP=$NET.2
ns_l() { echo "$TAG-l$1"; }
leecher_ip() { echo "$NET.$(($1 + 2))"; }
CREATED_NS=()

remove_stale() {
    local ns pid
    while read -r ns _; do
        [[ $ns =~ ^$NS_PREFIX([0-9]+)- ]] || continue
        pid=${BASH_REMATCH[1]}
        if ! kill -0 "$pid" 2>/dev/null; then
            ip netns delete "$ns" 2>/dev/null && mt_note "removed stale namespace $ns"
        fi
    done < <(ip netns list 2>/dev/null)
}

WORK=
cleanup() {
    local rc=$? ns
    trap - EXIT INT TERM
    mt_stop_all
    for ns in ${CREATED_NS[@]+"${CREATED_NS[@]}"}; do
        ip netns delete "$ns" 2>/dev/null || true
    done
    if [[ -n $WORK && -d $WORK ]]; then
        if ((KEEP)); then mt_note "logs kept in $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

nsx() { # nsx NS CMD...: CMD inside NS
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# shape NS DEV RATE: htb at RATE on DEV's egress, with a queue below it
# like a switch port's: fq_codel where the kernel has it, else a byte FIFO
# holding 50 ms at RATE (at least 128 KiB, a few GSO packets).
shape() {
    local limit
    tc -n "$1" qdisc replace dev "$2" root handle 1: htb default 10
    tc -n "$1" class add dev "$2" parent 1: classid 1:10 htb rate "$3" ceil "$3" quantum 1514
    if ! tc -n "$1" qdisc add dev "$2" parent 1:10 handle 10: fq_codel 2>/dev/null; then
        limit=$(awk -v r="$(rate_bps "$3")" 'BEGIN { l = r * 0.05 / 8; if (l < 131072) l = 131072; printf "%d", l }')
        tc -n "$1" qdisc add dev "$2" parent 1:10 handle 10: bfifo limit "$limit"
        LEAF="bfifo (no fq_codel in this kernel)"
    fi
}
LEAF=fq_codel

# add_peer NS VETH IP UP DOWN
add_peer() {
    local ns=$1 veth=$2 addr=$3 up=$4 down=$5
    ip netns add "$ns"
    CREATED_NS+=("$ns")
    ip -n "$NS_T" link add "$veth" type veth peer name eth0 netns "$ns"
    ip -n "$NS_T" link set "$veth" master br0
    ip -n "$NS_T" link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    shape "$ns" eth0 "$up"      # the peer's upload
    shape "$NS_T" "$veth" "$down" # the peer's download
}

build_lan() {
    local i up down
    ip netns add "$NS_T"
    CREATED_NS+=("$NS_T")
    ip -n "$NS_T" link set lo up
    ip -n "$NS_T" link add br0 type bridge
    ip -n "$NS_T" addr add "$TRACKER_IP/24" dev br0
    ip -n "$NS_T" link set br0 up
    add_peer "$NS_S" vs "$SEEDER_IP" "$SEED_UP" "$SEED_DOWN"
    for ((i = 1; i <= N; i++)); do
        up=$UP down=$DOWN
        if [[ -n $SLOW && $i == 1 ]]; then up=$SLOW down=$SLOW; fi
        add_peer "$(ns_l "$i")" "vl$i" "$(leecher_ip "$i")" "$up" "$down"
    done
}

# Bytes sent so far by the root qdisc on NS's DEV (default eth0: the peer's
# upload; the bridge end vl1 in the tracker's namespace: leecher 1's download).
egress_bytes() {
    tc -n "$1" -s qdisc show dev "${2:-eth0}" |
        awk '/^qdisc htb/ { h = 1; next } h && /Sent/ { print $2; exit }'
}

# sample_links AT: from the epoch time AT on, every 0.5 s, one line: the time
# since AT, the seeder's upload counter, then each leecher's download and
# upload counters.
sample_links() {
    local i line
    while :; do
        line=$(awk -v a="$1" -v n="$(mt_now)" 'BEGIN { printf "%.2f", n - a }')
        line+=" $(egress_bytes "$NS_S")"
        for ((i = 1; i <= N; i++)); do
            line+=" $(egress_bytes "$NS_T" "vl$i") $(egress_bytes "$(ns_l "$i")")"
        done
        echo "$line"
        sleep 0.5
    done
}

# print_timeline FILE: the samples as rates on the wire per interval, Mbit/s:
# the seeder's upload, the leechers' download (mean and lowest) and upload
# (mean and highest).
print_timeline() {
    awk -v n="$N" '
        BEGIN { printf "    %6s  %9s  %13s  %13s\n", "t (s)", "seeder up", "down mean/min", "up mean/max" }
        pt != "" && $1 > 0 && $1 > pt {
            dt = $1 - pt
            r = ($2 - p[2]) * 8 / dt / 1e6
            dsum = 0; dmin = 1e9; usum = 0; umax = 0
            for (i = 1; i <= n; i++) {
                d = ($(2 * i + 1) - p[2 * i + 1]) * 8 / dt / 1e6
                u = ($(2 * i + 2) - p[2 * i + 2]) * 8 / dt / 1e6
                dsum += d; usum += u
                if (d < dmin) dmin = d
                if (u > umax) umax = u
            }
            printf "    %6.2f  %9.1f  %6.1f %6.1f  %6.1f %6.1f\n", $1, r, dsum / n, dmin, usum / n, umax
        }
        { for (i = 2; i <= NF; i++) p[i] = $i; pt = $1 }' "$1"
}

# ----------------------------------------------------------------- the data

if [[ -z ${BENCH_DIR:-} ]]; then
    BENCH_DIR=${TMPDIR:-/tmp}
    if [[ -d /dev/shm ]] && (($(mt_free_kib /dev/shm) > (F / 1024) * (N + 3))); then
        BENCH_DIR=/dev/shm
    fi
fi
WORK=$(mktemp -d "$BENCH_DIR/mt-swarm.XXXXXX")

remove_stale
mt_info "Emulated LAN: seeder + $N leechers, namespaces $TAG-*, subnet $NET.0/24"
build_lan

SU=$(rate_bps "$SEED_UP") UU=$(rate_bps "$UP") DD=$(rate_bps "$DOWN")
SL=0
[[ -n $SLOW ]] && SL=$(rate_bps "$SLOW")
mt_note "seeder up $SEED_UP down $SEED_DOWN; leechers up $UP down $DOWN${SLOW:+; leecher 1 $SLOW both ways}; htb + $LEAF"

# ------------------------------------------------------------ calibration

# A plain TCP transfer, seeder → leecher 1, about 5 s long at the set rate.
calibrate() {
    local expect_bps exp_name bytes out b0 b1 total first last
    expect_bps=$SU exp_name="seeder up $SEED_UP"
    local l1down=$DD
    ((SL > 0)) && l1down=$SL
    if ((l1down < expect_bps)); then expect_bps=$l1down exp_name="leecher 1 down"; fi
    bytes=$((expect_bps * 5 / 8))
    nsx "$(ns_l 1)" "$PY" "$HELPER" recv 5001 60 >"$WORK/calib.out" 2>"$WORK/calib.err" &
    local rpid=$!
    sleep 0.3
    # Counted where the bytes enter leecher 1 (its download qdisc): at the
    # seeder's egress, packets dropped further on would count too.
    b0=$(egress_bytes "$NS_T" vl1)
    nsx "$NS_S" "$PY" "$HELPER" send "$(leecher_ip 1)" 5001 "$bytes" 2>"$WORK/calib-send.err" ||
        { cat "$WORK/calib-send.err" >&2; mt_die "the calibration transfer failed"; }
    wait "$rpid" || true
    b1=$(egress_bytes "$NS_T" vl1)
    read -r total first last <"$WORK/calib.out" || mt_die "the calibration receiver reported nothing"
    out=$(awk -v t="$total" -v a="$first" -v b="$last" -v w=$((b1 - b0)) -v e="$expect_bps" 'BEGIN {
        d = b - a; p = t * 8 / d; r = w * 8 / d
        printf "%.2f %.2f %.1f %.3f", p / 1e6, r / 1e6, (r / e - 1) * 100, d }')
    read -r CAL_PAYLOAD CAL_WIRE CAL_ERR CAL_SECS <<<"$out"
    mt_info "Calibration: TCP seeder → leecher 1, $(mt_human "$total") in ${CAL_SECS} s"
    mt_note "payload ${CAL_PAYLOAD} Mbit/s, on the wire ${CAL_WIRE} Mbit/s (leecher 1's download qdisc counter); set: $exp_name = $(awk -v e="$expect_bps" 'BEGIN { printf "%.2f", e / 1e6 }') Mbit/s; off by ${CAL_ERR}%"
    if awk -v e="$CAL_ERR" 'BEGIN { exit !(e + 0 > 10 || e + 0 < -10) }'; then
        if ((CALIBRATE)); then
            mt_die "the shaping is off by more than 10% (${CAL_ERR}%): the figures would not mean much (--no-calibrate goes on anyway)"
        fi
        mt_warn "the shaping is off by ${CAL_ERR}%; going on (--no-calibrate)"
    fi
}
calibrate

# -------------------------------------------------------------- the bound

# D_min = max(F/u_s, F/min d_i, N F / (u_s + sum u_i)), F in bits.
read -r DMIN DMIN_TEXT < <(awk -v F=$((F * 8)) -v n="$N" -v us="$SU" -v u="$UU" -v d="$DD" -v sl="$SL" 'BEGIN {
    dmin = d; sumu = n * u
    if (sl > 0) { if (sl < dmin) dmin = sl; sumu = (n - 1) * u + sl }
    a = F / us; b = F / dmin; c = n * F / (us + sumu)
    m = a; if (b > m) m = b; if (c > m) m = c
    printf "%.3f max(F/u_s = %.0f/%.0f = %.2f s, F/min(d_i) = %.0f/%.0f = %.2f s, N*F/(u_s+sum u_i) = %d*%.0f/%.0f = %.2f s) = %.2f s\n", \
        m, F, us, a, F, dmin, b, n, F, us + sumu, c, m }')
mt_info "D_min = $DMIN_TEXT"
mt_note "(F = $(mt_human "$F") = $((F * 8)) bits; rates in bit/s)"
[[ -n $TIMEOUT ]] || TIMEOUT=$(awk -v d="$DMIN" 'BEGIN { printf "%d", 20 * d + 30 }')

# ------------------------------------------------------------------ a run

mkdir -p "$WORK/seed"
mt_random_file "$WORK/seed/data.bin" "$F"
SUM=$(mt_sha256 "$WORK/seed/data.bin")
"$MT_PEER_BIN" create "$WORK/seed/data.bin" -o "$WORK/data.torrent" \
    --tracker "udp://$TRACKER_IP:6969/announce" --no-discover >"$WORK/create.out" 2>&1 ||
    { cat "$WORK/create.out" >&2; mt_die "minitorrent create failed"; }

# The peers never read the machine's or the user's configuration.
for v in $(env | sed -n 's/^\(MINITORRENT_[A-Z_]*\)=.*/\1/p'); do
    [[ $v == MINITORRENT_BIN_DIR ]] || unset "$v"
done
export MINITORRENT_SYSTEM_CONFIG='' MINITORRENT_USER_CONFIG=''

# one_run CLIENT K: prints one line; appends "time ratio seeder/F" to $WORK/CLIENT.res
one_run() {
    local client=$1 k=$2 dir=$WORK/run-$1-$2 i at b0 b1 t ok=1 times=() last=0
    mkdir -p "$dir"
    for ((i = 1; i <= N; i++)); do mkdir -p "$dir/l$i"; done
    mt_spawn tracker "$dir/tracker.out" "$dir/tracker.err" \
        ip netns exec "$NS_T" "$MT_TRACKER_BIN" --bind "$TRACKER_IP:6969" --web off --db none --no-discover
    local rc=0
    mt_wait_for "$dir/tracker.out" 'listening on ' 10 "$MT_PID" || rc=$?
    ((rc == 0)) || { mt_tail_logs "$dir/tracker.out" "$dir/tracker.err"; mt_die "the tracker did not start: $(mt_why $rc 10 "'listening on' line")"; }

    if [[ $client == minitorrent ]]; then
        mt_spawn seeder "$dir/seeder.out" "$dir/seeder.err" ip netns exec "$NS_S" \
            "$PY" "$HELPER" run 0 "$MT_PEER_BIN" seed "$WORK/data.torrent" --dir "$WORK/seed" \
            --tracker "$TRACKER_IP:6969" --no-discover
        rc=0
        mt_wait_for "$dir/seeder.out" ' seeding' 30 "$MT_PID" || rc=$?
    else
        mt_spawn seeder "$dir/seeder.out" "$dir/seeder.err" ip netns exec "$NS_S" \
            "$PY" "$HELPER" lt seed 0 "$WORK/data.torrent" "$WORK/seed"
        rc=0
        mt_wait_for "$dir/seeder.out" ' seeding$' 60 "$MT_PID" || rc=$?
    fi
    ((rc == 0)) || { mt_tail_logs "$dir/seeder.out" "$dir/seeder.err"; mt_die "the $client seeder did not start: $(mt_why $rc 30 "'seeding' line")"; }
    sleep 1 # its first announce reaches the tracker

    # The release: every leecher process is started now, and all of them
    # wait (already loaded) for the same instant AT, then begin.
    at=$(awk -v n="$(mt_now)" -v k="$N" 'BEGIN { printf "%.3f", n + 1.5 + k * 0.05 }')
    b0=$(egress_bytes "$NS_S")
    local sampler=""
    if ((TIMELINE)); then
        sample_links "$at" >"$dir/timeline" &
        sampler=$!
    fi
    for ((i = 1; i <= N; i++)); do
        if [[ $client == minitorrent ]]; then
            mt_spawn "leecher $i" "$dir/l$i.out" "$dir/l$i.err" ip netns exec "$(ns_l "$i")" \
                "$PY" "$HELPER" run "$at" "$MT_PEER_BIN" get "$WORK/data.torrent" --dir "$dir/l$i" \
                --tracker "$TRACKER_IP:6969" --no-discover
        else
            mt_spawn "leecher $i" "$dir/l$i.out" "$dir/l$i.err" ip netns exec "$(ns_l "$i")" \
                "$PY" "$HELPER" lt get "$at" "$WORK/data.torrent" "$dir/l$i"
        fi
    done
    # Wait for every leecher's "done" line (minitorrent: "done: ...").
    local deadline left
    deadline=$(awk -v a="$at" -v t="$TIMEOUT" 'BEGIN { printf "%d", a + t }')
    while :; do
        left=0
        for ((i = 1; i <= N; i++)); do
            grep -Eq '^[0-9.]+ done' "$dir/l$i.out" 2>/dev/null || left=$((left + 1))
        done
        ((left == 0)) && break
        if (($(date +%s) > deadline)); then ok=0; break; fi
        sleep 0.2
    done
    b1=$(egress_bytes "$NS_S")
    if [[ -n $sampler ]]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        print_timeline "$dir/timeline"
    fi
    mt_stop_all

    local line="" fails=0
    for ((i = 1; i <= N; i++)); do
        t=$(awk -v a="$at" '$2 ~ /^done/ { printf "%.2f", $1 - a; exit }' "$dir/l$i.out")
        if [[ -z $t ]]; then
            times+=("--")
            fails=$((fails + 1))
            continue
        fi
        times+=("$t")
        last=$(awk -v a="$last" -v b="$t" 'BEGIN { print (b > a) ? b : a }')
        if [[ $(mt_sha256 "$dir/l$i/data.bin" 2>/dev/null || echo none) != "$SUM" ]]; then
            mt_err "$client run $k: leecher $i's copy differs from the original (sha256)"
            fails=$((fails + 1))
        fi
    done
    if ((fails)); then
        mt_tail_logs 5 "$dir"/l*.err
        line=$(printf '%-11s run %d: FAILED (%d of %d leechers without a verified copy%s)' \
            "$client" "$k" "$fails" "$N" "$( ((ok)) || echo ", timeout ${TIMEOUT} s")")
        echo "$line"
        echo "FAIL" >>"$WORK/$client.res"
    else
        local ratio sent
        ratio=$(awk -v t="$last" -v d="$DMIN" 'BEGIN { printf "%.2f", t / d }')
        sent=$(awk -v b=$((b1 - b0)) -v f="$F" 'BEGIN { printf "%.2f", b / f }')
        printf '%-11s run %d: last done %6.2f s = %.2f x D_min, seeder sent %s F; leechers: %s\n' \
            "$client" "$k" "$last" "$ratio" "$sent" "${times[*]}"
        echo "$last $ratio $sent" >>"$WORK/$client.res"
    fi
    ((KEEP)) || rm -rf "$dir"/l*/
}

CLIST=()
((USE_MT)) && CLIST+=(minitorrent)
((USE_LT)) && CLIST+=(libtorrent)
mt_info "Runs: $RUNS per client, $(mt_human "$F"), all copies checked with sha256"
for ((k = 1; k <= RUNS; k++)); do
    for c in "${CLIST[@]}"; do one_run "$c" "$k"; done
done

# ---------------------------------------------------------------- summary

echo
mt_info "Summary: $N leechers, $(mt_human "$F"), seeder up $SEED_UP, leechers $UP up / $DOWN down${SLOW:+, leecher 1 at $SLOW}; D_min = $(printf '%.2f' "$DMIN") s; calibration ${CAL_WIRE} Mbit/s on the wire (${CAL_ERR}%)"
printf '%-11s  %5s  %12s  %15s  %10s  %13s\n' client runs "median time" "min-max" "time/D_min" "seeder sent/F"
for c in "${CLIST[@]}"; do
    grep -v FAIL "$WORK/$c.res" 2>/dev/null | sort -n | awk -v c="$c" -v k="$RUNS" '
        { t[NR] = $1; r[NR] = $2; s[NR] = $3 }
        END {
            if (NR == 0) { printf "%-11s  %2d/%-2d  %12s\n", c, 0, k, "all failed"; exit }
            m = int((NR + 1) / 2)
            # median of the times; its ratio and seeder bytes are the same run
            if (NR % 2 == 0) { mt = (t[m] + t[m + 1]) / 2; mr = (r[m] + r[m + 1]) / 2; ms = (s[m] + s[m + 1]) / 2 }
            else { mt = t[m]; mr = r[m]; ms = s[m] }
            printf "%-11s  %2d/%-2d  %10.2f s  %6.2f-%6.2f s  %9.2fx  %12.2fx\n", c, NR, k, mt, t[1], t[NR], mr, ms
        }'
done
