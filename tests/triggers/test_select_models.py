"""Select models against the fake Intercom on loopback: value -> label for each dropdown."""

from __future__ import annotations

import pytest

from lib import select_models

pytestmark = pytest.mark.timeout(30)


def test_admins(fake, cfg):
    fake.add_admin(id="11", name="Ada", email="ada@example.com")
    fake.add_admin(id="12", name="Bob", email=None)
    assert select_models.admins(cfg) == {"11": "Ada (ada@example.com)", "12": "Bob"}


def test_teams(fake, cfg):
    fake.add_team(id="21", name="Support")
    fake.add_team(id="22", name="Sales")
    assert select_models.teams(cfg) == {"21": "Support", "22": "Sales"}


def test_tags(fake, cfg):
    fake.add_tag(id="31", name="VIP")
    assert select_models.tags(cfg) == {"31": "VIP"}


def test_segments(fake, cfg):
    s1 = fake.add_segment(name="Active", person_type="user")["id"]
    s2 = fake.add_segment(name="Warm", person_type="lead")["id"]
    assert select_models.segments(cfg) == {s1: "Active (users)", s2: "Warm (leads)"}


def test_subscription_types(fake, cfg):
    fake.add_subscription_type(id="41", default_translation={"name": "Newsletter", "locale": "en"})
    assert select_models.subscription_types(cfg) == {"41": "Newsletter"}


def test_data_attributes_lists_contact_attributes_only(fake, cfg):
    fake.add_data_attribute(name="plan", full_name="custom_attributes.plan", label="Plan", custom=True)
    fake.add_data_attribute(name="email", full_name="email", label="Email", custom=False)
    fake.add_data_attribute(name="gone", full_name="custom_attributes.gone", label="Gone", archived=True)
    fake.add_data_attribute(name="size", full_name="size", label="Size", model="company")
    assert select_models.data_attributes(cfg) == {"custom_attributes.plan": "Plan (custom)", "email": "Email"}
    assert fake.requests[-1].query.get("model") == "contact"


def test_help_centers(fake, cfg):
    fake.add_help_center(id="51", display_name="Docs")
    assert select_models.help_centers(cfg) == {"51": "Docs"}


def test_collections_follow_every_page(fake, cfg):
    made = {fake.add_collection(name=f"Collection {i}")["id"]: f"Collection {i}" for i in range(160)}
    assert select_models.collections(cfg) == made
    assert len([r for r in fake.requests if r.path == "/help_center/collections"]) == 2  # 150 + 10
