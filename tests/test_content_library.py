"""The content library: the shipped `responses/` and how the loader reports broken content.

Broken fixtures are copies of the real directory with one file replaced or edited, so every
test also proves that the other, untouched files load cleanly.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.content.check import main
from bot.content.loader import (
    REQUIRED_REPLIES,
    ContentError,
    check_library,
    load_library,
)
from bot.content.model import Library
from bot.nlu.intents import RISK_INTENTS

if TYPE_CHECKING:
    # Imported for annotations only: pytest would try to collect a class named Test*.
    from bot.content.model import Fact, Testimony

RESPONSES = Path(__file__).resolve().parent.parent / "responses"
TODAY = date(2026, 11, 25)

ONE_TESTIMONY = """\
testimonies:
  - id: one
    form: quote
    text: We could only shower once a week.
    claims: [claim_good_life]
    speaker: A returned fighter from Wolfsburg, Germany
    source:
      title: Better prison in Germany than freedom in Syria
      publisher: Deutsche Welle
      date: 2015-07-17
      url: https://www.dw.com/en/a-18591157
    language: en
    status: approved
    checked: 2026-11-25
"""


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library(RESPONSES)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of the shipped library to break."""
    target = tmp_path / "responses"
    shutil.copytree(RESPONSES, target)
    return target


def replace_in(directory: Path, name: str, old: str, new: str) -> Path:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found in {name}: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_library(directory)
    return caught.value.problems


# --- The shipped library -------------------------------------------------------------------


def test_the_shipped_library_has_no_errors() -> None:
    report = check_library(RESPONSES, today=TODAY)
    assert report.errors == []


def test_the_shipped_library_has_no_warnings_on_the_day_it_was_verified() -> None:
    assert check_library(RESPONSES, today=TODAY).warnings == []


def test_every_claim_has_two_approved_testimonies(library: Library) -> None:
    for intent in sorted(RISK_INTENTS):
        assert len(library.approved_testimonies(intent)) >= 2, intent


def test_every_approved_quote_was_checked_against_its_source(library: Library) -> None:
    quotes = [t for t in library.approved_testimonies() if t.form == "quote"]
    assert quotes
    for quote in quotes:
        assert quote.checked is not None, quote.id
        assert quote.source.url.startswith(("https://", "http://")), quote.id


def test_every_testimony_and_fact_carries_a_full_source(library: Library) -> None:
    items: list[Testimony | Fact] = [*library.testimonies, *library.facts]
    for item in items:
        source = item.source
        assert all((source.title, source.publisher, source.date, source.url)), item.id


def test_every_required_reply_is_present_and_fills_its_placeholders(library: Library) -> None:
    for key, allowed in REQUIRED_REPLIES.items():
        text = library.reply(key, **{name: f"<{name}>" for name in allowed})
        assert text.strip(), key
        assert not set("{}") & set(text), key


def test_command_descriptions_fit_the_telegram_menu(library: Library) -> None:
    for key in REQUIRED_REPLIES:
        if key.startswith("command_"):
            assert 0 < len(library.reply(key)) <= 256, key


def test_a_quote_is_shown_in_quotation_marks_and_a_paraphrase_as_a_summary(
    library: Library,
) -> None:
    values = {"text": "WORDS", "speaker": "SPEAKER", "source": "SOURCE"}
    quote = library.reply("testimony_quote", **values)
    paraphrase = library.reply("testimony_paraphrase", **values)
    assert "“WORDS”" in quote
    assert "WORDS" in paraphrase
    for mark in '"“”«»':
        assert f"{mark}WORDS" not in paraphrase
        assert f"WORDS{mark}" not in paraphrase
    assert "summary" in paraphrase.casefold()
    assert "SPEAKER" in quote
    assert "SOURCE" in paraphrase


def test_the_welcome_says_it_is_a_bot_and_not_the_police(library: Library) -> None:
    text = library.reply("welcome", operator="the team", retention_days="90").casefold()
    assert "bot" in text
    assert "not a person" in text
    assert "not the police" in text
    assert "90 days" in text
    assert "/forget" in text


