#!/usr/bin/env bash
# minitorrent on a LAN: thin wrappers that start the tracker and the peers
# with LAN-friendly defaults, and a `check` that diagnoses why machines cannot
# reach each other. docs/LAN.md explains the setup. See --help.
# It runs the binaries of this checkout's target/release, else installed ones
# (the Debian package), and builds with cargo only when there are none.
set -euo pipefail

MT_PROG=lan.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRACKER_PORT=6969
DISCOVER_PORT=6968
PEER_PORT=6881

usage() {
    cat <<EOF
Usage: scripts/lan.sh COMMAND [ARGS] [OPTIONS]

Run minitorrent across the machines of a LAN (docs/LAN.md has the whole story).

On ONE machine:
  tracker                   run the tracker on UDP port $TRACKER_PORT of every interface,
                            and print the address the other machines must use

On every machine that shares or downloads (with the tracker's address, unless
minitorrent finds it by itself):
  seed PATH...              share files (or .torrent files); Ctrl-C stops
  share DIR                 share every file in DIR
  get NAME|TORRENT|MAGNET   download into ./downloads, then keep seeding it
  search [TEXT]             list the files the tracker knows
  menu                      the interactive menu (search, get, seed, list, ...);
                            downloads go to ./downloads

Diagnosis:
  check                     this machine's addresses, the address the tracker
                            will see, whether the tracker answers, the peer port
  firewall                  print the commands that open the ports here

Options:
  --tracker HOST:PORT   the tracker machine [default: \$MINITORRENT_TRACKER, else
                        minitorrent's config file or LAN discovery, where it has them]
  --port N              tracker: its UDP port [default: $TRACKER_PORT]
                        peers: the TCP port other peers connect to [default: $PEER_PORT]
  --dir DIR             get, menu: where downloads go [default: ./downloads]
  --no-seed             get: exit when the download is complete
  --trace               print every message sent and received
  --build               build with cargo (cargo build --release) even when
                        built or installed binaries exist
  -h, --help            show this help

Binaries, the first found: \$MINITORRENT_BIN_DIR, this checkout's target/release,
the installed ones (minitorrent on PATH, e.g. from the Debian package), and
only then a build with cargo. Each command says which binary it runs.

Environment:
  MINITORRENT_TRACKER   default for --tracker, e.g. export MINITORRENT_TRACKER=192.168.1.10:$TRACKER_PORT
  MINITORRENT_BIN_DIR   use the binaries in this directory

Examples:
  scripts/lan.sh tracker                                   # on 192.168.1.10
  scripts/lan.sh seed report.pdf --tracker 192.168.1.10    # on another machine
  scripts/lan.sh get report.pdf --tracker 192.168.1.10     # on a third one
EOF
}

# ----------------------------------------------------------------- arguments

[[ $# -gt 0 ]] || {
    usage
    exit 2
}
cmd=$1
shift
case $cmd in
-h | --help | help)
    usage
    exit 0
    ;;
tracker | seed | share | get | search | menu | check | firewall) ;;
*)
    mt_err "unknown command: $cmd"
    usage >&2
    exit 2
    ;;
esac

tracker=${MINITORRENT_TRACKER:-}
port=''
dir=downloads
trace=()
no_seed=()
build=0
args=()
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --tracker) need "$@"; tracker=$2; shift 2 ;;
    --tracker=*) tracker=${1#*=}; shift ;;
    --port) need "$@"; port=$2; shift 2 ;;
    --port=*) port=${1#*=}; shift ;;
    --dir) need "$@"; dir=$2; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --trace) trace=(--trace); shift ;;
    --no-seed) no_seed=(--no-seed); shift ;;
    --build) build=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; args+=("$@"); break ;;
    -*) mt_die "unknown option: $1 (see --help)" ;;
    *) args+=("$1"); shift ;;
    esac
done
if [[ -n $port ]] && { [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); }; then
    mt_die "--port $port: give a port number from 1 to 65535"
fi

# ------------------------------------------------------------------- helpers

# This machine's IPv4 addresses other than loopback, one a line.
lan_addresses() {
    if command -v ip >/dev/null 2>&1; then
        ip -4 -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'
    elif command -v ifconfig >/dev/null 2>&1; then
        ifconfig 2>/dev/null | awk '$1 == "inet" && $2 !~ /^127\./ { sub(/^addr:/, "", $2); print $2 }'
    fi
}

