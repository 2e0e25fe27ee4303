"""IntercomClient.from_cfg's fast path: a repeated cfg skips parsing, yet answers exactly as parsing would."""

from __future__ import annotations

import pytest

from lib.intercom import client as client_module
from lib.intercom.client import IntercomClient
from lib.intercom.errors import ConfigurationError
from tests.lib.conftest import TOKEN


def test_repeated_cfg_does_not_parse_again(cfg, monkeypatch):
    first = IntercomClient.from_cfg({**cfg, "server": "eu", "requestTimeout": "5"})
    calls: list[dict] = []
    original = IntercomClient.settings_from_cfg.__func__
    monkeypatch.setattr(
        IntercomClient, "settings_from_cfg", classmethod(lambda cls, c: calls.append(c) or original(cls, c))
    )
    assert IntercomClient.from_cfg({**cfg, "server": "eu", "requestTimeout": "5", "other": 1}) is first
    assert calls == []  # fields settings_from_cfg does not read do not matter
    second = IntercomClient.from_cfg({**cfg, "server": "eu", "requestTimeout": 5})  # same settings, new raw
    assert second is first and len(calls) == 1
    assert IntercomClient.from_cfg({**cfg, "server": "eu", "requestTimeout": "6"}) is not first
    assert IntercomClient.from_cfg({**cfg, "server": "eu", "requestTimeout": "6"}).timeout == (6.0, 6.0)


def test_invalid_cfg_raises_every_time_and_unhashable_values_are_parsed(cfg):
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="maxRetries"):
            IntercomClient.from_cfg({**cfg, "maxRetries": "many"})
        with pytest.raises(ConfigurationError, match="server"):
            IntercomClient.from_cfg({**cfg, "server": ["eu"]})


def test_clear_cache_forgets_the_fast_path_too(cfg):
    first = IntercomClient.from_cfg(cfg)
    IntercomClient.clear_cache()
    assert IntercomClient.from_cfg(cfg) is not first


def test_evicted_client_is_not_served_from_the_fast_path(cfg, monkeypatch):
    monkeypatch.setattr(client_module, "_CACHE_SIZE", 2)
    first = IntercomClient.from_cfg(cfg)
    for n in range(3):
        IntercomClient.from_cfg({**cfg, "accessToken": f"{TOKEN}-{n}"})
    assert first not in IntercomClient._cache.values()
    again = IntercomClient.from_cfg(cfg)
    assert again is not first and IntercomClient.from_cfg(cfg) is again
