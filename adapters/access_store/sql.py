"""AccessStore on SQLAlchemy (SQLite and PostgreSQL alike), on ``groups``, ``group_members``,
``shares``, ``projects``, ``project_folders``, ``project_assets`` and ``project_members``.

URL:      the system-of-record database (``SqlDatabase.access``): sqlite+aiosqlite://, postgresql+psycopg://
Features: unique names and one share per grantee through unique constraints · upserts
          (INSERT … ON CONFLICT) · an asset's shares and links cascade from ``assets.id`` ·
          the policy's reads one UNION ALL statement each (``sql_policy``)
Extra:    cloud (psycopg) for PostgreSQL

Writes are one short transaction whose condition is a constraint, never a read followed by a
write, so two concurrent writers cannot both win. A constraint's failure is told apart by a read
afterwards (which parent was missing), only to name the error. A write that changes an asset's
reader keys (shares, project links) appends an ``asset`` outbox entry per asset concerned
(``adapters/sql/outbox.py``) in its transaction. Projects are ``sql_projects``' (a mixin).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from adapters.access_store import sql_rows as rows
from adapters.access_store.sql_base import dialect_insert, page, upsert
from adapters.access_store.sql_models import GroupMemberRow, GroupRow, ProjectMemberRow, ShareRow
from adapters.access_store.sql_policy import SqlPolicyReads, grantee_match
from adapters.access_store.sql_projects import SqlProjectStore
from adapters.sql.errors import translated
from adapters.sql.outbox import ASSET_TOPIC, outbox_insert
from studio9.access.domain import (
    GranteeKind,
    Group,
    GroupMember,
    GroupNameTaken,
    GroupNotFound,
    MemberKind,
    Share,
    ShareNotFound,
)
from studio9.catalog.domain import AssetNotFound

if TYPE_CHECKING:
    from studio9.access.ports import AccessStore


class SqlAccessStore(SqlProjectStore, SqlPolicyReads):
    """Groups and shares; projects from ``SqlProjectStore``, the policy's reads from ``SqlPolicyReads``."""

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
        return [rows.group(row) for row in await self._rows(page(query, GroupRow.id, limit, after))]

    async def delete_group(self, group_id: str) -> None:
        # Explicitly, rather than trusting ON DELETE CASCADE (SQLite honours it only on
        # connections that turned foreign keys on); shares and project members name a group
        # without a foreign key (their id may be a user's or an email).
        # The shares' assets lose a reader key: the delete returns them for the outbox.
        shares = (
            sa.delete(ShareRow)
            .where(ShareRow.grantee_kind == GranteeKind.GROUP.value, ShareRow.grantee == group_id)
            .returning(ShareRow.asset_id)
            .execution_options(synchronize_session=False)
        )
        statements = [
            sa.delete(GroupMemberRow).where(GroupMemberRow.group_id == group_id),
            sa.delete(ProjectMemberRow).where(
                ProjectMemberRow.member_kind == MemberKind.GROUP.value, ProjectMemberRow.member_id == group_id
            ),
        ]
        if not await self._delete(
            statements, sa.delete(GroupRow).where(GroupRow.id == group_id), touched=shares
        ):
            raise GroupNotFound(group_id)

    async def add_member(self, member: GroupMember) -> bool:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    insert = dialect_insert(session)(GroupMemberRow).values(
                        **rows.group_member_values(member)
                    )
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
                    row = await upsert(session, ShareRow, rows.share_values(share), key, changes)
                    await outbox_insert(session, ASSET_TOPIC, [share.asset_id])
        except IntegrityError:
            raise AssetNotFound(share.asset_id) from None
        return rows.share(row)

    async def get_share(self, share_id: str) -> Share:
        row = await self._get(ShareRow, share_id)
        if row is None:
            raise ShareNotFound(share_id)
        return rows.share(row)

    async def delete_share(self, share_id: str) -> None:
        statement = (
            sa.delete(ShareRow)
            .where(ShareRow.id == share_id)
            .returning(ShareRow.asset_id)
            .execution_options(synchronize_session=False)
        )
        with translated():
            async with self._sessions.begin() as session:
                revoked = list(await session.scalars(statement))
                # In the revoke's transaction: the grantee's library forgets the asset as surely.
                await outbox_insert(session, ASSET_TOPIC, revoked)
        if not revoked:
            raise ShareNotFound(share_id)

    async def shares_of_asset(self, asset_id: str) -> Sequence[Share]:
        query = sa.select(ShareRow).where(ShareRow.asset_id == asset_id).order_by(ShareRow.id)
        return [rows.share(row) for row in await self._rows(query)]

    async def shares_given(self, user_id: str, *, limit: int, after: str | None = None) -> Sequence[Share]:
        query = sa.select(ShareRow).where(ShareRow.granted_by == user_id)
        return [rows.share(row) for row in await self._rows(page(query, ShareRow.id, limit, after))]

    async def shares_received(
        self, keys: Collection[str], *, limit: int, after: str | None = None
    ) -> Sequence[Share]:
        match = grantee_match(keys)
        if match is None:
            return []
        query = sa.select(ShareRow).where(match)
        return [rows.share(row) for row in await self._rows(page(query, ShareRow.id, limit, after))]


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[AccessStore] = SqlAccessStore
