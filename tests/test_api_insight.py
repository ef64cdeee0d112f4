"""GET /v1/contacts/{id}/insight with real readiness and churn champions: signed TreeSHAP factors that add up
to the model's log-odds, in English or German."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.store import FeatureStoreService
from features.topics import TOPIC_IDS, write_vocabulary
from ripen.settings import Settings
from serving.insight import _topics, negotiate_language, serving_templates
from tests.api_support import Keys, make_keys, running_client
from tests.champion_world import CHAMPION_FEATURES, train_champion
from tests.decision_world import build_world
from training.registry import load_champion
from training.tracking import as_model_input, mlflow_client

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("insight_shap")]  # champions trained once


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("insight-shap")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    train_champion(settings, "readiness")
    train_champion(settings, "churn")
    return settings


@pytest.fixture(scope="module")
def keys(world: Settings) -> Keys:
    return make_keys(world)


@pytest.fixture(scope="module")
def client(world: Settings, keys: Keys) -> Iterator[TestClient]:
    with running_client(world) as c:
        yield c


def insight(client: TestClient, keys: Keys, language: str | None = None) -> dict[str, Any]:
    headers = {**keys.sales, **({"Accept-Language": language} if language else {})}
    response = client.get("/v1/contacts/c-ready/insight", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def model_row(settings: Settings, contact_id: str) -> pd.DataFrame:
    """The contact's model row read independently of the app, as the pyfunc receives it."""
    features = FeatureStoreService(settings).online_features(contact_id, [])
    return as_model_input(pd.DataFrame([features.model_row()]))


@pytest.mark.parametrize("role, name", [("readiness", "ripen-readiness"), ("churn", "ripen-churn")])
def test_factors_are_signed_shap_values_adding_up_to_the_models_margin(
    client: TestClient, keys: Keys, world: Settings, role: str, name: str
) -> None:
    score = insight(client, keys)[role]
    assert score["model_version"] == f"{name}/1" and score["unit"] == "log_odds"
    factors = score["factors"]
    assert {f["feature"] for f in factors} == set(CHAMPION_FEATURES)  # 5 features, top 5: all listed
    contributions = [f["contribution"] for f in factors]
    assert contributions == sorted(contributions, key=abs, reverse=True)
    assert all(f["direction"] == ("up" if f["contribution"] >= 0 else "down") for f in factors)
    assert {f["direction"] for f in factors} == {"up", "down"}  # this contact has pushes both ways
    assert score["other_contribution"] == pytest.approx(0.0, abs=1e-9)
    assert score["base_margin"] + sum(contributions) == pytest.approx(score["margin"], abs=1e-9)
    champion = load_champion(mlflow_client(world), name)
    row = model_row(world, "c-ready")
    scorer = champion.model.unwrap_python_model().scorer  # type: ignore[attr-defined]
    assert score["margin"] == pytest.approx(float(scorer.decision_function(row)[0]), abs=1e-6)
    assert score["probability"] == pytest.approx(float(champion.predict(row)[0]), abs=1e-9)
    assert 0 < score["base_rate"] < 1


def test_engagement_pushes_readiness_up_and_churn_down(client: TestClient, keys: Keys) -> None:
    body = insight(client, keys)
    by_feature = {role: {f["feature"]: f for f in body[role]["factors"]} for role in ("readiness", "churn")}
    downloads = "content_download_30d_now"  # c-ready downloaded the guide: above the typical contact
    assert by_feature["readiness"][downloads]["direction"] == "up"
    assert by_feature["churn"][downloads]["direction"] == "down"
    assert by_feature["readiness"][downloads]["value"] == pytest.approx(0.79, abs=0.02)


