"""The job types a process knows, by name, and the check of a submission against them.

A job type (``studio9.jobs.ports.JobType``) is registered once per process, by the composition
root: the job core's own (``studio9.jobs.builtin``) and those of other contexts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import msgspec

from studio9.errors import InvalidInput
from studio9.jobs.ports import JobType

MAX_PARAMS_BYTES = 256 * 1024


class UnknownJobType(InvalidInput):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"unknown job type {name!r}; known types: {', '.join(known) or 'none'}", field="type"
        )


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
