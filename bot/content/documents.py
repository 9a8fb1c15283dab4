"""Between the YAML folder (`responses/`) and content items, in both directions.

The database holds the library as items (`ItemRecord`); the YAML layout stays the format for
import, export and review in git. Both directions go through the loader's rules: a folder is
imported only if `check_library` finds no error, and items are validated by building the same
four documents and calling `check_documents`. Comments written above an item (where a quote was
checked, why a date is missing) travel with it as the item's comment, so a round trip keeps
them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.content.loader import (
    FACTS_FILE,
    FILES,
    REPLIES_FILE,
    RESOURCE_FIELDS,
    RESOURCES_FILE,
    TESTIMONIES_FILE,
    TESTIMONY_FIELDS,
    ContentError,
    check_library,
    lines_of,
    parse_yaml,
)

KIND_FILE: Mapping[str, str] = {
    "testimony": TESTIMONIES_FILE,
    "fact": FACTS_FILE,
    "resource": RESOURCES_FILE,
    "country": RESOURCES_FILE,
    "reply": REPLIES_FILE,
}
"""Which file of `responses/` holds each kind."""

KIND_LIST: Mapping[str, str] = {
    "testimony": "testimonies",
    "fact": "facts",
    "resource": "resources",
    "country": "countries",
}
"""The top-level list of each kind (replies are a mapping of key: text)."""

KEY_FIELD: Mapping[str, str] = {"country": "code"}
"""The field naming an item in the YAML; `id` unless listed."""

FIELD_ORDER: Mapping[str, tuple[str, ...]] = {
    "testimony": TESTIMONY_FIELDS,
    "fact": ("id", "text", "topics", "source", "language", "status"),
    "resource": RESOURCE_FIELDS,
    "country": ("code", "name", "aliases"),
}
SOURCE_ORDER = ("title", "publisher", "date", "url")
HAS_STATUS = ("testimony", "fact", "resource")
"""Kinds whose YAML carries a workflow status; replies and countries are live or absent."""

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ItemRecord:
    """One content item as the YAML holds it: fields without the key and the status."""

    kind: str
    key: str
    data: dict[str, Any]
    status: str = "approved"
    comment: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Anything a caller wants to carry along (e.g. the revision it came from)."""


# --- reading a folder ----------------------------------------------------------------------


def read_items(directory: Path) -> list[ItemRecord]:
    """Every item of the folder, in file order; raises `ContentError` if the folder has errors."""
    report = check_library(directory)
    if report.errors:
        raise ContentError(report.errors)
    records: list[ItemRecord] = []
    for name in (TESTIMONIES_FILE, FACTS_FILE, RESOURCES_FILE, REPLIES_FILE):
        text = (directory / name).read_text(encoding="utf-8")
        records += _records_of_file(name, text)
    return records


def _records_of_file(name: str, text: str) -> list[ItemRecord]:
    document = parse_yaml(text)
    lines = text.splitlines()
    _, _, top_lines = lines_of(document)
    boundaries = sorted({*top_lines.values(), len(lines) + 1})
    records: list[ItemRecord] = []
    for kind, file_name in KIND_FILE.items():
        if file_name != name:
            continue
        if kind == "reply":
            replies = document["replies"]
            _, _, key_lines = lines_of(replies)
            keys = list(replies)
            starts = [key_lines[k] for k in keys]
            comments = _comments(lines, starts, _end_after(boundaries, top_lines["replies"]))
            for key, comment in zip(keys, comments, strict=True):
                records.append(ItemRecord("reply", key, {"text": replies[key]}, comment=comment))
            continue
        list_name = KIND_LIST[kind]
        items = document[list_name]
        _, starts, _ = lines_of(items)
        comments = _comments(lines, starts, _end_after(boundaries, top_lines[list_name]))
        for item, comment in zip(items, comments, strict=True):
            plain = json.loads(json.dumps(item))
            key = plain.pop(KEY_FIELD.get(kind, "id"))
            status = plain.pop("status", "approved")
            records.append(ItemRecord(kind, key, plain, status, comment))
    return records


def _end_after(boundaries: list[int], line: int) -> int:
    """The first top-level key line (or end of file + 1) after `line`."""
    return next(b for b in boundaries if b > line)


def _comments(lines: list[str], starts: list[int], end: int) -> list[str | None]:
    """For each item starting at `starts[i]` (1-based), the comments that belong to it.

    The comment lines directly above an item (blank lines between blocks allowed) are its own;
    comment lines inside an item are added after them, so no note is lost.
    """
    found: list[list[str]] = [[] for _ in starts]
    bounds = [*starts, end]
    for index, start in enumerate(starts):
        above: list[str] = []
        line = start - 1
        while line >= 1 and _is_comment_or_blank(lines[line - 1]):
            above.insert(0, lines[line - 1])
            line -= 1
        found[index] = _comment_text(above)
        # Comments inside this item: between its first line and the next item's leading block.
        following = bounds[index + 1]
        last = following - 1
        while last > start and _is_comment_or_blank(lines[last - 1]):
            last -= 1
        if index == len(starts) - 1:
            last = following - 1  # the last item also keeps trailing comments
        inner = [lines[n - 1] for n in range(start + 1, last + 1) if _is_comment(lines[n - 1])]
        found[index] += _comment_text(inner)
    return ["\n".join(c) if c else None for c in found]


