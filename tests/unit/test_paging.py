"""``keyset_page``: a page of a list fetched with one item more than the page holds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from studio9.errors import InvalidInput
from studio9.web.paging import keyset_page

AN_ID = "01HZ0000000000000000000000"


class Letters:
    """A list service over ``items``, in order, that records what each call asked for."""

    def __init__(self, *items: str) -> None:
        self.items = items
        self.asked: list[tuple[int, str | None]] = []

    async def list(self, size: int, after: str | None) -> Sequence[str]:
        self.asked.append((size, after))
        behind = [] if after is None else [item for item in self.items if item <= after.lower()]
        return self.items[len(behind) : len(behind) + size]


async def test_a_full_page_with_more_behind_it_names_its_last_item_as_the_cursor() -> None:
    letters = Letters("a", "b", "c")
    page = await keyset_page(letters.list, limit=2, cursor=None, key=str.upper, pattern="[A-Z]")
    assert page == (["a", "b"], "B")
    assert letters.asked == [(3, None)]


async def test_the_next_page_starts_after_the_cursor() -> None:
    letters = Letters("a", "b", "c")
    page = await keyset_page(letters.list, limit=2, cursor="B", key=str.upper, pattern="[A-Z]")
    assert page == (["c"], None)
    assert letters.asked == [(3, "B")]


async def test_the_last_page_has_no_cursor_even_when_it_is_full() -> None:
    full = await keyset_page(Letters("a", "b").list, limit=2, cursor=None, key=str.upper)
    empty = await keyset_page(Letters().list, limit=2, cursor=None, key=str.upper)
    assert (full, empty) == ((["a", "b"], None), ([], None))


@pytest.mark.parametrize(
    "cursor", ["", "b", "not-an-id", AN_ID.lower(), AN_ID + "0", "01HZ000000000000000000000I"]
)
async def test_a_cursor_of_another_form_is_invalid_and_nothing_is_fetched(cursor: str) -> None:
    letters = Letters("a")
    with pytest.raises(InvalidInput) as raised:
        await keyset_page(letters.list, limit=2, cursor=cursor, key=str.upper)
    assert raised.value.details == {"field": "cursor"}
    assert letters.asked == []


async def test_an_id_is_a_cursor_of_the_default_form() -> None:
    letters = Letters()
    assert await keyset_page(letters.list, limit=5, cursor=AN_ID, key=str.upper) == ([], None)
    assert letters.asked == [(6, AN_ID)]
