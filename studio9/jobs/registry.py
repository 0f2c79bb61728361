"""Job types: a name, a handler, a params schema and the limits the runtime enforces.

A handler is a plain function (run in a worker thread) or a coroutine function (run on
the event loop). It receives a ``JobContext`` and its decoded params, and returns a
JSON-able summary (or None). Params are validated against the type's msgspec schema at
submit time, so a job never reaches a worker with params it cannot use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import msgspec

from studio9.errors import InvalidInput
from studio9.jobs.context import JobContext

MAX_PARAMS_BYTES = 256 * 1024

Handler = Callable[[JobContext, Any], Any]


class UnknownJobType(InvalidInput):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown job type {name!r}; known types: {', '.join(known) or 'none'}", field="type"
        )


class RetryableError(Exception):
    """Raise from a handler for a failure worth another attempt (a flaky backend, say)."""


@attrs.frozen(kw_only=True)
class JobType:
    name: str
    handler: Handler
    params: type[msgspec.Struct]
    description: str = ""
    timeout: float = 3600.0
    max_attempts: int = 1
    #: Exceptions that make an attempt worth retrying (RetryableError always is).
    retry_on: tuple[type[BaseException], ...] = ()
    #: Whether an attempt whose worker died may simply run again. Set False for a handler with
    #: effects outside Studio9 that a second run would repeat (a payment, an e-mail): such a job
    #: fails ``lost`` instead, and someone decides.
    safe_to_rerun: bool = True

    def decode(self, params: Mapping[str, Any]) -> Any:
        """``params`` as the type's struct. Raises InvalidInput naming the field."""
        try:
            return msgspec.convert(dict(params), type=self.params, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"invalid params for {self.name}: {exc}", field=_field_of(exc)) from None

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, (RetryableError, *self.retry_on))

    def schema(self) -> dict[str, Any]:
        """The params JSON schema, with defaults, for ``GET /job-types``."""
        schema: dict[str, Any] = msgspec.json.schema(self.params)
        return schema


@attrs.define
class JobTypeRegistry:
    _types: dict[str, JobType] = attrs.field(factory=dict)

    def register(self, job_type: JobType) -> JobType:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} is registered twice")
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownJobType(name, sorted(self._types)) from None

    def __iter__(self) -> Iterator[JobType]:
        return iter(sorted(self._types.values(), key=lambda t: t.name))

    def validate(self, name: str, params: Mapping[str, Any]) -> tuple[JobType, dict[str, Any]]:
        """The job type and the params as they will be stored (defaults filled in).

        Raises:
            UnknownJobType: no type by that name.
            InvalidInput: params too large or not matching the schema.
        """
        job_type = self.get(name)
        size = len(msgspec.json.encode(params))
        if size > MAX_PARAMS_BYTES:
            raise InvalidInput(f"params are {size} bytes; the limit is {MAX_PARAMS_BYTES}", field="params")
        decoded = job_type.decode(params)
        stored: dict[str, Any] = msgspec.to_builtins(decoded)
        return job_type, stored


_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def _field_of(exc: msgspec.ValidationError) -> str:
    """``params.<path>`` of the offending field, from msgspec's message."""
    text = str(exc)
    path, named = _PATH.search(text), _NAMED.search(text)
    parts = [p for p in (path.group(1) if path else "", named.group(1) if named else "") if p]
    return ".".join(["params", *parts])
