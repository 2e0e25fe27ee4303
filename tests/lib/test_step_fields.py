"""The step-field rules of lib/step_fields.py: one reading of choices and numbers for actions and triggers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lib import step_fields
from lib.intercom.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "emitPage"),
        ("", "emitPage"),
        ("fetchAll", "fetchAll"),
        (" EMITINDIVIDUALLY ", "emitIndividually"),
    ],
)
def test_emit_behaviour_ignores_case_and_blanks_and_answers_its_own_spelling(
    value: Any, expected: str
) -> None:
    assert step_fields.emit_behaviour({"emitBehaviour": value}, "emitPage") == expected


@pytest.mark.parametrize("value", ["everything", "emit page", 1, True, ["emitPage"]])
def test_an_unknown_emit_behaviour_names_the_field_and_the_choices(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        step_fields.emit_behaviour({"emitBehaviour": value}, "emitIndividually")
    assert info.value.field == "emitBehaviour"
    assert str(info.value).startswith(
        "Field 'emitBehaviour' must be one of emitPage, emitIndividually, fetchAll;"
    )


def test_every_emit_behaviour_select_offers_exactly_the_known_choices() -> None:
    component = json.loads((ROOT / "component.json").read_text(encoding="utf-8"))
    selects = [
        entry["fields"]["emitBehaviour"]["model"]
        for kind in ("actions", "triggers")
        for entry in component[kind].values()
        if "emitBehaviour" in (entry.get("fields") or {})
    ]
    assert selects and all(set(model) == set(step_fields.EMIT_BEHAVIOURS) for model in selects)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 7), ("", 7), (3, 3), ("3", 3), (" 3 ", 3), (3.0, 3), ("1e3", 1000), ("-5", -5)],
)
def test_a_whole_number_comes_as_a_number_or_its_text(value: Any, expected: int) -> None:
    assert step_fields.integer({"n": value}, "n", 7) == expected


def test_digits_are_read_exactly() -> None:
    assert step_fields.whole_number("123456789012345678901", "id") == 123456789012345678901


@pytest.mark.parametrize("value", ["ten", "2.5", 2.5, True, False, "inf", "-inf", "nan", "1e400", [1], {}])
def test_what_is_not_a_whole_number_is_refused_naming_the_field_and_the_rule(value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        step_fields.integer({"pageSize": value}, "pageSize", 10)
    assert info.value.field == "pageSize"
    assert str(info.value).startswith("Field 'pageSize' must be a whole number;")


@pytest.mark.parametrize(
    ("bounds", "value", "rule"),
    [
        ({"minimum": 1}, "0", "a whole number of at least 1"),
        ({"maximum": 10}, 11, "a whole number of at most 10"),
        ({"minimum": 0, "maximum": 10}, -1, "a whole number from 0 to 10"),
    ],
)
def test_bounds_are_part_of_the_rule(bounds: dict[str, int], value: Any, rule: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^Field 'n' must be {rule}; got "):
        step_fields.integer({"n": value}, "n", 5, **bounds)
    assert step_fields.integer({"n": 5}, "n", 0, **bounds) == 5


@pytest.mark.parametrize("value", ["soon", "nan", "1e400", True, 0, 3601])
def test_a_number_is_finite_and_within_its_bounds(value: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^Field 'requestTimeout' must be a number from 0\.001 to 3600; got "
    ):
        step_fields.number({"requestTimeout": value}, "requestTimeout", 30.0, minimum=0.001, maximum=3600)
    assert (
        step_fields.number({"requestTimeout": "2.5"}, "requestTimeout", 30.0, minimum=0.001, maximum=3600)
        == 2.5
    )
