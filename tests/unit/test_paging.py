"""``page_of``: a page of a list fetched with one item more than the page holds."""

from __future__ import annotations

from studio9.api.paging import page_of


def test_a_full_page_with_more_behind_it_names_its_last_item_as_the_cursor() -> None:
    assert page_of(["a", "b", "c"], 2, str.upper) == (["a", "b"], "B")


def test_the_last_page_has_no_cursor_even_when_it_is_full() -> None:
    assert page_of(["a", "b"], 2, str.upper) == (["a", "b"], None)
    assert page_of([], 2, str.upper) == ([], None)
