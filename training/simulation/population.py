"""The synthetic population: observable profile facts and the hidden starting state of every contact.

Most contacts start as new leads who browse anonymously until they identify themselves (a form fill) on a day
inside the first third of the run (or, with ``lead_arrival_days``, a steady inflow over that many days); a
share starts as existing customers, so churn and renewals happen in a 180-day run too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.schemas import CUSTOMER_STATUSES, DEFAULT_TAXONOMY, Channel, LeadStatus
from training.simulation.events import CHANNEL_CODE, CHANNELS
from training.simulation.personas import Persona

STAGE = {s: i for i, s in enumerate(DEFAULT_TAXONOMY.ids)}
STATUSES: tuple[LeadStatus, ...] = tuple(LeadStatus)
STATUS = {s: i for i, s in enumerate(STATUSES)}
NEVER = -1_000_000


def status_table(statuses: frozenset[LeadStatus] | tuple[LeadStatus, ...]) -> np.ndarray:
    """Boolean lookup over status codes: ``table[pop.status]`` is a fast ``isin``."""
    return np.array([s in statuses for s in STATUSES])


IS_CUSTOMER = status_table(CUSTOMER_STATUSES)

INDUSTRIES = ("manufacturing", "finance", "healthcare", "retail", "public_sector", "software", "logistics")
COUNTRIES = ("DE", "AT", "CH", "NL", "FR", "GB", "US")
# Share of contacts that opted in per channel, besides email (persona-specific) and in-app (customers).
CHANNEL_OPT_IN = {
    Channel.SMS: 0.3,
    Channel.PHONE: 0.4,
    Channel.SOCIAL: 0.2,
    Channel.PUSH: 0.1,
    Channel.DIRECT_MAIL: 0.1,
}


@dataclass
class Population:
    """Profile facts (fixed) and hidden state (changing) of n contacts; arrays of length n unless noted."""

    persona: np.ndarray
    b2b: np.ndarray
    authority: np.ndarray
    budget: np.ndarray
    need: np.ndarray
    timeline_months: np.ndarray
    industry: np.ndarray
    company_size: np.ndarray
    country: np.ndarray
    account: np.ndarray
    """int, index of the account, -1 for B2C contacts."""
    boss: np.ndarray
    """int, a contact of the same account with authority who reads what this one downloads, -1 for none."""
    interest: np.ndarray
    """float, shape (n, T): hidden topic interest."""
    identify_day: np.ndarray
    send_minute: np.ndarray
    """Minute of the day (UTC) the contact's journey engine sends at."""
    stage: np.ndarray
    status: np.ndarray
    readiness: np.ndarray
    progress: np.ndarray
    """Fitting consumption gathered toward the next stage."""
    fatigue: np.ndarray
    sales_streak: np.ndarray
    last_touch_day: np.ndarray
    last_sales_day: np.ndarray
    times_sent: np.ndarray
    """int, shape (n, C)."""
    consumed: np.ndarray
    """bool, shape (n, C)."""
    consent: np.ndarray
    """bool, shape (n, len(CHANNELS))."""
    consent_day: np.ndarray
    """int, shape (n, len(CHANNELS)): day consent was last given or withdrawn."""
    tracking: np.ndarray
    churn_risk: np.ndarray
    usage: np.ndarray
    customer_since: np.ndarray
    next_renewal: np.ndarray
    stage_day: np.ndarray
    """Day the contact entered its current stage."""
    sql_day: np.ndarray
    close_day: np.ndarray
    engagement: np.ndarray
    """float, shape (n, 3): decayed counts of opens, clicks and consumptions (observable behaviour)."""

    @property
    def n(self) -> int:
        return len(self.persona)

    @property
    def is_customer(self) -> np.ndarray:
        return IS_CUSTOMER[self.status]


