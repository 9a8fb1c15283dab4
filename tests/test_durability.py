"""`DATABASE_DURABILITY`: whether a commit waits for the disk (see `bot.storage.database`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection

from bot.settings import Settings, SettingsError
from bot.storage.database import Database
from tests.conftest import fresh_postgres_database


@pytest.mark.parametrize("durability", ["full", "fast"])
async def test_sqlite_commits_wait_for_the_disk_only_when_durability_is_full(
    durability: str, tmp_path: Path
) -> None:
    """Both ways in: the async engine, and the worker threads that run a turn's read and
    commit (`Database.read` and `Database.write`)."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", durability)
    await database.start()

    def pragmas(connection: Connection) -> tuple[object, ...]:
        return tuple(
            connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in ("synchronous", "journal_mode", "foreign_keys", "secure_delete")
        )

    try:
        async with database.engine.connect() as connection:
            seen = [await connection.run_sync(pragmas)]
        seen += [await database.read(pragmas), await database.write(pragmas)]
    finally:
        await database.close()
    assert seen == [({"full": 2, "fast": 1}[durability], "wal", 1, 1)] * 3


async def test_postgresql_fast_durability_turns_off_synchronous_commit() -> None:
    async with fresh_postgres_database() as url:
        for durability, expected in (("full", "on"), ("fast", "off")):
            database = Database(url, durability)
            await database.start()
            try:
                async with database.engine.connect() as connection:
                    setting = await connection.exec_driver_sql("SHOW synchronous_commit")
                    assert setting.scalar_one() == expected
            finally:
                await database.close()


def test_database_durability_is_full_unless_set_to_fast() -> None:
    assert Settings.from_env({}).database_durability == "full"
    assert Settings.from_env({"DATABASE_DURABILITY": "FAST"}).database_durability == "fast"
    with pytest.raises(SettingsError, match="DATABASE_DURABILITY"):
        Settings.from_env({"DATABASE_DURABILITY": "yolo"})
