"""Message streams (the original TAURUS): a source of items batched by size and time into jobs.

A stream's *settings* (``StreamSpec``) live in the config service under ``streams/<id>``;
its *runtime state* (``StreamState``: counters, pause flag, the runner's lease) and its
backlog (items, batches) live in SQL tables of their own. A batch always becomes exactly
one job, whose id is chosen when the batch is formed (that id is what makes a resubmission
after a crash find the job instead of making a second one).
"""

from __future__ import annotations

import enum
import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import msgspec

from studio9.auth.domain import Principal, Role
from studio9.errors import Conflict, InvalidInput, NotFound
from studio9.ids import new_id

#: Items taken into one batch at most (and the default batch size).
MAX_BATCH_SIZE = 1000
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_WAIT = 60.0
MAX_WAIT = 7 * 24 * 3600.0
MAX_ITEMS_PER_PUSH = 1000
MAX_ITEM_BYTES = 64 * 1024
#: Item keys longer than this are stored as their SHA-256 (a key only has to be unique).
MAX_KEY_LENGTH = 255
HTTP_SOURCE = "http"
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
STREAM_ID = re.compile(r"[0-9a-z]{26}")
SETTINGS_SERVICE = "streams"


def owner_of(value: Any) -> str | None:
    """Whose stream a ``streams/<id>`` setting value describes (None: not a stream's value)."""
    owner = value.get("owner_id") if isinstance(value, Mapping) else None
    return owner if isinstance(owner, str) else None


class StreamMode(enum.StrEnum):
    """How a batch's items reach its job's params (see ``job_params``)."""

    BATCH = "batch"
    PER_ITEM = "per_item"


class BatchStatus(enum.StrEnum):
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    FAILED = "failed"


class StreamNotFound(NotFound):
    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id!r} not found")


class InvalidStreamSettings(Conflict):
    """The stored settings cannot be read (someone wrote ``streams/<id>`` by hand)."""


