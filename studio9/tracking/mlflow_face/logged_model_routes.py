"""Placeholder: routes of the MLflow face, filled in by its own work."""

from typing import Any

ROUTES: list[Any] = []
