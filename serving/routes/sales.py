"""``GET /sales/contacts/{id}``: the contact card, a server-rendered HTML page for sales reps (sales scope).

The card shows what ``GET /v1/contacts/{id}/insight`` returns (``serving.insight`` builds both): the scores,
a signed bar chart of the top factors (inline SVG, green pushes the score up, red pushes it down), the next
sales action, the timeline and the consumed content, in English or German (``?lang=`` or
``Accept-Language``). Jinja2 escapes every value; no script, no CDN, no front-end build.

Authentication is the API's: the ``X-API-Key`` header with the ``sales`` scope, never a key in the URL
(URLs end up in browser history, proxy logs and ``Referer`` headers). Browsers open the card through an
authenticating reverse proxy that signs the rep in (SSO) and adds the header; see ``docs/api.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from features.schemas import DEFAULT_TAXONOMY, STAGE_IDS
from serving.deps import EventStoreDep, SalesKey
from serving.errors import error_responses
from serving.insight import UnknownContact, build_insight, channel_name, event_name, negotiate_language
from serving.routes.contacts import ContactId
from serving.routes.recommend import PipelineDep
from serving.schemas_decisions import ContactInsight, ScoreInsight


def _json_refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The API's JSON refusals, documented as JSON on an HTML route (FastAPI would file their models under
    the route's ``text/html``); the referenced schemas are the API's shared error bodies."""
    out: dict[int | str, dict[str, Any]] = {}
    for code, spec in error_responses(*codes).items():
        schema = {"$ref": f"#/components/schemas/{spec['model'].__name__}"}
        out[code] = {"description": spec["description"], "content": {"application/json": {"schema": schema}}}
    return out


router = APIRouter(prefix="/sales", tags=["sales"], responses=_json_refusals(401, 403, 422, 503))
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

CHART_WIDTH = 640
ROW_HEIGHT = 46
BAR_HEIGHT = 16
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
"""No script may run, nothing is fetched, the page is not framed or cached (it holds personal data)."""
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Contact card",
        "readiness": "Sales readiness",
        "churn": "Churn risk",
        "model": "Model",
        "base_rate": "Base rate in the training data",
        "factors": "Why: the top factors",
        "up": "pushes the score up",
        "down": "pushes the score down",
        "log_odds": "log-odds",
        "points": "points",
        "no_factors": "No factors: no model is trained for this score yet.",
        "next_action": "Next sales action",
        "lead_status": "Lead status",
        "stage": "Stage",
        "timeline": "Recent engagement",
        "when": "When",
        "event": "Event",
        "channel": "Channel",
        "content": "Content",
        "no_events": "No engagement recorded.",
        "consumed": "Content consumed",
        "nothing_consumed": "Nothing consumed yet.",
        "not_found_title": "Contact not found",
        "not_found": "No contact with this id is known to ripen.",
    },
    "de": {
        "title": "Kontaktkarte",
        "readiness": "Kaufbereitschaft",
        "churn": "Abwanderungsrisiko",
        "model": "Modell",
        "base_rate": "Basisrate in den Trainingsdaten",
        "factors": "Warum: die wichtigsten Faktoren",
        "up": "hebt den Score",
        "down": "senkt den Score",
        "log_odds": "Log-Odds",
        "points": "Punkte",
        "no_factors": "Keine Faktoren: für diesen Score ist noch kein Modell trainiert.",
        "next_action": "Nächste Vertriebsaktion",
        "lead_status": "Lead-Status",
        "stage": "Phase",
        "timeline": "Letzte Interaktionen",
        "when": "Wann",
        "event": "Ereignis",
        "channel": "Kanal",
        "content": "Inhalt",
        "no_events": "Keine Interaktionen erfasst.",
        "consumed": "Genutzte Inhalte",
        "nothing_consumed": "Noch keine Inhalte genutzt.",
        "not_found_title": "Kontakt nicht gefunden",
        "not_found": "Kein Kontakt mit dieser ID ist ripen bekannt.",
    },
}


@dataclass(frozen=True)
class Bar:
    """One factor drawn as a signed bar: ``x``/``width`` in SVG units, ``y`` of its row."""

    sentence: str
    contribution: float
    direction: Literal["up", "down"]
    x: float
    width: float
    y: float


@dataclass(frozen=True)
class Chart:
    """A signed bar chart of one score's factors, laid out around a centre axis."""

    bars: tuple[Bar, ...]
    width: int
    height: int
    axis: float


def factor_chart(score: ScoreInsight) -> Chart:
    """Bars scaled to the largest |contribution|: right of the axis pushes up, left pushes down."""
    axis = CHART_WIDTH / 2
    half = axis - 60  # room for the value label at the bar's end
    largest = max((abs(f.contribution) for f in score.factors), default=0.0) or 1.0
    bars = []
    for i, factor in enumerate(score.factors):
        width = max(abs(factor.contribution) / largest * half, 1.0)
        x = axis if factor.direction == "up" else axis - width
        bars.append(Bar(factor.sentence, factor.contribution, factor.direction, x, width, i * ROW_HEIGHT))
    return Chart(tuple(bars), CHART_WIDTH, max(len(bars), 1) * ROW_HEIGHT, axis)


_HTML = {"type": "string"}
"""The pages' OpenAPI schema; refusals (401, 403, 422, 503) stay JSON like the rest of the API."""


@router.get(
    "/contacts/{contact_id}",
    response_class=HTMLResponse,
    summary="The contact card for sales (HTML)",
    responses={
        200: {"content": {"text/html": {"schema": _HTML}}, "description": "The card (an HTML page)."},
        404: {"content": {"text/html": {"schema": _HTML}}, "description": "No such contact (an HTML page)."},
    },
)
async def contact_card(
    request: Request,
    contact_id: ContactId,
    store: EventStoreDep,
    pipeline: PipelineDep,
    _key: SalesKey,
    lang: Annotated[Literal["en", "de"] | None, Query(description="Overrides `Accept-Language`.")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """Scores, the factor chart, the next action, the timeline and consumed content of one contact."""
    language = negotiate_language(accept_language, lang)
    labels = LABELS[language]
    try:
        insight = await run_in_threadpool(build_insight, contact_id, store, pipeline, language)
    except UnknownContact:
        return templates.TemplateResponse(
            request,
            "contact_not_found.html",
            {"t": labels, "language": language, "contact_id": contact_id},
            status_code=404,
            headers=PAGE_HEADERS,
        )
    return templates.TemplateResponse(
        request,
        "contact_card.html",
        {
            "t": labels,
            "language": language,
            "insight": insight,
            "stage": _stage_label(insight, language),
            "timeline": [
                (entry, event_name(entry.type, language), channel_name(entry.channel, language))
                for entry in insight.timeline
            ],
            "scores": [
                ("readiness", insight.readiness, factor_chart(insight.readiness)),
                ("churn", insight.churn, factor_chart(insight.churn)),
            ],
        },
        headers=PAGE_HEADERS,
    )


def _stage_label(insight: ContactInsight, language: str) -> str | None:
    stage = insight.stage
    return DEFAULT_TAXONOMY.label(stage, language) if stage in STAGE_IDS else stage
