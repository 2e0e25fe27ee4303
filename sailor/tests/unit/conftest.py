"""Shared fixtures: the fixture component and a cfg whose secrets must never show."""

from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "component"
SECRET = "s3cr3t-T0ken-value-42"
REGION = "private-region-xyz"


@pytest.fixture
def fixture_dir() -> Path:
    return FIXTURE


@pytest.fixture
def cfg() -> dict:
    return {"apiSecretValue": SECRET, "server": "https://a.example", "region": REGION}
