"""The sales contact card in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
``ripen serve`` process on a small world with trained and promoted readiness and churn champions.

The browser sends the sales key in the ``X-API-Key`` header, as the authenticating proxy in front of the card
does. Screenshots are kept under ``test-artifacts/`` (gitignored) and their paths printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from features.event_store import open_settings_event_store
from features.schemas import ContactProfile
from features.store import FeatureStoreService, events_frame
from ripen.settings import Settings
from tests.api_support import make_keys
from tests.champion_world import train_champion
from tests.conftest import unavailable
from tests.decision_world import CONSENT, PROFILES, build_world, world_events
from tests.server_process import free_port, ripen_process, wait_until_up

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("contact_card")]  # one world, one server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ODD_SENIORITY = "<img src=x onerror=alert(1)>"
GREEN, RED = "rgb(26, 127, 55)", "rgb(207, 34, 46)"


@dataclass(frozen=True)
class Server:
    base: str
    sales_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ripen serve`` on a free port over the decision world plus a contact whose profile holds markup."""
    if shutil.which(CHROMIUM) is None:
        unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
    root = tmp_path_factory.mktemp("card")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    odd = ContactProfile(contact_id="c-odd", seniority=ODD_SENIORITY, consents=CONSENT)
    with open_settings_event_store(settings) as store:
        store.upsert_profiles([odd])
    features = FeatureStoreService(settings)
    features.build_offline(events_frame(world_events()), [*PROFILES, odd])
    features.materialize()
    train_champion(settings, "readiness")
    train_champion(settings, "churn")
    keys = make_keys(settings)
    port = free_port()
    env = {
        **os.environ,
        "RIPEN_DATA_DIR": str(settings.data_dir),
        "RIPEN_DATASETS_DIR": str(root / "datasets"),
    }
    process = ripen_process("serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, f"{base}/readyz")
        yield Server(base, keys.sales["X-API-Key"])
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert keys.sales["X-API-Key"] not in output  # the key travels in a header and is never logged


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def insight(server: Server, contact_id: str, language: str) -> dict[str, Any]:
    """What the JSON API says about the contact: the card must show the same."""
    response = httpx.get(
        f"{server.base}/v1/contacts/{contact_id}/insight",
        headers={"X-API-Key": server.sales_key, "Accept-Language": language},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def open_card(browser: Any, server: Server, path: str, locale: str = "en-US") -> tuple[Any, Any, list[str]]:
    """A fresh page (its own context, as a proxy would authenticate it) at ``path``; dialogs are recorded."""
    context = browser.new_context(
        locale=locale,
        extra_http_headers={"X-API-Key": server.sales_key},
        viewport={"width": 900, "height": 900},
    )
    page = context.new_page()
    dialogs: list[str] = []

    def record(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    response = page.goto(f"{server.base}{path}")
    return page, response, dialogs


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"contact card screenshot: {path}")


@pytest.mark.parametrize(
    "path, locale, language, title, action",
    [
        ("/sales/contacts/c-ready", "en-US", "en", "Sales readiness", "Keep nurturing"),
        ("/sales/contacts/c-ready", "de-DE", "de", "Kaufbereitschaft", "Weiter pflegen"),
        ("/sales/contacts/c-ready?lang=de", "en-US", "de", "Kaufbereitschaft", "Weiter pflegen"),
    ],
)
def test_card_shows_scores_factor_chart_and_next_action(
    browser: Any, server: Server, path: str, locale: str, language: str, title: str, action: str
) -> None:
    expected = insight(server, "c-ready", language)
    page, response, dialogs = open_card(browser, server, path, locale)
    try:
        assert response.status == 200
        readiness = page.locator("#score-readiness")
        assert title in readiness.inner_text()
        assert f"{expected['readiness']['probability'] * 100:.0f}%" in readiness.inner_text()
        assert f"{expected['churn']['probability'] * 100:.0f}%" in page.locator("#score-churn").inner_text()
        assert action in page.locator("#next-action").inner_text()
        for role in ("readiness", "churn"):
            assert page.locator(f"#hint-{role}").inner_text() == expected[role]["hint"]
        for role in ("readiness", "churn"):
            factors = expected[role]["factors"]
            assert len(factors) == 5
            chart = page.locator(f"#factors-{role} svg.factor-chart")
            assert chart.is_visible()
            sentences = chart.locator("g.factor > text:not(.amount)")
            assert sentences.all_text_contents() == [f["sentence"] for f in factors]  # largest push first
            assert all(sentences.nth(i).is_visible() for i in range(len(factors)))
            bars = chart.locator("rect.bar")
            assert bars.count() == len(factors)  # one bar per factor
            axis = float(chart.locator("line").get_attribute("x1"))
            for i, factor in enumerate(factors):
                bar = bars.nth(i)
                fill = bar.evaluate("element => getComputedStyle(element).fill")
                x = float(bar.get_attribute("x"))
                if factor["direction"] == "up":
                    assert fill == GREEN and x == pytest.approx(axis)
                else:
                    assert fill == RED and x + float(bar.get_attribute("width")) == pytest.approx(
                        axis, abs=0.1
                    )
        timeline = page.locator("#timeline").inner_text()
        german = language == "de"
        download, email = ("Content-Download", "E-Mail") if german else ("content download", "email")
        assert download in timeline and "guide" in timeline
        assert email in timeline  # the channel in the card's language too
        if german:
            assert "content download" not in timeline and "content_download" not in timeline
        assert "guide" in page.locator("#consumed").inner_text()
        assert dialogs == []
        screenshot(page, f"contact_card_{language}{'_query' if 'lang=' in path else ''}")
    finally:
        page.context.close()


def test_card_shows_data_as_text_never_as_markup(browser: Any, server: Server) -> None:
    page, response, dialogs = open_card(browser, server, "/sales/contacts/c-odd")
    try:
        assert response.status == 200
        assert f"Seniority: {ODD_SENIORITY}" in page.locator("#factors-readiness").inner_text()
        assert page.locator("img").count() == 0
        assert dialogs == []
        assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none' rules
        assert "default-src 'none'" in response.headers["content-security-policy"]
    finally:
        page.context.close()


@pytest.mark.parametrize(
    "locale, heading", [("en-US", "Contact not found"), ("de-DE", "Kontakt nicht gefunden")]
)
def test_unknown_contact_gets_a_404_page(browser: Any, server: Server, locale: str, heading: str) -> None:
    page, response, _ = open_card(browser, server, "/sales/contacts/nobody", locale)
    try:
        assert response.status == 404
        assert response.headers["content-type"].startswith("text/html")
        assert page.locator("h1").inner_text() == heading
        assert "Traceback" not in page.content()
    finally:
        page.context.close()


def test_card_needs_a_sales_key_in_the_header(server: Server) -> None:
    card = f"{server.base}/sales/contacts/c-ready"
    assert httpx.get(card, timeout=10).status_code == 401
    assert httpx.get(card, params={"key": server.sales_key}, timeout=10).status_code == 401
    assert httpx.get(card, params={"lang": "fr"}, headers={"X-API-Key": server.sales_key}).status_code == 422
