"""The pure core (spec/, graph.py, plan/) imports no state, runtime, network or apply code and
nothing that runs processes, opens databases or sockets: checked on the source, transitively."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
CORE_PACKAGES = ("asbx.spec", "asbx.plan")
CORE_MODULES = ("asbx.graph",)
# Modules outside the core that it may use: plain types and pure functions.
PURE_HELPERS = frozenset({
    "asbx", "asbx.addresses", "asbx.errors", "asbx.diagnostics", "asbx.images",
    "asbx.runtime.base",  # the Runtime protocol and its record types (no backend)
    "asbx.state.records",  # state's record types (not the store)
    "asbx.data.ignore", "asbx.data.dockerignore",  # ignore-pattern matching
    "asbx.network.policy",  # allowlist rules (not the proxy, not the firewall)
})
SIDE_EFFECTS = frozenset({"subprocess", "sqlite3", "socket", "shutil", "tempfile", "threading",
                          "multiprocessing", "asyncio", "signal", "http", "urllib", "fcntl"})


def _module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str) -> set[str]:
    path = _module_file(module)
    assert path is not None, module
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found.add(base)
            # `from asbx.spec import model` imports the module asbx.spec.model
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if _module_file(f"{base}.{alias.name}") is not None)
    return found


def _is_core(module: str) -> bool:
    return module in CORE_MODULES or any(
        module == package or module.startswith(package + ".") for package in CORE_PACKAGES)


def _core_modules() -> list[str]:
    modules = list(CORE_MODULES)
    for package in CORE_PACKAGES:
        directory = SRC / Path(*package.split("."))
        modules += [f"{package}.{path.stem}" if path.stem != "__init__" else package
                    for path in sorted(directory.glob("*.py"))]
    return modules


def _closure() -> dict[str, set[str]]:
    """Every asbx module the core reaches, with what each imports."""
    seen: dict[str, set[str]] = {}
    todo = _core_modules()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module] = _imports(module)
        todo += [m for m in seen[module] if m.startswith("asbx") and _module_file(m) is not None]
    return seen


def test_the_core_reaches_only_core_modules_and_pure_helpers() -> None:
    outside = {module for module in _closure() if not _is_core(module)} - PURE_HELPERS
    assert not outside, f"the pure core imports {sorted(outside)}"


def test_nothing_the_core_reaches_runs_processes_or_opens_databases_or_sockets() -> None:
    found = {
        f"{module} imports {name}"
        for module, imports in _closure().items()
        for name in imports if name.split(".")[0] in SIDE_EFFECTS
    }
    assert not found, sorted(found)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walk itself works: the store (sqlite) and the proxy are found from their modules."""
    assert "sqlite3" in _imports("asbx.state.store")
    assert "asbx.network.policy" in _imports("asbx.network.proxy")
    assert "asbx.spec.model" in _imports("asbx.plan.hashing")
