"""The model registry's per-version info and aliases (``studio9.ml.ports.ModelRegistryStore``), a
store of the system of record (``adapters.database``): ``memory.py`` and ``sql.py`` (with
``sql_models.py`` its rows).

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
