"""AccessStore contract, run against every system-of-record adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from studio9.access.domain import (
    UNSET,
    Folder,
    FolderNameTaken,
    FolderNotFound,
    Grant,
    GranteeKind,
    Group,
    GroupMember,
    GroupNameTaken,
    GroupNotFound,
    MemberKind,
    Permission,
    Project,
    ProjectAsset,
    ProjectMember,
    ProjectNameTaken,
    ProjectNotFound,
    Share,
    ShareNotFound,
    email_key,
    group_key,
    project_key,
    user_key,
)
from studio9.access.ports import AccessStore
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetVersion
from studio9.ids import new_id

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
# Ids one millisecond apart, so that the order they were made in is the order they sort in.
_ID_MILLIS = itertools.count(int(NOW.timestamp() * 1000))
ADA, BOB, CY = "01ADA000000000000000000000", "01BOB000000000000000000000", "01CY0000000000000000000000"


def _id() -> str:
    return new_id(next(_ID_MILLIS))


@pytest.fixture
def store(database: Any) -> AccessStore:
    access: AccessStore = database.access
    return access


@pytest.fixture
async def asset(database: Any) -> Asset:
    return await _asset(database)


async def _asset(database: Any, owner_id: str = ADA) -> Asset:
    made = Asset(
        id=_id(), kind=AssetKind.TABLE, owner_id=owner_id, name="sales", created_at=NOW, updated_at=NOW
    )
    await database.catalog.add(made, AssetVersion(asset_id=made.id, version=1, created_at=NOW))
    return made


async def _group(store: AccessStore, name: str = "analysts", *members: str) -> Group:
    group = Group(id=_id(), name=name, owner_id=ADA, description="the analysts", created_at=NOW)
    await store.add_group(group)
    for user in members:
        await store.add_member(GroupMember(group_id=group.id, user_id=user, added_by=ADA, added_at=NOW))
    return group


def _share(
    asset: Asset,
    grantee: str,
    kind: GranteeKind = GranteeKind.USER,
    permission: Permission = Permission.READ,
    **changes: Any,
) -> Share:
    values: dict[str, Any] = {
        "id": _id(),
        "asset_id": asset.id,
        "grantee_kind": kind,
        "grantee": grantee,
        "permission": permission,
        "granted_by": ADA,
        "created_at": NOW,
    }
    return Share(**(values | changes))


async def _project(store: AccessStore, name: str = "churn", owner_id: str = ADA) -> Project:
    project = Project(id=_id(), name=name, owner_id=owner_id, description="", created_at=NOW, updated_at=NOW)
    await store.add_project(project)
    return project


async def _folder(store: AccessStore, project: Project, name: str = "raw") -> Folder:
    folder = Folder(id=_id(), project_id=project.id, name=name, created_at=NOW)
    await store.add_folder(folder)
    return folder


def _link(project: Project, asset: Asset, folder: Folder | None = None, **changes: Any) -> ProjectAsset:
    values: dict[str, Any] = {
        "project_id": project.id,
        "asset_id": asset.id,
        "folder_id": folder.id if folder else None,
        "added_by": ADA,
        "added_at": NOW,
    }
    return ProjectAsset(**(values | changes))


def _member(
    project: Project,
    member_id: str,
    kind: MemberKind = MemberKind.USER,
    permission: Permission = Permission.READ,
) -> ProjectMember:
    return ProjectMember(
        project_id=project.id,
        member_kind=kind,
        member_id=member_id,
        permission=permission,
        added_by=ADA,
        added_at=NOW,
    )


# -- groups -------------------------------------------------------------------------------------


async def test_a_group_is_found_by_id_and_name_and_names_are_unique(store: AccessStore) -> None:
    group = await _group(store)
    assert await store.get_group(group.id) == group
    assert await store.group_named("analysts") == group
    with pytest.raises(GroupNameTaken):
        await _group(store, "analysts")
    with pytest.raises(GroupNotFound):
        await store.get_group(_id())
    with pytest.raises(GroupNotFound):
        await store.group_named("Analysts")


async def test_membership_is_idempotent(store: AccessStore) -> None:
    group = await _group(store)
    member = GroupMember(group_id=group.id, user_id=BOB, added_by=ADA, added_at=NOW)
    assert await store.add_member(member) is True
    assert await store.add_member(member) is False
    await store.add_member(GroupMember(group_id=group.id, user_id=ADA, added_by=ADA, added_at=NOW))
    assert await store.members(group.id) == [ADA, BOB]
    assert await store.groups_of(BOB) == [group.id]
    assert await store.remove_member(group.id, BOB) is True
    assert await store.remove_member(group.id, BOB) is False
    assert await store.members(group.id) == [ADA]
    assert await store.groups_of(BOB) == []
    with pytest.raises(GroupNotFound):
        await store.add_member(GroupMember(group_id=_id(), user_id=BOB, added_by=ADA, added_at=NOW))


async def test_groups_are_listed_newest_first_by_page_and_member(store: AccessStore) -> None:
    first = await _group(store, "one", BOB)
    second = await _group(store, "two")
    third = await _group(store, "three", BOB)
    assert await store.list_groups(member=None, limit=10) == [third, second, first]
    assert await store.list_groups(member=None, limit=2) == [third, second]
    assert await store.list_groups(member=None, limit=2, after=second.id) == [first]
    assert await store.list_groups(member=BOB, limit=10) == [third, first]
    assert await store.list_groups(member=CY, limit=10) == []


async def test_deleting_a_group_takes_its_members_shares_and_project_memberships(
    store: AccessStore, asset: Asset
) -> None:
    group = await _group(store, "doomed", BOB)
    kept = await _group(store, "kept", BOB)
    project = await _project(store)
    await store.put_share(_share(asset, group.id, GranteeKind.GROUP))
    kept_share = await store.put_share(_share(asset, kept.id, GranteeKind.GROUP))
    await store.put_member(_member(project, group.id, MemberKind.GROUP))
    kept_member = await store.put_member(_member(project, kept.id, MemberKind.GROUP))

    await store.delete_group(group.id)

    with pytest.raises(GroupNotFound):
        await store.get_group(group.id)
    with pytest.raises(GroupNotFound):
        await store.delete_group(group.id)
    assert await store.members(group.id) == []
    assert await store.groups_of(BOB) == [kept.id]
    assert await store.shares_of_asset(asset.id) == [kept_share]
    assert await store.project_members(project.id) == [kept_member]
    await _group(store, "doomed")  # the name is free again


# -- shares -------------------------------------------------------------------------------------


async def test_sharing_again_changes_the_permission_and_keeps_the_first_share(
    store: AccessStore, asset: Asset
) -> None:
    first = _share(asset, BOB)
    assert await store.put_share(first) == first
    again = _share(asset, BOB, permission=Permission.WRITE, granted_by=CY, created_at=LATER)
    stored = await store.put_share(again)
    assert stored.id == first.id
    assert stored.created_at == first.created_at
    assert stored.granted_by == first.granted_by
    assert stored.permission is Permission.WRITE
    assert await store.get_share(first.id) == stored
    with pytest.raises(ShareNotFound):
        await store.get_share(again.id)
    # Another grantee, or the same id under another kind, is another share.
    by_email = await store.put_share(_share(asset, "bob@example.org", GranteeKind.EMAIL))
    as_group = await store.put_share(_share(asset, BOB, GranteeKind.GROUP))
    assert await store.shares_of_asset(asset.id) == [stored, by_email, as_group]


async def test_a_share_is_deleted_and_needs_its_asset(store: AccessStore, asset: Asset) -> None:
    share = await store.put_share(_share(asset, BOB))
    await store.delete_share(share.id)
    with pytest.raises(ShareNotFound):
        await store.get_share(share.id)
    with pytest.raises(ShareNotFound):
        await store.delete_share(share.id)
    assert await store.shares_of_asset(asset.id) == []
    missing = attrs.evolve(asset, id=_id())
    with pytest.raises(AssetNotFound):
        await store.put_share(_share(missing, BOB))


async def test_shares_given_and_received_are_paged_newest_first(database: Any, store: AccessStore) -> None:
    group = await _group(store, "readers", BOB)
    assets = [await _asset(database) for _ in range(3)]
    to_bob = await store.put_share(_share(assets[0], BOB))
    to_group = await store.put_share(_share(assets[1], group.id, GranteeKind.GROUP))
    to_email = await store.put_share(_share(assets[2], "bob@example.org", GranteeKind.EMAIL))
    by_cy = await store.put_share(_share(assets[2], CY, granted_by=CY))

    assert await store.shares_given(ADA, limit=10) == [to_email, to_group, to_bob]
    assert await store.shares_given(ADA, limit=2) == [to_email, to_group]
    assert await store.shares_given(ADA, limit=2, after=to_group.id) == [to_bob]
    assert await store.shares_given(CY, limit=10) == [by_cy]

    keys = {user_key(BOB), group_key(group.id), email_key("Bob@Example.org"), project_key(_id())}
    assert await store.shares_received(keys, limit=10) == [to_email, to_group, to_bob]
    assert await store.shares_received(keys, limit=1, after=to_email.id) == [to_group]
    assert await store.shares_received({user_key(BOB)}, limit=10) == [to_bob]
    assert await store.shares_received({user_key(CY)}, limit=10) == [by_cy]
    assert await store.shares_received({group_key(BOB)}, limit=10) == []
    assert await store.shares_received(set(), limit=10) == []


async def test_deleting_an_asset_takes_its_shares_and_links(database: Any, store: AccessStore) -> None:
    doomed, kept = await _asset(database), await _asset(database)
    project = await _project(store)
    await store.put_share(_share(doomed, BOB))
    kept_share = await store.put_share(_share(kept, BOB))
    await store.link_asset(_link(project, doomed))
    kept_link = await store.link_asset(_link(project, kept))

    await database.catalog.delete(doomed.id)

    assert await store.shares_of_asset(doomed.id) == []
    assert await store.shares_received({user_key(BOB)}, limit=10) == [kept_share]
    assert await store.projects_of_asset(doomed.id) == []
    assert await store.project_assets(project.id, limit=10) == [kept_link]
    assert await store.reader_keys(doomed.id, ADA) == {user_key(ADA)}


# -- projects -----------------------------------------------------------------------------------


async def test_project_names_are_unique_per_owner(store: AccessStore) -> None:
    project = await _project(store, "churn")
    assert await store.get_project(project.id) == project
    with pytest.raises(ProjectNameTaken):
        await _project(store, "churn")
    await _project(store, "churn", owner_id=BOB)
    other = await _project(store, "retention")
    with pytest.raises(ProjectNameTaken):
        await store.update_project(other.id, name="churn", at=LATER)
    with pytest.raises(ProjectNotFound):
        await store.get_project(_id())
    with pytest.raises(ProjectNotFound):
        await store.update_project(_id(), name="x", at=LATER)


async def test_a_project_is_renamed_and_described(store: AccessStore) -> None:
    project = await _project(store)
    renamed = await store.update_project(project.id, name="churn 2027", at=LATER)
    assert (renamed.name, renamed.description, renamed.updated_at) == ("churn 2027", "", LATER)
    described = await store.update_project(project.id, description="why they leave", at=LATER)
    assert (described.name, described.description) == ("churn 2027", "why they leave")
    assert described.created_at == NOW
    assert await store.get_project(project.id) == described


async def test_folders_are_unique_per_project(store: AccessStore) -> None:
    project, other = await _project(store, "a"), await _project(store, "b")
    raw = await _folder(store, project, "raw")
    clean = await _folder(store, project, "clean")
    await _folder(store, other, "raw")
    with pytest.raises(FolderNameTaken):
        await _folder(store, project, "raw")
    with pytest.raises(ProjectNotFound):
        await store.add_folder(Folder(id=_id(), project_id=_id(), name="raw", created_at=NOW))
    assert await store.list_folders(project.id) == [raw, clean]
    assert await store.get_folder(raw.id) == raw
    with pytest.raises(FolderNotFound):
        await store.get_folder(_id())


async def test_linking_again_moves_the_asset_and_deleting_a_folder_moves_to_the_root(
    database: Any, store: AccessStore
) -> None:
    project = await _project(store)
    raw, clean = await _folder(store, project, "raw"), await _folder(store, project, "clean")
    first, second, third = [await _asset(database) for _ in range(3)]
    linked = await store.link_asset(_link(project, first, raw))
    moved = await store.link_asset(_link(project, first, clean, added_by=BOB, added_at=LATER))
    assert moved == _link(project, first, clean)  # who added it, and when, stay
    second_link = await store.link_asset(_link(project, second, raw))
    third_link = await store.link_asset(_link(project, third))
    assert linked.folder_id == raw.id

    assert await store.project_assets(project.id, limit=10) == [third_link, second_link, moved]
    assert await store.project_assets(project.id, folder_id=UNSET, limit=1, after=third.id) == [second_link]
    assert await store.project_assets(project.id, folder_id=None, limit=10) == [third_link]
    assert await store.project_assets(project.id, folder_id=clean.id, limit=10) == [moved]

    await store.delete_folder(clean.id)
    with pytest.raises(FolderNotFound):
        await store.delete_folder(clean.id)
    assert await store.list_folders(project.id) == [raw]
    assert await store.project_assets(project.id, folder_id=None, limit=10) == [
        third_link,
        _link(project, first),
    ]


async def test_a_link_needs_its_project_folder_and_asset(
    database: Any, store: AccessStore, asset: Asset
) -> None:
    project, other = await _project(store, "a"), await _project(store, "b")
    elsewhere = await _folder(store, other)
    with pytest.raises(FolderNotFound):
        await store.link_asset(_link(project, asset, elsewhere))
    with pytest.raises(ProjectNotFound):
        await store.link_asset(_link(project, asset, project_id=_id()))
    with pytest.raises(AssetNotFound):
        await store.link_asset(_link(project, asset, asset_id=_id()))
    assert await store.project_assets(project.id, limit=10) == []


async def test_an_asset_is_unlinked(store: AccessStore, asset: Asset) -> None:
    project, other = await _project(store, "a"), await _project(store, "b")
    await store.link_asset(_link(project, asset))
    folder = await _folder(store, other)
    await store.link_asset(_link(other, asset, folder))
    assert await store.projects_of_asset(asset.id) == sorted([project.id, other.id])
    assert await store.folders_of_asset(asset.id) == [folder.id]  # the root is no folder
    assert await store.unlink_asset(project.id, asset.id) is True
    assert await store.unlink_asset(project.id, asset.id) is False
    assert await store.projects_of_asset(asset.id) == [other.id]


async def test_members_are_upserted_and_removed(store: AccessStore) -> None:
    project = await _project(store)
    group = await _group(store)
    first = await store.put_member(_member(project, BOB))
    assert first == _member(project, BOB)
    changed = await store.put_member(
        attrs.evolve(_member(project, BOB, permission=Permission.WRITE), added_by=CY, added_at=LATER)
    )
    assert changed == _member(project, BOB, permission=Permission.WRITE)
    as_group = await store.put_member(_member(project, group.id, MemberKind.GROUP))
    ada = await store.put_member(_member(project, ADA))
    assert await store.project_members(project.id) == [ada, changed, as_group]
    assert await store.remove_member_of_project(project.id, MemberKind.USER, BOB) is True
    assert await store.remove_member_of_project(project.id, MemberKind.USER, BOB) is False
    assert await store.remove_member_of_project(project.id, MemberKind.USER, group.id) is False
    assert await store.project_members(project.id) == [ada, as_group]
    with pytest.raises(ProjectNotFound):
        await store.put_member(attrs.evolve(_member(project, BOB), project_id=_id()))


async def test_deleting_a_project_takes_its_folders_links_and_members(
    store: AccessStore, asset: Asset
) -> None:
    project, kept = await _project(store, "a"), await _project(store, "b")
    folder = await _folder(store, project)
    await store.link_asset(_link(project, asset, folder))
    await store.link_asset(_link(kept, asset))
    await store.put_member(_member(project, BOB))
    await store.delete_project(project.id)
    with pytest.raises(ProjectNotFound):
        await store.get_project(project.id)
    with pytest.raises(ProjectNotFound):
        await store.delete_project(project.id)
    with pytest.raises(FolderNotFound):
        await store.get_folder(folder.id)
    assert await store.list_folders(project.id) == []
    assert await store.project_members(project.id) == []
    assert await store.projects_of_asset(asset.id) == [kept.id]
    assert await store.member_keys(BOB, None) == {user_key(BOB)}
    await _project(store, "a")  # the name is free again


async def test_projects_are_listed_by_owner_and_keys(store: AccessStore) -> None:
    group = await _group(store, "team", CY)
    own = await _project(store, "own", owner_id=BOB)
    direct = await _project(store, "direct")
    through_group = await _project(store, "through group")
    by_key = await _project(store, "by key")
    hidden = await _project(store, "hidden")
    await store.put_member(_member(direct, BOB))
    await store.put_member(_member(through_group, group.id, MemberKind.GROUP))
    await store.put_member(_member(hidden, CY))

    bob = {user_key(BOB), group_key(group.id), project_key(by_key.id)}
    assert await store.list_projects(keys=bob, owner_id=BOB, limit=10) == [by_key, through_group, direct, own]
    assert await store.list_projects(keys=bob, owner_id=BOB, limit=2, after=through_group.id) == [direct, own]
    assert await store.list_projects(keys=set(), owner_id=BOB, limit=10) == [own]
    assert await store.list_projects(keys={user_key(BOB)}, owner_id=None, limit=10) == [direct]
    assert await store.list_projects(keys=set(), owner_id=None, limit=10) == []
    everything = [hidden, by_key, through_group, direct, own]
    assert await store.list_projects(keys=None, limit=10) == everything
    assert await store.list_projects(keys=None, limit=2, after=by_key.id) == everything[2:4]


# -- policy reads -------------------------------------------------------------------------------


async def test_grants_name_the_shares_and_projects_of_the_callers_keys_only(
    database: Any, store: AccessStore, asset: Asset
) -> None:
    group = await _group(store, "team", BOB)
    to_bob = await store.put_share(_share(asset, BOB))
    to_group = await store.put_share(_share(asset, group.id, GranteeKind.GROUP, Permission.WRITE))
    to_email = await store.put_share(_share(asset, "bob@example.org", GranteeKind.EMAIL))
    to_cy = await store.put_share(_share(asset, CY, permission=Permission.WRITE))
    other_asset = await _asset(database)
    await store.put_share(_share(other_asset, BOB, permission=Permission.WRITE))
    linked, unlinked, not_bobs = (
        await _project(store, "a"),
        await _project(store, "b"),
        await _project(store, "c"),
    )
    await store.link_asset(_link(linked, asset))
    await store.link_asset(_link(not_bobs, asset))
    await store.link_asset(_link(unlinked, other_asset))
    await store.put_member(_member(linked, group.id, MemberKind.GROUP, Permission.WRITE))
    await store.put_member(_member(unlinked, BOB, permission=Permission.WRITE))
    await store.put_member(_member(not_bobs, CY))

    bob = await store.member_keys(BOB, "bob@example.org")
    expected = [
        Grant(source="project", via=linked.id, permission=Permission.WRITE),
        *sorted(
            (Grant(source="share", via=s.id, permission=s.permission) for s in (to_bob, to_group, to_email)),
            key=lambda g: g.via,
        ),
    ]
    assert await store.grants(asset.id, bob) == expected
    assert await store.grants(asset.id, {user_key(BOB)}) == [
        Grant(source="share", via=to_bob.id, permission=Permission.READ)
    ]
    assert await store.grants(asset.id, {user_key(CY)}) == [
        Grant(source="project", via=not_bobs.id, permission=Permission.READ),
        Grant(source="share", via=to_cy.id, permission=Permission.WRITE),
    ]
    # A p: key is not a membership, and keys of no one grant nothing.
    assert await store.grants(asset.id, {project_key(linked.id)}) == []
    assert await store.grants(asset.id, {user_key(ADA), "junk", "x:y"}) == []
    assert await store.grants(asset.id, set()) == []
    assert await store.grants(_id(), bob) == []


async def test_member_keys_hold_the_user_groups_email_and_projects(store: AccessStore) -> None:
    group, other = await _group(store, "team", BOB), await _group(store, "others", CY)
    direct, through_group = await _project(store, "direct"), await _project(store, "through group")
    elsewhere = await _project(store, "elsewhere")
    await store.put_member(_member(direct, BOB))
    await store.put_member(_member(through_group, group.id, MemberKind.GROUP))
    await store.put_member(_member(elsewhere, other.id, MemberKind.GROUP))
    await store.put_member(_member(elsewhere, CY))

    assert await store.member_keys(BOB, " Bob@Example.ORG ") == {
        user_key(BOB),
        group_key(group.id),
        "e:bob@example.org",
        project_key(direct.id),
        project_key(through_group.id),
    }
    assert await store.member_keys(ADA, None) == {user_key(ADA)}
    assert await store.member_keys(CY, None) == {user_key(CY), group_key(other.id), project_key(elsewhere.id)}


async def test_reader_keys_hold_the_owner_grantees_and_projects(store: AccessStore, asset: Asset) -> None:
    group = await _group(store)
    project = await _project(store)
    await store.put_share(_share(asset, BOB))
    await store.put_share(_share(asset, group.id, GranteeKind.GROUP))
    await store.put_share(_share(asset, "bob@example.org", GranteeKind.EMAIL))
    await store.link_asset(_link(project, asset))
    assert await store.reader_keys(asset.id, ADA) == {
        user_key(ADA),
        user_key(BOB),
        group_key(group.id),
        email_key("bob@example.org"),
        project_key(project.id),
    }
    assert await store.reader_keys(_id(), CY) == {user_key(CY)}
