"""Starting and stopping the local Rasa NLU server (loopback only, with an auth token).

`make run`, `python -m bot nlu parse` and the tests use this when `NLU_URL` is not set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import aiohttp

from bot.cpus import pin_process

log = logging.getLogger(__name__)


class NLUServerError(RuntimeError):
    """The local NLU server could not be started; the message says what to do."""


def latest_model(model_dir: Path) -> Path:
    """The newest trained model in `model_dir`; `make train` puts it there."""
    models = sorted(model_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise NLUServerError(f"no trained model in {model_dir}/: run `make train` first")
    return models[-1]


class LocalNLUServer:
    """A `rasa run --enable-api` child process bound to loopback.

    The token is random per start unless one is given, so nothing else on the machine can
    query the model; the server's log goes to `log_path` so a failed start can be explained.
    """

    def __init__(
        self,
        *,
        python: Path,
        model: Path,
        host: str = "127.0.0.1",
        port: int = 5005,
        token: str | None = None,
        log_path: Path | None = None,
        startup_timeout: float = 120.0,
        cores: frozenset[int] | None = None,
    ) -> None:
        self.python = python
        self.model = model
        self.host = host
        self.port = port
        self.token = token or secrets.token_hex(24)
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.cores = cores
        """The cores the server is pinned to (`bot.cpus`); None: wherever the bot may run."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exited(self) -> bool:
        """The server was started and its process has ended without `stop()` (it died)."""
        return self._process is not None and self._process.poll() is not None

    def kill(self) -> None:
        """End a hung server at once (SIGKILL to its process group); `start()` may follow."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def command(self) -> list[str]:
        rasa = self.python.parent / "rasa"
        return [
            str(rasa),
            "run",
            "--enable-api",
            "-m",
            str(self.model),
            # `=` form: a token starting with "-" would otherwise read as an option.
            f"--auth-token={self.token}",
            "-i",
            self.host,
            "-p",
            str(self.port),
        ]

    async def start(self) -> None:
        if not (self.python.parent / "rasa").exists():
            raise NLUServerError(
                f"Rasa is not installed at {self.python.parent}: run `make install` first"
            )
        env = dict(os.environ)
        env.update(
            {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": ""}
        )
        log_file = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = self.log_path.open("ab")
        log.info("starting NLU server on %s with %s", self.url, self.model.name)
        try:
            process = self._process = subprocess.Popen(  # noqa: ASYNC220, S603 - fixed argv, returns at once
                self.command(),
                stdout=log_file if log_file is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            if log_file is not None:
                log_file.close()  # the child keeps its own copy of the descriptor
        if self.cores is not None:
            # Pinned before Rasa starts its threads, so they inherit the cores, and once more
            # when it is ready in case one was started first.
            pin_process(process.pid, self.cores)
        await self.wait_ready()
        if self.cores is not None:
            pin_process(process.pid, self.cores)

    async def wait_ready(self) -> None:
        """Poll `/status` (token required, 409 until the model is loaded) until ready."""
        deadline = time.monotonic() + self.startup_timeout
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise NLUServerError(
                        f"the NLU server exited with code {self._process.returncode}"
                        + (f"; see {self.log_path}" if self.log_path else "")
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        f"{self.url}/status", params={"token": self.token}
                    ) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.5)
        self.stop()
        raise NLUServerError(
            f"the NLU server did not become ready within {self.startup_timeout:.0f} s"
            + (f"; see {self.log_path}" if self.log_path else "")
        )

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        self._process = None

    async def __aenter__(self) -> LocalNLUServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
