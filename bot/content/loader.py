"""Reading `responses/*.yml` into a `Library`, reporting every problem with file and line.

The content team edits these files by hand, often while the bot runs, so a mistake must be
reported the way a compiler would: all problems at once, each as `path:line: message`, and
never a traceback. YAML is read with a `SafeLoader` subclass that remembers where each
mapping, key and list item starts; dates are kept as text and parsed here, so "2015-09" and
"2015-09-21" are read the same way.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from bot.content.model import STATUSES, Country, Fact, Library, Resource, Source, Testimony
from bot.nlu.intents import RISK_INTENTS

TESTIMONIES_FILE = "testimonies.yml"
FACTS_FILE = "facts.yml"
RESOURCES_FILE = "resources.yml"
REPLIES_FILE = "replies.yml"
FILES = (TESTIMONIES_FILE, FACTS_FILE, RESOURCES_FILE, REPLIES_FILE)

FORMS = ("quote", "paraphrase")
KINDS = ("exit", "family", "crisis", "emergency")
CRISIS_KINDS = ("crisis", "emergency")
GLOBAL = "global"
UNDATED = "n.d."
"""The `source.date` of a page that shows no publication date."""
MIN_APPROVED_PER_CLAIM = 2
STALE_AFTER = timedelta(days=365)
LONG_REPLY_CHARS = 900
"""Longer replies get a warning: Telegram messages should be short."""
COMMAND_DESCRIPTION_CHARS = 256
"""Telegram's limit for a command's description in the menu."""

_NONE: frozenset[str] = frozenset()
_OPERATOR = frozenset({"operator"})
_OPERATOR_RETENTION = frozenset({"operator", "retention_days"})
_TESTIMONY = frozenset({"text", "speaker", "source"})
_COUNTRY = frozenset({"country"})

REQUIRED_REPLIES: Mapping[str, frozenset[str]] = {
    "welcome": _OPERATOR_RETENTION,
    "help": _NONE,
    "privacy": _OPERATOR_RETENTION,
    "identity": _OPERATOR,
    "fallback": _NONE,
    "nlu_unavailable": _NONE,
    "error": _NONE,
    "non_text": _NONE,
    "group_chat": _NONE,
    "too_long": _NONE,
    "other_language": _NONE,
    "greet": _NONE,
    "goodbye": _NONE,
    "thanks": _NONE,
    "affirm": _NONE,
    "deny": _NONE,
    "insult": _NONE,
    "oppose_extremism": _NONE,
    "benign_religious": _NONE,
    "out_of_scope": _NONE,
    "counter_intro": _NONE,
    "testimony_quote": _TESTIMONY,
    "testimony_paraphrase": _TESTIMONY,
    **{f"followup_{intent}": _NONE for intent in sorted(RISK_INTENTS)},
    "stories_exhausted": _NONE,
    "sourcing_intro": _NONE,
    "ask_country": _NONE,
    "resources_intro": _COUNTRY,
    "resources_none_local": _COUNTRY,
    "help_leaving_intro": _NONE,
    "human_requested": frozenset({"operator", "wait"}),
    "human_unanswered": _NONE,
    "takeover_started": _OPERATOR,
    "handed_back": _NONE,
    "team_message": frozenset({"operator", "text"}),
    "cooldown": _NONE,
    "safety_self_harm": _NONE,
    "safety_violence": _NONE,
    "crisis_followup": _NONE,
    "crisis_safe_yes": _NONE,
    "crisis_safe_no": _NONE,
    "grounding": _NONE,
    "safety_plan": _NONE,
    "forget_confirm": _NONE,
    "forget_done": _NONE,
    "forget_cancelled": _NONE,
    "resource_line": frozenset({"name", "description", "contact"}),
    "button_another_story": _NONE,
    "button_help": _NONE,
    "button_human": _NONE,
    "button_forget_yes": _NONE,
    "button_forget_no": _NONE,
    "button_other_country": _NONE,
    "button_safe_yes": _NONE,
    "button_safe_no": _NONE,
    "button_grounding": _NONE,
    "button_safety_plan": _NONE,
    "moderator_alert": frozenset({"heading", "conversation", "level", "reasons", "link"}),
    "alert_heading_crisis": _NONE,
    "alert_heading_high_risk": _NONE,
    "alert_heading_human_request": _NONE,
    "alert_heading_escalated": _NONE,
    "alert_heading_not_safe": _NONE,
    "command_start": _NONE,
    "command_help": _NONE,
    "command_resources": _NONE,
    "command_privacy": _NONE,
    "command_forget": _NONE,
    "command_human": _NONE,
}
"""Every reply key the code uses, with the only `{placeholders}` its text may contain."""

_ESSENTIAL_PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "testimony_quote": _TESTIMONY,
    "testimony_paraphrase": _TESTIMONY,
    "resource_line": frozenset({"name", "contact"}),
    "team_message": frozenset({"text"}),
    "moderator_alert": frozenset({"heading", "link"}),
}
"""Placeholders without which a layout would drop the content it exists to show."""

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_PUBLISHED = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_URL = re.compile(r"^https?://\S+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OPENING_QUOTES = '"“«„'
_CLOSING_QUOTES = '"”»“'


class ContentError(ValueError):
    """The content library has problems; `problems` lists each as `path:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in the content library:"
        super().__init__("\n".join([heading, *self.problems]))


@dataclass(frozen=True)
class CheckReport:
    """What `check_library` found; `library` holds every item that was valid on its own."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    library: Library = field(default_factory=Library)
    error_problems: list[Problem] = field(default_factory=list)
    """The same errors, with the item and field each belongs to."""
    warning_problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_library(directory: Path) -> Library:
    """The library in `directory`; raises `ContentError` listing every problem found."""
    report = check_library(directory)
    if report.errors:
        raise ContentError(report.errors)
    return report.library


def check_library(directory: Path, today: date | None = None) -> CheckReport:
    """Read and validate the library; errors block loading, warnings are for the content team."""
    return _Reader(directory, today or date.today()).read()


def check_documents(
    documents: Mapping[str, object], today: date | None = None, origin: str = "database"
) -> CheckReport:
    """Validate the library given as data, by file name, with the same rules as the files.

    `documents` maps each of `FILES` to what `yaml.safe_load` would return for it (the
    database-backed library builds them from its items). Problems name `origin/<file>` and
    carry the item and field, without line numbers.
    """
    return _Reader(Path(origin), today or date.today(), documents).read()


def _with_lines(value: object) -> object:
    """Plain dicts and lists as the loader's line-aware ones (every line 0, i.e. unknown)."""
    if isinstance(value, dict):
        mapping = _Mapping(0)
        for key, item in value.items():
            mapping[key] = _with_lines(item)
            mapping.key_lines[key] = 0
        return mapping
    if isinstance(value, list):
        sequence = _Sequence(0, [0] * len(value))
        sequence.extend(_with_lines(item) for item in value)
        return sequence
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- YAML with line numbers ---------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class _Sequence(list[Any]):
    """A YAML list that remembers its own line and the line of each item (1-based)."""

    def __init__(self, line: int, item_lines: list[int]) -> None:
        super().__init__()
        self.line = line
        self.item_lines = item_lines


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records lines and duplicate keys, and keeps dates as text."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []


def _construct_mapping(loader: _LineLoader, node: MappingNode) -> Iterator[_Mapping]:
    data = _Mapping(node.start_mark.line + 1)
    yield data
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value != "<<":
            if key_node.value in seen:
                loader.duplicate_keys.append((key_node.start_mark.line + 1, key_node.value))
            seen.add(key_node.value)
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode):
            key = loader.construct_object(key_node)
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)


def _construct_sequence(loader: _LineLoader, node: SequenceNode) -> Iterator[_Sequence]:
    data = _Sequence(node.start_mark.line + 1, [item.start_mark.line + 1 for item in node.value])
    yield data
    data.extend(loader.construct_sequence(node))


def _construct_timestamp_as_text(loader: _LineLoader, node: ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


def parse_yaml(text: str) -> Any:
    """YAML as the loader reads it: mappings and lists that know their lines, dates as text.

    Raises `yaml.YAMLError`; for content files use `check_library`, which reports it nicely.
    """
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def lines_of(value: object) -> tuple[int, list[int], dict[Any, int]]:
    """The line of a value from `parse_yaml`, its list items' lines and its keys' lines."""
    if isinstance(value, _Mapping):
        return value.line, [], dict(value.key_lines)
    if isinstance(value, _Sequence):
        return value.line, list(value.item_lines), {}
    return 0, [], {}


# --- Reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem, with the item and field it belongs to when there is one.

    `str(problem)` is the `path:line: message` line the command line prints; the editor
    uses `item` and `field` (e.g. "source.title") to show the message next to the field.
    """

    path: Path
    line: int | None
    message: str
    item: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{_where(self.path, self.line)}{self.message}"


@dataclass
class _Problems:
    with_lines: bool = True
    """False for content that does not come from a file (the database): no line numbers."""
    found_errors: list[Problem] = field(default_factory=list)
    found_warnings: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [str(p) for p in self.found_errors]

    @property
    def warnings(self) -> list[str]:
        return [str(p) for p in self.found_warnings]

    def error(
        self,
        path: Path,
        line: int | None,
        message: str,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        line = line if self.with_lines else None
        self.found_errors.append(Problem(path, line, message, item, field))

    def warning(
        self,
        path: Path,
        line: int | None,
        message: str,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        line = line if self.with_lines else None
        self.found_warnings.append(Problem(path, line, message, item, field))


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}: " if line is not None else f"{path}: "


class _Fields:
    """Reads one item's fields, reporting each problem with file, line and the item's name."""

    def __init__(
        self,
        problems: _Problems,
        path: Path,
        item: _Mapping,
        what: str,
        anchor_line: int | None = None,
        *,
        item_key: str | None = None,
        field_prefix: str = "",
    ) -> None:
        self.problems = problems
        self.path = path
        self.item = item
        self.anchor_line = anchor_line or item.line
        """Where problems of the whole item (e.g. a missing field) are reported."""
        raw_id = item.get("id")
        self.label = f"{what} '{raw_id}'" if isinstance(raw_id, str) else what
        self.item_key = item_key if item_key is not None else _text_or_none(raw_id)
        self.field_prefix = field_prefix
        self.valid = True

    def line(self, key: str | None = None) -> int:
        if key is not None and key in self.item.key_lines:
            return self.item.key_lines[key]
        return self.anchor_line

    def error(self, key: str | None, message: str, line: int | None = None) -> None:
        self.valid = False
        self.problems.error(
            self.path,
            line or self.line(key),
            f"{self.label}: {message}",
            self.item_key,
            self._field(key),
        )

    def warning(self, key: str | None, message: str) -> None:
        self.problems.warning(
            self.path, self.line(key), f"{self.label}: {message}", self.item_key, self._field(key)
        )

    def _field(self, key: str | None) -> str | None:
        if key is None:
            return self.field_prefix.rstrip(".") or None
        return f"{self.field_prefix}{key}"

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.item.get(key)
        if value is None:
            if required:
                self.error(key, f"missing required field '{key}'")
            return None
        if not isinstance(value, str):
            self.error(
                key,
                f"'{key}' must be text, not {_kind_of(value)}; put it in quotes so YAML keeps "
                "it exactly as written",
            )
            return None
        if not value.strip():
            if required:
                self.error(key, f"'{key}' is empty")
            return None
        return value.strip()

    def choice(self, key: str, options: Iterable[str]) -> str | None:
        value = self.text(key)
        allowed = tuple(options)
        if value is not None and value not in allowed:
            self.error(key, f"'{key}' is '{value}'; expected one of: {', '.join(allowed)}")
            return None
        return value

    def identifier(self) -> str | None:
        value = self.text("id")
        if value is not None and not _ID.match(value):
            self.error("id", f"id '{value}' must be kebab-case (lower-case words joined by -)")
        return value

    def language(self) -> str | None:
        value = self.text("language")
        if value is not None and not _LANGUAGE.match(value):
            self.error("language", f"language '{value}' must be an ISO 639-1 code such as 'en'")
        return value

    def names(
        self, key: str, *, required: bool, allowed: frozenset[str] | None = None
    ) -> tuple[str, ...]:
        """A list of short texts, e.g. claims or topics; reports each bad item at its line."""
        value = self.item.get(key)
        if value is None:
            if required:
                self.error(key, f"missing required field '{key}'")
            return ()
        if not isinstance(value, list):
            self.error(key, f"'{key}' must be a list, e.g. [a, b]")
            return ()
        if required and not value:
            self.error(key, f"'{key}' must not be empty")
        lines = value.item_lines if isinstance(value, _Sequence) else []
        names: list[str] = []
        for index, item in enumerate(value):
            line = lines[index] if index < len(lines) else self.line(key)
            if not isinstance(item, str) or not item.strip():
                self.error(key, f"'{key}' item {index + 1} must be text", line)
                continue
            if allowed is not None and item.strip() not in allowed:
                expected = ", ".join(sorted(allowed))
                self.error(key, f"unknown {key} item '{item.strip()}' (expected: {expected})", line)
                continue
            names.append(item.strip())
        return tuple(names)

    def day(self, key: str, *, required: bool, today: date) -> date | None:
        value = self.item.get(key)
        if value is None:
            if required:
                self.error(key, f"missing required field '{key}'")
            return None
        try:
            parsed = date.fromisoformat(str(value).strip())
        except ValueError:
            self.error(key, f"'{key}' must be a date like 2026-11-25, not '{value}'")
            return None
        if parsed > today:
            self.error(key, f"'{key}' {parsed} is in the future")
            return None
        return parsed

    def url(self, key: str, *, required: bool) -> str | None:
        value = self.text(key, required=required)
        if value is not None and not _URL.match(value):
            self.error(key, f"'{key}' must start with https:// or http:// (got '{value}')")
            return None
        return value

    def source(self, today: date) -> Source | None:
        value = self.item.get("source")
        if value is None:
            self.error("source", "missing required field 'source' (title, publisher, date, url)")
            return None
        if not isinstance(value, _Mapping):
            self.error("source", "'source' must be a mapping with title, publisher, date, url")
            return None
        fields = _Fields(
            self.problems,
            self.path,
            value,
            f"{self.label} source",
            self.line("source"),
            item_key=self.item_key,
            field_prefix="source.",
        )
        title = fields.text("title")
        publisher = fields.text("publisher")
        published = fields.published_date(today)
        url = fields.url("url", required=True)
        fields.no_unknown_keys(("title", "publisher", "date", "url"))
        if not fields.valid:
            self.valid = False
        if title is None or publisher is None or published is None or url is None:
            return None
        return Source(title=title, publisher=publisher, date=published, url=url)

    def published_date(self, today: date) -> str | None:
        """`date` as published: YYYY, YYYY-MM, YYYY-MM-DD, or n.d. for an undated page."""
        value = self.item.get("date")
        if value is None:
            self.error("date", "missing required field 'date' (YYYY, YYYY-MM or YYYY-MM-DD)")
            return None
        text = str(value).strip()
        if text == UNDATED:
            return text
        match = _PUBLISHED.match(text)
        problem = None
        if not match:
            problem = "must be YYYY, YYYY-MM or YYYY-MM-DD"
        else:
            year, month, day = (int(g) if g else 1 for g in match.groups())
            try:
                first = date(year, month, day)
            except ValueError:
                problem = "is not a real date"
            else:
                if first > today:
                    problem = "is in the future"
        if problem:
            self.error("date", f"date '{text}' {problem}")
            return None
        return text

    def no_unknown_keys(self, allowed: Iterable[str]) -> None:
        known = set(allowed)
        for key in self.item:
            if key not in known:
                self.error(key, f"unknown field '{key}' (expected: {', '.join(sorted(known))})")


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Reader:
    """Validates the four documents; from files (with lines) or given as data (without)."""

    def __init__(
        self, directory: Path, today: date, documents: Mapping[str, object] | None = None
    ) -> None:
        self.directory = directory
        self.today = today
        self.given = documents
        self.problems = _Problems(with_lines=documents is None)
        self.ids: dict[str, tuple[Path, int]] = {}

    def read(self) -> CheckReport:
        if self.given is None:
            documents = {name: self._document(name) for name in FILES}
            self._unexpected_files()
        else:
            documents = {name: self._given_document(name) for name in FILES}
        countries = self._countries(documents[RESOURCES_FILE])
        library = Library(
            testimonies=self._testimonies(documents[TESTIMONIES_FILE]),
            facts=self._facts(documents[FACTS_FILE]),
            resources=self._resources(documents[RESOURCES_FILE], countries),
            replies=self._replies(documents[REPLIES_FILE]),
            countries=countries,
        )
        self._coverage(library)
        return CheckReport(
            self.problems.errors,
            self.problems.warnings,
            library,
            self.problems.found_errors,
            self.problems.found_warnings,
        )

    # --- files ---

    def _path(self, name: str) -> Path:
        return self.directory / name

    def _document(self, name: str) -> _Mapping | None:
        """The file's top-level mapping, or None after reporting why it can't be read."""
        path = self._path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.problems.error(path, None, "file is missing")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.error(path, None, f"cannot read the file: {exc}")
            return None
        try:
            # The reader refuses characters YAML does not allow (NUL...) while constructing.
            loader = _LineLoader(text)
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            self.problems.error(path, line, f"character not allowed in YAML: {exc.reason}")
            return None
        try:
            data = loader.get_single_data()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            what = " ".join(p for p in (exc.context, exc.problem) if p)
            self.problems.error(path, line, f"YAML syntax error: {what or exc}")
            return None
        except yaml.YAMLError as exc:
            self.problems.error(path, 1, f"YAML error: {exc}")
            return None
        finally:
            loader.dispose()
        for line, key in loader.duplicate_keys:
            self.problems.error(path, line, f"duplicate key '{key}': the later one would win")
        expected = _TOP_LEVEL[name]
        if data is None:
            self.problems.error(
                path, 1, f"the file is empty; expected a mapping with {_keys(expected)}"
            )
            return None
        if not isinstance(data, _Mapping):
            self.problems.error(path, 1, f"expected a mapping with {_keys(expected)}")
            return None
        for key in data:
            if key not in expected:
                self.problems.error(
                    path, data.key_lines.get(key, 1), f"unknown top-level key '{key}'"
                )
        return data

    def _given_document(self, name: str) -> _Mapping | None:
        """A document handed in as plain data, wrapped as if read from a file without lines."""
        assert self.given is not None
        data = _with_lines(self.given.get(name, {}))
        if not isinstance(data, _Mapping):
            self.problems.error(self._path(name), None, "expected a mapping")
            return None
        return data

    def _unexpected_files(self) -> None:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.y*ml")):
            if path.name not in FILES:
                self.problems.warning(path, None, "not part of the content library; ignored")

    def _items(self, document: _Mapping | None, name: str, key: str) -> Iterator[_Mapping]:
        """The mappings listed under `key`, reporting anything else at its line."""
        if document is None:
            return
        path = self._path(name)
        value = document.get(key)
        if value is None:
            self.problems.error(path, document.line, f"missing top-level list '{key}:'")
            return
        if not isinstance(value, _Sequence):
            self.problems.error(
                path, document.key_lines.get(key, 1), f"'{key}' must be a list of items"
            )
            return
        for index, item in enumerate(value):
            if isinstance(item, _Mapping):
                yield item
            else:
                line = value.item_lines[index] if index < len(value.item_lines) else value.line
                self.problems.error(path, line, f"{key} item {index + 1} must be a mapping")

    def _unique(self, fields: _Fields, item_id: str | None) -> None:
        if item_id is None:
            return
        line = fields.line("id")
        if item_id in self.ids:
            other_path, other_line = self.ids[item_id]
            fields.error("id", f"duplicate id '{item_id}' (also at {other_path}:{other_line})")
        else:
            self.ids[item_id] = (fields.path, line)

    # --- testimonies ---

    def _testimonies(self, document: _Mapping | None) -> tuple[Testimony, ...]:
        path = self._path(TESTIMONIES_FILE)
        found: list[Testimony] = []
        for item in self._items(document, TESTIMONIES_FILE, "testimonies"):
            fields = _Fields(self.problems, path, item, "testimony")
            item_id = fields.identifier()
            self._unique(fields, item_id)
            form = fields.choice("form", FORMS)
            text = fields.text("text")
            claims = fields.names("claims", required=True, allowed=RISK_INTENTS)
            speaker = fields.text("speaker")
            source = fields.source(self.today)
            language = fields.language()
            status = fields.choice("status", STATUSES)
            checked = fields.day("checked", required=False, today=self.today)
            caveat = fields.text("caveat", required=False)
            fields.no_unknown_keys(TESTIMONY_FIELDS)
            if text is not None and form is not None:
                _check_quotation_marks(fields, form, text)
            if status == "approved" and form == "quote" and checked is None:
                fields.warning(
                    "status", "approved quote has no 'checked' date: compare it with the source"
                )
            if (
                not fields.valid
                or item_id is None
                or form is None
                or text is None
                or speaker is None
                or source is None
                or language is None
                or status is None
            ):
                continue
            found.append(
                Testimony(
                    id=item_id,
                    form=form,
                    text=text,
                    claims=claims,
                    speaker=speaker,
                    source=source,
                    language=language,
                    status=status,
                    checked=checked,
                    caveat=caveat,
                )
            )
        return tuple(found)

    # --- facts ---

    def _facts(self, document: _Mapping | None) -> tuple[Fact, ...]:
        path = self._path(FACTS_FILE)
        found: list[Fact] = []
        for item in self._items(document, FACTS_FILE, "facts"):
            fields = _Fields(self.problems, path, item, "fact")
            item_id = fields.identifier()
            self._unique(fields, item_id)
            text = fields.text("text")
            source = fields.source(self.today)
            language = fields.language()
            status = fields.choice("status", STATUSES)
            topics = fields.names("topics", required=False)
            fields.no_unknown_keys(("id", "text", "source", "language", "status", "topics"))
            if text is not None:
                _check_balanced(fields, text)
            if (
                not fields.valid
                or item_id is None
                or text is None
                or source is None
                or language is None
                or status is None
            ):
                continue
            found.append(
                Fact(
                    id=item_id,
                    text=text,
                    source=source,
                    language=language,
                    status=status,
                    topics=topics,
                )
            )
        return tuple(found)

    # --- countries and resources ---

    def _countries(self, document: _Mapping | None) -> tuple[Country, ...]:
        path = self._path(RESOURCES_FILE)
        found: list[Country] = []
        names: dict[str, str] = {}
        for item in self._items(document, RESOURCES_FILE, "countries"):
            fields = _Fields(self.problems, path, item, "country")
            fields.label = f"country '{item.get('code')}'"
            fields.item_key = _text_or_none(item.get("code"))
            code = fields.text("code")
            if code is not None and not _COUNTRY_CODE.match(code):
                fields.error("code", f"code '{code}' must be an ISO 3166-1 alpha-2 code like 'DE'")
            name = fields.text("name")
            aliases = fields.names("aliases", required=False)
            fields.no_unknown_keys(("code", "name", "aliases"))
            for word in (code, name, *aliases):
                if word is None:
                    continue
                folded = word.casefold()
                if folded in names and names[folded] != code:
                    fields.error(None, f"'{word}' already names country {names[folded]}")
                names.setdefault(folded, code or "")
            if any(c.code == code for c in found):
                fields.error("code", f"duplicate country code '{code}'")
                continue
            if fields.valid and code is not None and name is not None:
                found.append(Country(code=code, name=name, aliases=aliases))
        return tuple(found)

    def _resources(
        self, document: _Mapping | None, countries: tuple[Country, ...]
    ) -> tuple[Resource, ...]:
        path = self._path(RESOURCES_FILE)
        codes = {c.code for c in countries}
        found: list[Resource] = []
        for item in self._items(document, RESOURCES_FILE, "resources"):
            fields = _Fields(self.problems, path, item, "resource")
            item_id = fields.identifier()
            self._unique(fields, item_id)
            name = fields.text("name")
            kind = fields.choice("kind", KINDS)
            country = fields.text("country")
            if country is not None and country != GLOBAL and country not in codes:
                fields.error(
                    "country",
                    f"country '{country}' is not listed under 'countries' (or use '{GLOBAL}')",
                )
            description = fields.text("description")
            status = fields.choice("status", STATUSES)
            phone = fields.text("phone", required=False)
            url = fields.url("url", required=False)
            email = fields.text("email", required=False)
            if email is not None and not _EMAIL.match(email):
                fields.error("email", f"email '{email}' does not look like an address")
            hours = fields.text("hours", required=False)
            notes = fields.text("notes", required=False)
            last_verified = fields.day("last_verified", required=False, today=self.today)
            fields.no_unknown_keys(RESOURCE_FIELDS)
            if status == "approved":
                if last_verified is None and "last_verified" not in item:
                    fields.error("status", "an approved resource needs 'last_verified'")
                if not (phone or url or email):
                    fields.error("status", "an approved resource needs a phone, url or email")
            if last_verified is not None and self.today - last_verified > STALE_AFTER:
                fields.warning(
                    "last_verified",
                    f"last verified {last_verified}, over {STALE_AFTER.days} days ago",
                )
            if kind in CRISIS_KINDS and status not in (None, "approved", "retired"):
                fields.warning("status", f"{kind} line is {status}: users will not see it")
            if (
                not fields.valid
                or item_id is None
                or name is None
                or kind is None
                or country is None
                or description is None
                or status is None
            ):
                continue
            found.append(
                Resource(
                    id=item_id,
                    name=name,
                    kind=kind,
                    country=country,
                    description=description,
                    last_verified=last_verified,
                    status=status,
                    phone=phone,
                    url=url,
                    email=email,
                    hours=hours,
                    notes=notes,
                )
            )
        return tuple(found)

    # --- replies ---

    def _replies(self, document: _Mapping | None) -> dict[str, str]:
        path = self._path(REPLIES_FILE)
        if document is None:
            return {}
        replies = document.get("replies")
        if not isinstance(replies, _Mapping):
            line = document.key_lines.get("replies", document.line)
            self.problems.error(path, line, "'replies' must be a mapping of key: text")
            return {}
        found: dict[str, str] = {}
        for key, value in replies.items():
            line = replies.key_lines.get(key, replies.line)
            if not isinstance(key, str):
                self._reply_problem("error", path, line, key, f"reply key {key!r} must be text")
                continue
            if not isinstance(value, str) or not value.strip():
                what = "empty" if value is None or value == "" else _kind_of(value)
                self._reply_problem(
                    "error",
                    path,
                    line,
                    key,
                    f"reply '{key}' must be text, not {what}; put it in quotes",
                )
                continue
            if self._reply_ok(path, line, key, value):
                found[key] = value.strip()
        for key in REQUIRED_REPLIES:
            if key not in replies:
                self.problems.error(
                    path, replies.line, f"missing required reply '{key}'", key, "text"
                )
        return found

    def _reply_ok(self, path: Path, line: int, key: str, text: str) -> bool:
        allowed = REQUIRED_REPLIES.get(key)
        if allowed is None:
            self._reply_problem(
                "warning", path, line, key, f"reply '{key}' is not used by the code"
            )
        if len(text) > LONG_REPLY_CHARS:
            self._reply_problem(
                "warning",
                path,
                line,
                key,
                f"reply '{key}' is {len(text)} characters; keep messages short",
            )
        if key.startswith("command_") and len(text.strip()) > COMMAND_DESCRIPTION_CHARS:
            self._reply_problem(
                "error",
                path,
                line,
                key,
                f"reply '{key}' is longer than {COMMAND_DESCRIPTION_CHARS} characters",
            )
            return False
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            self._reply_problem(
                "error",
                path,
                line,
                key,
                f"reply '{key}' has a broken placeholder ({exc}); use {{name}}",
            )
            return False
        ok = True
        if allowed is not None and not allowed and not fields and ("{" in text or "}" in text):
            # `Library.reply` does not format a text without placeholders: {{ would show as is.
            self._reply_problem(
                "error",
                path,
                line,
                key,
                f"reply '{key}' takes no placeholders and must not contain {{ or }}",
            )
            return False
        for name in fields:
            if not name.isidentifier():
                self._reply_problem(
                    "error",
                    path,
                    line,
                    key,
                    f"reply '{key}' has placeholder {{{name}}}; use a plain {{name}}",
                )
                ok = False
            elif allowed is not None and name not in allowed:
                expected = ", ".join(f"{{{a}}}" for a in sorted(allowed)) or "none"
                self._reply_problem(
                    "error",
                    path,
                    line,
                    key,
                    f"reply '{key}' has unknown placeholder {{{name}}} (allowed: {expected})",
                )
                ok = False
        for name in sorted(_ESSENTIAL_PLACEHOLDERS.get(key, _NONE) - set(fields)):
            self._reply_problem("error", path, line, key, f"reply '{key}' must contain {{{name}}}")
            ok = False
        if key in ("testimony_quote", "testimony_paraphrase") and "{text}" in text:
            quoted = _wrapped_in_quotes(text, "{text}")
            if key == "testimony_quote" and not quoted:
                self._reply_problem(
                    "error", path, line, key, "reply 'testimony_quote' must put {text} in quotes"
                )
                ok = False
            if key == "testimony_paraphrase" and quoted:
                self._reply_problem(
                    "error",
                    path,
                    line,
                    key,
                    "reply 'testimony_paraphrase' must not put {text} in quotes",
                )
                ok = False
        return ok

    def _reply_problem(self, level: str, path: Path, line: int, key: object, message: str) -> None:
        item = key if isinstance(key, str) else None
        if level == "error":
            self.problems.error(path, line, message, item, "text")
        else:
            self.problems.warning(path, line, message, item, "text")

    # --- coverage ---

    def _coverage(self, library: Library) -> None:
        path = self._path(TESTIMONIES_FILE)
        for intent in sorted(RISK_INTENTS):
            count = len(library.approved_testimonies(intent))
            if count < MIN_APPROVED_PER_CLAIM:
                self.problems.warning(
                    path,
                    None,
                    f"claim '{intent}' has {count} approved testimon"
                    f"{'y' if count == 1 else 'ies'}; it needs at least {MIN_APPROVED_PER_CLAIM}",
                )


_TOP_LEVEL: Mapping[str, tuple[str, ...]] = {
    TESTIMONIES_FILE: ("testimonies",),
    FACTS_FILE: ("facts",),
    RESOURCES_FILE: ("countries", "resources"),
    REPLIES_FILE: ("replies",),
}
TESTIMONY_FIELDS: tuple[str, ...] = (
    # The keys a testimony may have, in the order `content export` writes them.
    "id",
    "form",
    "text",
    "claims",
    "speaker",
    "source",
    "language",
    "status",
    "checked",
    "caveat",
)
RESOURCE_FIELDS: tuple[str, ...] = (
    # The keys a resource may have, in the order `content export` writes them.
    "id",
    "name",
    "kind",
    "country",
    "description",
    "phone",
    "url",
    "email",
    "hours",
    "last_verified",
    "status",
    "notes",
)


def _keys(keys: tuple[str, ...]) -> str:
    return " and ".join(f"'{k}:'" for k in keys)


def _check_quotation_marks(fields: _Fields, form: str, text: str) -> None:
    """The layout adds the quotation marks of a quote; a paraphrase is never in them."""
    stripped = text.strip()
    if stripped[:1] in _OPENING_QUOTES and stripped[-1:] in _CLOSING_QUOTES:
        if form == "quote":
            fields.error("text", "don't put the quote in quotation marks; the layout adds them")
        else:
            fields.error("text", "a paraphrase must not be shown in quotation marks")
    _check_balanced(fields, text)


def _check_balanced(fields: _Fields, text: str) -> None:
    problems = []
    if text.count('"') % 2:
        problems.append('an odd number of "')
    if text.count("“") != text.count("”"):
        problems.append("unmatched “ ”")
    if text.count("«") != text.count("»"):
        problems.append("unmatched « »")
    if problems:
        fields.error("text", f"unbalanced quotation marks: {', '.join(problems)}")


def _wrapped_in_quotes(text: str, placeholder: str) -> bool:
    at = text.index(placeholder)
    before = text[at - 1 : at] if at else ""
    after = text[at + len(placeholder) : at + len(placeholder) + 1]
    return bool(before) and before in _OPENING_QUOTES and bool(after) and after in _CLOSING_QUOTES
