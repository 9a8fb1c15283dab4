"""The NLU client under failure: circuit breaker, pool, cache, supervisor, late classification.

The breaker and the cache are checked on their own with a fake clock; everything else runs
against the real Rasa server: a pool that holds a dead address, and a server of its own that
the tests stop (SIGSTOP) and kill (SIGKILL) while the real bot is answering users.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cpus import available_cores
from bot.nlu.breaker import BreakerState, CircuitBreaker
from bot.nlu.cache import ParseCache, cache_key
from bot.nlu.client import NLUClient
from bot.nlu.reclassify import reclassify_loop
from bot.nlu.server import LocalNLUServer
from bot.nlu.supervisor import NLUSupervisor
from bot.nlu.understanding import Understanding
from bot.settings import PROJECT_ROOT, Settings, SettingsError
from tests.conftest import BACKENDS, RunningBot, free_port, running_bot, thread_cores

# --------------------------------------------------------------------------- circuit breaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=10, clock=FakeClock())
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_success()  # a success in between starts the count again
    for _ in range(3):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert [breaker.allow() for _ in range(5)] == [False] * 5
    assert breaker.times_opened == 1


def test_after_the_cool_down_one_probe_goes_through_and_its_answer_decides() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=10, clock=clock)
    breaker.allow()
    breaker.record_failure()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert [breaker.allow() for _ in range(3)] == [True, False, False]
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure()  # the probe failed: open for another cool-down
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert [breaker.allow() for _ in range(3)] == [True, True, True]
    assert breaker.times_opened == 2


def test_a_cancelled_probe_lets_the_next_call_probe_at_once() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.release()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow()


# --------------------------------------------------------------------------- cache


def test_the_cache_keeps_the_most_recently_used_texts_and_counts_hits() -> None:
    cache = ParseCache(2)
    cache.put("hello", {"intent": {"name": "greet"}})
    cache.put("thanks", {"intent": {"name": "thanks"}})
    assert cache.get("  hello ") == {"intent": {"name": "greet"}}  # whitespace does not count
    cache.put("bye", {"intent": {"name": "goodbye"}})  # evicts "thanks", used least recently
    assert cache.get("thanks") is None
    assert cache.get("bye") is not None
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 2)


def test_the_cache_key_keeps_case_and_joins_whitespace() -> None:
    assert cache_key("  I  want\tto\njoin ") == "I want to join"
    assert cache_key("Café") == cache_key("Cafe\u0301")  # NFC
    assert cache_key("HELLO") != cache_key("hello")


def test_a_cache_of_size_zero_stores_nothing() -> None:
    cache = ParseCache(0)
    cache.put("hello", {"intent": {"name": "greet"}})
    assert cache.get("hello") is None
    assert (len(cache), cache.hits, cache.misses) == (0, 0, 0)


# --------------------------------------------------------------------------- settings


def test_nlu_url_takes_a_list_of_servers() -> None:
    settings = Settings.from_env({"NLU_URL": "http://a:5005/, http://b:5006"})
    assert settings.nlu_urls == ("http://a:5005", "http://b:5006")
    assert Settings.from_env({}).nlu_urls == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NLU_URL", "http://a:5005,http://a:5005"),
        ("NLU_URL", "http://a:5005,ftp://b"),
        ("NLU_URL", " , "),
        ("NLU_WORKERS", "0"),
        ("NLU_WORKERS", "17"),
        ("NLU_CACHE_SIZE", "-1"),
        ("NLU_BREAKER_FAILURES", "0"),
        ("NLU_HEALTH_INTERVAL_SECONDS", "-2"),
        ("TELEGRAM_MAX_MESSAGES_PER_SECOND", "fast"),
    ],
)
def test_bad_nlu_pool_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_local_workers_listen_on_consecutive_ports() -> None:
    settings = Settings.from_env({"NLU_WORKERS": "3", "NLU_PORT": "6000"})
    assert settings.local_nlu_ports == (6000, 6001, 6002)


# --------------------------------------------------------------------------- pool, real server


async def test_a_dead_pool_member_is_skipped_once_its_circuit_opens(
    nlu_server: LocalNLUServer,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with NLUClient(
        [dead, nlu_server.url],
        nlu_server.token,
        timeout_seconds=10,
        failure_threshold=2,
        cooldown_seconds=600,
        health_interval_seconds=0,
    ) as client:
        results = [await client.understand("the dawla protects the sunnis") for _ in range(10)]
        dead_member, live_member = client.pool.endpoints
    assert {r.source for r in results} == {"nlu"}
    assert {r.intent for r in results} == {"claim_protects_muslims"}
    assert (dead_member.requests, dead_member.failures) == (2, 2)
    assert dead_member.breaker.state is BreakerState.OPEN
    assert (live_member.requests, live_member.failures) == (10, 0)


async def test_the_pool_spreads_calls_round_robin(nlu_server: LocalNLUServer) -> None:
    # One real server under two names is two members to the client.
    second_name = nlu_server.url.replace("127.0.0.1", "localhost")
    async with NLUClient(
        f"{nlu_server.url},{second_name}", nlu_server.token, health_interval_seconds=0
    ) as client:
        for _ in range(6):
            assert (await client.understand("thank you")).intent == "thanks"
        assert [m.requests for m in client.pool.endpoints] == [3, 3]


async def test_the_health_check_opens_the_circuit_of_a_dead_member(
    nlu_server: LocalNLUServer,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with NLUClient(
        [nlu_server.url, dead], nlu_server.token, failure_threshold=1, health_interval_seconds=0
    ) as client:
        await client.check_health()
        states = [m.breaker.state for m in client.pool.endpoints]
        assert states == [BreakerState.CLOSED, BreakerState.OPEN]
        assert client.available
        assert [m.requests for m in client.pool.endpoints] == [0, 0]  # /status, not parses


async def test_repeated_texts_are_answered_from_the_cache(nlu_server: LocalNLUServer) -> None:
    async with NLUClient(
        nlu_server.url, nlu_server.token, cache_size=10, health_interval_seconds=0
    ) as client:
        first = await client.understand("Are you a bot?")
        again = await client.understand("  Are you   a bot? ")
        other = await client.understand("are you a bot?")
        assert first.intent == again.intent == "ask_bot_identity"
        assert again.text == "  Are you   a bot? "
        assert other.intent == "ask_bot_identity"
        assert client.pool.endpoints[0].requests == 2
        assert (client.cache.hits, client.cache.misses) == (1, 2)


async def test_an_open_circuit_answers_at_once_with_the_safety_net_still_on() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with NLUClient(
        dead, timeout_seconds=2, failure_threshold=3, health_interval_seconds=0
    ) as client:
        for _ in range(3):
            assert (await client.understand("hello")).source == "unavailable"
        started = time.monotonic()
        refused = [await client.understand("hello") for _ in range(20)]
        crisis = await client.understand("i want to kill myself")
        elapsed = time.monotonic() - started
    assert client.pool.endpoints[0].requests == 3
    assert {r.source for r in refused} == {"unavailable"}
    assert (crisis.intent, crisis.source) == ("crisis_self_harm", "safety_net")
    assert client.stats.refused_by_breaker == 21
    assert elapsed < 0.5


# ----------------------------------------------------------- stopping and killing the real server

FAULT_TIMEOUT = 1.0
FAULT_MESSAGES = [
    "the dawla protects the sunnis",
    "life in the caliphate is good, they give you a house",
    "who are the people who left, can i trust them",
    "i want to go to sham and join the brothers",
    "thank you for listening",
]
CRISIS_TEXT = "i want to kill myself"
VICTIM_CORES = frozenset({max(available_cores())})


@pytest.fixture(scope="module")
async def victim(
    nlu_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalNLUServer]:
    """A Rasa server of these tests alone, since they stop and kill it; on a core of its own,
    as `CPU_PINNING=auto` starts it, so a restart is seen to pin it again."""
    server = LocalNLUServer(
        python=PROJECT_ROOT / ".venv-nlu" / "bin" / "python",
        model=nlu_model,
        port=free_port(),
        log_path=tmp_path_factory.mktemp("victim") / "nlu-server.log",
        startup_timeout=180,
        cores=VICTIM_CORES,
    )
    async with server:
        yield server


def fault_settings() -> dict[str, object]:
    return {
        "nlu_timeout_seconds": FAULT_TIMEOUT,
        "nlu_breaker_failures": 3,
        "nlu_breaker_cooldown_seconds": 30.0,
        "nlu_health_interval_seconds": 0.5,
    }


# What a loaded 2-core machine may add to a reply besides the NLU wait (polling, database).
BOT_SLACK = 2.5


def time_nlu_calls(bot: RunningBot) -> list[float]:
    """Record how long each of the bot's NLU calls takes, in the list returned."""
    durations: list[float] = []
    understand = bot.nlu.understand

    async def timed(text: str) -> Understanding:
        started = time.monotonic()
        try:
            return await understand(text)
        finally:
            durations.append(time.monotonic() - started)

    bot.nlu.understand = timed  # type: ignore[method-assign]
    return durations