# HOST or HOST:PORT → HOST:PORT (the tracker's default port added).
tracker_addr() {
    local t=${1#udp://}
    t=${t%%/*}
    if [[ $t =~ :[0-9]+$ ]]; then echo "$t"; else echo "$t:$TRACKER_PORT"; fi
}

# Does BINARY's --help offer FLAG?
offers() {
    local help
    help=$("$1" --help 2>/dev/null || true)
    [[ $help == *"$2"* ]]
}

# Sets tracker_args (--tracker HOST:PORT, or nothing when the peer finds the
# tracker by itself). Call after find_binaries.
need_tracker() {
    tracker_args=()
    if [[ -z $tracker ]]; then
        if offers "$MT_PEER_BIN" --no-discover; then
            mt_note "No --tracker: minitorrent takes the one in its config file, or finds the"
            mt_note "tracker on this LAN by itself (discovery, UDP 6968)."
            return 0
        fi
        mt_err "which tracker? Give --tracker HOST:PORT (the address 'lan.sh tracker' printed"
        mt_err "on the tracker machine), or once: export MINITORRENT_TRACKER=HOST:PORT"
        exit 2
    fi
    tracker=$(tracker_addr "$tracker")
    tracker_args=(--tracker "$tracker")
    local host=${tracker%:*}
    if [[ $host == 127.* || $host == localhost || $host == '[::1]' ]]; then
        mt_warn "--tracker $tracker is this machine's loopback address. The tracker hands out"
        mt_warn "the address it sees a peer at, so other machines would be told to connect"
        mt_warn "to 127.0.0.1 - which is themselves. Use this machine's LAN address instead:"
        local a
        for a in $(lan_addresses); do mt_warn "    --tracker $a:${tracker##*:}"; done
    fi
}

# Something already listening on TCP (or UDP with -u) PORT here?
port_busy() {
    command -v ss >/dev/null 2>&1 || return 1
    local proto=-t
    if [[ ${2:-} == udp ]]; then proto=-u; fi
    [[ -n $(ss -H -l -n "$proto" "sport = :$1" 2>/dev/null) ]]
}

# find_binaries peer|tracker: sets MT_PEER_BIN (and MT_TRACKER_BIN for
# tracker). The first of: MINITORRENT_BIN_DIR, this checkout's build, the
# installed binaries; a cargo build only when none has the binary (or
# --build). Says which binary it runs, on stderr.
find_binaries() {
    local want=$1 name=minitorrent dir bin stale
    if [[ $want == tracker ]]; then name=minitorrent-tracker; fi
    dir=${CARGO_TARGET_DIR:-$MT_ROOT/target}
    [[ $dir == /* ]] || dir=$MT_ROOT/$dir
    dir=$dir/release
    if [[ -n ${MINITORRENT_BIN_DIR:-} ]] || ((build)); then
        mt_build >&2
    elif [[ -x $dir/$name ]]; then
        MT_PEER_BIN=$dir/minitorrent
        MT_TRACKER_BIN=$dir/minitorrent-tracker
        # A source file newer than the binary: it may be an old build.
        stale=$(find "$MT_ROOT/common" "$MT_ROOT/tracker" "$MT_ROOT/client" "$MT_ROOT/Cargo.toml" \
            -newer "$dir/$name" \( -name '*.rs' -o -name Cargo.toml \) 2>/dev/null | sed -n 1p || true)
        if [[ -n $stale ]]; then
            mt_warn "${stale#"$MT_ROOT"/} changed after $dir/$name was built: --build rebuilds it"
        fi
    elif command -v "$name" >/dev/null 2>&1; then
        MT_PEER_BIN=$(command -v minitorrent || echo minitorrent)
        MT_TRACKER_BIN=$(command -v minitorrent-tracker || echo minitorrent-tracker)
    elif command -v cargo >/dev/null 2>&1; then
        mt_build >&2
    else
        mt_die "no $name to run: install the minitorrent package (docs/LAN.md, '30 PCs in a lab'), or the Rust toolchain (https://rustup.rs) to build it here"
    fi
    if [[ $want == tracker ]]; then bin=$MT_TRACKER_BIN; else bin=$MT_PEER_BIN; fi
    [[ -x $bin ]] || mt_die "no $name at $bin"
    mt_note "Running $bin ($("$bin" --version 2>/dev/null || echo "version unknown"))" >&2
}

peer_port() {
    port=${port:-$PEER_PORT}
    if port_busy "$port"; then
        mt_die "TCP port $port is already in use on this machine (another peer?): pick another with --port, e.g. --port $((port + 1))"
    fi
}

# ------------------------------------------------------------------ commands

cmd_tracker() {
    port=${port:-$TRACKER_PORT}
    if port_busy "$port" udp; then
        mt_die "UDP port $port is already in use on this machine (a tracker already running? 'systemctl status minitorrent-tracker' shows the packaged service): pick another with --port"
    fi
    find_binaries tracker
    local addrs a
    addrs=$(lan_addresses)
    echo
    mt_info "Tracker on UDP port $port of every interface of this machine"
    if [[ -z $addrs ]]; then
        mt_warn "this machine has no LAN address (IPv4, not loopback): is it connected?"
    else
        mt_note "On the other machines use one of these (the one on the same network):"
        for a in $addrs; do mt_note "    --tracker $a:$port        e.g. scripts/lan.sh seed FILE --tracker $a:$port"; done
    fi
    if offers "$MT_TRACKER_BIN" --no-discover; then
        mt_note "or no --tracker at all: peers on this LAN find it by themselves (UDP 6968)."
    fi
    mt_note "Firewall: UDP port $port must accept incoming datagrams here (scripts/lan.sh firewall)."
    mt_note "Ctrl-C stops the tracker."
    echo
    exec "$MT_TRACKER_BIN" --bind "0.0.0.0:$port" ${trace[@]+"${trace[@]}"}
}

run_peer() {
    peer_port
    find_binaries peer
    need_tracker
    mt_info "Peer on TCP port $port (other peers connect here), tracker ${tracker:-from the config file or found on the LAN}"
    exec "$MT_PEER_BIN" --bind 0.0.0.0 --port "$port" ${tracker_args[@]+"${tracker_args[@]}"} \
        ${trace[@]+"${trace[@]}"} "$@"
}

cmd_seed() {
    ((${#args[@]} > 0)) || mt_die "seed what? e.g. scripts/lan.sh seed report.pdf --tracker HOST:PORT"
    local p
    for p in ${args[@]+"${args[@]}"}; do
        [[ -e $p ]] || mt_die "$p: no such file or directory"
    done
    run_peer seed ${args[@]+"${args[@]}"}
}

cmd_share() {
    ((${#args[@]} == 1)) || mt_die "share needs exactly one directory"
    [[ -d ${args[0]} ]] || mt_die "${args[0]}: not a directory"
    run_peer share "${args[0]}"
}

cmd_get() {
    ((${#args[@]} == 1)) || mt_die "get what? give one name, .torrent, magnet link or info hash"
    mkdir -p "$dir"
    run_peer --dir "$dir" get "${args[0]}" ${no_seed[@]+"${no_seed[@]}"}
}

cmd_menu() {
    ((${#args[@]} == 0)) || mt_die "menu takes no argument (its commands are typed at its prompt)"
    mkdir -p "$dir"
    run_peer --dir "$dir"
}

cmd_search() {
    find_binaries peer
    need_tracker
    exec "$MT_PEER_BIN" ${tracker_args[@]+"${tracker_args[@]}"} ${trace[@]+"${trace[@]}"} \
        search ${args[@]+"${args[@]}"}
}

cmd_firewall() {
    local tp=$TRACKER_PORT dp=$DISCOVER_PORT pp=${port:-$PEER_PORT}
    cat <<EOF
Ports minitorrent needs (incoming; replies to outgoing traffic pass on their own):
  the tracker machine:  UDP $tp   (--port of 'lan.sh tracker')
                        UDP $dp   (LAN discovery: peers started without --tracker find it)
                        TCP 8080   (the web page: search, magnet links, the live swarm view)
  every peer:           TCP $pp   (--port of 'lan.sh seed/get/share/menu'; one port per peer process)
                        UDP from source port $dp (the tracker's answer to discovery: it answers a
                        broadcast, so a stateful firewall does not take it for a reply)

Open them with the tool your machine uses (run these yourself; lan.sh changes nothing):
  ufw (Ubuntu):        sudo ufw allow $tp/udp    sudo ufw allow $dp/udp    sudo ufw allow $pp/tcp
                       sudo ufw allow proto udp from any port $dp
  firewalld (Fedora):  sudo firewall-cmd --add-port=$tp/udp --add-port=$dp/udp    sudo firewall-cmd --add-port=$pp/tcp
                       sudo firewall-cmd --add-source-port=$dp/udp
                       (add --permanent to keep it after a reboot)
  iptables:            sudo iptables -I INPUT -p udp -m multiport --dports $tp,$dp -j ACCEPT
                       sudo iptables -I INPUT -p tcp --dport $pp -j ACCEPT
                       sudo iptables -I INPUT -p udp --sport $dp -j ACCEPT
  nftables:            sudo nft add rule inet filter input udp dport { $tp, $dp } accept
                       sudo nft add rule inet filter input tcp dport $pp accept
                       sudo nft add rule inet filter input udp sport $dp accept
  macOS:               System Settings > Network > Firewall > Options: allow incoming
                       connections for minitorrent-tracker and minitorrent
  Windows:             New-NetFirewallRule -DisplayName minitorrent -Direction Inbound -Protocol TCP -LocalPort $pp -Action Allow
                       (and -Protocol UDP -LocalPort $tp,$dp on the tracker machine;
                       -Protocol UDP -RemotePort $dp on every peer)
EOF
    if [[ $(id -u 2>/dev/null || echo 1) == 0 ]] && command -v ufw >/dev/null 2>&1; then
        echo
        echo "ufw here says:"
        ufw status 2>/dev/null | sed 's/^/  /' || true
    fi
}

cmd_check() {
    local a addrs problems=0 host tport src out
    find_binaries peer
    echo
    mt_info "This machine"
    addrs=$(lan_addresses)
    if [[ -z $addrs ]]; then
        mt_warn "no LAN address (IPv4, not loopback): is the network connected?"
        problems=1
    fi
    for a in $addrs; do mt_note "address $a"; done

    local pp=${port:-$PEER_PORT}
    if port_busy "$pp"; then
        mt_note "TCP port $pp: a process listens on it (a peer is running here, good)"
    else
        mt_note "TCP port $pp: nothing listens yet (start a peer with lan.sh seed/get/share)"
    fi

    if [[ -z $tracker ]]; then
        echo
        if ! offers "$MT_PEER_BIN" --no-discover; then
            mt_note "No --tracker given (nor MINITORRENT_TRACKER): tracker checks skipped."
            return 0
        fi
        mt_info "A tracker without --tracker (config file, or discovery on this LAN)"
        if out=$("$MT_PEER_BIN" search "" 2>&1); then
            mt_ok "a tracker answers; it knows $(grep -c 'seeders' <<<"$out" || true) file(s):"
            grep 'seeders' <<<"$out" | sed 's/^/      /' || true
            return 0
        fi
        mt_err "no tracker found:"
        awk '{ print "      " $0 }' <<<"$out" >&2
        cat >&2 <<EOF
    Check: is the tracker running on the teacher's machine (systemctl status
    minitorrent-tracker there)? Are UDP 6968 (discovery) and 6969 open in its
    firewall? Or give its address: lan.sh check --tracker HOST
EOF
        return 1
    fi
    need_tracker
    host=${tracker%:*}
    tport=${tracker##*:}
    echo
    mt_info "The tracker $tracker"
    if command -v ip >/dev/null 2>&1 && [[ $host =~ ^[0-9.]+$ ]]; then
        src=$(ip route get "$host" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | sed -n 1p)
        if [[ -n $src ]]; then
            mt_note "this machine reaches it from $src: without NAT in between, that is the"
            mt_note "address the tracker sees and hands to other peers (with TCP port $pp)"
            if [[ $src == 127.* ]]; then
                mt_warn "the tracker is on this machine and reached over loopback: other machines"
                mt_warn "would be sent to 127.0.0.1. Use --tracker with this machine's LAN address."
                problems=1
            fi
        fi
    fi
    if out=$("$MT_PEER_BIN" --tracker "$tracker" search "" 2>&1); then
        mt_ok "the tracker answers; it knows $(grep -c 'seeders' <<<"$out" || true) file(s):"
        grep 'seeders' <<<"$out" | sed 's/^/      /' || true
    else
        problems=1
        mt_err "no answer from the tracker at $tracker:"
        awk '{ print "      " $0 }' <<<"$out" >&2
        cat >&2 <<EOF
    Check, in this order:
      - is 'lan.sh tracker' running on $host (and on port $tport)?
      - can this machine reach $host at all?   ping $host
      - is UDP port $tport open in the tracker machine's firewall?  (lan.sh firewall)
      - is $host the tracker machine's address on THIS network (see its 'lan.sh tracker' output)?
EOF
    fi
    echo
    if ((problems)); then
        mt_note "Some checks failed (above). docs/LAN.md lists more causes."
        return 1
    fi
    mt_note "If downloads still do not start: the seeder's TCP port must be reachable from"
    mt_note "the downloader (try: nc -vz SEEDER_IP $pp), and both must be on the same network"
    mt_note "without NAT in between (docs/LAN.md, 'Peers cannot reach each other')."
}

"cmd_$cmd"
