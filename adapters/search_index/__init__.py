"""The metadata search index (``studio9.metadata.ports.SearchIndex``). ``STUDIO9_INDEX_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.search_index.memory:MemorySearchIndex",
    "sql": "adapters.search_index.sql:SqlSearchIndex",
    "opensearch": "adapters.search_index.opensearch:OpenSearchSearchIndex",
    "opensearch+https": "adapters.search_index.opensearch:OpenSearchSearchIndex",
}
