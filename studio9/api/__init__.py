"""The HTTP face: the Litestar app factory, authentication, problem details, system routes.

``create_app`` and ``API_PREFIX`` live in ``studio9.api.app``, the one module that imports every
context's routes; the contexts' ``api`` modules import only the route kit (``studio9.web``).
"""

from __future__ import annotations

from studio9.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
