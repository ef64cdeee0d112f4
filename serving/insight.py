"""The sales insight of one contact: scores with their signed SHAP factors, status, timeline and next action.

Built once here and shown twice: as JSON (``GET /v1/contacts/{id}/insight``) and as the HTML contact card
(``GET /sales/contacts/{id}``). When a readiness or churn champion is loaded, its factors are exact TreeSHAP
contributions (``models.explainer.ScorerExplainer``) on the same model row the score was computed from, so
base margin + contributions = the model's log-odds; without a readiness champion the points score's fit and
behaviour points stand in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import structlog

from features.decay import HALF_LIVES_DAYS, counter_keys
from features.event_store import EventStore
from features.online import DecisionFeatures
from features.schemas import DEFAULT_TAXONOMY, STAGE_IDS, Channel, EventType
from features.topics import TOPIC_IDS
from models.compiled_scorer import CompiledScorer
from models.context import GuardrailConfig
from models.explainer import DEFAULT_TEMPLATES, Language, factor_text
from serving.pipeline import DecisionPipeline, contact_hash
from serving.schemas_decisions import ContactInsight, Factor, ScoreInsight, TimelineEntry

if TYPE_CHECKING:
    from training.registry import LoadedScorer

log = structlog.get_logger(__name__)

TIMELINE_LENGTH = 20
TOP_FACTORS = 5
_THRESHOLDS = GuardrailConfig()  # the sales fast lane's thresholds: the card advises what the engine does

_EVENTS: dict[str, tuple[str, str]] = {
    EventType.PAGE_VIEW.value: ("page views", "Seitenaufrufe"),
    EventType.EMAIL_SENT.value: ("emails received", "erhaltene E-Mails"),
    EventType.EMAIL_OPEN.value: ("email opens", "E-Mail-Öffnungen"),
    EventType.EMAIL_CLICK.value: ("email clicks", "E-Mail-Klicks"),
    EventType.CONTENT_DOWNLOAD.value: ("content downloads", "Content-Downloads"),
    EventType.FORM_SUBMIT.value: ("form submissions", "Formular-Absendungen"),
    EventType.WEBINAR_REGISTER.value: ("webinar registrations", "Webinar-Anmeldungen"),
    EventType.WEBINAR_ATTEND.value: ("webinar visits", "Webinar-Besuche"),
    EventType.WORKSHOP.value: ("workshops", "Workshops"),
    EventType.DEMO_REQUEST.value: ("demo requests", "Demo-Anfragen"),
    EventType.CONTACT_REQUEST.value: ("contact requests", "Kontaktanfragen"),
    EventType.SOCIAL_ENGAGEMENT.value: ("social media interactions", "Social-Media-Interaktionen"),
    EventType.UNSUBSCRIBE.value: ("unsubscribes", "Abmeldungen"),
    EventType.PURCHASE.value: ("purchases", "Käufe"),
    EventType.RENEWAL.value: ("renewals", "Verlängerungen"),
    EventType.CANCELLATION.value: ("cancellations", "Kündigungen"),
    EventType.SUPPORT_TICKET.value: ("support tickets", "Support-Tickets"),
    EventType.PRODUCT_USAGE.value: ("product usage sessions", "Produktnutzungen"),
    EventType.IDENTIFY.value: ("identifications", "Identifizierungen"),
    EventType.STATUS_CHANGE.value: ("status changes", "Statuswechsel"),
    EventType.STAGE_CHANGE.value: ("stage changes", "Phasenwechsel"),
    EventType.OPPORTUNITY_OPEN.value: ("opportunities opened", "eröffnete Verkaufschancen"),
    "return_visit": ("return visits", "wiederkehrende Besuche"),
}
_WINDOWS: dict[int, tuple[str, str]] = {
    7: ("weighted to the last week", "gewichtet auf die letzte Woche"),
    30: ("weighted to the last month", "gewichtet auf den letzten Monat"),
}
_YES_NO: dict[str, tuple[str, str]] = {"en": ("yes", "no"), "de": ("ja", "nein")}
EVENT_NAMES: dict[str, tuple[str, str]] = {
    EventType.PAGE_VIEW.value: ("page view", "Seitenaufruf"),
    EventType.EMAIL_SENT.value: ("email sent", "E-Mail versendet"),
    EventType.EMAIL_OPEN.value: ("email open", "E-Mail-Öffnung"),
    EventType.EMAIL_CLICK.value: ("email click", "E-Mail-Klick"),
    EventType.CONTENT_DOWNLOAD.value: ("content download", "Content-Download"),
    EventType.FORM_SUBMIT.value: ("form submission", "Formular-Absendung"),
    EventType.WEBINAR_REGISTER.value: ("webinar registration", "Webinar-Anmeldung"),
    EventType.WEBINAR_ATTEND.value: ("webinar visit", "Webinar-Besuch"),
    EventType.WORKSHOP.value: ("workshop", "Workshop"),
    EventType.DEMO_REQUEST.value: ("demo request", "Demo-Anfrage"),
    EventType.CONTACT_REQUEST.value: ("contact request", "Kontaktanfrage"),
    EventType.SOCIAL_ENGAGEMENT.value: ("social media interaction", "Social-Media-Interaktion"),
    EventType.UNSUBSCRIBE.value: ("unsubscribe", "Abmeldung"),
    EventType.PURCHASE.value: ("purchase", "Kauf"),
    EventType.RENEWAL.value: ("renewal", "Verlängerung"),
    EventType.CANCELLATION.value: ("cancellation", "Kündigung"),
    EventType.SUPPORT_TICKET.value: ("support ticket", "Support-Ticket"),
    EventType.PRODUCT_USAGE.value: ("product usage session", "Produktnutzung"),
    EventType.IDENTIFY.value: ("identification", "Identifizierung"),
    EventType.STATUS_CHANGE.value: ("status change", "Statuswechsel"),
    EventType.STAGE_CHANGE.value: ("stage change", "Phasenwechsel"),
    EventType.OPPORTUNITY_OPEN.value: ("opportunity opened", "Verkaufschance eröffnet"),
}
"""One event of each type, as the timeline and the what-if hint name it (English, German)."""
CHANNEL_NAMES: dict[str, tuple[str, str]] = {
    Channel.EMAIL.value: ("email", "E-Mail"),
    Channel.WEB.value: ("web", "Web"),
    Channel.SMS.value: ("SMS", "SMS"),
    Channel.PUSH.value: ("push", "Push"),
    Channel.SOCIAL.value: ("social media", "Social Media"),
    Channel.IN_APP.value: ("in-app", "In-App"),
    Channel.DIRECT_MAIL.value: ("direct mail", "Briefpost"),
    Channel.PHONE.value: ("phone", "Telefon"),
}
_ACTIONABLE: dict[str, tuple[str, str]] = {
    kind.value: EVENT_NAMES[kind.value]
    for kind in (
        EventType.PAGE_VIEW,
        EventType.EMAIL_OPEN,
        EventType.EMAIL_CLICK,
        EventType.CONTENT_DOWNLOAD,
        EventType.FORM_SUBMIT,
        EventType.WEBINAR_REGISTER,
        EventType.WEBINAR_ATTEND,
        EventType.WORKSHOP,
        EventType.DEMO_REQUEST,
        EventType.CONTACT_REQUEST,
        EventType.PRODUCT_USAGE,
    )
}
"""Engagement that nurturing or sales can prompt: the what-if hint tries one more of each."""
_HINTS = {
    "readiness": {
        "en": "One more {event} would raise readiness to {p}% (model estimate)",
        "de": "Ein zusätzliches Ereignis „{event}“ hebt die Kaufbereitschaft laut Modell auf {p} %",
    },
    "churn": {
        "en": "One more {event} would lower the churn risk to {p}% (model estimate)",
        "de": "Ein zusätzliches Ereignis „{event}“ senkt das Abwanderungsrisiko laut Modell auf {p} %",
    },
}
MIN_HINT_CHANGE = 0.005
"""Smallest change of probability worth a hint (half a percentage point)."""


@lru_cache(maxsize=4)
def serving_templates(topics: tuple[str, ...] = TOPIC_IDS) -> Mapping[str, Mapping[str, str]]:
    """Sentences for the online model row's feature names (decayed ``*_now`` counters, points, recency),
    over the explainer's defaults (role, seniority, industry, company size).

    ``topics``: the topic ids the feature repository has columns for (its stored ``topics.json``
    vocabulary plus ``other``, ``FeatureStoreService.topics``); a pure function of them, cached."""
    out: dict[str, dict[str, str]] = {**DEFAULT_TEMPLATES}
    for key in counter_keys(topics):
        for half_life in HALF_LIVES_DAYS:
            en_window, de_window = _WINDOWS.get(
                half_life, (f"{half_life}-day half-life", f"Halbwertszeit {half_life} Tage")
            )
            name = f"{key}_{half_life}d_now"
            if key in _EVENTS:
                en, de = _EVENTS[key]
                out[name] = {"en": f"{{value}} {en}, {en_window}", "de": f"{{value}} {de}, {de_window}"}
            elif key.startswith("stage_") and key.removeprefix("stage_") in STAGE_IDS:
                stage = key.removeprefix("stage_")
                en_stage, de_stage = DEFAULT_TAXONOMY.label(stage, "en"), DEFAULT_TAXONOMY.label(stage, "de")
                out[name] = {
                    "en": f"Interest in {en_stage} content: {{value}}, {en_window}",
                    "de": f"Interesse an Inhalten der Phase {de_stage}: {{value}}, {de_window}",
                }
            elif key.startswith("topic_") and key.removeprefix("topic_") in topics:
                topic = key.removeprefix("topic_").replace("_", " ")
                out[name] = {
                    "en": f"Interest in the topic {topic}: {{value}}, {en_window}",
                    "de": f"Interesse am Thema {topic}: {{value}}, {de_window}",
                }
    out.update(
        {
            "days_since_last_touch": DEFAULT_TEMPLATES["days_since_last_activity"],
            "days_since_first_seen": {
                "en": "first seen {value} days ago",
                "de": "erstmals vor {value} Tagen",
            },
            "events_total": {"en": "{value} interactions in total", "de": "{value} Interaktionen insgesamt"},
            "points_score_now": DEFAULT_TEMPLATES["points_score"],
            "behaviour_points_now": {"en": "{value} behaviour points", "de": "{value} Verhaltenspunkte"},
            "fit_points": {"en": "{value} profile fit points", "de": "{value} Profilpunkte"},
            "sales_alert": {"en": "Sales alert reached: {value}", "de": "Vertriebsalarm erreicht: {value}"},
            "persona": {"en": "Persona: {value}", "de": "Persona: {value}"},
            "country": {"en": "Country: {value}", "de": "Land: {value}"},
            "budget": {"en": "Budget confirmed: {value}", "de": "Budget bestätigt: {value}"},
            "authority": {"en": "Decision authority: {value}", "de": "Entscheidungsbefugnis: {value}"},
            "need": {"en": "Need confirmed: {value}", "de": "Bedarf bestätigt: {value}"},
            "timeline_months": {
                "en": "Buying timeline: {value} months",
                "de": "Kaufzeitraum: {value} Monate",
            },
        }
    )
    return out


SERVING_TEMPLATES: Mapping[str, Mapping[str, str]] = serving_templates(TOPIC_IDS)
"""The templates of the default catalog's topics (a repository without a stored vocabulary)."""

