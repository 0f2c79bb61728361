"""``studio9 share``, ``shares``, ``projects …`` and ``assets``: collaboration through the HTTP API.

``share ASSET USER`` gives a user read access (``--write``: write); ``@NAME`` names a group and
an address with ``@`` in it (``ada@example.org``) an email, which reaches its user once they
exist. ``shares`` lists what you received (``--given``: what you gave); ``unshare SHARE_ID`` takes
one back. ``projects`` creates and lists projects, links assets to them and adds members.
``assets [QUERY]`` searches the library: every asset you may read (``--mine``: your own,
``--shared``: those shared with you). Errors are the client's one line (``studio9.client``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from studio9.config.settings import Settings


def add_commands(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    """Add ``share``, ``unshare``, ``shares``, ``projects`` and ``assets`` to ``commands``."""
    share = commands.add_parser(
        "share",
        parents=common,
        help="share an asset with a user, a @group or an email address",
        description="Give USER (a username or id), @GROUP or an email address read access to "
        "ASSET (--write: write access). Only the asset's owner shares it.",
    )
    share.add_argument("asset", metavar="ASSET")
    share.add_argument("grantee", metavar="USER|@GROUP|EMAIL")
    share.add_argument("--write", action="store_true", help="let them change it too")
    share.set_defaults(run=_share, client=True)

    unshare = commands.add_parser(
        "unshare", parents=common, help="take a share back", description="Delete the share SHARE_ID."
    )
    unshare.add_argument("share_id", metavar="SHARE_ID")
    unshare.set_defaults(run=_unshare, client=True)

    shares = commands.add_parser(
        "shares",
        parents=common,
        help="list the shares you received (--given: made)",
        description="List shares to you, your groups or your email; --given lists those you made.",
    )
    shares.add_argument("--given", action="store_true")
    shares.set_defaults(run=_shares, client=True)

    projects = commands.add_parser(
        "projects", help="create and list projects, link assets, add members (via the API)"
    )
    projects.set_defaults(client=True)
    sub = projects.add_subparsers(title="project commands", metavar="PROJECT_COMMAND", required=True)
    create = sub.add_parser(
        "create", parents=common, help="create a project", description="Create a project."
    )
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.set_defaults(run=_project_create)
    listing = sub.add_parser("list", parents=common, help="list your projects", description="List projects.")
    listing.set_defaults(run=_project_list)
    add = sub.add_parser(
        "add", parents=common, help="link an asset to a project", description="Link ASSET to PROJECT."
    )
    add.add_argument("project", metavar="PROJECT")
    add.add_argument("asset", metavar="ASSET")
    add.add_argument("--folder", help="a folder id of the project")
    add.set_defaults(run=_project_add)
    member = sub.add_parser(
        "member",
        parents=common,
        help="make a user or @group a member",
        description="Give USER or @GROUP read (--write: write) access to what PROJECT holds.",
    )
    member.add_argument("project", metavar="PROJECT")
    member.add_argument("member", metavar="USER|@GROUP")
    member.add_argument("--write", action="store_true")
    member.set_defaults(run=_project_member)

    assets = commands.add_parser(
        "assets",
        parents=common,
        help="search the library: what you may read (--mine, --shared)",
        description="Search the assets you may read by words of their name, description and tags.",
    )
    assets.add_argument("query", nargs="?", default=None, metavar="QUERY")
    scope = assets.add_mutually_exclusive_group()
    scope.add_argument("--shared", action="store_true", help="only those shared with you")
    scope.add_argument("--mine", action="store_true", help="only your own")
    assets.add_argument("--kind", help="table, file, model…")
    assets.add_argument("--limit", type=int, default=50)
    assets.set_defaults(run=_assets, client=True)


def _client(settings: Settings) -> Any:
    from studio9.client import StudioClient

    return StudioClient(settings)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def grantee_body(grantee: str) -> dict[str, str]:
    """``@name``: a group; text with ``@`` inside: an email; anything else: a user."""
    if grantee.startswith("@"):
        return {"group": grantee}
    if "@" in grantee:
        return {"email": grantee}
    return {"user": grantee}


def _share(settings: Settings, args: argparse.Namespace) -> int:
    body = {**grantee_body(args.grantee), "permission": "write" if args.write else "read"}
    with _client(settings) as client:
        share = client.request("POST", f"/assets/{args.asset}/shares", json=body)
    print(f"{share['id']}  {share['permission']:<5} {share['grantee_kind']} {share['grantee']}")
    return 0


def _unshare(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        client.request("DELETE", f"/shares/{args.share_id}")
    return 0


def _shares(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        page = client.request("GET", "/shares", params={"given": "true"} if args.given else {})
    for share in page["items"]:
        print(
            f"{share['id']}  {share['asset_id']}  {share['permission']:<5} "
            f"{share['grantee_kind']}:{share['grantee']}"
        )
    return 0


def _project_create(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        project = client.request(
            "POST", "/projects", json={"name": args.name, "description": args.description}
        )
    print(project["id"])
    return 0


def _project_list(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        page = client.request("GET", "/projects")
    for project in page["items"]:
        print(f"{project['id']}  {project['name']}")
    return 0


def _project_add(settings: Settings, args: argparse.Namespace) -> int:
    params = {"folder": args.folder} if args.folder else {}
    with _client(settings) as client:
        client.request("PUT", f"/projects/{args.project}/assets/{args.asset}", params=params)
    return 0


def _project_member(settings: Settings, args: argparse.Namespace) -> int:
    body = {"permission": "write" if args.write else "read"}
    with _client(settings) as client:
        client.request("PUT", f"/projects/{args.project}/members/{args.member}", json=body)
    return 0


def _assets(settings: Settings, args: argparse.Namespace) -> int:
    scope = "shared" if args.shared else "personal" if args.mine else "all"
    params: dict[str, Any] = {"scope": scope, "limit": args.limit}
    if args.query:
        params["q"] = args.query
    if args.kind:
        params["kind"] = args.kind
    with _client(settings) as client:
        page = client.request("GET", "/assets", params=params)
    for asset in page["items"]:
        print(f"{asset['id']}  {asset['kind']:<8} {asset['owner_id']}  {asset['name']}")
    return 0
