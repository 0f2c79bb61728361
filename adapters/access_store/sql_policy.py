"""The access policy's reads on SQL, one statement (one round trip) each, and the key matching
the store's lists share with them.

The policy asks on every request, so each read is a single UNION ALL over the indexes of
migration 0009: shares by (asset, grantee kind, grantee) (``uq_shares_asset_id``) and by
(grantee kind, grantee) (``ix_shares_grantee``), links by asset (``ix_project_assets_asset_id``),
memberships by project (their primary keys) and by member (``ix_group_members_user_id``,
``ix_project_members_member``). A reader key is matched as (kind column = kind AND id column IN
ids), one term per kind present, so the indexes lead with the kind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.access_store.sql_models import (
    GroupMemberRow,
    ProjectAssetRow,
    ProjectMemberRow,
    ProjectRow,
    ShareRow,
)
from adapters.sql.errors import translated
from studio9.access.domain import (
    Grant,
    GranteeKind,
    MemberKind,
    Permission,
    email_key,
    keys_by_kind,
    project_key,
    reader_key,
    user_key,
)


def grantee_match(keys: Collection[str]) -> sa.ColumnElement[bool] | None:
    """Shares whose grantee key is among ``keys``; None when no key can name a grantee."""
    ids = keys_by_kind(keys)
    return _match(ShareRow.grantee_kind, ShareRow.grantee, {kind: ids[kind] for kind in GranteeKind})


def member_match(keys: Collection[str]) -> sa.ColumnElement[bool] | None:
    """Project members whose member key is among ``keys``; None when no key can name one."""
    ids = keys_by_kind(keys)
    return _match(
        ProjectMemberRow.member_kind, ProjectMemberRow.member_id, {kind: ids[kind] for kind in MemberKind}
    )


def visible_projects(keys: Collection[str], owner_id: str | None) -> sa.ColumnElement[bool] | None:
    """Projects ``owner_id`` owns, or named by a ``p:`` key, or with a member among ``keys``;
    None when nothing can match."""
    conditions: list[sa.ColumnElement[bool]] = []
    if owner_id is not None:
        conditions.append(ProjectRow.owner_id == owner_id)
    if projects := keys_by_kind(keys)["project"]:
        conditions.append(ProjectRow.id.in_(sorted(projects)))
    if (match := member_match(keys)) is not None:
        conditions.append(ProjectRow.id.in_(sa.select(ProjectMemberRow.project_id).where(match)))
    return sa.or_(*conditions) if conditions else None


def _match(kind_column: Any, id_column: Any, ids: Mapping[str, set[str]]) -> sa.ColumnElement[bool] | None:
    terms = [
        sa.and_(kind_column == kind, id_column.in_(sorted(values))) for kind, values in ids.items() if values
    ]
    return sa.or_(*terms) if terms else None


def _tag(text: str) -> sa.ColumnElement[str]:
    """A constant column of a UNION branch, telling the branches' rows apart."""
    return sa.literal_column(f"'{text}'", sa.String())


class SqlPolicyReads:
    """``studio9.access.ports.PolicyReads`` on SQL (``SqlAccessStore`` inherits it)."""

    _sessions: async_sessionmaker[AsyncSession]

    async def grants(self, asset_id: str, keys: Collection[str]) -> Sequence[Grant]:
        branches = []
        if (shared := grantee_match(keys)) is not None:
            branches.append(
                sa.select(_tag("share"), ShareRow.id, ShareRow.permission).where(
                    ShareRow.asset_id == asset_id, shared
                )
            )
        if (member := member_match(keys)) is not None:
            branches.append(
                sa.select(_tag("project"), ProjectMemberRow.project_id, ProjectMemberRow.permission)
                .join(ProjectAssetRow, ProjectAssetRow.project_id == ProjectMemberRow.project_id)
                .where(ProjectAssetRow.asset_id == asset_id, member)
            )
        if not branches:
            return []
        found = [
            Grant(
                source="share" if source == "share" else "project", via=via, permission=Permission(permission)
            )
            for source, via, permission in await self._all(sa.union_all(*branches))
        ]
        return sorted(found, key=lambda g: (g.source, g.via, g.permission))

    async def member_keys(self, user_id: str, email: str | None) -> frozenset[str]:
        keys = {user_key(user_id)}
        if email is not None:
            keys.add(email_key(email))
        groups = sa.select(_tag("group"), GroupMemberRow.group_id).where(GroupMemberRow.user_id == user_id)
        direct = sa.select(_tag("project"), ProjectMemberRow.project_id).where(
            ProjectMemberRow.member_kind == MemberKind.USER.value, ProjectMemberRow.member_id == user_id
        )
        through_groups = (
            sa.select(_tag("project"), ProjectMemberRow.project_id)
            .select_from(GroupMemberRow)
            .join(
                ProjectMemberRow,
                sa.and_(
                    ProjectMemberRow.member_kind == MemberKind.GROUP.value,
                    ProjectMemberRow.member_id == GroupMemberRow.group_id,
                ),
            )
            .where(GroupMemberRow.user_id == user_id)
        )
        for kind, found in await self._all(sa.union_all(groups, direct, through_groups)):
            keys.add(reader_key("group" if kind == "group" else "project", found))
        return frozenset(keys)

    async def reader_keys(self, asset_id: str, owner_id: str) -> frozenset[str]:
        shares = sa.select(ShareRow.grantee_kind, ShareRow.grantee).where(ShareRow.asset_id == asset_id)
        links = sa.select(_tag("project"), ProjectAssetRow.project_id).where(
            ProjectAssetRow.asset_id == asset_id
        )
        keys = {user_key(owner_id)}
        for kind, found in await self._all(sa.union_all(shares, links)):
            keys.add(project_key(found) if kind == "project" else reader_key(GranteeKind(kind), found))
        return frozenset(keys)

    async def _all(self, statement: sa.Executable) -> list[tuple[Any, ...]]:
        with translated():
            async with self._sessions() as session:
                return [tuple(row) for row in await session.execute(statement)]
