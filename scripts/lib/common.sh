# Shared helpers for scripts/test and friends: headers, messages, CI detection. Source it.

ASBX_REPO=${ASBX_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ASBX_TEST_DIR=${ASBX_TEST_DIR:-/var/tmp/asbx-test}   # shared by runs: dockerd, registry, locks
ASBX_BASE_IMAGE=${ASBX_BASE_IMAGE:-localhost/asbx/busybox:latest}
_section_started=$SECONDS

section() {
  printf '\n==> %s\n' "$*"
  _section_started=$SECONDS
}

info() { printf '    %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { printf '    (%ss)\n' "$((SECONDS - _section_started))"; }

is_ci() {
  case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; *) return 1 ;; esac
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# A missing prerequisite: fatal in CI, a warning elsewhere (the tests that need it skip).
need() {
  if is_ci; then die "$* (CI=true: a missing runtime is a failure)"; fi
  warn "$* — the tests that need it will be skipped"
}

free_port() {
  "${PYTHON:-python3}" - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}
