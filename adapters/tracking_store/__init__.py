"""Experiment tracking's runs, their data and logged models (``studio9.tracking.ports.TrackingStore``),
a store of the system of record (``adapters.database``): ``memory.py`` and ``sql.py`` (with
``sql_search.py``, ``sql_logged_models.py`` and ``sql_models.py`` its rows).

No URL scheme of their own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks them.
"""
