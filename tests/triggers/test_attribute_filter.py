"""The contacts trigger's attribute filter, whose dropdown is the data_attributes select model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib import select_models
from lib.triggers import contacts
from tests.in_process import ids, run

from .conftest import BASE

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def test_every_select_model_is_the_dropdown_of_some_step_field():
    component = json.loads((ROOT / "component.json").read_text())
    used = {
        field["model"]
        for kind in ("triggers", "actions")
        for spec in component[kind].values()
        for field in (spec.get("fields") or {}).values()
        if isinstance(field.get("model"), str)
    }
    assert set(select_models.__all__) - used == set()


def test_the_attribute_field_offers_contact_attributes_and_filters_on_one(fake, cfg):
    fake.add_data_attribute(name="plan", full_name="custom_attributes.plan", label="Plan", custom=True)
    pro = fake.add_contact(custom_attributes={"plan": "pro"}, updated_at=BASE + 1)["id"]
    fake.add_contact(custom_attributes={"plan": "free"}, updated_at=BASE + 2)
    seats = fake.add_contact(custom_attributes={"plan": "pro", "seats": 42}, updated_at=BASE + 3)["id"]
    component = json.loads((ROOT / "component.json").read_text())
    field = component["triggers"]["newOrUpdatedContacts"]["fields"]["attribute"]
    assert field["model"] == "data_attributes" and hasattr(contacts, "data_attributes")
    assert contacts.data_attributes(cfg) == {"custom_attributes.plan": "Plan (custom)"}

    result = run(
        contacts, {**cfg, "startTime": BASE, "attribute": "custom_attributes.plan", "attributeValue": "pro"}
    )
    assert ids(result) == [pro, seats]
    query = fake.requests[-1].body["query"]
    assert {"field": "custom_attributes.plan", "operator": "=", "value": "pro"} in query["value"]
    # A value that is JSON (a number, true/false, a quoted string) is sent as that JSON value.
    fake.clear_requests()
    result = run(
        contacts, {**cfg, "startTime": BASE, "attribute": "custom_attributes.seats", "attributeValue": "42"}
    )
    assert ids(result) == [seats]
    assert {"field": "custom_attributes.seats", "operator": "=", "value": 42} in fake.requests[-1].body[
        "query"
    ]["value"]


def test_an_attribute_without_a_value_is_a_clear_error(fake, cfg):
    with pytest.raises(ValueError, match="attributeValue"):
        run(contacts, {**cfg, "startTime": BASE, "attribute": "custom_attributes.plan"})
    assert fake.requests == []
