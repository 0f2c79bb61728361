"""Access's groups, shares and projects (``studio9.access.ports.AccessStore``), a store of the
system of record (``adapters.database``): ``memory.py`` and ``sql.py`` (with ``sql_models.py``
its rows, ``sql_rows.py`` their mapping, ``sql_policy.py`` the policy's one-statement reads).

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
