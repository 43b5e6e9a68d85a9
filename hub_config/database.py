"""The hub's sqlite database in write-ahead-log mode, so a commit does not wait for the disk.

JupyterHub talks to its database synchronously on its one event loop: while a commit waits for fsync, no
request, spawn or watch event moves. A start makes several commits (the server, its API token, its OAuth
client), and in rollback-journal mode each one syncs the journal and the database file. With 50 starts at
once that was about 15 ms of fsync per start, all on the loop (docs/benchmarks.md). In WAL mode with
`synchronous=NORMAL` a commit appends to the log without syncing; the log is synced at checkpoints. SQLite
documents this as safe against corruption; a power loss (not a hub crash) can lose the last commits.

WAL needs the database's readers and writers on one host, which is how JupyterHub uses it (one hub process
owns the database). Turn it off (`db_sqlite_wal: false`) if the hub's volume is a network file system.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


def is_sqlite_file(db_url: str) -> bool:
    """A sqlite database in a file (an in-memory one has no journal to speak of)."""
    return db_url.startswith("sqlite:") and ":memory:" not in db_url and db_url.rstrip("/") != "sqlite:"


def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def use_sqlite_wal() -> None:
    """Every new sqlite connection of this process (JupyterHub's engine is the only one in the hub) gets
    the pragmas. Idempotent."""
    if not event.contains(Engine, "connect", _on_connect):
        event.listen(Engine, "connect", _on_connect)
