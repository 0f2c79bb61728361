"""The catalog's values: assets of every kind, their immutable versions, lineage, and the rules.

An asset is the record common to every kind (a file, a table, a model…): who owns it, its name,
tags and status. What is kind-specific lives in its versions' ``content``, a JSON-able mapping
that the context owning the kind writes and reads; the catalog never interprets it. A content
change makes a new version (``latest_version`` + 1); versions are never changed.

Lineage edges join an input asset's version to an output asset's version, with the job that
read the one and wrote the other. Edges outlive the assets they name: deleting an asset others
were derived from leaves their edges pointing to a deleted asset.

Who may do what is decided here, in ``can_read`` / ``can_write``, and nowhere else.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from studio9.auth.domain import Principal
from studio9.errors import Conflict, InvalidInput, NotFound, PreconditionFailed

MAX_NAME_LENGTH: Final = 255
# Characters a name may not hold: '/' (SQL names a table ``owner/name``), control characters,
# line and paragraph separators; nor may it start or end with a space.
_NOT_IN_NAME = r"/\x00-\x1f\x7f-\x9f\u2028\u2029"
_SPACES = r" \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
#: What a name is (as both Python and ECMAScript read it: the OpenAPI document uses it too).
NAME_PATTERN: Final = re.compile(
    rf"[^{_NOT_IN_NAME}{_SPACES}](?:[^{_NOT_IN_NAME}]{{0,{MAX_NAME_LENGTH - 2}}}[^{_NOT_IN_NAME}{_SPACES}])?"
)
MAX_DESCRIPTION_LENGTH: Final = 10_000
MAX_TAGS: Final = 32
TAG_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
#: A lineage traversal goes at most this many edges away from its asset.
MAX_LINEAGE_DEPTH: Final = 20
#: How many dependents an AssetHasDependents names in its message (``details`` has them all).
NAMED_DEPENDENTS: Final = 20


class AssetKind(enum.StrEnum):
    FILE = "file"
    TABLE = "table"
    MODEL = "model"
    PREDICTION_SET = "prediction_set"
    REPORT = "report"
    EXPERIMENT = "experiment"
    PIPELINE = "pipeline"


class AssetStatus(enum.StrEnum):
    """``saving`` while a job writes the asset's content; then ``active``, or ``error``."""

    SAVING = "saving"
    ACTIVE = "active"
    ERROR = "error"


class Direction(enum.StrEnum):
    """Which way a lineage traversal goes: to the inputs (up), the outputs (down), or both."""

    UP = "up"
    DOWN = "down"
    BOTH = "both"


@attrs.frozen(kw_only=True)
class Asset:
    """One asset. ``latest_version`` 0: its first version is still being written (``saving``)."""

    id: str
    kind: AssetKind
    owner_id: str
    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    status: AssetStatus = AssetStatus.ACTIVE
    error: str | None = None
    in_library: bool = False
    latest_version: int = 1
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class AssetVersion:
    """An immutable version of an asset; ``content`` is the kind's own (JSON-able) description."""

    asset_id: str
    version: int = attrs.field(validator=attrs.validators.ge(1))
    created_at: datetime
    job_id: str | None = None
    content: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class AssetChanges:
    """What an update changes; None leaves a field as it is.

    ``error`` is written together with ``status``, and only then: a status change sets the
    error to ``error`` (None clears it).
    """

    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    in_library: bool | None = None
    status: AssetStatus | None = None
    error: str | None = None

    def apply(self, asset: Asset, at: datetime) -> Asset:
        """``asset`` with these changes made at ``at``."""
        changed = attrs.evolve(
            asset,
            name=asset.name if self.name is None else self.name,
            description=asset.description if self.description is None else self.description,
            tags=asset.tags if self.tags is None else self.tags,
            in_library=asset.in_library if self.in_library is None else self.in_library,
            updated_at=at,
        )
        if self.status is not None:
            changed = attrs.evolve(changed, status=self.status, error=self.error)
        return changed


@attrs.frozen(kw_only=True)
class LineageEdge:
    """``input_id`` at ``input_version`` went into ``output_id`` at ``output_version``, by ``job_id``
    (None: a change made outside a job, e.g. a copy). Identity: all five of those."""

    input_id: str
    input_version: int
    output_id: str
    output_version: int
    job_id: str | None
    at: datetime

    @property
    def key(self) -> tuple[str, int, str, int, str | None]:
        return (self.input_id, self.input_version, self.output_id, self.output_version, self.job_id)


@attrs.frozen(kw_only=True)
class LineageNode:
    """An asset of a lineage graph; a deleted one keeps only its id (``deleted`` True), one the
    caller may not read only its id and kind (``redacted`` True): the graph keeps its shape
    without telling names."""

    id: str
    kind: AssetKind | None
    name: str | None
    version: int | None
    status: AssetStatus | None
    deleted: bool = False
    redacted: bool = False

    @classmethod
    def of(cls, asset: Asset) -> LineageNode:
        return cls(
            id=asset.id,
            kind=asset.kind,
            name=asset.name,
            version=asset.latest_version,
            status=asset.status,
        )

    @classmethod
    def stub(cls, asset: Asset) -> LineageNode:
        return cls(id=asset.id, kind=asset.kind, name=None, version=None, status=None, redacted=True)

    @classmethod
    def gone(cls, asset_id: str) -> LineageNode:
        return cls(id=asset_id, kind=None, name=None, version=None, status=None, deleted=True)


