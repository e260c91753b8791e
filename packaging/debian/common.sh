# shellcheck shell=sh
# Shared by the maintainer scripts (scripts/package-deb.sh pastes it in where
# a script says #COMMON#; dpkg runs each script alone, so there is no sourcing).

# shellcheck disable=SC2034 # used by the script this is pasted into
UNIT=minitorrent-tracker.service

# True when systemd is this system's running init and dpkg installs into this
# very system: never under `dpkg --root` / DPKG_ROOT (another root), and not
# in a chroot or a container image being built (no /run/systemd/system there).
systemd_running() {
    [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] &&
        command -v systemctl >/dev/null 2>&1
}

# Starts, stops or restarts the unit through deb-systemd-invoke where it is
# installed (package init-system-helpers: it honours policy-rc.d, which
# stops services from starting while an image is being built).
invoke() {
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        deb-systemd-invoke "$@"
    else
        systemctl "$@"
    fi
}
