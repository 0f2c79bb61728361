"""HTTP routes of groups (``/api/v1/groups``) and projects (``/api/v1/projects``).

A group or project the caller may not see is a 404 on every route, as if it did not exist; one
the caller sees but may not change is a 403 on the routes that change it. A group is named by
its id or ``@name``; a member of a group by a user id or username; a member of a project by a
user id, a username, a group id or ``@groupname``.
"""

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, get, patch, post, put
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from studio9.access.domain import UNSET, Unset
from studio9.access.groups import GroupService
from studio9.access.projects import ProjectService
from studio9.access.wire import (
    FolderIn,
    FolderListOut,
    FolderOut,
    GroupDetailOut,
    GroupIn,
    GroupOut,
    GroupPageOut,
    LinkOut,
    LinkPageOut,
    MemberIn,
    MemberListOut,
    MemberOut,
    ProjectIn,
    ProjectOut,
    ProjectPageOut,
    ProjectPatch,
)
from studio9.auth.domain import Principal
from studio9.web.paging import ID_CURSOR, keyset_page
from studio9.web.responses import problems

#: ``?folder=`` of a project's asset list: a folder's id, or ``root`` for those in no folder.
ROOT: Final = "root"

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")]


# -- groups ----------------------------------------------------------------------------------------


class GroupController(Controller):
    path = "/groups"
    tags = ["groups"]

    @post("/", operation_id="CreateGroup", status_code=201, responses=problems(409))
    async def create_group(
        self,
        data: JSONBody[GroupIn],
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
    ) -> GroupDetailOut:
        """A new group: the caller owns it and is its first member. 409 if the name is taken."""
        view = await group_service.create(principal, name=data.name, description=data.description)
        return GroupDetailOut.from_view(view)

    @get("/", operation_id="ListGroups")
    async def list_groups(
        self,
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> GroupPageOut:
        """The groups the caller is in (admins: every group), newest first; pass ``next_cursor``
        back as ``cursor``."""
        page, next_cursor = await keyset_page(
            lambda size, after: group_service.list(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda group: group.id,
        )
        return GroupPageOut([GroupOut.from_domain(g) for g in page], next_cursor=next_cursor)

    @get("/{group_id:str}", operation_id="GetGroup")
    async def get_group(
        self,
        group_id: FromPath[str],
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
    ) -> GroupDetailOut:
        """The group (by id or ``@name``) with its members: its members and admins only."""
        return GroupDetailOut.from_view(await group_service.get(principal, group_id))

    @delete_route("/{group_id:str}", operation_id="DeleteGroup", status_code=204, responses=problems(403))
    async def delete_group(
        self,
        group_id: FromPath[str],
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
    ) -> None:
        """Delete the group (its owner, admins); the shares to it and its project memberships go too."""
        await group_service.delete(principal, group_id)

    @put("/{group_id:str}/members/{user:str}", operation_id="AddGroupMember", responses=problems(403))
    async def add_member(
        self,
        group_id: FromPath[str],
        user: FromPath[str],
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
    ) -> GroupDetailOut:
        """Add a user (an id or a username) to the group (its owner, admins); answers the group."""
        return GroupDetailOut.from_view(await group_service.add_member(principal, group_id, user))

    @delete_route(
        "/{group_id:str}/members/{user:str}",
        operation_id="RemoveGroupMember",
        status_code=204,
        responses=problems(403, 409),
    )
    async def remove_member(
        self,
        group_id: FromPath[str],
        user: FromPath[str],
        principal: NamedDependency[Principal],
        group_service: NamedDependency[GroupService],
    ) -> None:
        """Take a user out of the group (its owner, admins; a member may leave). 409 for its owner."""
        await group_service.remove_member(principal, group_id, user)


# -- projects --------------------------------------------------------------------------------------


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]

    @post("/", operation_id="CreateProject", status_code=201, responses=problems(409))
    async def create_project(
        self,
        data: JSONBody[ProjectIn],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> ProjectOut:
        """A new project of the caller's. 409 if they have one of that name."""
        project = await project_service.create(principal, name=data.name, description=data.description)
        return ProjectOut.from_domain(project)

    @get("/", operation_id="ListProjects")
    async def list_projects(
        self,
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ProjectPageOut:
        """The projects the caller owns or is a member of (admins: all), newest first."""
        page, next_cursor = await keyset_page(
            lambda size, after: project_service.list(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda project: project.id,
        )
        return ProjectPageOut([ProjectOut.from_domain(p) for p in page], next_cursor=next_cursor)

    @get("/{project_id:str}", operation_id="GetProject")
    async def get_project(
        self,
        project_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> ProjectOut:
        """One project: its owner, its members, admins."""
        return ProjectOut.from_domain(await project_service.get(principal, project_id))

    @patch("/{project_id:str}", operation_id="UpdateProject", responses=problems(403, 409))
    async def update_project(
        self,
        project_id: FromPath[str],
        data: JSONBody[ProjectPatch],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> ProjectOut:
        """Rename or describe (write permission); 409 if its owner has a project of the new name."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return ProjectOut.from_domain(await project_service.update(principal, project_id, **changes))

    @delete_route("/{project_id:str}", operation_id="DeleteProject", status_code=204, responses=problems(403))
    async def delete_project(
        self,
        project_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> None:
        """Delete the project with its folders, links and members (its owner, admins); the assets stay."""
        await project_service.delete(principal, project_id)

    @post(
        "/{project_id:str}/folders",
        operation_id="CreateFolder",
        status_code=201,
        responses=problems(403, 409),
    )
    async def create_folder(
        self,
        project_id: FromPath[str],
        data: JSONBody[FolderIn],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> FolderOut:
        """A new folder (write permission); 409 if the project has one of that name."""
        return FolderOut.from_domain(await project_service.add_folder(principal, project_id, name=data.name))

    @get("/{project_id:str}/folders", operation_id="ListFolders")
    async def list_folders(
        self,
        project_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> FolderListOut:
        """The project's folders, oldest first."""
        folders = await project_service.folders(principal, project_id)
        return FolderListOut([FolderOut.from_domain(f) for f in folders])

    @delete_route(
        "/{project_id:str}/folders/{folder_id:str}",
        operation_id="DeleteFolder",
        status_code=204,
        responses=problems(403),
    )
    async def delete_folder(
        self,
        project_id: FromPath[str],
        folder_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> None:
        """Delete a folder (write permission); the assets in it move to the project's root."""
        await project_service.delete_folder(principal, project_id, folder_id)

    @put("/{project_id:str}/assets/{asset_id:str}", operation_id="LinkAsset", responses=problems(403))
    async def link_asset(
        self,
        project_id: FromPath[str],
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
        folder: Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")] = None,
    ) -> LinkOut:
        """Put an asset the caller owns in the project (write permission), in ``folder`` or at
        its root; linked already: it moves there. Every member of the project reaches it."""
        link = await project_service.link(principal, project_id, asset_id, folder_id=folder)
        return LinkOut.from_domain(link)

    @delete_route(
        "/{project_id:str}/assets/{asset_id:str}",
        operation_id="UnlinkAsset",
        status_code=204,
        responses=problems(403),
    )
    async def unlink_asset(
        self,
        project_id: FromPath[str],
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> None:
        """Take an asset out of the project (write permission, or the asset's owner)."""
        await project_service.unlink(principal, project_id, asset_id)

    @get("/{project_id:str}/assets", operation_id="ListProjectAssets")
    async def list_assets(
        self,
        project_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
        folder: Annotated[str | None, QueryParameter(pattern=f"^(?:{ROOT}|{ID_CURSOR})$")] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> LinkPageOut:
        """The assets in the project, newest first: all, those in ``folder``, or (``folder=root``)
        those in no folder; pass ``next_cursor`` back as ``cursor``."""
        folder_id: str | Unset | None = UNSET if folder is None else None if folder == ROOT else folder
        page, next_cursor = await keyset_page(
            lambda size, after: project_service.linked(
                principal, project_id, folder_id=folder_id, limit=size, after=after
            ),
            limit=limit,
            cursor=cursor,
            key=lambda link: link.asset_id,
        )
        return LinkPageOut([LinkOut.from_domain(a) for a in page], next_cursor=next_cursor)

    @get("/{project_id:str}/members", operation_id="ListProjectMembers")
    async def list_members(
        self,
        project_id: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> MemberListOut:
        """The project's members: users, then groups."""
        members = await project_service.members(principal, project_id)
        return MemberListOut([MemberOut.from_domain(m) for m in members])

    @put("/{project_id:str}/members/{member:str}", operation_id="PutProjectMember", responses=problems(403))
    async def put_member(
        self,
        project_id: FromPath[str],
        member: FromPath[str],
        data: JSONBody[MemberIn],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> MemberOut:
        """Make a user (id or username) or a group (id or ``@name``) a member, or change its
        permission (the project's owner, admins)."""
        found = await project_service.put_member(principal, project_id, member, data.permission)
        return MemberOut.from_domain(found)

    @delete_route(
        "/{project_id:str}/members/{member:str}",
        operation_id="RemoveProjectMember",
        status_code=204,
        responses=problems(403),
    )
    async def remove_member(
        self,
        project_id: FromPath[str],
        member: FromPath[str],
        principal: NamedDependency[Principal],
        project_service: NamedDependency[ProjectService],
    ) -> None:
        """Take a user or a group out of the project (its owner, admins)."""
        await project_service.remove_member(principal, project_id, member)


def provide_group_service(request: Request[Any, Any, Any]) -> GroupService:
    """The ``group_service`` dependency: the container's GroupService."""
    service: GroupService = request.app.state.container.groups
    return service


def provide_project_service(request: Request[Any, Any, Any]) -> ProjectService:
    """The ``project_service`` dependency: the container's ProjectService."""
    service: ProjectService = request.app.state.container.projects
    return service
