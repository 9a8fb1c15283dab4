"""All configuration, read once from the environment (and an optional `.env` file).

Every setting is documented in the README's configuration table; `Settings.from_env`
is the only place that reads `os.environ`, so a bad value fails at start-up with a
message naming the variable instead of deep inside a handler.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LISTEN_PORT = 8081
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Typed configuration of the bot, the NLU client and the storage."""

    telegram_bot_token: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    operator_name: str = "the Defector Voices team"
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'data' / 'defector_voices.db'}"
    database_durability: str = "full"
    """"full": a commit is on disk when it returns; "fast": in the OS's hands (see
    `bot.storage.database.DURABILITY`)."""
    database_pool_size: int = 20
    """PostgreSQL connections kept open per process. A turn holds one for its read and its
    group commit one at a time; with 64 concurrent turns, SQLAlchemy's default (5, plus 10
    opened and closed again on demand) made turns queue for a connection and reconnect under
    load: 136 -> 195 answered/s as fast as possible (`make bench`, with no pre-ping: see
    `Database._on_fresh_connection`)."""
    pseudonym_secret: str = field(default="", repr=False)
    retention_days: int = 90
    retention_check_seconds: int = 3600
    nlu_url: str | None = None
    """One NLU server, or several separated by commas (a round-robin pool)."""
    nlu_auth_token: str = field(default="", repr=False)
    nlu_timeout_seconds: float = 3.0
    nlu_breaker_failures: int = 5
    """Consecutive failures (errors, timeouts) after which a server is not called for a while."""
    nlu_breaker_cooldown_seconds: float = 5.0
    nlu_health_interval_seconds: float = 2.0
    """How often every NLU server's /status is checked; 0 turns the health check off."""
    nlu_cache_size: int = 1000
    """Answers of the model kept in memory for repeated texts; 0 turns the cache off."""
    nlu_workers: int = 1
    """How many local NLU servers `make run` starts when `NLU_URL` is unset."""
    cpu_pinning: str = "auto"
    """`auto`: each local NLU server gets a core of its own and the bot the others, when the
    machine has a core left for the bot (`bot.cpus`); `off`: the scheduler decides."""
    nlu_reclassify_seconds: float = 30.0
    """How often messages stored while the NLU was unavailable are classified again."""
    nlu_hang_restart_seconds: float = 60.0
    """A local NLU server that has not answered for this long is killed and restarted; 0: never."""
    crisis_confidence_floor: float = 0.1
    """A crisis intent ranked at or above this confidence counts as crisis; 1.0 turns it off.
    0.1 was chosen on the development set for the model of the fifteenth round: the lowest
    floor that raised crisis recall without adding more than 0.6 points of false alarms
    (README, "NLU")."""
    risk_family_floor: float = 0.7
    """A fallback whose risk intents together reach this confidence is answered as the top
    risk intent (`bot.nlu.client.apply_risk_family`); 1.0 turns it off. 0.7 was chosen on the
    development set: it recovered claims split between two risk intents, with no new false
    alarms (README, "NLU")."""
    low_confidence_threshold: float = 0.7
    """Incoming messages understood with less confidence go to the dashboard's queue of
    messages to annotate (with the fallback intent and those the NLU server never saw)."""
    nlu_host: str = "127.0.0.1"
    nlu_port: int = 5005
    nlu_model_dir: Path = PROJECT_ROOT / "models"
    nlu_model: Path | None = None
    """A model file to serve; by default the newest in `nlu_model_dir`."""
    nlu_python: Path = PROJECT_ROOT / ".venv-nlu" / "bin" / "python"
    nlu_startup_timeout_seconds: float = 120.0
    content_dir: Path = PROJECT_ROOT / "responses"
    """The YAML folder that `content import`/`export` read and write; imported on first start."""
    content_refresh_seconds: float = 1.0
    """How often the running bot checks the database for an approved content change."""
    data_dir: Path = PROJECT_ROOT / "data"
    max_message_chars: int = 4000
    concurrent_updates: int = 64
    telegram_max_messages_per_second: float = 30.0
    """The bot's own cap on Bot API calls per second (Telegram's bulk limit); 0: no cap."""
    log_level: str = "INFO"
    log_format: str = "text"
    """`text` for people at a terminal, `json` (one object per line) for log collectors."""
    bot_mode: str = "polling"
    """`polling` (one machine, no public address) or `webhook` (Telegram posts updates to
    `webhook_url`; several replicas behind a load balancer)."""
    webhook_url: str | None = None
    webhook_secret: str = field(default="", repr=False)
    webhook_max_connections: int = 40
    listen_host: str = "127.0.0.1"
    listen_port: int | None = None
    """The bot's HTTP listener (webhook, /healthz, /readyz, /metrics). Webhook mode always
    listens (on 8081 unless set); polling mode only when a port is set."""
    sentry_dsn: str | None = field(default=None, repr=False)
    moderator_chat_id: int | None = None
    """The team's private Telegram group for alerts; unset: alerts only in the dashboard."""
    dashboard_public_url: str = "http://127.0.0.1:8080"
    """Where moderators open the dashboard; alerts link to conversations under it."""
    contact_secret: str = field(default="", repr=False)
    """Key that encrypts the chat id kept so a moderator's message can reach the user."""
    human_reply_estimate_minutes: int = 30
    """What the user is told about how soon a person answers."""
    human_request_timeout_seconds: int = 3600
    """A request for a person nobody picked up by then gets resources and is escalated."""
    escalation_check_seconds: float = 30.0
    """How often unanswered requests for a person are looked for."""
    takeover_recheck_seconds: float = 0.25
    """A turn that ran longer than this reads again, before its reply leaves, whether a
    person took the conversation over meanwhile; a shorter one trusts the read it started
    with. 0: always read again."""
    flood_max_messages: int = 8
    flood_window_seconds: int = 30
    """More than `flood_max_messages` from one user within this window: one cooldown note,
    then the rest are stored without a reply (never for a user at high risk or in crisis)."""
    telegram_timeout_seconds: float = 10.0
    """Each limit of one Telegram API call (waiting for a free connection, connecting, writing,
    reading) before it counts as failed and is retried; the call as a whole gets their sum."""
    write_buffer_max_bytes: int = 50_000_000
    """The most the write buffer (`DATA_DIR/write-buffer.jsonl`) may hold while the database
    is unavailable; writes past it are lost (and logged)."""
    write_buffer_retry_seconds: float = 2.0
    """How often the buffer's flusher tries the database again."""

    @property
    def effective_listen_port(self) -> int | None:
        """The port to listen on, or None when the bot runs no HTTP listener."""
        if self.listen_port is not None:
            return self.listen_port
        return DEFAULT_LISTEN_PORT if self.bot_mode == "webhook" else None

    @property
    def webhook_path(self) -> str:
        """The path Telegram posts to: the path of `webhook_url` (a proxy passes it through)."""
        return urlsplit(self.webhook_url or "").path or "/"

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8080
    dashboard_secure_cookies: bool = True
    """Mark the session cookie `Secure`. Browsers accept a Secure cookie from plain-http
    `localhost`/`127.0.0.1` (they count as secure contexts), so the default works for `make
    run`; turn it off only for plain-http access from another machine in a closed network."""
    dashboard_session_hours: float = 8.0
    dashboard_login_max_failures: int = 5
    dashboard_login_lock_minutes: float = 15.0

    @property
    def write_buffer_path(self) -> Path:
        return self.data_dir / "write-buffer.jsonl"

    @property
    def update_journal_path(self) -> Path:
        return self.data_dir / "update-journal.jsonl"

    @property
    def local_nlu_url(self) -> str:
        """The URL of the NLU server that `make run` starts when `NLU_URL` is unset."""
        return f"http://{self.nlu_host}:{self.nlu_port}"

    @property
    def dashboard_url(self) -> str:
        """Where `make run` and `python -m bot dashboard` say the dashboard is."""
        host = f"[{self.dashboard_host}]" if ":" in self.dashboard_host else self.dashboard_host
        return f"http://{host}:{self.dashboard_port}/"

    @property
    def effective_nlu_url(self) -> str:
        return self.nlu_url or self.local_nlu_url

    @property
    def nlu_urls(self) -> tuple[str, ...]:
        """The servers of `NLU_URL`, in order; empty when the bot starts its own."""
        if not self.nlu_url:
            return ()
        return tuple(url.strip() for url in self.nlu_url.split(",") if url.strip())

    @property
    def local_nlu_ports(self) -> tuple[int, ...]:
        """The ports of the `nlu_workers` local servers: `NLU_PORT` and the ones after it."""
        return tuple(self.nlu_port + index for index in range(self.nlu_workers))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = None
    ) -> Settings:
        """Build settings from `environ` (default: `os.environ` over `./.env`).

        Values in the real environment win over the `.env` file, as in most tools.
        """
        if environ is None:
            env = dict(read_dotenv(dotenv or PROJECT_ROOT / ".env"))
            env.update(os.environ)
        else:
            env = dict(environ)
        data_dir = Path(env.get("DATA_DIR", str(cls.data_dir))).expanduser()
        defaults = cls(data_dir=data_dir)
        return cls(
            telegram_bot_token=env.get("TELEGRAM_BOT_TOKEN") or None,
            telegram_api_base_url=_get(
                env, "TELEGRAM_API_BASE_URL", defaults.telegram_api_base_url, _url
            ),
            operator_name=_get(env, "OPERATOR_NAME", defaults.operator_name, _nonempty),
            database_url=_get(
                env,
                "DATABASE_URL",
                f"sqlite+aiosqlite:///{data_dir / 'defector_voices.db'}",
                _database_url,
            ),
            database_durability=_get(
                env, "DATABASE_DURABILITY", defaults.database_durability, _durability
            ),
            database_pool_size=_get(
                env, "DATABASE_POOL_SIZE", defaults.database_pool_size, _positive_int
            ),
            pseudonym_secret=env.get("PSEUDONYM_SECRET") or "",
            retention_days=_get(env, "RETENTION_DAYS", defaults.retention_days, _positive_int),
            retention_check_seconds=_get(
                env, "RETENTION_CHECK_SECONDS", defaults.retention_check_seconds, _positive_int
            ),
            nlu_url=_get(env, "NLU_URL", None, _url_list),
            nlu_auth_token=env.get("NLU_AUTH_TOKEN", ""),
            nlu_timeout_seconds=_get(
                env, "NLU_TIMEOUT_SECONDS", defaults.nlu_timeout_seconds, _positive_float
            ),
            nlu_breaker_failures=_get(
                env, "NLU_BREAKER_FAILURES", defaults.nlu_breaker_failures, _positive_int
            ),
            nlu_breaker_cooldown_seconds=_get(
                env,
                "NLU_BREAKER_COOLDOWN_SECONDS",
                defaults.nlu_breaker_cooldown_seconds,
                _positive_float,
            ),
            nlu_health_interval_seconds=_get(
                env,
                "NLU_HEALTH_INTERVAL_SECONDS",
                defaults.nlu_health_interval_seconds,
                _non_negative_float,
            ),
            nlu_cache_size=_get(env, "NLU_CACHE_SIZE", defaults.nlu_cache_size, _non_negative_int),
            nlu_workers=_get(env, "NLU_WORKERS", defaults.nlu_workers, _workers),
            cpu_pinning=_get(env, "CPU_PINNING", defaults.cpu_pinning, _choice("auto", "off")),
            takeover_recheck_seconds=_get(
                env,
                "TAKEOVER_RECHECK_SECONDS",
                defaults.takeover_recheck_seconds,
                _non_negative_float,
            ),
            nlu_hang_restart_seconds=_get(
                env,
                "NLU_HANG_RESTART_SECONDS",
                defaults.nlu_hang_restart_seconds,
                _non_negative_float,
            ),
            nlu_reclassify_seconds=_get(
                env, "NLU_RECLASSIFY_SECONDS", defaults.nlu_reclassify_seconds, _positive_float
            ),
            crisis_confidence_floor=_get(
                env, "CRISIS_CONFIDENCE_FLOOR", defaults.crisis_confidence_floor, _fraction
            ),
            risk_family_floor=_get(env, "RISK_FAMILY_FLOOR", defaults.risk_family_floor, _fraction),
            low_confidence_threshold=_get(
                env, "LOW_CONFIDENCE_THRESHOLD", defaults.low_confidence_threshold, _fraction
            ),
            nlu_host=_get(env, "NLU_HOST", defaults.nlu_host, _nonempty),
            nlu_port=_get(env, "NLU_PORT", defaults.nlu_port, _port),
            nlu_model_dir=Path(env.get("NLU_MODEL_DIR", str(defaults.nlu_model_dir))),
            nlu_model=_get(env, "NLU_MODEL", None, _existing_file),
            nlu_python=Path(env.get("NLU_PYTHON", str(defaults.nlu_python))),
            nlu_startup_timeout_seconds=_get(
                env,
                "NLU_STARTUP_TIMEOUT_SECONDS",
                defaults.nlu_startup_timeout_seconds,
                _positive_float,
            ),
            content_dir=Path(env.get("CONTENT_DIR", str(defaults.content_dir))),
            content_refresh_seconds=_get(
                env, "CONTENT_REFRESH_SECONDS", defaults.content_refresh_seconds, _positive_float
            ),
            data_dir=data_dir,
            max_message_chars=_get(
                env, "MAX_MESSAGE_CHARS", defaults.max_message_chars, _positive_int
            ),
            concurrent_updates=_get(
                env, "CONCURRENT_UPDATES", defaults.concurrent_updates, _positive_int
            ),
            telegram_max_messages_per_second=_get(
                env,
                "TELEGRAM_MAX_MESSAGES_PER_SECOND",
                defaults.telegram_max_messages_per_second,
                _non_negative_float,
            ),
            log_level=_get(env, "LOG_LEVEL", defaults.log_level, _log_level),
            log_format=_get(env, "LOG_FORMAT", defaults.log_format, _choice("text", "json")),
            bot_mode=_get(env, "BOT_MODE", defaults.bot_mode, _choice("polling", "webhook")),
            webhook_url=_get(env, "WEBHOOK_URL", None, _webhook_url),
            webhook_secret=_get(env, "WEBHOOK_SECRET", "", _webhook_secret),
            webhook_max_connections=_get(
                env,
                "WEBHOOK_MAX_CONNECTIONS",
                defaults.webhook_max_connections,
                _int_between(1, 100),
            ),
            listen_host=_get(env, "LISTEN_HOST", defaults.listen_host, _nonempty),
            listen_port=_get(env, "LISTEN_PORT", None, _port),
            sentry_dsn=_get(env, "SENTRY_DSN", None, _url),
            dashboard_host=_get(env, "DASHBOARD_HOST", defaults.dashboard_host, _nonempty),
            dashboard_port=_get(env, "DASHBOARD_PORT", defaults.dashboard_port, _port),
            dashboard_secure_cookies=_get(
                env, "DASHBOARD_SECURE_COOKIES", defaults.dashboard_secure_cookies, _bool
            ),
            dashboard_session_hours=_get(
                env, "DASHBOARD_SESSION_HOURS", defaults.dashboard_session_hours, _positive_float
            ),
            dashboard_login_max_failures=_get(
                env,
                "DASHBOARD_LOGIN_MAX_FAILURES",
                defaults.dashboard_login_max_failures,
                _positive_int,
            ),
            dashboard_login_lock_minutes=_get(
                env,
                "DASHBOARD_LOGIN_LOCK_MINUTES",
                defaults.dashboard_login_lock_minutes,
                _positive_float,
            ),
            moderator_chat_id=_get(env, "MODERATOR_CHAT_ID", None, _chat_id),
            dashboard_public_url=_get(
                env, "DASHBOARD_PUBLIC_URL", defaults.dashboard_public_url, _base_url
            ),
            contact_secret=env.get("CONTACT_SECRET") or "",
            human_reply_estimate_minutes=_get(
                env,
                "HUMAN_REPLY_ESTIMATE_MINUTES",
                defaults.human_reply_estimate_minutes,
                _positive_int,
            ),
            human_request_timeout_seconds=_get(
                env,
                "HUMAN_REQUEST_TIMEOUT_SECONDS",
                defaults.human_request_timeout_seconds,
                _positive_int,
            ),
            escalation_check_seconds=_get(
                env,
                "ESCALATION_CHECK_SECONDS",
                defaults.escalation_check_seconds,
                _positive_float,
            ),
            flood_max_messages=_get(
                env, "FLOOD_MAX_MESSAGES", defaults.flood_max_messages, _positive_int
            ),
            flood_window_seconds=_get(
                env, "FLOOD_WINDOW_SECONDS", defaults.flood_window_seconds, _positive_int
            ),
            telegram_timeout_seconds=_get(
                env,
                "TELEGRAM_TIMEOUT_SECONDS",
                defaults.telegram_timeout_seconds,
                _positive_float,
            ),
            write_buffer_max_bytes=_get(
                env, "WRITE_BUFFER_MAX_BYTES", defaults.write_buffer_max_bytes, _positive_int
            ),
            write_buffer_retry_seconds=_get(
                env,
                "WRITE_BUFFER_RETRY_SECONDS",
                defaults.write_buffer_retry_seconds,
                _positive_float,
            ),
        )._checked()

    def _checked(self) -> Settings:
        """Rules that involve more than one setting."""
        if self.bot_mode == "webhook" and not self.webhook_url:
            raise SettingsError("WEBHOOK_URL must be set when BOT_MODE=webhook")
        return self

    def with_secrets(self) -> Settings:
        """Fill in secrets that may be generated locally, persisting them under `data_dir`.

        A pseudonym secret must never change while data exists (every user would get a new
        pseudonym), so a generated one is written once to `data/pseudonym.secret` and reused.
        The contact secret likewise (`data/contact.secret`): a new one makes the stored chat
        ids unreadable, so moderators could no longer reach those users.
        """
        settings = self
        if not settings.pseudonym_secret:
            settings = replace(settings, pseudonym_secret=self._secret_file("pseudonym.secret"))
        if not settings.webhook_secret:
            # Telegram allows A-Z, a-z, 0-9, _ and - (1-256 characters): hex fits. Replicas
            # must share it, so a multi-replica deployment sets WEBHOOK_SECRET itself.
            settings = replace(settings, webhook_secret=self._secret_file("webhook.secret"))
        if not settings.contact_secret:
            # Encrypts the chat ids kept for moderators' messages; replicas must share it.
            settings = replace(settings, contact_secret=self._secret_file("contact.secret"))
        return settings

    def _secret_file(self, name: str) -> str:
        """A random secret kept in `data_dir/name`, created on first use (mode 0600)."""
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written whole under a private name, then linked into place: replicas starting
            # together never read a half-written secret, and the first link wins.
            draft = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):  # another process linked first
                    os.link(draft, path)
            finally:
                draft.unlink()
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise SettingsError(f"{path} holds a secret shorter than 32 characters")
        return secret


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: `NAME=value` lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected NAME=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def _get(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not valid: {exc}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a whole number above 0")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a number above 0")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number, 0 or more")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number, 0 or more")
    return value