def sample_population(
    n: int,
    personas: Sequence[Persona],
    topics: Sequence[str],
    n_content: int,
    n_days: int,
    customer_share: float,
    rng: np.random.Generator,
    lead_arrival_days: int | None = None,
) -> Population:
    """Draw ``n`` contacts: personas by share, firmographics, consent, hidden interests and starting state.

    New leads identify themselves on a uniform day in ``[0, lead_arrival_days)``; ``None`` means the first
    third of the run, at most 60 days.
    """
    shares = np.array([p.share for p in personas], float)
    persona = rng.choice(len(personas), size=n, p=shares / shares.sum())
    b2b = np.array([p.b2b for p in personas])[persona]
    authority = rng.random(n) < np.array([p.authority for p in personas])[persona]
    budget = rng.random(n) < np.where(b2b, 0.6, 0.4)
    need = rng.random(n) < 0.7
    timeline = rng.choice([1, 3, 6, 12, 24], size=n)
    n_accounts = max(1, int(b2b.sum()) // 3)
    account = np.where(b2b, rng.integers(0, n_accounts, n), -1)
    company_size = rng.choice([10, 50, 200, 1000, 5000], size=n_accounts)
    prior = np.array([[p.topics.get(t, 0.1) for t in topics] for p in personas])
    interest = prior[persona] * rng.gamma(1.0, 1.0, size=(n, len(topics)))
    buyers = np.array([p.buy_propensity > 0 for p in personas])[persona]
    customer = (rng.random(n) < customer_share) & buyers
    arrival = lead_arrival_days if lead_arrival_days is not None else max(1, min(60, n_days // 3))
    identify_day = np.where(customer, 0, rng.integers(0, arrival, n))
    stage = np.where(
        customer, STAGE["retention"], np.where(rng.random(n) < 0.8, STAGE["awareness"], STAGE["information"])
    )
    status = np.where(customer, STATUS[LeadStatus.ACTIVE], STATUS[LeadStatus.LEAD])
    renewal_days = np.array([p.renewal_days for p in personas])[persona]
    customer_since = np.where(customer, -rng.integers(30, 400, n), NEVER)
    consent = np.zeros((n, len(CHANNELS)), bool)
    consent[:, CHANNEL_CODE[Channel.EMAIL]] = (
        rng.random(n) < np.array([p.email_consent for p in personas])[persona]
    )
    for channel, share in CHANNEL_OPT_IN.items():
        consent[:, CHANNEL_CODE[channel]] = rng.random(n) < share
    tracking = rng.random(n) < np.array([p.tracking_consent for p in personas])[persona]
    consent[:, CHANNEL_CODE[Channel.WEB]] = tracking
    consent[:, CHANNEL_CODE[Channel.IN_APP]] = customer
    return Population(
        persona=persona,
        b2b=b2b,
        authority=authority,
        budget=budget,
        need=need,
        timeline_months=timeline,
        industry=rng.integers(0, len(INDUSTRIES), n),
        company_size=np.where(b2b, company_size[np.maximum(account, 0)], 0),
        country=rng.integers(0, len(COUNTRIES), n),
        account=account,
        boss=_bosses(account, authority, persona, [p.buy_propensity > 0 for p in personas]),
        interest=interest,
        identify_day=identify_day,
        send_minute=rng.integers(7 * 60, 11 * 60, n),
        stage=stage.astype(np.int64),
        status=status.astype(np.int64),
        readiness=np.where(customer, 0.0, rng.gamma(1.0, 0.5, n)),
        progress=np.zeros(n),
        fatigue=np.zeros(n),
        sales_streak=np.zeros(n, np.int64),
        last_touch_day=np.full(n, NEVER),
        last_sales_day=np.full(n, NEVER),
        times_sent=np.zeros((n, n_content), np.int16),
        consumed=np.zeros((n, n_content), bool),
        consent=consent,
        consent_day=np.where(customer[:, None], -rng.integers(30, 400, n)[:, None], identify_day[:, None])
        * np.ones((1, len(CHANNELS)), np.int64),
        tracking=tracking,
        churn_risk=np.where(customer, rng.beta(2, 8, n), 0.0),
        usage=np.where(customer, rng.beta(5, 3, n), 0.0),
        customer_since=customer_since,
        next_renewal=np.where(customer, rng.integers(1, renewal_days + 1), NEVER),
        stage_day=np.where(customer, -30, 0),
        sql_day=np.full(n, NEVER),
        close_day=np.full(n, NEVER),
        engagement=np.zeros((n, 3)),
    )


def _bosses(account: np.ndarray, authority: np.ndarray, persona: np.ndarray, buys: list[bool]) -> np.ndarray:
    """Per contact, the first buying contact with authority in the same account (not the contact itself)."""
    boss = np.full(len(account), -1)
    deciders = np.flatnonzero((account >= 0) & authority & np.array(buys)[persona])
    first = {}
    for k in deciders[::-1]:
        first[int(account[k])] = int(k)
    for k in np.flatnonzero(account >= 0):
        b = first.get(int(account[k]), -1)
        boss[k] = b if b != k else -1
    return boss
