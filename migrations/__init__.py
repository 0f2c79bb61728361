"""Alembic migrations of the system of record (run by ``studio9 migrate``)."""
