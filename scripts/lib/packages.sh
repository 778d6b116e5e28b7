# Install the Debian packages the tests need, only those missing (apt-get update only then).

# What podman needs on a machine that has nothing, worked out from the packages' own metadata
# (apt-cache show podman netavark golang-github-containers-common), not from what happens to be
# installed:
#   podman         Depends: conmon, containers-common, crun | runc (we take runc: see
#                  scripts/containers.conf); Recommends catatonit (asbx runs --init)
#   netavark       the network backend scripts/containers.conf selects (the CNI backend cannot
#                  carry allowlists); containers-common Depends on *a* network stack and Debian
#                  may satisfy it with the CNI plugins instead, so it is named here
#   aardvark-dns   netavark's DNS (Recommends)
#   iptables       netavark 1.4 programs every network through the iptables binaries but does not
#                  depend on them (podman only Suggests iptables): without it the first RUN of a
#                  build fails with "netavark: No such file or directory (os error 2)"
#   busybox-static the base image asbx's quickstart and tests build, offline
# Rootless-only recommends (uidmap, slirp4netns, fuse-overlayfs, dbus-user-session) are not
# needed: these scripts run as root. `asbx doctor` checks the same things on any machine.
ASBX_PODMAN_PACKAGES=(podman runc catatonit netavark aardvark-dns iptables busybox-static)
# The tests add: a dockerd and an OCI registry for the docker and pull tests, the tools the
# test scripts and fixtures call (ip, pgrep/ps, flock/setsid/nsenter), and openssl, the TLS
# client the secrets test copies into a sandbox image (busybox's wget cannot CONNECT).
ASBX_APT_PACKAGES=("${ASBX_PODMAN_PACKAGES[@]}" docker.io docker-registry
                   iproute2 procps util-linux python3 openssl)

# Installed means dpkg's "ii": `dpkg -s` also succeeds for a removed package whose config files
# remain ("deinstall ok config-files", what `apt-get remove` leaves), which is not installed.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" = "ii " ] \
      || printf '%s\n' "$pkg"
  done
}

ensure_packages() {
  command -v dpkg >/dev/null 2>&1 || { need "not a Debian/Ubuntu system: install ${*} yourself"; return 0; }
  local missing
  mapfile -t missing < <(missing_packages "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    info "all present: $*"
    return 0
  fi
  if ! is_root; then
    need "missing packages (${missing[*]}); run as root or install them"
    return 0
  fi
  info "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install ${missing[*]} failed"
}
