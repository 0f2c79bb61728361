"""The browsable API docs render from Studio9 alone: no token, no CDN, every asset served."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from litestar import Litestar
from litestar.testing import AsyncTestClient

#: Attributes through which a page makes the browser fetch something.
FETCHING = {"src", "href", "spec-url", "data", "poster", "srcset", "action"}


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in FETCHING and value]


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    return parser.urls


async def test_docs_page_and_everything_it_loads_come_from_studio9_without_a_token(
    client: AsyncTestClient[Litestar],
) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    urls = _references(page.text)
    assert any(url.endswith(".js") for url in urls)
    assert "/schema/openapi.json" in urls
    for url in urls:
        if url.startswith("data:"):  # inline (the empty favicon): nothing to fetch
            continue
        parts = urlsplit(urljoin("http://testserver/schema", url))
        assert (parts.scheme, parts.netloc) == ("http", "testserver"), f"{url} is not served by Studio9"
        asset = await client.get(parts.path)  # no Authorization header
        assert asset.status_code == 200, f"{url}: {asset.status_code}"
        assert asset.content


async def test_the_docs_script_is_cacheable_and_nothing_else_is_served_from_its_folder(
    client: AsyncTestClient[Litestar],
) -> None:
    script = next(u for u in _references((await client.get("/schema")).text) if u.endswith(".js"))
    response = await client.get(script)
    assert response.headers["content-type"].startswith("text/javascript")
    assert "immutable" in response.headers["cache-control"]
    for name in ("openapi.py", "..%2Fopenapi.py", "docs.py"):
        assert (await client.get(f"/schema/assets/{name}")).status_code == 404


async def test_the_document_is_public_and_the_api_is_not(client: AsyncTestClient[Litestar]) -> None:
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.1")
    assert (await client.get("/api/v1/jobs")).status_code == 401
