#!/usr/bin/env bash
# Classroom walkthrough: a small swarm, one protocol step at a time, each
# explained in plain words and then shown with the processes' --trace lines.
# See --help.
set -euo pipefail

MT_PROG=walkthrough.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/walkthrough.sh [OPTIONS]

Runs a small swarm (a tracker, a seeder, leechers A and B) on this machine,
one step at a time: what the step is, then the messages that really went over
the wire, taken from the --trace output of each process. Press Enter for the
next step. Every process is stopped at the end, on failure and on Ctrl-C.

Steps: tracker start; seeder REGISTER; SEARCH; REQUEST/PEERS; TCP handshake
and bitfield; INTERESTED/UNCHOKE; REQUEST/PIECE; SHA-1 check; HAVE; the
leecher seeds (REGISTER complete); HEARTBEAT; EXIT; a peer killed with
kill -9 dropped after the tracker's timeout.

Options:
  --auto               run straight through without waiting for Enter, and
                       fail (exit 1, naming the step) if a step's messages do
                       not show up: CI runs this
  --size SIZE          size of the shared file [default: 2M]
  --peer-timeout SECS  the tracker forgets a silent peer after SECS (and asks
                       for a HEARTBEAT every SECS/3) [default: 6; real: 30]
  --keep               keep the temp dir with the logs at the end
  -h, --help           show this help

Environment:
  MINITORRENT_BIN_DIR   use the binaries in this directory instead of building
EOF
}

auto=0
size_arg=2M
peer_timeout=6
keep=0
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --auto) auto=1; shift ;;
    --size) need "$@"; size_arg=$2; shift 2 ;;
    --size=*) size_arg=${1#*=}; shift ;;
    --peer-timeout) need "$@"; peer_timeout=$2; shift 2 ;;
    --peer-timeout=*) peer_timeout=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_err "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
done
size=$(mt_parse_size "$size_arg") || mt_die "--size $size_arg: not a size like 1M or 512K"
((size >= 65536)) || mt_die "--size must be at least 64K (one piece)"
if [[ ! $peer_timeout =~ ^[0-9]+$ ]] || ((peer_timeout < 3 || peer_timeout > 120)); then
    mt_die "--peer-timeout $peer_timeout: give seconds from 3 to 120"
fi
if ((!auto)) && [[ ! -t 0 ]]; then
    mt_warn "stdin is not a terminal: running straight through (as with --auto)"
    auto=1
fi

