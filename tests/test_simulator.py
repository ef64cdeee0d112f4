"""The journey simulator and the default catalog: determinism, schema, ground truth, policies, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.default_catalog import check_catalog, default_catalog
from features.schemas import (
    CUSTOMER_PROGRAMS,
    DEFAULT_TAXONOMY,
    STAGE_IDS,
    ContactProfile,
    ContentBlock,
    ContentFormat,
    EngagementEvent,
    EventType,
)
from ripen.cli import app
from training.simulation import (
    DECISION_COLUMNS,
    DEFAULT_PERSONAS,
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    WAIT,
    AggressiveSalesPolicy,
    FixedRulePolicy,
    JourneySimulator,
    Observation,
    OraclePolicy,
    Persona,
    SimulationResult,
    UniformRandomPolicy,
    iter_engagement_events,
)
from training.simulation.events import EventBuffer

CATALOG = default_catalog()
IDS = [b.content_id for b in CATALOG]


def index_of(content_id: str) -> int:
    return IDS.index(content_id)


@pytest.fixture(scope="module")
def run() -> SimulationResult:
    """One mid-sized run shared by the read-only checks (a few seconds)."""
    return JourneySimulator(n_contacts=1500, n_days=150, seed=11).run(FixedRulePolicy())


# ---------------------------------------------------------------------------------------------------- catalog
def test_catalog_covers_every_stage_and_format_with_enough_blocks() -> None:
    assert len(CATALOG) >= 40
    covered = {s for b in CATALOG for s in b.stages}
    assert covered == set(STAGE_IDS)
    assert {b.format for b in CATALOG} == set(ContentFormat)
    assert any(b.gated for b in CATALOG) and any(not b.gated for b in CATALOG)
    assert {p.name for p in DEFAULT_PERSONAS} >= {p for b in CATALOG for p in b.personas}


def test_catalog_blocks_validate_and_customer_stages_carry_customer_programs() -> None:
    for block in CATALOG:
        assert ContentBlock.model_validate(block.model_dump(mode="json")) == block
    customer_stages = {s.id for s in DEFAULT_TAXONOMY.stages if s.customer}
    for block in CATALOG:
        if set(block.stages) <= customer_stages:
            assert block.program in CUSTOMER_PROGRAMS, block.content_id
    programs = {b.program.value for b in CATALOG}
    assert {"upsell", "cross_sell", "retention"} <= programs


def test_catalog_copies_are_independent() -> None:
    mine = default_catalog()
    mine[0].active = False
    assert default_catalog()[0].active


def test_nurture_steps_fall_due_every_step_days() -> None:
    d = (
        JourneySimulator(n_contacts=120, n_days=30, seed=2, step_days=3)
        .run(FixedRulePolicy(min_gap_days=1))
        .decisions
    )
    gaps = d.sort_values(["contact", "day"]).groupby("contact", observed=True)["day"].diff().dropna()
    assert len(gaps) > 0 and (gaps >= 3).all()
    assert (d["chosen"] != WAIT).any()


def test_catalog_has_reminder_pairs_pointing_into_the_catalog() -> None:
    pairs = [(b.content_id, b.alternative_id) for b in CATALOG if b.alternative_id]
    assert pairs and all(alt in IDS for _, alt in pairs)
    assert any(b.prerequisite_id for b in CATALOG)


@pytest.mark.parametrize(
    "blocks, match",
    [
        ([CATALOG[0], CATALOG[0]], "content_id must be unique"),
        ([CATALOG[0].model_copy(update={"alternative_id": "nope"})], "alternative_id names 'nope'"),
        ([CATALOG[0].model_copy(update={"prerequisite_id": "gone"})], "prerequisite_id names 'gone'"),
    ],
)
def test_check_catalog_rejects_broken_catalogs(blocks: list[ContentBlock], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_catalog(blocks)


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_events_and_decisions() -> None:
    a = JourneySimulator(n_contacts=300, n_days=40, seed=5).run(UniformRandomPolicy(seed=1))
    b = JourneySimulator(n_contacts=300, n_days=40, seed=5).run(UniformRandomPolicy(seed=1))
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.decisions, b.decisions)
    pd.testing.assert_frame_equal(a.profiles_frame, b.profiles_frame)


def test_different_seed_gives_different_events() -> None:
    a = JourneySimulator(n_contacts=300, n_days=40, seed=5).run(FixedRulePolicy())
    b = JourneySimulator(n_contacts=300, n_days=40, seed=6).run(FixedRulePolicy())
    assert not set(a.events["event_id"]) & set(b.events["event_id"])
    assert len(a.events) != len(b.events) or not a.events["type"].equals(b.events["type"])


# ----------------------------------------------------------------------------------------------------- events
def test_events_have_exactly_the_export_schema(run: SimulationResult, tmp_path: Path) -> None:
    events = run.events
    assert tuple(events.columns) == EVENT_COLUMNS
    assert str(events["timestamp"].dtype) == "datetime64[us, UTC]"
    assert events["event_id"].is_unique
    assert events["timestamp"].is_monotonic_increasing
    assert set(events["type"]) <= {t.value for t in EventType}
    assert all(
        json.dumps(json.loads(p), separators=(",", ":"), sort_keys=True) == p for p in events["properties"]
    )
    path = tmp_path / "events.parquet"
    run.write(tmp_path)
    assert pq.read_schema(path).remove_metadata() == EVENT_SCHEMA
    assert pq.read_metadata(path).num_rows == len(events)


def test_every_event_validates_as_engagement_event(run: SimulationResult) -> None:
    # Every row of a smaller slice across all types, plus the type mix of the whole run.
    sample = run.events.groupby("type", group_keys=False).head(200)
    parsed = list(iter_engagement_events(sample))
    assert len(parsed) == len(sample)
    assert all(isinstance(e, EngagementEvent) for e in parsed)
    seen = set(run.events["type"])
    for expected in (
        "email_sent",
        "email_open",
        "email_click",
        "content_download",
        "webinar_attend",
        "identify",
        "page_view",
        "status_change",
        "stage_change",
        "demo_request",
        "opportunity_open",
        "purchase",
        "renewal",
        "cancellation",
        "support_ticket",
        "product_usage",
        "unsubscribe",
    ):
        assert expected in seen, expected


def test_anonymous_activity_is_linked_by_an_identify_event_with_tracking_consent(
    run: SimulationResult,
) -> None:
    events = run.events
    anonymous = events[events["contact_id"].isna()]
    assert len(anonymous) > 0 and anonymous["anonymous_id"].notna().all()
    identifies = events[events["type"] == "identify"]
    assert identifies["contact_id"].notna().all() and identifies["anonymous_id"].notna().all()
    consent = identifies["properties"].map(lambda p: json.loads(p)["tracking_consent"])
    assert set(consent) == {True, False}
    first_identify = identifies.groupby("anonymous_id")["timestamp"].min()
    linked = anonymous[anonymous["anonymous_id"].isin(first_identify.index)]
    assert (linked["timestamp"].to_numpy() < first_identify[linked["anonymous_id"]].to_numpy()).all()


def test_event_buffer_properties_template_fills_values() -> None:
    buffer = EventBuffer()
    code = buffer.template({"minutes": "__value__", "kind": "x"})
    buffer.add(
        np.array([0, 1]), EventType.PRODUCT_USAGE, np.array([2, 1]), props=code, value=np.array([5.0, 2.5])
    )
    frame = buffer.to_frame(
        seed=1,
        contact_ids=np.array(["c0", "c1"], dtype=object),
        anonymous_ids=np.array(["a0", "a1"], dtype=object),
        account_ids=np.array([None, None], dtype=object),
        content_ids=("b",),
    )
    assert list(frame["contact_id"]) == ["c1", "c0"]  # sorted by time
    assert list(frame["properties"]) == ['{"kind":"x","minutes":2.50}', '{"kind":"x","minutes":5}']
    assert list(frame["event_id"]) == ["sim1-000000000", "sim1-000000001"]


# --------------------------------------------------------------------------------------------------- profiles
def test_profiles_validate_and_keep_consent_with_timestamps(run: SimulationResult) -> None:
    profiles = run.profiles()
    assert len(profiles) == len(run.profiles_frame) > 1000
    assert all(isinstance(p, ContactProfile) for p in profiles)
    email = [p.consents["email"] for p in profiles]  # type: ignore[index]
    assert any(not r.granted for r in email) and any(r.granted for r in email)
    unsubscribed = set(
        run.events.loc[
            (run.events["type"] == "unsubscribe") & (run.events["channel"] == "email"), "contact_id"
        ]
    )
    assert unsubscribed
    by_id = {p.contact_id: p for p in profiles}
    for cid in unsubscribed:
        assert not by_id[cid].has_consent("email")  # type: ignore[arg-type]
    statuses = {p.lead_status.value for p in profiles}
    assert {"lead", "mql", "active", "churned"} <= statuses
    assert {p.persona for p in profiles} == {p.name for p in DEFAULT_PERSONAS}
    b2c = [p for p in profiles if p.persona == "b2c_switcher"]
    assert all(p.account_id is None and p.company_size is None for p in b2c)


def test_personas_behave_as_briefed(run: SimulationResult) -> None:
    events, profiles = run.events, run.profiles_frame.set_index("contact_id")
    persona = events["contact_id"].map(profiles["persona"])
    buying = events["type"].isin(["purchase", "demo_request", "contact_request"])
    assert not (buying & (persona == "researcher")).any()
    downloads = events["type"] == "content_download"
    per_contact = profiles["persona"].value_counts()
    rate = (persona[downloads].value_counts() / per_contact).fillna(0)
    assert rate["assistant"] > rate["c_level"]
    requests = events["type"].isin(["demo_request", "contact_request"])
    request_rate = (persona[requests].value_counts() / per_contact).fillna(0)
    assert request_rate.get("it_head", 0) > request_rate.get("assistant", 0)


# ----------------------------------------------------------------------------------------------- ground truth
def _world(n: int = 400, seed: int = 3) -> tuple[JourneySimulator, Any]:
    sim = JourneySimulator(n_contacts=n, n_days=30, seed=seed, customer_share=0.0)
    world = sim.reset()
    return sim, world


def test_expected_reward_is_higher_for_stage_fitting_content() -> None:
    sim, world = _world()
    reachable = np.flatnonzero(world.pop.consent[:, 0])  # email
    block = np.array([index_of("in-whitepaper-zero-trust")])
    world.pop.stage[reachable] = STAGE_IDS.index("information")
    fit = sim.expected_reward(reachable, block)
    world.pop.stage[reachable] = STAGE_IDS.index("closing")
    misfit = sim.expected_reward(reachable, block)
    assert (fit > misfit).all()
    # Across the catalog: blocks of the contact's stage beat blocks of other pre-sale stages on average.
    world.pop.stage[reachable] = STAGE_IDS.index("awareness")
    er = sim.expected_reward(reachable[:, None], np.arange(len(CATALOG))[None, :])
    fits = np.array(["awareness" in b.stages for b in CATALOG])
    later = np.array(
        [bool({"consultation", "closing"} & set(b.stages)) and "awareness" not in b.stages for b in CATALOG]
    )
    assert er[:, fits].mean() > er[:, later].mean() + 0.05


def test_five_sales_mails_in_a_row_hurt_compared_to_one_a_week() -> None:
    sim, world = _world()
    pop = world.pop
    reachable = np.flatnonzero(pop.consent[:, 0])
    pop.stage[reachable] = STAGE_IDS.index("consultation")
    burst, weekly = reachable[::2], reachable[1::2]
    offer = index_of("co-consult-assessment")
    buffer = EventBuffer()
    fresh = sim.expected_reward(weekly, np.array([offer]))
    for day in range(4):
        assert world.day == day
        world.send(burst, np.full(len(burst), offer), buffer)
        if day == 0:
            world.send(weekly, np.full(len(weekly), offer), buffer)
        world.evening(buffer)
    # After four daily sales mails the fifth is worth less, and far likelier to end in an unsubscribe.
    res_burst = world.response(burst, np.array([offer]))
    res_weekly = world.response(weekly, np.array([offer]))
    assert res_burst.u_unsub.mean() > 2 * res_weekly.u_unsub.mean()
    b_er, w_er = sim.expected_reward(burst, np.array([offer])), sim.expected_reward(weekly, np.array([offer]))
    assert b_er.mean() < w_er.mean() < fresh.mean()
    # The damage fades with rest: a week later the burst group is nearly as receptive as before.
    later = sim.expected_reward(burst, np.array([offer]), day=world.day + 14)
    assert later.mean() > b_er.mean()


def test_aggressive_sales_policy_raises_unsubscribes_and_loses_reward() -> None:
    aggressive = JourneySimulator(n_contacts=400, n_days=45, seed=2).run(AggressiveSalesPolicy()).decisions
    weekly = JourneySimulator(n_contacts=400, n_days=45, seed=2).run(FixedRulePolicy()).decisions

    def unsub_rate(d: pd.DataFrame) -> float:
        sends = d[d["chosen"] != WAIT]
        return float(sends["unsubscribed"].mean())

    assert unsub_rate(aggressive) > 3 * unsub_rate(weekly)
    assert aggressive["reward"].sum() < weekly["reward"].sum()


def test_an_assistants_downloads_ready_her_boss() -> None:
    sim, world = _world(n=3000, seed=5)
    pop = world.pop
    assistant = [p.name for p in DEFAULT_PERSONAS].index("assistant")
    helpers = np.flatnonzero(
        (pop.persona == assistant) & (pop.boss >= 0) & ~pop.authority & pop.consent[:, 0]
    )
    assert len(helpers) > 20
    sending, idle = helpers[::2], helpers[1::2]
    overlap = np.intersect1d(pop.boss[sending], pop.boss[idle])
    sending, idle = sending[~np.isin(pop.boss[sending], overlap)], idle[~np.isin(pop.boss[idle], overlap)]
    pop.stage[sending] = STAGE_IDS.index("information")
    before = pop.readiness.copy()
    buffer = EventBuffer()
    for block in ("in-whitepaper-cloud-migration", "in-ebook-cloud-guide", "in-whitepaper-zero-trust"):
        pop.consumed[sending, index_of("aw-video-cloud-intro")] = True  # the whitepaper's prerequisite
        world.send(sending, np.full(len(sending), index_of(block)), buffer)
    gained = pop.readiness - before
    assert gained[np.unique(pop.boss[sending])].mean() > 0.05
    assert gained[np.unique(pop.boss[idle])].mean() == 0.0


def test_churn_risk_rises_with_bad_experiences_and_falls_with_retention_content() -> None:
    sim = JourneySimulator(n_contacts=600, n_days=40, seed=3, customer_share=0.5)
    world = sim.reset()
    pop = world.pop
    customers = np.flatnonzero(pop.is_customer & pop.consent[:, 0])
    pop.stage[customers] = STAGE_IDS.index("retention")
    pop.churn_risk[customers] = 0.5
    nurtured, left_alone = customers[::2], customers[1::2]
    retention = [
        index_of(c) for c in ("re-blog-best-practices", "re-webinar-advanced-tips", "ch-offer-fix-together")
    ]
    buffer = EventBuffer()
    for block in retention:
        world.morning(buffer)
        world.send(nurtured, np.full(len(nurtured), block), buffer)
        world.evening(buffer)
    assert pop.churn_risk[nurtured].mean() < pop.churn_risk[left_alone].mean() - 0.05
    # Bad experiences: customers who filed a high-severity ticket end up with a higher risk than the rest.
    for _ in range(30):
        world.morning(buffer)
        world.evening(buffer)
    events = buffer.to_frame(
        seed=0,
        contact_ids=np.arange(pop.n).astype(str).astype(object),
        anonymous_ids=np.arange(pop.n).astype(str).astype(object),
        account_ids=np.full(pop.n, None, dtype=object),
        content_ids=tuple(IDS),
    )
    high = events[(events["type"] == "support_ticket") & events["properties"].str.contains("high")]
    hit = np.zeros(pop.n, bool)
    hit[high["contact_id"].astype(int).to_numpy()] = True
    paying = np.flatnonzero(pop.is_customer)
    assert hit[paying].any() and (~hit[paying]).any()
    assert pop.churn_risk[paying[hit[paying]]].mean() > pop.churn_risk[paying[~hit[paying]]].mean() + 0.05


def test_expected_reward_broadcasts_and_checks_its_arguments() -> None:
    sim = JourneySimulator(n_contacts=50, n_days=10, seed=1)
    with pytest.raises(RuntimeError, match="call run"):
        sim.expected_reward(np.array([0]), np.array([0]))
    sim.reset()
    contacts, content = np.arange(50), np.arange(len(CATALOG))
    matrix = sim.expected_reward(contacts[:, None], content[None, :])
    assert matrix.shape == (50, len(CATALOG))
    pairs = sim.expected_reward(np.repeat(contacts, len(CATALOG)), np.tile(content, 50))
    np.testing.assert_allclose(matrix.ravel(), pairs)
    assert sim.world_ is not None
    sim.world_.day = 3
    with pytest.raises(ValueError, match="`day` must be >= the simulator's current day 3"):
        sim.expected_reward(contacts, np.array([0]), day=2)
    with pytest.raises(IndexError, match="content_indices"):
        sim.expected_reward(contacts, np.array([len(CATALOG)]))
    with pytest.raises(IndexError, match="contact_indices"):
        sim.expected_reward(np.array([50]), np.array([0]))


def test_realised_rewards_match_the_true_expectation() -> None:
    result = JourneySimulator(n_contacts=800, n_days=60, seed=4).run(UniformRandomPolicy(seed=2))
    sends = result.decisions[result.decisions["chosen"] != WAIT]
    assert len(sends) > 4000
    gap = sends["reward"].sum() - sends["expected_reward"].sum()
    assert abs(gap) < 0.05 * sends["expected_reward"].sum()


# --------------------------------------------------------------------------------------------------- policies
def test_oracle_beats_random_and_fixed_rule_in_cumulative_reward() -> None:
    rewards = {}
    for name in ("oracle", "random", "fixed"):
        sim = JourneySimulator(n_contacts=400, n_days=70, seed=8)
        policy = {
            "oracle": OraclePolicy(simulator=sim),
            "random": UniformRandomPolicy(seed=3),
            "fixed": FixedRulePolicy(),
        }[name]
        rewards[name] = sim.run(policy).decisions["reward"].sum()
    assert rewards["oracle"] > rewards["random"]
    assert rewards["oracle"] > rewards["fixed"]


def test_observation_guardrails_and_random_propensities() -> None:
    seen: list[Observation] = []

    class Recording(UniformRandomPolicy):
        def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
            seen.append(obs)
            return super().choose_with_propensity(obs)

    sim = JourneySimulator(n_contacts=300, n_days=30, seed=9, record_context=True)
    result = sim.run(Recording(min_gap_days=1, seed=0))
    obs = seen[-1]
    email_only = np.array([tuple(b.channels) == ("email",) for b in CATALOG])
    no_email = ~obs.consent[:, obs.channels.index("email")]
    assert no_email.any() and not obs.eligible[np.ix_(no_email, email_only)].any()
    assert not (obs.eligible & obs.consumed).any()
    customer_only = np.array([b.for_customers_only for b in CATALOG])
    leads = np.isin(np.array(obs.lead_statuses)[obs.lead_status], ["lead", "mql", "lost"])
    assert not obs.eligible[np.ix_(leads, customer_only)].any()
    # Propensities of the random policy: 1 / number of eligible blocks for sends, 1 for waits.
    d = result.decisions
    assert tuple(d.columns) == DECISION_COLUMNS
    assert result.eligible is not None and result.expected_rewards is not None
    assert result.eligible.shape == result.expected_rewards.shape == (len(d), len(CATALOG))
    sends = d["chosen"].to_numpy() != WAIT
    np.testing.assert_allclose(d["propensity"].to_numpy()[sends], 1.0 / result.eligible[sends].sum(axis=1))
    rows = np.flatnonzero(sends)
    np.testing.assert_allclose(
        result.expected_rewards[rows, d["chosen"].to_numpy()[rows]],
        d["expected_reward"].to_numpy()[rows],
        rtol=1e-5,
    )
    assert d["converted"].any()


def test_true_value_agrees_with_an_ips_estimate_from_the_logged_propensities() -> None:
    sim = JourneySimulator(n_contacts=400, n_days=40, seed=12, record_context=True)
    result = sim.run(UniformRandomPolicy(min_gap_days=1, seed=4))
    assert result.eligible is not None
    d = result.decisions
    # Target policy: the first eligible block in catalog order, wait when nothing is eligible.
    has_any = result.eligible.any(axis=1)
    target = np.where(has_any, result.eligible.argmax(axis=1), WAIT)
    dist = np.zeros(result.eligible.shape)
    dist[np.flatnonzero(has_any), target[has_any]] = 1.0
    truth = result.true_value(dist)
    match = d["chosen"].to_numpy() == target
    terms = match / d["propensity"].to_numpy() * d["reward"].to_numpy()
    ips, se = terms.mean(), terms.std() / np.sqrt(len(terms))
    assert abs(ips - truth) < 4 * se
    # The logging policy's own value is the mean expected reward of what it chose.
    uniform = result.eligible / np.maximum(result.eligible.sum(axis=1, keepdims=True), 1)
    assert result.true_value(uniform) == pytest.approx(d["expected_reward"].mean(), rel=0.05)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda e: np.zeros((1, 1)), "`action_dist` must have shape"),
        (lambda e: np.full(e.shape, 1.0), "sum to <= 1"),
        (
            lambda e: (~e).astype(float) / np.maximum((~e).sum(axis=1, keepdims=True), 1),
            "guardrails excluded",
        ),
    ],
)
def test_true_value_rejects_bad_action_distributions(make: Any, match: str) -> None:
    result = JourneySimulator(n_contacts=80, n_days=8, seed=1, record_context=True).run(FixedRulePolicy())
    assert result.eligible is not None
    with pytest.raises(ValueError, match=match):
        result.true_value(make(result.eligible))
    plain = JourneySimulator(n_contacts=80, n_days=8, seed=1).run(FixedRulePolicy())
    with pytest.raises(ValueError, match="record_context=True"):
        plain.true_value(np.zeros((len(plain.decisions), len(CATALOG))))


def test_simulated_events_and_profiles_load_into_the_embedded_event_store(tmp_path: Path) -> None:
    from features.event_store import open_event_store

    result = JourneySimulator(n_contacts=150, n_days=40, seed=2).run(FixedRulePolicy())
    events = list(iter_engagement_events(result.events))
    with open_event_store(f"sqlite:///{tmp_path / 'events.db'}") as store:
        first = store.append(events)
        assert first.stored == len(events) and first.rejected == 0
        assert store.append(events[:50]).duplicates == 50
        assert store.upsert_profiles(result.profiles()) == len(result.profiles_frame)
        assert store.upsert_content(list(result.catalog)) == len(CATALOG)
        exported = store.export_parquet(tmp_path / "export.parquet")
    # Anonymous events count only where an identify event with tracking consent linked them.
    anonymous = result.events["contact_id"].isna()
    assert len(result.events) - anonymous.sum() <= exported < len(result.events)


def test_learning_policies_are_told_each_days_rewards() -> None:
    calls: list[tuple[int, np.ndarray, np.ndarray]] = []

    class Learner(FixedRulePolicy):
        def update(self, obs: Observation, chosen: np.ndarray, reward: np.ndarray) -> None:
            calls.append((obs.day, chosen, reward))

    result = JourneySimulator(n_contacts=150, n_days=12, seed=6).run(Learner())
    d = result.decisions
    assert [day for day, _, _ in calls] == sorted(d["day"].unique())
    np.testing.assert_array_equal(np.concatenate([c for _, c, _ in calls]), d["chosen"].to_numpy())
    np.testing.assert_allclose(np.concatenate([r for _, _, r in calls]), d["reward"].to_numpy())
    assert all((r[c == WAIT] == 0).all() for _, c, r in calls)


class _Fixed:
    def __init__(self, answer: Any, propensity: Any = None) -> None:
        self.answer, self.propensity = answer, propensity

    def choose(self, obs: Observation) -> np.ndarray:
        return self.answer(obs)  # type: ignore[no-any-return]


class _WithPropensity(_Fixed):
    def choose_with_propensity(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        return self.answer(obs), self.propensity(obs)


def _ineligible(obs: Observation) -> np.ndarray:
    return np.where(obs.eligible.any(axis=1), (~obs.eligible).argmax(axis=1), WAIT)


@pytest.mark.parametrize(
    "policy, match",
    [
        (_Fixed(lambda obs: np.zeros(obs.n_due + 1, int)), "must return integers of shape"),
        (_Fixed(lambda obs: np.zeros(obs.n_due, float)), "must return integers of shape"),
        (_Fixed(lambda obs: np.full(obs.n_due, 999)), "outside \\[-1, 45\\)"),
        (_Fixed(_ineligible), "chose ineligible content for"),
        (
            _WithPropensity(lambda obs: np.full(obs.n_due, WAIT), lambda obs: np.zeros(obs.n_due)),
            "`propensity` must be in \\(0, 1\\]",
        ),
        (
            _WithPropensity(lambda obs: np.full(obs.n_due, WAIT), lambda obs: np.ones(3)),
            "`propensity` must have",
        ),
    ],
)
def test_bad_policy_answers_are_rejected_naming_the_problem(policy: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JourneySimulator(n_contacts=60, n_days=5, seed=1, customer_share=0.0).run(policy)


def test_leads_arrive_early_by_default_and_steadily_with_lead_arrival_days() -> None:
    def identify_days(sim: JourneySimulator) -> pd.Series:
        events = sim.run(UniformRandomPolicy(seed=3)).events
        stamps = pd.to_datetime(events.loc[events["type"] == "identify", "timestamp"], utc=True)
        return (stamps - pd.Timestamp(sim.start)).dt.days

    default = identify_days(JourneySimulator(n_contacts=300, n_days=90, seed=3))
    steady = identify_days(JourneySimulator(n_contacts=300, n_days=90, seed=3, lead_arrival_days=90))
    assert default.max() < 30  # the first third of the run
    assert steady.max() >= 80 and (steady >= 60).sum() > len(steady) / 5


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("n_contacts", 0, "`n_contacts` must be an integer >= 1"),
        ("n_days", 1.5, "`n_days` must be an integer >= 1"),
        ("step_days", 0, "`step_days` must be an integer >= 1"),
        ("customer_share", 1.0, "`customer_share` must be in \\[0, 1\\)"),
        ("start", datetime(2025, 1, 1), "`start` must be timezone-aware"),
        ("personas", (), "`personas` must name at least one persona"),
        ("lead_arrival_days", 0, "`lead_arrival_days` must be None or an integer >= 1"),
    ],
)
def test_bad_simulator_parameters_are_rejected(field: str, value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        JourneySimulator(**{field: value})


@pytest.mark.parametrize(
    "change, match",
    [
        ({"share": 1.5}, "`share` must be in \\[0, 1\\]"),
        ({"open_rate": -0.1}, "`open_rate` must be in \\[0, 1\\]"),
        ({"buy_propensity": -1.0}, "`buy_propensity`"),
        ({"renewal_days": 0}, "`renewal_days` must be >= 1"),
    ],
)
def test_bad_persona_parameters_are_rejected(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        replace(DEFAULT_PERSONAS[0], **change)


def test_policy_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match="`min_gap_days` must be an integer >= 1"):
        FixedRulePolicy(min_gap_days=0)
    with pytest.raises(ValueError, match="`simulator` is required"):
        OraclePolicy()


def test_custom_persona_mix_is_used() -> None:
    only = (replace(DEFAULT_PERSONAS[0], share=1.0),)
    result = JourneySimulator(n_contacts=100, n_days=10, seed=1, personas=only).run(FixedRulePolicy())
    assert set(result.profiles_frame["persona"]) == {"it_head"}
    assert isinstance(only[0], Persona)


# -------------------------------------------------------------------------------------------------------- CLI
def test_cli_writes_events_profiles_and_catalog(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        app, ["simulate", "--contacts", "120", "--days", "20", "--seed", "3", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_contacts"] == 120 and summary["seed"] == 3
    assert pq.read_schema(out / "events.parquet").remove_metadata() == EVENT_SCHEMA
    assert pq.read_metadata(out / "events.parquet").num_rows == summary["n_events"]
    profiles = pd.read_parquet(out / "profiles.parquet")
    assert profiles["contact_id"].is_unique and len(profiles) > 0
    blocks = [ContentBlock.model_validate(b) for b in json.loads((out / "catalog.json").read_text())]
    assert [b.content_id for b in blocks] == IDS
