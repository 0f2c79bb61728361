"""Domain events for outside listeners (job state changes, config changes).

Job events are derived from the transactional outbox by the relay, so they are published
at least once and never for a change that was rolled back; config events are published
right after their write. Consumers de-duplicate on ``(subject_id, version)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Event:
    """``topic`` is dotted and routable (``job.completed``); ``payload`` is JSON-able."""

    topic: str
    subject_id: str
    version: int
    at: datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "subject_id": self.subject_id,
            "version": self.version,
            "at": self.at.isoformat(),
            "payload": dict(self.payload),
        }

    @classmethod
    def from_json(cls, body: str | bytes) -> Event:
        """The event ``to_json_dict`` wrote. Raises ValueError for anything else."""
        try:
            data = json.loads(body)
            payload = data.get("payload") or {}
            if not isinstance(payload, dict):
                raise TypeError("payload is not an object")
            return cls(
                topic=str(data["topic"]),
                subject_id=str(data["subject_id"]),
                version=int(data["version"]),
                at=datetime.fromisoformat(data["at"]),
                payload=payload,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not an event: {type(exc).__name__} {exc}") from exc


#: Called with each event a subscriber delivers.
EventHandler = Callable[[Event], None]
#: Called each time delivery (re)starts: events published meanwhile may have been missed.
GapHandler = Callable[[], None]
