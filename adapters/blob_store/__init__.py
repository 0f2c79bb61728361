"""Blob stores (``studio9.files.ports.BlobStore``): files, job inputs and outputs. ``STUDIO9_BLOB_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.blob_store.memory:MemoryBlobStore",
    "file": "adapters.blob_store.file:FileBlobStore",
    "s3": "adapters.blob_store.s3:S3BlobStore",
}