async def send_during_outage(bot: RunningBot, count: int) -> tuple[list[int], list[float]]:
    """`count` users send one message each (one of them a crisis) at 20 a second.

    Returns the users and each one's time from the update being available to the reply.
    """
    users = [bot.new_user() for _ in range(count)]
    pushed: dict[int, float] = {}
    for index, user in enumerate(users):
        text = CRISIS_TEXT if index == count // 2 else FAULT_MESSAGES[index % len(FAULT_MESSAGES)]
        pushed[user] = time.monotonic()
        bot.emulator.push_text(user, text)
        await asyncio.sleep(0.05)
    for user in users:
        await bot.emulator.wait_for_messages(user, 1, timeout=30)
    replied = {
        call.params["chat_id"]: call.time
        for call in bot.emulator.calls_to("sendMessage")
        if call.ok and call.params.get("chat_id") in pushed
    }
    return users, [replied[user] - pushed[user] for user in users]


async def assert_answered_safely_and_stored(bot: RunningBot, users: list[int]) -> None:
    crisis_user = users[len(users) // 2]
    for user in users:
        assert len(bot.emulator.sent_messages(user)) == 1
        stored = await bot.store.messages_for(bot.pseudonym(user))
        assert [m.direction for m in stored] == ["in", "out"]
        incoming, reply = stored
        if user == crisis_user:
            assert (incoming.intent_source, reply.kind) == ("safety_net", "safety_self_harm")
        else:
            assert (incoming.intent_source, incoming.intent) == ("unavailable", None)
            assert reply.kind == "nlu_unavailable"


async def assert_classified_when_back(bot: RunningBot, users: list[int]) -> None:
    deadline = time.monotonic() + 60
    while await bot.store.unclassified_messages():
        assert time.monotonic() < deadline, "stored messages were not classified again"
        await asyncio.sleep(0.2)
    crisis_user = users[len(users) // 2]
    sources = []
    for index, user in enumerate(users):
        incoming = (await bot.store.messages_for(bot.pseudonym(user)))[0]
        sources.append(incoming.intent_source)
        expected = CRISIS_TEXT if user == crisis_user else FAULT_MESSAGES[index % 5]
        assert incoming.text == expected
        assert incoming.intent is not None
    assert sources.count("deferred") == len(users) - 1
    assert sources.count("safety_net") == 1
    first = (await bot.store.messages_for(bot.pseudonym(users[0])))[0]
    assert (first.intent, first.flags) == ("claim_protects_muslims", ("risk",))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_hung_nlu_server_costs_users_at_most_the_timeout_and_nothing_is_lost(
    backend: str, victim: LocalNLUServer, tmp_path: Path
) -> None:
    async with running_bot(backend, tmp_path, victim, **fault_settings()) as bot:
        reclassify = asyncio.create_task(reclassify_loop(bot.store, bot.nlu, 0.3))
        nlu_calls = time_nlu_calls(bot)
        try:
            assert victim.pid is not None
            os.killpg(victim.pid, signal.SIGSTOP)
            try:
                users, latencies = await send_during_outage(bot, 30)
                parses = bot.nlu.pool.endpoints[0].requests
            finally:
                os.killpg(victim.pid, signal.SIGCONT)
            await assert_answered_safely_and_stored(bot, users)
            # No NLU call outlived the timeout, so every user had a reply within it plus the
            # bot's own work. Calls went to the stopped server only until the breaker opened
            # (about one timeout's worth of messages); every later one was answered at once.
            assert len(nlu_calls) == len(users)
            # (+0.5 s: the event loop's own lateness on a loaded 2-core machine)
            assert max(nlu_calls) < FAULT_TIMEOUT + 0.5, nlu_calls
            assert max(latencies) < FAULT_TIMEOUT + BOT_SLACK, latencies
            refused = bot.nlu.stats.refused_by_breaker
            assert parses + refused == len(users)
            assert refused >= 5, parses
            # The refused calls took no time; every other one waited the full timeout.
            by_length = sorted(nlu_calls)
            assert by_length[refused - 1] < 0.05, by_length
            assert by_length[refused] > FAULT_TIMEOUT * 0.9, by_length
            await assert_classified_when_back(bot, users)
            after = bot.new_user()
            bot.emulator.push_text(after, FAULT_MESSAGES[0])
            await bot.emulator.wait_for_messages(after, 1, timeout=20)
            stored = await bot.store.messages_for(bot.pseudonym(after))
            assert stored[1].kind == "counter_message"
        finally:
            reclassify.cancel()


async def test_a_killed_local_nlu_server_is_restarted_and_nothing_is_lost(
    victim: LocalNLUServer, tmp_path: Path
) -> None:
    async with (
        running_bot("sqlite", tmp_path, victim, **fault_settings()) as bot,
        NLUSupervisor([victim], bot.nlu, check_seconds=0.2) as supervisor,
    ):
        reclassify = asyncio.create_task(reclassify_loop(bot.store, bot.nlu, 0.3))
        nlu_calls = time_nlu_calls(bot)
        try:
            killed_pid = victim.pid
            assert killed_pid is not None
            os.killpg(killed_pid, signal.SIGKILL)
            users, latencies = await send_during_outage(bot, 20)
            await assert_answered_safely_and_stored(bot, users)
            # A dead server refuses connections at once, and the supervisor opened the circuit.
            assert len(nlu_calls) == len(users)
            assert max(nlu_calls) < 0.5, nlu_calls
            assert max(latencies) < FAULT_TIMEOUT + BOT_SLACK, latencies
            deadline = time.monotonic() + 180
            while not (supervisor.restarts and bot.nlu.available):
                assert time.monotonic() < deadline, "the NLU server was not restarted"
                await asyncio.sleep(0.5)
            assert supervisor.restarts == 1
            assert victim.pid not in (None, killed_pid)
            assert set(thread_cores(victim.pid).values()) == {VICTIM_CORES}
            await assert_classified_when_back(bot, users)
        finally:
            reclassify.cancel()


async def test_a_hung_local_nlu_server_is_killed_and_restarted(victim: LocalNLUServer) -> None:
    async with (
        NLUClient(
            victim.url,
            victim.token,
            timeout_seconds=FAULT_TIMEOUT,
            failure_threshold=1,
            health_interval_seconds=0.3,
        ) as client,
        NLUSupervisor([victim], client, check_seconds=0.2, hung_after_seconds=2) as supervisor,
    ):
        stopped_pid = victim.pid
        assert stopped_pid is not None
        os.killpg(stopped_pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 180
            while not (supervisor.restarts and client.available):
                assert time.monotonic() < deadline, "the hung NLU server was not restarted"
                await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stopped_pid, signal.SIGCONT)
        assert supervisor.restarts == 1
        assert victim.pid not in (None, stopped_pid)
        with pytest.raises(ProcessLookupError):
            os.kill(stopped_pid, 0)
        assert (await client.understand("thank you")).intent == "thanks"
