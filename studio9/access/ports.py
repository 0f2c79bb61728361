"""What access needs: one store of groups, shares and projects, and the reads the policy makes.

Adapters: ``adapters/access_store/memory.py`` and ``adapters/access_store/sql.py`` (SQLite,
PostgreSQL), a store of the system of record (``studio9.database.Database.access``), so that
shares and project links go with their asset (a cascading foreign key on ``assets.id``).
Contract: ``tests/contract/test_access_store.py``.

Ids are made by the caller (``studio9.ids.new_id``). Paged lists are newest first (id
descending), only those older than ``after`` when given; whole lists are in a stable order.
The store checks what its tables can (unique names, the parent a row hangs from); who may do
what is the policy's, not the store's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from studio9.access.domain import (
    UNSET,
    Folder,
    Grant,
    Group,
    GroupMember,
    MemberKind,
    Project,
    ProjectAsset,
    ProjectMember,
    Share,
    Unset,
)


class GroupStore(Protocol):
    """**Protocol:** groups and their members."""

    async def add_group(self, group: Group) -> None:
        """Raises GroupNameTaken (names are unique across the instance)."""

    async def get_group(self, group_id: str) -> Group:
        """Raises GroupNotFound."""

    async def group_named(self, name: str) -> Group:
        """The group of that exact name. Raises GroupNotFound (naming the name)."""

    async def list_groups(
        self, *, member: str | None, limit: int, after: str | None = None
    ) -> Sequence[Group]:
        """Groups newest first; with ``member``, only the groups that user is in."""

    async def delete_group(self, group_id: str) -> None:
        """Remove the group with its memberships, the shares to it and the project memberships
        of it, all or none. Raises GroupNotFound."""

    async def add_member(self, member: GroupMember) -> bool:
        """Add a user to a group; False (and nothing changed) when already in it.
        Raises GroupNotFound."""

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        """False when the user was not in the group (or there is no such group)."""

    async def members(self, group_id: str) -> Sequence[str]:
        """The user ids of the group's members, sorted; none for an unknown group."""

    async def groups_of(self, user_id: str) -> Sequence[str]:
        """The ids of the groups the user is in, sorted."""


class ShareStore(Protocol):
    """**Protocol:** shares of assets, one per (asset, grantee kind, grantee)."""

    async def put_share(self, share: Share) -> Share:
        """Store the share, or, when the asset is already shared with that grantee, change that
        share's permission to ``share.permission`` (keeping its id, ``granted_by`` and
        ``created_at``). Returns the share as stored.

        Raises:
            AssetNotFound: no such asset (a grantee is not checked: the caller resolved it).
        """

    async def get_share(self, share_id: str) -> Share:
        """Raises ShareNotFound."""

    async def delete_share(self, share_id: str) -> None:
        """Raises ShareNotFound."""

    async def shares_of_asset(self, asset_id: str) -> Sequence[Share]:
        """The asset's shares, oldest first."""

    async def shares_given(self, user_id: str, *, limit: int, after: str | None = None) -> Sequence[Share]:
        """Shares ``user_id`` granted, newest first."""

    async def shares_received(
        self, keys: Collection[str], *, limit: int, after: str | None = None
    ) -> Sequence[Share]:
        """Shares whose grantee key (``Share.grantee_key``) is in ``keys``, newest first."""


