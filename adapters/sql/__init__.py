"""The SQL kernel the SQL adapters share: engines and pools (``engine``), the ORM base and column
types (``base``), psycopg without SQLAlchemy for hot paths (``pg_raw``, ``pg_batch``), a thread
owning an SQLite connection (``sqlite_thread``), connection-failure translation (``errors``) and
the Alembic runner (``migrations``).

It implements no port: ``adapters/<port>/sql.py`` modules do, on top of it.
"""
