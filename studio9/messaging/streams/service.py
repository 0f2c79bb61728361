"""Use cases of message streams seen from users: create, read, change, pause, delete, push items.

Only the owner and admins see a stream (others get 404, as for jobs). Settings are written
to the config store directly, not through ``ConfigService``: that one lets admins only
write, while any user may own a stream; the ownership check here takes its place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.config.domain import ConfigSetting, SettingNotFound
from studio9.config.ports import ConfigStore
from studio9.errors import BackendUnavailable, Conflict, InvalidInput, PreconditionFailed, Studio9Error
from studio9.ids import new_id
from studio9.jobs.ports import JobQuery
from studio9.messaging.streams.domain import (
    MAX_ITEM_BYTES,
    MAX_ITEMS_PER_PUSH,
    SETTINGS_SERVICE,
    STREAM_ID,
    AddResult,
    Batch,
    BatchStatus,
    InvalidStreamSettings,
    Item,
    StreamNotFound,
    StreamSpec,
    StreamState,
    check,
)
from studio9.messaging.streams.ports import JobSubmitter, SourceOpener, StreamBacklog, StreamStates
from studio9.urls import redact, redact_values

log = structlog.get_logger()

#: Fields a PATCH may change (id, owner and creation time stay).
CHANGEABLE = frozenset(
    {"name", "source", "job_type", "params", "batch_size", "max_wait", "mode", "item_param"}
)
_TAGS = ("stream",)
_PAGE = 500
_CAS_TRIES = 20


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class BatchView:
    """A batch, and the status of the job it became (None until it was submitted, or when the
    job is gone): a batch record alone would say ``submitted`` for ever."""

    batch: Batch
    job_status: str | None


@attrs.frozen
class StreamView:
    """A stream as its owner sees it: settings and runtime state."""

    spec: StreamSpec
    state: StreamState


@attrs.define
class StreamService:
    settings: ConfigStore
    states: StreamStates
    backlog: StreamBacklog
    jobs: JobSubmitter
    #: Builds a queue source from its URL (the composition root's scheme table).
    open_source: SourceOpener | None = None
    #: Whether a job type of that name is registered.
    known_job_type: Callable[[str], bool] = lambda _: True
    clock: Callable[[], datetime] = utcnow
    #: Called after a stream is created or changed (the local runner picks it up at once).
    on_change: Callable[[], None] | None = None
    #: Whether a user of that id exists (the composition root's user store); None: unchecked.
    owner_exists: Callable[[str], Awaitable[bool]] | None = None

    async def create(self, actor: Principal, fields: Mapping[str, Any]) -> StreamView:
        """Create a stream owned by ``actor``. Raises InvalidInput naming the field."""
        now = self.clock()
        try:
            draft = StreamSpec(id=new_id().lower(), owner_id=actor.user_id, created_at=now, **_known(fields))
        except (TypeError, ValueError) as exc:  # a mode that is not one
            raise InvalidInput(str(exc), field="mode") from None
        spec = await self._validated(draft)
        # The state row first: a crash before the setting leaves a row no setting names
        # (invisible, harmless), never a stream without its counters.
        await self.states.ensure(spec.id, spec.owner_id, now)
        stored = await self.settings.put(self._setting(spec, actor.user_id, now), expected_version=0)
        if stored is None:
            raise Conflict(f"stream {spec.id} exists")
        log.info("stream_created", stream_id=spec.id, owner_id=spec.owner_id, source=_scheme(spec.source))
        self._changed()
        return await self._view(spec)

    async def get(self, actor: Principal, stream_id: str) -> StreamView:
        spec, _ = await self._own(actor, stream_id)
        return await self._view(spec)

    async def list(self, actor: Principal, *, limit: int, after: str | None) -> Sequence[StreamView]:
        """The actor's streams (an admin's: all) by id, after the id ``after``."""
        views: list[StreamView] = []
        for spec in await self.specs(after=after):
            if actor.owns(spec.owner_id):
                views.append(await self._view(spec))
                if len(views) >= limit:
                    break
        return views

    async def update(self, actor: Principal, stream_id: str, changes: Mapping[str, Any]) -> StreamView:
        """Change some settings (compare-and-set on the setting's version)."""
        spec, version = await self._own(actor, stream_id)
        changes = _without_redacted_echoes(spec, changes)
        try:
            draft = attrs.evolve(spec, **_known(changes))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(str(exc), field="mode") from None
        changed = await self._validated(draft)
        stored = await self.settings.put(
            self._setting(changed, actor.user_id, self.clock()), expected_version=version
        )
        if stored is None:
            raise PreconditionFailed(f"stream {stream_id} changed while you changed it; read it and retry")
        log.info("stream_changed", stream_id=stream_id, fields=sorted(changes))
        self._changed()
        return await self._view(changed)

    async def delete(self, actor: Principal, stream_id: str) -> None:
        """Remove the stream, its items and batches (its jobs stay)."""
        await self._own(actor, stream_id)
        # The setting first: runners stop serving a stream whose setting is gone.
        await self.settings.delete(SETTINGS_SERVICE, stream_id, expected_version=None, by=actor.user_id)
        await self.states.delete(stream_id)
        log.info("stream_deleted", stream_id=stream_id, by=actor.user_id)

    async def set_paused(self, actor: Principal, stream_id: str, paused: bool) -> StreamView:
        spec, _ = await self._own(actor, stream_id)
        await self.states.ensure(spec.id, spec.owner_id, self.clock())
        await self.states.set_paused(stream_id, paused, self.clock())
        log.info("stream_paused" if paused else "stream_resumed", stream_id=stream_id, by=actor.user_id)
        return await self._view(spec)

    async def push(self, actor: Principal, stream_id: str, payloads: Sequence[Any]) -> AddResult:
        """Store items pushed over HTTP (an ``http`` stream's only source)."""
        spec, _ = await self._own(actor, stream_id)
        if spec.pulls:
            raise Conflict(f"stream {stream_id} reads its items from {_scheme(spec.source)}://, not HTTP")
        if not 1 <= len(payloads) <= MAX_ITEMS_PER_PUSH:
            raise InvalidInput(f"send 1 to {MAX_ITEMS_PER_PUSH} items", field="items")
        items: list[Item] = []
        for index, payload in enumerate(payloads):
            if not isinstance(payload, Mapping):
                raise InvalidInput("each item must be a JSON object", field=f"items.{index}")
            if len(msgspec.json.encode(payload)) > MAX_ITEM_BYTES:
                raise InvalidInput(f"an item may be at most {MAX_ITEM_BYTES} bytes", field=f"items.{index}")
            key = payload.get("key")
            if key is not None and not (isinstance(key, str) and key):
                raise InvalidInput("key must be a non-empty string", field=f"items.{index}.key")
            items.append(Item.of(dict(payload)))
        now = self.clock()
        await self.states.ensure(spec.id, spec.owner_id, now)
        added = await self.backlog.add(stream_id, items, now)
        log.info("stream_items_pushed", stream_id=stream_id, accepted=added.accepted, dupes=added.duplicates)
        return added

    async def batches(
        self, actor: Principal, stream_id: str, *, limit: int, before: str | None
    ) -> Sequence[BatchView]:
        """The stream's batches, newest first, each with the status of the job it became."""
        await self._own(actor, stream_id)
        batches = await self.backlog.batches(stream_id, limit=limit, before=before)
        submitted = [b.job_id for b in batches if b.status is BatchStatus.SUBMITTED]
        jobs = await self.jobs.list(actor, JobQuery(ids=submitted, limit=len(submitted))) if submitted else ()
        statuses = {job.id: job.status.value for job in jobs}
        return [BatchView(batch, statuses.get(batch.job_id)) for batch in batches]

    # -- for the runner ------------------------------------------------------------------

    async def spec(self, stream_id: str) -> StreamSpec | None:
        """The stream's settings; None when it was deleted. Raises InvalidStreamSettings."""
        try:
            setting = await self.settings.get(SETTINGS_SERVICE, stream_id)
        except SettingNotFound:
            return None
        return StreamSpec.from_value(stream_id, setting.value)

    async def specs(self, *, after: str | None = None) -> Sequence[StreamSpec]:
        """Every stream's settings by id (unreadable ones are logged and left out)."""
        found: list[StreamSpec] = []
        while True:
            page = await self.settings.list(SETTINGS_SERVICE, tag=None, limit=_PAGE, after=after)
            for setting in page:
                try:
                    found.append(StreamSpec.from_value(setting.name, setting.value))
                except InvalidStreamSettings as exc:
                    log.warning("stream_settings_invalid", stream_id=setting.name, error=exc.message)
            if len(page) < _PAGE:
                return found
            after = page[-1].name

    async def pause_if_orphaned(self, spec: StreamSpec) -> bool:
        """Pause the stream and return True when its owner's user no longer exists, rather
        than submit jobs for nobody (deleting a user pauses or gives away their streams first;
        this catches one that slipped past, say, created while the deletion ran)."""
        if self.owner_exists is None or await self.owner_exists(spec.owner_id):
            return False
        await self.states.set_paused(spec.id, True, self.clock())
        log.warning("stream_paused_owner_missing", stream_id=spec.id, owner_id=spec.owner_id)
        return True

    # -- when an owner's user is deleted (``studio9.offboarding`` calls these) -------------

    async def pause_all_of(self, owner_id: str, *, by: str) -> int:
        """Pause every stream of ``owner_id``: it makes no more jobs (a queue source is no
        longer read, so its messages stay queued), while its settings, pending items and
        batches stay for admins to read, or delete. Idempotent; returns how many."""
        now = self.clock()
        theirs = [spec for spec in await self.specs() if spec.owner_id == owner_id]
        for spec in theirs:
            await self.states.ensure(spec.id, spec.owner_id, now)
            await self.states.set_paused(spec.id, True, now)
        log.info("streams_paused_with_owner", owner_id=owner_id, streams=len(theirs), by=by)
        return len(theirs)

    async def transfer_all_of(self, owner_id: str, to: str, *, by: str) -> int:
        """Give every stream of ``owner_id`` to the user ``to``: its next jobs are submitted as
        ``to``. Idempotent; returns how many moved. Raises BackendUnavailable."""
        moved = 0
        for spec in await self.specs():
            if spec.owner_id == owner_id and await self._give(spec.id, owner_id, to, by):
                moved += 1
        if moved:
            self._changed()
        log.info("streams_transferred", owner_id=owner_id, to=to, streams=moved, by=by)
        return moved

    # -- helpers -------------------------------------------------------------------------

    async def _give(self, stream_id: str, owner_id: str, to: str, by: str) -> bool:
        """Rewrite one stream's owner by compare-and-set; False when it is not ``owner_id``'s."""
        for _ in range(_CAS_TRIES):
            try:
                setting = await self.settings.get(SETTINGS_SERVICE, stream_id)
            except SettingNotFound:
                return False
            spec = StreamSpec.from_value(stream_id, setting.value)
            if spec.owner_id != owner_id:
                return False
            now = self.clock()
            # The state row first: should the setting's write fail, a retry still finds the
            # stream as ``owner_id``'s and redoes both.
            await self.states.ensure(stream_id, owner_id, now)
            await self.states.set_owner(stream_id, to, now)
            given = attrs.evolve(spec, owner_id=to)
            stored = await self.settings.put(self._setting(given, by, now), expected_version=setting.version)
            if stored is not None:
                return True
        raise BackendUnavailable(f"stream {stream_id} kept changing while its owner was changed; try again")

    async def _own(self, actor: Principal, stream_id: str) -> tuple[StreamSpec, int]:
        """The stream and its setting's version, if the actor may see it; else StreamNotFound."""
        if not STREAM_ID.fullmatch(stream_id):
            raise StreamNotFound(stream_id)
        try:
            setting = await self.settings.get(SETTINGS_SERVICE, stream_id)
        except SettingNotFound:
            raise StreamNotFound(stream_id) from None
        spec = StreamSpec.from_value(stream_id, setting.value)
        if not actor.owns(spec.owner_id):
            raise StreamNotFound(stream_id)
        return spec, setting.version

    async def _view(self, spec: StreamSpec) -> StreamView:
        state = await self.states.get(spec.id)
        if state is None:  # a setting written by hand, or a half-made stream: give it its row
            await self.states.ensure(spec.id, spec.owner_id, self.clock())
            state = await self.states.get(spec.id)
        if state is None:
            raise StreamNotFound(spec.id)
        return StreamView(spec, state)

    async def _validated(self, spec: StreamSpec) -> StreamSpec:
        check(spec)
        if not self.known_job_type(spec.job_type):
            raise InvalidInput(f"unknown job type {spec.job_type!r}", field="job_type")
        if spec.pulls:
            if self.open_source is None:
                raise InvalidInput("only 'http' sources are available here", field="source")
            try:
                source = self.open_source(spec.source)
            except Studio9Error as exc:  # ConfigError from the adapter: the URL cannot be used
                raise InvalidInput(f"source: {exc.message}", field="source") from None
            await source.aclose()
        return spec

    def _setting(self, spec: StreamSpec, by: str, now: datetime) -> ConfigSetting:
        return ConfigSetting(
            service=SETTINGS_SERVICE,
            name=spec.id,
            value=spec.to_value(),
            tags=_TAGS,
            created_at=spec.created_at,
            updated_at=now,
            updated_by=by,
        )

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _known(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - CHANGEABLE)
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}", field=unknown[0])
    return dict(fields)


def _scheme(source: str) -> str:
    return source.split("://", 1)[0]


def _without_redacted_echoes(spec: StreamSpec, changes: Mapping[str, Any]) -> Mapping[str, Any]:
    """``changes`` without a ``source`` or ``params`` that only echo what reads show (their
    credentials redacted): a client that sends back what it read must not store ``***``."""
    echoes = {
        "source": redact(spec.source),
        "params": redact_values(dict(spec.params)),
    }
    current = {"source": spec.source, "params": dict(spec.params)}
    return {k: v for k, v in changes.items() if not (k in echoes and v == echoes[k] != current[k])}
