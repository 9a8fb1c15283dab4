"""`python -m bench`: the NLU server alone, then the bot under load, then the report.

    python -m bench              # the full run (about 10 minutes; README table updated)
    python -m bench --quick      # a short run to check that everything works (about 2 minutes)
    python -m bench --nlu-only   # `make bench-nlu`: the NLU server alone

The NLU servers are real Rasa servers started here (the model `NLU_MODEL`, else the newest
in models/); the bot is `python -m bot run` in its own process, given them by `NLU_URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench import nlu_load, report
from bench.bot_load import Scenario, run_scenario
from bench.corpus import load_corpus
from bench.stats import progress_done
from bot.cpus import available_cores, device_interrupts, pin_process, plan_cores
from bot.nlu.server import LocalNLUServer, latest_model
from bot.settings import PROJECT_ROOT

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL",
    os.environ.get("TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
)
IDLE_LOAD = 0.5  # a load average above this at the start marks the figures as polluted
ECHO = "none"  # the backend of the echo bot's run (bench.echo_bot): no database, no NLU


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def database(backend: str, directory: Path) -> AsyncIterator[str]:
    """A fresh, empty database for one run: a new SQLite file or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        return
    if backend == ECHO:
        yield ""
        return
    admin_url = make_url(ADMIN_URL)
    name = f"defector_voices_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


def share_cores(
    servers: list[LocalNLUServer],
    used: int,
    pinning: str,
    everything: frozenset[int],
    interrupts: Mapping[int, int],
) -> dict[str, Any] | None:
    """Pin as `make run` would with `used` local servers (`bot.cpus`), else unpin everything.

    The load generator and the emulator (this process) share the bot's cores, which the bot
    inherits when it is started: they stand for Telegram, which does not run on the host, so
    they are kept off the NLU servers' cores and charged to the bot's.
    """
    pinned = pinning == "auto" and used
    cores = plan_cores(everything, used, interrupts) if pinned else None
    pin_process(os.getpid(), cores.bot if cores else everything)
    for index, server in enumerate(servers):
        if server.pid is not None:
            pin_process(server.pid, cores.nlu[index] if cores and index < used else everything)
    if cores is None:
        return None
    return {"bot": sorted(cores.bot), "nlu": [sorted(c) for c in cores.nlu]}


