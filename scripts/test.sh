#!/usr/bin/env bash
# Runs every test of the workspace. This is the README's test command.
# The interoperability tests need aria2c and opentracker: installed here from
# the Debian packages when missing (MINITORRENT_SKIP_INTEROP=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v aria2c >/dev/null || missing+=(aria2)
command -v opentracker >/dev/null || missing+=(opentracker)
if [ ${#missing[@]} -gt 0 ] && [ "${MINITORRENT_SKIP_INTEROP:-}" != 1 ]; then
    sudo=()
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=(sudo -n)
    echo "test.sh: installing ${missing[*]} for the interoperability tests"
    if ! { command -v apt-get >/dev/null &&
        "${sudo[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null; }; then
        echo "test.sh: cannot install ${missing[*]} (needs apt-get and root or sudo)." >&2
        echo "test.sh: install them by hand, or set MINITORRENT_SKIP_INTEROP=1 to skip those tests." >&2
        exit 1
    fi
    # The package starts a system-wide opentracker on port 6969, our tracker's
    # default port; the tests start their own.
    if [[ " ${missing[*]} " == *" opentracker "* ]] && command -v systemctl >/dev/null; then
        "${sudo[@]}" systemctl disable --now opentracker >/dev/null 2>&1 || true
    fi
fi

cargo test --workspace
