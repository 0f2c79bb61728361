"""The access matrix: for every operation of the OpenAPI document (by ``operationId``) its route
class, and for every route class what each of ten principals gets; then how each operation is
called (``CALLS``: a minimal valid body, query or path parameter, for the few that need one).
``test_access_matrix.py`` sends every operation as each principal and compares.

The principals, against a fixture world where ``ada`` owns a table (and its source file):

* ``owner``: ada; also the owner of the group ``analysts``, of the project and of her job and stream;
* ``read_share``: bob, with a read share of the table (and the file);
* ``write_share``: cy, with a write share;
* ``group_share``: dan, a member of ``analysts``, which has a read share;
* ``project_reader``: eve, a read member of the project the table is linked to;
* ``project_writer``: fay, a write member of that project;
* ``stranger``: gus, a user with no grant at all;
* ``admin``: the first admin;
* ``no_token``: no ``Authorization`` header;
* ``revoked_token``: a token of ada's, revoked.

Outcomes: ``ok`` (the access check passed: any status but 401, 403, 404 and 5xx; a 409 or 422
about the body is fine), ``404`` (may not read it: as if it did not exist), ``403`` (may read it,
may not do this), ``401`` (no token, or a revoked one).

The policy (README "Sharing, projects and the library", docs/decisions.md "Collaboration"): an
asset's owner and admins do anything; a share or a project membership gives ``read`` or
``write``, never sharing or deleting; without any grant an asset does not exist (404). Jobs,
streams, tokens and shares are their owner's (and admins'), never shared: 404 to anyone else.
Groups are seen by their members, managed by their owner; projects are seen by their members,
changed by write members, managed by their owner.

A new operation fails the test until it has a line in ``ROUTES`` (and, if it needs a body, in
``CALLS``); a new route class needs a row in ``CLASSES``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Final, Literal

import attrs
from litestar import Litestar
from litestar.testing import AsyncTestClient

Principal = Literal[
    "owner",
    "read_share",
    "write_share",
    "group_share",
    "project_reader",
    "project_writer",
    "stranger",
    "admin",
    "no_token",
    "revoked_token",
]
Outcome = Literal["ok", "401", "403", "404"]

PRINCIPALS: Final[tuple[Principal, ...]] = (
    "owner",
    "read_share",
    "write_share",
    "group_share",
    "project_reader",
    "project_writer",
    "stranger",
    "admin",
    "no_token",
    "revoked_token",
)


def _row(
    ok: Collection[Principal], forbidden: Collection[Principal] = (), *, public: bool = False
) -> Mapping[Principal, Outcome]:
    """Each principal's outcome: ``ok`` for ``ok``, 403 for ``forbidden``, 401 for the two
    without a valid token (unless ``public``), 404 for everyone else."""
    row: dict[Principal, Outcome] = {}
    for principal in PRINCIPALS:
        if principal in ok:
            row[principal] = "ok"
        elif principal in forbidden:
            row[principal] = "403"
        elif principal in ("no_token", "revoked_token"):
            row[principal] = "ok" if public else "401"
        else:
            row[principal] = "404"
    return row


_USERS: Final[set[Principal]] = {p for p in PRINCIPALS if p not in ("no_token", "revoked_token")}
_READERS: Final[set[Principal]] = {"read_share", "group_share", "project_reader"}
_WRITERS: Final[set[Principal]] = {"write_share", "project_writer"}
_OWNERS: Final[set[Principal]] = {"owner", "admin"}

#: What each principal gets, per route class.
CLASSES: Final[Mapping[str, Mapping[Principal, Outcome]]] = {
    # No token needed: health, identity of the service, the login.
    "public": _row(set(PRINCIPALS), public=True),
    # Any valid token: make things, list one's own (or what one may read), job types, status.
    "any_user": _row(_USERS),
    # The admin role: users, config writes. A user who is not one is refused (403), not deceived.
    "admin_only": _row({"admin"}, _USERS - {"admin"}),
    # Read an asset (the table or its file): its content, rows, stats, export, lineage, SQL, copy.
    "asset_read": _row(_OWNERS | _READERS | _WRITERS),
    # Change an asset: a write share or a write membership is enough.
    "asset_write": _row(_OWNERS | _WRITERS, _READERS),
    # Delete or share an asset, list its shares, read its audit trail: its owner and admins only.
    "asset_own": _row(_OWNERS, _READERS | _WRITERS),
    # An object of ada's that is never shared (job, stream, token, a share she made): 404 to others.
    "owner_only": _row(_OWNERS),
    # The group ``analysts`` (ada owns it, dan is a member): its members and admins see it…
    "group_member": _row(_OWNERS | {"group_share"}),
    # …its owner and admins change it; a member is refused.
    "group_owner": _row(_OWNERS, {"group_share"}),
    # The project (ada owns it; eve reads, fay writes): its members and admins see it…
    "project_read": _row(_OWNERS | {"project_reader", "project_writer"}),
    # …write members change it (folders, name; unlinking: write, or the asset's owner)…
    "project_write": _row(_OWNERS | {"project_writer"}, {"project_reader"}),
    # …its owner and admins delete it and manage its members; linking an asset needs write on the
    # project *and* owning the asset (linking shares it), so fay, who writes, is refused too.
    "project_own": _row(_OWNERS, {"project_reader", "project_writer"}),
}

#: Every operation of the OpenAPI document, by operationId, and its route class. A new operation
#: must be added here (the test fails until it is).
ROUTES: Final[Mapping[str, str]] = {
    # system
    "GetHealth": "public",
    "GetAbout": "public",
    "GetStatus": "any_user",
    # auth
    "CreateToken": "public",
    "GetMe": "any_user",
    "ListTokens": "any_user",
    "RevokeToken": "owner_only",
    "CreateUser": "admin_only",
    "ListUsers": "admin_only",
    "GetUser": "admin_only",
    "DeleteUser": "admin_only",
    # jobs
    "CreateJob": "any_user",
    "ListJobs": "any_user",
    "ListJobTypes": "any_user",
    "GetJob": "owner_only",
    "GetJobStatus": "owner_only",
    "CancelJob": "owner_only",
    "ListJobEvents": "owner_only",
    "ListJobHeartbeats": "owner_only",
    "ListJobOutputs": "owner_only",
    "DownloadJobOutput": "owner_only",
    # files (a file is an asset: its shares and projects reach it)
    "UploadFile": "any_user",
    "ListFiles": "any_user",
    "GetFile": "asset_read",
    "DownloadFile": "asset_read",
    "DeleteFile": "asset_own",
    # assets and the library
    "SearchLibrary": "any_user",
    "GetAsset": "asset_read",
    "ListAssetVersions": "asset_read",
    "GetAssetLineage": "asset_read",
    "UpdateAsset": "asset_write",
    "DeleteAsset": "asset_own",
    # config settings
    "ListConfigSettings": "any_user",
    "GetConfigSetting": "any_user",
    "GetConfigSettingHistory": "any_user",
    "PutConfigSetting": "admin_only",
    "DeleteConfigSetting": "admin_only",
    # streams
    "CreateStream": "any_user",
    "ListStreams": "any_user",
    "GetStream": "owner_only",
    "UpdateStream": "owner_only",
    "DeleteStream": "owner_only",
    "PauseStream": "owner_only",
    "ResumeStream": "owner_only",
    "PushStreamItems": "owner_only",
    "ListStreamJobs": "owner_only",
    # predictions (filtered to the caller's own)
    "ListPredictions": "any_user",
    "ExportPredictions": "any_user",
    "CountPredictionsPerDay": "any_user",
    # tables and SQL
    "CreateTable": "any_user",
    "ListTables": "any_user",
    "GetTable": "asset_read",
    "GetTableRows": "asset_read",
    "GetTableStats": "asset_read",
    "GetTableValues": "asset_read",
    "ExportTable": "asset_read",
    "CopyTable": "asset_read",
    "PreviewSql": "asset_read",  # a query naming the table "ada/sales"
    "UpdateTable": "asset_write",
    # audit (``?asset=`` the table: its owner's trail)
    "ListAuditEvents": "asset_own",
    # shares
    "ShareAsset": "asset_own",
    "ListAssetShares": "asset_own",
    "ListShares": "any_user",
    "DeleteShare": "owner_only",  # the asset's owner, the granter (ada) and admins
    # groups
    "CreateGroup": "any_user",
    "ListGroups": "any_user",
    "GetGroup": "group_member",
    "DeleteGroup": "group_owner",
    "AddGroupMember": "group_owner",
    "RemoveGroupMember": "group_owner",  # someone else (hal): a member may only remove themself
    # projects
    "CreateProject": "any_user",
    "ListProjects": "any_user",
    "GetProject": "project_read",
    "ListFolders": "project_read",
    "ListProjectAssets": "project_read",
    "ListProjectMembers": "project_read",
    "UpdateProject": "project_write",
    "CreateFolder": "project_write",
    "DeleteFolder": "project_write",
    "UnlinkAsset": "project_write",  # an asset of ada's: she could as its owner, too
    "LinkAsset": "project_own",  # write on the project and owning the asset
    "DeleteProject": "project_own",
    "PutProjectMember": "project_own",
    "RemoveProjectMember": "project_own",
    # models: a registered model is an asset (ada's ``matrix-model``, granted like the table)
    "ListModels": "any_user",
    "ImportModel": "any_user",
    "GetModel": "asset_read",
    "GetModelVersion": "asset_read",
    "GetModelVersionByAlias": "asset_read",
    "ExportModelVersion": "asset_read",
    "PredictByAlias": "asset_read",
    "PredictByVersion": "asset_read",
    "UpdateModelVersion": "asset_write",
    "SetModelAlias": "asset_write",
    "DeleteModelAlias": "asset_write",
    "DeleteModelVersion": "asset_write",  # version 1 is aliased: 409 to whoever may try
    "DeleteModel": "asset_own",
    # experiments: an experiment is an asset (ada's ``matrix-experiment``, granted like the table);
    # its runs follow it: reading the experiment reads them, writing it logs to them
    "CreateExperiment": "any_user",
    "ListExperiments": "any_user",
    "SearchRuns": "any_user",  # finds the runs of the experiments the caller may read
    "GetExperiment": "asset_read",
    "GetRun": "asset_read",
    "GetMetricHistory": "asset_read",
    "UpdateExperiment": "asset_write",
    "SetExperimentTag": "asset_write",
    "DeleteExperimentTag": "asset_write",
    "CreateRun": "asset_write",
    "UpdateRun": "asset_write",
    "LogRun": "asset_write",
    "DeleteRun": "asset_write",  # a soft delete: changing the experiment's content
    "DeleteExperiment": "asset_own",
}


# -- how each operation is called ------------------------------------------------------------------

API: Final = "/api/v1"
ADA_PASSWORD: Final = "correct horse battery staple"
#: Not a principal: the member that group and project membership routes add and remove.
SPARE: Final = "hal"


@attrs.define
class World:
    """The fixture world: a client of the app, each principal's headers, and the ids that fill
    path parameters by name."""

    client: AsyncTestClient[Litestar]
    document: dict[str, Any]
    headers: dict[Principal, dict[str, str]]
    paths: dict[str, str]
    counter: Iterator[int] = attrs.field(factory=itertools.count)

    @property
    def ada(self) -> dict[str, str]:
        return self.headers["owner"]

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    async def upload(self) -> str:
        """A new file of ada's; returns its id."""
        file_id: str = (await self.send("POST", f"{API}/files?name=f.csv", self.ada, 201, content=b"a\n1\n"))[
            "id"
        ]
        return file_id

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    async def send(self, method: str, path: str, headers: Mapping[str, str], expected: int, **kw: Any) -> Any:
        """Send a setup request; its status must be ``expected``. Returns its JSON (None if empty)."""
        response = await self.client.request(method, path, headers=dict(headers), **kw)
        assert response.status_code == expected, f"setup {method} {path}: {response.text}"
        return response.json() if response.content else None


