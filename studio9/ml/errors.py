"""The errors of model persistence: a file that is not a model, a model with untrusted types, no ONNX.

Kept apart from ``studio9.ml.persistence`` so that the HTTP layer can name them without loading
scikit-learn or skops.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from studio9.errors import Conflict, InvalidInput

__all__ = ["InvalidModelFile", "OnnxUnavailable", "UntrustedModel"]


class InvalidModelFile(InvalidInput):
    """The bytes are not a skops model file, or what they hold is not a fitted scikit-learn model."""


class UntrustedModel(InvalidInput):
    """The model file holds types that are neither trusted by Studio9 nor on the import allow-list.

    ``types`` lists every offending type (sorted), so that an administrator can review them.
    """

    def __init__(self, types: Iterable[str], **details: Any) -> None:
        self.types: tuple[str, ...] = tuple(sorted(set(types)))
        super().__init__(
            f"the model file holds types that are not trusted: {', '.join(self.types)}; "
            "load it only if you trust where it comes from, by adding each of these types "
            "to the model import allow-list",
            types=list(self.types),
            **details,
        )


class OnnxUnavailable(Conflict):
    """The model cannot be exported to ONNX: skl2onnx is not installed, or cannot convert it."""
