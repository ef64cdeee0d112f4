"""The day loop: each simulated day, due contacts form a decision batch, a policy chooses, the world responds.

Vectorised over contacts (numpy), looped over days. A run is fully determined by the simulator's parameters
and the policy: the same seed gives the same population, the same world randomness, the same events and ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

from features.default_catalog import default_catalog
from features.schemas import STAGE_IDS, ContactProfile, ContentBlock, LeadStatus
from training.simulation.catalog_arrays import CatalogArrays
from training.simulation.events import CHANNELS, EventBuffer, write_events
from training.simulation.observation import NEVER_TOUCHED, WAIT, Observation, Policy
from training.simulation.personas import DEFAULT_PERSONAS, Persona
from training.simulation.population import NEVER, STATUSES, sample_population, status_table
from training.simulation.profiles import account_ids, contact_ids, profiles_frame, profiles_from_frame
from training.simulation.world import RewardWeights, World

log = structlog.get_logger(__name__)

DEFAULT_START = datetime(2025, 1, 6, tzinfo=UTC)
DECISION_COLUMNS = (
    "day",
    "contact",
    "contact_id",
    "persona",
    "stage",
    "lead_status",
    "days_since_last_touch",
    "n_eligible",
    "email_consent",
    "opens_30d",
    "clicks_30d",
    "consumptions_30d",
    "chosen",
    "content_id",
    "propensity",
    "expected_reward",
    "reward",
    "opened",
    "clicked",
    "consumed",
    "attended",
    "unsubscribed",
    "converted",
)
_IN_SALES = status_table((LeadStatus.SAL, LeadStatus.SQL))
"""Contacts in the sales fast lane have left nurturing: no decisions for them."""


@dataclass(frozen=True)
class SimulationSummary:
    """Totals of one run, the numbers policies are compared by."""

    n_contacts: int
    n_days: int
    n_events: int
    n_decisions: int
    n_sends: int
    reward: float
    expected_reward: float
    clicks: int
    unsubscribes: int
    requests: int
    """Demo and contact requests (the sales fast lane)."""
    purchases: int
    cancellations: int
    converted_decisions: int


@dataclass
class SimulationResult:
    """Events, decisions and final profiles of a run, plus per-decision context for OPE checks."""

    events: pd.DataFrame
    decisions: pd.DataFrame
    profiles_frame: pd.DataFrame
    catalog: tuple[ContentBlock, ...]
    summary: SimulationSummary
    eligible: np.ndarray | None = None
    """bool, shape (n_decisions, C): the guardrail mask at each decision (``record_context=True`` only)."""
    expected_rewards: np.ndarray | None = None
    """float32, shape (n_decisions, C): true expected reward of every block at each decision (same switch)."""

    def true_value(self, action_dist: np.ndarray) -> float:
        """True value (mean expected reward per decision) of a policy choosing by ``action_dist``.

        ``action_dist``: float, shape (n_decisions, C), each row a distribution over blocks summing to at most
        1 (the rest is the probability of waiting, worth 0). Needs ``record_context=True``; this is the ground
        truth an off-policy estimate on ``decisions`` is checked against.
        """
        if self.expected_rewards is None or self.eligible is None:
            raise ValueError("true_value needs the per-decision context: run with record_context=True")
        dist = np.asarray(action_dist, float)
        if dist.shape != self.expected_rewards.shape:
            raise ValueError(
                f"`action_dist` must have shape {self.expected_rewards.shape}, but got {dist.shape}"
            )
        bad = (dist < 0).any(axis=1) | (dist.sum(axis=1) > 1 + 1e-9)
        if bad.any():
            raise ValueError(
                f"`action_dist` rows must be >= 0 and sum to <= 1, but {int(bad.sum())} rows do not"
            )
        if (dist[~self.eligible] > 0).any():
            raise ValueError("`action_dist` puts probability on blocks the guardrails excluded")
        return float((dist * self.expected_rewards).sum(axis=1).mean())

    def profiles(self) -> list[ContactProfile]:
        """Final state of every identified contact as validated ``ContactProfile`` objects."""
        return profiles_from_frame(self.profiles_frame)

    def write(self, out_dir: Path | str) -> dict[str, Path]:
        """Write events.parquet, profiles.parquet, decisions.parquet and catalog.json into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            name: out / name
            for name in ("events.parquet", "profiles.parquet", "decisions.parquet", "catalog.json")
        }
        write_events(self.events, paths["events.parquet"])
        self.profiles_frame.to_parquet(paths["profiles.parquet"], index=False)
        self.decisions.to_parquet(paths["decisions.parquet"], index=False)
        catalog = [b.model_dump(mode="json") for b in self.catalog]
        paths["catalog.json"].write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n")
        return paths