def test_crisis_replies_ask_whether_the_person_is_safe(library: Library) -> None:
    assert "are you safe right now" in library.reply("safety_self_harm").casefold()
    assert "in danger right now" in library.reply("safety_violence").casefold()


def test_every_covered_country_has_an_emergency_number_and_a_crisis_or_exit_line(
    library: Library,
) -> None:
    for code in ("DE", "GB", "FR", "BE", "NL", "AU", "US"):
        local = [r for r in library.approved_resources(code, ("emergency",)) if r.country == code]
        assert local, code
        support = library.approved_resources(code, ("crisis", "exit", "family"))
        assert any(r.country == code for r in support), code


def test_country_aliases_find_their_country(library: Library) -> None:
    for alias, code in (("england", "GB"), ("UK", "GB"), ("Deutschland", "DE"), ("usa", "US")):
        country = library.country_by_alias(alias)
        assert country is not None, alias
        assert country.code == code, alias


def test_draft_items_are_not_served(library: Library) -> None:
    not_approved = {t.id for t in library.testimonies if t.status != "approved"}
    assert not_approved, "the shipped library keeps some items in review"
    served = {t.id for t in library.approved_testimonies()}
    assert served
    assert not served & not_approved
    for intent in RISK_INTENTS:
        assert all(t.status == "approved" for t in library.approved_testimonies(intent))
    drafts = {r.id for r in library.resources if r.status != "approved"}
    every_kind = ("exit", "family", "crisis", "emergency")
    for code in (None, "DE", "US"):
        assert not {r.id for r in library.approved_resources(code, every_kind)} & drafts


def test_resources_fall_back_to_global(library: Library) -> None:
    kinds = ("crisis", "emergency")
    elsewhere = library.approved_resources("IE", kinds)
    assert elsewhere
    assert all(r.country == "global" for r in elsewhere)
    assert library.approved_resources(None, kinds) == elsewhere
    in_germany = library.approved_resources("DE", kinds)
    countries = [r.country for r in in_germany]
    assert countries[0] == "DE"
    assert countries[-1] == "global"
    assert countries.index("global") > max(i for i, c in enumerate(countries) if c == "DE")