_SENTENCES = {
    "fit": {"en": "Profile fit adds {value:.0f} points", "de": "Das Profil bringt {value:.0f} Punkte"},
    "behaviour": {
        "en": "Recent engagement adds {value:.0f} points",
        "de": "Die jüngste Interaktion bringt {value:.0f} Punkte",
    },
}
_ACTIONS = {
    "call": {"en": "Call now: the contact is sales-ready", "de": "Jetzt anrufen: der Kontakt ist bereit"},
    "retain": {
        "en": "Reach out about the churn risk",
        "de": "Wegen des Abwanderungsrisikos Kontakt aufnehmen",
    },
    "nurture": {
        "en": "Keep nurturing; no sales action yet",
        "de": "Weiter pflegen; noch keine Vertriebsaktion",
    },
}


def event_name(kind: str, language: Language) -> str:
    """One event of type ``kind`` in ``language``; an unknown type as its id in words."""
    names = EVENT_NAMES.get(kind)
    return kind.replace("_", " ") if names is None else names[0 if language == "en" else 1]


def channel_name(channel: str, language: Language) -> str:
    """A channel in ``language``; an unknown channel as its id in words."""
    names = CHANNEL_NAMES.get(channel)
    return channel.replace("_", " ") if names is None else names[0 if language == "en" else 1]


