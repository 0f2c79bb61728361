"""Keyset pages for list routes: ask the service for one item more than the page holds.

The extra item only says that another page exists; the cursor handed back is the key of
the last item shown, and the next request starts after (or before) it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from studio9.errors import InvalidInput

Item = TypeVar("Item")

#: What every ``cursor`` query parameter is, for the OpenAPI document (``studio9.api.openapi_facts``).
CURSOR_DESCRIPTION: Final = (
    "Where the page starts: the `next_cursor` of the page before, unchanged (absent: the first "
    "page). A value of another form is a 422; one of the right form that no page handed out "
    "starts a page at that place."
)
#: The cursor of a list paged by id (users, files, jobs, batches): an id of ``studio9.ids``,
#: 26 characters of Crockford's base32 in upper case.
ID_CURSOR: Final = "[0-9A-HJKMNP-TV-Z]{26}"
#: The cursor of a text search (``studio9.metadata.domain.SearchQuery.cursor_after``):
#: URL-safe base64 without padding; valid only with the query that made it.
SEARCH_CURSOR: Final = "[A-Za-z0-9_-]{40,400}"


async def keyset_page(
    fetch: Callable[[int, str | None], Awaitable[Sequence[Item]]],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[Item], str],
    pattern: str = ID_CURSOR,
) -> tuple[list[Item], str | None]:
    """The page of ``limit`` items from ``cursor`` on, and the next page's cursor (None on the
    last page). ``fetch(size, cursor)`` is the service's list call, asked for ``limit + 1``
    items; ``key`` gives an item's cursor.

    Raises:
        InvalidInput: (field ``cursor``) ``cursor`` is not of the form of the list's cursors
            (``pattern``); a garbage cursor used to answer a page from an arbitrary place, silently.
    """
    if cursor is not None and not re.fullmatch(pattern, cursor):
        raise InvalidInput("cursor is not one this service handed out", field="cursor")
    found = await fetch(limit + 1, cursor)
    page = list(found[:limit])
    return page, key(page[-1]) if len(found) > limit else None