def _workers(raw: str) -> int:
    value = _positive_int(raw)
    if value > 16:
        raise ValueError("must be from 1 to 16 (each local NLU server needs about 1 GB of memory)")
    return value


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0.0 < value <= 1.0:
        raise ValueError("must be a number above 0 and at most 1")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw.rstrip("/") if raw.endswith("//") else raw


def _url_list(raw: str) -> str:
    """One URL or several separated by commas, normalised to "url1,url2"."""
    urls = [part.strip() for part in raw.split(",") if part.strip()]
    if not urls:
        raise ValueError("must list at least one http:// or https:// URL")
    cleaned = [_url(url).rstrip("/") for url in urls]
    if len(set(cleaned)) != len(cleaned):
        raise ValueError("lists the same URL twice")
    return ",".join(cleaned)


def _base_url(raw: str) -> str:
    return _url(raw).rstrip("/")


def _existing_file(raw: str) -> Path | None:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("no such file (run `make train` to build the model)")
    return path


def _chat_id(raw: str) -> int:
    value = int(raw)
    if value == 0:
        raise ValueError("must be a Telegram chat id (a group's id is negative, e.g. -100123...)")
    return value


def _nonempty(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    return raw


def _database_url(raw: str) -> str:
    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError(
            "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
        )
    return raw


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.lower()
        if value not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return value

    return parse


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return parse


def _webhook_url(raw: str) -> str:
    """Telegram posts only to HTTPS; plain HTTP is accepted for a loopback test server."""
    parts = urlsplit(raw)
    if parts.scheme == "https" and parts.hostname:
        return raw
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return raw
    raise ValueError("must be an https:// URL that Telegram can reach")


def _webhook_secret(raw: str) -> str:
    if not _WEBHOOK_SECRET.fullmatch(raw):
        raise ValueError("use 16 to 256 characters from A-Z, a-z, 0-9, _ and -")
    return raw


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _durability(raw: str) -> str:
    value = raw.lower()
    if value not in {"full", "fast"}:
        raise ValueError("must be full or fast")
    return value


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level
