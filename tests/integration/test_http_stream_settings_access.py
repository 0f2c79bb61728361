"""A stream's settings follow the stream's access, and no read path shows a credential in a URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api.app import create_app
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]
SETTINGS = "/api/v1/services/streams/config-settings"
SOURCE = "amqp://reader:s3cret-pw@127.0.0.1:5672/?queue=studio9-test-nowhere"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    # No worker threads, no loops: the stream runner would try to read the queue.
    app = create_app(memory_settings(tmp_path), run_workers=False, background=False)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


async def _stream(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    body = {
        "job_type": "system.sleep",
        "source": SOURCE,
        "item_param": "message",
        "params": {"seconds": 0, "note": "see https://bot:hook-secret@hooks.example.com/x"},
    }
    response = await client.post("/api/v1/streams", headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_another_users_stream_settings_do_not_exist_for_them(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    stream = await _stream(client, ada)
    listed = (await client.get(SETTINGS, headers=bob)).json()
    assert listed["items"] == []
    for url in (f"{SETTINGS}/{stream['id']}", f"{SETTINGS}/{stream['id']}/history"):
        response = await client.get(url, headers=bob)
        assert response.status_code == 404, (url, response.text)
        assert stream["owner_id"] not in response.text
    assert [s["name"] for s in (await client.get(SETTINGS, headers=ada)).json()["items"]] == [stream["id"]]
    assert [s["name"] for s in (await client.get(SETTINGS, headers=admin_headers)).json()["items"]] == [
        stream["id"]
    ]
    assert (await client.get(f"{SETTINGS}/{stream['id']}/history", headers=ada)).status_code == 200


async def test_a_page_of_settings_is_filled_past_other_users_streams(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    for _ in range(3):
        await _stream(client, bob)
    mine = {(await _stream(client, ada))["id"] for _ in range(3)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(SETTINGS, headers=ada, params=params)).json()
        seen.extend(s["name"] for s in page["items"])
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(mine)


async def test_credentials_in_stored_urls_are_redacted_on_every_read(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _user(client, admin_headers, "ada")
    stream = await _stream(client, ada)
    reads = [
        await client.get(f"/api/v1/streams/{stream['id']}", headers=ada),
        await client.get("/api/v1/streams", headers=ada),
        await client.get(f"{SETTINGS}/{stream['id']}", headers=ada),
        await client.get(f"{SETTINGS}/{stream['id']}/history", headers=admin_headers),
        await client.get(SETTINGS, headers=admin_headers),
    ]
    for response in [*reads, await client.post("/api/v1/streams", headers=ada, json={"job_type": "x"})]:
        assert "s3cret-pw" not in response.text and "hook-secret" not in response.text, response.text
    assert "s3cret-pw" not in str(stream)
    assert reads[0].json()["source"] == "amqp://reader:***@127.0.0.1:5672/?queue=studio9-test-nowhere"


async def test_sending_back_what_was_read_keeps_the_stored_credentials(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _user(client, admin_headers, "ada")
    stream = await _stream(client, ada)
    echoed = {"source": stream["source"], "params": stream["params"], "batch_size": 7}
    changed = await client.patch(f"/api/v1/streams/{stream['id']}", headers=ada, json=echoed)
    assert changed.status_code == 200, changed.text
    spec = await client.app.state.container.streams.spec(stream["id"])
    assert (spec.source, spec.batch_size) == (SOURCE, 7)
    assert "hook-secret" in spec.params["note"]
