"""What becomes of a user's jobs, files, assets and streams when an admin deletes the user.

The auth context deletes users but may not use another context's service, so it asks its
``OwnedWork`` port to settle what the user owns; this use case implements that port over the
job and stream services and the file records, and the composition root wires it in.

* **Without a transfer** (``DELETE /api/v1/users/{id}``): the user's streams are paused and
  their unfinished jobs cancelled (queued ones at once, running ones asked to stop). Finished
  jobs, files, streams and predictions stay as they are, readable by admins.
* **With one** (``?transfer_to=<user id>``, as the original's ``transferOwnershipTo``): their
  streams, jobs (finished ones included), assets and files become that user's (refused, with
  nothing deleted, when that user already has a library asset of the same kind and name). Predictions keep the
  owner they were imported under (it is part of their import key); admins read them by owner.

Streams go first, so that none submits a job for the user while their jobs are being dealt
with. Every step is idempotent and the user is deleted only after all of them succeeded, so a
failure leaves a user who can be deleted again by the same request.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import structlog

from studio9.catalog.ports import CatalogStore
from studio9.files.ports import FileRecords
from studio9.jobs.service import JobService
from studio9.messaging.streams.service import StreamService

log = structlog.get_logger()


@attrs.frozen
class UserOffboarding:
    """``studio9.auth.ports.OwnedWork`` over the job and stream services and the file records."""

    jobs: JobService
    streams: StreamService
    files: FileRecords
    assets: CatalogStore

    async def settle(self, user_id: str, *, transfer_to: str | None, by: str) -> None:
        if transfer_to is None:
            await self.streams.pause_all_of(user_id, by=by)
            await self.jobs.cancel_all_of(user_id, by=by)
            return
        await self.streams.transfer_all_of(user_id, transfer_to, by=by)
        await self.jobs.transfer_all_of(user_id, transfer_to, by=by)
        assets = await self.assets.transfer(user_id, transfer_to, at=datetime.now(UTC))
        log.info("assets_transferred", owner_id=user_id, to=transfer_to, assets=assets, by=by)
        moved = await self.files.transfer(user_id, transfer_to)
        log.info("files_transferred", owner_id=user_id, to=transfer_to, files=moved, by=by)
