"""The OIH dialect's secret cache and snapshot rule, over real HTTP to the fake OIH services.

What must hold: a secret is fetched once per (secretId, apiKey) within the cache time and again after it;
a rotated secret is picked up at once when the component reports the credentials rejected (and only then
retried); a failed fetch is never cached; the snapshot is fetched for triggers and opted-in actions only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from elasticio_sailor.credentials import credentials_rejected
from elasticio_sailor.dialects.base import Delivery
from elasticio_sailor.dialects.oih.dialect import OihDialect
from elasticio_sailor.dialects.oih.services import OihServices, SecretCache, SecretError
from elasticio_sailor.dialects.oih.settings import OihSettings
from elasticio_sailor.env import SettingsError
from elasticio_sailor.testing.fake_oih import FakeOih
from elasticio_sailor.testing.oih import OihTopology, make_token, token_claims


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def secret_gets(oih: FakeOih, secret_id: str) -> int:
    return len(oih.requests_to(f"/secrets/{secret_id}"))


@pytest.fixture
def oih():
    with FakeOih() as services:
        services.add_oauth_secret("s1", "token-v1")
        yield services


def cache_for(oih: FakeOih, ttl: float, clock: Clock) -> SecretCache:
    return SecretCache(OihServices(secret_service_url=oih.url).fetch_secret, ttl, clock)


def test_a_secret_is_fetched_once_within_the_cache_time_and_again_after_it(oih: FakeOih) -> None:
    clock = Clock()
    cache = cache_for(oih, 60, clock)
    for _ in range(5):
        values, found = cache.get("s1", "iam-1")
        assert values["accessToken"] == "token-v1" and "token-v1" in found
    assert secret_gets(oih, "s1") == 1
    oih.add_oauth_secret("s1", "token-v2")  # rotated in the secret service
    clock.now += 59.9
    assert cache.get("s1", "iam-1")[0]["accessToken"] == "token-v1"  # still within the cache time
    clock.now += 0.2
    assert cache.get("s1", "iam-1")[0]["accessToken"] == "token-v2"
    assert secret_gets(oih, "s1") == 2


def test_each_api_key_fetches_for_itself(oih: FakeOih) -> None:
    cache = cache_for(oih, 60, Clock())
    cache.get("s1", "iam-1")
    cache.get("s1", "iam-2")
    cache.get("s1", "iam-1")
    assert [r.authorization for r in oih.requests_to("/secrets/s1")] == ["Bearer iam-1", "Bearer iam-2"]


def test_zero_seconds_fetches_for_every_message(oih: FakeOih) -> None:
    cache = cache_for(oih, 0, Clock())
    for _ in range(3):
        cache.get("s1", "iam-1")
    assert secret_gets(oih, "s1") == 3


def test_a_failed_fetch_is_not_cached(oih: FakeOih) -> None:
    cache = cache_for(oih, 60, Clock())
    oih.state.secret_status["s1"] = 503
    with pytest.raises(SecretError, match="answered 503"):
        cache.get("s1", "iam-1")
    del oih.state.secret_status["s1"]
    assert cache.get("s1", "iam-1")[0]["accessToken"] == "token-v1"
    assert secret_gets(oih, "s1") == 2


def test_a_rejected_rotated_secret_is_fetched_again_and_replaces_the_cached_one(oih: FakeOih) -> None:
    cache = cache_for(oih, 60, Clock())
    values, _ = cache.get("s1", "iam-1")
    cfg = {"server": "custom", "nodeSettings": {}, **values}
    oih.add_oauth_secret("s1", "token-v2")
    fresh = cache.rejected(cfg)
    assert fresh is not None and fresh["accessToken"] == "token-v2" and fresh["server"] == "custom"
    assert cfg["accessToken"] == "token-v1"  # a copy: the caller's cfg is untouched
    assert cache.get("s1", "iam-1")[0]["accessToken"] == "token-v2"  # the new one is cached
    assert secret_gets(oih, "s1") == 2


def test_a_rejected_secret_that_did_not_change_gives_no_retry(oih: FakeOih) -> None:
    cache = cache_for(oih, 60, Clock())
    values, _ = cache.get("s1", "iam-1")
    assert cache.rejected({**values}) is None  # the credentials are simply wrong: no retry
    assert secret_gets(oih, "s1") == 2  # fetched once more to find out
    assert cache.rejected({"accessToken": "never-cached"}) is None  # not built from the cache: untouched
    assert secret_gets(oih, "s1") == 2


def test_the_cache_time_setting() -> None:
    env = {
        "ELASTICIO_BACKCHANNEL_EXCHANGE": "b",
        "ELASTICIO_NODE_EXCHANGE": "n",
        "ELASTICIO_OUTPUT_ROUTING_KEY": "o",
        "ELASTICIO_REBOUND_ROUTING_KEY": "r",
    }
    name = "ELASTICIO_SAILOR_SECRET_CACHE_SECONDS"
    assert OihSettings.from_env(env).secret_cache_seconds == 60
    assert OihSettings.from_env({**env, name: "0"}).secret_cache_seconds == 0
    assert OihSettings.from_env({**env, name: "2.5"}).secret_cache_seconds == 2.5
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(SettingsError, match=name):
            OihSettings.from_env({**env, name: bad})


# --- the dialect -------------------------------------------------------------------------------------
class Descriptor:
    descriptor = {
        "triggers": {"poll": {"main": "x"}},
        "actions": {"act": {"main": "y"}, "stateful": {"main": "z", "usesSnapshot": True}},
    }


def dialect_for(oih: FakeOih, topo: OihTopology) -> OihDialect:
    env = {**topo.env(services_url=oih.url)}
    dialect = OihDialect(env)
    dialect.start(Descriptor())
    return dialect


def delivery(topo: OihTopology, function: str, **claims: Any) -> Delivery:
    token = make_token(**token_claims(topo.flow_id, topo.step_id, function, **claims))
    return Delivery(
        body=json.dumps({"data": {"n": 1}}).encode(), headers={"orchestratorToken": token}, properties={}
    )


def test_the_dialect_fetches_a_secret_once_and_a_snapshot_only_where_it_is_used(oih: FakeOih) -> None:
    topo = OihTopology()
    oih.state.snapshots[(topo.flow_id, topo.step_id)] = {"cursor": 7}
    dialect = dialect_for(oih, topo)
    try:
        for _ in range(3):
            ex = dialect.prepare(delivery(topo, "act", secretId="s1"))
            assert ex.cfg["accessToken"] == "token-v1" and ex.snapshot == {}
            assert "token-v1" in ex.secrets
        assert secret_gets(oih, "s1") == 1
        snapshot_path = f"/snapshots/flows/{topo.flow_id}/steps/{topo.step_id}"
        assert oih.requests_to(snapshot_path) == []  # an action without "usesSnapshot"
        assert dialect.prepare(delivery(topo, "poll", secretId="s1")).snapshot == {"cursor": 7}
        assert dialect.prepare(delivery(topo, "stateful", secretId="s1")).snapshot == {"cursor": 7}
        assert dialect.prepare(delivery(topo, "notInComponentJson")).snapshot == {"cursor": 7}
        assert len(oih.requests_to(snapshot_path)) == 3
    finally:
        dialect.stop()


def test_the_component_reaches_the_dialect_cache_through_credentials_rejected(oih: FakeOih) -> None:
    topo = OihTopology()
    dialect = dialect_for(oih, topo)
    try:
        cfg = dialect.prepare(delivery(topo, "act", secretId="s1")).cfg
        oih.add_oauth_secret("s1", "token-v2")
        fresh = credentials_rejected(cfg)
        assert fresh is not None and fresh["accessToken"] == "token-v2"
        assert dialect.prepare(delivery(topo, "act", secretId="s1")).cfg["accessToken"] == "token-v2"
        assert secret_gets(oih, "s1") == 2
    finally:
        dialect.stop()
    assert credentials_rejected(cfg) is None  # a stopped dialect is no longer asked


def test_messages_in_flight_with_the_old_secret_all_get_the_new_one_with_one_fetch(oih: FakeOih) -> None:
    """Prefetch > 1: several messages got the cached secret before it was rotated; each one's 401 must get
    the new token (not only the first one's), and the secret service is asked once, not once per message."""
    cache = cache_for(oih, 60, Clock())
    values, _ = cache.get("s1", "iam-1")
    in_flight = [{"server": "custom", "n": i, **values} for i in range(3)]
    oih.add_oauth_secret("s1", "token-v2")
    for cfg in in_flight:
        fresh = cache.rejected(cfg)
        assert fresh is not None and fresh["accessToken"] == "token-v2" and fresh["n"] == cfg["n"]
    assert secret_gets(oih, "s1") == 2