def plan(args: argparse.Namespace, servers: int) -> list[dict[str, Any]]:
    """The bot runs to make: backend, durability, NLU servers, cache, load."""

    def run(backend: str, durability: str, mode: str, nlu: int = 1, cache: int = 0) -> Any:
        return {
            "backend": backend,
            "durability": durability,
            "servers": nlu,
            "cache": cache,
            "mode": mode,
        }

    if args.quick:
        return [run("sqlite", "full", "rate"), run("sqlite", "fast", "max")]
    # python-telegram-bot alone, the floor under the bot's own cost per message.
    runs: list[dict[str, Any]] = [run(ECHO, "-", "max", nlu=0)]
    for backend in args.backends:
        runs += [run(backend, "full", "rate"), run(backend, "full", "max")]
    for backend in args.backends:
        runs.append(run(backend, "fast", "rate"))
    runs.append(run("sqlite", "fast", "max"))
    if servers > 1:
        # Past one NLU server, with the database out of the way ("fast").
        runs.append(run("sqlite", "fast", "max", nlu=servers))
        runs.append(run("sqlite", "fast", "rate", nlu=servers))
        runs.append(run("sqlite", "fast", "max", nlu=servers, cache=1000))
    return runs


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """`measure` in a scratch directory, removed afterwards unless the run failed (a server
    that would not start points to its log there)."""
    workdir = Path(tempfile.mkdtemp(prefix="defector-voices-bench-"))
    try:
        results = await measure(args, workdir)
    except asyncio.CancelledError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    return results


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    model = Path(os.environ.get("NLU_MODEL") or latest_model(PROJECT_ROOT / "models"))
    token = secrets.token_hex(16)
    count = 1 if args.quick and not args.workers_given else args.workers
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else ("nlu-only" if args.nlu_only else "full"),
        "machine": report.machine(),
        "model": model.name,
        "nlu": [],
        "bot": [],
        "cpu_pinning": args.cpu_pinning,
    }
    results["polluted"] = results["machine"]["load_average_at_start"][0] > IDLE_LOAD
    if results["polluted"]:
        print(
            f"warning: load average {results['machine']['load_average_at_start'][0]} at the "
            "start; the figures will be polluted by other work (run on an idle machine)",
            file=sys.stderr,
        )
    texts = load_corpus()
    everything = available_cores()
    # Read once: the placement of every run follows the same table (bench's own disk writes
    # would otherwise move the counts between runs).
    interrupts = device_interrupts()
    # The first server starts on its own CPU, as `make run` starts one (TensorFlow sizes its
    # thread pools by the CPUs it may use when it starts); the pool's runs unpin it later.
    first = plan_cores(everything, 1, interrupts) if args.cpu_pinning == "auto" else None
    if first is not None:
        pin_process(os.getpid(), first.bot)
    servers = [
        LocalNLUServer(
            python=PROJECT_ROOT / ".venv-nlu" / "bin" / "python",
            model=model,
            port=free_port(),
            token=token,
            log_path=workdir / f"nlu-server-{index + 1}.log",
            startup_timeout=300,
            cores=first.nlu[0] if first is not None and index == 0 else None,
        )
        for index in range(count)
    ]
    progress_done(f"starting {count} NLU server(s) with {model.name} ...")
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
        await asyncio.gather(*(server.start() for server in servers))
        progress_done(f"NLU server(s) ready in {time.monotonic() - started:.0f} s")
        urls = [server.url for server in servers]
        pids = [server.pid or 0 for server in servers]
        seconds = 4.0 if args.quick else 10.0

        def pin(used: int) -> dict[str, Any] | None:
            return share_cores(servers, used, args.cpu_pinning, everything, interrupts)

        async def nlu_alone(clients: int, used: int = 1) -> dict[str, Any]:
            return await nlu_load.throughput(urls[:used], token, texts, clients, seconds)

        async def rasa_alone(pinned_first: bool) -> tuple[float, float | None]:
            """One server alone: on the whole machine and, when pinned, on its own CPU (in
            either order, so that neither is always the one measured next to the run)."""
            figures: dict[str, float] = {}
            for placement in ("pinned", "whole") if pinned_first else ("whole", "pinned"):
                if placement == "whole":
                    pin(0)
                elif pin(1) is None:
                    continue  # pinning is off: there is no own-CPU figure
                figures[placement] = (await nlu_alone(16))["per_second"]
            return figures["whole"], figures.get("pinned")

        progress_done("NLU server alone:")
        pinned = pin(1)
        results["nlu_sequential"] = await nlu_load.sequential(
            urls[:1], token, texts, 50 if args.quick else 200
        )
        for clients in (1, 4, 16):
            results["nlu"].append({"servers": 1, "cores": pinned, **await nlu_alone(clients)})
        if pinned is not None:
            # Rasa alone may use more than one core: the figure the throughput target is
            # judged by is the best it does, with the whole machine to itself.
            pin(0)
            results["nlu"].append({"servers": 1, "cores": None, **await nlu_alone(16)})
        if len(urls) > 1:
            cores = pin(len(urls))
            run = await nlu_alone(16, len(urls))
            results["nlu"].append({"servers": len(urls), "cores": cores, **run})
        if args.nlu_only:
            return results

        progress_done("the bot:")
        for index, item in enumerate(plan(args, len(urls))):
            name = (
                f"{item['backend']}-{item['durability']}/{item['servers']} nlu/"
                f"{'cache' if item['cache'] else 'no cache'}/{item['mode']}"
                if item["backend"] != ECHO
                else "python-telegram-bot echo bot/max"
            )
            rundir = workdir / f"run-{index + 1}"
            rundir.mkdir()
            async with database(item["backend"], rundir) as url:
                scenario = Scenario(
                    name=name,
                    backend=item["backend"],
                    durability=item["durability"],
                    database_url=url,
                    nlu_urls=urls[: item["servers"]],
                    nlu_token=token,
                    nlu_pids=pids[: item["servers"]],
                    cache_size=item["cache"],
                    mode=item["mode"],
                    seconds=args.seconds,
                    users=args.users,
                    rate=args.rate,
                    # The offered-rate runs keep Telegram's cap, as in production; the
                    # as-fast-as-possible runs lift it, or they would measure the cap.
                    telegram_cap=30.0 if item["mode"] == "rate" else 0.0,
                    program="bench.echo_bot" if item["backend"] == ECHO else "bench.harness",
                )
                keys = {
                    "mode": item["mode"],
                    "nlu_servers": item["servers"],
                    "cache_size": item["cache"],
                }
                target_run = keys == report.THROUGHPUT_TARGET_RUN
                if target_run:
                    # The host's speed drifts over minutes (Rasa alone moved between 84 and
                    # 110/s within a quarter of an hour on one machine), so the run that the
                    # throughput target judges is bracketed by Rasa alone, just before and after.
                    before = await rasa_alone(pinned_first=False)
                cores = pin(item["servers"])
                result = await run_scenario(scenario, texts, rundir)
                result["cores"] = cores
                if target_run:
                    after = await rasa_alone(pinned_first=True)
                    result["nlu_alone_per_second"] = [before[0], after[0]]
                    if before[1] is not None and after[1] is not None:
                        result["nlu_alone_pinned_per_second"] = [before[1], after[1]]
                results["bot"].append(result)
    return results


