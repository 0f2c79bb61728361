"""Who may reach an asset besides its owner: groups, shares, projects, and the reader keys.

An asset is its owner's; others reach it through a **share** (to a user, a group, or an email
address that may not have an account yet) or through a **project** it is linked to, whose members
(users or groups) read or write what the project holds. A group is a named set of users; a
project is an owner's named collection of assets, sorted into flat folders.

Every way in is flattened into **reader keys**, short strings naming who may read
(``u:<user id>``, ``g:<group id>``, ``e:<email>``, ``p:<project id>``): a caller has some (itself,
its groups, its email, its projects), an asset has some (its owner, its shares' grantees, its
projects), and the caller may read the asset iff the two sets meet. One rule, cheap to evaluate,
and the same sets the library index stores, so search filters exactly as the policy decides.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal

import attrs

# Projects and folders are named as assets are (one rule for every name a user types), and an
# email grantee is spelt as a user's email is (else a share would miss its user).
from studio9.auth.domain import MAX_EMAIL_LENGTH as MAX_EMAIL_LENGTH
from studio9.auth.domain import normalise_email as normalise_email
from studio9.catalog.domain import check_description as check_description
from studio9.catalog.domain import check_name as check_name
from studio9.errors import Conflict, InvalidInput, NotFound

MAX_GROUP_NAME_LENGTH: Final = 64
#: A group's name: what ``@name`` names in the CLI, so no spaces, no ``@``, no ``/``.
GROUP_NAME_PATTERN: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_GROUP_NAME_LENGTH - 1}}}")


class Permission(enum.StrEnum):
    """What a share or a project membership allows; ``write`` includes ``read``."""

    READ = "read"
    WRITE = "write"

    def covers(self, other: Permission) -> bool:
        """Whether holding ``self`` allows what ``other`` allows (write covers read)."""
        return self is Permission.WRITE or other is Permission.READ


class GranteeKind(enum.StrEnum):
    """Whom a share is to: a user id, a group id, or a normalised email address."""

    USER = "user"
    GROUP = "group"
    EMAIL = "email"


class MemberKind(enum.StrEnum):
    """What a project member is: a user or a whole group."""

    USER = "user"
    GROUP = "group"


@attrs.frozen(kw_only=True)
class Group:
    """A named set of users; names are unique across the instance (``@name`` names one)."""

    id: str
    name: str
    owner_id: str
    description: str = ""
    created_at: datetime


@attrs.frozen(kw_only=True)
class GroupMember:
    group_id: str
    user_id: str
    added_by: str
    added_at: datetime


@attrs.frozen(kw_only=True)
class Share:
    """``asset_id`` is shared with ``grantee`` (a user id, a group id, or an email address
    normalised with ``normalise_email``). One per (asset, grantee kind, grantee): sharing again
    replaces the permission and keeps ``id`` and ``created_at``."""

    id: str
    asset_id: str
    grantee_kind: GranteeKind
    grantee: str
    permission: Permission
    granted_by: str
    created_at: datetime

    @property
    def grantee_key(self) -> str:
        """The reader key the share gives the asset (``u:``, ``g:`` or ``e:``)."""
        return reader_key(self.grantee_kind, self.grantee)


@attrs.frozen(kw_only=True)
class Project:
    """An owner's named collection of assets; names are unique per owner."""

    id: str
    name: str
    owner_id: str
    description: str = ""
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class Folder:
    """A flat folder of a project; names are unique per project."""

    id: str
    project_id: str
    name: str
    created_at: datetime


@attrs.frozen(kw_only=True)
class ProjectAsset:
    """An asset linked to a project, in one of its folders or at its root (``folder_id`` None).
    An asset is in a project at most once; linking it again moves it."""

    project_id: str
    asset_id: str
    folder_id: str | None = None
    added_by: str
    added_at: datetime


