"""Everything that talks to a backend: ``adapters/<port>/<technology>.py``.

Each folder implements one port of ``studio9`` (its package docstring names it), one module per
technology. A port chosen by a setting's URL lists its schemes in the folder's ``__init__``
(``SCHEMES``: scheme -> ``module:Class``); ``adapters/sql/`` is the kernel the SQL adapters share.
Only the composition root (``studio9.bootstrap``) imports this package; adapters load lazily,
when a URL names them.
"""