class UnknownContact(LookupError):
    """Neither a profile nor events are stored for the contact."""


def negotiate_language(accept_language: str | None, override: str | None = None) -> Language:
    """``override`` if given, else the first of en/de in ``Accept-Language`` by quality; else English."""
    if override in ("en", "de"):
        return "de" if override == "de" else "en"
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for quality, _, primary in sorted(ranked):
        if quality < 0 and primary in ("en", "de"):
            return "de" if primary == "de" else "en"
    return "en"


def build_insight(
    contact_id: str, store: EventStore, pipeline: DecisionPipeline, language: Language
) -> ContactInsight:
    """Everything sales sees about ``contact_id``; raises :class:`UnknownContact` for an unknown id."""
    profile = store.get_profile(contact_id)
    events = store.events_for_contact(contact_id, latest=TIMELINE_LENGTH)
    if profile is None and not events:
        raise UnknownContact(contact_id)
    try:
        features: DecisionFeatures | None = pipeline.features.online_features(
            contact_id, [], at=datetime.now(UTC)
        )
    except Exception as exc:  # noqa: BLE001 - the card still shows stored facts
        log.warning("insight_without_online_features", error=type(exc).__name__)
        features = None
    champions = pipeline.champions  # one snapshot for scores and factors, even if a reload swaps it
    readiness, churn, r_version, c_version = pipeline.scores(features, profile, champions)
    record = features.model_row() if features is not None else None
    templates = serving_templates(_topics(pipeline))
    readiness_insight = _score_insight(
        readiness, r_version, champions.readiness, "readiness", record, language, templates, contact_id
    ) or ScoreInsight(
        probability=readiness,
        model_version=r_version,
        unit="points",
        factors=_points_factors(features, language),
    )
    churn_insight = _score_insight(
        churn, c_version, champions.churn, "churn", record, language, templates, contact_id
    ) or ScoreInsight(probability=churn, model_version=c_version)
    recent = events[-TIMELINE_LENGTH:][::-1]
    return ContactInsight(
        contact_id=contact_id,
        language=language,
        readiness=readiness_insight,
        churn=churn_insight,
        lead_status=profile.lead_status.value if profile is not None else None,
        stage=profile.lifecycle_stage if profile is not None else None,
        timeline=[
            TimelineEntry(
                timestamp=e.timestamp, type=str(e.type), channel=str(e.channel), content_id=e.content_id
            )
            for e in recent
        ],
        consumed_content=sorted(features.consumed_content_ids) if features is not None else [],
        next_sales_action=_ACTIONS[next_action(readiness, churn)][language],
    )


