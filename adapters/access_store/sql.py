"""AccessStore on SQLAlchemy (SQLite and PostgreSQL alike), on ``groups``, ``group_members``,
``shares``, ``projects``, ``project_folders``, ``project_assets`` and ``project_members``.

URL:      the system-of-record database (``SqlDatabase.access``): sqlite+aiosqlite://, postgresql+psycopg://
Features: unique names and one share per grantee through unique constraints · upserts
          (INSERT … ON CONFLICT) · an asset's shares and links cascade from ``assets.id`` ·
          the policy's reads one UNION ALL statement each (``sql_policy``)
Extra:    cloud (psycopg) for PostgreSQL

Writes are one short transaction whose condition is a constraint, never a read followed by a
write, so two concurrent writers cannot both win. A constraint's failure is told apart by a read
afterwards (which parent was missing), only to name the error.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.access_store import sql_rows as rows
from adapters.access_store.sql_models import (
    FolderRow,
    GroupMemberRow,
    GroupRow,
    ProjectAssetRow,
    ProjectMemberRow,
    ProjectRow,
    ShareRow,
)
from adapters.access_store.sql_policy import SqlPolicyReads, grantee_match, visible_projects
from adapters.catalog_store.sql_models import AssetRow
from adapters.sql.errors import translated
from studio9.access.domain import (
    UNSET,
    Folder,
    FolderNameTaken,
    FolderNotFound,
    GranteeKind,
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
)
from studio9.catalog.domain import AssetNotFound

if TYPE_CHECKING:
    from studio9.access.ports import AccessStore


class SqlAccessStore(SqlPolicyReads):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -- groups -----------------------------------------------------------------------------------

    async def add_group(self, group: Group) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    session.add(rows.group_row(group))
        except IntegrityError:
            raise GroupNameTaken(group.name) from None

    async def get_group(self, group_id: str) -> Group:
        row = await self._get(GroupRow, group_id)
        if row is None:
            raise GroupNotFound(group_id)
        return rows.group(row)

    async def group_named(self, name: str) -> Group:
        found = await self._rows(sa.select(GroupRow).where(GroupRow.name == name))
        if not found:
            raise GroupNotFound(name)
        return rows.group(found[0])

    async def list_groups(
        self, *, member: str | None, limit: int, after: str | None = None
    ) -> Sequence[Group]:
        query = sa.select(GroupRow)
        if member is not None:
            query = query.join(GroupMemberRow, GroupMemberRow.group_id == GroupRow.id).where(
                GroupMemberRow.user_id == member
            )
        return [rows.group(row) for row in await self._rows(_page(query, GroupRow.id, limit, after))]

    async def delete_group(self, group_id: str) -> None:
        # Explicitly, rather than trusting ON DELETE CASCADE (SQLite honours it only on
        # connections that turned foreign keys on); shares and project members name a group
        # without a foreign key (their id may be a user's or an email).
        statements = [
            sa.delete(GroupMemberRow).where(GroupMemberRow.group_id == group_id),
            sa.delete(ShareRow).where(
                ShareRow.grantee_kind == GranteeKind.GROUP.value, ShareRow.grantee == group_id
            ),
            sa.delete(ProjectMemberRow).where(
                ProjectMemberRow.member_kind == MemberKind.GROUP.value, ProjectMemberRow.member_id == group_id
            ),
        ]
        if not await self._delete(statements, sa.delete(GroupRow).where(GroupRow.id == group_id)):
            raise GroupNotFound(group_id)

    async def add_member(self, member: GroupMember) -> bool:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    insert = _insert(session)(GroupMemberRow).values(**rows.group_member_values(member))
                    # RETURNING, not the row count (that psycopg does not give for a skipped row)
                    added = await session.scalars(
                        insert.on_conflict_do_nothing().returning(GroupMemberRow.user_id)
                    )
                    return added.first() is not None
        except IntegrityError:
            raise GroupNotFound(member.group_id) from None

    async def remove_member(self, group_id: str, user_id: str) -> bool:
        statement = sa.delete(GroupMemberRow).where(
            GroupMemberRow.group_id == group_id, GroupMemberRow.user_id == user_id
        )
        return await self._delete([], statement)

    async def members(self, group_id: str) -> Sequence[str]:
        query = sa.select(GroupMemberRow.user_id).where(GroupMemberRow.group_id == group_id)
        return await self._rows(query.order_by(GroupMemberRow.user_id))

    async def groups_of(self, user_id: str) -> Sequence[str]:
        query = sa.select(GroupMemberRow.group_id).where(GroupMemberRow.user_id == user_id)
        return await self._rows(query.order_by(GroupMemberRow.group_id))

    # -- shares -----------------------------------------------------------------------------------

    async def put_share(self, share: Share) -> Share:
        key = ("asset_id", "grantee_kind", "grantee")
        changes = {"permission": share.permission.value}
        try:
            with translated():
                async with self._sessions.begin() as session:
                    row = await _upsert(session, ShareRow, rows.share_values(share), key, changes)
        except IntegrityError:
            raise AssetNotFound(share.asset_id) from None
        return rows.share(row)

    async def get_share(self, share_id: str) -> Share:
        row = await self._get(ShareRow, share_id)
        if row is None:
            raise ShareNotFound(share_id)
        return rows.share(row)

    async def delete_share(self, share_id: str) -> None:
        if not await self._delete([], sa.delete(ShareRow).where(ShareRow.id == share_id)):
            raise ShareNotFound(share_id)

    async def shares_of_asset(self, asset_id: str) -> Sequence[Share]:
        query = sa.select(ShareRow).where(ShareRow.asset_id == asset_id).order_by(ShareRow.id)
        return [rows.share(row) for row in await self._rows(query)]

    async def shares_given(self, user_id: str, *, limit: int, after: str | None = None) -> Sequence[Share]:
        query = sa.select(ShareRow).where(ShareRow.granted_by == user_id)
        return [rows.share(row) for row in await self._rows(_page(query, ShareRow.id, limit, after))]

    async def shares_received(
        self, keys: Collection[str], *, limit: int, after: str | None = None
    ) -> Sequence[Share]:
        match = grantee_match(keys)
        if match is None:
            return []
        query = sa.select(ShareRow).where(match)
        return [rows.share(row) for row in await self._rows(_page(query, ShareRow.id, limit, after))]

    # -- projects ---------------------------------------------------------------------------------

    async def add_project(self, project: Project) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    session.add(rows.project_row(project))
        except IntegrityError:
            raise ProjectNameTaken(project.name) from None

    async def get_project(self, project_id: str) -> Project:
        row = await self._get(ProjectRow, project_id)
        if row is None:
            raise ProjectNotFound(project_id)
        return rows.project(row)

    async def update_project(
        self, project_id: str, *, name: str | None = None, description: str | None = None, at: datetime
    ) -> Project:
        values: dict[str, Any] = {"updated_at": at}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        statement = sa.update(ProjectRow).where(ProjectRow.id == project_id).values(**values)
        try:
            with translated():
                async with self._sessions.begin() as session:
                    result = await session.execute(statement)
        except IntegrityError:
            raise ProjectNameTaken(name or "") from None
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise ProjectNotFound(project_id)
        return await self.get_project(project_id)

    async def delete_project(self, project_id: str) -> None:
        # Explicitly, rather than trusting ON DELETE CASCADE (see delete_group); links first,
        # as they name the folders.
        statements = [
            sa.delete(ProjectAssetRow).where(ProjectAssetRow.project_id == project_id),
            sa.delete(ProjectMemberRow).where(ProjectMemberRow.project_id == project_id),
            sa.delete(FolderRow).where(FolderRow.project_id == project_id),
        ]
        if not await self._delete(statements, sa.delete(ProjectRow).where(ProjectRow.id == project_id)):
            raise ProjectNotFound(project_id)

    async def list_projects(
        self,
        *,
        keys: Collection[str] | None,
        owner_id: str | None = None,
        limit: int,
        after: str | None = None,
    ) -> Sequence[Project]:
        query = sa.select(ProjectRow)
        if keys is not None:
            visible = visible_projects(keys, owner_id)
            if visible is None:
                return []
            query = query.where(visible)
        return [rows.project(row) for row in await self._rows(_page(query, ProjectRow.id, limit, after))]

    async def add_folder(self, folder: Folder) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    session.add(rows.folder_row(folder))
        except IntegrityError:
            if await self._get(ProjectRow, folder.project_id) is None:
                raise ProjectNotFound(folder.project_id) from None
            raise FolderNameTaken(folder.name) from None

    async def get_folder(self, folder_id: str) -> Folder:
        row = await self._get(FolderRow, folder_id)
        if row is None:
            raise FolderNotFound(folder_id)
        return rows.folder(row)

    async def list_folders(self, project_id: str) -> Sequence[Folder]:
        query = sa.select(FolderRow).where(FolderRow.project_id == project_id).order_by(FolderRow.id)
        return [rows.folder(row) for row in await self._rows(query)]

    async def delete_folder(self, folder_id: str) -> None:
        # Explicitly, rather than trusting ON DELETE SET NULL (see delete_group).
        moved = (
            sa.update(ProjectAssetRow).where(ProjectAssetRow.folder_id == folder_id).values(folder_id=None)
        )
        if not await self._delete([moved], sa.delete(FolderRow).where(FolderRow.id == folder_id)):
            raise FolderNotFound(folder_id)

    async def link_asset(self, link: ProjectAsset) -> ProjectAsset:
        changes = {"folder_id": link.folder_id}
        try:
            with translated():
                async with self._sessions.begin() as session:
                    if link.folder_id is not None:
                        # A folder of another project would satisfy the foreign key.
                        folder = await session.get(FolderRow, link.folder_id)
                        if folder is None or folder.project_id != link.project_id:
                            raise FolderNotFound(link.folder_id)
                    values = rows.link_values(link)
                    row = await _upsert(session, ProjectAssetRow, values, ("project_id", "asset_id"), changes)
        except IntegrityError:
            if await self._get(ProjectRow, link.project_id) is None:
                raise ProjectNotFound(link.project_id) from None
            if await self._get(AssetRow, link.asset_id) is None:
                raise AssetNotFound(link.asset_id) from None
            raise FolderNotFound(link.folder_id or "") from None  # deleted meanwhile
        return rows.link(row)

    async def unlink_asset(self, project_id: str, asset_id: str) -> bool:
        statement = sa.delete(ProjectAssetRow).where(
            ProjectAssetRow.project_id == project_id, ProjectAssetRow.asset_id == asset_id
        )
        return await self._delete([], statement)

    async def project_assets(
        self,
        project_id: str,
        *,
        folder_id: str | Unset | None = UNSET,
        limit: int,
        after: str | None = None,
    ) -> Sequence[ProjectAsset]:
        query = sa.select(ProjectAssetRow).where(ProjectAssetRow.project_id == project_id)
        if folder_id is None:
            query = query.where(ProjectAssetRow.folder_id.is_(None))
        elif not isinstance(folder_id, Unset):
            query = query.where(ProjectAssetRow.folder_id == folder_id)
        return [
            rows.link(row) for row in await self._rows(_page(query, ProjectAssetRow.asset_id, limit, after))
        ]

    async def projects_of_asset(self, asset_id: str) -> Sequence[str]:
        query = sa.select(ProjectAssetRow.project_id).where(ProjectAssetRow.asset_id == asset_id)
        return await self._rows(query.order_by(ProjectAssetRow.project_id))

    async def put_member(self, member: ProjectMember) -> ProjectMember:
        key = ("project_id", "member_kind", "member_id")
        changes = {"permission": member.permission.value}
        try:
            with translated():
                async with self._sessions.begin() as session:
                    row = await _upsert(session, ProjectMemberRow, rows.member_values(member), key, changes)
        except IntegrityError:
            raise ProjectNotFound(member.project_id) from None
        return rows.member(row)

    async def remove_member_of_project(
        self, project_id: str, member_kind: MemberKind, member_id: str
    ) -> bool:
        statement = sa.delete(ProjectMemberRow).where(
            ProjectMemberRow.project_id == project_id,
            ProjectMemberRow.member_kind == member_kind.value,
            ProjectMemberRow.member_id == member_id,
        )
        return await self._delete([], statement)

    async def project_members(self, project_id: str) -> Sequence[ProjectMember]:
        # 'user' sorts after 'group': users first is kind descending.
        query = (
            sa.select(ProjectMemberRow)
            .where(ProjectMemberRow.project_id == project_id)
            .order_by(ProjectMemberRow.member_kind.desc(), ProjectMemberRow.member_id)
        )
        return [rows.member(row) for row in await self._rows(query)]

    # -- helpers ----------------------------------------------------------------------------------

    async def _get(self, row_type: type[Any], key: str) -> Any:
        with translated():
            async with self._sessions() as session:
                return await session.get(row_type, key)

    async def _rows(self, query: sa.Select[Any]) -> list[Any]:
        with translated():
            async with self._sessions() as session:
                return list(await session.scalars(query))

    async def _delete(self, first: Sequence[sa.Executable], statement: sa.Executable) -> bool:
        """Run ``first`` then ``statement`` in one transaction; whether ``statement`` hit a row."""
        with translated():
            async with self._sessions.begin() as session:
                for before in first:
                    await session.execute(before)
                result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, the one with ``on_conflict_*`` (both spell it the same)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def _upsert(
    session: AsyncSession,
    row_type: type[Any],
    values: dict[str, Any],
    key: Sequence[str],
    changes: dict[str, Any],
) -> Any:
    """INSERT, or on a clash of ``key`` UPDATE ``changes`` only; the row as stored (RETURNING,
    which SQLite has since 3.35 and PostgreSQL always)."""
    insert = _insert(session)(row_type).values(**values)
    upsert = insert.on_conflict_do_update(index_elements=list(key), set_=changes).returning(row_type)
    return (await session.scalars(upsert)).one()


def _page(query: sa.Select[Any], column: Any, limit: int, after: str | None) -> sa.Select[Any]:
    """Newest first by ``column`` (a time-sortable id), only those below ``after``."""
    if after is not None:
        query = query.where(column < after)
    return query.order_by(column.desc()).limit(limit)


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[AccessStore] = SqlAccessStore