def test_check_prints_a_summary_and_exits_zero_for_the_shipped_library(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(RESPONSES) == 0
    out = capsys.readouterr().out
    assert "0 errors" in out
    for intent in RISK_INTENTS:
        assert intent in out


# --- Broken content is reported with file and line ----------------------------------------


def test_a_missing_source_is_reported_with_file_and_line(copy: Path) -> None:
    path = copy / "testimonies.yml"
    source_block = ONE_TESTIMONY[
        ONE_TESTIMONY.index("    source:") : ONE_TESTIMONY.index("    lang")
    ]
    path.write_text(ONE_TESTIMONY.replace(source_block, ""), encoding="utf-8")
    problems = problems_of(copy)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:{line_of(path, '- id: one')}: ")
    assert "testimony 'one'" in problems[0]
    assert "'source'" in problems[0]


def test_a_missing_source_field_is_reported_at_the_source(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(ONE_TESTIMONY.replace("      publisher: Deutsche Welle\n", ""), "utf-8")
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:{line_of(path, 'source:')}: ")
    assert "'publisher'" in problem


def test_broken_yaml_gives_a_clear_error(copy: Path) -> None:
    path = copy / "facts.yml"
    path.write_text("facts:\n  - id: a\n    text: [unclosed\n  - id: b\n", encoding="utf-8")
    problems = problems_of(copy)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:")
    assert "YAML syntax error" in problems[0]
    line = int(problems[0].split(":")[1])
    assert 3 <= line <= 5


def test_an_empty_file_gives_one_clear_error(copy: Path) -> None:
    path = copy / "replies.yml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert problems_of(copy) == [f"{path}:1: the file is empty; expected a mapping with 'replies:'"]


def test_a_missing_file_is_reported(copy: Path) -> None:
    (copy / "facts.yml").unlink()
    assert problems_of(copy) == [f"{copy / 'facts.yml'}: file is missing"]


def test_unknown_placeholder_in_reply_is_an_error(copy: Path) -> None:
    path = replace_in(
        copy, "replies.yml", "Hi, good to hear from you.", "Hi {first_name}, good to hear from you."
    )
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:{line_of(path, 'greet:')}: ")
    assert "'greet'" in problem
    assert "{first_name}" in problem


def test_a_placeholder_allowed_elsewhere_is_still_an_error(copy: Path) -> None:
    replace_in(copy, "replies.yml", "I'm a bot, a computer program", "I'm {operator}'s bot")
    load_library(copy)  # 'identity' allows {operator}
    replace_in(copy, "replies.yml", "Take care.", "Take care, from {operator}.")
    [problem] = problems_of(copy)
    assert "'goodbye'" in problem
    assert "{operator}" in problem
    assert "allowed: none" in problem


def test_a_missing_reply_is_an_error(copy: Path) -> None:
    path = replace_in(copy, "replies.yml", "  button_safe_no: I'm not safe\n", "")
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:")
    assert "missing required reply 'button_safe_no'" in problem


def test_a_reply_read_as_yes_or_no_must_be_quoted(copy: Path) -> None:
    replace_in(copy, "replies.yml", "button_forget_no: No, keep it", "button_forget_no: no")
    [problem] = problems_of(copy)
    assert "'button_forget_no'" in problem
    assert "quotes" in problem


def test_a_quote_with_unbalanced_quotation_marks_is_an_error(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(
        ONE_TESTIMONY.replace(
            "text: We could only shower once a week.",
            "text: 'We could only shower “once a week.'",
        ),
        encoding="utf-8",
    )
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:{line_of(path, 'text:')}: ")
    assert "unbalanced quotation marks" in problem


def test_a_quote_wrapped_in_quotation_marks_is_an_error(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(
        ONE_TESTIMONY.replace(
            "text: We could only shower once a week.",
            "text: '“We could only shower once a week.”'",
        ),
        encoding="utf-8",
    )
    [problem] = problems_of(copy)
    assert "the layout adds them" in problem


def test_an_unknown_claim_is_reported_at_its_line(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(
        ONE_TESTIMONY.replace(
            "claims: [claim_good_life]", "claims:\n      - claim_good_life\n      - claim_good_food"
        ),
        encoding="utf-8",
    )
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:{line_of(path, '- claim_good_food')}: ")
    assert "unknown claims item 'claim_good_food'" in problem


def test_wrong_status_date_and_url_are_each_reported(copy: Path) -> None:
    path = copy / "testimonies.yml"
    broken = (
        ONE_TESTIMONY.replace("status: approved", "status: published")
        .replace("date: 2015-07-17", "date: 2015-13")
        .replace("url: https://www.dw.com/en/a-18591157", "url: www.dw.com")
        .replace("checked: 2026-11-25", "checked: yesterday")
    )
    path.write_text(broken, encoding="utf-8")
    problems = problems_of(copy)
    assert len(problems) == 4
    for needle, message in (
        ("status:", "'published'"),
        ("date:", "2015-13"),
        ("url:", "https://"),
        ("checked:", "'checked'"),
    ):
        assert any(
            p.startswith(f"{path}:{line_of(path, needle)}: ") and message in p for p in problems
        ), needle


def test_a_typo_in_a_field_name_is_an_error(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(ONE_TESTIMONY.replace("    language: en", "    langauge: en"), "utf-8")
    problems = problems_of(copy)
    assert any("unknown field 'langauge'" in p for p in problems)
    assert any("missing required field 'language'" in p for p in problems)


def test_duplicate_ids_are_errors(copy: Path) -> None:
    path = copy / "testimonies.yml"
    path.write_text(ONE_TESTIMONY + ONE_TESTIMONY.removeprefix("testimonies:\n"), "utf-8")
    [problem] = problems_of(copy)
    second = path.read_text(encoding="utf-8").splitlines().index("  - id: one", 2) + 1
    assert problem.startswith(f"{path}:{second}: ")
    assert "duplicate id 'one'" in problem


def test_a_duplicate_reply_key_is_an_error(copy: Path) -> None:
    path = copy / "replies.yml"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("  greet: Hello again\n")
    [problem] = problems_of(copy)
    assert "duplicate key 'greet'" in problem


def test_a_resource_for_an_unlisted_country_is_an_error(copy: Path) -> None:
    path = replace_in(
        copy,
        "resources.yml",
        "    kind: crisis\n    country: GB",
        "    kind: crisis\n    country: IE",
    )
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:")
    assert "country 'IE' is not listed" in problem


def test_an_unquoted_phone_number_is_an_error(copy: Path) -> None:
    replace_in(copy, "resources.yml", 'phone: "3114"', "phone: 3114")
    [problem] = problems_of(copy)
    assert "'phone'" in problem
    assert "quotes" in problem


def test_an_approved_resource_needs_a_verification_date(copy: Path) -> None:
    path = replace_in(
        copy,
        "resources.yml",
        "    hours: 24 hours, every day\n    last_verified: 2026-11-25\n",
        "    hours: 24 hours, every day\n",
    )
    [problem] = problems_of(copy)
    assert problem.startswith(f"{path}:")
    assert "needs 'last_verified'" in problem


def test_all_problems_are_reported_at_once(copy: Path) -> None:
    replace_in(copy, "facts.yml", "    status: approved", "    status: done")
    replace_in(copy, "replies.yml", "Okay, nothing was deleted.", "Okay {name}.")
    problems = problems_of(copy)
    assert any("facts.yml" in p for p in problems)
    assert any("replies.yml" in p for p in problems)
    assert "2 problems" in str(ContentError(problems[:2]))


def test_check_exits_one_and_prints_the_errors(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(copy, "facts.yml", "language: en", "language: English")
    assert main(copy) == 1
    out = capsys.readouterr().out
    assert "error: " in out
    assert "facts.yml:" in out
    assert "ISO 639-1" in out
    assert "1 error" in out


# --- Warnings ------------------------------------------------------------------------------


def test_a_claim_with_too_few_approved_testimonies_is_a_warning(copy: Path) -> None:
    (copy / "testimonies.yml").write_text(ONE_TESTIMONY, encoding="utf-8")
    report = check_library(copy, today=TODAY)
    assert report.errors == []
    assert any("'claim_good_life' has 1 approved testimony" in w for w in report.warnings)
    assert any("'claim_religious_duty' has 0 approved testimonies" in w for w in report.warnings)


def test_stale_resources_and_draft_crisis_lines_are_warnings(copy: Path) -> None:
    verified = "    hours: 24/7\n    last_verified: 2026-11-25\n"
    replace_in(
        copy, "resources.yml", f"{verified}    status: approved", f"{verified}    status: draft"
    )
    report = check_library(copy, today=date(2028, 1, 1))
    assert report.errors == []
    assert any("over 365 days ago" in w for w in report.warnings)
    assert any("crisis line is draft" in w for w in report.warnings)


def test_a_layout_that_drops_the_testimony_text_is_an_error(copy: Path) -> None:
    replace_in(copy, "replies.yml", "    “{text}”\n", "")
    [problem] = problems_of(copy)
    assert "'testimony_quote' must contain {text}" in problem


def test_a_paraphrase_layout_in_quotation_marks_is_an_error(copy: Path) -> None:
    replace_in(copy, "replies.yml", "(not their exact words): {text}", "“{text}”")
    [problem] = problems_of(copy)
    assert "must not put {text} in quotes" in problem
