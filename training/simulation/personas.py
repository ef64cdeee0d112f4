"""Personas of the journey simulator: who the synthetic contacts are and how each kind behaves.

A persona fixes the observable profile (role, seniority, B2B or B2C, authority) and the hidden behaviour the
simulator's ground truth uses: how often they open, what topics and formats they like, how fast fatigue hurts,
whether they ever buy. The defaults cover the nurture practice's classic cases: the IT head who reads
everything, the assistant who downloads for her boss, the price-driven B2C switcher, the busy C-level and
the researcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from features.schemas import ContentFormat


@dataclass(frozen=True)
class Persona:
    """One kind of contact: profile facts plus the hidden response parameters of the ground truth."""

    name: str
    share: float
    role: str
    seniority: str
    b2b: bool
    authority: float
    """Probability a contact of this persona can sign (BANT authority)."""
    open_rate: float
    """Base probability of opening a mail when not fatigued."""
    click_bias: float
    """Base click logit once opened."""
    topics: dict[str, float]
    """Hidden interest weights per topic (the population draws around these)."""
    formats: dict[ContentFormat, float] = field(default_factory=dict)
    """Click-logit bonus (or malus) per format."""
    consume_rate: float = 0.5
    """Probability of downloading a gated block / registering for an event after a click."""
    attend_rate: float = 0.5
    """Probability of attending after registering."""
    fatigue_sensitivity: float = 1.0
    sales_aversion: float = 1.0
    """How much a sales offer before the consultation stage hurts the click odds."""
    unsubscribe_bias: float = -5.0
    buy_propensity: float = 1.0
    """Scales how fast fitting engagement builds readiness; 0 means the persona never buys."""
    win_rate: float = 0.5
    email_consent: float = 0.85
    tracking_consent: float = 0.7
    visit_rate: float = 0.05
    """Daily probability of an organic website visit at zero readiness."""
    renewal_days: int = 90

    def __post_init__(self) -> None:
        for name in (
            "share",
            "authority",
            "open_rate",
            "consume_rate",
            "attend_rate",
            "win_rate",
            "email_consent",
            "tracking_consent",
            "visit_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Persona {self.name!r}: `{name}` must be in [0, 1], but got {value}")
        if self.buy_propensity < 0 or self.fatigue_sensitivity < 0:
            raise ValueError(
                f"Persona {self.name!r}: `buy_propensity` and `fatigue_sensitivity` must be >= 0"
            )
        if self.renewal_days < 1:
            raise ValueError(
                f"Persona {self.name!r}: `renewal_days` must be >= 1, but got {self.renewal_days}"
            )


F = ContentFormat

DEFAULT_PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="it_head",
        share=0.25,
        role="Head of IT",
        seniority="head",
        b2b=True,
        authority=0.9,
        open_rate=0.6,
        click_bias=-0.6,
        topics={"security": 1.0, "cloud": 0.9, "integration": 0.8, "compliance": 0.5},
        formats={F.WHITEPAPER: 0.6, F.WEBINAR: 0.5, F.WORKSHOP: 0.6, F.CHECKLIST: 0.2},
        consume_rate=0.7,
        attend_rate=0.6,
        buy_propensity=1.2,
        win_rate=0.55,
        visit_rate=0.08,
    ),
    Persona(
        name="assistant",
        share=0.15,
        role="Executive assistant",
        seniority="staff",
        b2b=True,
        authority=0.05,
        open_rate=0.55,
        click_bias=-0.4,
        topics={"cost": 0.8, "productivity": 0.8, "compliance": 0.6, "cloud": 0.4},
        formats={F.CHECKLIST: 0.6, F.EBOOK: 0.6, F.WHITEPAPER: 0.4},
        consume_rate=0.85,
        attend_rate=0.3,
        buy_propensity=0.6,
        win_rate=0.1,
        visit_rate=0.06,
    ),
    Persona(
        name="b2c_switcher",
        share=0.3,
        role="Private customer",
        seniority="consumer",
        b2b=False,
        authority=1.0,
        open_rate=0.35,
        click_bias=-0.8,
        topics={"cost": 1.4, "productivity": 0.3},
        formats={F.CONSULTATION_OFFER: 0.8, F.CROSS_SELL_OFFER: 0.6, F.BLOG: 0.3, F.WHITEPAPER: -1.0},
        consume_rate=0.4,
        attend_rate=0.2,
        sales_aversion=0.2,
        unsubscribe_bias=-4.6,
        buy_propensity=1.8,
        win_rate=0.45,
        email_consent=0.75,
        tracking_consent=0.6,
        visit_rate=0.05,
        renewal_days=30,
    ),
    Persona(
        name="c_level",
        share=0.12,
        role="Chief Executive Officer",
        seniority="c_level",
        b2b=True,
        authority=1.0,
        open_rate=0.25,
        click_bias=-0.7,
        topics={"cost": 1.0, "productivity": 0.8, "security": 0.5},
        formats={F.CASE_STUDY: 0.8, F.CHECKLIST: 0.3, F.VIDEO: 0.3, F.WHITEPAPER: -0.8, F.WEBINAR: -0.6},
        consume_rate=0.4,
        attend_rate=0.3,
        fatigue_sensitivity=2.0,
        sales_aversion=1.5,
        unsubscribe_bias=-4.4,
        buy_propensity=2.0,
        win_rate=0.65,
        email_consent=0.8,
        visit_rate=0.03,
    ),
    Persona(
        name="researcher",
        share=0.18,
        role="Student / researcher",
        seniority="student",
        b2b=False,
        authority=0.0,
        open_rate=0.5,
        click_bias=-0.2,
        topics={"security": 0.9, "compliance": 0.9, "cloud": 0.7},
        formats={F.WHITEPAPER: 0.8, F.WEBINAR: 0.5, F.CONSULTATION_OFFER: -1.0},
        consume_rate=0.8,
        attend_rate=0.5,
        sales_aversion=1.5,
        buy_propensity=0.0,
        win_rate=0.0,
        email_consent=0.9,
        visit_rate=0.06,
    ),
)
"""The default population mix; shares sum to one."""