def next_action(readiness: float, churn: float) -> str:
    """``call`` past the fast-lane threshold, ``retain`` past the churn threshold, else ``nurture``."""
    if readiness >= _THRESHOLDS.readiness_threshold:
        return "call"
    return "retain" if churn >= _THRESHOLDS.churn_threshold else "nurture"


def _topics(pipeline: DecisionPipeline) -> tuple[str, ...]:
    """The feature repository's topic ids (its stored vocabulary); the default catalog's if unreadable."""
    try:
        return pipeline.features.topics
    except Exception as exc:  # noqa: BLE001 - a malformed topics.json costs the topic sentences only
        log.warning("insight_default_topics", error=type(exc).__name__)
        return TOPIC_IDS


def _score_insight(
    probability: float,
    version: str,
    loaded: LoadedScorer | None,
    role: str,
    record: Mapping[str, Any] | None,
    language: Language,
    templates: Mapping[str, Mapping[str, str]],
    contact_id: str,
) -> ScoreInsight | None:
    """SHAP factors and the what-if hint of the champion that produced ``version``, on its compiled scorer
    (built once per loaded champion and kept with it in the champions snapshot); None when a fallback
    scored (or explaining fails)."""
    if record is None or loaded is None or version != f"{loaded.name}/{loaded.version}":
        return None
    try:
        compiled = loaded.compiled
        insight = _shap_insight(compiled, record, probability, version, language, templates)
        hint = what_if(compiled, record, role, language, now=probability)
    except Exception as exc:  # noqa: BLE001 - factors are a nicety: the score still shows
        log.error(
            "explanation_failed", role=role, contact_hash=contact_hash(contact_id), error=str(exc)[:200]
        )
        return None
    return insight.model_copy(update={"hint": hint})


