"""The command line as a user runs it: `python -m bot ...` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.nlu.server import LocalNLUServer
from bot.settings import PROJECT_ROOT
from tests.conftest import TEST_TOKEN, free_port
from tests.emulator import BotAPIEmulator


def command_env(tmp_path: Path, nlu_server: LocalNLUServer, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "NLU_", "DASHBOARD_"))
    }
    env.update(
        {
            "DATA_DIR": str(tmp_path),
            "DASHBOARD_PORT": str(free_port()),
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


async def read_until(stream: asyncio.StreamReader, marker: str, timeout: float = 90) -> str:
    """What a process printed, up to and including the line containing `marker`."""
    seen = ""
    while marker not in seen:
        line = await asyncio.wait_for(stream.readline(), timeout)
        if not line:
            raise AssertionError(f"output ended before {marker!r}:\n{seen}")
        seen += line.decode()
    return seen


async def test_run_without_a_token_serves_the_dashboard_and_says_so(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    env = command_env(tmp_path, nlu_server)
    url = f"http://127.0.0.1:{env['DASHBOARD_PORT']}/"
    process = await start_bot_command(["run"], env)
    try:
        assert process.stdout is not None
        out = await read_until(process.stdout, "Ctrl-C stops everything")
        assert "TELEGRAM_BOT_TOKEN is not set" in out
        assert "@BotFather" in out
        assert f"Open {url} in a browser" in out
        assert "python -m bot chat" in out
        # The first admin, with a password shown once, that logs in.
        name = re.search(r"name:\s+(\S+)", out)
        password = re.search(r"password:\s+(\S+)", out)
        assert name and password and name.group(1) == "admin"
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[url])
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            page = await (await http.get(url + "login")).text()
            token = re.search(r'name="csrf-token" content="([^"]+)"', page)
            assert token
            response = await http.post(
                url + "login",
                data={"name": "admin", "password": password.group(1), "csrf_token": token[1]},
                allow_redirects=False,
            )
            assert response.status == 302
            assert response.headers["Location"] == "/account/password"
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert (tmp_path / "defector_voices.db").exists()
    # Printed once: a second start finds the admin and prints no password.
    second = await start_bot_command(["dashboard"], env)
    try:
        assert second.stdout is not None
        out = await read_until(second.stdout, "Dashboard: ")
        assert "password:" not in out
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 0


async def test_a_taken_dashboard_port_stops_with_a_clear_message(
    nlu_server: LocalNLUServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = command_env(tmp_path, nlu_server, DASHBOARD_PORT=str(port))
        code, _out, err = await run_bot_command(["dashboard"], env)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "DASHBOARD_PORT" in err


async def test_users_commands_add_list_disable_with_the_password_on_stdin(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    code, out, err = await run_bot_command(
        ["users", "add", "alice", "--role", "moderator"], env, stdin="a long enough secret\n"
    )
    assert (code, out.strip()) == (0, "created alice (moderator)"), err
    code, _out, err = await run_bot_command(
        ["users", "add", "alice", "--role", "admin"], env, stdin="another long secret\n"
    )
    assert code == 1
    assert "an account named 'alice' exists already" in err
    code, _out, err = await run_bot_command(
        ["users", "add", "bob", "--role", "content_editor"], env, stdin="short\n"
    )
    assert code == 1
    assert "at least 12 characters" in err
    code, out, _err = await run_bot_command(["users", "disable", "alice"], env)
    assert out.strip() == "disabled alice"
    code, out, _err = await run_bot_command(["users", "list"], env)
    assert code == 0
    assert re.search(r"^alice\s+moderator\s+disabled\s+never$", out, re.MULTILINE), out


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