@dataclass
class JourneySimulator:
    """Seeded journey simulator; ``run(policy)`` simulates ``n_days`` for ``n_contacts`` with that policy.

    ``expected_reward`` answers from the hidden state of the run in progress (an oracle policy calls it from
    ``choose``) or, after a run, from its final state.
    """

    n_contacts: int = 1_000
    n_days: int = 180
    seed: int = 7
    catalog: Sequence[ContentBlock] | None = None
    personas: Sequence[Persona] = DEFAULT_PERSONAS
    reward_weights: RewardWeights = field(default_factory=RewardWeights)
    customer_share: float = 0.2
    step_days: int = 1
    """A contact's nurture step falls due this many days after its last decision."""
    start: datetime = DEFAULT_START
    conversion_window_days: int = 14
    record_context: bool = False
    lead_arrival_days: int | None = None
    """New leads identify on a uniform day in ``[0, lead_arrival_days)``; ``None``: the first third of the
    run, at most 60 days. A steady inflow (e.g. ``n_days``) keeps fresh leads in a late test window."""

    def __post_init__(self) -> None:
        for name, low in (("n_contacts", 1), ("n_days", 1), ("step_days", 1), ("conversion_window_days", 0)):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}, but got {value!r}")
        arrival = self.lead_arrival_days
        if arrival is not None and (not isinstance(arrival, int | np.integer) or arrival < 1):
            raise ValueError(f"`lead_arrival_days` must be None or an integer >= 1, but got {arrival!r}")
        if not 0.0 <= self.customer_share < 1.0:
            raise ValueError(f"`customer_share` must be in [0, 1), but got {self.customer_share}")
        if self.start.tzinfo is None:
            raise ValueError(f"`start` must be timezone-aware (UTC), but got a naive datetime {self.start}")
        if not self.personas:
            raise ValueError("`personas` must name at least one persona")
        blocks = tuple(
            b for b in (self.catalog if self.catalog is not None else default_catalog()) if b.active
        )
        self.catalog_arrays = CatalogArrays.from_blocks(blocks, self.personas)
        self.world_: World | None = None

    @property
    def blocks(self) -> tuple[ContentBlock, ...]:
        return self.catalog_arrays.blocks

    def expected_reward(
        self, contact_indices: np.ndarray, content_indices: np.ndarray, day: int | None = None
    ) -> np.ndarray:
        """True expected reward of each content for each contact (broadcast) on ``day`` (default today)."""
        if self.world_ is None:
            raise RuntimeError("expected_reward needs a world: call run() (or reset()) first")
        return self.world_.expected_reward(np.asarray(contact_indices), np.asarray(content_indices), day)

    def reset(self) -> World:
        """A fresh world drawn from ``seed``: same seed, same population and same randomness."""
        rng = np.random.default_rng(self.seed)
        pop = sample_population(
            self.n_contacts,
            self.personas,
            self.catalog_arrays.topics,
            self.catalog_arrays.n,
            self.n_days,
            self.customer_share,
            rng,
            self.lead_arrival_days,
        )
        start_us = int(self.start.astimezone(UTC).timestamp()) * 1_000_000
        self.world_ = World(pop, self.catalog_arrays, self.personas, self.reward_weights, start_us, rng)
        return self.world_

    def run(self, policy: Policy, progress: Callable[[int], None] | None = None) -> SimulationResult:
        """Simulate every day with ``policy`` choosing for due contacts; ``progress(day)`` after each day.

        A policy with an ``update(obs, chosen, reward)`` method (``LearningPolicy``) is told each day's
        immediate rewards (0 for waits), so online learners can learn inside the simulation.
        """
        world = self.reset()
        pop, n_content = world.pop, self.catalog_arrays.n
        events = EventBuffer()
        log_parts: list[dict[str, np.ndarray]] = []
        context: list[tuple[np.ndarray, np.ndarray]] = []
        last_decision = np.full(pop.n, -self.step_days)
        ids = contact_ids(pop.n)
        for day in range(self.n_days):
            world.morning(events)
            due = np.flatnonzero(
                (pop.identify_day <= day) & ~_IN_SALES[pop.status] & (day - last_decision >= self.step_days)
            )
            if len(due):
                obs = self._observe(world, due, ids)
                chosen, propensity = _choose(policy, obs)
                last_decision[due] = day
                if self.record_context:  # before the sends change the hidden state
                    er = world.expected_reward(due[:, None], np.arange(n_content)[None, :]).astype(np.float32)
                    context.append((obs.eligible, er))
                logged = self._act(world, obs, chosen, propensity, events)
                log_parts.append(logged)
                update = getattr(policy, "update", None)
                if update is not None:  # online learners see today's immediate rewards
                    update(obs, chosen, logged["reward"].copy())
            world.evening(events)
            if progress is not None:
                progress(day)
        return self._result(world, events, log_parts, context)

    def _observe(self, world: World, due: np.ndarray, ids: np.ndarray) -> Observation:
        pop = world.pop
        since = np.where(pop.last_touch_day[due] == NEVER, NEVER_TOUCHED, world.day - pop.last_touch_day[due])
        return Observation(
            day=world.day,
            timestamp=self.start + timedelta(days=world.day),
            contact_indices=due,
            contact_ids=ids[due],
            stage=pop.stage[due].copy(),
            lead_status=pop.status[due].copy(),
            persona=pop.persona[due].copy(),
            consent=pop.consent[due].copy(),
            tracking_consent=pop.tracking[due].copy(),
            consumed=pop.consumed[due].copy(),
            times_sent=pop.times_sent[due].copy(),
            days_since_last_touch=np.minimum(since, NEVER_TOUCHED),
            engagement=pop.engagement[due].copy(),
            eligible=world.eligible(due),
            catalog=self.blocks,
            stage_ids=STAGE_IDS,
            lead_statuses=tuple(s.value for s in STATUSES),
            persona_names=tuple(p.name for p in self.personas),
            channels=tuple(c.value for c in CHANNELS),
        )

    def _act(
        self,
        world: World,
        obs: Observation,
        chosen: np.ndarray,
        propensity: np.ndarray,
        events: EventBuffer,
    ) -> dict[str, np.ndarray]:
        send = chosen != WAIT
        i, c = obs.contact_indices[send], chosen[send]
        n = obs.n_due
        expected = np.zeros(n)
        expected[send] = world.expected_reward(i, c)
        outcome = world.send(i, c, events)
        columns: dict[str, np.ndarray] = {
            "day": np.full(n, obs.day, np.int32),
            "contact": obs.contact_indices.astype(np.int64),
            "persona": obs.persona.astype(np.int8),
            "stage": obs.stage.astype(np.int8),
            "lead_status": obs.lead_status.astype(np.int8),
            "days_since_last_touch": obs.days_since_last_touch.astype(np.int32),
            "n_eligible": obs.eligible.sum(axis=1).astype(np.int32),
            "email_consent": obs.consent[:, obs.channels.index("email")].copy(),
            "opens_30d": obs.engagement[:, 0].astype(np.float32),
            "clicks_30d": obs.engagement[:, 1].astype(np.float32),
            "consumptions_30d": obs.engagement[:, 2].astype(np.float32),
            "chosen": chosen.astype(np.int32),
            "propensity": propensity,
            "expected_reward": expected,
            "reward": np.zeros(n),
        }
        columns["reward"][send] = outcome.reward
        for name, values in (
            ("opened", outcome.opened),
            ("clicked", outcome.clicked),
            ("consumed", outcome.consumed),
            ("attended", outcome.attended),
            ("unsubscribed", outcome.unsubscribed),
        ):
            full = np.zeros(n, bool)
            full[send] = values
            columns[name] = full
        return columns

    def _result(
        self,
        world: World,
        events: EventBuffer,
        log_parts: list[dict[str, np.ndarray]],
        context: list[tuple[np.ndarray, np.ndarray]],
    ) -> SimulationResult:
        pop = world.pop
        ids = contact_ids(pop.n)
        frame = events.to_frame(
            seed=self.seed,
            contact_ids=ids,
            anonymous_ids=_anonymous_ids(self.seed, pop.n),
            account_ids=account_ids(pop.account),
            content_ids=self.catalog_arrays.ids,
        )
        labels = {
            "persona": tuple(p.name for p in self.personas),
            "stage": STAGE_IDS,
            "lead_status": tuple(s.value for s in STATUSES),
        }
        decisions = _decisions_frame(log_parts, ids, self.catalog_arrays.ids, labels)
        log_parts.clear()
        decisions["converted"] = _converted(frame, decisions, self.conversion_window_days, self.start)
        types = frame["type"].value_counts()
        sends = decisions["chosen"] != WAIT
        summary = SimulationSummary(
            n_contacts=pop.n,
            n_days=self.n_days,
            n_events=len(frame),
            n_decisions=len(decisions),
            n_sends=int(sends.sum()),
            reward=float(decisions["reward"].sum()),
            expected_reward=float(decisions["expected_reward"].sum()),
            clicks=int(decisions["clicked"].sum()),
            unsubscribes=int(decisions["unsubscribed"].sum()),
            requests=int(types.get("demo_request", 0) + types.get("contact_request", 0)),
            purchases=int(types.get("purchase", 0)),
            cancellations=int(types.get("cancellation", 0)),
            converted_decisions=int(decisions.loc[sends, "converted"].sum()),
        )
        log.info("simulation_done", **{k: v for k, v in summary.__dict__.items()})
        return SimulationResult(
            events=frame,
            decisions=decisions,
            profiles_frame=profiles_frame(pop, self.personas, world.start_us, self.n_days),
            catalog=self.blocks,
            summary=summary,
            eligible=np.concatenate([e for e, _ in context]) if context else None,
            expected_rewards=np.concatenate([r for _, r in context]) if context else None,
        )


