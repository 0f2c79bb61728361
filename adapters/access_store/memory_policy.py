"""The access policy's reads on the in-memory access store (``MemoryAccessStore`` inherits them)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from studio9.access.domain import (
    Grant,
    GroupMember,
    MemberKind,
    ProjectAsset,
    ProjectMember,
    Share,
    email_key,
    group_key,
    project_key,
    user_key,
)

_MemberKey = tuple[str, MemberKind, str]


class MemoryPolicyReads:
    """``studio9.access.ports.PolicyReads`` over the store's dictionaries, under its lock."""

    _lock: threading.Lock
    _members: dict[tuple[str, str], GroupMember]
    _shares: dict[str, Share]
    _links: dict[tuple[str, str], ProjectAsset]
    _project_members: dict[_MemberKey, ProjectMember]

    async def grants(self, asset_id: str, keys: Collection[str]) -> Sequence[Grant]:
        wanted = set(keys)
        with self._lock:
            found = [
                Grant(source="share", via=s.id, permission=s.permission)
                for s in self._shares.values()
                if s.asset_id == asset_id and s.grantee_key in wanted
            ]
            linked = {project for project, asset in self._links if asset == asset_id}
            found += [
                Grant(source="project", via=m.project_id, permission=m.permission)
                for m in self._project_members.values()
                if m.project_id in linked and m.member_key in wanted
            ]
        return sorted(found, key=lambda g: (g.source, g.via, g.permission))

    async def member_keys(self, user_id: str, email: str | None) -> frozenset[str]:
        keys = {user_key(user_id)} | ({email_key(email)} if email is not None else set())
        with self._lock:
            groups = {group for group, user in self._members if user == user_id}
            keys.update(group_key(group) for group in groups)
            keys.update(
                project_key(m.project_id)
                for m in self._project_members.values()
                if m.member_id in (groups if m.member_kind is MemberKind.GROUP else {user_id})
            )
        return frozenset(keys)

    async def reader_keys(self, asset_id: str, owner_id: str) -> frozenset[str]:
        with self._lock:
            keys = {user_key(owner_id)}
            keys.update(s.grantee_key for s in self._shares.values() if s.asset_id == asset_id)
            keys.update(project_key(project) for project, asset in self._links if asset == asset_id)
        return frozenset(keys)
