"""Jobs in the search index: the searchable projection of a job, and job search over it.

A job's document (``job_document``) holds its type, status, params, messages, heartbeats'
messages, error and result as text, its type and status as filters, and a summary to show.
``IndexedJobSearch`` answers the job core's ``JobSearch`` port from the index, then reads the
jobs themselves from the job store (the index may lag; the store is the truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
import msgspec

from studio9.auth.domain import Principal
from studio9.jobs.domain import Heartbeat, Job
from studio9.jobs.ports import JobQuery, JobStore
from studio9.metadata.domain import SearchDocument, SearchQuery
from studio9.metadata.ports import SearchIndex
from studio9.urls import redact_values

KIND = "job"
_TEXT_LIMIT = 20_000


def job_document(job: Job, heartbeats: Sequence[Heartbeat], read_at: datetime) -> SearchDocument:
    """The searchable projection of a job: its text, its filters, a summary to show."""
    messages = list(dict.fromkeys(b.message for b in heartbeats if b.message))
    parts = [
        job.type,
        job.status.value,
        _json_text(redact_values(job.params)),  # a URL's password is nobody's search term
        job.message or "",
        *messages,
    ]
    if job.error:
        parts += [job.error.code, job.error.message]
    if job.result:
        parts.append(_json_text(redact_values(job.result)))
    body = {
        "type": job.type,
        "status": job.status.value,
        "submitted_at": job.submitted_at.isoformat(),
        "progress": job.progress,
    }
    return SearchDocument(
        id=job.id,
        kind=KIND,
        owner_id=job.owner_id,
        text=" ".join(parts)[:_TEXT_LIMIT],
        fields={"type": job.type, "status": job.status.value},
        updated_at=read_at,
        body=body,
    )


def _json_text(value: Any) -> str:
    # UTF-8 as it is: ``json.dumps`` escaped non-ASCII letters, so "café" in a job's params
    # was indexed as the words "caf" and "u00e9" and no search for it matched.
    return _JSON_ENCODE(value).decode()


_JSON_ENCODE = msgspec.json.Encoder(enc_hook=str).encode


@attrs.define
class IndexedJobSearch:
    """Full-text job search for the API, scoped to what the caller may see (``JobSearch``)."""

    index: SearchIndex
    store: JobStore

    async def search(
        self, actor: Principal, text: str, query: JobQuery, *, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        filters: dict[str, Any] = {}
        if query.type:
            filters["type"] = query.type
        if query.status:
            filters["status"] = query.status.value
        owner = query.owner_id if actor.is_admin else actor.user_id
        page = await self.index.search(
            SearchQuery(
                kind=KIND, text=text, filters=filters, owner_id=owner, limit=query.limit, cursor=cursor
            )
        )
        ids = [hit.id for hit in page.items]
        found = {j.id: j for j in await self.store.list(JobQuery(ids=ids, limit=max(1, len(ids))))}
        return [found[i] for i in ids if i in found], page.next_cursor
