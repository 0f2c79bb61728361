"""Users and their API tokens (``studio9.auth.ports.UserStore``, ``TokenStore``), stores of the
system of record (``adapters.database``): ``memory.py`` and ``sql.py`` (SQLite, PostgreSQL).

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