def _is_comment(line: str) -> bool:
    return line.strip().startswith("#")


def _is_comment_or_blank(line: str) -> bool:
    return not line.strip() or _is_comment(line)


def _comment_text(lines: list[str]) -> list[str]:
    text = [line.strip()[1:].removeprefix(" ") if line.strip() else "" for line in lines]
    while text and not text[0]:
        text.pop(0)
    while text and not text[-1]:
        text.pop()
    return text


# --- building the documents the loader checks ----------------------------------------------


def build_documents(records: Iterable[ItemRecord]) -> dict[str, dict[str, Any]]:
    """The four documents, by file name, as `yaml.safe_load` would return them."""
    documents: dict[str, dict[str, Any]] = {
        TESTIMONIES_FILE: {"testimonies": []},
        FACTS_FILE: {"facts": []},
        RESOURCES_FILE: {"countries": [], "resources": []},
        REPLIES_FILE: {"replies": {}},
    }
    for record in records:
        name = KIND_FILE[record.kind]
        if record.kind == "reply":
            documents[name]["replies"][record.key] = record.data.get("text")
        else:
            documents[name][KIND_LIST[record.kind]].append(as_yaml_item(record))
    return documents


def as_yaml_item(record: ItemRecord) -> dict[str, Any]:
    """The item's YAML mapping: key field, fields in the files' usual order, status."""
    values = {KEY_FIELD.get(record.kind, "id"): record.key, **record.data}
    if record.kind in HAS_STATUS:
        values["status"] = record.status
    order = FIELD_ORDER[record.kind]
    ordered = {k: values[k] for k in order if k in values and values[k] is not None}
    ordered.update({k: v for k, v in values.items() if k not in ordered and v is not None})
    if isinstance(ordered.get("source"), dict):
        source = ordered["source"]
        ordered["source"] = {k: source[k] for k in SOURCE_ORDER if k in source} | {
            k: v for k, v in source.items() if k not in SOURCE_ORDER
        }
    return ordered


# --- writing a folder ----------------------------------------------------------------------


def write_items(directory: Path, records: Iterable[ItemRecord]) -> list[Path]:
    """Write the four files of `directory` from `records` (in order); returns the paths.

    Each file keeps the comment block at the top of the existing file (the rules for the
    content team). Files are replaced atomically, so a reader never sees half a file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    by_file: dict[str, list[ItemRecord]] = {name: [] for name in FILES}
    for record in records:
        by_file[KIND_FILE[record.kind]].append(record)
    written = []
    for name in FILES:
        path = directory / name
        body = _render_file(name, by_file[name])
        text = _header(path) + body
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        written.append(path)
    return written


def _header(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    header = []
    for line in lines:
        if line.strip() and not _is_comment(line):
            break
        header.append(line)
    while header and not header[-1].strip():
        header.pop()
    if not header:
        header = ["# Written by `python -m bot content export` from the database."]
    return "\n".join(header) + "\n\n"


def _render_file(name: str, records: list[ItemRecord]) -> str:
    if name == REPLIES_FILE:
        return "replies:\n" + "".join(_render_reply(r) for r in records)
    parts = []
    for kind, list_name in KIND_LIST.items():
        if KIND_FILE[kind] != name:
            continue
        items = [r for r in records if r.kind == kind]
        parts.append(f"{list_name}:\n" + "\n".join(_render_item(r) for r in items))
        if not items:
            parts[-1] = f"{list_name}: []\n"
    return "\n".join(parts)


def _render_comment(comment: str | None, indent: str) -> str:
    if not comment:
        return ""
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in comment.splitlines())


def _render_item(record: ItemRecord) -> str:
    item = _for_dump(as_yaml_item(record))
    dumped = yaml.dump([item], Dumper=_Dumper, **_DUMP_OPTIONS)
    body = "".join(f"  {line}\n" if line else "\n" for line in dumped.splitlines())
    return _render_comment(record.comment, "  ") + body


def _render_reply(record: ItemRecord) -> str:
    dumped = yaml.dump({record.key: record.data.get("text")}, Dumper=_Dumper, **_DUMP_OPTIONS)
    body = "".join(f"  {line}\n" if line else "\n" for line in dumped.splitlines())
    return "\n" + _render_comment(record.comment, "  ") + body


def _for_dump(value: Any) -> Any:
    """Full dates as dates, so they are written plain (2026-11-25) rather than quoted."""
    if isinstance(value, dict):
        return {k: _for_dump(v) for k, v in value.items()}
    if isinstance(value, str) and _DAY.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


_DUMP_OPTIONS: dict[str, Any] = {
    "allow_unicode": True,
    "sort_keys": False,
    "width": 92,
    "default_flow_style": False,
}


class _Dumper(yaml.SafeDumper):
    """Block scalars for long or multi-line text, flow lists for short names."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and all(line == line.rstrip() for line in value.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if len(value) > 80 and "\n" not in value and value == value.strip() and "  " not in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flow = all(isinstance(v, str) and len(v) < 40 for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _represent_text)
_Dumper.add_representer(list, _represent_list)
