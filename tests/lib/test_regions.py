"""Base URL and token selection from cfg: regions, original option strings, custom URL, legacy names."""

from __future__ import annotations

import pytest

from lib.intercom import regions
from lib.intercom.errors import ConfigurationError
from tests.lib.conftest import TOKEN


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (None, "https://api.intercom.io"),
        ("", "https://api.intercom.io"),
        ("us", "https://api.intercom.io"),
        ("EU", "https://api.eu.intercom.io"),
        ("au", "https://api.au.intercom.io"),
        ("https://api.intercom.io", "https://api.intercom.io"),
        ("https://api.eu.intercom.io/", "https://api.eu.intercom.io"),
        ("https://api.intercom.io - The production API server", "https://api.intercom.io"),
        ("https://api.eu.intercom.io - The european API server", "https://api.eu.intercom.io"),
        ("https://api.au.intercom.io - The australian API server", "https://api.au.intercom.io"),
    ],
)
def test_server_values(server, expected):
    assert regions.base_url({"server": server}) == expected


@pytest.mark.parametrize("server", ["custom", "--- Custom URL"])
def test_custom_url(server):
    cfg = {"server": server, "otherServer": "http://127.0.0.1:8080/intercom/"}
    assert regions.base_url(cfg) == "http://127.0.0.1:8080/intercom"


@pytest.mark.parametrize("other", [None, "", "   "])
def test_custom_without_other_server_names_the_field(other):
    with pytest.raises(ConfigurationError, match="otherServer") as info:
        regions.base_url({"server": "--- Custom URL", "otherServer": other})
    assert info.value.to_dict()["field"] == "otherServer"


@pytest.mark.parametrize("other", ["ftp://example.com", "example.com", "https://", "https://x.io/?a=1"])
def test_custom_url_is_validated(other):
    with pytest.raises(ConfigurationError, match="otherServer"):
        regions.base_url({"server": "custom", "otherServer": other})


def test_unknown_server():
    with pytest.raises(ConfigurationError, match="server"):
        regions.base_url({"server": "mars"})


def test_token_and_legacy_alias():
    assert regions.access_token({"accessToken": TOKEN}) == TOKEN
    assert regions.access_token({"auth_bearerAuth": TOKEN}) == TOKEN
    assert regions.access_token({"accessToken": "", "auth_bearerAuth": TOKEN}) == TOKEN


def test_missing_token_names_the_field():
    with pytest.raises(ConfigurationError, match="accessToken") as info:
        regions.access_token({"server": "us"})
    assert info.value.field == "accessToken"
