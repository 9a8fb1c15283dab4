"""The storage layer, on SQLite and on PostgreSQL.

PostgreSQL tests use the server at `TEST_DATABASE_URL` (default: the local server, user
postgres), in a database created for this module and dropped after it; they fail with the
reason when no server answers (CI starts one). Checking that /forget leaves no copy behind needs a
superuser there (for `pageinspect` and `CHECKPOINT`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect, make_url, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.nlu.understanding import Entity, IntentScore, Understanding
from bot.policy.state import UserState
from bot.storage import Database, StorageUnavailable, Store, pseudonymise
from bot.storage.database import alembic_config, database_unreachable
from bot.storage.models import Base, Message, ProcessedUpdate, User
from bot.storage.review_models import EXPRESSION_INDEXES
from bot.storage.turns import MessageRecord, TurnOutcome, TurnRecord
from tests.conftest import counting_commits, fresh_postgres_database

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]
SECRET = "a-test-secret-that-is-long-enough-0123456789"


# -- fixtures (candidates for tests/conftest.py) ----------------------------------------------


def sqlite_url(tmp_path: Path) -> str:
    # A folder that does not exist yet: Database.start creates it.
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'defector_voices.db'}"


@pytest.fixture(scope="module")
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a new SQLite file per test, or the module's PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A started `Store` on empty tables."""
    store = Store(Database(database_url))
    await store.start()
    if store.database.dialect == "postgresql":
        async with store.database.engine.begin() as connection:
            await connection.exec_driver_sql("TRUNCATE users, messages, processed_updates CASCADE")
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=BACKENDS)
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database that holds no table yet."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database() as url:
        yield url


def crisis_understanding(text: str) -> Understanding:
    return Understanding(
        text=text,
        intent="crisis_self_harm",
        confidence=0.97,
        ranking=(IntentScore("crisis_self_harm", 0.97), IntentScore("greet", 0.01)),
        entities=(Entity("country", "SY"),),
        source="safety_net",
        model="nlu-20251101",
    )


# -- schema -----------------------------------------------------------------------------------


