"""Command line: `python -m bot <command>`; `python -m bot --help` lists them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from bot.content.loader import ContentError
from bot.dashboard.accounts import AccountError
from bot.dashboard.serve import DashboardError
from bot.nlu.server import NLUServerError
from bot.nlu.understanding import Understanding
from bot.review import cli as review_cli
from bot.settings import Settings, SettingsError
from bot.storage.database import StorageUnavailable
from bot.storage.models import ROLES


def _settings() -> Settings:
    return Settings.from_env().with_secrets()


def _setup_logging(level: str, log_format: str = "text") -> None:
    from bot.observability.logs import setup_logging

    setup_logging(level, log_format)


def cmd_run(_: argparse.Namespace) -> int:
    from bot.observability.sentry import init_sentry
    from bot.run import run

    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format)
    init_sentry(settings.sentry_dsn)
    return asyncio.run(run(settings))


def cmd_dashboard(_: argparse.Namespace) -> int:
    from bot.observability.sentry import init_sentry
    from bot.run import run_dashboard

    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format)
    init_sentry(settings.sentry_dsn)
    return asyncio.run(run_dashboard(settings))


def cmd_users(args: argparse.Namespace) -> int:
    from bot.dashboard.cli import users_command

    settings = _settings()
    action = args.users_command
    print(
        asyncio.run(
            users_command(settings, action, getattr(args, "name", ""), getattr(args, "role", ""))
        )
    )
    return 0


def cmd_chat(_: argparse.Namespace) -> int:
    from bot.chat import chat
    from bot.services import Services

    settings = _settings()
    _setup_logging("WARNING")

    async def main() -> None:
        async with Services(settings) as services:
            await chat(services.conversation, settings.pseudonym_secret)

    asyncio.run(main())
    return 0


def cmd_nlu_parse(_: argparse.Namespace) -> int:
    """One JSON object per input line: text, intent, confidence, source, ranking, entities."""
    import contextlib

    from bot.services import open_nlu

    settings = _settings()
    _setup_logging("WARNING")

    def as_json(u: Understanding) -> str:
        return json.dumps(
            {
                "text": u.text,
                "intent": u.intent,
                "confidence": round(u.confidence, 4),
                "source": u.source,
                "ranking": u.ranking_json(),
                "entities": u.entities_json(),
            },
            ensure_ascii=False,
        )

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            client = await open_nlu(settings, stack)
            for line in sys.stdin:
                text = line.rstrip("\n")
                if text.strip():
                    print(as_json(await client.understand(text)), flush=True)

    asyncio.run(main())
    return 0


def cmd_nlu_evaluate(args: argparse.Namespace) -> int:
    """Score the model plus safety net on a labelled set (by default the held-out one)."""
    import contextlib
    from pathlib import Path

    from bot.nlu.evaluation import confusions, load_labelled, predict, score, scores_table
    from bot.services import open_nlu

    settings = _settings()
    _setup_logging("WARNING")
    examples = load_labelled(Path(args.path))

    async def main() -> tuple[list[str | None], str | None]:
        async with contextlib.AsyncExitStack() as stack:
            client = await open_nlu(settings, stack)
            found = await predict(client, [e.text for e in examples])
            return [u.intent for u in found], client.model

    intents, model = asyncio.run(main())
    scores = score(examples, intents)
    print(scores_table(scores))
    print("\nMost frequent confusions (gold -> predicted):")
    for (gold, predicted), count in confusions(scores):
        print(f"  {count:3d}  {gold} -> {predicted}")
    if args.errors:
        print("\nEvery miss (gold -> predicted: text):")
        for text, gold, predicted in sorted(scores.errors, key=lambda e: e[1]):
            print(f"  {gold} -> {predicted}: {text}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores.summary(), indent=2) + "\n")
    if args.record:
        if model is None:
            print("error: the NLU server did not say which model it serves; nothing recorded")
            return 1
        print("\n" + review_cli.record_evaluation(settings, model, Path(args.path), scores))
    return 0


def cmd_nlu_tune(args: argparse.Namespace) -> int:
    """Try FallbackClassifier thresholds on a labelled set (the dev set, never the held-out)."""
    import contextlib
    from pathlib import Path

    from bot.nlu.evaluation import load_labelled, predict, tune_fallback
    from bot.services import open_nlu

    settings = _settings()
    _setup_logging("WARNING")
    examples = load_labelled(Path(args.path))

    async def main() -> list[Understanding]:
        async with contextlib.AsyncExitStack() as stack:
            client = await open_nlu(settings, stack)
            client.crisis_floor = 1.0  # the grid tries floors itself, on the model's own ranking
            return await predict(client, [e.text for e in examples])

    print(
        "threshold ambiguity crisis_floor macro_f1 risk_recall crisis_recall false_alarms"
        " fallback_share"
    )
    understood = asyncio.run(main())
    for threshold, ambiguity, floor, s in tune_fallback(examples, understood)[: args.top]:
        fallback = sum(1 for _t, _g, p in s.errors if p == "nlu_fallback") / s.examples
        print(
            f"{threshold:9.2f} {ambiguity:9.2f} {floor:12.2f} {s.macro_f1:8.3f} "
            f"{s.risk_recall:11.3f} {s.crisis_recall:13.3f} {s.benign_false_alarm_rate:12.3f}"
            f" {fallback:14.3f}"
        )
    return 0


def cmd_nlu_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.nlu.evaluation import crossval_table

    print(crossval_table(json.loads(Path(args.report).read_text())))
    return 0


def cmd_content_check(_: argparse.Namespace) -> int:
    from bot.content.check import main

    return main(Settings.from_env().content_dir)


def cmd_content_import(args: argparse.Namespace) -> int:
    """Load the YAML folder into the database (idempotent; statuses as in the YAML)."""
    from pathlib import Path

    from bot.content.documents import read_items
    from bot.storage.content_store import IMPORT_ACTOR, ContentStore
    from bot.storage.database import Database

    settings = _settings()
    directory = Path(args.directory) if args.directory else settings.content_dir
    records = read_items(directory)  # raises ContentError, listing every problem

    async def main() -> str:
        database = Database(settings.database_url)
        await database.start()
        try:
            summary = await ContentStore(database).import_records(records)
        finally:
            await database.close()
        return (
            f"imported {directory} as {IMPORT_ACTOR}: {summary.created} new, "
            f"{summary.changed} changed, {summary.unchanged} unchanged"
        )

    print(asyncio.run(main()))
    return 0


def cmd_content_export(args: argparse.Namespace) -> int:
    """Write the database's library to the YAML folder, for review in git."""
    from pathlib import Path

    from bot.content.documents import write_items
    from bot.storage.content_store import ContentStore
    from bot.storage.database import Database

    settings = _settings()
    directory = Path(args.directory) if args.directory else settings.content_dir

    async def main() -> int:
        database = Database(settings.database_url)
        await database.start()
        try:
            records = await ContentStore(database).export_records()
        finally:
            await database.close()
        write_items(directory, records)
        return len(records)

    count = asyncio.run(main())
    print(f"exported {count} items to {directory}")
    return 0


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    from bot.storage.database import Database

    settings = _settings()

    async def main() -> None:
        database = Database(settings.database_url)
        await database.start()  # runs the Alembic migrations
        await database.close()
        print(f"database at {database.url} is up to date")

    asyncio.run(main())
    return 0