async def stoppable(args: argparse.Namespace) -> dict[str, Any] | None:
    """`bench`, or None when SIGTERM stopped it.

    The NLU servers run in process groups of their own (so that a Ctrl-C in the terminal
    reaches the benchmark, which stops them in order): a SIGTERM left to its default would
    end this process and leave them running. Here it cancels the run instead, and every
    server, bot and database it started is stopped or dropped on the way out, as on Ctrl-C.
    """
    task = asyncio.current_task()
    assert task is not None
    terminated = asyncio.Event()

    def terminate() -> None:
        if terminated.is_set():
            return  # already stopping: a second cancel would cut the clean-up short
        terminated.set()
        task.cancel()

    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
    try:
        results = await bench(args)
    except asyncio.CancelledError:
        if terminated.is_set():
            return None
        raise  # Ctrl-C: asyncio.run turns it into KeyboardInterrupt
    # A cancel swallowed on the way (a monitor that stops on cancel) must not pass a run cut
    # short for a finished one.
    return None if terminated.is_set() else results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, SQLite, one NLU server")
    parser.add_argument("--nlu-only", action="store_true", help="the NLU server alone")
    parser.add_argument("--users", type=int, default=200, help="simulated users (200)")
    parser.add_argument("--rate", type=float, default=30.0, help="offered messages/s (30)")
    parser.add_argument("--seconds", type=float, default=None, help="length of each bot run")
    parser.add_argument("--workers", type=int, default=None, help="NLU servers for the pool (2)")
    parser.add_argument(
        "--backends", default=None, help="sqlite,postgresql (quick: sqlite)", type=str
    )
    parser.add_argument(
        "--cpu-pinning",
        choices=("auto", "off"),
        default=os.environ.get("CPU_PINNING", "auto").lower(),
        help="share the CPUs as `make run` does (default: CPU_PINNING, else auto) or not at all",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    args = parser.parse_args(argv)
    args.workers_given = args.workers is not None
    if args.cpu_pinning not in ("auto", "off"):
        parser.error("CPU_PINNING must be auto or off")
    args.workers = args.workers or 2
    args.seconds = args.seconds or (8.0 if args.quick else 30.0)
    backends = args.backends or ("sqlite" if args.quick else "sqlite,postgresql")
    args.backends = [b.strip() for b in backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("--backends takes sqlite and/or postgresql")
    results = asyncio.run(stoppable(args))
    if results is None:
        print(
            "benchmark stopped by SIGTERM: its servers are stopped, nothing written",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    # A quick or partial run never replaces the README's table of a full run.
    path = report.write(results, readme=results["mode"] == "full" and not args.no_readme)
    sys.stdout.write(path.read_text())
    print(f"\nresults: {path} (and .json, latency .png next to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