@attrs.frozen(kw_only=True)
class LineageGraph:
    """The assets around one and the edges between them; ``truncated`` when a bound cut it short."""

    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    truncated: bool = False


# -- errors ------------------------------------------------------------------------------------


class AssetNotFound(NotFound):
    def __init__(self, asset_id: str, version: int | None = None) -> None:
        what = f"asset {asset_id!r}" + (f" version {version}" if version is not None else "")
        super().__init__(f"{what} not found")
        self.asset_id = asset_id


class AssetNameTaken(Conflict):
    """Names are unique per owner and kind among library assets (``in_library``)."""

    def __init__(self, kind: AssetKind, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} is already in your library", field="name")
        self.kind = kind
        self.name = name


class AssetExists(Conflict):
    def __init__(self, asset_id: str) -> None:
        super().__init__(f"asset {asset_id!r} exists")


class VersionConflict(PreconditionFailed):
    """Someone else added a version first (the compare-and-set on ``latest_version`` failed)."""

    def __init__(self, asset_id: str, expected: int) -> None:
        super().__init__(f"asset {asset_id!r} is no longer at version {expected}", expected=expected)


class AssetHasDependents(Conflict):
    """Other assets were derived from this one: ``details["dependents"]`` lists them all."""

    def __init__(self, asset_id: str, dependents: Sequence[Mapping[str, Any]]) -> None:
        shown = ", ".join(_described(d) for d in dependents[:NAMED_DEPENDENTS])
        more = len(dependents) - NAMED_DEPENDENTS
        super().__init__(
            f"asset {asset_id!r} cannot be deleted: {len(dependents)} asset(s) were derived from it"
            f" ({shown}{f' and {more} more' if more > 0 else ''}); delete them first, or force the delete",
            dependents=[dict(d) for d in dependents],
        )
        self.asset_id = asset_id
        self.dependents = tuple(dependents)


def _described(dependent: Mapping[str, Any]) -> str:
    name = dependent.get("name")
    return f"{dependent['id']} ({dependent['kind']} {name!r})" if name else str(dependent["id"])


# -- checks ------------------------------------------------------------------------------------


def check_name(name: str) -> str:
    """The name, stripped, if it is usable (``NAME_PATTERN``); raise InvalidInput (field ``name``)
    otherwise: 1-255 characters, no ``/`` (SQL names a table ``owner/name``), no control character.
    """
    value = name.strip()
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"name must be 1-{MAX_NAME_LENGTH} characters, without '/' or control characters", field="name"
        )
    return value


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters", field="description"
        )
    return description


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """The tags without duplicates, in their order; raise InvalidInput (field ``tags``) if one is bad."""
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field="tags")
    for tag in tags:
        if not TAG_PATTERN.fullmatch(tag):
            raise InvalidInput(
                f"tag {tag!r} must be 1-64 characters of letters, digits, '.', '_', ':' or '-'", field="tags"
            )
    return tuple(dict.fromkeys(tags))


def check_depth(depth: int) -> int:
    if not 1 <= depth <= MAX_LINEAGE_DEPTH:
        raise InvalidInput(f"depth must be 1-{MAX_LINEAGE_DEPTH}", field="depth")
    return depth


def check_new_asset(asset: Asset, first: AssetVersion | None) -> None:
    """A new asset is stored at version 1 with its first version, or at 0 without one (``saving``)."""
    expected = 0 if first is None else 1
    if asset.latest_version != expected or (
        first is not None and (first.asset_id, first.version) != (asset.id, 1)
    ):
        raise InvalidInput(
            f"a new asset is at version {expected} with {'no' if first is None else 'its first'} version",
            field="version",
        )


def check_next_version(version: AssetVersion, expected_latest: int) -> None:
    """The version added after ``expected_latest`` is numbered ``expected_latest + 1``."""
    if version.version != expected_latest + 1:
        raise InvalidInput(
            f"the version after {expected_latest} is {expected_latest + 1}, not {version.version}",
            field="version",
        )


# -- access ------------------------------------------------------------------------------------


class Access(enum.IntEnum):
    """What a caller may do with an asset; each level includes those below it.

    ``READ``: see it (below that: it does not exist for them, a 404, so ids cannot be probed);
    ``WRITE``: change its content and description; ``OWN``: also share, delete and hand it over
    (its owner, and admins). The policy deciding it is ``studio9.catalog.ports.AccessRule``.
    """

    NONE = 0
    READ = 1
    WRITE = 2
    OWN = 3


def owner_access(actor: Principal, asset: Asset) -> Access:
    """The part of the rule that needs no lookup: owners and admins own; others get NONE here
    (what they were granted is the ``AccessRule``'s to find)."""
    return Access.OWN if actor.owns(asset.owner_id) else Access.NONE