def cmd_db_purge(_: argparse.Namespace) -> int:
    from bot.retention import purge_expired
    from bot.storage.database import Database
    from bot.storage.store import Store

    settings = _settings()

    async def main() -> int:
        database = Database(settings.database_url)
        await database.start()
        try:
            return await purge_expired(Store(database), settings.retention_days)
        finally:
            await database.close()

    deleted = asyncio.run(main())
    print(f"deleted {deleted} messages older than {settings.retention_days} days")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Defector Voices: the bot and its tools."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run", help="run the bot (Telegram with a token) and the dashboard"
    ).set_defaults(func=cmd_run)
    commands.add_parser(
        "dashboard", help="run the dashboard alone (with try-the-bot)"
    ).set_defaults(func=cmd_dashboard)
    users = commands.add_parser("users", help="dashboard accounts").add_subparsers(
        dest="users_command", required=True, metavar="USERS_COMMAND"
    )
    add = users.add_parser(
        "add", help="create an account (password asked, or read from stdin when not a terminal)"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(func=cmd_users)
    users.add_parser("list", help="list the accounts").set_defaults(func=cmd_users)
    for action, text in (
        ("disable", "disable an account and end its sessions"),
        ("enable", "enable a disabled account"),
        ("password", "set a new password (asked, or read from stdin)"),
        ("unlock", "lift a lock left by failed logins"),
    ):
        one = users.add_parser(action, help=text)
        one.add_argument("name")
        one.set_defaults(func=cmd_users)
    commands.add_parser("chat", help="talk to the bot in this terminal").set_defaults(func=cmd_chat)
    nlu = commands.add_parser("nlu", help="the NLU model").add_subparsers(
        dest="nlu_command", required=True, metavar="NLU_COMMAND"
    )
    nlu.add_parser(
        "parse", help="classify stdin, one message per line, printing one JSON object per line"
    ).set_defaults(func=cmd_nlu_parse)
    evaluate = nlu.add_parser(
        "evaluate", help="score the model and safety net on a labelled YAML set"
    )
    evaluate.add_argument("path", help="e.g. tests/data/nlu_heldout.yml")
    evaluate.add_argument("--json", help="also write the summary scores to this file")
    evaluate.add_argument("--errors", action="store_true", help="list every misclassified text")
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="store the scores for the served model (the dashboard compares models)",
    )
    evaluate.set_defaults(func=cmd_nlu_evaluate)
    tune = nlu.add_parser(
        "tune-fallback", help="try FallbackClassifier thresholds on a labelled YAML set"
    )
    tune.add_argument("path", help="e.g. tests/dev/nlu_dev.yml (never the held-out set)")
    tune.add_argument("--top", type=int, default=15, help="how many settings to show")
    tune.set_defaults(func=cmd_nlu_tune)
    report = nlu.add_parser("report", help="turn rasa's intent_report.json into a Markdown table")
    report.add_argument("report", help="path to intent_report.json")
    report.set_defaults(func=cmd_nlu_report)
    review_cli.add_nlu_commands(nlu, _settings)
    content = commands.add_parser("content", help="the content library").add_subparsers(
        dest="content_command", required=True, metavar="CONTENT_COMMAND"
    )
    content.add_parser(
        "check", help="validate responses/ and report problems with file and line"
    ).set_defaults(func=cmd_content_check)
    content_import = content.add_parser(
        "import", help="load responses/ into the database (idempotent; keeps YAML statuses)"
    )
    content_import.add_argument("directory", nargs="?", help="default: CONTENT_DIR")
    content_import.set_defaults(func=cmd_content_import)
    content_export = content.add_parser(
        "export", help="write the database's library to responses/ for review in git"
    )
    content_export.add_argument("directory", nargs="?", help="default: CONTENT_DIR")
    content_export.set_defaults(func=cmd_content_export)
    db = commands.add_parser("db", help="the database").add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND"
    )
    db.add_parser("upgrade", help="apply the database migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser(
        "purge-expired", help="delete messages older than RETENTION_DAYS now"
    ).set_defaults(func=cmd_db_purge)
    review_cli.add_db_commands(db, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except (NLUServerError, StorageUnavailable, ContentError, DashboardError, AccountError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
