#!/usr/bin/env bash
# Builds the Debian package of minitorrent with dpkg-deb (what `cargo deb`
# would make, without installing cargo-deb): both binaries, the tracker's
# systemd unit, /etc/minitorrent/config.toml, the man pages and the --help
# texts. packaging/ holds the files it ships. See --help.
set -euo pipefail

MT_PROG=package-deb.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/package-deb.sh [OPTIONS]

Builds target/debian/minitorrent_VERSION_ARCH.deb: the version comes from
Cargo.toml, the architecture from `dpkg --print-architecture`. Needs dpkg-deb
(Debian and Ubuntu have it); dpkg-shlibdeps (package dpkg-dev) and strip
(binutils) are used when present.

The package installs:
  /usr/bin/minitorrent, /usr/bin/minitorrent-tracker
  /usr/lib/systemd/system/minitorrent-tracker.service  (not enabled on install)
  /etc/minitorrent/config.toml                         (every setting commented out)
  /usr/share/man/man1/minitorrent.1.gz, minitorrent-tracker.1.gz
  /usr/share/doc/minitorrent/                          (README, LAN.md, ..., cli/*.txt)

Install it with: sudo apt install ./target/debian/minitorrent_VERSION_ARCH.deb

Options:
  --bin-dir DIR   package the binaries in DIR instead of building them
                  (cargo build --release) [default: $MINITORRENT_BIN_DIR]
  --out DIR       where to write the .deb [default: target/debian]
  -h, --help      show this help

Environment:
  DEBFULLNAME, DEBEMAIL   the package's Maintainer field
  SOURCE_DATE_EPOCH       timestamps in the package [default: the last commit's]
EOF
}

bin_dir=${MINITORRENT_BIN_DIR:-}
out=${CARGO_TARGET_DIR:-$MT_ROOT/target}/debian
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --bin-dir) need "$@"; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; shift ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_die "unknown argument: $1 (see --help)" ;;
    esac
done

if ! command -v dpkg-deb >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    mt_die "dpkg-deb not found: the package is built on Debian or Ubuntu (sudo apt install dpkg)"
fi
arch=$(dpkg --print-architecture) || mt_die "dpkg --print-architecture failed"

# The version of the workspace ([workspace.package] in Cargo.toml). A
# semver pre-release (0.2.0-rc.1) becomes 0.2.0~rc.1, which Debian sorts
# before 0.2.0, and leaves '-' to Debian revisions.
cargo_version=$(awk '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && $1 == "version" {
        gsub(/"/, "", $3); print $3; exit }' "$MT_ROOT/Cargo.toml")
[[ $cargo_version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]] ||
    mt_die "cannot read the version from [workspace.package] in $MT_ROOT/Cargo.toml (found '$cargo_version')"
version=${cargo_version/-/\~}

if [[ -n $bin_dir ]]; then
    MINITORRENT_BIN_DIR=$bin_dir mt_build
else
    mt_build
fi
for b in "$MT_PEER_BIN" "$MT_TRACKER_BIN"; do
    v=$("$b" --version 2>/dev/null | awk '{ print $2 }') || true
    [[ $v == "$cargo_version" ]] ||
        mt_die "$b --version says '${v:-nothing}', Cargo.toml says $cargo_version: rebuild it (cargo build --release) or give the right --bin-dir"
done

# Reproducible: every timestamp in the package is the last commit's.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$MT_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
commit=$(git -C "$MT_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

maintainer="${DEBFULLNAME:-minitorrent maintainers} <${DEBEMAIL:-minitorrent@example.org}>"

stage=$(mktemp -d "${TMPDIR:-/tmp}/minitorrent-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022
pkg=$stage/pkg
doc=$pkg/usr/share/doc/minitorrent
mt_info "Assembling minitorrent $version ($arch) in $stage"

# ------------------------------------------------------------------- files

install -D -m 0755 "$MT_PEER_BIN" "$pkg/usr/bin/minitorrent"
install -D -m 0755 "$MT_TRACKER_BIN" "$pkg/usr/bin/minitorrent-tracker"
if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded --remove-section=.comment \
        "$pkg/usr/bin/minitorrent" "$pkg/usr/bin/minitorrent-tracker"
else
    mt_warn "strip not found (package binutils): the binaries keep their symbols"
fi

install -D -m 0644 "$MT_ROOT/packaging/minitorrent-tracker.service" \
    "$pkg/usr/lib/systemd/system/minitorrent-tracker.service"
install -D -m 0644 "$MT_ROOT/packaging/config.toml" "$pkg/etc/minitorrent/config.toml"

install -D -m 0644 "$MT_ROOT/packaging/debian/copyright" "$doc/copyright"
install -m 0644 "$MT_ROOT/README.md" "$MT_ROOT/docs/LAN.md" "$MT_ROOT/docs/CLIENT.md" \
    "$MT_ROOT/docs/PROTOCOL.md" "$doc/"

# The --help texts and the man pages, from the binaries being packaged.
"$MT_ROOT/scripts/gen-help.sh" --bin-dir "$(dirname "$MT_PEER_BIN")" \
    --out "$doc/cli" --man "$pkg/usr/share/man/man1" >/dev/null 2>"$stage/gen-help.err" || {
    cat "$stage/gen-help.err" >&2
    mt_die "scripts/gen-help.sh failed (above)"
}
chmod 0644 "$doc"/cli/*.txt "$pkg"/usr/share/man/man1/*.1

# A native package's changelog: where the history really is.
{
    printf 'minitorrent (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built by scripts/package-deb.sh from commit %s of the minitorrent\n' "$commit"
    printf '    repository; its git log is the history of every change.\n\n'
    printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$doc/changelog"

# Debian policy: man pages compressed, and documents over 4 KiB (not
# copyright; not the --help texts either, kept as docs/cli has them).
gzip -9n "$pkg"/usr/share/man/man1/*.1 "$doc/changelog"
find "$doc" -maxdepth 1 -type f ! -name copyright ! -name '*.gz' -size +4k -exec gzip -9n {} +

# -------------------------------------------------------- control files

mkdir -p "$pkg/DEBIAN"
echo /etc/minitorrent/config.toml >"$pkg/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    # #COMMON# becomes packaging/debian/common.sh: each script stands alone.
    awk -v common="$MT_ROOT/packaging/debian/common.sh" '
        $0 == "#COMMON#" { while ((getline l < common) > 0) print l; next }
        { print }' "$MT_ROOT/packaging/debian/$script" >"$pkg/DEBIAN/$script"
    chmod 0755 "$pkg/DEBIAN/$script"
done

# Depends: the shared libraries the binaries link (libc6, libgcc-s1).
depends=''
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    mkdir -p "$stage/src/debian"
    printf 'Source: minitorrent\n\nPackage: minitorrent\nArchitecture: any\n' \
        >"$stage/src/debian/control"
    depends=$(cd "$stage/src" && dpkg-shlibdeps -O -e"$pkg/usr/bin/minitorrent" \
        -e"$pkg/usr/bin/minitorrent-tracker" 2>/dev/null | sed -n 's/^shlibs:Depends=//p') || depends=''
fi
if [[ -z $depends ]] && command -v objdump >/dev/null 2>&1; then
    # No dpkg-shlibdeps (package dpkg-dev): the newest glibc symbol version.
    glibc=$(objdump -T "$pkg/usr/bin/minitorrent" "$pkg/usr/bin/minitorrent-tracker" |
        grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    depends="libc6${glibc:+ (>= $glibc)}"
    if objdump -p "$pkg/usr/bin/minitorrent" "$pkg/usr/bin/minitorrent-tracker" |
        grep -q 'NEEDED.*libgcc_s'; then
        depends="$depends, libgcc-s1"
    fi
fi
if [[ -z $depends ]]; then
    mt_warn "neither dpkg-shlibdeps (dpkg-dev) nor objdump (binutils): Depends is a guess"
    depends='libc6, libgcc-s1'
fi

installed_kib=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: minitorrent
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kib
Depends: $depends
Section: net
Priority: optional
Description: hybrid peer-to-peer file sharer for classrooms and small LANs
 minitorrent shares files between the machines of a classroom or a small
 LAN. A small UDP tracker (minitorrent-tracker) knows who shares which file;
 every peer (minitorrent) downloads a file piece by piece from several peers
 at once over TCP with the BitTorrent peer wire protocol, checks each
 piece's SHA-1 and keeps seeding what it downloaded. Peers find a tracker
 on their LAN by themselves.
 .
 This package holds both programs, a systemd unit for the tracker
 (minitorrent-tracker.service, not enabled on install: only one machine of
 a lab runs it) and /etc/minitorrent/config.toml for settings shared by a
 whole lab.
EOF

(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# ---------------------------------------------------------------- build

if ! mkdir -p "$out" || ! out=$(cd "$out" && pwd); then
    mt_die "cannot make the directory $out"
fi
deb=$out/minitorrent_${version}_${arch}.deb
if dpkg-deb --help 2>/dev/null | grep -q -- --root-owner-group; then
    dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
elif command -v fakeroot >/dev/null 2>&1; then
    fakeroot dpkg-deb -Zxz --build "$pkg" "$deb" >/dev/null
else
    mt_die "this dpkg-deb is older than 1.19 (no --root-owner-group) and fakeroot is missing: sudo apt install fakeroot"
fi
mt_ok "built $deb ($(mt_human "$(wc -c <"$deb" | tr -d ' ')"))"
mt_note "install it: sudo apt install $deb"
