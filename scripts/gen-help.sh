#!/usr/bin/env bash
# Writes the --help output of both binaries and of each subcommand of the
# peer to docs/cli/*.txt, and with --man DIR man pages made of the same text.
# --check compares docs/cli with what the binaries print now. See --help.
set -euo pipefail

MT_PROG=gen-help.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/gen-help.sh [OPTIONS]

Runs `minitorrent --help`, `minitorrent COMMAND --help` for each subcommand
and `minitorrent-tracker --help`, and writes what they print to docs/cli/
(minitorrent.txt, minitorrent-get.txt, ..., minitorrent-tracker.txt). Run it
after changing a flag or a help text, and commit docs/cli with the change.

Options:
  --bin-dir DIR   take the binaries from DIR instead of building them
                  (cargo build --release) [default: $MINITORRENT_BIN_DIR]
  --out DIR       write the .txt files here [default: docs/cli]
  --man DIR       also write man pages minitorrent.1 and minitorrent-tracker.1
                  into DIR (scripts/package-deb.sh uses this)
  --check         write nothing: exit 1, with the difference, when docs/cli
                  does not match the binaries' --help
  -h, --help      show this help
EOF
}

bin_dir=${MINITORRENT_BIN_DIR:-}
out=$MT_ROOT/docs/cli
man_dir=''
check=0
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --bin-dir) need "$@"; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; shift ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --man) need "$@"; man_dir=$2; shift 2 ;;
    --man=*) man_dir=${1#*=}; shift ;;
    --check) check=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_die "unknown argument: $1 (see --help)" ;;
    esac
done

if [[ -n $bin_dir ]]; then
    MINITORRENT_BIN_DIR=$bin_dir mt_build >&2
else
    mt_build >&2
fi

# The help as a pipe or a file gets it: no colours, no terminal width.
help_of() {
    NO_COLOR=1 TERM=dumb LC_ALL=C "$@" --help </dev/null 2>&1 ||
        mt_die "'$(basename "$1")${2:+ $2} --help' failed (output above)"
}

# The subcommands `minitorrent --help` lists, `help` left out.
subcommands() {
    help_of "$MT_PEER_BIN" | awk '
        /^Commands:/ { on = 1; next }
        on && /^$/ { exit }
        on && /^  [a-z][a-z0-9-]*  / && $1 != "help" { print $1 }'
}

# Writes every .txt into DIR.
write_texts() {
    local dir=$1 sub
    mkdir -p "$dir"
    help_of "$MT_PEER_BIN" >"$dir/minitorrent.txt"
    for sub in $(subcommands); do
        help_of "$MT_PEER_BIN" "$sub" >"$dir/minitorrent-$sub.txt"
    done
    help_of "$MT_TRACKER_BIN" >"$dir/minitorrent-tracker.txt"
}

# ---------------------------------------------------------------- man pages

# Escapes text for roff and wraps lines longer than 72 columns (man indents
# by 7) at spaces, continuing at the line's own indent, so a no-fill block
# reads like --help in 80 columns.
roff_block() {
    awk '
    function emit(s) {
        gsub(/\\/, "\\e", s)
        if (s ~ /^[.\047]/) s = "\\&" s
        print s
    }
    {
        line = $0
        match(line, /^ */); ind = substr(line, 1, RLENGTH)
        while (length(line) > 72) {
            cut = 0
            for (i = 73; i > length(ind) + 1; i--)
                if (substr(line, i, 1) == " ") { cut = i; break }
            if (!cut) break
            emit(substr(line, 1, cut - 1))
            rest = substr(line, cut + 1); sub(/^ +/, "", rest)
            line = ind rest
        }
        emit(line)
    }'
}

# The first line of a --help, as a man page's NAME description.
summary_of() {
    sed -n 1p "$1" | sed 's/\.$//; s/\\/\\e/g'
}

# man_page NAME TEXT_DIR DATE VERSION: writes NAME.1 to stdout.
man_page() {
    local name=$1 dir=$2 date=$3 version=$4 upper f sub
    upper=$(tr '[:lower:]-' '[:upper:]_' <<<"$name")
    printf '.TH %s 1 "%s" "minitorrent %s" "User Commands"\n' "$upper" "$date" "$version"
    printf '.SH NAME\n%s \\- %s\n' "${name//-/\\-}" "$(summary_of "$dir/$name.txt")"
    printf '.SH DESCRIPTION\n.nf\n'
    roff_block <"$dir/$name.txt"
    printf '.fi\n'
    if [[ $name == minitorrent ]]; then
        printf '.SH COMMANDS\n'
        for f in "$dir"/minitorrent-*.txt; do
            sub=${f##*/minitorrent-}
            sub=${sub%.txt}
            [[ $sub != tracker ]] || continue
            printf '.SS "minitorrent %s"\n.nf\n' "$sub"
            roff_block <"$f"
            printf '.fi\n'
        done
        cat <<'EOF'
.SH FILES
.TP
.I /etc/minitorrent/config.toml
settings for every user of the machine (a whole lab); every setting is
commented out as installed
.TP
.I ~/.config/minitorrent/config.toml
one user's settings, over the machine's; environment variables
(MINITORRENT_TRACKER, ...) and then command-line flags win over both
.SH SEE ALSO
.BR minitorrent\-tracker (1);
/usr/share/doc/minitorrent/ (LAN.md: a lab of 30 PCs)
EOF
    else
        cat <<'EOF'
.SH FILES
.TP
.I /usr/lib/systemd/system/minitorrent\-tracker.service
runs the tracker on UDP 6969 of every interface:
systemctl enable \-\-now minitorrent\-tracker
.TP
.I /var/lib/minitorrent
the service's state directory
.SH SEE ALSO
.BR minitorrent (1);
/usr/share/doc/minitorrent/ (LAN.md: a lab of 30 PCs)
EOF
    fi
}

# ---------------------------------------------------------------------- main

if ((check)); then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    write_texts "$tmp"
    if ! diff -ru --exclude=README.md "$out" "$tmp" >"$tmp.diff" 2>&1; then
        sed "s|$tmp|(the binaries now)|g" "$tmp.diff" >&2
        rm -f "$tmp.diff"
        mt_die "$out does not match the binaries' --help (difference above): run scripts/gen-help.sh and commit docs/cli"
    fi
    rm -f "$tmp.diff"
    mt_ok "$out matches the binaries' --help"
    exit 0
fi

# Replace the old texts: a removed subcommand loses its file.
mkdir -p "$out"
find "$out" -maxdepth 1 -name 'minitorrent*.txt' -type f -delete
write_texts "$out"
mt_ok "wrote $(find "$out" -maxdepth 1 -name 'minitorrent*.txt' | wc -l | tr -d ' ') help texts to $out"

if [[ -n $man_dir ]]; then
    version=$("$MT_PEER_BIN" --version | awk '{ print $2 }')
    # The date of the last commit, so the same sources give the same pages.
    date=''
    if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
        date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d 2>/dev/null || true)
    fi
    [[ -n $date ]] || date=$(git -C "$MT_ROOT" log -1 --format=%cs 2>/dev/null || true)
    [[ -n $date ]] || date=$(date -u +%Y-%m-%d)
    mkdir -p "$man_dir"
    man_page minitorrent "$out" "$date" "$version" >"$man_dir/minitorrent.1"
    man_page minitorrent-tracker "$out" "$date" "$version" >"$man_dir/minitorrent-tracker.1"
    mt_ok "wrote the man pages minitorrent.1 and minitorrent-tracker.1 to $man_dir"
fi
