"""The MLflow face's artifact proxy, logged models and server-info, over HTTP as MLflow clients call
them (``docs/mlflow-protocol.md`` §2.4, §2.5, §2.10, §3.4, §3.5, §4): files of a run uploaded,
listed and downloaded; traversal refused with nothing stored; a second user kept out until the
experiment is shared; a 3.x ``log_model`` sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.auth.domain import Principal
from studio9.bootstrap.container import Container
from studio9.config import Settings
from studio9.tracking.artifacts import InvalidArtifactPath
from tests.conftest import database_settings, memory_settings

Client = AsyncTestClient[Litestar]
Headers = dict[str, str]
A = "/api/2.0/mlflow-artifacts/artifacts"
T = "/api/2.0/mlflow"
FILES = {
    "outdir/a.txt": b"alpha",
    "outdir/sub/b.json": b'{"b": 1}',
    "outdir/sub/deeper/c.bin": bytes(range(256)) * 40,
    "outdir/with space \u00e9.txt": b"spaced",
    "top.txt": b"",
}


@pytest.fixture
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Memory backends (``param``: setting overrides), or ``"sqlite"``."""
    param = getattr(request, "param", {})
    if isinstance(param, dict):
        return memory_settings(tmp_path, **param)
    return await database_settings(request, tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def _container(client: Client) -> Container:
    container: Container = client.app.state.container
    return container


async def _user(client: Client, admin_headers: Headers, name: str) -> tuple[Headers, Principal]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    token = created.json()["token"]["token"]
    principal = await _container(client).auth.authenticate(token)
    return {"Authorization": f"Bearer {token}"}, principal


@pytest.fixture
async def ada(client: Client, admin_headers: Headers) -> tuple[Headers, Principal]:
    return await _user(client, admin_headers, "ada")


async def _run(client: Client, principal: Principal, name: str = "exp") -> tuple[str, str]:
    """A new experiment of ``principal``'s and a run in it: (experiment id, run id)."""
    container = _container(client)
    experiment = await container.experiments.create(principal, name)
    record = await container.tracking.create_run(principal, experiment.id)
    return experiment.id, record.run.id


async def _stored(client: Client) -> list[tuple[str, int]]:
    return await _container(client).files.blobs.list_prefix("experiments/")


#: The MLflow error code each refusal of these tests carries.
CODES = {
    400: "INVALID_PARAMETER_VALUE",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    501: "NOT_IMPLEMENTED",
}


def _error(response: Any, status: int) -> str:
    """The message of an MLflow error answer of ``status`` (and its code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == CODES[status], body
    message: str = body["message"]
    return message


async def test_a_directory_of_files_uploads_lists_downloads_and_deletes(
    client: Client, ada: tuple[Headers, Principal]
) -> None:
    headers, principal = ada
    exp, run = await _run(client, principal)
    root = f"{exp}/{run}/artifacts"
    for rel, data in FILES.items():
        put = await client.put(f"{A}/{root}/{rel}", headers=headers, content=data)
        assert (put.status_code, put.json()) == (200, {})

    listed = await client.get(A, headers=headers, params={"path": root})
    assert listed.json() == {
        "files": [{"path": "outdir", "is_dir": True}, {"path": "top.txt", "is_dir": False, "file_size": 0}]
    }
    listed = await client.get(A, headers=headers, params={"path": f"{root}/outdir/"})
    assert listed.json()["files"] == [
        {"path": "a.txt", "is_dir": False, "file_size": 5},
        {"path": "sub", "is_dir": True},
        {"path": "with space \u00e9.txt", "is_dir": False, "file_size": 6},
    ]
    for rel, data in FILES.items():
        got = await client.get(f"{A}/{root}/{rel}", headers=headers)
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-disposition"].startswith("attachment")
    assert (
        (await client.get(f"{A}/{root}/outdir/a.txt", headers=headers))
        .headers["content-type"]
        .startswith("text/plain")
    )

    # MLflow's answers for what is not there, or not a file.
    message = _error(await client.get(f"{A}/{root}/nope.txt", headers=headers), 404)
    assert message == f"No such artifact: '{root}/nope.txt'"
    _error(await client.get(f"{A}/{root}/outdir/sub", headers=headers), 400)
    for missing in (f"{root}/nothing", f"{root}/top.txt"):  # a file lists as nothing too
        assert (await client.get(A, headers=headers, params={"path": missing})).json() == {}

    # The run-relative listing (the UI's).
    by_run = await client.get(
        f"{T}/artifacts/list", headers=headers, params={"run_id": run, "path": "outdir/sub"}
    )
    assert by_run.json() == {
        "root_uri": f"mlflow-artifacts:/{exp}/{run}/artifacts",
        "files": [
            {"path": "outdir/sub/b.json", "is_dir": False, "file_size": 8},
            {"path": "outdir/sub/deeper", "is_dir": True},
        ],
    }

    deleted = await client.delete(f"{A}/{root}/outdir/sub", headers=headers)
    assert (deleted.status_code, deleted.json()) == (200, {})
    names = [
        f["path"]
        for f in (await client.get(A, headers=headers, params={"path": f"{root}/outdir"})).json()["files"]
    ]
    assert names == ["a.txt", "with space \u00e9.txt"]


async def test_paths_that_escape_their_run_are_refused_and_store_nothing(
    client: Client, ada: tuple[Headers, Principal]
) -> None:
    headers, principal = ada
    exp, run = await _run(client, principal)
    _, other_run = await _run(client, principal, "other")
    root = f"{exp}/{run}/artifacts"
    escapes = [
        "%2e%2e/x",
        f"{root}/..%2F..%2Fother",  # the server sees {root}/../../other
        f"{root}/%252e%252e/x",  # encoded twice
        f"{root}/a%5Cb",  # a backslash
        f"{root}/a%00b",
    ]
    for path in escapes:
        answer = await client.put(f"{A}/{path}", headers=headers, content=b"x")
        assert _error(answer, 400) == "Invalid path", path
    for path in ("../x", "/etc", f"{root}/../..", f"{root}//x"):
        answer = await client.get(A, headers=headers, params={"path": path})
        assert _error(answer, 400) == "Invalid path", path
    # Clients normalise a literal "../" away; the service refuses it however it arrives.
    with pytest.raises(InvalidArtifactPath):
        await _container(client).artifacts.put(principal, f"{root}/../../other", _once(b"x"))
    # A run is only reached through its own experiment; and only under its artifacts.
    _error(await client.put(f"{A}/{exp}/{other_run}/artifacts/x", headers=headers, content=b"x"), 404)
    _error(await client.put(f"{A}/{exp}/{run}/elsewhere/x", headers=headers, content=b"x"), 400)
    assert await _stored(client) == []


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_second_user_sees_nothing_until_the_experiment_is_shared(
    client: Client, admin_headers: Headers, ada: tuple[Headers, Principal]
) -> None:
    headers, principal = ada
    bob, _ = await _user(client, admin_headers, "bob")
    exp, run = await _run(client, principal)
    file = f"{exp}/{run}/artifacts/secret.txt"
    assert (await client.put(f"{A}/{file}", headers=headers, content=b"s")).status_code == 200

    _error(await client.get(f"{A}/{file}", headers=bob), 404)
    _error(await client.get(A, headers=bob, params={"path": f"{exp}/{run}/artifacts"}), 404)
    _error(await client.get(f"{T}/artifacts/list", headers=bob, params={"run_id": run}), 404)
    _error(await client.put(f"{A}/{exp}/{run}/artifacts/planted.txt", headers=bob, content=b"p"), 404)
    _error(await client.delete(f"{A}/{file}", headers=bob), 404)

    shared = await client.post(
        f"/api/v1/assets/{exp}/shares", headers=headers, json={"user": "bob", "permission": "read"}
    )
    assert shared.status_code == 201, shared.text
    assert (await client.get(f"{A}/{file}", headers=bob)).content == b"s"
    _error(await client.put(f"{A}/{exp}/{run}/artifacts/planted.txt", headers=bob, content=b"p"), 403)
    assert [key for key, _ in await _stored(client)] == [f"experiments/{exp}/{run}/artifacts/secret.txt"]


@pytest.mark.parametrize("settings", [{"max_upload_bytes": 1000}], indirect=True)
async def test_an_artifact_over_the_upload_limit_is_refused_and_not_kept(
    client: Client, ada: tuple[Headers, Principal]
) -> None:
    headers, principal = ada
    exp, run = await _run(client, principal)

    big = f"{A}/{exp}/{run}/artifacts/big.bin"
    _error(await client.put(big, headers=headers, content=b"x" * 1001), 400)
    # A body longer than it claims (or sent without a length) is counted as it arrives.
    understated = {**headers, "Content-Length": "10"}
    _error(await client.put(big, headers=understated, content=b"x" * 1001), 400)
    assert await _stored(client) == []
    assert (
        await client.put(f"{A}/{exp}/{run}/artifacts/ok.bin", headers=headers, content=b"x" * 1000)
    ).status_code == 200


async def test_multipart_and_presigned_transfers_are_not_offered(
    client: Client, ada: tuple[Headers, Principal]
) -> None:
    headers, _ = ada
    for action in ("create", "complete", "abort"):
        answer = await client.post(
            f"/api/2.0/mlflow-artifacts/mpu/{action}/1/r/artifacts/f", headers=headers, json={}
        )
        assert (answer.status_code, answer.json()) == (
            501,
            {
                "error_code": "NOT_IMPLEMENTED",
                "message": "Multipart upload is not supported for the current artifact repository",
            },
        )
    presigned = await client.get("/api/2.0/mlflow-artifacts/presigned/1/r/artifacts/f", headers=headers)
    _error(presigned, 501)
    for path in ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"):
        info = await client.get(path, headers=headers)
        assert info.status_code == 200
        assert info.json() == {
            "store_type": "SqlStore",
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "artifacts_presigned_only": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {},
        }


MODEL_FILES = {
    "MLmodel": b"artifact_path: model\nflavors: {}\n",
    "model.pkl": b"\x80\x05pickled",
    "conda.yaml": b"name: env\n",
    "python_env.yaml": b"python: 3.11\n",
    "requirements.txt": b"scikit-learn\n",
    "input_example.json": b"[[1, 2]]",
}


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
async def test_a_3x_log_model_sequence_creates_uploads_finalizes_tags_and_finds_the_model(
    client: Client, admin_headers: Headers, ada: tuple[Headers, Principal]
) -> None:
    headers, principal = ada
    exp, run = await _run(client, principal)
    created = await client.post(
        f"{T}/logged-models",
        headers=headers,
        json={
            "experiment_id": exp,
            "name": "model",
            "source_run_id": run,
            "params": [{"key": "alpha", "value": "0.5"}],
            "tags": [{"key": "mlflow.user", "value": "ada"}],
        },
    )
    assert created.status_code == 200, created.text
    model = created.json()["model"]
    info = model["info"]
    model_id = info["model_id"]
    assert info == {
        "model_id": model_id,
        "experiment_id": exp,
        "name": "model",
        "creation_timestamp_ms": info["creation_timestamp_ms"],
        "last_updated_timestamp_ms": info["creation_timestamp_ms"],
        "artifact_uri": f"mlflow-artifacts:/{exp}/models/{model_id}/artifacts",
        "status": "LOGGED_MODEL_PENDING",
        "model_type": "",
        "source_run_id": run,
        "tags": [{"key": "mlflow.user", "value": "ada"}],
    }
    assert isinstance(info["creation_timestamp_ms"], int)
    assert model["data"] == {"params": [{"key": "alpha", "value": "0.5"}], "metrics": []}

    # The model's files go under its artifact_uri; a load lists them, then fetches each.
    base = info["artifact_uri"].removeprefix("mlflow-artifacts:/")
    for name, data in MODEL_FILES.items():
        assert (await client.put(f"{A}/{base}/{name}", headers=headers, content=data)).status_code == 200
    listed = (await client.get(A, headers=headers, params={"path": base})).json()["files"]
    assert listed == [
        {"path": n, "is_dir": False, "file_size": len(MODEL_FILES[n])} for n in sorted(MODEL_FILES)
    ]
    assert (await client.get(f"{A}/{base}/model.pkl", headers=headers)).content == MODEL_FILES["model.pkl"]
    _error(await client.put(f"{A}/{exp}/models/m-{'0' * 32}/artifacts/x", headers=headers, content=b"x"), 404)

    finalized = await client.patch(
        f"{T}/logged-models/{model_id}",
        headers=headers,
        json={"model_id": model_id, "status": "LOGGED_MODEL_READY"},
    )
    assert finalized.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    versions = '[{"name": "n", "version": "1"}]'
    tagged = await client.patch(
        f"{T}/logged-models/{model_id}/tags",
        headers=headers,
        json={"tags": [{"key": "mlflow.modelVersions", "value": versions}]},
    )
    assert (tagged.status_code, tagged.json()) == (200, {})
    more = await client.post(
        f"{T}/logged-models/{model_id}/params",
        headers=headers,
        json={"model_id": model_id, "params": [{"key": "beta", "value": "2"}]},
    )
    assert (more.status_code, more.json()) == (200, {})
    untagged = await client.delete(f"{T}/logged-models/{model_id}/tags/mlflow.user", headers=headers)
    assert (untagged.status_code, untagged.json()) == (200, {})
    _error(await client.delete(f"{T}/logged-models/{model_id}/tags/mlflow.user", headers=headers), 404)
    got = (await client.get(f"{T}/logged-models/{model_id}", headers=headers)).json()["model"]
    assert got["info"]["status"] == "LOGGED_MODEL_READY"
    assert got["info"]["tags"] == [{"key": "mlflow.modelVersions", "value": versions}]
    assert sorted(p["key"] for p in got["data"]["params"]) == ["alpha", "beta"]
    _error(await client.patch(f"{T}/logged-models/{model_id}", headers=headers, json={"status": "DONE"}), 400)

    # Search, as runs:/<run>/<name> resolution and download_artifacts do it.
    other = await client.post(
        f"{T}/logged-models", headers=headers, json={"experiment_id": exp, "name": "other"}
    )
    other_id = other.json()["model"]["info"]["model_id"]

    async def search(**body: Any) -> Any:
        answer = await client.post(
            f"{T}/logged-models/search", headers=headers, json={"experiment_ids": [exp], **body}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ids(found: Any) -> list[str]:
        return [m["info"]["model_id"] for m in found.get("models", [])]

    assert ids(await search(filter="name = 'model'")) == [model_id]
    assert ids(await search(filter=f"source_run_id = '{run}' AND attributes.name = 'model'")) == [model_id]
    assert await search(filter="name = 'outdir'") == {}
    assert await search(filter="name = 'model' and name = 'other'") == {}
    first = await search(max_results=1)
    assert ids(first) == [other_id] and first["next_page_token"]
    rest = await search(max_results=1, page_token=first["next_page_token"])
    assert ids(rest) == [model_id] and "next_page_token" not in rest
    for bad in ("metrics.loss > 1", "name = 'a' OR name = 'b'", "name LIKE 'm%'", "name = 'a' and"):
        answer = await client.post(
            f"{T}/logged-models/search", headers=headers, json={"experiment_ids": [exp], "filter": bad}
        )
        _error(answer, 400)

    missing = f"m-{'0' * 32}"
    message = _error(await client.get(f"{T}/logged-models/{missing}", headers=headers), 404)
    assert message == f"Logged model with ID '{missing}' not found."
    bob, _ = await _user(client, admin_headers, "bob")
    _error(await client.get(f"{T}/logged-models/{model_id}", headers=bob), 404)
    _error(await client.get(f"{A}/{base}/model.pkl", headers=bob), 404)
    found = await client.post(f"{T}/logged-models/search", headers=bob, json={"experiment_ids": [exp]})
    assert found.json() == {}
