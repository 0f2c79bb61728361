"""Search index adapters on dedicated search servers (OpenSearch), chosen by URL scheme.

The in-process and database-backed indexes live in ``adapters.memory.search`` and
``adapters.sql.search``; this package holds the ones that need a server of their own.
"""

__all__: list[str] = []
