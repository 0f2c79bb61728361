"""The system of record (``studio9.database.Database``): every store of users, tokens, jobs, files,
workers, config settings and streams, in one database. ``STUDIO9_DATABASE_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.database.memory:MemoryDatabase",
    "sqlite": "adapters.database.sql:SqlDatabase",
    "sqlite+aiosqlite": "adapters.database.sql:SqlDatabase",
    "postgresql": "adapters.database.sql:SqlDatabase",
    "postgres": "adapters.database.sql:SqlDatabase",
    "postgresql+psycopg": "adapters.database.sql:SqlDatabase",
}
