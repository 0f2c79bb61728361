"""Use cases of groups: named sets of users that shares and projects grant access to at once.

Anyone may make a group; its maker owns it and is its first member. A group is visible to its
members and to admins only: to anyone else it does not exist (404), so names and ids cannot be
probed. Its owner and admins manage it (delete it, add and remove members); a member who tries
gets 403, and any member may leave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import attrs
import structlog

from studio9.access.domain import (
    Group,
    GroupMember,
    GroupNotFound,
    check_description,
    check_group_name,
)
from studio9.access.ports import AccessStore
from studio9.auth.domain import Principal, User, UserNotFound
from studio9.auth.ports import UserStore
from studio9.errors import Conflict, NotFound, PermissionDenied
from studio9.ids import new_id

log = structlog.get_logger()

#: How a group is named instead of by its id: ``@name`` (as in the CLI).
BY_NAME = "@"


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class GroupView:
    """A group with the ids of its members, sorted."""

    group: Group
    members: Sequence[str]


async def resolve_user(users: UserStore, ref: str) -> User:
    """The user ``ref`` names: a user id or a username. Raises UserNotFound (naming ``ref``)."""
    try:
        return await users.get(ref)
    except UserNotFound:
        pass
    try:
        return await users.get_by_username(ref)
    except UserNotFound:
        raise UserNotFound(ref) from None


async def find_group(store: AccessStore, ref: str) -> Group:
    """The group ``ref`` names: a group id, or ``@name``. Raises GroupNotFound."""
    if ref.startswith(BY_NAME):
        return await store.group_named(ref[len(BY_NAME) :])
    return await store.get_group(ref)


@attrs.define
class GroupService:
    store: AccessStore
    users: UserStore
    clock: Callable[[], datetime] = utcnow

    async def create(self, actor: Principal, *, name: str, description: str = "") -> GroupView:
        """A new group owned by ``actor``, with ``actor`` as its only member.

        Raises:
            InvalidInput: the name (``check_group_name``) or the description is not usable.
            GroupNameTaken: a group of that name exists (names are unique across the instance).
        """
        now = self.clock()
        group = Group(
            id=new_id(),
            name=check_group_name(name),
            owner_id=actor.user_id,
            description=check_description(description),
            created_at=now,
        )
        await self.store.add_group(group)
        await self.store.add_member(
            GroupMember(group_id=group.id, user_id=actor.user_id, added_by=actor.user_id, added_at=now)
        )
        log.info("group_created", group_id=group.id, owner_id=actor.user_id)
        return GroupView(group=group, members=[actor.user_id])

    async def list(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Group]:
        """Newest first: every group for an admin, the groups ``actor`` is in for anyone else."""
        member = None if actor.is_admin else actor.user_id
        return await self.store.list_groups(member=member, limit=limit, after=after)

    async def get(self, actor: Principal, ref: str) -> GroupView:
        """The group (by id or ``@name``) with its members. Raises GroupNotFound (also for a
        group ``actor`` is not in, unless an admin)."""
        group, members = await self._visible(actor, ref)
        return GroupView(group=group, members=members)

    async def delete(self, actor: Principal, ref: str) -> None:
        """Delete the group; its memberships, the shares to it and its project memberships go too.

        Raises:
            GroupNotFound: no such group, or one ``actor`` is not in.
            PermissionDenied: ``actor`` is a member, not its owner (nor an admin).
        """
        group, _ = await self._managed(actor, ref)
        await self.store.delete_group(group.id)
        log.info("group_deleted", group_id=group.id, by=actor.user_id)

    async def add_member(self, actor: Principal, ref: str, user_ref: str) -> GroupView:
        """Add the user ``user_ref`` names (an id or a username); already in: nothing changes.

        Raises:
            GroupNotFound: no such group, or one ``actor`` is not in.
            PermissionDenied: ``actor`` is a member, not its owner (nor an admin).
            UserNotFound: no such user.
        """
        group, members = await self._managed(actor, ref)
        user = await resolve_user(self.users, user_ref)
        added = await self.store.add_member(
            GroupMember(group_id=group.id, user_id=user.id, added_by=actor.user_id, added_at=self.clock())
        )
        if added:
            log.info("group_member_added", group_id=group.id, user_id=user.id, by=actor.user_id)
            members = sorted({*members, user.id})
        return GroupView(group=group, members=members)

    async def remove_member(self, actor: Principal, ref: str, user_ref: str) -> None:
        """Take a user out of the group: its owner and admins may take anyone out, a member
        may leave.

        Raises:
            GroupNotFound: no such group, or one ``actor`` is not in.
            UserNotFound: no such user.
            PermissionDenied: ``actor`` is a member taking someone else out.
            Conflict: the user is the group's owner (who stays a member while owner).
            NotFound: the user is not in the group.
        """
        group, _ = await self._visible(actor, ref)
        user = await resolve_user(self.users, user_ref)
        if not (_manages(actor, group) or user.id == actor.user_id):
            raise PermissionDenied("only the group's owner or an admin may remove other members")
        if user.id == group.owner_id:
            raise Conflict("the group's owner cannot leave it; delete the group instead", field="user")
        if not await self.store.remove_member(group.id, user.id):
            raise NotFound(f"user {user_ref!r} is not in group {group.name!r}")
        log.info("group_member_removed", group_id=group.id, user_id=user.id, by=actor.user_id)

    async def _visible(self, actor: Principal, ref: str) -> tuple[Group, Sequence[str]]:
        """The group and its members, if ``actor`` may see it (a member or an admin)."""
        group = await find_group(self.store, ref)
        members = await self.store.members(group.id)
        if not (actor.is_admin or actor.user_id in members):
            raise GroupNotFound(ref)
        return group, members

    async def _managed(self, actor: Principal, ref: str) -> tuple[Group, Sequence[str]]:
        """The group and its members, if ``actor`` may manage it (its owner or an admin)."""
        group, members = await self._visible(actor, ref)
        if not _manages(actor, group):
            raise PermissionDenied("only the group's owner or an admin may change it")
        return group, members


def _manages(actor: Principal, group: Group) -> bool:
    return actor.owns(group.owner_id)