@attrs.frozen(kw_only=True)
class Call:
    """What one request adds to the document's method and path: path parameters over the world's,
    a query, a JSON body or raw content."""

    params: Mapping[str, str] = attrs.field(factory=dict)
    query: Mapping[str, Any] = attrs.field(factory=dict)
    json: Any = None
    content: bytes | None = None


async def grant(world: World, asset_id: str) -> None:
    """Give ``asset_id`` (ada's) the grants the principals are named after."""
    shares = f"{API}/assets/{asset_id}/shares"
    await world.send("POST", shares, world.ada, 201, json={"user": "bob"})
    await world.send("POST", shares, world.ada, 201, json={"user": "cy", "permission": "write"})
    await world.send("POST", shares, world.ada, 201, json={"group": "@analysts"})
    await world.send("PUT", f"{API}/projects/{world.paths['project_id']}/assets/{asset_id}", world.ada, 200)


# -- the requests ----------------------------------------------------------------------------------

#: A minimal valid body or query, where an operation needs one (an invalid one would answer 422
#: before the access check and hide it); path parameters the world does not name alike.
CALLS: Mapping[str, Callable[[World], Call]] = {
    "CreateToken": lambda w: Call(json={"username": "ada", "password": ADA_PASSWORD}),
    "CreateUser": lambda w: Call(json={"username": w.unique("new")}),
    "CreateJob": lambda w: Call(json={"type": "system.noop"}),
    "DownloadJobOutput": lambda w: Call(params={"name": "profile.json"}),
    "UploadFile": lambda w: Call(query={"name": "up.csv"}, content=b"a\n1\n"),
    "UpdateAsset": lambda w: Call(json={"description": "by the matrix"}),
    "GetConfigSetting": lambda w: Call(params={"name": "x"}),
    "GetConfigSettingHistory": lambda w: Call(params={"name": "x"}),
    "PutConfigSetting": lambda w: Call(params={"name": "x"}, json={"value": 2}),
    "CreateStream": lambda w: Call(json={"job_type": "system.noop", "item_param": "echo"}),
    "UpdateStream": lambda w: Call(json={"batch_size": 5}),
    "PushStreamItems": lambda w: Call(json=[{"a": 1}]),
    "CreateTable": lambda w: Call(json={"name": w.unique("t"), "sql": "SELECT 1 AS x"}),
    "GetTableValues": lambda w: Call(query={"column": "city"}),
    "CopyTable": lambda w: Call(json={"name": w.unique("copy")}),
    "UpdateTable": lambda w: Call(json={"description": "by the matrix"}),
    "PreviewSql": lambda w: Call(json={"sql": 'SELECT count(*) FROM "ada/sales"'}),
    "ListAuditEvents": lambda w: Call(query={"asset": w.paths["table_id"]}),
    "ShareAsset": lambda w: Call(json={"email": "nobody@example.org"}),
    "CreateGroup": lambda w: Call(json={"name": w.unique("g")}),
    "CreateProject": lambda w: Call(json={"name": w.unique("p")}),
    "UpdateProject": lambda w: Call(json={"description": "by the matrix"}),
    "CreateFolder": lambda w: Call(json={"name": w.unique("f")}),
    "PutProjectMember": lambda w: Call(json={"permission": "read"}),
    "ImportModel": lambda w: Call(query={"name": w.unique("m")}, content=model_file()),
    "UpdateModelVersion": lambda w: Call(json={"description": "by the matrix"}),
    "SetModelAlias": lambda w: Call(params={"alias": "champion"}, json={"version": 1}),
    "DeleteModelAlias": lambda w: Call(params={"alias": "spare"}),
    "PredictByAlias": lambda w: Call(params={"alias": "champion"}, json={"rows": [{"amount": 3.0}]}),
    "PredictByVersion": lambda w: Call(json={"rows": [{"amount": 3.0}]}),
    "GetModelVersionByAlias": lambda w: Call(params={"alias": "champion"}),
    "CreateExperiment": lambda w: Call(json={"name": w.unique("experiment")}),
    "UpdateExperiment": lambda w: Call(json={"name": w.unique("experiment")}),
    "SetExperimentTag": lambda w: Call(params={"key": "matrix"}, json={"value": "by the matrix"}),
    "DeleteExperimentTag": lambda w: Call(params={"key": "matrix"}),
    "CreateRun": lambda w: Call(json={"name": "by the matrix"}),
    "UpdateRun": lambda w: Call(json={"name": "by the matrix"}),
    "LogRun": lambda w: Call(json={"metrics": [{"key": "loss", "value": 0.5}]}),
    "GetMetricHistory": lambda w: Call(params={"key": "loss"}),
    "SearchRuns": lambda w: Call(json={"experiment_ids": [w.paths["experiment_id"]]}),
}


