"""Keyset pages for list routes: ask the service for one item more than the page holds.

The extra item only says that another page exists; the cursor handed back is the key of
the last item shown, and the next request starts after (or before) it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def page_of(found: Sequence[Item], limit: int, key: Callable[[Item], str]) -> tuple[list[Item], str | None]:
    """The first ``limit`` of ``found`` (fetched with ``limit + 1``) and the next page's cursor,
    None on the last page."""
    page = list(found[:limit])
    return page, key(page[-1]) if len(found) > limit else None
