"""Freshness through the API: an event accepted by POST /v1/events is in the very next decision's features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ripen.settings import Settings
from tests.api_support import make_keys, running_client
from tests.decision_world import build_world


def test_a_download_just_ingested_is_never_offered_next(tmp_path_factory: pytest.TempPathFactory) -> None:
    root: Path = tmp_path_factory.mktemp("freshness")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    keys = make_keys(settings)
    ask = {"contact_id": "c-ready", "channel": "email"}
    with running_client(settings) as client:
        before = client.post("/v1/recommend", json=ask, headers=keys.engine).json()
        assert before["content_id"] == "faq"  # the only unconsumed block of its stage

        event = {
            "event_id": "fresh-1",
            "contact_id": "c-ready",
            "timestamp": (datetime.now(UTC) - timedelta(days=4)).isoformat(),  # past any waiting period
            "type": "content_download",
            "channel": "email",
            "content_id": "faq",
        }
        ingested = client.post("/v1/events", json={"events": [event]}, headers=keys.engine)
        assert ingested.status_code == 202 and ingested.json()["stored"] == 1

        after = client.post("/v1/recommend", json=ask, headers=keys.engine).json()
        insight = client.get("/v1/contacts/c-ready/insight", headers=keys.sales).json()

    assert after["action"] == "nothing_eligible"
    reasons = {r["content_id"]: r["reason"] for r in after["guardrail_reasons"]}
    assert reasons["faq"] == "already_consumed"
    assert "faq" in insight["consumed_content"]
    assert after["readiness"] > before["readiness"]  # the download's behaviour points count at once