work=''
ok=0
cleanup() {
    set +e
    trap - INT TERM
    mt_stop_all
    [[ -n $work && -d $work ]] || return
    if ((keep || !ok)); then
        echo "Logs kept in $work/logs"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'echo; mt_info "Interrupted: stopping every process"; exit 130' INT TERM

# ------------------------------------------------------------ presentation

step_no=0
steps_checked=0

# step TITLE: a numbered heading; the explanation follows on stdin.
step() {
    step_no=$((step_no + 1))
    step_title=$1
    local bar='' i
    for ((i = ${#1}; i < 56; i++)); do bar+='━'; done
    printf '\n%s━━ Step %d: %s %s%s\n' "$MT_B" "$step_no" "$1" "$bar" "$MT_N"
    sed 's/^./  &/'
}

pause() {
    ((auto)) && return 0
    local ans
    printf '%s  [Enter: %s, q: quit]%s ' "$MT_DIM" "${1:-show it}" "$MT_N"
    read -r ans || ans=q
    if [[ $ans == q* ]]; then
        mt_info "Stopping here"
        ok=1
        exit 0
    fi
}

# A missing message: in --auto mode the walkthrough no longer matches the
# code, which is a failure; in class we say so and carry on.
missing() {
    if ((auto)); then
        mt_die "step $step_no ($step_title): $*"
    fi
    mt_warn "step $step_no ($step_title): $*"
}

# expect FILE ERE SECS WHAT: waits for a line of FILE matching ERE.
expect() {
    if mt_wait_for "$1" "$2" "$3"; then
        return 0
    fi
    missing "no $4 within $3 s (looked for /$2/ in $1)"
    return 1
}

checked() {
    steps_checked=$((steps_checked + 1))
    printf '  %s✓ %s%s\n' "$MT_GRN" "$*" "$MT_N"
}

# show FILE ERE N LABEL: the first N lines of FILE matching ERE, then how
# many more there are. (One awk reads it all: `grep | head` would die of
# SIGPIPE on a long trace, which pipefail turns into a failure.)
show() {
    printf '  %s%s%s\n' "$MT_DIM" "$4" "$MT_N"
    [[ -f $1 ]] || {
        printf '    (none)\n'
        return 0
    }
    RE=$2 N=$3 DIM=$MT_DIM OFF=$MT_N awk '
        $0 ~ ENVIRON["RE"] {
            c++
            if (c <= ENVIRON["N"] + 0) print "    " substr($0, 1, 170)
        }
        END {
            if (c == 0) print "    (none)"
            else if (c > ENVIRON["N"] + 0)
                printf "    %s… and %d more%s\n", ENVIRON["DIM"], c - ENVIRON["N"], ENVIRON["OFF"]
        }' "$1"
}

# An address as an ERE (the dots are literal).
re_addr() { printf '%s' "$1" | sed 's/\./\\./g'; }

# `minitorrent search` output for NAME: "seeders S  leechers L" → S and L.
swarm_counts() {
    local out
    out=$("$MT_PEER_BIN" --tracker "$tracker" search "$file_name" 2>/dev/null || true)
    grep -F -- " $file_name " <<<"$out" |
        sed -n 's/.*seeders \([0-9]*\) *leechers \([0-9]*\).*/\1 \2/p' | sed -n 1p
}

# wait_seeders N SECS: polls the tracker until it lists N seeders.
wait_seeders() {
    local want=$1 tries=$(($2 * 4)) c
    while :; do
        c=$(swarm_counts)
        [[ ${c%% *} == "$want" ]] && return 0
        tries=$((tries - 1))
        ((tries > 0)) || return 1
        sleep 0.25
    done
}

# --------------------------------------------------------------------- setup

cat <<EOF
${MT_B}minitorrent walkthrough${MT_N}: a tracker, a seeder and two leechers (A and B) on this
machine. Every process runs with --trace, which prints each message it sends
or receives, one line each: time, who → whom, the message decoded.
EOF
mt_build

work=$(mktemp -d "${TMPDIR:-/tmp}/minitorrent-walkthrough.XXXXXX")
logs=$work/logs
mkdir -p "$logs" "$work/seeder" "$work/A" "$work/B"
file_name=slides.bin
piece_len=65536
pieces=$(((size + piece_len - 1) / piece_len))
mt_random_file "$work/seeder/$file_name" "$size"

# --------------------------------------------------------------------- steps

step "the tracker starts" <<EOF
The tracker is a directory, not a file server: it only knows which peer (IP
address + TCP port) shares which file. Peers talk to it with small JSON
datagrams over UDP. Here it listens on a free port of 127.0.0.1, forgets a
peer after ${peer_timeout} s of silence (the real default is 30 s) and runs with --trace.
EOF
pause "start the tracker"
printf '  $ minitorrent-tracker --bind 127.0.0.1:0 --peer-timeout %s --trace\n' "$peer_timeout"
mt_start_tracker "$logs" --peer-timeout "$peer_timeout" --trace
tracker=$MT_TRACKER_ADDR
ttrace=$logs/tracker.log
sed 's/^/    /' "$logs/tracker.out"
checked "tracker listening on $tracker (UDP)"
if [[ -n ${MT_TRACKER_WEB:-} ]]; then
    mt_note "Its web page, $MT_TRACKER_WEB, lists the swarms; each swarm's live view"
    mt_note "(peers, who sends to whom, pieces held) shows this walkthrough as it happens."
fi

step "the seeder describes the file and REGISTERs it" <<EOF
The seeder first makes a .torrent: the file is cut into pieces of $((piece_len / 1024)) KiB and
the SHA-1 of every piece is written down. Its info hash (the SHA-1 of that
description) names the file everywhere. Then the seeder listens on a TCP port
and sends REGISTER to the tracker: "I have slides.bin, complete, on port P".
The tracker answers OK with the heartbeat interval and the timeout.
EOF
pause "make the .torrent and start the seeder"
printf '  $ minitorrent create %s --piece-length %s -o %s.torrent\n' "$file_name" "$piece_len" "$file_name"
"$MT_PEER_BIN" --tracker "$tracker" create "$work/seeder/$file_name" \
    --piece-length "$piece_len" -o "$work/$file_name.torrent" | sed 's/^/    /'
printf '  $ minitorrent seed %s.torrent --max-upload-rate 512k --trace\n' "$file_name"
mt_start_peer seeder "$logs/seeder.out" "$logs/seeder.log" --trace --bind 127.0.0.1 --port 0 \
    --tracker "$tracker" --dir "$work/seeder" --max-upload-rate 512k seed "$work/$file_name.torrent"
seeder=$MT_PEER_ADDR
seeder_pid=$MT_PID
mt_note "(the upload limit keeps the transfer slow enough for the leechers to share pieces)"
if expect "$ttrace" '← .*REGISTER' 10 "REGISTER at the tracker"; then
    expect "$ttrace" '→ .*OK' 5 "OK reply to REGISTER" || true
    show "$ttrace" '(← .*REGISTER|→ .*OK)' 2 "tracker trace (← received, → sent):"
    checked "seeder $seeder registered"
fi

step "a leecher SEARCHes the tracker" <<EOF
A student wants the slides but does not know the exact name. The peer sends
SEARCH with a part of the name; the tracker replies FILES: every file whose
name contains it, with its size and how many seeders and leechers it has.
A FILES more than 3 times the size of the SEARCH goes only to an address
that proved it receives the tracker's replies: the tracker first answers
ERROR token, with a token, and the peer sends the SEARCH again with it
(so a forged source address can never be flooded with FILES).
EOF
pause "search for 'slid'"
printf '  $ minitorrent search slid\n'
"$MT_PEER_BIN" --tracker "$tracker" search slid 2>/dev/null | sed 's/^/    /' || true
if expect "$ttrace" '← .*SEARCH' 5 "SEARCH at the tracker" &&
    expect "$ttrace" '→ .*FILES' 5 "FILES reply"; then
    show "$ttrace" '(← .*SEARCH|→ .*(FILES|ERROR token))' 4 "tracker trace:"
    checked "SEARCH answered with FILES"
fi

step "leechers A and B REQUEST peers" <<EOF
Leecher A runs "get slides.bin". It sends REQUEST with the name; the tracker
replies PEERS: the file's info hash and size, and the address of every peer
sharing it. A then REGISTERs itself too (as "downloading"), so that others
can find it. Leecher B starts just after: its PEERS list names the seeder and A.
(A also asks once more by info hash, the file's real name, as it starts.)

One peer, several port numbers: "port=P" in a REGISTER is the TCP port the
peer listens on for other peers, the address the tracker hands out. The
datagrams themselves come from UDP ports the operating system picked: one
for the socket that sends REGISTER and HEARTBEAT, another for each lookup.
EOF
pause "start leechers A and B"
start_leecher() {
    local n=$1
    printf '  $ minitorrent get %s --trace   # leecher %s\n' "$file_name" "$n"
    mt_start_peer "leecher $n" "$logs/$n.out" "$logs/$n.log" --trace --bind 127.0.0.1 \
        --port 0 --tracker "$tracker" --dir "$work/$n" --stats "$logs/$n.stats.json" \
        get "$file_name"
}
start_leecher A
a_addr=$MT_PEER_ADDR
a_pid=$MT_PID
a_trace=$logs/A.log
# B should find A in its PEERS reply: wait until A's REGISTER reached the tracker.
mt_wait_for "$ttrace" "← .*REGISTER.*port=${a_addr##*:}( |$)" 10 || true
start_leecher B
b_addr=$MT_PEER_ADDR
b_pid=$MT_PID
mt_note "seeder = $seeder   A = $a_addr   B = $b_addr   (peers' TCP listening addresses)"
if expect "$ttrace" '← .*REQUEST' 10 "REQUEST at the tracker" &&
    expect "$ttrace" "→ .*PEERS.*$(re_addr "$seeder")" 10 "PEERS reply listing the seeder"; then
    show "$ttrace" '(← .*REQUEST|→ .*PEERS)' 2 "tracker trace (leecher A):"
    checked "PEERS lists the seeder $seeder"
fi
if expect "$ttrace" "→ .*PEERS.*$(re_addr "$a_addr")" 10 "PEERS reply listing leecher A (for B)"; then
    show "$ttrace" "→ .*PEERS.*$(re_addr "$a_addr")" 1 "tracker trace (leecher B):"
    checked "B's PEERS also lists leecher A $a_addr"
fi
# A's UDP ports, as its own trace shows them: "tracker LOCAL → TRACKER".
a_udp=$(sed -n "s/^[0-9:.]* tracker [^ ]*:\([0-9]*\) → $(re_addr "$tracker") .*/\1/p" "$a_trace" |
    awk '!seen[$0]++' | tr '\n' ' ')
if [[ -n $a_udp ]]; then
    mt_note "A listens on TCP port ${a_addr##*:}; its datagrams to the tracker came from UDP ports ${a_udp% }"
fi

s_re=$(re_addr "$seeder")
step "TCP connection, handshake, and the pieces the seeder shows" <<EOF
A opens a TCP connection to the seeder's port. Both send a HANDSHAKE: the
protocol name, the info hash (so both talk about the same file) and their
peer id. Extension handshakes follow (A only knows the info hash, so it
fetches the file's description, the "metadata", with EXTENDED messages).
A seeder that has just started does not send its BITFIELD (one bit per
piece, all set), nor HAVE ALL (its one-byte form in the fast extension,
BEP 6, which both peers speak here): it says HAVE NONE, as it is in
"initial seeding" (BEP 16). It shows each leecher
a few pieces with HAVE (piece number), different ones to each, and the next
ones when the leecher says HAVE for them. So its upload, the scarce link,
sends every piece once, and the leechers swap the rest among themselves.
(A leecher that is the only one connected is shown up to 64 pieces at once:
here A is first, and this small file has $pieces.) Once every piece has
reached a leecher, the seeder shows everyone everything.

Ports again: A's end of the connection is not its listening port. Whoever
opens a TCP connection gets a temporary ("ephemeral") port for it from the
operating system; only the side that accepts uses its listening port. So A
shows up here with a port of its own, and tells the seeder where it listens
in its extension handshake ("p=${a_addr##*:}").
EOF
pause
if expect "$a_trace" "$s_re.*HANDSHAKE" 10 "HANDSHAKE from the seeder in A's trace" &&
    expect "$a_trace" "$s_re.*(BITFIELD|HAVE)" 10 "HAVE (or BITFIELD) from the seeder in A's trace"; then
    show "$a_trace" "$s_re.*(HANDSHAKE|BITFIELD|EXTENDED|METADATA|HAVE)" 8 "leecher A's trace, connection with the seeder:"
    # "HH:MM:SS.mmm peer A_END → SEEDER  HANDSHAKE ...": A's end of it.
    a_end=$(sed -n "s/^[0-9:.]* peer \([^ ]*\) → $s_re  HANDSHAKE.*/\1/p" "$a_trace" | sed -n 1p)
    if [[ -n $a_end ]]; then
        mt_note "A's end of this connection is $a_end (ephemeral); A listens on $a_addr"
        if expect "$logs/seeder.log" "→ $(re_addr "$a_end")  (HAVE|BITFIELD)" 5 \
            "the pieces shown to A in the seeder's trace"; then
            show "$logs/seeder.log" "→ $(re_addr "$a_end")  (HAVE|BITFIELD)" 4 "the seeder's trace:"
        fi
    else
        missing "no HANDSHAKE from A to the seeder in A's trace"
    fi
    checked "handshakes exchanged, pieces shown"
fi

step "INTERESTED and UNCHOKE" <<EOF
A tells the seeder it is INTERESTED (the seeder has pieces A lacks). A peer
only answers requests from peers it has UNCHOKEd; the seeder unchokes A.
Until then A may not ask for anything.
EOF
pause
if expect "$a_trace" "→ $s_re +INTERESTED" 10 "INTERESTED from A to the seeder" &&
    expect "$a_trace" "$s_re → .*UNCHOKE" 10 "UNCHOKE from the seeder to A"; then
    show "$a_trace" "(→ $s_re +INTERESTED|$s_re → .*UNCHOKE)" 2 "leecher A's trace:"
    checked "A is interested and unchoked"
fi

step "REQUEST and PIECE" <<EOF
Now A asks for blocks of 16 KiB: REQUEST piece i, offset o, length 16384 -
several at once so the connection never idles. The seeder answers each with
a PIECE message carrying the data. A piece of $((piece_len / 1024)) KiB takes $((piece_len / 16384)) blocks.
EOF
pause
if expect "$a_trace" 'REQUEST piece' 10 "REQUEST in A's trace" &&
    expect "$a_trace" ' PIECE ' 10 "PIECE in A's trace"; then
    show "$a_trace" "→ $s_re +REQUEST piece" 3 "A → seeder:"
    show "$a_trace" "$s_re → .* PIECE " 3 "seeder → A:"
    checked "blocks requested and received"
fi

step "the SHA-1 check" <<EOF
When the last block of a piece arrives, A computes the SHA-1 of the piece and
compares it with the hash in the metadata. Only a piece that matches is kept
and counted; a bad one is thrown away and fetched again (from another peer if
this one keeps sending garbage: 3 strikes and it is dropped). --trace prints
one line per piece checked: "SHA-1 ok", or "SHA-1 MISMATCH" with the strike.
EOF
pause
if expect "$a_trace" 'piece [0-9]+ SHA-1 ok' 10 "a 'SHA-1 ok' line in A's trace"; then
    if expect "$logs/A.out" '^done: ' 60 "A's download to finish"; then
        show "$a_trace" 'piece [0-9]+ SHA-1 (ok|MISMATCH)' 3 "leecher A's trace:"
        grep '^done: ' "$logs/A.out" | sed 's/^/    /'
        # Endgame duplicates say "already had"; every other line is a new piece.
        verified=$(grep -E 'piece [0-9]+ SHA-1 ok' "$a_trace" | grep -vc 'already had' || true)
        if ((verified == pieces)); then
            checked "all $pieces pieces passed the SHA-1 check in A's trace"
        else
            missing "$verified 'SHA-1 ok' lines in A's trace for $pieces pieces"
        fi
        # The same check by hand, for piece 0.
        want=$("$MT_PEER_BIN" info --json "$work/$file_name.torrent" |
            awk '/"pieces": \[/ { getline; gsub(/[ ",]/, ""); print; exit }')
        got=$(head -c "$piece_len" "$work/A/$file_name" | mt_sha1_stdin)
        printf '    SHA-1 of piece 0 in the .torrent:    %s\n' "$want"
        printf '    $ head -c %s A/%s | sha1sum:  %s\n' "$piece_len" "$file_name" "$got"
        if [[ -n $want && $want == "$got" ]]; then
            checked "piece 0 matches its hash when recomputed by hand"
        else
            missing "piece 0 of A's copy does not match the hash in the .torrent"
        fi
    fi
fi

step "HAVE: leechers share with each other" <<EOF
Each time A verifies a piece it sends HAVE (piece number) to every peer it
is connected to - B, and the seeder, which then shows A its next pieces. B
asks A for that piece instead of queueing at the slow seeder: the swarm
spreads the load.
EOF
pause
if expect "$a_trace" ' HAVE ' 10 "HAVE between the leechers"; then
    show "$a_trace" ' HAVE ' 4 "leecher A's trace:"
    # "HH:MM:SS.mmm peer FROM → TO  HAVE i": which end is A's listening port
    # tells who opened the connection.
    have_ends=$(grep -E ' HAVE ' "$a_trace" | sed -n 1p | awk '{ print $3, $5 }')
    case " $have_ends " in
    *" $a_addr "*) mt_note "B opened this connection: A's end is its listening port ${a_addr##*:}, B's end an ephemeral port" ;;
    ?*) mt_note "A opened this connection to B's listening port ${b_addr##*:}, from an ephemeral port of its own" ;;
    esac
    if [[ -s $logs/B.stats.json ]] || mt_wait_for "$logs/B.out" '^done: ' 60; then
        from_a=$(sed -n "s/.*\"$a_addr\": *\([0-9]*\).*/\1/p" "$logs/B.stats.json" 2>/dev/null || true)
        [[ -n $from_a ]] && mt_note "B got $(mt_human "$from_a") of $(mt_human "$size") from A"
    fi
    checked "pieces announced with HAVE"
fi

step "the leechers become seeders" <<EOF
A finished, so it REGISTERs again, this time as complete: it now seeds the
file (until you stop it), and the tracker counts it as a seeder. Nobody has
to do anything - every peer keeps sharing what it downloaded.
EOF
pause
mt_wait_for "$logs/B.out" '^done: ' 60 || true
if expect "$ttrace" "← .*REGISTER.*complete.*port=${a_addr##*:}( |$)" 10 \
    "REGISTER (complete) from A"; then
    show "$ttrace" '← .*REGISTER' 6 "tracker trace, every REGISTER so far:"
fi
if wait_seeders 3 10; then
    printf '  $ minitorrent search slid\n'
    "$MT_PEER_BIN" --tracker "$tracker" search slid 2>/dev/null | sed 's/^/    /' || true
    checked "the tracker lists 3 seeders: the seeder, A and B"
else
    missing "the tracker does not list 3 seeders (it says: $(swarm_counts))"
fi

interval=$((peer_timeout / 3 < 10 ? peer_timeout / 3 : 10))
((interval >= 1)) || interval=1
step "HEARTBEAT" <<EOF
The tracker cannot see a peer; it only hears from it. So every peer sends a
HEARTBEAT every ${interval} s (the interval the tracker gave in its OK; 10 s by
default), and the tracker answers OK. Each one resets the peer's timer.
EOF
pause "wait for heartbeats"
if expect "$ttrace" '← .*HEARTBEAT' $((interval * 3 + 5)) "HEARTBEAT at the tracker"; then
    # From the first heartbeat on: the heartbeats and the OKs answering them.
    awk '/← .*HEARTBEAT/ { on = 1 } on && /(← .*HEARTBEAT|→ .*OK)/' "$ttrace" >"$logs/heartbeats"
    show "$logs/heartbeats" . 4 "tracker trace:"
    checked "heartbeats answered"
fi

step "EXIT: a peer leaves politely" <<EOF
We stop leecher B the way Ctrl-C does. Before it quits it sends EXIT and
waits for the tracker's OK (briefly: two tries, 0.75 s in all, so that a
peer whose tracker is gone too still quits at once). The tracker forgets B
at once: nobody will be sent to B's address any more.
EOF
pause "stop leecher B"
printf '  $ kill -TERM %s   # like Ctrl-C\n' "$b_pid"
mt_stop "$b_pid"
if expect "$ttrace" '← .*EXIT' 10 "EXIT at the tracker"; then
    # The OK answering it goes back to the same address with the same tid.
    exit_line=$(grep -E '← .*EXIT' "$ttrace" | sed -n 1p)
    exit_from=$(awk '{ print $4 }' <<<"$exit_line")
    exit_tid=$(sed -n 's/.* tid=\([0-9]*\).*/\1/p' <<<"$exit_line")
    if expect "$ttrace" "→ $(re_addr "$exit_from") +OK .*tid=$exit_tid\$" 5 "the tracker's OK to EXIT"; then
        show "$ttrace" "(← .*EXIT|→ $(re_addr "$exit_from") +OK .*tid=$exit_tid\$)" 2 "tracker trace:"
        show "$logs/B.log" " tid=$exit_tid\$" 2 "leecher B's trace, its last messages:"
        checked "EXIT answered with OK"
    fi
    if wait_seeders 2 5; then
        checked "B left; the tracker lists 2 seeders"
    else
        missing "the tracker still lists $(swarm_counts) after B's EXIT"
    fi
fi

step "a peer crashes: kill -9" <<EOF
Now we kill leecher A with kill -9: it gets no chance to send EXIT (think of a
laptop lid closed or a cable pulled). The tracker still lists A until A has
been silent for ${peer_timeout} s (--peer-timeout; 30 s normally), then drops it.
EOF
pause "kill -9 leecher A"
printf '  $ kill -9 %s\n' "$a_pid"
{
    # (braces: bash's "Killed" job notice would only distract)
    kill -KILL "$a_pid" || true
    mt_wait_exit "$a_pid" 5 || true
} 2>/dev/null
killed_at=$(mt_now)
mt_note "right after the kill the tracker says: $(swarm_counts | sed 's/\(.*\) \(.*\)/seeders \1, leechers \2/')"
if wait_seeders 1 $((peer_timeout + 10)); then
    mt_note "$(mt_since "$killed_at") s later the tracker says: seeders 1 (only the original seeder)"
    show "$logs/tracker.log" 'expired|timed out' 2 "tracker log:"
    if (($(grep -Ec '← .*EXIT' "$ttrace" || true) > 1)); then
        missing "the tracker got a second EXIT, but A was killed without one"
    else
        checked "A dropped after the timeout, without any EXIT"
    fi
else
    missing "A was still listed $((peer_timeout + 10)) s after kill -9 (says: $(swarm_counts))"
fi

step "the end" <<EOF
That is the whole protocol: REGISTER, SEARCH, REQUEST, HEARTBEAT and EXIT
with the tracker over UDP; HANDSHAKE, HAVE or BITFIELD, INTERESTED, UNCHOKE,
REQUEST, PIECE and HAVE between peers over TCP; a SHA-1 for every piece.
docs/PROTOCOL.md has every message with its fields.
EOF
mt_stop "$seeder_pid"
mt_stop_all
ok=1
mt_ok "walkthrough finished: $steps_checked checks passed; every process stopped"
