"""What the group and project routes take and answer (``studio9.access.api``), on the wire."""

from datetime import datetime
from typing import Annotated, Any

import msgspec

from studio9.access.domain import (
    GROUP_NAME_PATTERN,
    MAX_GROUP_NAME_LENGTH,
    Folder,
    Group,
    MemberKind,
    Permission,
    Project,
    ProjectAsset,
    ProjectMember,
)
from studio9.access.groups import GroupView
from studio9.catalog.domain import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, NAME_PATTERN

GroupName = Annotated[
    str, msgspec.Meta(max_length=MAX_GROUP_NAME_LENGTH, pattern=f"^(?:{GROUP_NAME_PATTERN.pattern})$")
]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, pattern=f"^(?:{NAME_PATTERN.pattern})$")]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]


class GroupIn(msgspec.Struct, forbid_unknown_fields=True):
    """A group's name is unique across the instance (``@name`` names it)."""

    name: GroupName
    description: Description = ""


class GroupOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str
    description: str
    created_at: datetime

    @classmethod
    def from_domain(cls, group: Group) -> "GroupOut":
        return cls(**_group_fields(group))


class GroupDetailOut(GroupOut):
    """A group with the ids of its members (its owner among them)."""

    members: list[str]

    @classmethod
    def from_view(cls, view: GroupView) -> "GroupDetailOut":
        return cls(**_group_fields(view.group), members=list(view.members))


class GroupPageOut(msgspec.Struct):
    items: list[GroupOut]
    next_cursor: str | None


class ProjectIn(msgspec.Struct, forbid_unknown_fields=True):
    """A project's name is unique among its owner's projects."""

    name: Name
    description: Description = ""


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET


class ProjectOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, project: Project) -> "ProjectOut":
        return cls(
            id=project.id,
            name=project.name,
            owner_id=project.owner_id,
            description=project.description,
            created_at=project.created_at,
            updated_at=project.updated_at,
        )


class ProjectPageOut(msgspec.Struct):
    items: list[ProjectOut]
    next_cursor: str | None


class FolderIn(msgspec.Struct, forbid_unknown_fields=True):
    """A folder's name is unique in its project."""

    name: Name


class FolderOut(msgspec.Struct):
    id: str
    project_id: str
    name: str
    created_at: datetime

    @classmethod
    def from_domain(cls, folder: Folder) -> "FolderOut":
        return cls(id=folder.id, project_id=folder.project_id, name=folder.name, created_at=folder.created_at)


class FolderListOut(msgspec.Struct):
    items: list[FolderOut]


class LinkOut(msgspec.Struct):
    """An asset in a project, in a folder (``folder_id``) or at its root (None)."""

    project_id: str
    asset_id: str
    folder_id: str | None
    added_by: str
    added_at: datetime

    @classmethod
    def from_domain(cls, link: ProjectAsset) -> "LinkOut":
        return cls(
            project_id=link.project_id,
            asset_id=link.asset_id,
            folder_id=link.folder_id,
            added_by=link.added_by,
            added_at=link.added_at,
        )


class LinkPageOut(msgspec.Struct):
    items: list[LinkOut]
    next_cursor: str | None


class MemberIn(msgspec.Struct, forbid_unknown_fields=True):
    """What the member gets on every asset linked to the project: ``read`` or ``write``."""

    permission: Permission


class MemberOut(msgspec.Struct):
    """A user (``member_id`` a user id) or a group (a group id) of the project."""

    project_id: str
    member_kind: MemberKind
    member_id: str
    permission: Permission
    added_by: str
    added_at: datetime

    @classmethod
    def from_domain(cls, member: ProjectMember) -> "MemberOut":
        return cls(
            project_id=member.project_id,
            member_kind=member.member_kind,
            member_id=member.member_id,
            permission=member.permission,
            added_by=member.added_by,
            added_at=member.added_at,
        )


class MemberListOut(msgspec.Struct):
    items: list[MemberOut]


def _group_fields(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "owner_id": group.owner_id,
        "description": group.description,
        "created_at": group.created_at,
    }