@attrs.frozen(kw_only=True)
class ProjectMember:
    """A user, or every member of a group, reads or writes what the project holds."""

    project_id: str
    member_kind: MemberKind
    member_id: str
    permission: Permission
    added_by: str
    added_at: datetime

    @property
    def member_key(self) -> str:
        """The caller's reader key this membership answers to (``u:`` or ``g:``)."""
        return reader_key(self.member_kind, self.member_id)


@attrs.frozen(kw_only=True)
class Grant:
    """One reason a caller may reach an asset: the share ``via`` names, or membership of the
    project ``via`` names, with the permission it gives."""

    source: Literal["share", "project"]
    via: str
    permission: Permission


class Unset(enum.Enum):
    """The type of ``UNSET``: a filter not given, where None is a value (the project root)."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


# -- reader keys -------------------------------------------------------------------------------

#: What a reader key names; a share's ``GranteeKind`` and a member's ``MemberKind`` are among them.
ReaderKind = Literal["user", "group", "email", "project"]
_PREFIXES: Final[dict[str, str]] = {"user": "u", "group": "g", "email": "e", "project": "p"}
_KINDS: Final = {prefix: kind for kind, prefix in _PREFIXES.items()}


def reader_key(kind: ReaderKind | GranteeKind | MemberKind, id: str) -> str:
    """``u:<id>``, ``g:<id>``, ``e:<email>`` or ``p:<id>``. The id is taken as it is: an email
    must already be normalised (``email_key`` does it)."""
    return f"{_PREFIXES[kind]}:{id}"


def user_key(user_id: str) -> str:
    return reader_key("user", user_id)


def group_key(group_id: str) -> str:
    return reader_key("group", group_id)


def email_key(email: str) -> str:
    """The key of an email address, normalised first. Raises InvalidInput (not an address)."""
    return reader_key("email", normalise_email(email))


def project_key(project_id: str) -> str:
    return reader_key("project", project_id)


def parse_reader_key(key: str) -> tuple[ReaderKind, str] | None:
    """``(kind, id)`` of a reader key, or None for a string that is not one (ignored, not an
    error: a key set is matched, never trusted to be well formed)."""
    prefix, colon, rest = key.partition(":")
    kind = _KINDS.get(prefix)
    if not colon or not rest or kind is None:
        return None
    return kind, rest  # type: ignore[return-value]  # _KINDS holds ReaderKind values only


def keys_by_kind(keys: Iterable[str]) -> dict[str, set[str]]:
    """The ids of ``keys`` by kind (``ReaderKind``; every kind present, maybe empty), so a
    ``GranteeKind`` or ``MemberKind`` indexes it too: what stores match on."""
    found: dict[str, set[str]] = {kind: set() for kind in _PREFIXES}
    for key in keys:
        if (parsed := parse_reader_key(key)) is not None:
            found[parsed[0]].add(parsed[1])
    return found


# -- checks ------------------------------------------------------------------------------------


def check_group_name(name: str) -> str:
    """The name, stripped, if usable; raise InvalidInput (field ``name``) otherwise: 1-64
    letters, digits, ``.``, ``_`` or ``-``, starting with a letter or digit."""
    value = name.strip()
    if not GROUP_NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"group name must be 1-{MAX_GROUP_NAME_LENGTH} letters, digits, '.', '_' or '-',"
            " starting with a letter or digit",
            field="name",
        )
    return value


# -- errors ------------------------------------------------------------------------------------


class GroupNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"group {ref!r} not found")


class GroupNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"a group named {name!r} exists", field="name")


class ShareNotFound(NotFound):
    def __init__(self, share_id: str) -> None:
        super().__init__(f"share {share_id!r} not found")


class ProjectNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(f"project {project_id!r} not found")


class ProjectNameTaken(Conflict):
    """Project names are unique per owner."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the owner has a project named {name!r}", field="name")


class FolderNotFound(NotFound):
    def __init__(self, folder_id: str) -> None:
        super().__init__(f"folder {folder_id!r} not found")


class FolderNameTaken(Conflict):
    """Folder names are unique per project."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the project has a folder named {name!r}", field="name")
