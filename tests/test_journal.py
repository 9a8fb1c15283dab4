"""The update journal on its own: what a killed run leaves, and what the next run makes of it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from telegram import Update

from bot.telegram.journal import UpdateJournal


def update(update_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": 5, "type": "private", "first_name": "Name"},
                "from": {"id": 5, "is_bot": False, "first_name": "Name", "username": "handle"},
                "text": f"message {update_id}",
            },
        },
        None,
    )


async def test_a_killed_runs_sent_replies_are_not_sent_again_after_the_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "update-journal.jsonl"
    killed = UpdateJournal(path)
    assert killed.open() == []
    for update_id in (1, 2, 3):
        killed.received(update(update_id))
    killed.sent(1)
    killed.done(1)  # answered and recorded
    killed.sent(2)  # answered, killed before its records were committed
    await asyncio.sleep(0.05)  # the background fsync
    killed.close()  # update 3: killed before it was answered
    assert b"handle" not in path.read_bytes(), "no names in the journal"

    restarted = UpdateJournal(path)
    left = restarted.open()
    assert [u["update_id"] for u in left] == [2, 3]
    assert restarted.is_recovered(2) and restarted.was_sent(2), "record it, do not resend"
    assert restarted.is_recovered(3) and not restarted.was_sent(3), "answer it"
    assert not restarted.was_sent(1)
    restarted.done(2)
    restarted.done(3)
    assert path.stat().st_size == 0, "emptied when nothing waits"
    restarted.close()

    again = UpdateJournal(path)
    assert again.open() == []
    again.close()
