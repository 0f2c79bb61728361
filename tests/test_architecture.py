"""The import rules of ../shared/STYLE.md §3.1, enforced on the source tree with ``ast``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "studio9"
CONTEXTS = {"jobs", "metadata", "messaging", "config", "predictions", "api", "auth", "files"}
VENDOR_SDKS = {
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "psycopg",
    "psycopg_pool",
    "opensearchpy",
    "aioboto3",
    "aiobotocore",
    "boto3",
    "botocore",
    "pika",
    "dramatiq_sqs",
}
MAX_LINES = 400


def _modules(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _context_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 and parts[0] in CONTEXTS else None


def test_only_the_composition_root_imports_adapters() -> None:
    offenders = [
        _rel(p)
        for p in _modules(PACKAGE)
        if p.name != "bootstrap.py" and any(n == "adapters" or n.startswith("adapters.") for n in _imports(p))
    ]
    assert offenders == []


def test_vendor_sdks_stay_inside_adapters() -> None:
    offenders = [
        f"{_rel(p)}: {name}"
        for p in _modules(PACKAGE)
        for name in sorted(_imports(p))
        if name.split(".")[0] in VENDOR_SDKS
    ]
    assert offenders == []


def test_litestar_only_in_the_http_layer() -> None:
    offenders = [
        _rel(p)
        for p in _modules(PACKAGE, ROOT / "adapters")
        if any(n.split(".")[0] == "litestar" for n in _imports(p))
        and not (p.name == "api.py" or _context_of(p) == "api" or p.parent.name == "web")
    ]
    assert offenders == []


def test_dramatiq_only_in_tasks_and_messaging() -> None:
    offenders = [
        _rel(p)
        for p in _modules(PACKAGE)
        if any(n.split(".")[0] == "dramatiq" for n in _imports(p))
        and not (p.name == "tasks.py" or _context_of(p) == "messaging")
    ]
    assert offenders == []


def test_contexts_use_only_ports_and_domain_of_other_contexts() -> None:
    offenders = []
    for path in _modules(PACKAGE):
        own = _context_of(path)
        if own is None or own == "api":  # the HTTP face mounts every context's routes
            continue
        for name in _imports(path):
            parts = name.split(".")
            if (
                len(parts) >= 3
                and parts[0] == "studio9"
                and parts[1] in CONTEXTS
                and parts[1] != own
                and parts[2] in {"service", "api", "tasks"}
            ):
                offenders.append(f"{_rel(path)}: {name}")
    assert offenders == []


def test_adapters_never_reach_into_the_http_layer_or_composition_root() -> None:
    offenders = [
        f"{_rel(p)}: {n}"
        for p in _modules(ROOT / "adapters")
        for n in _imports(p)
        if n.startswith(("studio9.api", "studio9.bootstrap", "studio9.cli")) or n.endswith(".service")
    ]
    assert offenders == []


@pytest.mark.parametrize("root", ["studio9", "adapters", "migrations"])
def test_modules_are_small_and_documented(root: str) -> None:
    too_long, undocumented = [], []
    for path in _modules(ROOT / root):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MAX_LINES:
            too_long.append(_rel(path))
        if source.strip() and ast.get_docstring(ast.parse(source)) is None and path.parent.name != "versions":
            undocumented.append(_rel(path))
    assert too_long == []
    assert undocumented == []


def test_every_package_declares_its_public_names() -> None:
    missing = [
        _rel(p)
        for p in PACKAGE.rglob("__init__.py")
        if _imports(p) and "__all__" not in p.read_text(encoding="utf-8")
    ]
    assert missing == []


def test_contexts_of_the_design_card_exist() -> None:
    for context in ("jobs", "metadata", "messaging", "config", "predictions", "api"):
        assert (PACKAGE / context / "__init__.py").is_file(), context
