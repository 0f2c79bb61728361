"""Access store held in dictionaries: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.access``)
Features: thread-safe · the SQL store's unique names and cascades, kept by hand
Extra:    none

What the SQL tables get from foreign keys to ``assets`` this store gets from the catalog next to
it: given the catalog (``assets``), it refuses a share or link of an unknown asset, and
``asset_deleted`` (which ``MemoryDatabase`` has the catalog call on every delete) takes an asset's
shares and links away. Given ``outbox`` (``MemoryJobStore.enqueue``), a write that changes an
asset's reader keys (shares, project links) appends an ``asset`` entry per asset concerned under
the lock, once the change is made: what the SQL store writes in the change's transaction. The
policy's reads are ``memory_policy``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import attrs

from adapters.access_store.memory_policy import MemoryPolicyReads
from studio9.access.domain import (
    UNSET,
    Folder,
    FolderNameTaken,
    FolderNotFound,
    Group,
    GroupMember,
    GroupNameTaken,
    GroupNotFound,
    MemberKind,
    Project,
    ProjectAsset,
    ProjectMember,
    ProjectNameTaken,
    ProjectNotFound,
    Share,
    ShareNotFound,
    Unset,
    group_key,
    project_key,
)
from studio9.catalog.domain import AssetNotFound
from studio9.catalog.ports import CatalogStore

if TYPE_CHECKING:
    from studio9.access.ports import AccessStore

_MemberKey = tuple[str, MemberKind, str]
#: Appends outbox entries: ``outbox(topic, ref_ids)``.
Outbox = Callable[[str, Sequence[str]], None]


class MemoryAccessStore(MemoryPolicyReads):
    def __init__(self, assets: CatalogStore | None = None, *, outbox: Outbox | None = None) -> None:
        self._assets = assets
        self._outbox = outbox
        self._lock = threading.Lock()
        self._groups: dict[str, Group] = {}
        self._members: dict[tuple[str, str], GroupMember] = {}
        self._shares: dict[str, Share] = {}
        self._projects: dict[str, Project] = {}
        self._folders: dict[str, Folder] = {}
        self._links: dict[tuple[str, str], ProjectAsset] = {}
        self._project_members: dict[_MemberKey, ProjectMember] = {}

    def asset_deleted(self, asset_id: str) -> None:
        """Forget the asset's shares and project links (the SQL foreign keys' ON DELETE CASCADE)."""
        with self._lock:
            self._shares = {i: s for i, s in self._shares.items() if s.asset_id != asset_id}
            self._links = {k: link for k, link in self._links.items() if link.asset_id != asset_id}

    # -- groups -----------------------------------------------------------------------------------

    async def add_group(self, group: Group) -> None:
        with self._lock:
            if any(g.name == group.name for g in self._groups.values()):
                raise GroupNameTaken(group.name)
            self._groups[group.id] = group

    async def get_group(self, group_id: str) -> Group:
        with self._lock:
            return _found(self._groups, group_id, GroupNotFound)

    async def group_named(self, name: str) -> Group:
        with self._lock:
            for group in self._groups.values():
                if group.name == name:
                    return group
        raise GroupNotFound(name)

    async def list_groups(
        self, *, member: str | None, limit: int, after: str | None = None
    ) -> Sequence[Group]:
        with self._lock:
            found = [
                g
                for g in self._groups.values()
                if (member is None or (g.id, member) in self._members) and (after is None or g.id < after)
            ]
        return _newest(found, limit)

    async def delete_group(self, group_id: str) -> None:
        with self._lock:
            if self._groups.pop(group_id, None) is None:
                raise GroupNotFound(group_id)
            self._members = {k: m for k, m in self._members.items() if m.group_id != group_id}
            revoked = [s.asset_id for s in self._shares.values() if s.grantee_key == group_key(group_id)]
            self._shares = {i: s for i, s in self._shares.items() if s.grantee_key != group_key(group_id)}
            self._project_members = {
                k: m for k, m in self._project_members.items() if m.member_key != group_key(group_id)
            }
            self._changed(revoked)

    async def add_member(self, member: GroupMember) -> bool:
        with self._lock:
            _found(self._groups, member.group_id, GroupNotFound)
            key = (member.group_id, member.user_id)
            if key in self._members:
                return False
            self._members[key] = member
            return True

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        with self._lock:
            return self._members.pop((group_id, user_id), None) is not None

    async def members(self, group_id: str) -> Sequence[str]:
        with self._lock:
            return sorted(user for group, user in self._members if group == group_id)

    async def groups_of(self, user_id: str) -> Sequence[str]:
        with self._lock:
            return sorted(group for group, user in self._members if user == user_id)

    # -- shares -----------------------------------------------------------------------------------

    async def put_share(self, share: Share) -> Share:
        await self._check_asset(share.asset_id)
        with self._lock:
            existing = next((s for s in self._shares.values() if _same_grant(s, share)), None)
            stored = share if existing is None else attrs.evolve(existing, permission=share.permission)
            self._shares[stored.id] = stored
            self._changed([stored.asset_id])
            return stored

    async def get_share(self, share_id: str) -> Share:
        with self._lock:
            return _found(self._shares, share_id, ShareNotFound)

    async def delete_share(self, share_id: str) -> None:
        with self._lock:
            revoked = self._shares.pop(_found(self._shares, share_id, ShareNotFound).id)
            self._changed([revoked.asset_id])

    async def shares_of_asset(self, asset_id: str) -> Sequence[Share]:
        with self._lock:
            return sorted((s for s in self._shares.values() if s.asset_id == asset_id), key=lambda s: s.id)

    async def shares_given(self, user_id: str, *, limit: int, after: str | None = None) -> Sequence[Share]:
        with self._lock:
            found = [
                s
                for s in self._shares.values()
                if s.granted_by == user_id and (after is None or s.id < after)
            ]
        return _newest(found, limit)

    async def shares_received(
        self, keys: Collection[str], *, limit: int, after: str | None = None
    ) -> Sequence[Share]:
        wanted = set(keys)
        with self._lock:
            found = [
                s
                for s in self._shares.values()
                if s.grantee_key in wanted and (after is None or s.id < after)
            ]
        return _newest(found, limit)

    # -- projects ---------------------------------------------------------------------------------

    async def add_project(self, project: Project) -> None:
        with self._lock:
            self._check_project_name(project)
            self._projects[project.id] = project

    async def get_project(self, project_id: str) -> Project:
        with self._lock:
            return _found(self._projects, project_id, ProjectNotFound)

    async def update_project(
        self, project_id: str, *, name: str | None = None, description: str | None = None, at: datetime
    ) -> Project:
        with self._lock:
            current = _found(self._projects, project_id, ProjectNotFound)
            changed = attrs.evolve(
                current,
                name=current.name if name is None else name,
                description=current.description if description is None else description,
                updated_at=at,
            )
            self._check_project_name(changed)
            self._projects[project_id] = changed
            return changed

    async def delete_project(self, project_id: str) -> None:
        with self._lock:
            if self._projects.pop(project_id, None) is None:
                raise ProjectNotFound(project_id)
            self._folders = {i: f for i, f in self._folders.items() if f.project_id != project_id}
            unlinked = [link.asset_id for link in self._links.values() if link.project_id == project_id]
            self._links = {k: link for k, link in self._links.items() if link.project_id != project_id}
            self._project_members = {
                k: m for k, m in self._project_members.items() if m.project_id != project_id
            }
            self._changed(unlinked)

    async def list_projects(
        self,
        *,
        keys: Collection[str] | None,
        owner_id: str | None = None,
        limit: int,
        after: str | None = None,
    ) -> Sequence[Project]:
        with self._lock:
            if keys is None:
                visible = set(self._projects)
            else:
                wanted = set(keys)
                visible = {p.id for p in self._projects.values() if p.owner_id == owner_id}
                visible |= {i for i in self._projects if project_key(i) in wanted}
                visible |= {m.project_id for m in self._project_members.values() if m.member_key in wanted}
            found = [self._projects[i] for i in visible if after is None or i < after]
        return _newest(found, limit)

    async def add_folder(self, folder: Folder) -> None:
        with self._lock:
            _found(self._projects, folder.project_id, ProjectNotFound)
            if any(
                f.project_id == folder.project_id and f.name == folder.name for f in self._folders.values()
            ):
                raise FolderNameTaken(folder.name)
            self._folders[folder.id] = folder

    async def get_folder(self, folder_id: str) -> Folder:
        with self._lock:
            return _found(self._folders, folder_id, FolderNotFound)

    async def list_folders(self, project_id: str) -> Sequence[Folder]:
        with self._lock:
            return sorted(
                (f for f in self._folders.values() if f.project_id == project_id), key=lambda f: f.id
            )

    async def delete_folder(self, folder_id: str) -> None:
        with self._lock:
            if self._folders.pop(folder_id, None) is None:
                raise FolderNotFound(folder_id)
            moved = [key for key, link in self._links.items() if link.folder_id == folder_id]
            for key in moved:
                self._links[key] = attrs.evolve(self._links[key], folder_id=None)
            self._changed([asset for _, asset in moved])

    async def link_asset(self, link: ProjectAsset) -> ProjectAsset:
        await self._check_asset(link.asset_id)
        with self._lock:
            _found(self._projects, link.project_id, ProjectNotFound)
            if (
                link.folder_id is not None
                and _found(self._folders, link.folder_id, FolderNotFound).project_id != link.project_id
            ):
                raise FolderNotFound(link.folder_id)
            key = (link.project_id, link.asset_id)
            existing = self._links.get(key)
            stored = link if existing is None else attrs.evolve(existing, folder_id=link.folder_id)
            self._links[key] = stored
            self._changed([link.asset_id])
            return stored

    async def unlink_asset(self, project_id: str, asset_id: str) -> bool:
        with self._lock:
            if self._links.pop((project_id, asset_id), None) is None:
                return False
            self._changed([asset_id])
            return True

    async def project_assets(
        self,
        project_id: str,
        *,
        folder_id: str | Unset | None = UNSET,
        limit: int,
        after: str | None = None,
    ) -> Sequence[ProjectAsset]:
        with self._lock:
            found = [
                link
                for (project, asset), link in self._links.items()
                if project == project_id
                and (folder_id is UNSET or link.folder_id == folder_id)
                and (after is None or asset < after)
            ]
        return sorted(found, key=lambda link: link.asset_id, reverse=True)[:limit]

    async def projects_of_asset(self, asset_id: str) -> Sequence[str]:
        with self._lock:
            return sorted(project for project, asset in self._links if asset == asset_id)

    async def folders_of_asset(self, asset_id: str) -> Sequence[str]:
        with self._lock:
            return sorted(
                link.folder_id
                for link in self._links.values()
                if link.asset_id == asset_id and link.folder_id is not None
            )

    async def put_member(self, member: ProjectMember) -> ProjectMember:
        with self._lock:
            _found(self._projects, member.project_id, ProjectNotFound)
            key = (member.project_id, member.member_kind, member.member_id)
            existing = self._project_members.get(key)
            stored = member if existing is None else attrs.evolve(existing, permission=member.permission)
            self._project_members[key] = stored
            return stored

    async def remove_member_of_project(
        self, project_id: str, member_kind: MemberKind, member_id: str
    ) -> bool:
        with self._lock:
            return self._project_members.pop((project_id, member_kind, member_id), None) is not None

    async def project_members(self, project_id: str) -> Sequence[ProjectMember]:
        with self._lock:
            found = [m for m in self._project_members.values() if m.project_id == project_id]
        return sorted(found, key=lambda m: (m.member_kind != MemberKind.USER, m.member_id))

    # -- under the lock ---------------------------------------------------------------------------

    def _changed(self, asset_ids: Sequence[str]) -> None:
        """After a change of these assets' reader keys: their outbox entries."""
        if self._outbox is not None and asset_ids:
            self._outbox("asset", asset_ids)

    async def _check_asset(self, asset_id: str) -> None:
        """Outside the lock: the foreign key to ``assets`` (the catalog takes its own lock)."""
        if self._assets is not None and not await self._assets.find([asset_id]):
            raise AssetNotFound(asset_id)

    def _check_project_name(self, project: Project) -> None:
        """The unique (owner, name) of the SQL table."""
        for other in self._projects.values():
            if other.id != project.id and (other.owner_id, other.name) == (project.owner_id, project.name):
                raise ProjectNameTaken(project.name)


_T = TypeVar("_T")
_Dated = TypeVar("_Dated", Group, Share, Project)


def _found(table: dict[str, _T], key: str, missing: Callable[[str], Exception]) -> _T:
    try:
        return table[key]
    except KeyError:
        raise missing(key) from None


def _same_grant(one: Share, other: Share) -> bool:
    """The unique (asset, grantee kind, grantee) of the SQL table."""
    return (one.asset_id, one.grantee_kind, one.grantee) == (
        other.asset_id,
        other.grantee_kind,
        other.grantee,
    )


def _newest(found: list[_Dated], limit: int) -> list[_Dated]:
    return sorted(found, key=lambda item: item.id, reverse=True)[:limit]


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[AccessStore] = MemoryAccessStore
