"""OpenLineage run events to the event bus and, optionally, to an OpenLineage HTTP endpoint.

URL:      ``STUDIO9_OPENLINEAGE_URL``, the endpoint's full URL (Marquez: ``http://host:5000/api/v1/lineage``);
          empty: the event bus only
Features: ``LineageEvents`` · each event published on the bus (topic ``openlineage.run``) and
          POSTed as JSON · never raises: a refusal is logged (URL credentials redacted), the job goes on
Extra:    none (httpx is a core dependency)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import structlog

from studio9.messaging.domain import Event
from studio9.messaging.ports import EventPublisher
from studio9.urls import redact

__all__ = ["TOPIC", "HttpLineageSink"]

log = structlog.get_logger()

TOPIC: Final = "openlineage.run"
#: The bus's ``(subject_id, version)`` de-duplication: one START, then one end, per run.
_ORDER: Final = {"START": 1, "RUNNING": 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}


class HttpLineageSink:
    """Publishes each run event on ``events`` and POSTs it to ``url`` when one is given."""

    def __init__(self, events: EventPublisher, url: str = "", *, timeout: float) -> None:
        self.events, self.url, self.timeout = events, url, timeout

    async def emit(self, event: Mapping[str, Any]) -> None:
        await self._publish(event)
        if self.url:
            await self._post(event)

    async def _publish(self, event: Mapping[str, Any]) -> None:
        try:
            bus_event = Event(
                topic=TOPIC,
                subject_id=str(event["run"]["runId"]),
                version=_ORDER.get(str(event.get("eventType")), 4),
                at=_time_of(event),
                payload=dict(event),
            )
            await self.events.publish([bus_event])
        except Exception as exc:  # lineage must never fail the job that emits it
            log.warning("openlineage_publish_failed", error=type(exc).__name__)

    async def _post(self, event: Mapping[str, Any]) -> None:
        # A client per event: a few events per job, and no connection outlives the loop it ran on.
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json=dict(event))
            if response.status_code >= 400:
                log.warning("openlineage_post_refused", url=redact(self.url), status=response.status_code)
        except Exception as exc:  # the message may carry the URL: only its type is logged
            log.warning("openlineage_post_failed", url=redact(self.url), error=type(exc).__name__)


def _time_of(event: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(event["eventTime"]))
    except (KeyError, ValueError):
        return datetime.now(UTC)
