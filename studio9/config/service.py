"""Use cases of config settings: admins write, everyone authenticated reads, nothing is lost.

Settings that describe a user's object (a stream's, under ``streams``) are read by its owner
and admins only (``owned``); to anyone else they do not exist, as the object does not.

Every change publishes ``config.updated`` / ``config.deleted`` (payload: service, name,
version). ``get`` always reads the store (the HTTP API's ETags must be current on every
replica); ``cached`` serves in-process readers (job-type defaults, embedding programs) from a
cache that forgets an entry on a write here, on the change event of a write anywhere (where
the events adapter is an ``EventSubscriber`` and the process is ``listening``: bootstrap and
``processes.running`` wire ``on_event`` and ``on_gap``), forgets everything when events may
have been missed, and in any case after ``cache_seconds`` (the safety net for a lost event).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.config.domain import (
    MAX_VALUE_BYTES,
    ConfigSetting,
    ConfigSettingVersion,
    SettingNotFound,
    check_names,
    check_tags,
)
from studio9.config.ports import ConfigStore
from studio9.errors import InvalidInput, PermissionDenied, PreconditionFailed
from studio9.messaging.domain import Event
from studio9.messaging.ports import EventPublisher

log = structlog.get_logger()


def utcnow() -> datetime:
    return datetime.now(UTC)


#: Reads the owner (a user id) out of the value of a setting that describes a user's object.
OwnerOf = Callable[[Any], str | None]


@attrs.define
class ConfigService:
    store: ConfigStore
    events: EventPublisher | None = None
    cache_seconds: float = 5.0
    clock: Callable[[], datetime] = utcnow
    #: Services whose settings describe users' objects (``streams``: a stream's settings), with
    #: how to find the owner in a value. Their settings follow the object's access: a reader who
    #: is neither its owner nor an admin is told they do not exist, like the object itself.
    owned: Mapping[str, OwnerOf] = attrs.field(factory=dict)
    _cache: dict[tuple[str, str], tuple[Any, float]] = attrs.field(factory=dict, init=False)
    # Bumped by every invalidation: a store read that an invalidation overtook is not cached,
    # or an event arriving while ``cached`` awaits the store would be undone by its answer.
    _generation: int = attrs.field(default=0, init=False)

    async def put(
        self,
        actor: Principal,
        service: str,
        name: str,
        value: Any,
        tags: Sequence[str],
        *,
        if_match: str | None = None,
    ) -> tuple[ConfigSetting, bool]:
        """Create or replace; returns the setting and whether it was created.

        Raises:
            PermissionDenied: not an admin.
            InvalidInput: bad names, tags, or a value over 64 KiB.
            PreconditionFailed: ``if_match`` is not the current ETag.
        """
        _require_admin(actor)
        check_names(service, name)
        clean_tags = check_tags(tags)
        size = len(msgspec.json.encode(value))
        if size > MAX_VALUE_BYTES:
            raise InvalidInput(f"value is {size} bytes; the limit is {MAX_VALUE_BYTES}", field="value")
        expected = _version_of(if_match)
        try:
            current: ConfigSetting | None = await self.store.get(service, name)
        except SettingNotFound:
            current = None
        now = self.clock()
        setting = ConfigSetting(
            service=service,
            name=name,
            value=value,
            tags=clean_tags,
            version=(current.version + 1) if current else 1,
            created_at=current.created_at if current else now,
            updated_at=now,
            updated_by=actor.user_id,
        )
        stored = await self.store.put(setting, expected_version=expected)
        if stored is None:
            raise PreconditionFailed(
                f"config setting {service}/{name} changed since you read it (If-Match failed)"
            )
        await self._changed(stored.service, stored.name, stored.version, "config.updated")
        return stored, current is None

    async def get(self, actor: Principal, service: str, name: str) -> ConfigSetting:
        """The setting. Raises SettingNotFound, also for another user's object's setting."""
        check_names(service, name)
        setting = await self.store.get(service, name)
        if not self._may_read(actor, service, setting.value):
            raise SettingNotFound(service, name)
        return setting

    async def delete(self, actor: Principal, service: str, name: str, *, if_match: str | None = None) -> None:
        _require_admin(actor)
        check_names(service, name)
        current = await self.store.get(service, name)
        expected = _version_of(if_match)
        if not await self.store.delete(service, name, expected_version=expected, by=actor.user_id):
            raise PreconditionFailed(
                f"config setting {service}/{name} changed since you read it (If-Match failed)"
            )
        await self._changed(service, name, current.version + 1, "config.deleted")

    async def list(
        self, actor: Principal, service: str, *, tag: str | None, limit: int, after: str | None
    ) -> Sequence[ConfigSetting]:
        check_names(service, "x")
        if service not in self.owned or actor.is_admin:
            return await self.store.list(service, tag=tag, limit=limit, after=after)
        # Another user's settings are skipped, so a page is filled from as many reads as it takes.
        found: list[ConfigSetting] = []
        while len(found) < limit:
            page = await self.store.list(service, tag=tag, limit=limit, after=after)
            found.extend(s for s in page if self._may_read(actor, service, s.value))
            if len(page) < limit:
                break
            after = page[-1].name
        return found[:limit]

    async def history(
        self, actor: Principal, service: str, name: str, *, limit: int
    ) -> Sequence[ConfigSettingVersion]:
        check_names(service, name)
        versions = await self.store.history(service, name, limit=limit)
        if not versions:
            raise SettingNotFound(service, name)
        if service in self.owned and not actor.is_admin:
            # Whose the object is now (its newest value): an owner sees its whole history.
            latest = next((v.value for v in versions if not v.deleted), None)
            if latest is None or not self._may_read(actor, service, latest):
                raise SettingNotFound(service, name)
        return versions

    def _may_read(self, actor: Principal, service: str, value: Any) -> bool:
        owner_of = self.owned.get(service)
        return owner_of is None or actor.is_admin or owner_of(value) == actor.user_id

    async def cached(self, service: str, name: str) -> Any:
        """The value, or None when the setting does not exist; for in-process readers."""
        key = (service, name)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[1] < self.cache_seconds:
            return hit[0]
        generation, read_at = self._generation, time.monotonic()
        try:
            value = (await self.store.get(service, name)).value
        except SettingNotFound:
            value = None
        if generation == self._generation:
            self._cache[key] = (value, read_at)
        return value

    def invalidate(self, service: str, name: str) -> None:
        self._generation += 1
        self._cache.pop((service, name), None)

    def invalidate_all(self) -> None:
        """Forget every cached value (events may have been missed: a subscriber reconnected)."""
        self._generation += 1
        if self._cache:
            log.info("config_cache_cleared", entries=len(self._cache))
        self._cache.clear()

    def on_event(self, event: Event) -> None:
        """Subscriber for change events from any process (this one too): forget that setting."""
        if not event.topic.startswith("config."):
            return
        service, name = event.payload.get("service"), event.payload.get("name")
        if isinstance(service, str) and isinstance(name, str):
            self.invalidate(service, name)
        else:  # not ours to parse: the only safe reading is "something changed"
            self.invalidate_all()

    def on_gap(self) -> None:
        """Subscriber callback for "events may have been missed" (a reconnect)."""
        self.invalidate_all()

    async def _changed(self, service: str, name: str, version: int, topic: str) -> None:
        self.invalidate(service, name)
        log.info("config_setting_changed", service=service, name=name, version=version, change=topic)
        if self.events is not None:
            event = Event(
                topic=topic,
                subject_id=f"{service}/{name}",
                version=version,
                at=self.clock(),
                payload={"service": service, "name": name, "version": version},
            )
            try:
                await self.events.publish([event])
            except Exception:  # the write happened; listeners catch up through the cache lifetime
                log.warning("config_event_failed", service=service, name=name, exc_info=True)


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise PermissionDenied("changing config settings needs the admin role")


def _version_of(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(raw)
    except ValueError:
        raise PreconditionFailed(f"If-Match {if_match!r} is not an ETag of this setting") from None