def _choose(policy: Policy, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
    """Call the policy and check its answer: shape, range, eligibility and propensities."""
    name = type(policy).__name__
    with_propensity = getattr(policy, "choose_with_propensity", None)
    if with_propensity is not None:
        chosen, propensity = with_propensity(obs)
        propensity = np.asarray(propensity, float)
    else:
        chosen, propensity = policy.choose(obs), np.full(obs.n_due, np.nan)
    chosen = np.asarray(chosen)
    if chosen.shape != (obs.n_due,) or not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(
            f"{name}.choose must return integers of shape ({obs.n_due},), but got "
            f"{chosen.dtype} of shape {chosen.shape}"
        )
    if propensity.shape != (obs.n_due,):
        raise ValueError(f"{name} `propensity` must have shape ({obs.n_due},), but got {propensity.shape}")
    bad = (chosen < WAIT) | (chosen >= obs.n_content)
    if bad.any():
        raise ValueError(
            f"{name} chose content indices outside [-1, {obs.n_content}) for {int(bad.sum())} "
            f"contacts, e.g. {int(chosen[bad][0])}"
        )
    send = chosen != WAIT
    rows = np.flatnonzero(send)
    ineligible = rows[~obs.eligible[rows, chosen[rows]]]
    if len(ineligible):
        k = ineligible[0]
        raise ValueError(
            f"{name} chose ineligible content for {len(ineligible)} contacts, e.g. "
            f"{obs.contact_ids[k]} -> {obs.catalog[chosen[k]].content_id}"
        )
    given = ~np.isnan(propensity)
    out_of_range = given & ((propensity <= 0) | (propensity > 1))
    if out_of_range.any():
        raise ValueError(
            f"{name} `propensity` must be in (0, 1], but got values outside for "
            f"{int(out_of_range.sum())} contacts"
        )
    return chosen.astype(np.int64), propensity


def _anonymous_ids(seed: int, n: int) -> np.ndarray:
    """Cookie ids, different per seed, fixed by it."""
    tokens = np.random.default_rng([seed, 0xA11]).integers(0, 2**48, n)
    return np.array([f"anon-{t:012x}" for t in tokens], dtype=object)


def _decisions_frame(
    parts: list[dict[str, np.ndarray]],
    ids: np.ndarray,
    content_ids: tuple[str, ...],
    labels: dict[str, tuple[str, ...]],
) -> pd.DataFrame:
    """One row per decision; persona, stage and lead status as categoricals (1.5 M rows stay small)."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    cols: dict[str, Any] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    for name, categories in labels.items():
        cols[name] = pd.Categorical.from_codes(cols[name], categories=pd.Index(list(categories)))
    cols["contact_id"] = pd.Categorical.from_codes(cols["contact"], categories=pd.Index(ids.astype(str)))
    cols["content_id"] = pd.Categorical.from_codes(cols["chosen"], categories=pd.Index(list(content_ids)))
    cols["converted"] = np.zeros(len(cols["day"]), bool)
    return pd.DataFrame({c: cols[c] for c in DECISION_COLUMNS}, copy=False)


def _converted(events: pd.DataFrame, decisions: pd.DataFrame, window: int, start: datetime) -> np.ndarray:
    """Whether the contact made a request or a purchase within ``window`` days of each decision."""
    if decisions.empty:
        return np.zeros(0, bool)
    conv = events[events["type"].isin(["demo_request", "contact_request", "purchase"])]
    conv_day = ((conv["timestamp"] - pd.Timestamp(start)) // pd.Timedelta(days=1)).to_numpy(np.int64)
    conv_contact = conv["contact_id"].str.slice(1).astype(np.int64).to_numpy()
    big = np.int64(1 << 20)
    keys = np.sort(conv_contact * big + conv_day)
    lo = decisions["contact"].to_numpy() * big + decisions["day"].to_numpy()
    pos = np.searchsorted(keys, lo)
    nxt = keys[np.minimum(pos, len(keys) - 1)] if len(keys) else np.full(len(lo), -1)
    return (pos < len(keys)) & (nxt <= lo + window)
