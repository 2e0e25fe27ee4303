"""OIH service clients against the fake services: secrets, snapshots, data hub, governance."""

from __future__ import annotations

import pytest
from elasticio_sailor.dialects.oih.services import OihServices, SecretError, provenance_event, secret_to_cfg
from elasticio_sailor.testing.fake_oih import FakeOih

pytestmark = pytest.mark.timeout(60)


def services(url: str | None) -> OihServices:
    return OihServices(
        secret_service_url=url,
        snapshots_service_url=url,
        datahub_url=url,
        governance_service_url=url,
        timeout=5,
    )


def test_oauth_secret_merges_its_access_token(fake_oih: FakeOih) -> None:
    fake_oih.add_oauth_secret("s1", "oauth-token-1")
    cfg = services(fake_oih.url).fetch_secret("s1", "iam-key")
    assert cfg["accessToken"] == "oauth-token-1" and cfg["refreshToken"] == "r-oauth-token-1"
    (req,) = fake_oih.requests_to("/secrets/")
    assert req.path == "/secrets/s1" and req.authorization == "Bearer iam-key"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"type": "API_KEY", "value": {"key": "k-123", "headerName": "X"}},
            {"key": "k-123", "headerName": "X", "accessToken": "k-123"},
        ),
        (
            {"type": "MIXED", "value": {"payload": '{"access_token": "a-1", "server": "custom"}'}},
            {"access_token": "a-1", "server": "custom", "accessToken": "a-1"},
        ),
        ({"type": "MIXED", "value": {"payload": "not json"}}, {"payload": "not json"}),
        (
            {"type": "SIMPLE", "value": {"username": "u", "passphrase": "p"}},
            {"username": "u", "passphrase": "p"},
        ),
        (
            {"type": "MIXED", "value": {"payload": '{"accessToken": "x", "key": "y"}'}},
            {"accessToken": "x", "key": "y"},
        ),
    ],
)
def test_secret_types_map_to_cfg(data: dict, expected: dict) -> None:
    assert secret_to_cfg(data) == expected


def test_secret_failures_raise_without_leaking(fake_oih: FakeOih) -> None:
    svc = services(fake_oih.url)
    fake_oih.state.secret_status["s500"] = 500
    with pytest.raises(SecretError, match="answered 500") as info:
        svc.fetch_secret("s500", "iam-key-xyz")
    assert "iam-key-xyz" not in str(info.value)
    with pytest.raises(SecretError, match="answered 404"):
        svc.fetch_secret("missing", "iam")
    with pytest.raises(SecretError, match="ConnectionError"):
        services("http://127.0.0.1:9").fetch_secret("s", "iam")


def test_unset_urls_skip_everything_cleanly() -> None:
    svc = services(None)
    assert svc.fetch_secret("s", "k") is None
    assert svc.fetch_snapshot("f", "s", "k") is None
    assert svc.get_id_meta("o", None, "k") == (None, [])
    assert svc.upsert_datahub_entry("app", "r", None, "k") is None
    assert svc.apply_policy({}, None, "k") == (True, None)


def test_snapshot_found_missing_and_failing(fake_oih: FakeOih) -> None:
    svc = services(fake_oih.url)
    fake_oih.state.snapshots[("f", "s")] = {"count": 3}
    assert svc.fetch_snapshot("f", "s", "k") == {"count": 3}
    assert svc.fetch_snapshot("f", "other", "k") is None
    assert services("http://127.0.0.1:9").fetch_snapshot("f", "s", "k") is None
    assert [r.path for r in fake_oih.requests_to("/snapshots")] == [
        "/snapshots/flows/f/steps/s",
        "/snapshots/flows/f/steps/other",
    ]


def test_data_hub_lookup_and_upsert(fake_oih: FakeOih) -> None:
    svc = services(fake_oih.url)
    entry = svc.upsert_datahub_entry("intercom", "rec-1", None, "k")
    assert entry and entry["refs"] == [{"recordUid": "rec-1", "applicationUid": "intercom"}]
    assert svc.get_id_meta(None, "rec-1", "k") == (entry["id"], entry["refs"])
    assert svc.get_id_meta(entry["id"], None, "k")[0] == entry["id"]
    again = svc.upsert_datahub_entry("crm", "crm-9", entry["id"], "k")
    assert again and again["id"] == entry["id"] and len(again["refs"]) == 2
    assert svc.get_id_meta(None, "unknown", "k") == (None, [])
    assert svc.delete_datahub_record(entry["id"], "crm", "crm-9", "k") is True
    assert svc.delete_datahub_record(entry["id"], "crm", "crm-9", "k") is False


def test_policy_blocks_when_the_service_says_so(fake_oih: FakeOih) -> None:
    svc = services(fake_oih.url)
    assert svc.apply_policy({"data": {}}, "read", "k")[0] is True
    fake_oih.state.policy_passes = False
    assert svc.apply_policy({"data": {}}, "read", "k")[0] is False


@pytest.mark.parametrize(
    ("function", "delete", "expected"),
    [
        ("newContacts", None, "ObjectReceived"),
        ("createContact", None, "ObjectCreated"),
        ("updateContact", None, "ObjectUpdated"),
        ("deleteContact", None, "ObjectDeleted"),
        ("unknown", None, "Unknown"),
        ("createContact", "confirmed", "DeleteConfirmed"),
        ("createContact", "weird", "DeleteUnknown"),
    ],
)
def test_provenance_event_activity_types(function: str, delete: str | None, expected: str) -> None:
    comp = {
        "triggers": {"newContacts": {}},
        "actions": {"createContact": {}, "updateContact": {}, "deleteContact": {}},
    }
    event = provenance_event(
        oih_uid="o1",
        record_uid="r1",
        function=function,
        component_json=comp,
        connector_id="c1",
        flow_id="f1",
        user_id="u1",
        tenant_id="t1",
        start_time="2026-01-01T00:00:00.000Z",
        delete_type=delete,
        node_settings={"applicationUid": "intercom"},
    )
    assert event["activity"]["activityType"] == expected
    assert event["entity"] == {"id": "o1", "entityType": "oihUid", "alternateOf": ["r1"]}
    app = {"id": "c1", "agentType": "Application", "actedOnBehalfOf": "intercom"}
    assert event["actedOnBehalfOf"][-1] == app
