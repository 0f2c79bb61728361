"""The HTTP face: the Litestar app factory, authentication, problem details, system routes.

``create_app`` and ``API_PREFIX`` live in ``studio9.api.app``, the one module that imports every
context's routes. They are re-exported here lazily: the contexts' ``api`` modules import helpers
of this package (``studio9.api.paging``), and an eager re-export made importing any of them on its
own (``import studio9.jobs.api``) import the app, which imported that half-initialised module back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio9.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("studio9.api.app"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
