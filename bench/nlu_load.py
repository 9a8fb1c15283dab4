"""The NLU server alone: the floor that the whole pipeline is compared with.

Sequential latency (one request at a time), then throughput with 1, 4 and 16 clients each
sending its next request as soon as the last one is answered, straight to Rasa's
`/model/parse` (no bot, no cache, no safety net). With several servers the clients spread
their requests round robin, as the bot's pool does.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.stats import progress, progress_done, summary_ms


async def _parse(session: aiohttp.ClientSession, url: str, token: str, text: str) -> None:
    async with session.post(
        f"{url}/model/parse", params={"token": token}, json={"text": text}
    ) as response:
        response.raise_for_status()
        await response.read()


async def sequential(
    urls: Sequence[str], token: str, texts: Sequence[str], count: int
) -> dict[str, Any]:
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        for index in range(count):
            url = urls[index % len(urls)]
            started = time.perf_counter()
            await _parse(session, url, token, texts[index % len(texts)])
            latencies.append(time.perf_counter() - started)
            if index % 20 == 0:
                progress(f"  nlu sequential {index + 1}/{count}")
    progress_done(f"  nlu sequential: {count} requests")
    return {"requests": count, "latency_ms": summary_ms(latencies)}


async def throughput(
    urls: Sequence[str], token: str, texts: Sequence[str], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` closed-loop clients for `seconds`; requests answered per second."""
    latencies: list[float] = []
    failures = 0
    counter = itertools.count()
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                index = next(counter)
                started = time.perf_counter()
                try:
                    await _parse(session, urls[index % len(urls)], token, texts[index % len(texts)])
                except (aiohttp.ClientError, TimeoutError):
                    failures += 1
                    continue
                latencies.append(time.perf_counter() - started)

        async def report() -> None:
            begun = time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                rate = len(latencies) / max(time.monotonic() - begun, 1e-6)
                progress(f"  nlu x{clients}: {len(latencies)} answered, {rate:.0f}/s")

        started = time.monotonic()
        reporter = asyncio.create_task(report())
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - started
        reporter.cancel()
    rate = len(latencies) / elapsed
    progress_done(f"  nlu x{clients}: {len(latencies)} answered in {elapsed:.1f} s, {rate:.1f}/s")
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "answered": len(latencies),
        "failures": failures,
        "per_second": round(rate, 1),
        "latency_ms": summary_ms(latencies),
    }
