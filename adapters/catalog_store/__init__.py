"""The catalog's assets, versions and lineage edges (``studio9.catalog.ports.CatalogStore``), a
store of the system of record (``adapters.database``): ``memory.py`` and ``sql.py``.

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
