"""The MLflow face's experiment routes (``/api/2.0/mlflow/experiments/*``, ``docs/mlflow-protocol.md``
§3.1), over ``ExperimentService``: an MLflow experiment is a Studio9 experiment asset.

Where Studio9 differs from MLflow's server, and why:

- the experiment id ``"0"`` is the caller's own ``Default`` (made on first use), since every
  user has one rather than the server having one;
- a name is the caller's own experiment of that name, or ``owner/name`` for one shared with them;
- ``artifact_location`` on create is ignored: artifacts live in Studio9's blob store, at
  ``mlflow-artifacts:/<id>``;
- deleting an experiment deletes it for good (a catalog delete, with its runs and artifacts), so
  ``restore`` of one finds nothing (404; an experiment that exists is active: 400), and searches
  never show deleted experiments (``DELETED_ONLY`` finds none);
- ``search`` lists the caller's own experiments (those shared with them are in the library),
  newest first whatever ``order_by`` says (it is checked, not applied: the list pages by id);
  its filter takes ``name``, ``creation_time``, ``last_update_time`` and ``tags.<key>``
  comparisons joined by ``AND``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from litestar import Request, Response, get, post, route
from litestar.di import NamedDependency

from studio9.auth.domain import Principal
from studio9.tracking.domain import Experiment, InvalidTrackingInput
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.matching import like
from studio9.tracking.mlflow_face.encode import experiment_json
from studio9.tracking.mlflow_face.protocol import (
    MlflowError,
    fields,
    integer,
    key_values,
    ok,
    strings,
    text,
)
from studio9.tracking.search import NUMERIC_COMPARATORS
from studio9.tracking.tokens import SEGMENT, Token, is_quoted, tokenize, unquote

MLFLOW: Final = "/api/2.0/mlflow"
AJAX: Final = "/ajax-api/2.0/mlflow"
#: MLflow's ``search_experiments`` default and largest page.
DEFAULT_MAX_RESULTS: Final = 1000
MAX_RESULTS: Final = 50_000
#: Most experiments read from the catalog at a time while filling a filtered page.
_BATCH: Final = 1000
#: MLflow's ``ViewType`` by name and by number.
_VIEW_TYPES: Final = {
    "ACTIVE_ONLY": "ACTIVE_ONLY",
    "1": "ACTIVE_ONLY",
    "DELETED_ONLY": "DELETED_ONLY",
    "2": "DELETED_ONLY",
    "ALL": "ALL",
    "3": "ALL",
}
_ATTRIBUTE_PREFIXES: Final = frozenset({"attribute", "attributes", "attr"})
_TAG_PREFIXES: Final = frozenset({"tag", "tags"})
_NUMERIC_KEYS: Final = frozenset({"creation_time", "last_update_time"})
_ORDER_KEYS: Final = frozenset({"name", "experiment_id", "creation_time", "last_update_time"})
_STRING_COMPARATORS: Final = frozenset({"=", "!=", "LIKE", "ILIKE"})
_ID_TOKEN: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
_NUMBER_TESTS: Final[dict[str, Callable[[float, float], bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

Predicate = Callable[[Experiment], bool]
# Every handler takes the request, the caller and the service: short names keep them on one line.
Req = Request[Any, Any, Any]
Caller = NamedDependency[Principal]
Experiments = NamedDependency[ExperimentService]


def _paths(suffix: str) -> list[str]:
    return [f"{MLFLOW}/{suffix}", f"{AJAX}/{suffix}"]


@post(_paths("experiments/create"), include_in_schema=False, status_code=200)
async def create_experiment(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    found = await fields(request)
    name = text(found, "name", need=True) or ""
    experiment = await experiment_service.create(principal, name, tags=key_values(found, "tags"))
    return ok({"experiment_id": experiment.id})


@get(_paths("experiments/get"), include_in_schema=False)
async def get_experiment(request: Req, principal: Caller, experiment_service: Experiments) -> Response[bytes]:
    found = await fields(request)
    experiment_id = text(found, "experiment_id", need=True) or ""
    return ok({"experiment": experiment_json(await experiment_service.get(principal, experiment_id))})


@get(_paths("experiments/get-by-name"), include_in_schema=False)
async def get_experiment_by_name(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    """404 ``RESOURCE_DOES_NOT_EXIST`` for an unknown name: ``set_experiment`` then creates it."""
    found = await fields(request)
    name = text(found, "experiment_name", need=True) or ""
    return ok({"experiment": experiment_json(await experiment_service.by_name(principal, name))})


@route(
    _paths("experiments/search"),
    http_method=["GET", "POST"],
    include_in_schema=False,
    status_code=200,
    opt={"read_only": True},
)
async def search_experiments(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    found = await fields(request)
    max_results = integer(found, "max_results", default=DEFAULT_MAX_RESULTS) or 0
    if not 1 <= max_results <= MAX_RESULTS:
        raise MlflowError(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most "
            f"{MAX_RESULTS}, and at least 1"
        )
    view = _VIEW_TYPES.get(text(found, "view_type", default="ACTIVE_ONLY") or "ACTIVE_ONLY")
    if view is None:
        raise MlflowError(f"Invalid value for parameter 'view_type' supplied: {found.get('view_type')!r}")
    predicate = parse_experiment_filter(text(found, "filter"))
    check_experiment_order_by(strings(found, "order_by"))
    after = decode_experiment_token(text(found, "page_token"))
    if view == "DELETED_ONLY":  # deleted experiments are gone for good
        return ok()
    page, more = await _matching(experiment_service, principal, predicate, max_results, after)
    answer: dict[str, Any] = {}
    if page:
        answer["experiments"] = [experiment_json(e) for e in page]
    if more:
        answer["next_page_token"] = base64.urlsafe_b64encode(page[-1].id.encode()).decode()
    return ok(answer)


async def _matching(
    experiments: ExperimentService,
    actor: Principal,
    predicate: Predicate | None,
    max_results: int,
    after: str | None,
) -> tuple[list[Experiment], bool]:
    """Up to ``max_results`` of the caller's experiments older than ``after`` that satisfy the
    filter, and whether more follow. Without a filter that is one catalog query."""
    batch = min(max_results + 1, _BATCH)
    found: list[Experiment] = []
    while len(found) <= max_results:
        listed = await experiments.mine(actor, limit=batch, after=after)
        found.extend(e for e in listed if predicate is None or predicate(e))
        if len(listed) < batch:
            break
        after = listed[-1].id
    return found[:max_results], len(found) > max_results


def decode_experiment_token(token: str | None) -> str | None:
    """The experiment id a search page token continues after (None: from the newest)."""
    if not token:
        return None
    try:
        decoded = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, ValueError, UnicodeError):
        raise MlflowError("Invalid page token, could not base64-decode") from None
    if not _ID_TOKEN.fullmatch(decoded):
        raise MlflowError(f"Invalid page token, decoded value={decoded!r}")
    return decoded


def check_experiment_order_by(entries: Sequence[str]) -> None:
    """Refuse an ``order_by`` MLflow's server would refuse (module doc: it is not applied)."""
    for entry in entries:
        words = entry.split()
        key = words[0].removeprefix("attributes.").removeprefix("attribute.") if words else ""
        if (
            key not in _ORDER_KEYS
            or len(words) > 2
            or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC"))
        ):
            raise MlflowError(f"Invalid order_by clause '{entry}'. Could not be parsed.")


