# The Python environment: this checkout installed editable with its dev extra.
# Sets PYTHON. A system Python that forbids pip (PEP 668, Debian's) gets a .venv instead.

externally_managed() {
  "$1" - <<'PY'
import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if os.path.exists(marker) and sys.prefix == sys.base_prefix else 1)
PY
}

ensure_python() {
  PYTHON=${PYTHON:-python3}
  command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON: install Python 3.11 or newer"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is older than 3.11"
  if externally_managed "$PYTHON"; then
    if [ ! -x "$ASBX_REPO/.venv/bin/python" ]; then
      ensure_packages python3-venv
      info "creating $ASBX_REPO/.venv"
      "$PYTHON" -m venv "$ASBX_REPO/.venv"
    fi
    PYTHON=$ASBX_REPO/.venv/bin/python
  fi
  export PATH="$(dirname "$PYTHON"):$PATH"
  export PYTHON
  info "python: $PYTHON ($("$PYTHON" --version 2>&1))"
}

# `pip install -e '.[dev]'`, skipped when pyproject.toml has not changed since the last one
# and `import asbx` still finds this checkout (not another one installed editable since).
ensure_dev_install() {
  local stamp want
  stamp="$ASBX_TEST_DIR/pip-stamp-$(printf '%s' "$ASBX_REPO" | sha256sum | cut -c1-12)"
  want="$("$PYTHON" -c 'import sys; print(sys.prefix)') $(sha256sum "$ASBX_REPO/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && (cd / && "$PYTHON" -c 'import sys, asbx, pytest, mypy, ruff
sys.exit(not asbx.__file__.startswith(sys.argv[1]))' "$ASBX_REPO/src/") >/dev/null 2>&1; then
    info "editable install is up to date"
    return 0
  fi
  info "pip install -e '.[dev]'"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e "$ASBX_REPO[dev]" \
    || die "pip install -e '.[dev]' failed"
  mkdir -p "$ASBX_TEST_DIR" && printf '%s\n' "$want" > "$stamp"
}
