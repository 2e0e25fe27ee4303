"""nodeSettings.applyTransform with JSONata (jsonata-python), as the ferryman's transformer."""

from __future__ import annotations

from elasticio_sailor.dialects.oih import transform

MSG = {"data": {"first": "Ada", "last": "Lovelace"}, "metadata": {"recordUid": "r1"}, "attachments": {}}


def test_before_transforms_the_whole_message() -> None:
    ns = {
        "applyTransform": "before",
        "transformFunction": '{"data": {"name": data.first & " " & data.last}, "metadata": metadata}',
    }
    assert transform.before(MSG, ns) == {"data": {"name": "Ada Lovelace"}, "metadata": {"recordUid": "r1"}}
    assert transform.after(MSG, ns) == MSG  # "before" only


def test_after_prefers_the_second_function_and_both_runs_both() -> None:
    ns = {
        "applyTransform": "both",
        "transformFunction": '{"data": {"x": data.first}}',
        "secondTransformFunction": '{"data": {"y": data.last}}',
    }
    assert transform.before(MSG, ns) == {"data": {"x": "Ada"}}
    assert transform.after(MSG, ns) == {"data": {"y": "Lovelace"}}
    ns.pop("secondTransformFunction")
    assert transform.after(MSG, ns) == {"data": {"x": "Ada"}}


def test_not_configured_or_broken_leaves_the_message_unchanged() -> None:
    assert transform.before(MSG, {}) is MSG
    assert transform.before(MSG, {"applyTransform": "before"}) is MSG
    assert transform.after(MSG, {"applyTransform": False, "transformFunction": "data"}) is MSG
    assert transform.before(MSG, {"applyTransform": "before", "transformFunction": "{{{"}) is MSG
    assert transform.after(MSG, {"applyTransform": "after", "transformFunction": "$error('x')"}) is MSG
