"""SQLAlchemy 2 (async) adapters for the system of record: SQLite and PostgreSQL."""
