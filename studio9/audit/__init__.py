"""The audit log: every write over HTTP, shares and membership changes included (who, what, when,
from which address, through which token), append-only.

The values and the action vocabulary live here (``domain``), with the store it needs
(``ports``), who may read what (``service``), and the route that reads it (``api``). The HTTP
shell records the events (``studio9.api.audit_hook``), in one place for every route.
"""

from studio9.audit.domain import AuditEvent, AuditQuery, NewAuditEvent, http_action, http_detail, object_of
from studio9.audit.ports import AuditLog
from studio9.audit.service import AuditService

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditQuery",
    "AuditService",
    "NewAuditEvent",
    "http_action",
    "http_detail",
    "object_of",
]
