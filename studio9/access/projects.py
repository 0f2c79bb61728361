"""Use cases of projects: an owner's named collection of assets, in flat folders, for its members.

What a caller may do with a project (``catalog.domain.Access``): its owner and admins own it
(rename, delete, manage members); a member, named directly or through one of their groups,
has the permission of their membership (the best one, when several apply): ``read`` sees the
project, its folders, links and members, ``write`` also renames it, makes and deletes folders
and links and unlinks assets. Anyone else gets 404 on every route, as if it did not exist; one
who may read but not do the change asked gets 403.

Linking an asset gives every member of the project access to it, so only who owns the asset
(its owner, an admin) may link it; its owner may also take it out of a project again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs
import structlog

from studio9.access.domain import (
    UNSET,
    Folder,
    FolderNotFound,
    GroupNotFound,
    MemberKind,
    Permission,
    Project,
    ProjectAsset,
    ProjectMember,
    ProjectNotFound,
    Unset,
    check_description,
    check_name,
)
from studio9.access.groups import BY_NAME, utcnow
from studio9.access.ports import AccessStore
from studio9.auth.domain import Principal, UserNotFound
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Access, AssetNotFound
from studio9.catalog.ports import Assets
from studio9.errors import Conflict, NotFound, PermissionDenied
from studio9.ids import new_id

log = structlog.get_logger()

_BY_PERMISSION = {Permission.READ: Access.READ, Permission.WRITE: Access.WRITE}


@attrs.define
class ProjectService:
    store: AccessStore
    users: UserStore
    assets: Assets
    clock: Callable[[], datetime] = utcnow

    # -- projects ---------------------------------------------------------------------------------

    async def create(self, actor: Principal, *, name: str, description: str = "") -> Project:
        """A new project owned by ``actor``.

        Raises:
            InvalidInput: the name or the description is not usable.
            ProjectNameTaken: ``actor`` has a project of that name.
        """
        now = self.clock()
        project = Project(
            id=new_id(),
            name=check_name(name),
            owner_id=actor.user_id,
            description=check_description(description),
            created_at=now,
            updated_at=now,
        )
        await self.store.add_project(project)
        # The owner is its first member (write): so the assets its members link in reach the
        # owner through the same grants as everyone else's, and the member list names them.
        await self.store.put_member(
            ProjectMember(
                project_id=project.id,
                member_kind=MemberKind.USER,
                member_id=actor.user_id,
                permission=Permission.WRITE,
                added_by=actor.user_id,
                added_at=now,
            )
        )
        log.info("project_created", project_id=project.id, owner_id=actor.user_id)
        return project

    async def list(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Project]:
        """Newest first: every project for an admin; for anyone else those they own or are a
        member of (directly or through a group)."""
        if actor.is_admin:
            return await self.store.list_projects(keys=None, limit=limit, after=after)
        keys = await self.store.member_keys(actor.user_id, actor.email)
        return await self.store.list_projects(keys=keys, owner_id=actor.user_id, limit=limit, after=after)

    async def get(self, actor: Principal, project_id: str) -> Project:
        """Raises ProjectNotFound (also for a project ``actor`` may not read)."""
        project, _ = await self._at_least(actor, project_id, Access.READ)
        return project

    async def update(
        self, actor: Principal, project_id: str, *, name: str | None = None, description: str | None = None
    ) -> Project:
        """Rename and/or describe again (None: unchanged).

        Raises:
            ProjectNotFound: no such project, or one ``actor`` may not read.
            PermissionDenied: ``actor`` may read it, not change it.
            InvalidInput: the name or the description is not usable.
            ProjectNameTaken: its owner has another project of the new name.
        """
        project, _ = await self._at_least(actor, project_id, Access.WRITE)
        return await self.store.update_project(
            project.id,
            name=None if name is None else check_name(name),
            description=None if description is None else check_description(description),
            at=self.clock(),
        )

    async def delete(self, actor: Principal, project_id: str) -> None:
        """Delete the project with its folders, links and members (the assets stay).

        Raises:
            ProjectNotFound: no such project, or one ``actor`` may not read.
            PermissionDenied: ``actor`` is a member, not its owner (nor an admin).
        """
        project, _ = await self._at_least(actor, project_id, Access.OWN)
        await self.store.delete_project(project.id)
        log.info("project_deleted", project_id=project.id, by=actor.user_id)

    # -- folders ----------------------------------------------------------------------------------

    async def add_folder(self, actor: Principal, project_id: str, *, name: str) -> Folder:
        """A new folder of the project.

        Raises:
            ProjectNotFound, PermissionDenied: as ``update``.
            InvalidInput: the name is not usable.
            FolderNameTaken: the project has a folder of that name.
        """
        project, _ = await self._at_least(actor, project_id, Access.WRITE)
        folder = Folder(id=new_id(), project_id=project.id, name=check_name(name), created_at=self.clock())
        await self.store.add_folder(folder)
        return folder

    async def folders(self, actor: Principal, project_id: str) -> Sequence[Folder]:
        """The project's folders, oldest first. Raises ProjectNotFound (also when not readable)."""
        project, _ = await self._at_least(actor, project_id, Access.READ)
        return await self.store.list_folders(project.id)

    async def delete_folder(self, actor: Principal, project_id: str, folder_id: str) -> None:
        """Delete a folder; the assets in it move to the project's root.

        Raises:
            ProjectNotFound, PermissionDenied: as ``update``.
            FolderNotFound: no such folder in this project.
        """
        project, _ = await self._at_least(actor, project_id, Access.WRITE)
        folder = await self._folder(project, folder_id)
        await self.store.delete_folder(folder.id)

    # -- linked assets ----------------------------------------------------------------------------

    async def link(
        self, actor: Principal, project_id: str, asset_id: str, *, folder_id: str | None = None
    ) -> ProjectAsset:
        """Put the asset in the project, in ``folder_id`` (None: the root); linked already: it
        moves there. Every member of the project then reaches the asset, so ``actor`` must own
        it (its owner, or an admin).

        Raises:
            ProjectNotFound, PermissionDenied: as ``update``.
            FolderNotFound: no such folder in this project.
            AssetNotFound: no such asset, or one ``actor`` may not read.
            PermissionDenied: ``actor`` may read the asset but does not own it.
        """
        project, _ = await self._at_least(actor, project_id, Access.WRITE)
        folder = None if folder_id is None else await self._folder(project, folder_id)
        asset = await self.assets.get(actor, asset_id)
        if not actor.owns(asset.owner_id):
            raise PermissionDenied("only the asset's owner or an admin may link it to a project")
        link = await self.store.link_asset(
            ProjectAsset(
                project_id=project.id,
                asset_id=asset.id,
                folder_id=None if folder is None else folder.id,
                added_by=actor.user_id,
                added_at=self.clock(),
            )
        )
        log.info("asset_linked", project_id=project.id, asset_id=asset.id, by=actor.user_id)
        return link

    async def unlink(self, actor: Principal, project_id: str, asset_id: str) -> None:
        """Take the asset out of the project: a writer of the project, or the asset's owner.

        Raises:
            ProjectNotFound: no such project, or one ``actor`` may neither read nor own a
                linked asset of.
            PermissionDenied: ``actor`` reads the project but neither writes it nor owns the asset.
            NotFound: the asset is not in the project.
        """
        project = await self.store.get_project(project_id)
        access = await self._access(actor, project)
        if access < Access.WRITE and not await self._owns_asset(actor, asset_id):
            if access < Access.READ:
                raise ProjectNotFound(project_id)
            raise PermissionDenied("only a writer of the project or the asset's owner may unlink it")
        if not await self.store.unlink_asset(project.id, asset_id):
            raise NotFound(f"asset {asset_id!r} is not in project {project_id!r}")
        log.info("asset_unlinked", project_id=project.id, asset_id=asset_id, by=actor.user_id)

    async def linked(
        self,
        actor: Principal,
        project_id: str,
        *,
        folder_id: str | Unset | None = UNSET,
        limit: int,
        after: str | None = None,
    ) -> Sequence[ProjectAsset]:
        """The project's links, newest asset first: all (``UNSET``), those at its root (None),
        or those in one folder.

        Raises:
            ProjectNotFound: no such project, or one ``actor`` may not read.
            FolderNotFound: no such folder in this project.
        """
        project, _ = await self._at_least(actor, project_id, Access.READ)
        if isinstance(folder_id, str):
            folder_id = (await self._folder(project, folder_id)).id
        return await self.store.project_assets(project.id, folder_id=folder_id, limit=limit, after=after)

    # -- members ----------------------------------------------------------------------------------

    async def members(self, actor: Principal, project_id: str) -> Sequence[ProjectMember]:
        """Users, then groups. Raises ProjectNotFound (also for a project ``actor`` may not read)."""
        project, _ = await self._at_least(actor, project_id, Access.READ)
        return await self.store.project_members(project.id)

    async def put_member(
        self, actor: Principal, project_id: str, member_ref: str, permission: Permission
    ) -> ProjectMember:
        """Make a user or a group a member with ``permission``, or change a member's.
        ``member_ref``: a user id, a username, a group id or ``@groupname``.

        Raises:
            ProjectNotFound: no such project, or one ``actor`` may not read.
            PermissionDenied: ``actor`` is a member, not its owner (nor an admin).
            NotFound: no user or group of that reference.
        """
        project, _ = await self._at_least(actor, project_id, Access.OWN)
        kind, member_id = await self._resolve_member(member_ref)
        _not_the_owner(project, kind, member_id)
        member = await self.store.put_member(
            ProjectMember(
                project_id=project.id,
                member_kind=kind,
                member_id=member_id,
                permission=Permission(permission),
                added_by=actor.user_id,
                added_at=self.clock(),
            )
        )
        log.info("project_member_put", project_id=project.id, member=member.member_key, by=actor.user_id)
        return member

    async def remove_member(self, actor: Principal, project_id: str, member_ref: str) -> None:
        """Take a user or a group out of the project.

        Raises:
            ProjectNotFound, PermissionDenied: as ``put_member``.
            NotFound: no user or group of that reference, or not a member.
        """
        project, _ = await self._at_least(actor, project_id, Access.OWN)
        kind, member_id = await self._resolve_member(member_ref)
        _not_the_owner(project, kind, member_id)
        if not await self.store.remove_member_of_project(project.id, kind, member_id):
            raise NotFound(f"{member_ref!r} is not a member of project {project_id!r}")
        log.info("project_member_removed", project_id=project.id, member_id=member_id, by=actor.user_id)

    # -- access -----------------------------------------------------------------------------------

    async def _at_least(self, actor: Principal, project_id: str, needed: Access) -> tuple[Project, Access]:
        """The project and ``actor``'s access to it, if at least ``needed``.

        Raises:
            ProjectNotFound: no such project, or ``actor`` may not read it.
            PermissionDenied: ``actor`` may read it, but less than ``needed``.
        """
        project = await self.store.get_project(project_id)
        access = await self._access(actor, project)
        if access < Access.READ:
            raise ProjectNotFound(project_id)
        if access < needed:
            raise PermissionDenied(
                "only the project's owner or an admin may do this"
                if needed is Access.OWN
                else "this needs write permission on the project"
            )
        return project, access

    async def _access(self, actor: Principal, project: Project) -> Access:
        if actor.owns(project.owner_id):
            return Access.OWN
        keys = await self.store.member_keys(actor.user_id, actor.email)
        granted = [
            _BY_PERMISSION[m.permission]
            for m in await self.store.project_members(project.id)
            if m.member_key in keys
        ]
        return max(granted, default=Access.NONE)

    async def _owns_asset(self, actor: Principal, asset_id: str) -> bool:
        """Whether ``actor`` owns the asset (an unreadable or unknown one: no)."""
        try:
            asset = await self.assets.get(actor, asset_id)
        except AssetNotFound:
            return False
        return actor.owns(asset.owner_id)

    async def _folder(self, project: Project, folder_id: str) -> Folder:
        """The folder, if it is one of ``project``'s. Raises FolderNotFound."""
        folder = await self.store.get_folder(folder_id)
        if folder.project_id != project.id:
            raise FolderNotFound(folder_id)
        return folder

    async def _resolve_member(self, ref: str) -> tuple[MemberKind, str]:
        """``(kind, id)`` of a user id, a username, a group id or ``@groupname``. Raises NotFound."""
        try:
            if ref.startswith(BY_NAME):
                return MemberKind.GROUP, (await self.store.group_named(ref[len(BY_NAME) :])).id
            try:
                return MemberKind.USER, (await self.users.get(ref)).id
            except UserNotFound:
                pass
            try:
                return MemberKind.GROUP, (await self.store.get_group(ref)).id
            except GroupNotFound:
                return MemberKind.USER, (await self.users.get_by_username(ref)).id
        except (UserNotFound, GroupNotFound):
            raise NotFound(f"no user or group {ref!r}", field="member") from None


def _not_the_owner(project: Project, kind: MemberKind, member_id: str) -> None:
    """Raises Conflict for the project's owner: a write member for as long as they own it."""
    if kind is MemberKind.USER and member_id == project.owner_id:
        raise Conflict("the project's owner stays a write member", field="member")
