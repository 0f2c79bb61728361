"""Downloads from S3 are 307 redirects to presigned URLs (or streamed when redirects are off)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from tests.conftest import memory_settings


@pytest.mark.parametrize("redirects", [True, False])
async def test_file_download_from_s3(tmp_path: Path, moto_endpoint: str, redirects: bool) -> None:
    bucket = f"studio9-test-{uuid.uuid4().hex[:12]}"
    settings = memory_settings(
        tmp_path,
        blob_url=f"s3://{bucket}/files?endpoint_url={moto_endpoint}&region=us-east-1&create_bucket=true",
        blob_redirects=redirects,
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        body = b"col\n" + b"1\n" * 1000
        upload = await client.post("/api/v1/files?name=ones.csv", headers=headers, content=body)
        assert upload.status_code == 201, upload.text
        response = await client.get(
            f"/api/v1/files/{upload.json()['id']}/content", headers=headers, follow_redirects=False
        )
        if redirects:
            assert response.status_code == 307, response.text
            location = response.headers["location"]
            assert location.startswith(moto_endpoint) and "Signature" in location
            async with httpx.AsyncClient() as outside:
                fetched = await outside.get(location)
            assert fetched.content == body
            assert "ones.csv" in fetched.headers["content-disposition"]
        else:
            assert response.status_code == 200
            assert response.content == body
