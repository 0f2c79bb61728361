"""FileRecords on SQLAlchemy (SQLite and PostgreSQL alike), on the ``files`` table.

URL:      the system-of-record database (``SqlDatabase.files``): sqlite+aiosqlite://, postgresql+psycopg://
Features: newest-first paging by id on the (owner_id, id) index
Extra:    cloud (psycopg) for PostgreSQL
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.file_records.sql_models import FileRow
from adapters.sql.errors import translated
from studio9.errors import Conflict
from studio9.files.domain import DEFAULT_CONTENT_TYPE, FileNotFound, StoredFile


class SqlFileRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, file: StoredFile) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    session.add(_row(file))
        except IntegrityError:
            raise Conflict(f"file {file.id!r} exists") from None

    async def get(self, file_id: str) -> StoredFile:
        with translated():
            async with self._sessions() as session:
                row = await session.get(FileRow, file_id)
        if row is None:
            raise FileNotFound(file_id)
        return _file(row)

    async def list(
        self, owner_id: str | None, *, limit: int, after: str | None = None
    ) -> Sequence[StoredFile]:
        query = sa.select(FileRow).order_by(FileRow.id.desc()).limit(limit)
        if owner_id is not None:
            query = query.where(FileRow.owner_id == owner_id)
        if after is not None:
            query = query.where(FileRow.id < after)
        with translated():
            async with self._sessions() as session:
                return [_file(row) for row in await session.scalars(query)]

    async def delete(self, file_id: str) -> None:
        with translated():
            async with self._sessions.begin() as session:
                result = await session.execute(sa.delete(FileRow).where(FileRow.id == file_id))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise FileNotFound(file_id)

    async def transfer(self, owner_id: str, to: str) -> int:
        statement = sa.update(FileRow).where(FileRow.owner_id == owner_id).values(owner_id=to)
        with translated():
            async with self._sessions.begin() as session:
                result = await session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]


def _row(file: StoredFile) -> FileRow:
    return FileRow(
        id=file.id,
        owner_id=file.owner_id,
        name=file.name,
        size=file.size,
        sha256=file.sha256,
        content_type=file.content_type,
        blob_key=file.blob_key,
        created_at=file.created_at,
    )


def _file(row: FileRow) -> StoredFile:
    return StoredFile(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        content_type=row.content_type or DEFAULT_CONTENT_TYPE,
        blob_key=row.blob_key,
        created_at=row.created_at,
    )
