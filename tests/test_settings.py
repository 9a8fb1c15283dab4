"""Settings: defaults that work on a fresh clone, clear errors naming the variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, read_dotenv


def test_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    assert settings.telegram_bot_token is None
    assert settings.retention_days == 90
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'defector_voices.db'}"
    assert settings.effective_nlu_url == "http://127.0.0.1:5005"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETENTION_DAYS", "ninety"),
        ("RETENTION_DAYS", "0"),
        ("NLU_PORT", "70000"),
        ("NLU_URL", "localhost:5005"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("NLU_TIMEOUT_SECONDS", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("TELEGRAM_API_BASE_URL", "ftp://example"),
        ("NLU_MODEL", "/no/such/model.tar.gz"),
        ("BOT_MODE", "push"),
        ("WEBHOOK_URL", "http://bot.example.org/telegram/webhook"),
        ("WEBHOOK_SECRET", "short"),
        ("WEBHOOK_SECRET", "has spaces and is long enough"),
        ("WEBHOOK_MAX_CONNECTIONS", "101"),
        ("LISTEN_PORT", "0"),
        ("LOG_FORMAT", "xml"),
        ("SENTRY_DSN", "not-a-url"),
        ("DASHBOARD_PORT", "http"),
        ("DASHBOARD_SECURE_COOKIES", "maybe"),
        ("DASHBOARD_SESSION_HOURS", "0"),
        ("DASHBOARD_LOGIN_MAX_FAILURES", "-3"),
        ("DASHBOARD_LOGIN_LOCK_MINUTES", "forever"),
        ("DATABASE_POOL_SIZE", "0"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_a_generated_pseudonym_secret_is_kept_between_runs(tmp_path: Path) -> None:
    first = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secrets()
    second = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secrets()
    assert len(first.pseudonym_secret) >= 32
    assert first.pseudonym_secret == second.pseudonym_secret
    assert (tmp_path / "pseudonym.secret").stat().st_mode & 0o077 == 0


def test_a_configured_secret_is_not_replaced(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "PSEUDONYM_SECRET": "s" * 40})
    assert settings.with_secrets().pseudonym_secret == "s" * 40
    assert not (tmp_path / "pseudonym.secret").exists()
    assert "s" * 40 not in repr(settings)


def test_dotenv_lines_are_parsed(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport RETENTION_DAYS=30\nOPERATOR_NAME='Team X'\n")
    assert read_dotenv(env_file) == {"RETENTION_DAYS": "30", "OPERATOR_NAME": "Team X"}


def test_a_malformed_dotenv_line_is_reported_with_its_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RETENTION_DAYS=30\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"\.env:2"):
        read_dotenv(env_file)


def test_webhook_mode_needs_a_webhook_url() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_URL"):
        Settings.from_env({"BOT_MODE": "webhook"})


def test_webhook_mode_listens_on_8081_and_polling_only_when_asked(tmp_path: Path) -> None:
    url = "https://bot.example.org/hooks/telegram"
    webhook = Settings.from_env({"BOT_MODE": "webhook", "WEBHOOK_URL": url})
    assert (webhook.effective_listen_port, webhook.webhook_path) == (8081, "/hooks/telegram")
    assert Settings.from_env({}).effective_listen_port is None
    assert Settings.from_env({"LISTEN_PORT": "9100"}).effective_listen_port == 9100


def test_a_generated_webhook_secret_is_kept_and_telegram_accepts_it(tmp_path: Path) -> None:
    first = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secrets()
    second = Settings.from_env({"DATA_DIR": str(tmp_path)}).with_secrets()
    assert first.webhook_secret == second.webhook_secret
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,256}", first.webhook_secret)
    assert first.webhook_secret != first.pseudonym_secret
    assert (tmp_path / "webhook.secret").stat().st_mode & 0o777 == 0o600


def test_dashboard_settings_default_to_loopback_and_secure_cookies() -> None:
    defaults = Settings.from_env({})
    assert (defaults.dashboard_host, defaults.dashboard_port) == ("127.0.0.1", 8080)
    assert defaults.dashboard_secure_cookies is True
    assert defaults.dashboard_url == "http://127.0.0.1:8080/"
    changed = Settings.from_env(
        {"DASHBOARD_HOST": "::1", "DASHBOARD_PORT": "9090", "DASHBOARD_SECURE_COOKIES": "off"}
    )
    assert changed.dashboard_url == "http://[::1]:9090/"
    assert changed.dashboard_secure_cookies is False


def test_processes_starting_together_read_the_same_whole_secret(tmp_path: Path) -> None:
    """Two replicas sharing DATA_DIR once read a secret the other had created but not written."""
    script = (
        "import sys; from bot.settings import Settings; "
        "print(Settings.from_env({'DATA_DIR': sys.argv[1]}).with_secrets().pseudonym_secret)"
    )
    for round_ in range(10):
        data = tmp_path / f"round-{round_}"
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(data)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        outputs = [run.communicate(timeout=60) for run in runs]
        assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
        secrets = {out.strip() for out, _ in outputs}
        assert len(secrets) == 1 and len(secrets.pop()) == 64
        assert sorted(p.name for p in data.iterdir()) == sorted(
            ["contact.secret", "pseudonym.secret", "webhook.secret"]
        ), "no draft left behind"
