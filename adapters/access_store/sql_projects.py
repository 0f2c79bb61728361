"""Projects, their folders, asset links and members on SQL: the project half of ``SqlAccessStore``.

Links change an asset's reader keys (``p:<project>``): linking, unlinking, moving links out of a
deleted folder and deleting a project append an ``asset`` outbox entry per asset concerned, in
the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.access_store import sql_rows as rows
from adapters.access_store.sql_base import SqlAccessBase, page, upsert
from adapters.access_store.sql_models import FolderRow, ProjectAssetRow, ProjectMemberRow, ProjectRow
from adapters.access_store.sql_policy import visible_projects
from adapters.catalog_store.sql_models import AssetRow
from adapters.sql.errors import translated
from adapters.sql.outbox import ASSET_TOPIC, outbox_insert
from studio9.access.domain import (
    UNSET,
    Folder,
    FolderNameTaken,
    FolderNotFound,
    MemberKind,
    Project,
    ProjectAsset,
    ProjectMember,
    ProjectNameTaken,
    ProjectNotFound,
    Unset,
)
from studio9.catalog.domain import AssetNotFound


class SqlProjectStore(SqlAccessBase):
    """``studio9.access.ports.ProjectStore`` on SQL (``SqlAccessStore`` inherits it)."""

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
        unlinked = _returning_assets(
            sa.delete(ProjectAssetRow).where(ProjectAssetRow.project_id == project_id)
        )
        statements = [
            sa.delete(ProjectMemberRow).where(ProjectMemberRow.project_id == project_id),
            sa.delete(FolderRow).where(FolderRow.project_id == project_id),
        ]
        deleted = sa.delete(ProjectRow).where(ProjectRow.id == project_id)
        if not await self._delete(statements, deleted, touched=unlinked):
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
        return [rows.project(row) for row in await self._rows(page(query, ProjectRow.id, limit, after))]

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
        moved = _returning_assets(
            sa.update(ProjectAssetRow).where(ProjectAssetRow.folder_id == folder_id).values(folder_id=None)
        )
        if not await self._delete([], sa.delete(FolderRow).where(FolderRow.id == folder_id), touched=moved):
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
                    row = await upsert(session, ProjectAssetRow, values, ("project_id", "asset_id"), changes)
                    await outbox_insert(session, ASSET_TOPIC, [link.asset_id])
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
        return await self._delete([], statement, assets=[asset_id])

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
            rows.link(row) for row in await self._rows(page(query, ProjectAssetRow.asset_id, limit, after))
        ]

    async def projects_of_asset(self, asset_id: str) -> Sequence[str]:
        query = sa.select(ProjectAssetRow.project_id).where(ProjectAssetRow.asset_id == asset_id)
        return await self._rows(query.order_by(ProjectAssetRow.project_id))

    async def folders_of_asset(self, asset_id: str) -> Sequence[str]:
        query = sa.select(ProjectAssetRow.folder_id).where(
            ProjectAssetRow.asset_id == asset_id, ProjectAssetRow.folder_id.is_not(None)
        )
        return await self._rows(query.order_by(ProjectAssetRow.folder_id))

    async def put_member(self, member: ProjectMember) -> ProjectMember:
        key = ("project_id", "member_kind", "member_id")
        changes = {"permission": member.permission.value}
        try:
            with translated():
                async with self._sessions.begin() as session:
                    row = await upsert(session, ProjectMemberRow, rows.member_values(member), key, changes)
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


def _returning_assets(statement: Any) -> Any:
    """An UPDATE or DELETE of links that returns the ids of the assets it touched."""
    return statement.returning(ProjectAssetRow.asset_id).execution_options(synchronize_session=False)
