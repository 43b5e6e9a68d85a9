"""The hub's sqlite database runs in write-ahead-log mode: checked on JupyterHub's own engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub import orm
from sqlalchemy import text
from traitlets.config import Config

from hub_config.config import configure
from hub_config.database import is_sqlite_file, use_sqlite_wal
from hub_config.settings import HubSettings


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///jupyterhub.sqlite", True), ("sqlite:////data/hub.sqlite", True), ("sqlite://", False),
    ("sqlite:///:memory:", False), ("postgresql://hub@db/hub", False), ("mysql+pymysql://h@db/hub", False),
])
def test_only_a_sqlite_file_is_switched(url: str, expected: bool) -> None:
    assert is_sqlite_file(url) is expected


def pragmas(db: Path, user: str) -> tuple[str, int]:
    session = orm.new_session_factory(f"sqlite:///{db}")()  # how JupyterHub opens its database
    try:
        mode = session.execute(text("PRAGMA journal_mode")).scalar()
        sync = session.execute(text("PRAGMA synchronous")).scalar()
        session.add(orm.User(name=user))
        session.commit()
        return str(mode), int(sync)
    finally:
        session.close()


def test_jupyterhubs_engine_gets_wal_and_normal_sync(tmp_path: Path) -> None:
    configure(Config(), HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.sqlite'}"))
    mode, sync = pragmas(tmp_path / "hub.sqlite", "alice")
    assert (mode, sync) == ("wal", 1)  # synchronous: 0 OFF, 1 NORMAL, 2 FULL
    assert (tmp_path / "hub.sqlite-wal").exists()
    use_sqlite_wal()  # idempotent: registering twice changes nothing
    assert pragmas(tmp_path / "hub.sqlite", "bob") == ("wal", 1)
