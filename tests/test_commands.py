"""The command line as a user runs it: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from bot.nlu.server import LocalNLUServer
from bot.settings import PROJECT_ROOT
from tests.conftest import TEST_TOKEN, free_port
from tests.emulator import BotAPIEmulator


def command_env(tmp_path: Path, nlu_server: LocalNLUServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NLU_"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path),
            "NLU_URL": nlu_server.url,
            "NLU_AUTH_TOKEN": nlu_server.token,
            "OPERATOR_NAME": "the command test team",
        }
    )
    env.update(extra)
    return env


async def start_bot_command(args: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m bot ARGS` from the project root, with pipes for all three streams."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_bot_command(
    args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 60
) -> tuple[int, str, str]:
    process = await start_bot_command(args, env)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.nlu
async def test_nlu_parse_prints_one_json_object_per_line(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    lines = "the dawla protects the sunnis\n\ni want to kill myself\nhello\n"
    code, out, err = await run_bot_command(
        ["nlu", "parse"], command_env(tmp_path, nlu_server), stdin=lines
    )
    assert code == 0, err
    parsed = [json.loads(line) for line in out.splitlines()]
    assert [p["text"] for p in parsed] == [
        "the dawla protects the sunnis",
        "i want to kill myself",
        "hello",
    ]
    assert parsed[0]["intent"] == "claim_protects_muslims"
    assert parsed[1]["intent"] == "crisis_self_harm"
    assert parsed[2]["intent"] == "greet"
    assert all(0.0 <= p["confidence"] <= 1.0 for p in parsed)


async def test_run_without_a_token_opens_the_terminal_chat(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    code, out, err = await run_bot_command(
        ["run"], command_env(tmp_path, nlu_server), stdin="/start\nhi there\n"
    )
    assert code == 0, err
    assert "TELEGRAM_BOT_TOKEN is not set" in out
    assert "@BotFather" in out
    assert "the command test team" in out  # the welcome, with the operator's name
    assert out.count("bot> ") == 2
    assert (tmp_path / "defector_voices.db").exists()


async def test_chat_shows_buttons_and_a_number_presses_one(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    code, out, err = await run_bot_command(
        ["chat"],
        command_env(tmp_path, nlu_server),
        stdin="/forget\n2\n",
    )
    assert code == 0, err
    assert "[1] " in out
    assert "[2] " in out
    assert "nothing was deleted" in out.lower()


async def test_run_with_a_token_serves_telegram_and_stops_on_sigterm(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    async with BotAPIEmulator() as emulator:
        env = command_env(
            tmp_path,
            nlu_server,
            TELEGRAM_BOT_TOKEN=TEST_TOKEN,
            TELEGRAM_API_BASE_URL=emulator.base_url,
        )
        process = await start_bot_command(["run"], env)
        try:
            await emulator.wait_for_call("getUpdates", timeout=60)
            emulator.push_text(4242, "/start")
            messages = await emulator.wait_for_messages(4242, 1, timeout=30)
            assert "the command test team" in messages[0]["text"]
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        assert TEST_TOKEN not in err.decode()  # the token never reaches the logs


async def test_a_bad_setting_stops_with_a_clear_message(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "RETENTION_DAYS": "soon"}
    code, _out, err = await run_bot_command(["run"], env)
    assert code == 2
    assert "RETENTION_DAYS" in err
    assert "Traceback" not in err


async def test_content_check_reports_a_broken_file_with_its_line(tmp_path: Path) -> None:
    content = tmp_path / "responses"
    content.mkdir()
    for source in (PROJECT_ROOT / "responses").glob("*.yml"):
        (content / source.name).write_text(source.read_text())
    facts = content / "facts.yml"
    facts.write_text(facts.read_text() + "\n  - id: [unclosed\n")
    env = {**os.environ, "CONTENT_DIR": str(content)}
    code, out, err = await run_bot_command(["content", "check"], env)
    assert code == 1
    assert "facts.yml:" in out + err


@pytest.mark.nlu
async def test_nlu_parse_starts_and_stops_its_own_server_without_nlu_url(
    nlu_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NLU_"))}
    env.update({"DATA_DIR": str(tmp_path), "NLU_MODEL": str(nlu_model), "NLU_PORT": str(port)})
    code, out, err = await run_bot_command(["nlu", "parse"], env, stdin="hello\n", timeout=240)
    assert code == 0, err
    assert json.loads(out)["intent"] == "greet"
    assert (tmp_path / "nlu-server.log").exists()
    with socket.socket() as sock:  # the server it started is gone with it
        assert sock.connect_ex(("127.0.0.1", port)) != 0