class ProjectStore(Protocol):
    """**Protocol:** projects, their folders, the assets linked to them and their members."""

    async def add_project(self, project: Project) -> None:
        """Raises ProjectNameTaken (names are unique per owner)."""

    async def get_project(self, project_id: str) -> Project:
        """Raises ProjectNotFound."""

    async def update_project(
        self, project_id: str, *, name: str | None = None, description: str | None = None, at: datetime
    ) -> Project:
        """Rename and/or describe again (None leaves a field as it is); ``updated_at`` becomes
        ``at``. Returns the project as it now is.

        Raises:
            ProjectNotFound: no such project.
            ProjectNameTaken: the owner has another project of the new name.
        """

    async def delete_project(self, project_id: str) -> None:
        """Remove the project with its folders, links and members, all or none (the linked
        assets stay). Raises ProjectNotFound."""

    async def list_projects(
        self,
        *,
        keys: Collection[str] | None,
        owner_id: str | None = None,
        limit: int,
        after: str | None = None,
    ) -> Sequence[Project]:
        """Projects newest first: those ``owner_id`` owns, and those a caller of reader keys
        ``keys`` is a member of (a ``p:`` key, or a member row for a ``u:`` or ``g:`` key).
        ``keys`` None: every project, whoever owns it (an admin's view)."""

    async def add_folder(self, folder: Folder) -> None:
        """Add a folder to its project.

        Raises:
            ProjectNotFound: no such project.
            FolderNameTaken: the project has a folder of that name.
        """

    async def get_folder(self, folder_id: str) -> Folder:
        """Raises FolderNotFound."""

    async def list_folders(self, project_id: str) -> Sequence[Folder]:
        """The project's folders, oldest first; none for an unknown project."""

    async def delete_folder(self, folder_id: str) -> None:
        """Remove the folder; the assets in it move to the project's root. Raises FolderNotFound."""

    async def link_asset(self, link: ProjectAsset) -> ProjectAsset:
        """Put the asset in the project, in ``link.folder_id`` (None: the root). An asset is in
        a project once: linking it again moves it to that folder, keeping ``added_by`` and
        ``added_at``. Returns the link as stored.

        Raises:
            ProjectNotFound: no such project.
            FolderNotFound: no such folder in this project.
            AssetNotFound: no such asset.
        """

    async def unlink_asset(self, project_id: str, asset_id: str) -> bool:
        """Take the asset out of the project; False when it was not in it."""

    async def project_assets(
        self,
        project_id: str,
        *,
        folder_id: str | Unset | None = UNSET,
        limit: int,
        after: str | None = None,
    ) -> Sequence[ProjectAsset]:
        """The project's links, newest asset first (asset id descending, ``after`` an asset id):
        all of them (``UNSET``), those at the root (None), or those in one folder."""

    async def projects_of_asset(self, asset_id: str) -> Sequence[str]:
        """The ids of the projects the asset is linked to, sorted."""

    async def folders_of_asset(self, asset_id: str) -> Sequence[str]:
        """The ids of the folders the asset is in (one per project at most), sorted."""

    async def put_member(self, member: ProjectMember) -> ProjectMember:
        """Make a user or a group a member of the project, or change the permission of one
        that is (keeping ``added_by`` and ``added_at``). Returns the member as stored. A group is
        not checked to exist (the caller resolved it). Raises ProjectNotFound."""

    async def remove_member_of_project(
        self, project_id: str, member_kind: MemberKind, member_id: str
    ) -> bool:
        """False when it was not a member."""

    async def project_members(self, project_id: str) -> Sequence[ProjectMember]:
        """The project's members, users then groups, each by id; none for an unknown project."""


class PolicyReads(Protocol):
    """**Protocol:** what the access policy reads on every request: one round trip each on SQL."""

    async def grants(self, asset_id: str, keys: Collection[str]) -> Sequence[Grant]:
        """Every reason a caller of reader keys ``keys`` may reach the asset: each share of it
        to one of ``keys``, and each membership (of a ``u:`` or ``g:`` key of ``keys``) of a
        project the asset is linked to. Ownership is not among them (the caller knows the
        owner). Sorted by source, then ``via``."""

    async def member_keys(self, user_id: str, email: str | None) -> frozenset[str]:
        """The reader keys of a caller: ``u:`` itself, ``e:`` its email when it has one, ``g:``
        each group it is in, ``p:`` each project it is a member of, directly or through a group.
        Raises InvalidInput when ``email`` is not an address (a stored email always is)."""

    async def reader_keys(self, asset_id: str, owner_id: str) -> frozenset[str]:
        """The reader keys of an asset: ``u:`` its owner, each share's grantee key, ``p:`` each
        project it is linked to."""


class AccessStore(GroupStore, ShareStore, ProjectStore, PolicyReads, Protocol):
    """**Protocol:** the store of the access context.

    When an asset is deleted its shares and project links go with it (SQL: a foreign key on
    ``assets.id`` ON DELETE CASCADE; memory: the in-memory database tells the store).

    Every write that changes an asset's reader keys (``put_share``, ``delete_share``,
    ``link_asset``, ``unlink_asset``, ``delete_folder``, and ``delete_group``/``delete_project``
    for each asset whose shares or links they remove) appends an ``asset`` entry naming it to the
    outbox the search indexer drains (``studio9.metadata.ports.ChangeFeed``), in the same
    transaction: a revoke leaves the grantee's library as surely as it commits.
    """
