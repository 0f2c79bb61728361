"""The browsable API docs at ``/schema``, served with their assets by Studio9 itself.

The page is RapiDoc 9.3.8 (MIT; https://github.com/rapi-doc/RapiDoc): one script, vendored as
package data (``static/rapidoc-9.3.8.min.js``, npm ``rapidoc@9.3.8`` ``dist/rapidoc-min.js``,
sha256 ``affbd173…b22db94d``; its licence and those of the libraries it bundles are in
``static/rapidoc-9.3.8.LICENSE.txt``). Litestar's own docs plugins load their scripts, styles
and favicon from CDNs, so they render neither offline nor on an air-gapped edge box.

The page, its script and the document (``/schema/openapi.json``) need no token
(``studio9.api.security``); a user pastes one under *Authentication* to try calls.
"""

import functools
import html
from importlib import resources
from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

DOCS_PATH = "/schema"
SCRIPT = "rapidoc-9.3.8.min.js"
#: Every file the docs router serves, by name: nothing else under ``static/`` is reachable.
ASSETS = {SCRIPT: "text/javascript; charset=utf-8", "rapidoc-9.3.8.LICENSE.txt": "text/plain; charset=utf-8"}
ASSET_PATH = "/assets"

# RapiDoc loads Open Sans from Google Fonts unless told not to: system fonts keep the page offline.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<script type="module" src="{script}"></script>
<style>body {{ margin: 0 }}</style>
</head>
<body>
<rapi-doc spec-url="{spec}"
  allow-authentication="true" persist-auth="false" allow-server-selection="false" load-fonts="false"
  show-header="false" render-style="read" schema-style="table" sort-endpoints-by="none"
  regular-font="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
  mono-font="ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace"
  theme="light" primary-color="#2f5d8a">
<p slot="overview">Every route but <code>/health</code>, <code>/about</code>, the login and these docs
needs <code>Authorization: Bearer &lt;token&gt;</code>: paste one under <em>Authentication</em>.</p>
</rapi-doc>
<noscript>The API docs need JavaScript; the document itself is <a href="{spec}">{spec}</a>.</noscript>
</body>
</html>
"""


class DocsPage(OpenAPIRenderPlugin):
    """Renders the RapiDoc page at ``/schema`` and serves its script under ``/schema/assets``."""

    def __init__(self) -> None:
        super().__init__(path="/", favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec = self.get_openapi_json_route(request)
        base = spec.rsplit("/", 1)[0]
        return _PAGE.format(
            title=html.escape(f"{openapi_schema['info']['title']} API"),
            script=html.escape(f"{base}{ASSET_PATH}/{SCRIPT}"),
            spec=html.escape(spec),
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(get(f"{ASSET_PATH}/{{name:str}}", sync_to_thread=False, name="docs_asset")(asset))


def asset(name: FromPath[str]) -> Response[bytes]:
    """One vendored file; its name carries its version, so browsers may keep it for a year."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFoundException(f"no docs asset {name!r}")
    return Response(
        _read(name),
        media_type=media_type,
        headers={"cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff"},
    )


@functools.cache
def _read(name: str) -> bytes:
    # Read on the first docs visit, not at start-up: an idle server never holds the 860 KB.
    return resources.files("studio9.api").joinpath("static", name).read_bytes()
