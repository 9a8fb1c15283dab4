"""The Dockerfile and docker-compose.yml agree with the code: settings, ports, health checks.

Docker does not run on the development machines or in CI, so these files are checked as text:
every variable compose gives the app is a setting `Settings.from_env` reads, the ports line
up across the Dockerfile, compose and the settings, every health check asks a path that the
app serves, and the images are built with the make targets and lock files CI uses. The
Dockerfile style rules hadolint enforces (`make docker-lint`) that matter here are repeated
so that CI catches a regression without hadolint installed.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web

from bot.__main__ import build_parser
from bot.dashboard.app import view_modules
from bot.listener.app import build_listener_app
from bot.listener.health import Dependencies
from bot.settings import PROJECT_ROOT, Settings

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
COMPOSE_TEXT = (PROJECT_ROOT / "docker-compose.yml").read_text()
OPERATIONS = (PROJECT_ROOT / "docs" / "operations.md").read_text()
APP_SERVICES = ("bot", "dashboard")
REQUIRED_SECRETS = ("PSEUDONYM_SECRET", "CONTACT_SECRET", "NLU_AUTH_TOKEN", "TELEGRAM_BOT_TOKEN")
# Variables compose reads from the operator's environment that are not settings of the app.
COMPOSE_ONLY_VARIABLES = {"POSTGRES_PASSWORD", "IMAGE_TAG"}


def settings_read_from_environment() -> set[str]:
    """Every variable name `Settings.from_env` looks up (`_get(env, "X"` or `env.get("X"`)."""
    source = (PROJECT_ROOT / "bot" / "settings.py").read_text()
    names = set(re.findall(r'_get\(\s*env,\s*"([A-Z0-9_]+)"', source))
    names |= set(re.findall(r'env\.get\(\s*"([A-Z0-9_]+)"', source))
    assert {"DATABASE_URL", "BOT_MODE", "LISTEN_PORT", "DASHBOARD_PORT"} <= names
    return names


def stages() -> dict[str, list[str]]:
    """Dockerfile stage name -> its instructions (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    result: dict[str, list[str]] = {}
    current: list[str] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = result.setdefault(match.group(2), [])
        current.append(line)
    return result


def instruction(stage: str, name: str) -> list[str]:
    return [line[len(name) :].strip() for line in stages()[stage] if line.startswith(name + " ")]


def health_url(test: list[str] | str) -> str:
    text = test if isinstance(test, str) else " ".join(test)
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", text)
    assert match, f"no URL in the health check {text!r}"
    return match.group(0)


def environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in COMPOSE["services"][service].get("environment", {}).items()}


def published_container_ports(service: str) -> set[int]:
    spec = COMPOSE["services"][service]
    ports = {int(str(p).rsplit(":", 1)[-1]) for p in spec.get("ports", [])}
    return ports | {int(p) for p in spec.get("expose", [])}


def listener_paths() -> set[str]:
    app = build_listener_app(cast(Dependencies, None))
    return {r.resource.canonical for r in app.router.routes() if r.method == "GET"}


def dashboard_get_paths() -> set[str]:
    paths: set[str] = set()
    for module in view_modules():
        routes = getattr(module, "routes", None)
        if isinstance(routes, web.RouteTableDef):
            for route in routes:
                if isinstance(route, web.RouteDef) and route.method == "GET":
                    paths.add(route.path)
    return paths


# ---------------------------------------------------------------- compose <-> settings


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_variable_compose_gives_the_app_is_a_setting(service: str) -> None:
    unknown = set(environment(service)) - settings_read_from_environment()
    assert not unknown, f"{service}: not read by Settings.from_env: {sorted(unknown)}"


def test_every_variable_compose_reads_is_a_setting_or_documented() -> None:
    asked = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_TEXT))
    unknown = asked - settings_read_from_environment() - COMPOSE_ONLY_VARIABLES
    assert not unknown
    for name in asked:
        assert f"`{name}`" in OPERATIONS, f"{name} is not explained in docs/operations.md"


def test_the_compose_bot_is_valid_settings_in_webhook_mode() -> None:
    env = {k: v for k, v in environment("bot").items() if "${" not in v}
    env.update(WEBHOOK_URL="https://bot.example.org/telegram/webhook", DATA_DIR="/tmp")
    settings = Settings.from_env(env)
    assert settings.bot_mode == "webhook"
    assert settings.effective_listen_port == 8081
    assert settings.log_format == "json"


def test_secrets_come_from_the_environment_and_are_required() -> None:
    for service in APP_SERVICES:
        env = environment(service)
        for secret in (
            "PSEUDONYM_SECRET",
            "CONTACT_SECRET",
            "NLU_AUTH_TOKEN",
            "TELEGRAM_BOT_TOKEN",
        ):
            assert env[secret].startswith(f"${{{secret}:?"), f"{service} {secret}"
    assert environment("bot")["WEBHOOK_SECRET"].startswith("${WEBHOOK_SECRET:?")
    assert environment("nlu")["NLU_AUTH_TOKEN"].startswith("${NLU_AUTH_TOKEN:?")
    assert "database:/var/lib/postgresql/data" in COMPOSE["services"]["postgres"]["volumes"]
    assert "database" in COMPOSE["volumes"]