def not_an_expression_index(
    item: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic cannot compare an index on an expression (SQLite does not reflect it, and
    PostgreSQL returns it rewritten), so such indexes are checked by name instead."""
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def index_names(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = connection.exec_driver_sql("SELECT indexname FROM pg_indexes")
    return {str(name) for (name,) in rows}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_migrations_create_the_schema_from_empty(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    await database.start()
    try:
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (
                await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar_one()
            differences = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"include_object": not_an_expression_index}),
                    Base.metadata,
                )
            )
            indexes = await connection.run_sync(index_names)
        assert tables == {"alembic_version", *Base.metadata.tables}
        assert indexes >= EXPRESSION_INDEXES
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert differences == [], "the models and the migrations disagree"
    finally:
        await database.close()

    # Starting again on a migrated database changes nothing.
    again = Database(empty_database_url)
    await again.start()
    await again.close()


async def test_migrations_downgrade_to_an_empty_database(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    await database.start()

    def downgrade(connection: Connection) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        return set(inspect(connection).get_table_names())

    try:
        async with database.engine.begin() as connection:
            assert await connection.run_sync(downgrade) == {"alembic_version"}
    finally:
        await database.close()


async def test_alembic_ini_migrates_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    url = sqlite_url(tmp_path)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")),
        *("-x", f"url={url}", "upgrade", "head"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()

    store = Store(Database(url))
    await store.start()
    try:
        assert await store.user_count() == 0
    finally:
        await store.close()


# -- behaviour --------------------------------------------------------------------------------


async def test_an_update_is_claimed_only_once(store: Store, database_url: str) -> None:
    assert await store.claim_update(1001) is True
    assert await store.claim_update(1001) is False
    assert await store.claim_update(1002) is True

    # Two replicas (two engines) racing for the same update: exactly one wins.
    replica = Store(Database(database_url))
    await replica.start()
    try:
        claims = await asyncio.gather(
            *((store if i % 2 else replica).claim_update(2**40 + 7) for i in range(20))
        )
    finally:
        await replica.close()
    assert claims.count(True) == 1


async def test_user_state_round_trips(store: Store, database_url: str) -> None:
    state = await store.load_user("p-round-trip")
    assert state == UserState(pseudonym="p-round-trip")
    assert await store.user_count() == 1
    assert await store.load_user("p-round-trip") == state, "loading twice creates one user"
    assert await store.user_count() == 1

    state.country = "IQ"
    state.in_crisis = True
    state.human_requested = True
    state.last_claim = "claim_good_life"
    state.last_reply_kind = "counter_message"
    state.shown_testimonies = ["t-001", "t-017"]
    await store.save_user(state)

    reopened = Store(Database(database_url))
    await reopened.start()
    try:
        assert await reopened.load_user("p-round-trip") == state
    finally:
        await reopened.close()

    assert await store.set_campaign("p-round-trip", "radio-mosul") is True
    assert await store.set_campaign("p-round-trip", "later-campaign") is False
    assert (await store.load_user("p-round-trip")).campaign == "radio-mosul"

    # A state saved before it was ever loaded still lands.
    await store.save_user(UserState(pseudonym="p-new", shown_testimonies=["t-002"]))
    assert (await store.load_user("p-new")).shown_testimonies == ["t-002"]

    # Concurrent first contacts create a single row.
    await asyncio.gather(*(store.load_user("p-race") for _ in range(10)))
    assert await store.user_count() == 3


async def test_no_identity_is_stored(store: Store) -> None:
    telegram_id = 5_123_456_789
    pseudonym = pseudonymise(telegram_id, SECRET)
    assert pseudonym == pseudonymise(telegram_id, SECRET)
    assert pseudonym != pseudonymise(telegram_id, SECRET + "x")
    assert len(pseudonym) == 64
    assert int(pseudonym, 16) >= 0
    assert str(telegram_id) not in pseudonym
    with pytest.raises(ValueError, match="secret"):
        pseudonymise(telegram_id, "")

    state = await store.load_user(pseudonym)
    state.country = "SY"
    await store.save_user(state)
    await store.record_message(
        pseudonym, direction="in", kind="text", text="hello", update_id=777_000_001
    )

    for table in Base.metadata.sorted_tables:
        if table.name == "accounts":  # dashboard staff log in by name; bot users never do
            continue
        for column in table.columns:
            assert not any(word in column.name for word in ("name", "phone", "telegram", "chat")), (
                f"{table.name}.{column.name} looks like identity"
            )
    async with store.database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                assert str(telegram_id) not in repr(tuple(row)), f"{table.name} holds the id"


async def test_record_message_sets_flags(store: Store) -> None:
    before = datetime.now(UTC)
    message_id = await store.record_message(
        "p-flags",
        direction="in",
        kind="text",
        text="I want to end it",
        understanding=crisis_understanding("I want to end it"),
        flags=["crisis"],
        update_id=2**40,
    )
    await store.record_message(
        "p-flags",
        direction="out",
        kind="safety",
        text="You are not alone. ...",
        content_ids=["resource-sy-1", "resource-intl-2"],
        is_test=True,
    )
    assert await flags_of(store, "p-flags") == (False, True)

    await store.record_message("p-flags", direction="in", kind="text", text="x", flags=["risk"])
    assert await flags_of(store, "p-flags") == (True, True)
    await store.record_message("p-flags", direction="in", kind="command", text="/start")
    assert await flags_of(store, "p-flags") == (True, True), "flags are never lowered"

    first, reply, *_ = await store.messages_for("p-flags")
    assert first.id == message_id
    assert (first.direction, first.kind, first.text) == ("in", "text", "I want to end it")
    assert (first.intent, first.confidence) == ("crisis_self_harm", 0.97)
    assert first.ranking == (
        {"name": "crisis_self_harm", "confidence": 0.97},
        {"name": "greet", "confidence": 0.01},
    )
    assert first.entities == ({"entity": "country", "value": "SY"},)
    assert (first.intent_source, first.model) == ("safety_net", "nlu-20251101")
    assert (first.flags, first.update_id, first.is_test) == (("crisis",), 2**40, False)
    assert first.created_at.utcoffset() == timedelta(0)
    assert before <= first.created_at <= datetime.now(UTC)
    assert (reply.direction, reply.kind, reply.intent, reply.intent_source) == (
        "out",
        "safety",
        None,
        None,
    )
    assert reply.content_ids == ("resource-sy-1", "resource-intl-2")
    assert reply.is_test is True
    assert await store.message_count() == 4

    async with store.database.session() as session:
        last_seen = (
            await session.execute(select(User.last_seen_at).where(User.pseudonym == "p-flags"))
        ).scalar_one()
    assert last_seen >= first.created_at
    assert last_seen.utcoffset() == timedelta(0)

    with pytest.raises(ValueError, match="direction"):
        await store.record_message("p-flags", direction="sideways", kind="text", text=None)


async def flags_of(store: Store, pseudonym: str) -> tuple[bool, bool]:
    async with store.database.session() as session:
        row = (
            await session.execute(
                select(User.risk_flag, User.crisis_flag).where(User.pseudonym == pseudonym)
            )
        ).one()
    return row.risk_flag, row.crisis_flag


async def test_forget_removes_every_trace(store: Store, database_url: str) -> None:
    marker = f"forget-me-{secrets.token_hex(16)}"
    # Long enough to leave the row: PostgreSQL moves it to TOAST, SQLite to overflow pages.
    # Random hex does not compress, so the marker stays readable in the pages.
    long_text = f"{marker} {secrets.token_hex(1990)}"
    await store.set_campaign("p-forget", marker)
    await store.record_message(
        "p-forget",
        direction="in",
        kind="text",
        text=f"my brother went to Raqqa {marker}",
        understanding=Understanding(
            text=marker, intent="greet", confidence=0.5, entities=(Entity("city", marker),)
        ),
        update_id=9001,
    )
    await store.record_message("p-forget", direction="in", kind="text", text=long_text)
    await store.record_message("p-forget", direction="out", kind="counter_message", text=marker)
    kept_id = await store.record_message("p-keep", direction="in", kind="text", text="still here")

    assert marker.encode() in await raw_bytes(database_url), "the check must see the marker"

    assert await store.forget_user("p-forget") == 3
    assert await store.forget_user("p-forget") == 0
    assert await store.forget_user("p-never-seen") == 0

    assert await store.messages_for("p-forget") == []
    assert [m.id for m in await store.messages_for("p-keep")] == [kept_id]
    assert await store.user_count() == 1
    # While the bot runs (on SQLite, the WAL is still there) and once it has stopped.
    assert marker.encode() not in await raw_bytes(database_url)
    await store.close()
    assert marker.encode() not in await raw_bytes(database_url)


async def test_forget_waits_out_an_older_snapshot_on_postgresql() -> None:
    """Rows an older transaction could still read survive one VACUUM FULL: forget retries."""
    async with fresh_postgres_database() as url:
        store = Store(Database(url))
        await store.start()
        marker = f"forget-me-{secrets.token_hex(16)}"
        await store.record_message("p-forget", direction="in", kind="text", text=marker)
        # Another session holds a snapshot taken before the delete (no lock on the tables,
        # as autovacuum or a query on another table would)...
        reader = create_async_engine(url, poolclass=NullPool)
        async with reader.connect() as connection:
            await connection.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ")
            await connection.exec_driver_sql("SELECT 1")
            forgetting = asyncio.create_task(store.forget_user("p-forget"))
            await asyncio.sleep(1.0)
            # ...and while it is open, the rewrite cannot drop them: forget keeps trying.
            assert not forgetting.done()
            await connection.exec_driver_sql("COMMIT")
        await reader.dispose()
        assert await asyncio.wait_for(forgetting, 15) == 1
        await store.close()
        assert marker.encode() not in await raw_bytes(url)


async def raw_bytes(database_url: str) -> bytes:
    """Every byte where the database could keep a copy of deleted data.

    SQLite: the database file, its WAL and any journal. PostgreSQL: every page of every
    relation of the database as the server holds it (`get_raw_page`, free space included:
    tables, TOAST tables, indexes, catalogs such as pg_statistic) and, after a CHECKPOINT,
    the files of the database's folder when this process may read them (root on the
    server's machine), which also catches a table's old files left behind by a rewrite.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "")
        files = sorted(database.parent.glob(database.name + "*"))
        return b"".join(path.read_bytes() for path in files)

    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pageinspect")
            await connection.exec_driver_sql("CHECKPOINT")
            pages = await connection.exec_driver_sql(
                """
                SELECT get_raw_page(c.oid::regclass::text, 'main', block)
                FROM pg_class AS c
                CROSS JOIN LATERAL generate_series(
                    0::bigint,
                    pg_relation_size(c.oid) / current_setting('block_size')::bigint - 1
                ) AS block
                WHERE c.relkind IN ('r', 't', 'i', 'm') AND c.relpersistence = 'p'
                """
            )
            raw = b"".join(bytes(page) for (page,) in pages)
            data_directory = (await connection.exec_driver_sql("SHOW data_directory")).scalar_one()
            database_oid = (
                await connection.exec_driver_sql(
                    "SELECT oid FROM pg_database WHERE datname = current_database()"
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    folder = Path(data_directory) / "base" / str(database_oid)
    if os.access(folder, os.R_OK | os.X_OK):
        raw += b"".join(path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file())
    return raw


async def test_expired_messages_are_deleted_and_recent_kept(store: Store) -> None:
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=90)
    old_ids = [
        await store.record_message("p-active", direction="in", kind="text", text="old"),
        await store.record_message("p-gone", direction="in", kind="text", text="old too"),
    ]
    recent_id = await store.record_message("p-active", direction="in", kind="text", text="new")
    await store.load_user("p-quiet")  # seen long ago, never wrote
    await store.load_user("p-fresh")  # seen just now, never wrote
    await store.claim_update(1)
    await store.claim_update(2)

    long_ago = now - timedelta(days=91)
    async with store.database.session() as session, session.begin():
        await session.execute(
            update(Message).where(Message.id.in_(old_ids)).values(created_at=long_ago)
        )
        await session.execute(
            update(User)
            .where(User.pseudonym.in_(["p-gone", "p-quiet"]))
            .values(last_seen_at=long_ago)
        )
        await session.execute(
            update(ProcessedUpdate)
            .where(ProcessedUpdate.update_id == 1)
            .values(processed_at=long_ago)
        )

    assert await store.delete_expired(cutoff) == 2

    assert [m.id for m in await store.messages_for("p-active")] == [recent_id]
    assert await store.message_count() == 1
    async with store.database.session() as session:
        users = set((await session.scalars(select(User.pseudonym))).all())
        updates = set((await session.scalars(select(ProcessedUpdate.update_id))).all())
    assert users == {"p-active", "p-fresh"}
    assert updates == {2}
    assert await store.claim_update(2) is False

    assert await store.delete_expired(cutoff) == 0
    with pytest.raises(ValueError, match="timezone"):
        await store.delete_expired(datetime(2025, 1, 1))  # naive on purpose


async def test_sqlite_connections_are_hardened(tmp_path: Path) -> None:
    store = Store(Database(sqlite_url(tmp_path)))
    await store.start()
    try:
        # Two connections at once, so both come from the pool's "connect" event.
        async with store.database.engine.connect() as first, store.database.engine.connect():
            pragmas = {
                name: (await first.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "foreign_keys", "secure_delete", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "secure_delete": 1,
            "busy_timeout": 5000,
        }
        database = tmp_path / "data" / "defector_voices.db"
        assert database.stat().st_mode & 0o077 == 0, "the database is readable by others"
        assert database.parent.stat().st_mode & 0o077 == 0
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+asyncpg://bot:s3cret-pw@127.0.0.1:1/bot", id="no-server"),
        pytest.param(
            POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/no_such_database_4d2f", id="no-database"
        ),
        pytest.param("sqlite+aiosqlite:///{tmp}/a-file/defector_voices.db", id="sqlite-bad-path"),
    ],
)
async def test_unreachable_database_raises_storage_unavailable(url: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    database = Database(url.format(tmp=tmp_path))
    assert "s3cret-pw" not in database.url
    with pytest.raises(StorageUnavailable) as caught:
        await database.start()
    assert isinstance(caught.value, RuntimeError)
    assert database.url in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    with pytest.raises(RuntimeError, match="start"):
        database.session()


# -- a conversation turn: one read, one transaction --------------------------------------------


def turn_of(
    pseudonym: str, update_id: int, state: UserState, *, recovered: bool = False
) -> TurnRecord:
    now = datetime.now(UTC)
    understanding = Understanding("i want to go", "interest_joining", 0.9, ())
    return TurnRecord(
        pseudonym,
        messages=(
            MessageRecord(
                "in",
                "text",
                "i want to go",
                now,
                understanding,
                flags=("risk",),
                update_id=update_id,
                write_key=f"update:{update_id}:in",
            ),
            MessageRecord(
                "out",
                "counter_message",
                "a story",
                now,
                content_ids=("t-001",),
                write_key=f"update:{update_id}:out",
            ),
        ),
        state=state,
        update_id=update_id,
        recovered=recovered,
    )


async def test_a_turn_stores_its_claim_messages_and_state_together(store: Store) -> None:
    start = await store.begin_turn("p-turn", flood_window_seconds=60)
    assert start.state == UserState("p-turn") and start.recent_incoming == 0
    assert await store.find_user("p-turn") is None, "reading the start of a turn writes nothing"

    state = start.state
    state.shown_testimonies = ["t-001"]
    state.risk_signals = {"interest_joining": 1}
    outcome = await store.finish_turn(turn_of("p-turn", 5001, state))
    assert not outcome.duplicate
    assert state.risk_level == "elevated", "the derived level is handed back"

    stored = await store.messages_for("p-turn")
    assert [(m.direction, m.kind, m.update_id) for m in stored] == [
        ("in", "text", 5001),
        ("out", "counter_message", None),
    ]
    assert stored[1].content_ids == ("t-001",)
    again = await store.begin_turn("p-turn", flood_window_seconds=60)
    assert again.state.shown_testimonies == ["t-001"]
    assert again.state.risk_level == "elevated"
    assert again.recent_incoming == 1
    async with store.database.session() as session:
        user = (await session.execute(select(User).where(User.pseudonym == "p-turn"))).scalar_one()
        assert user.risk_flag and not user.crisis_flag
    assert not await store.claim_update(5001), "the turn claimed its update"
    seen = await store.begin_turn("p-turn", flood_window_seconds=60, update_id=5001)
    assert seen.answered_before
    assert not (
        await store.begin_turn("p-turn", flood_window_seconds=60, update_id=1)
    ).answered_before
    # After /forget the user's row is gone, but a redelivered update is still recognised.
    await store.forget_user("p-turn")
    gone = await store.begin_turn("p-turn", flood_window_seconds=60, update_id=5001)
    assert gone.answered_before and gone.state == UserState("p-turn")


async def test_an_update_delivered_twice_is_stored_once(store: Store) -> None:
    await store.finish_turn(turn_of("p-twice", 5002, UserState("p-twice", country="IQ")))
    outcome = await store.finish_turn(turn_of("p-twice", 5002, UserState("p-twice", country="SY")))
    assert outcome.duplicate
    assert len(await store.messages_for("p-twice")) == 2
    found = await store.find_user("p-twice")
    assert found is not None and found.country == "IQ", "the duplicate's state is rolled back"

    # An update the journal gives back after a crash goes through, its messages stay single.
    recovered = turn_of("p-twice", 5002, UserState("p-twice", country="JO"), recovered=True)
    assert not (await store.finish_turn(recovered)).duplicate
    assert len(await store.messages_for("p-twice")) == 2
    found = await store.find_user("p-twice")
    assert found is not None and found.country == "JO"


async def test_turns_finishing_together_are_committed_as_a_group_each_with_its_own_outcome(
    store: Store,
) -> None:
    """While one commit runs, the turns finishing behind it go in one transaction; a turn
    with bad data is retried alone and fails alone, a repeated update is still a duplicate."""
    first = turn_of("p-group-0", 6000, UserState("p-group-0"))
    broken = turn_of("p-group-bad", 6100, UserState("p-group-bad"))
    broken = replace(broken, messages=(replace(broken.messages[0], direction="sideways"),))
    behind = [turn_of(f"p-group-{i}", 6000 + i, UserState(f"p-group-{i}")) for i in range(1, 9)]
    repeat = turn_of("p-group-1", 6001, UserState("p-group-1", country="SY"))
    with counting_commits(store.database) as counted:
        outcomes = await asyncio.gather(
            store.finish_turn(first),
            *(store.finish_turn(turn) for turn in [*behind[:4], broken, *behind[4:], repeat]),
            return_exceptions=True,
        )
    written, failed, duplicate = outcomes[:9], outcomes[5], outcomes[-1]
    del written[5]
    assert all(isinstance(o, TurnOutcome) and not o.duplicate for o in written), outcomes
    assert isinstance(failed, ValueError)
    assert isinstance(duplicate, TurnOutcome) and duplicate.duplicate
    # The first alone, then the group behind it (failed, so each again alone, 9 turns).
    assert counted.commits == 1 + 9, counted.commits
    for i in range(9):
        assert len(await store.messages_for(f"p-group-{i}")) == 2
    found = await store.find_user("p-group-1")
    assert found is not None and found.country is None, "the duplicate wrote nothing"
    assert await store.find_user("p-group-bad") is None
    assert await store.message_count() == 18

    # Without a bad turn the group is one commit.
    with counting_commits(store.database) as counted:
        await asyncio.gather(
            *(
                store.finish_turn(turn_of(f"p-g2-{i}", 7000 + i, UserState(f"p-g2-{i}")))
                for i in range(10)
            )
        )
    assert counted.commits == 2, "the first turn, then the nine behind it together"
    assert await store.message_count() == 38


async def test_a_turn_cancelled_while_its_group_is_written_leaves_no_other_turn_waiting(
    store: Store,
) -> None:
    first, writer, waiting = (
        turn_of(f"p-cancel-{i}", 8000 + i, UserState(f"p-cancel-{i}")) for i in range(3)
    )
    tasks = [asyncio.create_task(store.finish_turn(t)) for t in (first, writer, waiting)]
    await tasks[0]
    while store._finishing:  # the writer has taken its group (itself and the one waiting)
        await asyncio.sleep(0)
    tasks[1].cancel()
    async with asyncio.timeout(10):
        outcome = await tasks[2]
    assert not outcome.duplicate
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    for i in range(3):
        assert len(await store.messages_for(f"p-cancel-{i}")) == 2, i


async def test_a_turn_that_fails_to_store_leaves_nothing_behind(store: Store) -> None:
    broken = turn_of("p-broken", 5003, UserState("p-broken"))
    bad = replace(broken.messages[1], direction="sideways")
    with pytest.raises(ValueError, match="direction"):
        await store.finish_turn(replace(broken, messages=(broken.messages[0], bad)))
    assert await store.find_user("p-broken") is None
    assert await store.message_count() == 0
    assert await store.claim_update(5003), "the failed turn's claim was rolled back"


async def test_a_turn_keeps_a_crisis_raised_while_it_ran(store: Store) -> None:
    """The turn assumed no crisis; a late classification raised it meanwhile."""
    await store.save_user(UserState("p-late"))
    async with store.database.session() as session, session.begin():
        await session.execute(update(User).where(User.pseudonym == "p-late").values(in_crisis=True))
    state = UserState("p-late", risk_signals={"interest_joining": 1})
    await store.finish_turn(turn_of("p-late", 5004, state))
    assert state.in_crisis and state.risk_level == "crisis"
    found = await store.find_user("p-late")
    assert found is not None and (found.in_crisis, found.risk_level) == (True, "crisis")


# -- one crossing per turn ---------------------------------------------------------------------


async def test_on_sqlite_a_turns_read_does_not_wait_for_a_commit_under_way(tmp_path: Path) -> None:
    """Reads and commits run in worker threads of their own (`Database.read` and `write`):
    a turn's read goes ahead while a group commit waits for the disk."""
    store = Store(Database(sqlite_url(tmp_path)))
    await store.start()
    release = threading.Event()
    try:
        await store.finish_turn(turn_of("p-lanes", 9100, UserState("p-lanes", country="JO")))

        def slow_commit(connection: Connection) -> None:
            connection.execute(update(User).values(last_seen_at=User.last_seen_at))
            release.wait(10)  # the disk is slow

        commit = asyncio.create_task(store.database.write(slow_commit))
        await asyncio.sleep(0.05)
        start = await asyncio.wait_for(
            store.begin_turn("p-lanes", flood_window_seconds=60, update_id=9100), 2
        )
        assert not commit.done()
        assert start.state.country == "JO" and start.answered_before
    finally:
        release.set()
        await store.close()
    assert commit.done() and commit.exception() is None


async def test_a_turns_work_that_fails_is_rolled_back_whole(store: Store) -> None:
    await store.finish_turn(turn_of("p-rollback", 9200, UserState("p-rollback")))

    def half_done(connection: Connection) -> None:
        connection.execute(update(User).values(country="XX"))
        raise RuntimeError("failed halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        await store.database.write(half_done)
    found = await store.find_user("p-rollback")
    assert found is not None and found.country is None


async def test_on_postgresql_a_turn_survives_the_server_closing_its_pooled_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pooled connections are not pinged before use: one the server closed (a restart, an idle
    timeout) fails on first use, and the read or write runs again on a new connection."""
    async with fresh_postgres_database() as url:
        # One connection: every step below must go through the closed one first.
        store = Store(Database(url, pool_size=1))
        await store.start()
        admin = create_async_engine(POSTGRES_ADMIN_URL, poolclass=NullPool)
        database = make_url(url).database

        async def close_the_pooled_connection() -> None:
            async with admin.connect() as connection:
                closed = await connection.exec_driver_sql(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                    "pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
                    (database,),
                )
                assert closed.scalar_one() == 1

        try:
            await store.begin_turn("p-closed", flood_window_seconds=60)
            await close_the_pooled_connection()
            with caplog.at_level("INFO", logger="bot.storage.database"):
                state = UserState("p-closed", country="JO")
                assert not (await store.finish_turn(turn_of("p-closed", 9300, state))).duplicate
                await close_the_pooled_connection()
                start = await store.begin_turn("p-closed", flood_window_seconds=60, update_id=9300)
            assert start.state.country == "JO" and start.answered_before
            assert len(await store.messages_for("p-closed")) == 2
            retried = [r for r in caplog.records if "reconnecting" in r.getMessage()]
            assert len(retried) == 2, "the write and the read each ran again once"
        finally:
            await store.close()
            await admin.dispose()


async def test_on_postgresql_work_whose_commit_was_cut_off_is_not_run_again() -> None:
    """A connection lost during COMMIT may have committed: running a turn again would find
    its update claimed and call it a duplicate, so the error goes to the write buffer."""
    async with fresh_postgres_database() as url:
        database = Database(url, pool_size=1)
        await database.start()
        runs = 0

        def work(connection: Connection) -> None:
            nonlocal runs
            runs += 1
            connection.exec_driver_sql("SELECT 1")

        def cut_off(connection: Connection) -> None:
            # Right before the driver's COMMIT: the connection drops as if the server went away.
            connection.connection.dbapi_connection._connection.terminate()  # type: ignore[union-attr]

        event.listen(database.engine.sync_engine, "commit", cut_off)
        try:
            with pytest.raises(DBAPIError) as raised:
                await database.write(work)
            assert raised.value.connection_invalidated
            assert database_unreachable(raised.value), "the write buffer takes it"
            assert runs == 1
            event.remove(database.engine.sync_engine, "commit", cut_off)
            await database.write(work)  # a new connection: the pool was not left broken
            assert runs == 2
        finally:
            await database.close()


async def test_on_postgresql_a_read_opens_no_transaction_and_a_write_does() -> None:
    """Reads run in autocommit (one round trip per statement, no BEGIN and ROLLBACK): each
    statement of a read is its own transaction, while a write's statements share one."""
    async with fresh_postgres_database() as url:
        database = Database(url, pool_size=1)
        await database.start()

        def first_statement_and_transaction_start(
            connection: Connection,
        ) -> tuple[datetime, datetime]:
            first = connection.exec_driver_sql("SELECT statement_timestamp()").scalar_one()
            started = connection.exec_driver_sql("SELECT transaction_timestamp()").scalar_one()
            return first, started

        try:
            first, started = await database.read(first_statement_and_transaction_start)
            assert started > first, "the second statement began a transaction of its own"
            first, started = await database.write(first_statement_and_transaction_start)
            assert started <= first, "both statements ran in the write's one transaction"
        finally:
            await database.close()