def what_if(
    compiled: CompiledScorer,
    record: Mapping[str, Any],
    role: str,
    language: Language,
    now: float | None = None,
) -> str | None:
    """The model's score after one more event of the kind that helps most (raises readiness, lowers churn
    risk), as a sentence; None when no such event moves it by ``MIN_HINT_CHANGE``.

    record: the contact's model row (feature → value); ``now``: its probability when already known. One
    event adds 1 to its decayed counters of every half-life, as ingestion would at the request time. All
    variants are scored in one call on the compiled matrix.
    """
    features = set(compiled.features_)
    kinds: list[str] = []
    variants: list[Mapping[str, Any]] = []
    for kind in _ACTIONABLE:
        columns = [c for h in HALF_LIVES_DAYS if (c := f"{kind}_{h}d_now") in features]
        if columns:
            kinds.append(kind)
            variants.append({**record, **{c: _count(record.get(c)) + 1.0 for c in columns}})
    if not variants:
        return None
    if now is None:
        scores = compiled.predict_proba([record, *variants])
        now, after = float(scores[0]), scores[1:] - scores[0]
    else:
        after = compiled.predict_proba(variants) - now
    sign = 1.0 if role == "readiness" else -1.0
    best = int(np.argmax(sign * after))
    if sign * after[best] < MIN_HINT_CHANGE:
        return None
    event = _ACTIONABLE[kinds[best]][0 if language == "en" else 1]
    return _HINTS[role][language].format(event=event, p=f"{(now + after[best]) * 100:.0f}")


def _count(value: Any) -> float:
    """A decayed counter as a number: missing or unreadable counts as none yet (0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def _shap_insight(
    compiled: CompiledScorer,
    record: Mapping[str, Any],
    probability: float,
    version: str,
    language: Language,
    templates: Mapping[str, Mapping[str, str]],
) -> ScoreInsight:
    """The top factors by |contribution| from one exact TreeSHAP pass, which also gives the margin (the
    contributions and the bias add up to it), so the booster runs once for both."""
    contributions = compiled.contributions([record])[0]
    features = compiled.features_
    values, bias = contributions[:-1], float(contributions[-1])
    top = np.argsort(-np.abs(values), kind="stable")[:TOP_FACTORS]
    factors = [
        Factor(
            feature=features[j],
            value=_json_value(record.get(features[j])),
            contribution=float(values[j]),
            direction="up" if values[j] >= 0 else "down",
            sentence=factor_text(features[j], _shown(record.get(features[j]), language), language, templates),
        )
        for j in top
    ]
    margin = bias + math.fsum(values)
    return ScoreInsight(
        probability=probability,
        model_version=version,
        unit="log_odds",
        factors=factors,
        base_rate=compiled.scorer.base_rate_,
        base_margin=bias,
        other_contribution=margin - bias - math.fsum(f.contribution for f in factors),
        margin=margin,
    )


def _points_factors(features: DecisionFeatures | None, language: Language) -> list[Factor]:
    """The points score's fit and behaviour points, largest first (the fallback's own "factors")."""
    if features is None:
        return []
    factors = [
        Factor(
            feature=name,
            value=value,
            contribution=value,
            direction="up" if value >= 0 else "down",
            sentence=_SENTENCES[name][language].format(value=value),
        )
        for name, value in (("fit", features.points.fit), ("behaviour", features.points.behaviour))
    ]
    return sorted(factors, key=lambda f: -abs(f.contribution))


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _shown(value: Any, language: Language) -> Any:
    """A value as a person reads it: numbers to one decimal (decimal comma in German), yes/no for flags."""
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return _YES_NO[language][0 if value else 1]
    if isinstance(value, Real):
        rounded = round(float(value), 1) + 0.0  # no "-0"
        text = f"{rounded:.0f}" if rounded.is_integer() else f"{rounded:.1f}"
        return text.replace(".", ",") if language == "de" else text
    return str(value)


def _json_value(value: Any) -> float | bool | str | None:
    """A model input as JSON: numbers as floats, flags as booleans, categories as text, missing as null."""
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Real):
        return float(value)
    return str(value)