@pytest.mark.parametrize(
    "role, name, event, column, better",
    [
        ("readiness", "ripen-readiness", "content download", "content_download_30d_now", 1),
        ("churn", "ripen-churn", "page view", "page_view_30d_now", -1),
    ],
)
def test_hint_says_what_one_more_event_would_do_by_the_model(
    client: TestClient,
    keys: Keys,
    world: Settings,
    role: str,
    name: str,
    event: str,
    column: str,
    better: int,
) -> None:
    score = insight(client, keys)[role]
    match = re.fullmatch(
        r"One more (.+) would (?:raise|lower) .+ to (\d+)% \(model estimate\)", score["hint"]
    )
    assert match is not None, score["hint"]
    assert match.group(1) == event  # the synthetic world's strongest lever for this score
    row = model_row(world, "c-ready")
    after = row.assign(**{column: row[column] + 1.0})
    scorer = load_champion(mlflow_client(world), name).model.unwrap_python_model().scorer  # type: ignore[attr-defined]
    expected = float(scorer.predict_proba(after)[0, 1])
    assert int(match.group(2)) == round(expected * 100)
    assert better * (expected - score["probability"]) > 0.005
    german = insight(client, keys, "de")[role]["hint"]
    assert german.startswith("Ein zusätzliches Ereignis") and german.endswith(f"{match.group(2)} %")


@pytest.mark.parametrize(
    "language, expected, sentence",
    [
        ("de-DE,de;q=0.9", "de", "0,8 Content-Downloads, gewichtet auf den letzten Monat"),
        ("fr, en;q=0.5, de;q=0.8", "de", "0,8 Content-Downloads, gewichtet auf den letzten Monat"),
        ("en-US", "en", "0.8 content downloads, weighted to the last month"),
        (None, "en", "0.8 content downloads, weighted to the last month"),
    ],
)
def test_sentences_follow_accept_language(
    client: TestClient, keys: Keys, language: str | None, expected: str, sentence: str
) -> None:
    body = insight(client, keys, language)
    assert body["language"] == expected
    sentences = {f["feature"]: f["sentence"] for f in body["readiness"]["factors"]}
    assert sentences["content_download_30d_now"] == sentence
    unknown = "Hierarchiestufe: unbekannt" if expected == "de" else "Seniority: unknown"
    assert sentences["seniority"] == unknown  # no seniority in the profile: said, not hidden
    action = "Weiter pflegen" if expected == "de" else "Keep nurturing"
    assert body["next_sales_action"].startswith(action)


def test_explanations_use_each_champions_own_compiled_scorer(client: TestClient, keys: Keys) -> None:
    champions = client.app.state.ripen.pipeline.champions  # type: ignore[attr-defined]
    insight(client, keys)
    first = champions.readiness.__dict__.get("compiled")  # cached on the loaded champion, in the snapshot
    assert first is not None
    insight(client, keys, "de")
    assert champions.readiness.compiled is first
    assert champions.churn.compiled is not first


def test_topic_sentences_follow_the_repositorys_vocabulary() -> None:
    templates = serving_templates(("cloud_security", "other"))
    assert templates["topic_cloud_security_30d_now"]["en"] == (
        "Interest in the topic cloud security: {value}, weighted to the last month"
    )
    assert "topic_cost_30d_now" not in templates  # a default topic the repository has no column for
    assert "topic_cost_30d_now" in serving_templates()


def test_insight_reads_the_topic_vocabulary_stored_with_the_repository(tmp_path: Path) -> None:
    features = FeatureStoreService(Settings(data_dir=tmp_path / "data", datasets_dir=tmp_path / "datasets"))
    features.repo_dir.mkdir(parents=True)
    assert _topics(SimpleNamespace(features=features)) == TOPIC_IDS  # nothing stored yet: the default
    write_vocabulary(features.repo_dir, ["cloud_security", "gdpr"])
    features = FeatureStoreService(features.settings)
    assert _topics(SimpleNamespace(features=features)) == ("cloud_security", "gdpr", "other")
    (features.repo_dir / "topics.json").write_text('{"topics": ["Not A Slug"]}')
    assert _topics(SimpleNamespace(features=FeatureStoreService(features.settings))) == TOPIC_IDS


@pytest.mark.parametrize(
    "header, override, expected",
    [
        (None, None, "en"),
        ("de", None, "de"),
        ("de-AT", None, "de"),
        ("en;q=0.4, de;q=0.7", None, "de"),
        ("fr-CH, fr;q=0.9, *;q=0.5", None, "en"),
        ("de;q=oops, en", None, "en"),
        ("de", "en", "en"),
        (None, "de", "de"),
        ("de", "xx", "de"),
    ],
)
def test_language_negotiation(header: str | None, override: str | None, expected: str) -> None:
    assert negotiate_language(header, override) == expected
