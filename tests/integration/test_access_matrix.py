"""The access matrix, generated from the OpenAPI document: every operation, sent as each of ten
principals (``access_matrix.PRINCIPALS``), gets exactly the outcome its route class documents
(``access_matrix.CLASSES``); an operation missing from the table fails the test.

One app (memory://, job workers on for the import, no background loops) and one fixture world,
made through HTTP once for the module: ada's table (imported from her file), a read share to
bob, a write share to cy, a read share to the group ``analysts`` (dan is in it), a project the
table and the file are linked to (eve reads, fay writes), gus with nothing, ada's finished
``data.profile`` job (with an output), her stream, a config setting, and a token of ada's that
she revoked.

Each request is built from the document's method and path, its path parameters filled from the
world, with a small body or query where the operation needs one (``access_matrix.CALLS``). An
operation that would destroy part of the world (deleting the table, a user, the group, the
project, revoking a token, unlinking, removing a member…) runs, for each principal, against a
throwaway object made just before by ada or the admin (``FRESH``): a few more requests, and every
case sees the same world whatever ran before it. The throwaway for deleting an asset is a file
with exactly the table's grants (a file is an asset like a table: the same policy decides).

Besides the outcomes, every answer's status must be one the document lists for its operation:
the Schemathesis run (test_openapi_conformance.py) sends an admin's token only, so a 403 to a
reader is seen here and nowhere else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from tests.conftest import memory_settings
from tests.integration.access_matrix import (
    ADA_PASSWORD,
    API,
    CALLS,
    CLASSES,
    PRINCIPALS,
    ROUTES,
    SPARE,
    Call,
    Principal,
    World,
    fresh_experiment,
    fresh_run,
    grant,
    imported_model,
    tracked_run,
)
from tests.integration.test_http_tables import FAST, SALES, TABLES, Client, _upload, _wait

#: The world lives on the module's event loop: so do the tests that use it.
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

#: Who plays each user principal (``admin`` is the first admin; ``no_token`` sends no header,
#: ``revoked_token`` a token of ada's that she revoked).
NAMES: Mapping[Principal, str] = {
    "owner": "ada",
    "read_share": "bob",
    "write_share": "cy",
    "group_share": "dan",
    "project_reader": "eve",
    "project_writer": "fay",
    "stranger": "gus",
}
#: The statuses that say the access check refused (a 5xx is a failure of its own).
REFUSALS = {401: "401", 403: "403", 404: "404"}

# -- the world -------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    settings = memory_settings(tmp_path_factory.mktemp("access-matrix"), **FAST)
    app = create_app(settings, run_workers=True, background=False)
    async with AsyncTestClient(app=app) as client:
        admin = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        document = (await client.get("/schema/openapi.json")).json()
        yield await _build(client, document, admin)


async def _build(client: Client, document: dict[str, Any], admin: dict[str, str]) -> World:
    world = World(client=client, document=document, headers={"admin": admin, "no_token": {}}, paths={})
    ids: dict[str, str] = {}
    for name in [*NAMES.values(), SPARE]:
        body = {"username": name, **({"password": ADA_PASSWORD} if name == "ada" else {})}
        created = await world.send("POST", f"{API}/users", admin, 201, json=body)
        ids[name] = created["user"]["id"]
        for principal, who in NAMES.items():
            if who == name:
                world.headers[principal] = {"Authorization": f"Bearer {created['token']['token']}"}
    ada = world.ada
    # ada's table, imported from her file, and a finished job of hers with an output.
    file_id = await _upload(client, ada, SALES)
    created = await world.send("POST", TABLES, ada, 202, json={"name": "sales", "file": file_id})
    assert (await _wait(client, ada, created["job"]["id"]))["status"] == "completed"
    table_id = created["table"]["id"]
    job = await world.send(
        "POST", f"{API}/jobs", ada, 201, json={"type": "data.profile", "params": {"file": file_id}}
    )
    assert (await _wait(client, ada, job["id"]))["status"] == "completed"
    stream = await world.send(
        "POST", f"{API}/streams", ada, 201, json={"job_type": "system.noop", "item_param": "echo"}
    )
    # The group, the project, and the same grants on the table and on its file.
    group = await world.send("POST", f"{API}/groups", ada, 201, json={"name": "analysts"})
    await world.send("PUT", f"{API}/groups/{group['id']}/members/dan", ada, 200)
    project = await world.send("POST", f"{API}/projects", ada, 201, json={"name": "survey"})
    world.paths.update(group_id=group["id"], project_id=project["id"])
    for member, permission in (("eve", "read"), ("fay", "write")):
        await world.send(
            "PUT",
            f"{API}/projects/{project['id']}/members/{member}",
            ada,
            200,
            json={"permission": permission},
        )
    for asset_id in (table_id, file_id):
        await grant(world, asset_id)
    folder = await world.send(
        "POST", f"{API}/projects/{project['id']}/folders", ada, 201, json={"name": "raw"}
    )
    await world.send("PUT", f"{API}/services/matrix/config-settings/x", admin, 201, json={"value": 1})
    # A token of ada's, revoked: it must open nothing, not even what ada owns.
    token = await world.send(
        "POST", f"{API}/auth/tokens", {}, 201, json={"username": "ada", "password": ADA_PASSWORD}
    )
    await world.send("DELETE", f"{API}/auth/tokens/{token['id']}", ada, 204)
    world.headers["revoked_token"] = {"Authorization": f"Bearer {token['token']}"}
    world.paths.update(name=await imported_model(world), version="1")
    world.paths.update(await tracked_run(world))
    world.paths.update(
        asset_id=table_id,
        table_id=table_id,
        file_id=file_id,
        job_id=job["id"],
        stream_id=stream["id"],
        folder_id=folder["id"],
        user_id=ids["ada"],
        service="matrix",
        user=SPARE,
        member=SPARE,
    )
    assert set(world.headers) == set(PRINCIPALS)
    return world


# -- throwaway objects -----------------------------------------------------------------------------

#: A throwaway object made just before an operation is sent: its path parameters.
Fresh = Callable[[World], Awaitable[dict[str, str]]]


async def _shared_file(world: World, name: str) -> dict[str, str]:
    """A file of ada's with the table's grants, as path parameter ``name``."""
    file_id = await world.upload()
    await grant(world, file_id)
    return {name: file_id}


async def _fresh_token(world: World) -> dict[str, str]:
    body = {"username": "ada", "password": ADA_PASSWORD}
    return {"token_id": (await world.send("POST", f"{API}/auth/tokens", {}, 201, json=body))["id"]}


async def _fresh_user(world: World) -> dict[str, str]:
    body = {"username": world.unique("tmp")}
    return {"user_id": (await world.send("POST", f"{API}/users", world.admin, 201, json=body))["user"]["id"]}


async def _fresh_stream(world: World) -> dict[str, str]:
    body = {"job_type": "system.noop", "item_param": "echo"}
    return {"stream_id": (await world.send("POST", f"{API}/streams", world.ada, 201, json=body))["id"]}


async def _fresh_setting(world: World) -> dict[str, str]:
    name = world.unique("tmp")
    await world.send(
        "PUT", f"{API}/services/matrix/config-settings/{name}", world.admin, 201, json={"value": 1}
    )
    return {"name": name}


async def _fresh_share(world: World) -> dict[str, str]:
    path, body = (
        f"{API}/assets/{world.paths['table_id']}/shares",
        {"email": f"{world.unique('t')}@example.org"},
    )
    return {"share_id": (await world.send("POST", path, world.ada, 201, json=body))["id"]}


async def _fresh_group(world: World) -> dict[str, str]:
    group = await world.send("POST", f"{API}/groups", world.ada, 201, json={"name": world.unique("tmp")})
    await world.send("PUT", f"{API}/groups/{group['id']}/members/dan", world.ada, 200)
    return {"group_id": group["id"]}


async def _fresh_project(world: World) -> dict[str, str]:
    project = await world.send("POST", f"{API}/projects", world.ada, 201, json={"name": world.unique("tmp")})
    for member, permission in (("eve", "read"), ("fay", "write")):
        path = f"{API}/projects/{project['id']}/members/{member}"
        await world.send("PUT", path, world.ada, 200, json={"permission": permission})
    return {"project_id": project["id"]}


async def _fresh_folder(world: World) -> dict[str, str]:
    path = f"{API}/projects/{world.paths['project_id']}/folders"
    return {
        "folder_id": (await world.send("POST", path, world.ada, 201, json={"name": world.unique("f")}))["id"]
    }


async def _linked_file(world: World) -> dict[str, str]:
    file_id = await world.upload()
    await world.send("PUT", f"{API}/projects/{world.paths['project_id']}/assets/{file_id}", world.ada, 200)
    return {"asset_id": file_id}


async def _spare_in_group(world: World) -> dict[str, str]:
    await world.send("PUT", f"{API}/groups/{world.paths['group_id']}/members/{SPARE}", world.ada, 200)
    return {}


async def _spare_in_project(world: World) -> dict[str, str]:
    path = f"{API}/projects/{world.paths['project_id']}/members/{SPARE}"
    await world.send("PUT", path, world.ada, 200, json={"permission": "read"})
    return {}


async def _spare_alias(world: World) -> dict[str, str]:
    path = f"{API}/models/{world.paths['name']}/aliases/spare"
    await world.send("PUT", path, world.ada, 200, json={"version": 1})
    return {}


async def _fresh_model(world: World) -> dict[str, str]:
    """A model of ada's with the grants and no alias (aliases would refuse its delete)."""
    model_id = await imported_model(world)
    for alias in ("champion", "spare"):
        await world.send("DELETE", f"{API}/models/{model_id}/aliases/{alias}", world.ada, 204)
    return {"name": model_id}