def test_the_bot_runs_in_webhook_mode_and_the_dashboard_alone() -> None:
    services = COMPOSE["services"]
    assert services["bot"]["command"] == ["python", "-m", "bot", "run"]
    assert services["dashboard"]["command"] == ["python", "-m", "bot", "dashboard"]
    for command in ("run", "dashboard"):
        assert build_parser().parse_args([command]).func is not None  # a real subcommand
    assert environment("bot")["BOT_MODE"] == "webhook"
    for service in ("bot", "dashboard"):
        needs = services[service]["depends_on"]
        assert needs["postgres"]["condition"] == needs["nlu"]["condition"] == "service_healthy"


# ---------------------------------------------------------------- ports and health checks


def test_ports_agree_across_dockerfile_compose_and_settings() -> None:
    bot_port = int(environment("bot")["LISTEN_PORT"])
    dashboard_port = int(environment("dashboard")["DASHBOARD_PORT"])
    assert published_container_ports("bot") == {bot_port}
    assert published_container_ports("dashboard") == {dashboard_port}
    assert urlsplit(environment("bot")["NLU_URL"]).port == 5005
    assert published_container_ports("nlu") == {5005}
    exposed_app = {int(p) for line in instruction("app", "EXPOSE") for p in line.split()}
    assert exposed_app == {bot_port, dashboard_port}
    assert instruction("nlu", "EXPOSE") == ["5005"]
    assert "-p 5005" in " ".join(instruction("nlu", "CMD"))
    assert f"LISTEN_PORT={bot_port}" in " ".join(instruction("app", "ENV"))
    # Published to the host's loopback only: a TLS proxy faces the internet.
    for service in APP_SERVICES:
        for port in COMPOSE["services"][service]["ports"]:
            assert str(port).startswith("127.0.0.1:")


def test_health_checks_ask_paths_the_app_serves_on_its_ports() -> None:
    services = COMPOSE["services"]
    bot = urlsplit(health_url(services["bot"]["healthcheck"]["test"]))
    assert (bot.port, bot.path) == (int(environment("bot")["LISTEN_PORT"]), "/readyz")
    dashboard = urlsplit(health_url(services["dashboard"]["healthcheck"]["test"]))
    assert dashboard.port == int(environment("dashboard")["DASHBOARD_PORT"])
    assert dashboard.path in dashboard_get_paths()
    image = urlsplit(health_url(" ".join(instruction("app", "HEALTHCHECK"))))
    assert (image.port, image.path) == (8081, "/healthz")
    assert {bot.path, image.path} <= listener_paths()
    nlu = urlsplit(health_url(services["nlu"]["healthcheck"]["test"]))
    assert nlu.port == 5005
    assert urlsplit(health_url(" ".join(instruction("nlu", "HEALTHCHECK")))).port == 5005


# ---------------------------------------------------------------- the Dockerfile


def test_two_targets_built_with_the_make_targets_and_locks_ci_uses() -> None:
    assert {"nlu", "app"} <= set(stages())
    runs = " ".join(line for lines in stages().values() for line in lines if line.startswith("RUN"))
    for target in ("install-nlu", "train", "install-app"):
        assert f"make {target}" in runs
        assert re.search(rf"^{target}:", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert "APP_LOCKS=requirements/app.txt" in runs
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "$(addprefix -r ,$(APP_LOCKS))" in makefile
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M):
        for source in copied.split():
            assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file"
    assert "COPY --from=nlu-build /app/models/ /app/models/" in DOCKERFILE


def test_base_images_are_pinned_and_the_images_run_as_non_root_with_health_checks() -> None:
    bases = dict(re.findall(r"^ARG (\w+_BASE)=(\S+)$", DOCKERFILE, re.M))
    assert set(bases) == {"NLU_BASE", "APP_BASE"}
    for image in bases.values():
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image)
    assert bases["NLU_BASE"].startswith("python:3.10.")
    assert COMPOSE["services"]["postgres"]["image"] != "postgres:latest"
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", COMPOSE["services"]["postgres"]["image"])
    for stage in ("nlu", "app"):
        users = instruction(stage, "USER")
        assert users and users[-1] not in ("root", "0")
        assert instruction(stage, "HEALTHCHECK")
        assert instruction(stage, "CMD")[0].startswith("[")  # exec form: signals reach it


def test_the_dockerfile_follows_the_hadolint_rules_that_matter_here() -> None:
    for stage, lines in stages().items():
        for line in lines:
            if line.startswith("RUN") and "apt-get install" in line:
                assert "--no-install-recommends" in line, stage  # DL3015
                assert "rm -rf /var/lib/apt/lists/*" in line, stage  # DL3009
                packages = shlex.split(line.split("apt-get install", 1)[1].split("&&")[0])
                pinned = [p for p in packages if not p.startswith("-")]
                assert all("=" in p for p in pinned), pinned  # DL3008
            assert not line.startswith("ADD "), "use COPY"  # DL3020
            if line.startswith("WORKDIR"):
                assert line.split()[1].startswith("/")  # DL3000
            assert ":latest" not in line  # DL3007
            assert "sudo " not in line  # DL3004


def test_the_build_context_leaves_out_environments_models_data_and_secrets() -> None:
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".venv-nlu", "models", "data", ".env", "tests"):
        assert entry in ignored
    assert "!.env.example" in ignored


def test_operations_guide_is_linked_from_the_readme() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "docs/operations.md" in readme
    for topic in (
        "docker compose up",
        "Alembic",
        "pg_dump",
        "pg_restore",
        "PSEUDONYM_SECRET",
        "CONTACT_SECRET",
        "WEBHOOK_SECRET",
        "RETENTION_DAYS",
        "make bench",
    ):
        assert topic in OPERATIONS, topic
