"""Every module of ``studio9/``, ``adapters/`` and ``migrations/`` imports on its own, and only
the modules that do the heavy work load the heavy libraries.

A program embedding Studio9 imports the module it needs (``studio9.jobs.api``, an adapter), not the
app; an import cycle that only resolves when some other module happens to be imported first breaks
it. So each module is imported alone, in an interpreter that has loaded none of ours. The same
imports show which modules load pyarrow or numpy: only the engines of the job types that use
them may (docs/decisions.md), so that a process that never runs those jobs never loads them.

Speed: one subprocess imports the third-party libraries our modules use (never one of ours, nor a
heavy library), then forks a child per module that imports just that module and reports. A fork
shares what the parent loaded, so each child pays only for our own code.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("studio9", "adapters", "migrations")
# Scripts, not modules: ``python -m studio9`` runs the CLI, and Alembic executes ``env.py``
# inside a migration context (importing either on its own is meant to run it).
SCRIPTS = {"studio9.__main__", "migrations.env"}
HEAVY = ("pyarrow", "numpy", "pandas", "sklearn", "skops", "duckdb", "scipy", "joblib")
# The modules that exist to do Arrow/numpy work; each is imported by the code that runs it
# (a job handler, an export, a sink's load), never at start-up.
ENGINES = {
    "studio9.predictions.arrow",
    "studio9.predictions.checks",
    "studio9.predictions.importer",
    "studio9.tables.chunks",
    "studio9.tables.column_stats",
    "studio9.tables.conversion",
    "studio9.tables.filters",
    "studio9.tables.importing",
    "studio9.tables.jsonl",
    "studio9.tables.paging",
    "studio9.tables.parts",
    "studio9.tables.profiling",
    "studio9.tables.reading",
    "studio9.tables.sketches",
    "studio9.tables.sources",
    "studio9.tables.writing",
    "adapters.prediction_sink.pgcopy",
}
# The ML context's engine: scikit-learn through and through, loaded by its jobs and the
# prediction route with their first model.
ENGINES |= {m for m in ("studio9.ml.frames", "studio9.ml.persistence", "studio9.ml.schema")}
ENGINE_PACKAGES = ("studio9.ml.engine",)

# Runs in the subprocess. Preloads third-party modules, then forks a child per module of ours, a
# few at a time; prints, per module, the error if it failed and the heavy libraries it loaded.
_CHILDREN = r"""
import importlib, json, os, sys

spec = json.load(sys.stdin)
for name in spec["preload"]:
    try:
        importlib.import_module(name)
    except Exception:  # optional or TYPE_CHECKING-only; a module of ours that needs it reports it
        pass
leaked = sorted(m for m in sys.modules if m.split(".")[0] in spec["ours"] + spec["heavy"])
if leaked:
    raise SystemExit(f"preloading imported our own modules or heavy libraries: {leaked}")

report, running, pending = {}, {}, list(spec["modules"])
while pending or running:
    while pending and len(running) < spec["parallel"]:
        name = pending.pop(0)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            error = None
            try:
                importlib.import_module(name)
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
            heavy = [lib for lib in spec["heavy"] if lib in sys.modules]
            os.write(write_end, json.dumps({"error": error, "heavy": heavy}).encode())
            os._exit(0)
        os.close(write_end)
        running[pid] = (name, read_end)
    pid, status = os.wait()
    name, read_end = running.pop(pid)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read()
    report[name] = json.loads(message) if message else {"error": f"died: {status}", "heavy": []}
print(json.dumps(report))
"""


def _paths() -> Iterator[Path]:
    for top in OURS:
        yield from sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _third_party_imports(paths: list[Path]) -> list[str]:
    """Every module outside ours that our modules import by name (at any depth), but the heavy ones."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] not in (*OURS, *HEAVY, "__future__"))


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, dict[str, Any]]:
    """Per module of ours: ``{"error": str | None, "heavy": [heavy libraries it loaded]}``."""
    paths = list(_paths())
    modules = [m for m in map(_module_name, paths) if m not in SCRIPTS]
    assert "studio9.jobs.api" in modules  # the discovery itself found the tree
    spec = {
        "modules": modules,
        "preload": _third_party_imports(paths),
        "ours": list(OURS),
        "heavy": list(HEAVY),
        "parallel": min(4, os.cpu_count() or 1),
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILDREN],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,  # a hung import fails the test instead of hanging the suite; not a timing check
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(modules)
    return report


def test_every_module_imports_on_its_own(imported_alone: dict[str, dict[str, Any]]) -> None:
    failures = {name: r["error"] for name, r in imported_alone.items() if r["error"]}
    assert not failures, "modules that do not import on their own:\n" + "\n".join(
        f"  {name}: {error}" for name, error in sorted(failures.items())
    )


def test_only_engine_modules_load_heavy_libraries(imported_alone: dict[str, dict[str, Any]]) -> None:
    loading = {name: r["heavy"] for name, r in imported_alone.items() if r["heavy"]}
    assert "studio9.tables.profiling" in loading  # the check sees an import where there is one
    offenders = {
        name: libs
        for name, libs in loading.items()
        if name not in ENGINES and not name.startswith(ENGINE_PACKAGES)
    }
    assert not offenders, "import pyarrow/numpy inside the function that uses them:\n" + "\n".join(
        f"  {name}: {', '.join(libs)}" for name, libs in sorted(offenders.items())
    )
