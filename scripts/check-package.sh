#!/usr/bin/env bash
# The Debian package's test (scripts/test.sh runs it): builds the package with
# scripts/package-deb.sh, installs it with dpkg into a temporary root (dpkg
# --root: nothing on this system changes, root or not), checks every file it
# promises, reinstalls it over an edited config, removes it, purges it. Ends
# with a cargo-style "test result:" line counting the checks. See --help.
set -euo pipefail

MT_PROG=check-package.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
    cat <<'EOF'
Usage: scripts/check-package.sh [OPTIONS]

Builds the Debian package (scripts/package-deb.sh: a release build first,
quick when target/release is up to date), installs it into a temporary root
with `dpkg --root`, and checks: both binaries run --version from that root,
the systemd unit runs /usr/bin/minitorrent-tracker on 0.0.0.0:6969, the
conffile /etc/minitorrent/config.toml has every setting commented out, the
man pages and docs/cli texts are there (and docs/cli matches the binaries),
the maintainer scripts never touch this system's systemd, a reinstall keeps
an edited config, remove keeps it and purge deletes it and the state.
Exits 1 if any check fails.

Options:
  --bin-dir DIR   package the binaries in DIR instead of building them
                  [default: $MINITORRENT_BIN_DIR]
  --keep          keep the temporary directory and print where it is
  -h, --help      show this help
EOF
}