def model_file() -> bytes:
    """A small fitted scikit-learn model as a skops file: what ``ImportModel`` takes."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from studio9.ml.persistence import dump_model

    frame = pd.DataFrame({"amount": [float(i) for i in range(20)]})
    return dump_model(LogisticRegression().fit(frame, [i % 2 for i in range(20)]))


async def imported_model(world: World) -> str:
    """A model of ada's imported from ``model_file``, with the table's grants and version 1
    aliased ``champion`` (and ``spare``); returns its id."""
    model = await world.send(
        "POST",
        f"{API}/models/import",
        world.ada,
        201,
        params={"name": world.unique("model")},
        content=model_file(),
    )
    model_id: str = model["model"]["id"]
    await grant(world, model_id)
    for alias in ("champion", "spare"):
        await world.send(
            "PUT", f"{API}/models/{model_id}/aliases/{alias}", world.ada, 200, json={"version": 1}
        )
    return model_id


async def tracked_run(world: World) -> dict[str, str]:
    """ada's experiment with the table's grants and a run in it that logged ``loss``: the path
    parameters ``experiment_id`` and ``run_id``."""
    experiment_id = (await fresh_experiment(world))["experiment_id"]
    run: dict[str, str] = await world.send(
        "POST", f"{API}/experiments/{experiment_id}/runs", world.ada, 201, json={}
    )
    body = {"metrics": [{"key": "loss", "value": 0.25}]}
    await world.send("POST", f"{API}/runs/{run['id']}/log", world.ada, 204, json=body)
    return {"experiment_id": experiment_id, "run_id": run["id"]}


async def fresh_experiment(world: World) -> dict[str, str]:
    """A new experiment of ada's with the table's grants (what ``DeleteExperiment`` spends)."""
    body = {"name": world.unique("matrix-experiment")}
    experiment_id: str = (await world.send("POST", f"{API}/experiments", world.ada, 201, json=body))["id"]
    await grant(world, experiment_id)
    return {"experiment_id": experiment_id}


async def fresh_run(world: World) -> dict[str, str]:
    """A new run in the world's experiment (what ``DeleteRun`` spends)."""
    path = f"{API}/experiments/{world.paths['experiment_id']}/runs"
    return {"run_id": (await world.send("POST", path, world.ada, 201, json={}))["id"]}
