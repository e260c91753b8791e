#!/usr/bin/env bash
# Runs every test of the workspace, then the Debian package's test. This is
# the README's test command.
# The interoperability tests need aria2c, opentracker and libtorrent's Python
# bindings (for the encryption tests, imported by /usr/bin/python3): installed
# here from the Debian packages when missing (MINITORRENT_SKIP_INTEROP=1 skips
# them).
# The browser tests (tracker/tests/browser.rs, client/tests/web.rs) need Debian's chromium:
# installed here when missing; the test may then not skip itself
# (MINITORRENT_REQUIRE_CHROMIUM=1). MINITORRENT_SKIP_BROWSER=1 installs
# nothing, and the test skips itself when it finds no chromium.
# The package's test (scripts/check-package.sh) builds the release binaries
# (quick when target/release is up to date, as in CI after scripts/demo.sh)
# and needs dpkg-deb (Debian, Ubuntu); MINITORRENT_SKIP_PACKAGE=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=(sudo -n)
# apt_install WHAT SKIP_VAR PACKAGE...: installs the Debian packages or exits
# with what to do instead.
apt_install() {
    local what=$1 skip=$2
    shift 2
    echo "test.sh: installing $* for $what"
    if ! { command -v apt-get >/dev/null &&
        "${sudo[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
            --no-install-recommends "$@" >/dev/null; }; then
        echo "test.sh: cannot install $* (needs apt-get and root or sudo)." >&2
        echo "test.sh: install them by hand, or set $skip=1 to skip $what." >&2
        exit 1
    fi
}

missing=()
command -v aria2c >/dev/null || missing+=(aria2)
command -v opentracker >/dev/null || missing+=(opentracker)
/usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1 || missing+=(python3-libtorrent)
if [ ${#missing[@]} -gt 0 ] && [ "${MINITORRENT_SKIP_INTEROP:-}" != 1 ]; then
    apt_install "the interoperability tests" MINITORRENT_SKIP_INTEROP "${missing[@]}"
    # The package starts a system-wide opentracker on port 6969, our tracker's
    # default port; the tests start their own.
    if [[ " ${missing[*]} " == *" opentracker "* ]] && command -v systemctl >/dev/null; then
        "${sudo[@]}" systemctl disable --now opentracker >/dev/null 2>&1 || true
    fi
fi

if [ "${MINITORRENT_SKIP_BROWSER:-}" != 1 ]; then
    if [ -z "${MINITORRENT_CHROMIUM:-}" ] && ! command -v chromium >/dev/null &&
        ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
        apt_install "the browser tests" MINITORRENT_SKIP_BROWSER chromium
    fi
    export MINITORRENT_REQUIRE_CHROMIUM=1
fi

cargo test --workspace

if [ "${MINITORRENT_SKIP_PACKAGE:-}" = 1 ]; then
    echo "test.sh: the Debian package's test skipped (MINITORRENT_SKIP_PACKAGE=1)"
elif ! command -v dpkg-deb >/dev/null; then
    echo "test.sh: dpkg-deb not found: the Debian package's test (scripts/check-package.sh)" >&2
    echo "test.sh: needs Debian or Ubuntu; set MINITORRENT_SKIP_PACKAGE=1 to skip it elsewhere." >&2
    exit 1
else
    scripts/check-package.sh
fi
