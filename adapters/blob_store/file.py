"""Blobs as files under one directory.

URL:      file:///absolute/dir   (edge default: file://<data dir>/blobs)
Features: survives restarts · single host · atomic puts (staged, fsynced, renamed) ·
          local_path is the stored file itself · reads and writes off the event loop ·
          staged parts a crash left behind are swept (``sweep_staging``)
Extra:    none

A blob ``a/b/c`` is the file ``<root>/a/b/c``. Writes go to ``<root>/.staging/`` (same
file system, so the final ``os.replace`` is atomic) and readers never see a partial
file. Keys cannot start with ``.``, so no key reaches the staging directory, and every
path is checked to resolve inside the root (a symlink planted in the tree cannot lead
out of it).

A process killed during an upload leaves its ``.part`` behind; ``sweep_staging`` removes
those not written to for longer than the longest upload may pause. Age is the file's
mtime, which every write refreshes, so a live upload of another process looks young;
this process's own uploads are also known by name and never swept, whatever their age.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, Self, TypeVar

import anyio.to_thread

from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError, Conflict, InvalidInput
from studio9.files.domain import BlobNotFound, check_key, check_prefix
from studio9.urls import AdapterURL

CHUNK_SIZE = 1 << 20  # 1 MiB: reads and writes per thread hop
STAGING = ".staging"
_T = TypeVar("_T")
# Staged files this process is writing (any store instance): never swept. A set of unique
# names, filled before the file exists and emptied once the upload is over either way.
_WRITING: set[Path] = set()
_WRITING_LOCK = threading.Lock()


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = Path(os.path.realpath(root))

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        if not url.path:
            raise ConfigError("file:// URL needs a directory path", setting="STUDIO9_BLOB_URL")
        return cls(Path(url.path))

    async def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable(f"blob directory {self.root} cannot be created: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BackendUnavailable(f"blob directory {self.root} is not writable")

    async def aclose(self) -> None:
        return None

    # -- the BlobStore port ---------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = self._path(check_key(key))
        with anyio.CancelScope(shield=True):  # a staged file is always handed to the cleanup below
            handle, staged = await self._run(key, self._stage, target)
        size = 0
        try:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in chunks:
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK_SIZE:
                    await self._run(key, handle.writelines, pending)
                    size += buffered
                    pending, buffered = [], 0
            size += buffered
            with anyio.CancelScope(shield=True):  # every byte is in: finish the commit
                await self._run(key, self._commit, handle, pending, staged, target)
        except BaseException:
            _discard(handle, staged)
            raise
        finally:
            with _WRITING_LOCK:
                _WRITING.discard(staged)
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        chunks = self._read(key, self._path(check_key(key)))
        await chunks.__anext__()  # opens the file (or raises BlobNotFound) before any chunk
        return chunks

    async def size(self, key: str) -> int:
        return await self._run(key, self._file_size, self._path(check_key(key)))

    async def delete(self, key: str) -> None:
        await self._run(key, self._unlink, self._path(check_key(key)))

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run(prefix, self._unlink_prefix, check_prefix(prefix))

    async def list_prefix(self, prefix: str) -> list[tuple[str, int]]:
        return await self._run(prefix, self._list_prefix, check_prefix(prefix))

    @contextlib.asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        path = self._path(check_key(key))
        await self._run(key, self._file_size, path)
        yield path

    async def sweep_staging(self, older_than: float) -> int:
        return await self._run(STAGING, self._sweep, time.time() - older_than)

    # -- helpers; the synchronous ones run in a worker thread ------------------------------

    def _path(self, key: str) -> Path:
        # Checked keys have no "." or ".." segment and no leading "/", so this is
        # lexically inside the root; _inside() also resolves symlinks, in the thread.
        return self._real_root / key

    def _inside(self, path: Path) -> Path:
        real = Path(os.path.realpath(path))
        if real != self._real_root and self._real_root not in real.parents:
            raise InvalidInput("blob key leads outside the blob store", field="key")
        return path

    async def _read(self, key: str, path: Path) -> AsyncIterator[bytes]:
        handle = await self._run(key, self._open_for_read, path)
        try:
            yield b""  # primer, consumed by open()
            while chunk := await anyio.to_thread.run_sync(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()  # synchronous, so that it also runs in a cancelled scope

    def _open_for_read(self, path: Path) -> BinaryIO:
        if not self._inside(path).is_file():
            raise FileNotFoundError(path)
        return path.open("rb")

    def _file_size(self, path: Path) -> int:
        if not self._inside(path).is_file():
            raise FileNotFoundError(path)
        return path.stat().st_size

    def _stage(self, target: Path) -> tuple[BinaryIO, Path]:
        self._inside(target)
        staging = self._real_root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        staged = staging / f"{uuid.uuid4().hex}.part"
        with _WRITING_LOCK:
            _WRITING.add(staged)
        try:
            return staged.open("xb"), staged
        except BaseException:
            with _WRITING_LOCK:
                _WRITING.discard(staged)
            raise

    def _commit(self, handle: BinaryIO, pending: list[bytes], staged: Path, target: Path) -> None:
        handle.writelines(pending)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        for attempt in (1, 2):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staged, self._inside(target))
                return
            except FileNotFoundError:
                # A concurrent delete pruned the (empty) directory between mkdir and replace.
                if attempt == 2 or not staged.exists():
                    raise

    def _unlink(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self._inside(path).is_dir():
                return  # a "directory" of other blobs, not a blob
            path.unlink()
            self._prune(path.parent)

    def _unlink_prefix(self, prefix: str) -> int:
        directory = prefix.rpartition("/")[0]
        base = self._inside(self._real_root / directory) if directory else self._real_root
        count = 0
        for dirpath, _, filenames in os.walk(base, topdown=False):
            here = Path(dirpath)
            if here.relative_to(self._real_root).parts[:1] == (STAGING,):
                continue
            for filename in filenames:
                path = here / filename
                if path.relative_to(self._real_root).as_posix().startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        count += 1
            if here != self._real_root:
                with contextlib.suppress(OSError):  # not empty: other blobs live there
                    here.rmdir()
        self._prune(base.parent)
        return count

    def _list_prefix(self, prefix: str) -> list[tuple[str, int]]:
        directory = prefix.rpartition("/")[0]
        base = self._inside(self._real_root / directory) if directory else self._real_root
        found: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            if here == self._real_root and STAGING in dirnames:
                dirnames.remove(STAGING)  # unfinished uploads are not blobs
            for filename in filenames:
                key = (here / filename).relative_to(self._real_root).as_posix()
                if not key.startswith(prefix):
                    continue
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    status = os.lstat(here / filename)
                    if stat.S_ISREG(status.st_mode):  # a planted symlink is no blob
                        found.append((key, status.st_size))
        return sorted(found)

    def _sweep(self, cutoff: float) -> int:
        """Remove the staged parts last written before ``cutoff`` (epoch seconds), but ours."""
        try:
            entries = list(os.scandir(self._real_root / STAGING))
        except FileNotFoundError:
            return 0
        count = 0
        for entry in entries:
            path = Path(entry.path)
            with _WRITING_LOCK:
                if path in _WRITING:
                    continue
            try:
                if (
                    not entry.name.endswith(".part")
                    or not entry.is_file(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_mtime >= cutoff
                ):
                    continue
                path.unlink()
            except FileNotFoundError:  # committed, or swept by another process, meanwhile
                continue
            count += 1
        return count

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from ``directory`` up to, not including, the root."""
        while self._real_root in directory.parents:
            try:
                directory.rmdir()
            except OSError:  # not empty, or already gone: either way, stop here
                return
            directory = directory.parent

    async def _run(self, key: str, func: Callable[..., _T], *args: object) -> _T:
        """Run blocking file work in a thread; translate OS errors into domain errors."""
        try:
            return await anyio.to_thread.run_sync(func, *args)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            raise Conflict(f"blob key {key!r} collides with another blob's path", key=key) from exc
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidInput("blob key is too long for this file system", field="key") from exc
            raise BackendUnavailable(f"blob store {self.root}: {exc.strerror or exc}") from exc


def _discard(handle: BinaryIO, staged: Path) -> None:
    handle.close()
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