#: Operations that would destroy part of the world: a throwaway object per principal instead.
FRESH: Mapping[str, Fresh] = {
    "DeleteAsset": functools.partial(_shared_file, name="asset_id"),
    "DeleteFile": functools.partial(_shared_file, name="file_id"),
    "RevokeToken": _fresh_token,
    "DeleteUser": _fresh_user,
    "DeleteStream": _fresh_stream,
    "DeleteConfigSetting": _fresh_setting,
    "DeleteShare": _fresh_share,
    "DeleteGroup": _fresh_group,
    "RemoveGroupMember": _spare_in_group,  # back in before each case
    "DeleteProject": _fresh_project,
    "DeleteFolder": _fresh_folder,
    "UnlinkAsset": _linked_file,
    "RemoveProjectMember": _spare_in_project,  # back in before each case
    "DeleteModelAlias": _spare_alias,  # back on before each case
    "DeleteModel": _fresh_model,
    "DeleteExperiment": fresh_experiment,
    "DeleteRun": fresh_run,
}


# -- the sweep and the tests -----------------------------------------------------------------------


@attrs.frozen
class Operation:
    id: str
    method: str
    path: str
    documented: frozenset[str]  # the statuses the document lists for it


@attrs.frozen
class Answer:
    operation: Operation
    principal: Principal
    status: int
    text: str

    @property
    def outcome(self) -> str:
        """``ok``, ``401``, ``403`` or ``404`` (a 5xx is itself: never expected)."""
        return REFUSALS.get(self.status, str(self.status) if self.status >= 500 else "ok")

    def describe(self, expected: str) -> str:
        op = self.operation
        return (
            f"{op.id} ({op.method} {op.path}, {ROUTES.get(op.id)}) as {self.principal}: "
            f"expected {expected}, got {self.status}: {self.text[:200]}"
        )