def parse_experiment_filter(filter_text: str | None) -> Predicate | None:
    """An experiment search filter as a predicate (None: no filter). Raises MlflowError (400)."""
    if filter_text is None or not filter_text.strip():
        return None
    try:
        tokens = tokenize(filter_text)
    except InvalidTrackingInput as exc:
        raise MlflowError(exc.message) from None
    clauses: list[Predicate] = []
    at = 0
    while True:
        clause = tokens[at : at + 3]
        if len(clause) < 3:
            raise MlflowError(f"Invalid filter string: '{filter_text}'")
        clauses.append(_clause(*clause))
        at += 3
        if at == len(tokens):
            break
        if not tokens[at].is_("AND"):
            raise MlflowError(f"Invalid clause(s) in filter string: '{tokens[at].text}'")
        at += 1
    return lambda experiment: all(clause(experiment) for clause in clauses)


def _clause(identifier: Token, operator: Token, operand: Token) -> Predicate:
    if identifier.kind != "name":
        raise MlflowError(f"Invalid clause(s) in filter string: '{identifier.text}'")
    is_tag, key = _identifier(identifier.text)
    comparator = operator.text.upper()
    if operator.kind not in ("op", "keyword") or comparator not in NUMERIC_COMPARATORS | {"LIKE", "ILIKE"}:
        raise MlflowError(f"Invalid comparison clause. Expected comparison found '{operator.text}'")
    if not is_tag and key in _NUMERIC_KEYS:
        if operand.kind != "number" or comparator not in NUMERIC_COMPARATORS:
            raise MlflowError(f"Expected numeric value type for attribute {key}. Found {operand.text}")
        bound = float(operand.text)
        compare = _NUMBER_TESTS[comparator]
        stamp = "created_at" if key == "creation_time" else "updated_at"
        return lambda e: compare(getattr(e.asset, stamp).timestamp() * 1000, bound)
    value = operand.string()
    if value is None:
        raise MlflowError(f"Expected a quoted string value for {key}. Got value {operand.text}")
    if comparator not in _STRING_COMPARATORS:
        raise MlflowError(f"Invalid comparator '{operator.text}' for {key}: expected =, !=, LIKE, ILIKE")
    test = _string_test(comparator, value)
    if not is_tag:
        return lambda e: test(e.asset.name)
    return lambda e: (found := e.tags.get(key)) is not None and test(found)


