"""The app's request class: JSON bodies are refused past ``MAX_JSON_DEPTH`` levels, before decoding.

Every route that takes a JSON body (``data: JSONBody[...]``) gets it from ``Request.json()``,
so overriding that one method covers them all, present and future, including the job
params, stream items and setting values inside those bodies. msgspec would otherwise
raise ``RecursionError`` (a 500) on a body of a few thousand ``[``, even on the public login
route; past the limit the answer is a 400 problem naming it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from studio9.errors import MalformedRequest
from studio9.json_depth import MAX_JSON_DEPTH, exceeds_depth

__all__ = ["TOO_DEEP", "Studio9Request"]

TOO_DEEP = f"request body is nested deeper than {MAX_JSON_DEPTH} levels"


class Studio9Request(Request[Any, Any, Any]):
    """Litestar's request, with the JSON depth limit (``Litestar(request_class=...)``)."""

    async def json(self) -> Any:
        if exceeds_depth(await self.body()):
            raise MalformedRequest(TOO_DEEP)
        return await super().json()