def _operations(document: Mapping[str, Any]) -> list[Operation]:
    return [
        Operation(operation["operationId"], method.upper(), path, frozenset(operation["responses"]))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def answers(world: World) -> list[Answer]:
    """Every operation of the document sent once as each principal (once per module: the
    throwaway objects are made and spent as it runs)."""
    return [
        await _send(world, operation, principal)
        for operation in _operations(world.document)
        for principal in PRINCIPALS
    ]


async def _send(world: World, operation: Operation, principal: Principal) -> Answer:
    """Send ``operation`` as ``principal``, with its throwaway object or its body if it has one."""
    build = CALLS.get(operation.id)
    request = Call() if build is None else build(world)
    if operation.id in FRESH:
        request = attrs.evolve(request, params={**request.params, **await FRESH[operation.id](world)})
    response = await world.client.request(
        operation.method,
        _fill(operation.path, {**world.paths, **request.params}, operation.id),
        headers=world.headers[principal],
        params=dict(request.query),
        json=request.json,
        content=request.content,
    )
    return Answer(operation, principal, response.status_code, response.text)


def _fill(template: str, values: Mapping[str, str], operation_id: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{operation_id}: no value for path parameter {{{name}}}: add one to the world"
        return values[name]

    return re.sub(r"\{([^}]+)\}", value, template)


@MODULE_LOOP
async def test_the_table_names_every_operation_of_the_document_and_no_other(world: World) -> None:
    documented = {op.id for op in _operations(world.document)}
    missing, extra = sorted(documented - set(ROUTES)), sorted(set(ROUTES) - documented)
    assert not missing, f"operations without a route class in access_matrix.ROUTES: {missing}"
    assert not extra, f"access_matrix.ROUTES names operations the document does not have: {extra}"
    assert set(ROUTES.values()) <= set(CLASSES)
    assert not (set(FRESH) | set(CALLS)) - documented


@MODULE_LOOP
async def test_every_principal_gets_the_documented_outcome_on_every_operation(answers: list[Answer]) -> None:
    mismatches = [
        answer.describe(expected) for answer in answers if answer.outcome != (expected := _expected(answer))
    ]
    assert not mismatches, f"{len(mismatches)} outcome(s) differ from the table:\n" + "\n".join(mismatches)


@MODULE_LOOP
async def test_every_answer_is_a_status_the_document_lists_for_the_operation(answers: list[Answer]) -> None:
    # Schemathesis checks this with an admin's token only: a 403 to a reader escapes it.
    undocumented = [
        answer.describe(f"one of {sorted(answer.operation.documented)}")
        for answer in answers
        if str(answer.status) not in answer.operation.documented
    ]
    assert not undocumented, f"{len(undocumented)} undocumented status(es):\n" + "\n".join(undocumented)


def _expected(answer: Answer) -> str:
    route_class = ROUTES.get(answer.operation.id)
    return (
        "a route class in access_matrix.ROUTES"
        if route_class is None
        else CLASSES[route_class][answer.principal]
    )


def test_the_classes_say_what_the_policy_says() -> None:
    """Spot checks of the table against the README's words, so that a slip in it shows."""
    for row in CLASSES.values():
        assert tuple(row) == PRINCIPALS
    assert CLASSES["asset_read"]["stranger"] == "404"
    assert CLASSES["asset_write"]["read_share"] == "403"
    assert CLASSES["asset_own"]["write_share"] == "403"
    assert CLASSES["owner_only"]["read_share"] == "404"
    assert CLASSES["public"]["no_token"] == "ok"
    assert all(row["revoked_token"] == "401" for name, row in CLASSES.items() if name != "public")
