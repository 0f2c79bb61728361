"""Metadata (the original ARIES): searchable documents about jobs, results and assets."""

from studio9.metadata.domain import (
    InvalidSearch,
    SearchDocument,
    SearchHit,
    SearchPage,
    SearchPosition,
    SearchQuery,
    words,
)
from studio9.metadata.ports import SearchIndex

__all__ = [
    "InvalidSearch",
    "SearchDocument",
    "SearchHit",
    "SearchIndex",
    "SearchPage",
    "SearchPosition",
    "SearchQuery",
    "words",
]
