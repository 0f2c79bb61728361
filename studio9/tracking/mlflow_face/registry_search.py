"""The registry's search language on the MLflow face: ``registered-models/search`` and
``model-versions/search`` filters, ``order_by`` and pages.

A filter is comparisons joined by ``AND`` (as MLflow's registry search)::

    name = 'churn'            name LIKE 'churn%'         tags.team = 'ml'
    run_id = '…'              run_id IN ('…', '…')        version_number = 3

String keys take ``= != LIKE ILIKE`` (``run_id`` also ``IN``/``NOT IN``); ``version_number``
compares with a number. Which keys a search accepts is the caller's (``keys``). Errors are 400
``INVALID_PARAMETER_VALUE`` with MLflow's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Final, TypeVar

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset
from studio9.ml.domain import ModelVersionInfo
from studio9.tracking.domain import InvalidTrackingInput
from studio9.tracking.matching import like
from studio9.tracking.mlflow_face.protocol import MlflowError
from studio9.tracking.mlflow_face.registry import RegistryFace, version_json
from studio9.tracking.search import decode_page_token, encode_page_token
from studio9.tracking.tokens import SEGMENT, Token, is_quoted, tokenize, unquote

_STRING_COMPARATORS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NUMBER_COMPARATORS: Final = frozenset({"=", "!=", "<", "<=", ">", ">="})
_TAG_PREFIXES: Final = ("tags.", "tag.")
NUMERIC_KEYS: Final = frozenset({"version_number"})

T = TypeVar("T")


@attrs.frozen
class Clause:
    """One comparison: ``key`` is an attribute (``name``, ``run_id``…) or ``tags.<key>``."""

    key: str
    comparator: str
    value: str | float | tuple[str, ...]

    def matches(self, found: str | float | None) -> bool:
        """Whether ``found`` (the entity's value; None when it has none) passes."""
        if found is None:
            return False
        op, value = self.comparator, self.value
        if isinstance(value, tuple):
            return (str(found) in value) == (op == "IN")
        if isinstance(value, float):
            number = float(found)
            tests: dict[str, Callable[[float, float], bool]] = {
                "=": lambda a, b: a == b,
                "!=": lambda a, b: a != b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
            }
            return tests[op](number, value)
        text = str(found)
        if op == "=":
            return text == value
        if op == "!=":
            return text != value
        return like(text, value, case_sensitive=op == "LIKE")


def parse_registry_filter(text: str | None, keys: Collection[str]) -> tuple[Clause, ...]:
    """The clauses of ``text`` (none for an empty filter); ``keys``: the attributes allowed
    (``tags.<key>`` always is)."""
    if not text or not text.strip():
        return ()
    try:
        tokens = tokenize(text)
    except InvalidTrackingInput as exc:
        raise MlflowError(exc.message) from None
    clauses: list[Clause] = []
    at = 0
    while True:
        clause, at = _clause(tokens, at, keys, text)
        clauses.append(clause)
        if at == len(tokens):
            return tuple(clauses)
        if not tokens[at].is_("AND"):
            raise MlflowError(f"Invalid clause(s) in filter string: '{tokens[at].text}'")
        at += 1


def _clause(tokens: Sequence[Token], at: int, keys: Collection[str], text: str) -> tuple[Clause, int]:
    if len(tokens) - at < 3:
        raise MlflowError(f"Invalid filter string: '{text}'")
    identifier, operator = tokens[at], tokens[at + 1]
    if identifier.kind != "name":
        raise MlflowError(f"Invalid clause(s) in filter string: '{identifier.text}'")
    key = _key(identifier.text, keys)
    comparator, at = _comparator(tokens, at + 1)
    if key in NUMERIC_KEYS:
        operand = tokens[at]
        if operand.kind != "number" or comparator not in _NUMBER_COMPARATORS:
            raise MlflowError(f"Expected numeric value type for attribute {key}. Found {operand.text}")
        return Clause(key, comparator, float(operand.text)), at + 1
    if comparator in ("IN", "NOT IN"):
        if key != "run_id":
            raise MlflowError(f"Invalid comparator '{comparator}' for {key}: only run_id takes IN")
        values, at = _values(tokens, at)
        return Clause(key, comparator, values), at
    if comparator not in _STRING_COMPARATORS:
        raise MlflowError(f"Invalid comparator '{operator.text}' for {key}: expected =, !=, LIKE, ILIKE")
    value = tokens[at].string()
    if value is None:
        raise MlflowError(f"Expected a quoted string value for {key}. Got value {tokens[at].text}")
    return Clause(key, comparator, value), at + 1


def _key(written: str, keys: Collection[str]) -> str:
    for prefix in _TAG_PREFIXES:
        if written.startswith(prefix):
            rest = written[len(prefix) :]
            return "tags." + (unquote(rest) if is_quoted(rest) else rest)
    head = re.match(SEGMENT, written)
    if head is not None and head.end() < len(written) and head.group() in ("attribute", "attributes", "attr"):
        written = written[head.end() + 1 :]
    key = unquote(written) if is_quoted(written) else written
    if key not in keys:
        raise MlflowError(f"Invalid attribute key '{key}' specified. Valid keys are {sorted(keys)}")
    return key


def _comparator(tokens: Sequence[Token], at: int) -> tuple[str, int]:
    first = tokens[at]
    if first.is_("NOT") and at + 1 < len(tokens) and tokens[at + 1].is_("IN"):
        return "NOT IN", _need(tokens, at + 2)
    if first.kind not in ("op", "keyword"):
        raise MlflowError(f"Invalid comparison clause. Expected comparison found '{first.text}'")
    op = first.text.upper()
    return ("=" if op == "==" else "!=" if op == "<>" else op), _need(tokens, at + 1)


def _need(tokens: Sequence[Token], at: int) -> int:
    if at >= len(tokens):
        raise MlflowError("Invalid filter string: a comparison lacks its value")
    return at


def _values(tokens: Sequence[Token], at: int) -> tuple[tuple[str, ...], int]:
    if tokens[at].text != "(":
        raise MlflowError(f"Expected a parenthesised list of strings, found '{tokens[at].text}'")
    values: list[str] = []
    at += 1
    while at < len(tokens):
        value = tokens[at].string()
        if value is None:
            raise MlflowError(f"Expected a quoted string value, found '{tokens[at].text}'")
        values.append(value)
        if at + 1 < len(tokens) and tokens[at + 1].text == ",":
            at += 2
            continue
        if at + 1 < len(tokens) and tokens[at + 1].text == ")":
            return tuple(values), at + 2
        break
    raise MlflowError("Invalid filter string: an IN list is not closed")


def parse_registry_order(entries: Sequence[str], keys: Collection[str]) -> list[tuple[str, bool]]:
    """``[(key, ascending)]`` of MLflow ``order_by`` entries (``"name ASC"``)."""
    order: list[tuple[str, bool]] = []
    for entry in entries:
        parts = entry.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise MlflowError(f"Invalid order_by clause '{entry}'.")
        key = parts[0].removeprefix("attribute.").removeprefix("attributes.")
        if key not in keys:
            raise MlflowError(f"Invalid order by key '{key}' specified. Valid keys are {sorted(keys)}")
        order.append((key, len(parts) == 1 or parts[1].upper() == "ASC"))
    return order


def ordered(items: list[T], order: Sequence[tuple[str, bool]], value: Callable[[T, str], Any]) -> list[T]:
    """``items`` sorted by ``order`` (the last key first, Python's sort being stable)."""
    for key, ascending in reversed(order):
        items.sort(key=lambda item: value(item, key), reverse=not ascending)
    return items


def page(items: Sequence[T], max_results: int, page_token: str | None) -> tuple[Sequence[T], str | None]:
    """One page of ``items`` and the next page's token (None at the end)."""
    try:
        offset = decode_page_token(page_token)
    except InvalidTrackingInput as exc:
        raise MlflowError(exc.message) from None
    end = offset + max_results
    return items[offset:end], encode_page_token(end) if end < len(items) else None


# -- the searches ---------------------------------------------------------------------------------

#: MLflow's registered-model search page: 100 by default, at most 1000.
MODELS_DEFAULT: Final = 100
MODELS_MAX: Final = 1000
#: MLflow's model-version search page: 10 000 by default, at most 200 000.
VERSIONS_DEFAULT: Final = 10_000
VERSIONS_MAX: Final = 200_000
_MODEL_KEYS: Final = frozenset({"name"})
_MODEL_ORDER: Final = frozenset({"name", "creation_timestamp", "last_updated_timestamp", "timestamp"})
_VERSION_KEYS: Final = frozenset({"name", "run_id", "source_path", "version_number"})
_VERSION_ORDER: Final = frozenset({"name", "version_number", "creation_timestamp", "last_updated_timestamp"})
_LIST_BATCH: Final = 1000


def check_page_size(max_results: int, limit: int) -> int:
    if not 1 <= max_results <= limit:
        raise MlflowError(
            f"Invalid value {max_results} for parameter 'max_results': it must be 1 to {limit}."
        )
    return max_results


async def own_models(face: RegistryFace, actor: Principal) -> list[Asset]:
    """Every model of the caller's (models shared with them are in the library)."""
    found: list[Asset] = []
    while True:
        batch = await face.models.list(actor, limit=_LIST_BATCH, after=found[-1].id if found else None)
        found.extend(batch)
        if len(batch) < _LIST_BATCH:
            return found


async def search_models(
    face: RegistryFace,
    actor: Principal,
    *,
    filter: str | None,
    max_results: int,
    order_by: Sequence[str],
    page_token: str | None,
) -> dict[str, Any]:
    clauses = parse_registry_filter(filter, _MODEL_KEYS)
    order = parse_registry_order(order_by, _MODEL_ORDER) or [("name", True)]
    assets = await own_models(face, actor)
    tags = await face.tags.experiment_tags([a.id for a in assets])

    def value(asset: Asset, key: str) -> Any:
        if key == "name":
            return asset.name
        if key.startswith("tags."):
            return tags.get(asset.id, {}).get(key[5:])
        return asset.created_at if key == "creation_timestamp" else asset.updated_at

    matched = [a for a in assets if all(c.matches(value(a, c.key)) for c in clauses)]
    shown, token = page(ordered(matched, order, value), max_results, page_token)
    out: dict[str, Any] = {}
    if shown:  # MLflow answers an empty page with {}
        out["registered_models"] = [await face.model_json(actor, a, tags.get(a.id, {})) for a in shown]
    if token is not None:
        out["next_page_token"] = token
    return out


async def search_versions(
    face: RegistryFace,
    actor: Principal,
    *,
    filter: str | None,
    max_results: int,
    order_by: Sequence[str],
    page_token: str | None,
) -> dict[str, Any]:
    clauses = parse_registry_filter(filter, _VERSION_KEYS)
    order = parse_registry_order(order_by, _VERSION_ORDER) or [("name", True), ("version_number", False)]
    exact = next((c.value for c in clauses if c.key == "name" and c.comparator == "="), None)
    if isinstance(exact, str):
        try:
            assets = [await face.model(actor, exact)]
        except MlflowError:
            assets = []
    else:
        assets = await own_models(face, actor)
    candidates = [(a, info) for a in assets for info in await face.models.registry.versions(a.id)]

    def value(item: tuple[Asset, ModelVersionInfo], key: str) -> Any:
        asset, info = item
        if key.startswith("tags."):
            return info.tags.get(key[5:])
        known = {
            "name": asset.name,
            "run_id": info.run_id,
            "version_number": info.version,
            "creation_timestamp": info.created_at,
            "last_updated_timestamp": info.updated_at,
        }
        return known[key]

    early = [c for c in clauses if c.key != "source_path"]
    matched = ordered([i for i in candidates if all(c.matches(value(i, c.key)) for c in early)], order, value)
    late = [c for c in clauses if c.key == "source_path"]
    views = []
    if late:  # the source is in the version's content: read every candidate's
        for asset, info in matched:
            view = await face.models.version(actor, asset, info.version)
            if all(c.matches(version_json(view)["source"]) for c in late):
                views.append(view)
        shown_views, token = page(views, max_results, page_token)
    else:
        shown, token = page(matched, max_results, page_token)
        shown_views = [await face.models.version(actor, asset, info.version) for asset, info in shown]
    out: dict[str, Any] = {"model_versions": [version_json(v) for v in shown_views]} if shown_views else {}
    if token is not None:
        out["next_page_token"] = token
    return out
