"""The import rules of the architecture (docs/architecture.md), enforced on the source tree with ``ast``.

Every import counts: at module level or in a function, under ``TYPE_CHECKING`` or not, absolute or
relative. The rules:

- no import cycle between packages (a top-level module of ``studio9/`` counts as a package of its own);
- a context imports of another context only its ``domain`` and ``ports``; the HTTP shell
  (``studio9/api/``) may use any context's services, and only its app factory mounts their routes;
- the route kit (``studio9/web/``) imports no context, so every context's routes can use it;
- only the composition root (``studio9/bootstrap/``) imports ``adapters``, and adapters never
  import the HTTP layer, the composition root or a service;
- vendor SDKs only in ``adapters/``; Litestar only in the HTTP layer;
- modules small and documented, packages declare their public names.

That every module also imports on its own is checked by ``tests/test_imports.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "studio9"
#: The MLflow REST face: an HTTP layer over several contexts (tracking, ml, catalog), like studio9/api.
MLFLOW_FACE = PACKAGE / "tracking" / "mlflow_face"
CONTEXTS = {
    "access",
    "audit",
    "auth",
    "catalog",
    "config",
    "files",
    "jobs",
    "messaging",
    "metadata",
    "ml",
    "predictions",
    "tables",
    "tracking",
}
#: What one context may import of another.
PUBLIC_TO_CONTEXTS = {"domain", "ports"}
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
    "dramatiq",
    "dramatiq_sqs",
}
MAX_LINES = 400


def _modules(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


@cache
def _imports(path: Path) -> frozenset[str]:
    """Every name ``path`` imports, relative imports resolved: ``a.b`` and, for ``from a.b import c``,
    also ``a.b.c`` (``c`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if _is_package(path) else here[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _context_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    if path.is_relative_to(MLFLOW_FACE):
        return None
    return parts[0] if len(parts) > 1 and parts[0] in CONTEXTS else None


# -- the package graph ------------------------------------------------------------------------


def _known_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _modules(PACKAGE, ROOT / "adapters")}


def _node(module: str, known: Mapping[str, Path]) -> str | None:
    """The package ``module`` belongs to (a top-level module of studio9 is its own), or None
    for a name that is not ours. ``module`` may name a class: its longest known prefix counts."""
    while module and module not in known:
        module = module.rpartition(".")[0]
    if not module:
        return None
    path = known[module]
    if _is_package(path) or path.parent == PACKAGE:
        return module
    return module.rpartition(".")[0]


def package_graph() -> dict[str, set[str]]:
    """Package -> the packages its modules import."""
    known = _known_modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        source = _node(module, known)
        assert source is not None
        targets = graph.setdefault(source, set())
        for name in _imports(path):
            target = _node(name, known)
            if target is not None and target != source:
                targets.add(target)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    assert cycles(graph) == [], {n: sorted(graph[n]) for c in cycles(graph) for n in c}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# -- the rules ----------------------------------------------------------------------------------


def test_contexts_use_only_domain_and_ports_of_other_contexts() -> None:
    offenders = []
    for path in _modules(PACKAGE):
        own = _context_of(path)
        if own is None:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "studio9" and len(parts) >= 2 and parts[1] in CONTEXTS and parts[1] != own:
                module = parts[2] if len(parts) >= 3 else None
                if module not in PUBLIC_TO_CONTEXTS:
                    offenders.append(f"{_rel(path)}: {name}")
    assert offenders == []


def test_only_the_app_factory_mounts_the_contexts_routes() -> None:
    offenders = [
        f"{_rel(p)}: {n}"
        for p in _modules(PACKAGE)
        for n in _imports(p)
        if n.startswith("studio9.")
        and n.split(".")[-1] == "api"
        and n != "studio9.api"
        and _rel(p) != "studio9/api/app.py"
        and not n.startswith("studio9.api.")
    ]
    assert offenders == []


def test_the_route_kit_imports_no_context() -> None:
    offenders = [
        f"{_rel(p)}: {n}"
        for p in _modules(PACKAGE / "web")
        for n in _imports(p)
        if n.startswith("studio9.") and n.split(".")[1] in {*CONTEXTS, "api", "bootstrap"}
    ]
    assert offenders == []


def test_only_the_composition_root_imports_adapters() -> None:
    offenders = [
        _rel(p)
        for p in _modules(PACKAGE)
        if p.parent.name != "bootstrap"
        and any(n == "adapters" or n.startswith("adapters.") for n in _imports(p))
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
        and not (p.name == "api.py" or p.parent in {PACKAGE / "api", PACKAGE / "web", MLFLOW_FACE})
    ]
    assert offenders == []


def test_adapters_never_reach_into_the_http_layer_or_composition_root() -> None:
    offenders = [
        f"{_rel(p)}: {n}"
        for p in _modules(ROOT / "adapters")
        for n in _imports(p)
        if n.startswith(("studio9.api", "studio9.web", "studio9.bootstrap", "studio9.cli"))
        or n.endswith(".service")
    ]
    assert offenders == []


def _scheme_tables() -> dict[Path, dict[str, str]]:
    """Each port folder's ``SCHEMES`` (scheme -> ``module:Class``), read without importing it."""
    tables = {}
    for init in sorted((ROOT / "adapters").glob("*/__init__.py")):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "SCHEMES" and node.value:
                tables[init] = ast.literal_eval(node.value)
    return tables


def test_adapters_are_laid_out_by_port() -> None:
    """``adapters/<port>/<technology>.py``: nothing loose under ``adapters/``, every folder says what
    it is, and every URL scheme of a port's table names a class in a module of that port's folder."""
    assert [p.name for p in (ROOT / "adapters").glob("*.py") if p.name != "__init__.py"] == []
    for init in sorted((ROOT / "adapters").glob("*/__init__.py")):
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), _rel(init)
    tables = _scheme_tables()
    assert len(tables) >= 7
    for init, table in tables.items():
        for scheme, target in table.items():
            module, _, cls = target.partition(":")
            assert module.rpartition(".")[0] == _module_name(init), (scheme, target)
            source = ROOT / (module.replace(".", "/") + ".py")
            assert f"class {cls}" in source.read_text(encoding="utf-8"), (scheme, target)


def test_the_architecture_doc_finds_every_adapter_from_its_scheme() -> None:
    rows = [
        line
        for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("|") and "`adapters/" in line
    ]
    missing = []
    for table in _scheme_tables().values():
        for scheme, target in table.items():
            module, _, cls = target.partition(":")
            cell = f"`{module.replace('.', '/')}.py` (`{cls}`)"
            if not any(f"`{scheme}://`" in row and cell in row for row in rows):
                missing.append(f"{scheme}:// -> {cell}")
    assert missing == []


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
