# Install the Debian packages the tests need, only those missing (apt-get update only then).

# netavark: scripts/containers.conf selects it (the CNI backend cannot carry allowlists).
ASBX_PODMAN_PACKAGES=(podman runc catatonit netavark aardvark-dns busybox-static)
ASBX_APT_PACKAGES=("${ASBX_PODMAN_PACKAGES[@]}" docker.io docker-registry iptables
                   iproute2 procps util-linux python3)

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || printf '%s\n' "$pkg"
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
