"""ORM rows of collaboration: groups and members, shares, projects with folders, asset links and members.

Shares and project links name assets with a cascading foreign key (an asset's delete takes its
shares and links), projects their folders, links and members. Group members, and project members
that are groups, go with their group by the store's own delete (a member id may be a user's).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import Base, UTCDateTime


class GroupRow(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[str] = mapped_column(String(26))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupMemberRow(Base):
    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_user_id", "user_id"),)

    group_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    added_by: Mapped[str] = mapped_column(String(26))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ShareRow(Base):
    __tablename__ = "shares"
    __table_args__ = (
        UniqueConstraint("asset_id", "grantee_kind", "grantee", name="uq_shares_asset_id"),
        Index("ix_shares_grantee", "grantee_kind", "grantee", "id"),
        Index("ix_shares_granted_by", "granted_by", "id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    asset_id: Mapped[str] = mapped_column(String(26), ForeignKey("assets.id", ondelete="CASCADE"))
    grantee_kind: Mapped[str] = mapped_column(String(8))
    grantee: Mapped[str] = mapped_column(String(320))
    permission: Mapped[str] = mapped_column(String(8))
    granted_by: Mapped[str] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectRow(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_projects_owner_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner_id: Mapped[str] = mapped_column(String(26))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FolderRow(Base):
    __tablename__ = "project_folders"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_project_folders_project_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(26), ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectAssetRow(Base):
    __tablename__ = "project_assets"
    __table_args__ = (Index("ix_project_assets_asset_id", "asset_id"),)

    project_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    folder_id: Mapped[str | None] = mapped_column(
        String(26), ForeignKey("project_folders.id", ondelete="SET NULL")
    )
    added_by: Mapped[str] = mapped_column(String(26))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProjectMemberRow(Base):
    __tablename__ = "project_members"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "member_kind", "member_id"),
        Index("ix_project_members_member", "member_kind", "member_id"),
    )

    project_id: Mapped[str] = mapped_column(String(26), ForeignKey("projects.id", ondelete="CASCADE"))
    member_kind: Mapped[str] = mapped_column(String(8))
    member_id: Mapped[str] = mapped_column(String(26))
    permission: Mapped[str] = mapped_column(String(8))
    added_by: Mapped[str] = mapped_column(String(26))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
