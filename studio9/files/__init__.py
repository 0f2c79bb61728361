"""Uploaded files, and the blob store that holds their bytes (and jobs' inputs and outputs)."""

from studio9.files.domain import BlobNotFound, FileNotFound, FileTooLarge, StoredFile
from studio9.files.ports import BlobStore, FileRecords
from studio9.files.service import FileService

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "FileNotFound",
    "FileRecords",
    "FileService",
    "FileTooLarge",
    "StoredFile",
]
