"""Access values to and from their ORM rows (``sql_models``), for ``SqlAccessStore``.

Enums are stored as their values (short strings); datetimes are UTC-aware both ways
(``UTCDateTime``).
"""

from __future__ import annotations

from typing import Any

from adapters.access_store.sql_models import (
    FolderRow,
    GroupRow,
    ProjectAssetRow,
    ProjectMemberRow,
    ProjectRow,
    ShareRow,
)
from studio9.access.domain import (
    Folder,
    GranteeKind,
    Group,
    GroupMember,
    MemberKind,
    Permission,
    Project,
    ProjectAsset,
    ProjectMember,
    Share,
)


def group_row(group: Group) -> GroupRow:
    return GroupRow(
        id=group.id,
        name=group.name,
        owner_id=group.owner_id,
        description=group.description,
        created_at=group.created_at,
    )


def group(row: GroupRow) -> Group:
    return Group(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        description=row.description,
        created_at=row.created_at,
    )


def group_member_values(member: GroupMember) -> dict[str, Any]:
    return {
        "group_id": member.group_id,
        "user_id": member.user_id,
        "added_by": member.added_by,
        "added_at": member.added_at,
    }


def share_values(share: Share) -> dict[str, Any]:
    return {
        "id": share.id,
        "asset_id": share.asset_id,
        "grantee_kind": share.grantee_kind.value,
        "grantee": share.grantee,
        "permission": share.permission.value,
        "granted_by": share.granted_by,
        "created_at": share.created_at,
    }


def share(row: ShareRow) -> Share:
    return Share(
        id=row.id,
        asset_id=row.asset_id,
        grantee_kind=GranteeKind(row.grantee_kind),
        grantee=row.grantee,
        permission=Permission(row.permission),
        granted_by=row.granted_by,
        created_at=row.created_at,
    )


def project_row(project: Project) -> ProjectRow:
    return ProjectRow(
        id=project.id,
        name=project.name,
        owner_id=project.owner_id,
        description=project.description,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def project(row: ProjectRow) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def folder_row(folder: Folder) -> FolderRow:
    return FolderRow(
        id=folder.id, project_id=folder.project_id, name=folder.name, created_at=folder.created_at
    )


def folder(row: FolderRow) -> Folder:
    return Folder(id=row.id, project_id=row.project_id, name=row.name, created_at=row.created_at)


def link_values(link: ProjectAsset) -> dict[str, Any]:
    return {
        "project_id": link.project_id,
        "asset_id": link.asset_id,
        "folder_id": link.folder_id,
        "added_by": link.added_by,
        "added_at": link.added_at,
    }


def link(row: ProjectAssetRow) -> ProjectAsset:
    return ProjectAsset(
        project_id=row.project_id,
        asset_id=row.asset_id,
        folder_id=row.folder_id,
        added_by=row.added_by,
        added_at=row.added_at,
    )


def member_values(member: ProjectMember) -> dict[str, Any]:
    return {
        "project_id": member.project_id,
        "member_kind": member.member_kind.value,
        "member_id": member.member_id,
        "permission": member.permission.value,
        "added_by": member.added_by,
        "added_at": member.added_at,
    }


def member(row: ProjectMemberRow) -> ProjectMember:
    return ProjectMember(
        project_id=row.project_id,
        member_kind=MemberKind(row.member_kind),
        member_id=row.member_id,
        permission=Permission(row.permission),
        added_by=row.added_by,
        added_at=row.added_at,
    )
