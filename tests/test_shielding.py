"""`finish_even_if_cancelled`: work others depend on runs to its end through a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from bot.shielding import finish_even_if_cancelled


async def test_cancelled_work_still_runs_to_its_end_and_the_cancellation_is_raised_after() -> None:
    steps: list[str] = []
    release = asyncio.Event()

    async def store_then_post() -> str:
        steps.append("stored")
        await release.wait()
        steps.append("posted")
        return "alert"

    caller = asyncio.create_task(finish_even_if_cancelled(store_then_post()))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.sleep(0.01)
    assert not caller.done(), "the caller waits for the work, cancelled or not"
    caller.cancel()  # a second cancellation (a shutdown in a hurry) changes nothing
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert steps == ["stored", "posted"]


async def test_uncancelled_work_returns_its_result_and_raises_its_errors() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise ValueError("broken")

    assert await finish_even_if_cancelled(answer()) == 42
    with pytest.raises(ValueError, match="broken"):
        await finish_even_if_cancelled(fail())
