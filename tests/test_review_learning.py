"""Learning from corrections: the low-confidence queue, the export to Rasa training data,
and the held-out scores per model; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.nlu.evaluation import Scores, load_labelled
from bot.nlu.server import LocalNLUServer
from bot.review.annotations import annotated_texts, low_confidence_queue, write_annotations
from bot.review.cli import dataset_label
from bot.review.evaluations import record_scores, scores_by_model
from bot.review.transcript import annotate
from bot.storage.database import Database
from bot.storage.store import Store
from tests.conftest import database_url_for
from tests.review_data import say
from tests.test_commands import command_env, run_bot_command

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "data" / "nlu_heldout.yml"
DEVELOPMENT = ROOT / "tests" / "dev" / "nlu_dev.yml"
THRESHOLD = 0.7


async def queued_texts(store: Store) -> list[str]:
    page = await low_confidence_queue(store.database, THRESHOLD, page_size=100)
    return [item.text for item in page.items]


async def test_the_queue_holds_unsure_unannotated_real_messages(store: Store) -> None:
    await say(store, "u1", "sure thing", "greet", 0.95)
    unsure = await say(store, "u1", "maybe they are right", "sympathy_general", 0.55)
    await say(store, "u2", "blah blah", "nlu_fallback", 0.3)
    await say(store, "u2", "nobody heard this", None, 0.0)  # the NLU server was down
    await say(store, "u3", "test traffic", "nlu_fallback", 0.2, is_test=True)
    await say(store, "u3", "at the edge", "thanks", 0.7)

    assert await queued_texts(store) == ["nobody heard this", "blah blah", "maybe they are right"]
    item = (await low_confidence_queue(store.database, THRESHOLD)).items[-1]
    assert (item.message_id, item.pseudonym, item.intent, item.confidence) == (
        unsure,
        "u1",
        "sympathy_general",
        0.55,
    )
    assert [name for name, _ in item.alternatives] == ["greet", "thanks", "affirm"]

    await annotate(store.database, unsure, "sympathy_general", by="mod")  # confirmed
    assert await queued_texts(store) == ["nobody heard this", "blah blah"]


async def test_the_queue_pages_by_message_id(store: Store) -> None:
    for n in range(5):
        await say(store, "pager", f"unsure {n}", "nlu_fallback", 0.2)
    first = await low_confidence_queue(store.database, THRESHOLD, page_size=2)
    second = await low_confidence_queue(
        store.database, THRESHOLD, before=first.next_before, page_size=2
    )
    third = await low_confidence_queue(
        store.database, THRESHOLD, before=second.next_before, page_size=2
    )
    assert [[i.text for i in p.items] for p in (first, second, third)] == [
        ["unsure 4", "unsure 3"],
        ["unsure 2", "unsure 1"],
        ["unsure 0"],
    ]
    assert third.next_before is None


def heldout_text() -> str:
    return load_labelled(HELDOUT)[0].text


async def annotate_examples(store: Store) -> None:
    """One annotation for every reason the export has to write or skip a text."""
    examples = [
        ("pseud-1", "they really protect the sunnis", "claim_protects_muslims"),  # written
        ("pseud-1", "Hello   THERE", "greet"),  # in the training data already
        ("pseud-2", heldout_text(), "greet"),  # in the held-out set
        ("pseud-2", "text me on +49 170 1234567", "request_human"),  # a phone number
        ("pseud-3", "write to @brother_abu", "request_human"),  # a handle
        ("pseud-3", "idk", "greet"),  # conflicting: greet here,
        ("pseud-4", "idk", "thanks"),  # thanks there
        ("pseud-4", "They really protect the Sunnis", "claim_protects_muslims"),  # a repeat
        ("pseud-5", "i went in [2014](year) {x}", "interest_joining"),  # entity markup removed
    ]
    for pseudonym, text, intent in examples:
        said = await say(store, pseudonym, text, "nlu_fallback", 0.3)
        await annotate(store.database, said, intent, by="annotator-7f3")
    test_said = await say(store, "tester", "a test message", "nlu_fallback", 0.3, is_test=True)
    await annotate(store.database, test_said, "greet", by="mod")


def training_dir(tmp_path: Path) -> Path:
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    (nlu / "meta.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello there\n'
    )
    return nlu


async def test_export_writes_only_new_safe_unambiguous_texts(store: Store, tmp_path: Path) -> None:
    await annotate_examples(store)
    nlu = training_dir(tmp_path)
    out = nlu / "annotations.yml"
    out.write_text("left from an earlier export: replaced, and not counted as training data\n")

    report = write_annotations(await annotated_texts(store.database), out, nlu, (HELDOUT,))

    assert report.written == {"claim_protects_muslims": 1, "interest_joining": 1}
    assert (
        report.already_trained,
        report.in_evaluation_sets,
        report.identifying,
        report.conflicting,
        report.duplicates,
    ) == (1, 1, 2, 1, 2)
    assert yaml.safe_load(out.read_text()) == {
        "version": "3.1",
        "nlu": [
            {"intent": "claim_protects_muslims", "examples": "- they really protect the sunnis\n"},
            {"intent": "interest_joining", "examples": "- i went in 2014 (year) x\n"},
        ],
    }
    assert "pseud-" not in out.read_text()
    assert "annotator-7f3" not in out.read_text()

    # Exporting again gives the same file: the earlier export is not its own training data.
    before = out.read_text()
    write_annotations(await annotated_texts(store.database), out, nlu, (HELDOUT,))
    assert out.read_text() == before


async def test_export_with_nothing_annotated_is_valid_rasa_data(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "annotations.yml"
    report = write_annotations(await annotated_texts(store.database), out, tmp_path, ())
    assert report.total_written == 0
    assert yaml.safe_load(out.read_text()) == {"version": "3.1", "nlu": []}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_export_annotations_command_says_what_it_skipped(
    backend: str, tmp_path: Path
) -> None:
    async with database_url_for(backend, tmp_path) as url:
        database = Database(url)
        await database.start()
        try:
            store = Store(database)
            said = await say(store, "cli", "the caliphate is a duty for us", "nlu_fallback", 0.3)
            await annotate(database, said, "claim_religious_duty", by="mod")
            said = await say(store, "cli", heldout_text(), "nlu_fallback", 0.3)
            await annotate(database, said, "greet", by="mod")
        finally:
            await database.close()
        out = tmp_path / "out" / "annotations.yml"
        env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
        code, stdout, stderr = await run_bot_command(
            ["nlu", "export-annotations", "--out", str(out)], env
        )
    assert code == 0, stderr
    assert "wrote 1 examples (1 intents)" in stdout
    assert "1 in the held-out or development set" in stdout
    assert "claim_religious_duty 1" in stdout
    assert "- the caliphate is a duty for us" in out.read_text()


def scores(macro_f1: float, risk: float, crisis: float, alarms: float) -> Scores:
    return Scores(
        examples=299,
        accuracy=0.9,
        macro_f1=macro_f1,
        risk_recall=risk,
        crisis_recall=crisis,
        benign_false_alarm_rate=alarms,
        hard_accuracy=0.8,
    )


async def test_scores_per_model_show_what_a_retrain_made_worse(store: Store) -> None:
    heldout = "tests/data/nlu_heldout.yml"
    await record_scores(store.database, "nlu-aaa.tar.gz", heldout, scores(0.90, 0.90, 0.95, 0.02))
    await record_scores(store.database, "nlu-bbb.tar.gz", heldout, scores(0.93, 0.85, 0.95, 0.01))
    await record_scores(
        store.database, "nlu-bbb.tar.gz", "tests/dev/nlu_dev.yml", scores(1, 1, 1, 0)
    )
    # The same model scored again: its latest scores count, its place stays.
    await record_scores(store.database, "nlu-aaa.tar.gz", heldout, scores(0.91, 0.90, 0.95, 0.03))

    found = await scores_by_model(store.database, heldout)
    assert [(s.model, s.macro_f1) for s in found] == [
        ("nlu-aaa.tar.gz", 0.91),
        ("nlu-bbb.tar.gz", 0.93),
    ]
    assert found[0].changes == {} and found[0].worse == ()
    newer = found[1]
    assert newer.worse == ("risk_recall",)
    assert newer.changes["macro_f1"] == pytest.approx(0.02)
    assert newer.changes["false_alarm_rate"] == pytest.approx(-0.02)
    assert len(await scores_by_model(store.database)) == 3


def test_a_set_that_gains_examples_is_recorded_as_another_set(tmp_path: Path) -> None:
    """A retrain scored on a grown held-out set must not be compared with the old set's scores."""
    labelled = tmp_path / "heldout.yml"
    labelled.write_text("examples:\n  - {text: hello there, intent: greet}\n")
    before = dataset_label(labelled)
    labelled.write_text(
        "# a comment changes nothing\nexamples:\n  - {text: hello there, intent: greet}\n"
    )
    assert dataset_label(labelled) == before
    assert before.startswith("heldout.yml @")
    labelled.write_text(
        "examples:\n  - {text: hello there, intent: greet}\n  - {text: bye, intent: goodbye}\n"
    )
    assert dataset_label(labelled) != before


@pytest.mark.nlu
async def test_evaluate_record_stores_the_served_models_scores(
    tmp_path: Path, nlu_server: LocalNLUServer, nlu_model: Path
) -> None:
    labelled = tmp_path / "small.yml"
    labelled.write_text(
        "examples:\n"
        "  - {text: hello there, intent: greet}\n"
        "  - {text: i want to kill myself, intent: crisis_self_harm}\n"
        "  - {text: how do i get to the dawla and join them, intent: interest_joining}\n"
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'scores.db'}"
    env = command_env(tmp_path, nlu_server, DATABASE_URL=url)
    code, stdout, stderr = await run_bot_command(
        ["nlu", "evaluate", str(labelled), "--record"], env
    )
    assert code == 0, stderr
    assert f"recorded the scores of {nlu_model.name} on small.yml @" in stdout

    database = Database(url)
    await database.start()
    try:
        [recorded] = await scores_by_model(database)
    finally:
        await database.close()
    assert (recorded.model, recorded.examples) == (nlu_model.name, 3)
    assert recorded.dataset == dataset_label(labelled)
    assert recorded.crisis_recall == 1.0
