"""The review commands of `python -m bot`: export annotations, record scores, demo data.

python -m bot nlu export-annotations [--out nlu/annotations.yml]
python -m bot nlu evaluate tests/data/nlu_heldout.yml --record
python -m bot db seed-demo --users 1000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.nlu.evaluation import Scores, load_labelled
from bot.settings import PROJECT_ROOT, Settings
from bot.storage.database import Database

HELDOUT = PROJECT_ROOT / "tests" / "data" / "nlu_heldout.yml"
DEVELOPMENT = PROJECT_ROOT / "tests" / "dev" / "nlu_dev.yml"


def add_nlu_commands(nlu: Any, settings: Callable[[], Settings]) -> None:
    """Add the review commands under `python -m bot nlu` (`nlu` is its subparsers)."""
    export = nlu.add_parser(
        "export-annotations",
        help="write the moderators' intent annotations as Rasa training data",
    )
    export.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "nlu" / "annotations.yml",
        help="the file to (re)write (default nlu/annotations.yml, which `make train` learns)",
    )
    export.add_argument(
        "--nlu-dir",
        type=Path,
        default=PROJECT_ROOT / "nlu",
        help="the training data the export is deduplicated against (default nlu/)",
    )
    export.set_defaults(func=lambda args: cmd_export_annotations(args, settings()))


def add_db_commands(db: Any, settings: Callable[[], Settings]) -> None:
    seed = db.add_parser(
        "seed-demo", help="fill an EMPTY database with invented conversations (demo, benchmark)"
    )
    seed.add_argument("--users", type=int, default=1000, help="how many conversations")
    seed.add_argument("--days", type=int, default=30, help="spread over this many past days")
    seed.set_defaults(func=lambda args: cmd_seed_demo(args, settings()))


def cmd_export_annotations(args: argparse.Namespace, settings: Settings) -> int:
    from bot.review.annotations import annotated_texts, write_annotations

    async def read() -> list[tuple[str, str]]:
        database = Database(settings.database_url)
        await database.start()
        try:
            return await annotated_texts(database)
        finally:
            await database.close()

    annotated = asyncio.run(read())
    report = write_annotations(annotated, args.out, args.nlu_dir, (HELDOUT, DEVELOPMENT))
    print(f"{args.out}: {report.summary()}")
    if report.written:
        print("per intent: " + ", ".join(f"{i} {n}" for i, n in report.written.items()))
    print("run `make train` to learn them; check the held-out scores before deploying")
    return 0


def dataset_name(path: Path) -> str:
    """The set's path relative to the project (how the dashboard names it)."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(PROJECT_ROOT))
    except ValueError:
        return resolved.name


def dataset_label(path: Path) -> str:
    """The set's name and a fingerprint of its labelled examples.

    Scores are compared between models on the same set; when the set itself changes (a new
    batch of held-out messages), the old and new scores are of different sets, and the label
    keeps the dashboard from showing a harder set as a worse model.
    """
    examples = [(e.text, e.intent) for e in load_labelled(path)]
    digest = hashlib.sha256(json.dumps(examples).encode()).hexdigest()[:8]
    return f"{dataset_name(path)} @{digest}"


def record_evaluation(settings: Settings, model: str, path: Path, scores: Scores) -> str:
    """Store the scores of `model` on the set at `path`; returns what to print."""
    from bot.review.evaluations import record_scores

    dataset = dataset_label(path)

    async def record() -> None:
        database = Database(settings.database_url)
        await database.start()
        try:
            await record_scores(database, model, dataset, scores)
        finally:
            await database.close()

    asyncio.run(record())
    where = Database(settings.database_url).url
    return f"recorded the scores of {model} on {dataset} in {where}"


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.content.loader import load_library
    from bot.review.demo import seed_demo

    library = load_library(settings.content_dir)
    testimonies: dict[str, list[str]] = {}
    for testimony in library.approved_testimonies():
        for claim in testimony.claims:
            testimonies.setdefault(claim, []).append(testimony.id)

    async def seed() -> int:
        database = Database(settings.database_url)
        await database.start()
        try:
            return await seed_demo(database, args.users, testimonies, days=args.days)
        finally:
            await database.close()

    try:
        written = asyncio.run(seed())
    except ValueError as exc:
        print(f"error: {exc}")
        return 1
    print(f"added {args.users} invented conversations ({written} messages)")
    return 0