def _identifier(written: str) -> tuple[bool, str]:
    """(whether it names a tag, the key) of a filter identifier; a bare key is an attribute."""
    head = re.match(SEGMENT, written)
    if head is None or head.end() == len(written):
        key = unquote(written) if is_quoted(written) else written
    else:
        prefix, rest = head.group(), written[head.end() + 1 :]
        key = unquote(rest) if is_quoted(rest) else rest
        if prefix in _TAG_PREFIXES:
            return True, key
        if prefix not in _ATTRIBUTE_PREFIXES:
            raise MlflowError(f"Invalid entity type '{prefix}'. Valid values are ['attribute', 'tag']")
    if key not in _NUMERIC_KEYS | {"name"}:
        raise MlflowError(
            f"Invalid attribute key '{key}' specified. Valid keys are {sorted(_NUMERIC_KEYS | {'name'})}"
        )
    return False, key


def _string_test(comparator: str, value: str) -> Callable[[str], bool]:
    if comparator == "=":
        return lambda s: s == value
    if comparator == "!=":
        return lambda s: s != value
    return lambda s: like(s, value, case_sensitive=comparator == "LIKE")


@post(_paths("experiments/update"), include_in_schema=False, status_code=200)
async def update_experiment(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    found = await fields(request)
    experiment_id = text(found, "experiment_id", need=True) or ""
    new_name = text(found, "new_name")
    if new_name:  # MLflow's server leaves the name as it is without one
        await experiment_service.rename(principal, experiment_id, new_name)
    else:
        await experiment_service.get(principal, experiment_id)
    return ok()


@post(_paths("experiments/delete"), include_in_schema=False, status_code=200)
async def delete_experiment(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    """Deletes for good, runs and artifacts with it (module doc)."""
    found = await fields(request)
    await experiment_service.delete(principal, text(found, "experiment_id", need=True) or "")
    return ok()


@post(_paths("experiments/restore"), include_in_schema=False, status_code=200)
async def restore_experiment(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    """Nothing deleted can come back (module doc): an experiment that exists is active (400, as
    MLflow refuses to restore an active one), any other id is unknown (404)."""
    found = await fields(request)
    experiment_id = text(found, "experiment_id", need=True) or ""
    await experiment_service.get(principal, experiment_id)
    raise MlflowError(f"Cannot restore an active experiment: {experiment_id}")


@post(_paths("experiments/set-experiment-tag"), include_in_schema=False, status_code=200)
async def set_experiment_tag(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    found = await fields(request)
    experiment_id = text(found, "experiment_id", need=True) or ""
    key = text(found, "key", need=True) or ""
    await experiment_service.set_tag(principal, experiment_id, key, text(found, "value", default="") or "")
    return ok()


@post(_paths("experiments/delete-experiment-tag"), include_in_schema=False, status_code=200)
async def delete_experiment_tag(
    request: Req, principal: Caller, experiment_service: Experiments
) -> Response[bytes]:
    found = await fields(request)
    experiment_id = text(found, "experiment_id", need=True) or ""
    await experiment_service.delete_tag(principal, experiment_id, text(found, "key", need=True) or "")
    return ok()


ROUTES: list[Any] = [
    create_experiment,
    get_experiment,
    get_experiment_by_name,
    search_experiments,
    update_experiment,
    delete_experiment,
    restore_experiment,
    set_experiment_tag,
    delete_experiment_tag,
]