@attrs.frozen(kw_only=True)
class StreamSpec:
    """What a stream does; stored as the config setting ``streams/<id>``."""

    id: str
    owner_id: str
    name: str = ""
    source: str = HTTP_SOURCE
    job_type: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    max_wait: float = DEFAULT_MAX_WAIT
    mode: StreamMode = attrs.field(default=StreamMode.BATCH, converter=StreamMode)
    item_param: str = "items"
    created_at: datetime

    @property
    def pulls(self) -> bool:
        """Whether the runner fetches items from a queue (else they are pushed over HTTP)."""
        return self.source != HTTP_SOURCE

    def owner(self) -> Principal:
        """The principal the stream's jobs are submitted as: its owner."""
        return Principal(
            user_id=self.owner_id,
            username=self.owner_id,
            role=Role.USER,
            token_id=f"stream:{self.id}",
            token_expires_at=datetime.max.replace(tzinfo=UTC),
        )

    def to_value(self) -> dict[str, Any]:
        """The JSON value of the config setting."""
        return {
            "owner_id": self.owner_id,
            "name": self.name,
            "source": self.source,
            "job_type": self.job_type,
            "params": dict(self.params),
            "batch_size": self.batch_size,
            "max_wait": self.max_wait,
            "mode": self.mode.value,
            "item_param": self.item_param,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_value(cls, stream_id: str, value: Any) -> StreamSpec:
        """Read a config setting's value. Raises InvalidStreamSettings."""
        try:
            wire = msgspec.convert(value, type=_SpecValue, strict=False)
            spec = cls(id=stream_id, **msgspec.structs.asdict(wire))
            return check(spec)
        except (msgspec.ValidationError, InvalidInput, TypeError, ValueError) as exc:
            raise InvalidStreamSettings(f"settings of stream {stream_id!r} are invalid: {exc}") from None


class _SpecValue(msgspec.Struct):
    owner_id: str
    job_type: str
    created_at: datetime
    name: str = ""
    source: str = HTTP_SOURCE
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    max_wait: float = DEFAULT_MAX_WAIT
    mode: StreamMode = StreamMode.BATCH
    item_param: str = "items"


def check(spec: StreamSpec) -> StreamSpec:
    """``spec`` if its fields are acceptable (the source's form is checked by its adapter).

    Raises InvalidInput naming the field.
    """
    if not 1 <= spec.batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch_size must be 1 to {MAX_BATCH_SIZE}", field="batch_size")
    if not 0 <= spec.max_wait <= MAX_WAIT:
        raise InvalidInput(f"max_wait must be 0 to {MAX_WAIT:g} seconds", field="max_wait")
    if not PARAM_NAME.fullmatch(spec.item_param):
        raise InvalidInput("item_param must be a parameter name ([A-Za-z_][A-Za-z0-9_]*)", field="item_param")
    if spec.item_param in spec.params:
        raise InvalidInput(f"params must not set {spec.item_param!r}: the items go there", field="params")
    if not 1 <= len(spec.job_type) <= 100:
        raise InvalidInput("job_type must be 1 to 100 characters", field="job_type")
    if len(spec.name) > 200:
        raise InvalidInput("name must be at most 200 characters", field="name")
    if spec.source != HTTP_SOURCE and "://" not in spec.source:
        raise InvalidInput(
            f"source must be {HTTP_SOURCE!r} or a queue URL (sqs://…, amqp://…)", field="source"
        )
    return spec


@attrs.frozen(kw_only=True)
class StreamState:
    """A stream's runtime: counters since creation, the pause flag and the runner's lease."""

    stream_id: str
    owner_id: str
    paused: bool = False
    #: Items stored (duplicates excluded).
    received: int = 0
    #: Items dropped because their key was seen before.
    duplicates: int = 0
    #: Items put into batches.
    batched: int = 0
    jobs_submitted: int = 0
    #: Batches whose job was refused (invalid params, unknown type): their error is on the batch.
    failed: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def pending(self) -> int:
        """Items received and not batched yet."""
        return self.received - self.batched


@attrs.frozen(kw_only=True)
class Item:
    """One unit of work from a source: ``key`` de-duplicates it within its stream."""

    key: str
    payload: Any

    @classmethod
    def of(cls, payload: Any, key: str | None = None) -> Item:
        """An item with ``key``, else the payload's own ``key`` field, else a hash of the payload."""
        if key is None and isinstance(payload, Mapping) and isinstance(payload.get("key"), str):
            key = payload["key"] or None
        if key is None:
            key = "sha256:" + hashlib.sha256(msgspec.json.encode(payload, order="sorted")).hexdigest()
        elif len(key) > MAX_KEY_LENGTH:
            key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return cls(key=key, payload=payload)


@attrs.frozen(kw_only=True)
class Batch:
    """Items that became (or are becoming) one job, ``job_id`` chosen before it is submitted."""

    id: str
    stream_id: str
    job_id: str
    status: BatchStatus
    item_count: int
    created_at: datetime
    submitted_at: datetime | None = None
    error: str | None = None
    #: The payloads, oldest first (filled for batches still to submit).
    items: tuple[Any, ...] = ()


@attrs.frozen
class AddResult:
    accepted: int
    duplicates: int


def job_params(spec: StreamSpec, items: Sequence[Any]) -> dict[str, Any]:
    """The params of a batch's job: the stream's ``params`` template plus its items.

    ``batch`` mode: ``params[item_param]`` is the list of item payloads.
    ``per_item`` mode (each batch holds one item): ``params[item_param]`` is the item's own
    ``item_param`` field when it is an object with one (``{"file": "<id>"}`` → ``file``),
    else the whole item.
    """
    if spec.mode is StreamMode.BATCH:
        return {**spec.params, spec.item_param: list(items)}
    (item,) = items
    value = item[spec.item_param] if isinstance(item, Mapping) and spec.item_param in item else item
    return {**spec.params, spec.item_param: value}


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_last_batch_id = ""
_batch_id_lock = threading.Lock()


def batch_ids(count: int) -> list[str]:
    """``count`` new ids, each greater than the last one this process made.

    Plain ids are random within a millisecond; batches, listed and submitted by id, must keep
    the order they were formed in, and several are formed in the same millisecond.
    """
    global _last_batch_id
    made: list[str] = []
    with _batch_id_lock:
        for _ in range(count):
            candidate = new_id()
            _last_batch_id = candidate if candidate > _last_batch_id else _successor(_last_batch_id)
            made.append(_last_batch_id)
    return made


def _successor(value: str) -> str:
    digits = list(value)
    for i in reversed(range(len(digits))):
        position = _CROCKFORD.index(digits[i])
        if position + 1 < len(_CROCKFORD):
            digits[i] = _CROCKFORD[position + 1]
            return "".join(digits)
        digits[i] = _CROCKFORD[0]
    raise OverflowError("id space exhausted")
