"""The review pages over HTTP (inbox, transcript and its actions, unsure messages, NLU
models, statistics): what each role sees, what each action changes and audits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.dashboard.audit import AuditFilter, audit_records
from bot.nlu.evaluation import Scores
from bot.review.annotations import annotated_texts, write_annotations
from bot.review.evaluations import record_scores
from bot.review.transcript import transcript, user_id_of
from tests.dashboard.conftest import DashboardUnderTest
from tests.review_data import say

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="alert(1)"> \u202eevil'


async def actions(dashboard: DashboardUnderTest, name: str) -> list[tuple[str, str | None]]:
    records = await audit_records(dashboard.parts.database, AuditFilter(actor=name))
    return [(r.action, r.target) for r in records if not r.action.startswith("login")]


async def post(client: TestClient[Any, Any], path: str, token: str, **form: str) -> Any:
    return await client.post(path, data={"csrf_token": token, **form}, allow_redirects=False)


async def test_a_moderator_reviews_a_flagged_conversation(dashboard: DashboardUnderTest) -> None:
    store = dashboard.parts.store
    said = await say(
        store,
        "crisis-user",
        "i want to die " + HOSTILE,
        "crisis_self_harm",
        0.64,
        reply_content=("icsr-not-protecting-but-killing",),
    )
    await say(store, "quiet-user", "hello", "greet")
    client = await dashboard.client("moderator")
    name = client.account.name  # type: ignore[attr-defined]

    inbox = await (await client.get("/conversations")).text()
    rows = re.findall(r'href="/conversations/([^"]+)"', inbox)
    assert rows == ["crisis-user", "quiet-user"]
    assert "<script>window" not in inbox and "&lt;script&gt;" in inbox

    page = await (await client.get("/conversations/crisis-user")).text()
    assert "crisis_self_harm</strong> (0.64)" in page
    assert 'href="/content/testimony/icsr-not-protecting-but-killing"' in page
    assert "<script>window" not in page and "[U+202E]" in page
    token = await dashboard.csrf(client, "/conversations/crisis-user")

    for path, form in [
        ("/conversations/crisis-user/reviewed", {}),
        ("/conversations/crisis-user/flag", {"flagged": "1"}),
        ("/conversations/crisis-user/notes", {"text": "called the helpline with them"}),
        (f"/messages/{said}/intent", {"intent": "crisis_violence"}),
    ]:
        response = await post(client, path, token, **form)
        assert response.status == 303, (path, await response.text())
        assert response.headers["Location"].startswith("/conversations/crisis-user?saved=")

    database = dashboard.parts.database
    seen = await transcript(database, await user_id_of(database, "crisis-user"))
    assert (seen.reviewed, seen.flagged, [n.text for n in seen.notes]) == (
        True,
        True,
        ["called the helpline with them"],
    )
    assert seen.messages[0].corrected_intent == "crisis_violence"
    assert await actions(dashboard, name) == [
        ("inbox.view", None),
        ("transcript.view", "crisis-user"),
        ("transcript.view", "crisis-user"),
        ("conversation.review", "crisis-user"),
        ("conversation.flag", "crisis-user"),
        ("note.add", "crisis-user"),
        ("annotation.set", "crisis-user"),
    ]
    [entry] = await audit_records(database, AuditFilter(action="annotation.set"))
    assert entry.detail == {
        "message": said,
        "intent": "crisis_violence",
        "model_intent": "crisis_self_harm",
        "confirmed": False,
    }
    notes = await audit_records(database, AuditFilter(action="note.add"))
    assert "helpline" not in str(notes[0].detail)

    reviewed = await (await client.get("/conversations?status=reviewed")).text()
    assert re.findall(r'href="/conversations/([^"]+)"', reviewed) == ["crisis-user"]


async def test_bad_input_gets_a_clear_refusal(dashboard: DashboardUnderTest) -> None:
    said = await say(dashboard.parts.store, "someone", "hi", "greet")
    client = await dashboard.client("admin")
    token = await dashboard.csrf(client)
    for path in (
        "/conversations?after=not-a-cursor",
        "/conversations?level=extreme",
        "/conversations?since=yesterday",
        "/conversations?intent=make_coffee",
        "/statistics?days=0",
        "/annotations?before=x",
    ):
        assert (await client.get(path)).status == 400, path
    assert (await client.get("/conversations/nobody")).status == 404
    assert (await post(client, "/messages/999999/intent", token, intent="greet")).status == 404
    refused = await post(client, f"/messages/{said}/intent", token, intent="nlu_fallback")
    assert refused.status == 400
    empty = await post(client, "/conversations/someone/notes", token, text="   ")
    assert empty.status == 400


async def test_content_editors_see_aggregates_never_transcripts(
    dashboard: DashboardUnderTest,
) -> None:
    await say(dashboard.parts.store, "private", "something personal", "sympathy_general")
    client = await dashboard.client("content_editor")
    for path in ("/conversations", "/conversations/private", "/annotations"):
        assert (await client.get(path, allow_redirects=False)).status == 403, path
    token = await dashboard.csrf(client)
    refused = await post(client, "/conversations/private/notes", token, text="x")
    assert refused.status == 403
    statistics = await client.get("/statistics")
    assert statistics.status == 200
    html = await statistics.text()
    assert "something personal" not in html and "private" not in html
    assert "<svg" in html and (await client.get("/nlu/models")).status == 200


async def test_the_queue_feeds_the_export(dashboard: DashboardUnderTest, tmp_path: Path) -> None:
    store = dashboard.parts.store
    said = await say(store, "unsure", "the state looks after its own people", "nlu_fallback", 0.4)
    await say(store, "sure", "hello there friend", "greet", 0.99)
    client = await dashboard.client("moderator")
    page = await (await client.get("/annotations")).text()
    assert "the state looks after its own people" in page
    assert "hello there friend" not in page
    token = await dashboard.csrf(client, "/annotations")
    response = await post(
        client,
        f"/messages/{said}/intent",
        token,
        intent="claim_protects_muslims",
        next="/annotations?saved=1",
    )
    assert (response.status, response.headers["Location"]) == (303, "/annotations?saved=1")
    after = await (await client.get("/annotations")).text()
    assert "the state looks after its own people" not in after

    out = tmp_path / "annotations.yml"
    write_annotations(await annotated_texts(dashboard.parts.database), out, tmp_path, ())
    assert "- intent: claim_protects_muslims" in out.read_text()
    assert "- the state looks after its own people" in out.read_text()


async def test_statistics_export_csv_and_model_scores(dashboard: DashboardUnderTest) -> None:
    store = dashboard.parts.store
    await say(store, "a", "they protect us", "claim_protects_muslims", reply_content=("t-1",))
    await say(store, "b", "test only", "claim_good_life", is_test=True, reply_content=("t-9",))
    database = dashboard.parts.database
    good = Scores(299, 0.93, 0.93, 0.92, 0.95, 0.01, 0.8)
    worse = Scores(299, 0.93, 0.92, 0.92, 0.90, 0.01, 0.8)
    await record_scores(database, "nlu-old.tar.gz", "tests/data/nlu_heldout.yml", good)
    await record_scores(database, "nlu-new.tar.gz", "tests/data/nlu_heldout.yml", worse)
    client = await dashboard.client("moderator")

    content = await client.get("/statistics/content.csv?days=7")
    assert content.status == 200
    assert content.headers["Content-Type"].startswith("text/csv")
    assert (await content.text()).splitlines() == [
        "content_id,sent,another_story,help,human,wrote_again,left",
        "t-1,1,0,0,0,0,1",
    ]
    assert (await client.get("/statistics/secrets.csv")).status == 404
    [export] = await audit_records(database, AuditFilter(action="statistics.export"))
    assert export.detail["table"] == "content"

    models = await (await client.get("/nlu/models")).text()
    assert '<tr class="worse">' in models
    assert re.search(r'class="got-worse">0\.900\s*<span class="change down">-0\.050', models)
