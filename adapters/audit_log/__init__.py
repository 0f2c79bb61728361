"""The audit log (``studio9.audit.ports.AuditLog``), a store of the system of record
(``adapters.database``): ``memory.py`` and ``sql.py`` (on ``sql_models.py``'s ``audit_events``).

No URL scheme of its own: the system of record's URL (``STUDIO9_DATABASE_URL``) picks it.
"""
