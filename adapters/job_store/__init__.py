"""Jobs, their events and heartbeats, and the change feed (``studio9.jobs.ports.JobStore``,
``JobHistory``, ``ChangeFeed``), a store of the system of record (``adapters.database``):
``memory.py``; ``sqlite.py`` (SQLite files), ``postgresql.py`` (PostgreSQL) and ``sql.py`` (any
other SQLAlchemy URL) — ``adapters.database.sql`` picks one by URL.

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
