"""What a route tells the audit log about the object of a write, when its path does not name it.

The audit middleware (``studio9.api.audit_hook``) takes a write's object from the path (an
``asset_id`` or ``*_id`` parameter) or from the created object's id in the answer. A route whose
path names its object otherwise (``/models/{name}/aliases/{alias}``: a name, not an id) calls
``audit_object`` with the id, so that ``GET /api/v1/audit?asset=<id>`` finds the event.
"""

from __future__ import annotations

from typing import Any, Final

#: The request-scope state key the middleware reads.
AUDIT_OBJECT: Final = "audit_object"


def audit_object(request: Any, object_id: str) -> None:
    """Record ``object_id`` as the object of this request's write."""
    request.scope.setdefault("state", {})[AUDIT_OBJECT] = object_id
