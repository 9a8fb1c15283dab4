"""`DATABASE_DURABILITY`: whether a commit waits for the disk (see `bot.storage.database`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError
from bot.storage.database import Database
from tests.conftest import fresh_postgres_database


@pytest.mark.parametrize("durability", ["full", "fast"])
async def test_sqlite_commits_wait_for_the_disk_only_when_durability_is_full(
    durability: str, tmp_path: Path
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", durability)
    await database.start()
    try:
        async with database.engine.connect() as connection:
            level = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar_one()
            mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
    finally:
        await database.close()
    assert (level, mode) == ({"full": 2, "fast": 1}[durability], "wal")


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
