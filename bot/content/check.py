"""`python -m bot content check`: validate `responses/` and print what the content team must fix.

Errors stop `content import` (exit code 1); the editor applies the same rules to each change
in the database. Warnings are things to look at before a campaign (thin claims, stale phone
numbers, crisis lines still in draft).
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.content.loader import CheckReport, check_library
from bot.nlu.intents import RISK_INTENTS


def main(directory: Path) -> int:
    """Print every error and warning, then a one-line summary; 1 if there are errors."""
    report = check_library(directory)
    for error in report.errors:
        print(f"error: {error}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(summary(report))
    return 1 if report.errors else 0


def summary(report: CheckReport) -> str:
    """One line: problem counts, approved testimonies per claim, approved facts and resources."""
    library = report.library
    per_claim = ", ".join(
        f"{intent} {len(library.approved_testimonies(intent))}" for intent in sorted(RISK_INTENTS)
    )
    resources = sum(1 for r in library.resources if r.status == "approved")
    verdict = "FAILED" if report.errors else "ok"
    return (
        f"content check {verdict}: {_count(len(report.errors), 'error')}, "
        f"{_count(len(report.warnings), 'warning')}; approved testimonies per claim: {per_claim}; "
        f"{_count(len(library.approved_facts()), 'approved fact')}, "
        f"{_count(resources, 'approved resource')}"
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "responses"
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else default))