bin_dir=${MINITORRENT_BIN_DIR:-}
keep=0
need() { [[ $# -ge 2 && -n $2 ]] || mt_die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --bin-dir) need "$@"; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) mt_die "unknown argument: $1 (see --help)" ;;
    esac
done

for tool in dpkg dpkg-deb dpkg-query; do
    command -v "$tool" >/dev/null 2>&1 ||
        mt_die "$tool not found: the package is built and checked on Debian or Ubuntu (MINITORRENT_SKIP_PACKAGE=1 makes scripts/test.sh skip this check)"
done

started=$(mt_now)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/minitorrent-pkgtest.XXXXXX")
cleanup() {
    if ((keep)); then
        mt_note "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    mt_ok "$*"
}
fail() {
    failed=$((failed + 1))
    mt_err "FAILED: $*"
}

# ------------------------------------------------------------- the package

mt_info "Building the package"
pkg_args=(--out "$tmp/out")
if [[ -n $bin_dir ]]; then pkg_args+=(--bin-dir "$bin_dir"); fi
"$MT_ROOT/scripts/package-deb.sh" "${pkg_args[@]}" ||
    mt_die "scripts/package-deb.sh failed (its messages are above)"

cargo_version=$(awk '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && $1 == "version" {
        gsub(/"/, "", $3); print $3; exit }' "$MT_ROOT/Cargo.toml")
version=${cargo_version/-/\~}
arch=$(dpkg --print-architecture)
deb=$tmp/out/minitorrent_${version}_${arch}.deb
if [[ -f $deb ]]; then
    pass "package file named for Cargo.toml's version and this architecture: ${deb##*/}"
else
    mt_die "no $deb; package-deb.sh made: $(ls "$tmp/out" 2>/dev/null | tr '\n' ' ')"
fi

field() { dpkg-deb -f "$deb" "$1" 2>/dev/null || true; }
if [[ $(field Package) == minitorrent && $(field Version) == "$version" &&
    $(field Architecture) == "$arch" ]]; then
    pass "control: Package minitorrent, Version $version, Architecture $arch"
else
    fail "control fields: Package '$(field Package)', Version '$(field Version)', Architecture '$(field Architecture)' (expected minitorrent, $version, $arch)"
fi
if [[ $(field Depends) == *libc6* ]]; then
    pass "control: Depends $(field Depends)"
else
    fail "control: Depends '$(field Depends)' does not name libc6 (the binaries link glibc)"
fi

# ------------------------------------------------------- installing it

# dpkg works on the temporary root only: its database, its log, the files.
# Maintainer scripts run outside a chroot with DPKG_ROOT set (as when a system
# is built with dpkg --root); a systemctl and a deb-systemd-invoke on PATH
# that only record their arguments prove they leave this system's systemd alone.
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" \
    "$root/var/lib/dpkg/triggers" "$tmp/stub"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
for tool in systemctl deb-systemd-invoke; do
    cat >"$tmp/stub/$tool" <<EOF
#!/bin/sh
echo "$tool \$*" >>"$tmp/systemctl.calls"
[ "\$1" != is-enabled ]
EOF
    chmod +x "$tmp/stub/$tool"
done
dpkg_flags=(--root="$root" --log="$tmp/dpkg.log" --force-script-chrootless --force-depends)
if [[ $(id -u) != 0 ]]; then dpkg_flags+=(--force-not-root); fi
dpkg_root() {
    PATH="$tmp/stub:/usr/local/sbin:/usr/sbin:/sbin:$PATH" \
        dpkg "${dpkg_flags[@]}" "$@" >"$tmp/dpkg.out" 2>&1 || {
        cat "$tmp/dpkg.out" >&2
        return 1
    }
}
installed_status() {
    dpkg-query --root="$root" -W -f='${Status}' minitorrent 2>/dev/null || true
}
no_systemctl() {
    if [[ -s $tmp/systemctl.calls ]]; then
        fail "$1 called systemctl under dpkg --root (it must only when systemd runs this very system): $(tr '\n' ';' <"$tmp/systemctl.calls")"
        : >"$tmp/systemctl.calls"
    else
        pass "$1 left systemd alone (DPKG_ROOT set)"
    fi
}

mt_info "Installing it into $root (dpkg --root)"
if dpkg_root --install "$deb" && [[ $(installed_status) == "install ok installed" ]]; then
    pass "dpkg --install into a temporary root: $(installed_status)"
else
    mt_die "dpkg --root=$root --install $deb failed (dpkg's messages are above)"
fi
no_systemctl "postinst configure"

for b in minitorrent minitorrent-tracker; do
    if [[ ! -x $root/usr/bin/$b ]]; then
        fail "/usr/bin/$b is missing or not executable in the package"
    elif out=$("$root/usr/bin/$b" --version 2>&1) && [[ $out == "$b $cargo_version" ]]; then
        pass "/usr/bin/$b --version: $out"
    else
        fail "/usr/bin/$b --version printed '$out', expected '$b $cargo_version'"
    fi
done

unit=$root/usr/lib/systemd/system/minitorrent-tracker.service
if [[ ! -f $unit ]]; then
    fail "no /usr/lib/systemd/system/minitorrent-tracker.service in the package"
else
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    if [[ $exec_start == "/usr/bin/minitorrent-tracker --bind 0.0.0.0:6969"* ]]; then
        pass "unit runs $exec_start"
    else
        fail "unit's ExecStart is '$exec_start', expected /usr/bin/minitorrent-tracker --bind 0.0.0.0:6969"
    fi
    missing=''
    for line in DynamicUser=yes StateDirectory=minitorrent Restart=on-failure \
        WantedBy=multi-user.target; do
        grep -qx -- "$line" "$unit" || missing="$missing $line"
    done
    if [[ -z $missing ]]; then
        pass "unit: DynamicUser, StateDirectory=minitorrent, Restart=on-failure, WantedBy=multi-user.target"
    else
        fail "unit lacks:$missing (packaging/minitorrent-tracker.service)"
    fi
    if command -v systemd-analyze >/dev/null 2>&1; then
        # Syntax only: the binary's path in the temporary root, and no
        # Documentation= (verify would look for the man page on this system).
        mkdir -p "$tmp/unit"
        sed "s|^ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|; /^Documentation=/d" "$unit" \
            >"$tmp/unit/minitorrent-tracker.service"
        # Only lines about our unit: verify also loads this system's units
        # (multi-user.target, ...), whose own complaints are not ours.
        verify=$(cd "$tmp/unit" && timeout 60 systemd-analyze verify ./minitorrent-tracker.service 2>&1 |
            grep -F minitorrent-tracker.service |
            grep -E 'Unknown (key|section|lvalue)|Failed to parse|Invalid|not executable|[Mm]issing' || true)
        if [[ -z $verify ]]; then
            pass "systemd-analyze verify finds no error in the unit"
        else
            fail "systemd-analyze verify: $verify"
        fi
    fi
fi

conf=$root/etc/minitorrent/config.toml
if [[ ! -f $conf ]]; then
    fail "no /etc/minitorrent/config.toml in the package"
else
    if dpkg-query --root="$root" -W -f='${Conffiles}' minitorrent | grep -q ' /etc/minitorrent/config.toml '; then
        pass "/etc/minitorrent/config.toml is a conffile"
    else
        fail "/etc/minitorrent/config.toml is not registered as a conffile (DEBIAN/conffiles)"
    fi
    active=$(grep -nEv '^[[:space:]]*(#|$)' "$conf" || true)
    if [[ -z $active ]]; then
        pass "config.toml sets nothing (every line a comment)"
    else
        fail "config.toml has settings that are not commented out: $active"
    fi
    missing=''
    for key in tracker dir port max_upload_rate max_peers discover discover_port; do
        grep -qE "^#$key = " "$conf" || missing="$missing $key"
    done
    if [[ -z $missing ]]; then
        pass "config.toml shows every setting, commented out"
    else
        fail "config.toml lacks the commented example of:$missing (packaging/config.toml)"
    fi
fi

doc=$root/usr/share/doc/minitorrent
missing=''
for f in copyright changelog.gz cli/minitorrent.txt cli/minitorrent-tracker.txt \
    ../../man/man1/minitorrent.1.gz ../../man/man1/minitorrent-tracker.1.gz; do
    [[ -s $doc/$f ]] || missing="$missing $f"
done
if [[ -z $missing ]]; then
    pass "copyright, changelog, man pages and --help texts are in place"
else
    fail "missing from the package (under /usr/share/doc/minitorrent):$missing"
fi
for m in minitorrent minitorrent-tracker; do
    page=$root/usr/share/man/man1/$m.1.gz
    [[ -f $page ]] || continue
    upper=$(tr '[:lower:]-' '[:upper:]_' <<<"$m")
    if gzip -dc "$page" 2>/dev/null | grep -q "^\.TH $upper 1 "; then
        pass "man page $m(1)"
    else
        fail "$m.1.gz is not a gzipped man page starting with .TH $upper 1"
    fi
done

# The packaged texts come from the packaged binaries: docs/cli must match.
stale=$(diff -r --exclude=README.md "$MT_ROOT/docs/cli" "$doc/cli" 2>&1 | sed -n '1,20p' || true)
if [[ -z $stale ]]; then
    pass "docs/cli matches the binaries' --help"
else
    fail "docs/cli does not match the binaries' --help: run scripts/gen-help.sh and commit docs/cli. The difference:"
    printf '%s\n' "$stale" >&2
fi

# Both branches on any machine: copies of the packaged scripts look for a
# directory of ours instead of /run/systemd/system, so they believe systemd
# runs; the stub systemctl and deb-systemd-invoke record the calls, and
# systemctl answers "not enabled".
# With DPKG_ROOT empty (dpkg installs into this system) they must talk to
# systemd; with DPKG_ROOT set (dpkg --root) never.
mkdir -p "$tmp/run-systemd"
dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
    sed "s|/run/systemd/system|$tmp/run-systemd|g" "$tmp/control/$s" >"$tmp/$s"
    chmod +x "$tmp/$s"
done
# SCRIPT|ARGUMENT|the systemctl calls expected when systemd runs (';' after each)
while IFS='|' read -r s arg want; do
    for dpkg_root_var in '' "$root"; do
        : >"$tmp/systemctl.calls"
        if [[ -n $dpkg_root_var ]]; then
            want='' where="with DPKG_ROOT set"
        else
            where="when systemd runs"
        fi
        if ! PATH="$tmp/stub:$PATH" DPKG_ROOT=$dpkg_root_var "$tmp/$s" "$arg" \
            >"$tmp/script.out" 2>&1; then
            fail "$s $arg $where exited with an error: $(cat "$tmp/script.out")"
            continue
        fi
        got=$(tr '\n' ';' <"$tmp/systemctl.calls")
        if [[ $got == "$want" ]]; then
            pass "$s $arg $where: ${want:-no systemctl call}"
        else
            fail "$s $arg $where called '${got}', expected '${want}'"
        fi
    done
done <<'EOF'
postinst|configure|systemctl daemon-reload;systemctl is-enabled --quiet minitorrent-tracker.service;deb-systemd-invoke try-restart minitorrent-tracker.service;
prerm|upgrade|
prerm|remove|deb-systemd-invoke stop minitorrent-tracker.service;
postrm|remove|systemctl daemon-reload;
EOF
: >"$tmp/systemctl.calls"

# ------------------------------------------- reinstall, remove, purge

# A lab's edited config survives a reinstall (an upgrade does the same).
echo 'tracker = "192.0.2.1:6969"' >>"$conf"
if dpkg_root --install "$deb" && grep -qx 'tracker = "192.0.2.1:6969"' "$conf"; then
    pass "a reinstall keeps an edited /etc/minitorrent/config.toml"
else
    fail "after a reinstall the edit to /etc/minitorrent/config.toml is gone (or dpkg failed, above)"
fi
no_systemctl "prerm upgrade and postinst configure (reinstall)"

# What the tracker and `systemctl enable` leave behind, for purge to delete.
mkdir -p "$root/var/lib/private/minitorrent" "$root/etc/systemd/system/multi-user.target.wants"
echo data >"$root/var/lib/private/minitorrent/tracker.db"
ln -s private/minitorrent "$root/var/lib/minitorrent"
ln -s /usr/lib/systemd/system/minitorrent-tracker.service \
    "$root/etc/systemd/system/multi-user.target.wants/minitorrent-tracker.service"

mt_info "Removing it, then purging it"
if dpkg_root --remove minitorrent && [[ ! -e $root/usr/bin/minitorrent && ! -e $unit &&
    -f $conf && -f $root/var/lib/private/minitorrent/tracker.db ]]; then
    pass "dpkg --remove: binaries and unit gone, config and state kept"
else
    fail "dpkg --remove: expected the binaries and unit gone and config.toml and the state kept ($(ls -d "$root"/usr/bin/minitorrent* "$conf" 2>/dev/null | tr '\n' ' '))"
fi
no_systemctl "prerm remove and postrm remove"

left=''
if dpkg_root --purge minitorrent; then
    for p in etc/minitorrent var/lib/minitorrent var/lib/private/minitorrent \
        etc/systemd/system/multi-user.target.wants/minitorrent-tracker.service; do
        if [[ -e $root/$p || -L $root/$p ]]; then left="$left /$p"; fi
    done
    if [[ -z $left && $(installed_status) != *installed* ]]; then
        pass "dpkg --purge: config, state directory and enable link gone"
    else
        fail "dpkg --purge left:${left:- the package installed ($(installed_status))}"
    fi
else
    fail "dpkg --purge failed (dpkg's messages are above)"
fi
no_systemctl "postrm purge"

# ----------------------------------------------------------------- result

secs=$(mt_since "$started")
if ((failed)); then
    echo "test result: FAILED. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out; finished in ${secs}s (scripts/check-package.sh)"
    exit 1
fi
echo "test result: ok. $passed passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in ${secs}s (scripts/check-package.sh)"
