"""Checking one change to the database-backed library with the loader's rules.

There is one set of rules: `bot.content.loader`. A change (a new revision, an approval, a
retirement) is checked by building the library as it would be after the change, running
`check_documents` on it, and keeping the errors the change adds. Errors that belong to the
changed item are reported by field ("text", "source.url"), so the editor can show them next
to the field; the rest (e.g. a required reply that would go missing) are general.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.content.documents import KIND_FILE, ItemRecord, build_documents
from bot.content.loader import CheckReport, ContentError, check_documents

_LABEL = re.compile(r"^[a-z]+ '[^']*'(?: source)?: ")


@dataclass(frozen=True)
class ValidationResult:
    """What a change would break: errors by field of the changed item, and the others."""

    field_errors: dict[str, list[str]] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.field_errors and not self.general_errors

    def messages(self) -> list[str]:
        """Every error as one line naming its field, for logs and the command line."""
        lines = [f"{name}: {m}" for name, ms in self.field_errors.items() for m in ms]
        return lines + self.general_errors


class InvalidChange(ContentError):
    """The change would make the library invalid; `result` says where."""

    def __init__(self, result: ValidationResult) -> None:
        self.result = result
        super().__init__(result.messages())


def replace_record(
    records: Sequence[ItemRecord], changed: ItemRecord | None, kind: str, key: str
) -> list[ItemRecord]:
    """`records` with the item (kind, key) replaced by `changed` (added at the end if new;
    removed if `changed` is None)."""
    result: list[ItemRecord] = []
    found = False
    for record in records:
        if (record.kind, record.key) == (kind, key):
            found = True
            if changed is not None:
                result.append(changed)
        else:
            result.append(record)
    if not found and changed is not None:
        result.append(changed)
    return result


def check_records(records: Sequence[ItemRecord], today: date | None = None) -> CheckReport:
    return check_documents(build_documents(records), today)


def validate_change(
    baseline: Sequence[ItemRecord],
    kind: str,
    key: str,
    changed: ItemRecord | None,
    today: date | None = None,
) -> ValidationResult:
    """The errors that replacing (kind, key) in `baseline` by `changed` would add."""
    before = {str(p) for p in check_records(baseline, today).error_problems}
    after = check_records(replace_record(baseline, changed, kind, key), today)
    field_errors: dict[str, list[str]] = {}
    general: list[str] = []
    for problem in after.error_problems:
        if str(problem) in before:
            continue
        mine = problem.item == key and problem.path.name == KIND_FILE[kind]
        if mine and problem.field:
            message = _LABEL.sub("", problem.message)
            field_errors.setdefault(problem.field, []).append(message)
        else:
            general.append(problem.message)
    warnings = [
        p.message
        for p in after.warning_problems
        if p.item == key and p.path.name == KIND_FILE[kind]
    ]
    return ValidationResult(field_errors, general, warnings)
