from __future__ import annotations

from studio9.ids import new_id


def test_ids_are_26_chars_and_unique() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 26 for i in ids)


def test_ids_sort_by_creation_time() -> None:
    earlier, later = new_id(now_ms=1_700_000_000_000), new_id(now_ms=1_700_000_000_001)
    assert earlier < later
