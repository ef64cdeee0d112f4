"""Batch decisions: batch = single, guardrails in batch, resumable runs, audience input, ``ripen decide``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.decision_log import (
    DecisionLog,
    DecisionRecord,
    RewardRecord,
    RewardSource,
    decisions_table,
    open_settings_decision_log,
)
from features.event_store import open_settings_event_store
from features.online import assemble
from features.schemas import Channel, ConsentRecord, ContactProfile, ContentFormat, LeadStatus, Program
from models.context import ActionKind, Candidate, ContactContext
from models.decision_batch import ContactData, ContactRequest, batch_event_id, decide_contacts
from models.policy.decide import decide, decision_records, prepare_catalog
from models.policy.encoding import encode_candidates
from models.policy.inverse_gap_weighting import InverseGapWeighting
from ripen.cli import app
from ripen.settings import Settings
from serving.metrics import ServingMetrics
from serving.pipeline import DecisionPipeline, RecommendInput
from tests.api_support import restored_logging
from tests.decision_world import build_world
from training.batch_decisions import (
    Audience,
    AudienceError,
    BatchReport,
    collector_paused,
    open_resources,
    read_audience,
    run_batch,
    segment_audience,
    validate_segment,
)
from training.champions import Champions
from training.policy_training import decision_log_data

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAGES = ("awareness", "information", "consultation", "closing")
EMAIL = {Channel.EMAIL: ConsentRecord(granted=True, at=NOW - timedelta(days=90))}


# ------------------------------------------------------------------------------------ synthetic contacts
def catalog(n: int = 50) -> list[Candidate]:
    formats = list(ContentFormat)[:10]
    blocks = [
        Candidate(
            f"b-{j:02d}", formats[j % len(formats)], (STAGES[j % 4], STAGES[(j + 1) % 4]), topics=("t",)
        )
        for j in range(n - 2)
    ]
    retention = [
        Candidate("keep-1", ContentFormat.CHECKLIST, ("retention",), program=Program.RETENTION),
        Candidate("keep-2", ContentFormat.WEBINAR, ("retention",), program=Program.RETENTION),
    ]
    return blocks + retention


def contact(i: int, rng: np.random.Generator) -> ContactData:
    """A contact with random stage, consent, clicks, consumed blocks and last touch (features as stored)."""
    profile = ContactProfile(
        contact_id=f"c-{i}",
        lifecycle_stage=STAGES[int(rng.integers(0, 4))],
        lead_status=LeadStatus.MQL if rng.random() < 0.3 else LeadStatus.LEAD,
        consents=EMAIL if rng.random() < 0.9 else {},
    )
    row: dict[str, Any] = {
        "as_of_ts": (NOW - timedelta(days=1)).timestamp(),
        "email_click_30d": float(rng.integers(0, 25)),
        "page_view_30d": float(rng.integers(0, 10)),
        "consumed_content_ids": tuple(f"b-{j:02d}" for j in rng.choice(48, size=3, replace=False)),
        "events_total": 5,
    }
    if rng.random() < 0.3:
        row["last_touch_ts"] = (NOW - timedelta(days=float(rng.uniform(0, 6)))).timestamp()
    features = assemble(profile.contact_id, NOW.timestamp(), row, {}, [])
    return ContactData(profile, features)


@pytest.fixture(scope="module")
def fitted() -> Champions:
    """A fitted inverse-gap-weighting policy: probabilities strictly between 0 and 1, seeded sampling."""
    rng = np.random.default_rng(3)
    blocks = catalog()
    data = [contact(i, rng) for i in range(400)]
    prepared = prepare_catalog(blocks)
    result = decide_contacts(
        [ContactRequest(d.profile.contact_id) for d in data if d.profile],
        data,
        prepared,
        Champions(),
        channel=Channel.EMAIL,
        now=NOW,
        fallback_policy=InverseGapWeighting(greedy=True),
    )
    X = np.array([r.context_features for r in result.records])
    A = encode_candidates(blocks)
    policy = InverseGapWeighting(gamma=20.0).fit(
        X, A, rng.integers(0, len(blocks), len(X)), rng.random(len(X))
    )
    return Champions(policy=policy, policy_version="igw-test")


def decide_all(data: list[ContactData], models: Champions, **kw: Any) -> Any:
    requests = [
        ContactRequest(d.profile.contact_id, event_id=f"e-{d.profile.contact_id}") for d in data if d.profile
    ]
    return decide_contacts(
        requests,
        data,
        prepare_catalog(catalog()),
        models,
        channel=Channel.EMAIL,
        now=NOW,
        seed=11,
        fallback_policy=InverseGapWeighting(greedy=True),
        **kw,
    )


def test_a_contact_gets_the_same_decision_and_log_record_alone_or_in_a_batch(fitted: Champions) -> None:
    rng = np.random.default_rng(0)
    data = [contact(i, rng) for i in range(300)]
    together = decide_all(data, fitted, n_slots=3)
    probabilities = [o.decision.probability for o in together.outcomes if o.decision.probability is not None]
    assert any(0 < p < 1 for p in probabilities)  # a real stochastic policy, not a trivial argmax
    for k in range(0, 300, 7):
        alone = decide_all([data[k]], fitted, n_slots=3)
        single, batched = alone.outcomes[0], together.outcomes[k]
        # Identical except for the last bit of non-chosen probabilities: BLAS sums a 1-row and an n-row
        # matrix product in different orders (~1e-17); the choice and its logged probability are exact.
        assert replace(single, decision=replace(single.decision, eligible_probabilities={})) == replace(
            batched, decision=replace(batched.decision, eligible_probabilities={})
        )
        assert single.decision.eligible_probabilities == pytest.approx(
            batched.decision.eligible_probabilities, abs=1e-12
        )
        assert replace(alone.records[0], eligible=()) == replace(together.records[k], eligible=())


def test_every_guardrail_applies_in_batch(fitted: Champions) -> None:
    rng = np.random.default_rng(1)
    data = [contact(i, rng) for i in range(500)]
    # Contacts forced into each rule: sales fast lane, waiting period, no consent.
    hot = data[0].features
    assert hot is not None and all(d.profile is not None for d in data)
    lead = {"lead_status": LeadStatus.LEAD}
    data[0] = ContactData(
        data[0].profile.model_copy(update={"lead_status": LeadStatus.SQL}),  # type: ignore[union-attr]
        replace(hot, points=replace(hot.points, total=500.0)),
    )
    data[1] = ContactData(
        data[1].profile.model_copy(update=lead),  # type: ignore[union-attr]
        replace(hot, contact_id="c-1", days_since_last_touch=0.5),
    )
    data[2] = ContactData(
        data[2].profile.model_copy(update={**lead, "consents": {}}),  # type: ignore[union-attr]
        replace(hot, contact_id="c-2", days_since_last_touch=None),
    )
    result = decide_all(data, fitted)
    outcomes = result.outcomes
    assert (
        outcomes[0].decision.action is ActionKind.HANDOFF_TO_SALES
        and "readiness" in outcomes[0].decision.reason
    )
    assert outcomes[1].decision.action is ActionKind.WAIT
    assert outcomes[1].decision.wait_until == NOW - timedelta(days=0.5) + timedelta(days=3)
    assert outcomes[2].decision.action is ActionKind.NOTHING_ELIGIBLE
    assert {e.reason.value for e in outcomes[2].decision.exclusions} >= {"no_consent"}
    for outcome, d in zip(outcomes, data, strict=True):
        decision = outcome.decision
        assert d.profile is not None and d.features is not None
        if decision.action is not ActionKind.CONTENT:
            continue
        chosen = decision.content_id
        block = next(c for c in catalog() if c.content_id == chosen)
        assert d.profile.lifecycle_stage in block.stages  # stage fit
        assert chosen not in d.features.consumed_content_ids  # no repeats
        assert Channel.EMAIL in d.profile.consents  # consent
        assert sum(decision.eligible_probabilities.values()) == pytest.approx(1.0)
        assert decision.eligible_probabilities[chosen] == decision.probability
    assert {ActionKind.CONTENT, ActionKind.WAIT, ActionKind.HANDOFF_TO_SALES} <= {
        o.decision.action for o in outcomes
    }


def test_degraded_contacts_are_decided_by_the_fallback_in_the_same_batch(fitted: Champions) -> None:
    rng = np.random.default_rng(2)
    data = [contact(i, rng) for i in range(20)]
    data[5] = ContactData(data[5].profile, None)
    result = decide_all(data, fitted)
    assert result.outcomes[5].degraded and result.outcomes[5].decision.policy_version == "stage-fit-fallback"
    assert {o.decision.policy_version for i, o in enumerate(result.outcomes) if i != 5} == {"igw-test"}
    assert all(len(r.context_features) == len(result.records[0].context_features) for r in result.records)


# ------------------------------------------------------------------------------------ the real stores
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root: Path = tmp_path_factory.mktemp("batch")
    settings = Settings(data_dir=root / "data", datasets_dir=root / "datasets")
    build_world(settings)
    return settings


def test_single_recommend_is_the_batch_path_with_one_contact(world: Settings) -> None:
    pipeline = DecisionPipeline.load(world)
    store = open_settings_event_store(world)
    try:
        ids = ["c-ready", "c-sql", "c-nocons", "c-stranger"]
        now = datetime.now(UTC)
        inputs = [RecommendInput(c, Channel.EMAIL, n_slots=2, event_id=f"same-{c}") for c in ids]
        many = pipeline.recommend_batch(inputs, store, ServingMetrics(), now)
        for request, batched in zip(inputs, many, strict=True):
            single = pipeline.recommend(request, store, ServingMetrics(), now)
            assert batched is not None
            assert single.decision == batched.decision
            assert (single.readiness, single.churn_risk, single.cold_start) == (
                batched.readiness,
                batched.churn_risk,
                batched.cold_start,
            )
            assert single.features == batched.features  # bulk read == single fast lookup
    finally:
        store.close()
        pipeline.close()


def audience(tmp_path: Path, text: str, name: str = "audience.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Interrupt(KeyboardInterrupt):
    """Stands for Ctrl-C (or a crash) after some chunks were finished."""


def test_an_interrupted_run_resumes_without_logging_any_decision_twice(
    world: Settings, tmp_path: Path
) -> None:
    contacts = read_audience(
        audience(tmp_path, "contact_id\nc-ready\nc-sql\nc-nocons\nc-stranger\nc-ready\n")
    )
    assert (len(contacts), contacts.duplicates) == (4, 1)
    log = open_settings_decision_log(world)
    resources = open_resources(world)
    try:
        before = log.count()

        def crash_after_two(done: int, total: int) -> None:
            if done == 2:
                raise Interrupt

        with pytest.raises(Interrupt):
            run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="r1", chunk_size=1,
                      progress=crash_after_two)  # fmt: skip
        # The chunk the writer was storing when the crash came is finished (logged, then its part written);
        # chunks not started are dropped: every logged decision has its part.
        parts = len(list((world.data_dir / "batch_runs" / "r1").glob("part-*.parquet")))
        assert parts in (2, 3) and log.count() == before + parts
        out = tmp_path / "decisions.csv"
        report = run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="r1",
                           chunk_size=1, out=out)  # fmt: skip
        assert (report.resumed_chunks, report.log_stored, report.log_duplicates) == (parts, 4 - parts, 0)
        assert log.count() == before + 4
        # A crash after the log insert but before the chunk's checkpoint: the chunk is redone, not re-logged.
        (world.data_dir / "batch_runs" / "r1" / "part-00003.parquet").unlink()
        again = run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="r1",
                          chunk_size=1, out=out)  # fmt: skip
        assert (again.resumed_chunks, again.log_stored, again.log_duplicates) == (3, 0, 1)
        assert log.count() == before + 4
        fresh = run_batch(
            world, contacts, channel=Channel.EMAIL, resources=resources, run_id="r2", out=tmp_path / "f.csv"
        )
    finally:
        resources.close()
        log.close()
    resumed, uninterrupted = pd.read_csv(out), pd.read_csv(tmp_path / "f.csv")
    assert list(resumed["contact_id"]) == ["c-ready", "c-sql", "c-nocons", "c-stranger"]
    assert resumed["event_id"].tolist() == [batch_event_id("r1", c) for c in resumed["contact_id"]]
    same = ["contact_id", "action", "content_id", "probability", "stage", "cold_start"]
    pd.testing.assert_frame_equal(resumed[same], uninterrupted[same])
    assert fresh.resumed_chunks == 0 and fresh.actions == {"content": 2, "nothing_eligible": 2}


def _logged(log: DecisionLog, event_ids: list[str]) -> list[DecisionRecord | None]:
    return [log.get(e) for e in event_ids]


def test_two_worker_processes_write_the_same_decisions_and_log_rows_as_one(
    world: Settings, tmp_path: Path
) -> None:
    contacts = read_audience(
        audience(tmp_path, "contact_id,program\nc-ready,p\nc-sql,p\nc-nocons,q\nc-stranger,q\n")
    )
    directory = world.data_dir / "batch_runs" / "w1"
    log = open_settings_decision_log(world)
    resources = open_resources(world)
    try:
        one = run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="w1",
                        chunk_size=1, out=tmp_path / "one.parquet")  # fmt: skip
        event_ids = [batch_event_id("w1", c) for c in contacts.contact_ids]
        logged_by_one = _logged(log, event_ids)
        # Forget the run's decisions (log rows and parts) but keep its manifest, so the same run id decides
        # again at the same time with the same event ids, this time in two worker processes.
        with log._tx() as conn:  # noqa: SLF001 - the test removes exactly this run's rows
            conn.execute(decisions_table.delete().where(decisions_table.c.event_id.in_(event_ids)))
        for part in directory.glob("part-*.parquet"):
            part.unlink()
        assert _logged(log, event_ids) == [None] * 4
        two = run_batch(world, contacts, channel=Channel.EMAIL, run_id="w1", chunk_size=1,
                        out=tmp_path / "two.parquet", workers=2,
                        open_worker_resources=partial(open_resources, world))  # fmt: skip
        logged_by_two = _logged(log, event_ids)
    finally:
        resources.close()
        log.close()
    assert (one.log_stored, two.log_stored, two.log_duplicates, two.workers) == (4, 4, 0, 2)
    assert two.worker_peak_rss_mb > 0 and one.worker_peak_rss_mb == 0
    first, second = pq.read_table(tmp_path / "one.parquet"), pq.read_table(tmp_path / "two.parquet")
    assert first.column("contact_id").to_pylist() == ["c-ready", "c-sql", "c-nocons", "c-stranger"]
    assert first.equals(second)
    assert all(r is not None for r in logged_by_one) and logged_by_two == logged_by_one
    assert (one.actions, one.cold_start) == (two.actions, two.cold_start)


def test_an_interrupted_multi_worker_run_resumes_without_logging_any_decision_twice(
    world: Settings, tmp_path: Path
) -> None:
    ids = ["c-ready", "c-sql", "c-nocons", "c-stranger"] + [f"c-new-{i}" for i in range(12)]  # cold starts
    contacts = Audience(ids, [None] * len(ids), [None] * len(ids))
    directory = world.data_dir / "batch_runs" / "w2"
    opener = partial(open_resources, world)
    log = open_settings_decision_log(world)
    try:
        before = log.count()

        def crash_at_first(done: int, total: int) -> None:
            raise Interrupt

        with pytest.raises(Interrupt):
            run_batch(world, contacts, channel=Channel.EMAIL, run_id="w2", chunk_size=1, workers=2,
                      open_worker_resources=opener, progress=crash_at_first)  # fmt: skip
        # Chunks already submitted (at most two per worker) finish; nothing after them starts. Every part
        # has its log rows and no decision is logged without its part.
        parts = len(list(directory.glob("part-*.parquet")))
        assert 1 <= parts <= 4 and log.count() == before + parts
        report = run_batch(world, contacts, channel=Channel.EMAIL, run_id="w2", chunk_size=1, workers=2,
                           open_worker_resources=opener, out=tmp_path / "w2.csv")  # fmt: skip
        assert (report.resumed_chunks, report.log_stored, report.log_duplicates) == (parts, 16 - parts, 0)
        assert log.count() == before + 16
        # A worker that logged a chunk but died before its part: the chunk is redone, not re-logged.
        (directory / "part-00002.parquet").unlink()
        again = run_batch(world, contacts, channel=Channel.EMAIL, run_id="w2", chunk_size=1, workers=2,
                          open_worker_resources=opener, out=tmp_path / "w2.csv")  # fmt: skip
        assert (again.resumed_chunks, again.log_stored, again.log_duplicates) == (15, 0, 1)
        assert log.count() == before + 16
    finally:
        log.close()
    rows = pd.read_csv(tmp_path / "w2.csv")
    assert rows["contact_id"].tolist() == ids
    assert rows["event_id"].tolist() == [batch_event_id("w2", c) for c in ids]
    assert rows["cold_start"].tolist()[4:] == [True] * 12


def test_worker_counts_and_resources_are_checked(world: Settings) -> None:
    contacts = Audience(["c-ready"], [None], [None])
    with pytest.raises(ValueError, match="`workers` must be at least 1"):
        run_batch(world, contacts, channel=Channel.EMAIL, run_id="w3", workers=0)
    with pytest.raises(ValueError, match="open_worker_resources"):
        run_batch(world, contacts, channel=Channel.EMAIL, run_id="w3", workers=2)
    with pytest.raises(ValueError, match="needs `resources`"):
        run_batch(world, contacts, channel=Channel.EMAIL, run_id="w3")


def test_the_collector_is_paused_only_when_asked(world: Settings) -> None:
    """Jobs in the API server leave the process's collector alone; ``ripen decide`` pauses it per chunk."""
    import gc

    resources = open_resources(world)
    seen: list[bool] = []
    read = resources.source

    def source(ids: Any, now: datetime) -> list[ContactData]:
        seen.append(gc.isenabled())
        return read(ids, now)

    resources.source = source
    contacts = Audience(["c-ready", "c-sql"], [None, None], [None, None])
    try:
        run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="g1", chunk_size=1)
        run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="g2", chunk_size=1,
                  pause_collector=True)  # fmt: skip
    finally:
        resources.close()
    assert seen == [True, True, False, False] and gc.isenabled()


def test_a_failed_log_write_stops_the_run_without_a_part_for_that_chunk(
    world: Settings, tmp_path: Path
) -> None:
    resources = open_resources(world)
    resources.decision_log.close()
    resources.decision_log = DecisionLog(f"sqlite:///{tmp_path / 'broken.db'}")
    with resources.decision_log._tx() as conn:  # noqa: SLF001 - a real failure: the table is gone
        conn.exec_driver_sql("ALTER TABLE policy_decisions RENAME TO gone")
    contacts = Audience(["c-ready", "c-sql", "c-nocons"], [None] * 3, [None] * 3)
    try:
        with pytest.raises(Exception, match="policy_decisions"):
            run_batch(world, contacts, channel=Channel.EMAIL, resources=resources, run_id="f1", chunk_size=1)
    finally:
        resources.decision_log.close()
        resources.close()
    assert not list((world.data_dir / "batch_runs" / "f1").glob("part-*"))


def test_a_run_id_cannot_resume_another_audience(world: Settings, tmp_path: Path) -> None:
    resources = open_resources(world)
    try:
        run_batch(world, Audience(["c-ready"], [None], [None]), channel=Channel.EMAIL, resources=resources,
                  run_id="r3")  # fmt: skip
        with pytest.raises(ValueError, match="another audience"):
            run_batch(world, Audience(["c-sql"], [None], [None]), channel=Channel.EMAIL, resources=resources,
                      run_id="r3")  # fmt: skip
    finally:
        resources.close()


def test_unknown_contacts_are_rejected_per_row_when_configured(world: Settings, tmp_path: Path) -> None:
    settings = world.model_copy(update={"batch_unknown_contacts": "reject"})
    resources = open_resources(settings)
    try:
        report = run_batch(settings, Audience(["c-stranger", "c-ready"], [None, "p"], ["awareness", None]),
                           channel=Channel.EMAIL, resources=resources, run_id="r4")  # fmt: skip
    finally:
        resources.close()
    frame = pd.read_parquet(report.out)
    assert frame["status"].tolist() == ["rejected", "decided"]
    assert frame["event_id"].isna().tolist() == [True, False]
    assert frame["program"].tolist() == [None, "p"] and frame["requested_stage"].tolist() == [
        "awareness",
        None,
    ]
    assert (report.decided, report.rejected) == (1, 1)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "line 1: the audience file is empty"),
        ("id\nc-1\n", "line 1: the header needs a `contact_id` column"),
        ("contact_id,color\nc-1,red\n", r"line 1: unknown columns \['color'\]"),
        ("contact_id\nc-1\n\n \n", "line 4: `contact_id` is empty"),
        ("contact_id,stage\nc-1,awareness\nc-2\n", "line 3: expected 2 fields, but got 1"),
        ("contact_id,stage\nc-1,awareness\nc-2,nirvana\n", "line 3: `stage` must be one of"),
        ("contact_id\n" + "x" * 129 + "\n", "line 2: `contact_id` must be at most 128"),
    ],
)
def test_malformed_audience_files_fail_with_the_line_number(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(AudienceError, match=match):
        read_audience(audience(tmp_path, text))


def test_parquet_audiences_are_read_and_checked_by_row(tmp_path: Path) -> None:
    good = tmp_path / "a.parquet"
    pq.write_table(pa.table({"contact_id": ["c-1", "c-2", "c-1"], "stage": ["awareness", None, None]}), good)
    read = read_audience(good)
    assert (read.contact_ids, read.stages, read.duplicates) == (["c-1", "c-2"], ["awareness", None], 1)
    bad = tmp_path / "b.parquet"
    pq.write_table(pa.table({"contact_id": ["c-1", None]}), bad)
    with pytest.raises(AudienceError, match="line 3: `contact_id` is empty"):
        read_audience(bad)
    with pytest.raises(AudienceError, match="not a readable Parquet"):
        read_audience(audience(tmp_path, "not parquet", "c.parquet"))


@pytest.mark.parametrize(
    "expression, match",
    [
        ("", "empty"),
        ("1=1; DROP TABLE profiles", "not allowed"),
        ("contact_id IN (SELECT contact_id FROM profiles)", "not allowed"),
        ("contact_id = 'a' -- comment", "not allowed"),
        ("len(read_csv('/etc/passwd')) > 0", "not allowed"),
    ],
)
def test_unsafe_segments_are_refused(expression: str, match: str) -> None:
    with pytest.raises(AudienceError, match=match):
        validate_segment(expression)


def test_segments_select_profiles(world: Settings) -> None:
    store = open_settings_event_store(world)
    try:
        assert segment_audience(store, "lifecycle_stage = 'closing'").contact_ids == ["c-sql"]
        assert segment_audience(store, "consent_email AND lifecycle_stage = 'awareness'").contact_ids == [
            "c-ready"
        ]
        with pytest.raises(AudienceError, match="not a valid condition"):
            segment_audience(store, "no_such_column > 1")
    finally:
        store.close()


def test_ripen_decide_writes_decisions_and_reports_json(world: Settings, tmp_path: Path) -> None:
    path = audience(tmp_path, "contact_id,program\nc-ready,welcome\nc-sql,welcome\n")
    out = tmp_path / "out.jsonl"
    with restored_logging():
        result = CliRunner().invoke(
            app,
            ["decide", "--channel", "email", "--audience", str(path), "--out", str(out), "--json",
             "--data-dir", str(world.data_dir)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = BatchReport(**json.loads(result.stdout[result.stdout.index("{") :]))
    assert (report.contacts, report.decided, report.actions) == (2, 2, {"content": 2})
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["contact_id"], r["content_id"], r["program"]) for r in rows] == [
        ("c-ready", "faq", "welcome"),
        ("c-sql", "offer", "welcome"),
    ]
    with restored_logging():
        bad = CliRunner().invoke(
            app, ["decide", "--channel", "email", "--audience", str(path), "--segment", "x"]
        )
        bad_file = audience(tmp_path, "contact_id\n\n,\n", "bad.csv")
        wrong = CliRunner().invoke(
            app,
            ["decide", "--channel", "email", "--audience", str(bad_file), "--data-dir", str(world.data_dir)],
        )
    assert bad.exit_code != 0 and "exactly one of" in bad.output
    assert wrong.exit_code != 0 and "line 3" in wrong.output


def test_ripen_decide_with_two_workers_writes_what_one_process_writes(
    world: Settings, tmp_path: Path
) -> None:
    path = audience(tmp_path, "contact_id\nc-ready\nc-sql\nc-nocons\nc-stranger\n")
    outs = {n: tmp_path / f"out-{n}.parquet" for n in (1, 2)}
    for n, out in outs.items():
        with restored_logging():
            result = CliRunner().invoke(
                app,
                ["decide", "--channel", "email", "--audience", str(path), "--out", str(out), "--json",
                 "--data-dir", str(world.data_dir), "--run-id", f"cli-{n}", "--chunk-size", "1",
                 "--workers", str(n)],
            )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = BatchReport(**json.loads(result.stdout[result.stdout.index("{") :]))
        assert (report.workers, report.decided, report.log_stored) == (n, 4, 4)
    same = ["contact_id", "action", "content_id", "probability", "stage", "cold_start"]
    one, two = pq.read_table(outs[1]).to_pandas(), pq.read_table(outs[2]).to_pandas()
    assert one["contact_id"].tolist() == ["c-ready", "c-sql", "c-nocons", "c-stranger"]
    assert two["event_id"].tolist() == [batch_event_id("cli-2", c) for c in two["contact_id"]]
    pd.testing.assert_frame_equal(one[same], two[same])  # run ids differ; this world decides greedily
    with restored_logging():
        bad = CliRunner().invoke(
            app, ["decide", "--channel", "email", "--audience", str(path), "--workers", "0"]
        )
    assert bad.exit_code != 0 and "--workers" in bad.output


def test_bulk_reads_equal_single_lookups_on_redis_and_postgres(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        profile="production", postgres_url=postgres_url, redis_url=redis_url, data_dir=tmp_path / "data"
    )
    build_world(settings)
    pipeline = DecisionPipeline.load(settings)
    store = open_settings_event_store(settings)
    try:
        now = datetime.now(UTC)
        catalog = pipeline.catalog(store)
        ids = ["c-ready", "c-sql", "c-stranger"]
        bulk = pipeline.contact_data(ids, store, catalog, now)
        for contact_id, many in zip(ids, bulk, strict=True):
            (one,) = pipeline.contact_data([contact_id], store, catalog, now)
            assert one == many and one.features is not None
        assert bulk[0].features is not None and bulk[0].features.consumed_content_ids == {"guide"}
        assert bulk[2].unknown and not bulk[0].unknown
    finally:
        store.close()
        pipeline.close()


def test_bulk_assembly_equals_one_contact_at_a_time() -> None:
    """``assemble_many`` decays a matrix of counters; each contact's features equal ``assemble``'s exactly."""
    from features.decay import counter_columns
    from features.online import assemble_many
    from features.topics import TOPIC_IDS

    rng = np.random.default_rng(5)
    names = list(counter_columns(TOPIC_IDS))
    values: list[Any] = [None, float("nan"), 0, 7, 2.5, True, 1e9 + 1]
    rows: list[dict[str, Any]] = [{}]  # an unknown contact: cold start, zero counters
    for i in range(300):
        row: dict[str, Any] = {
            n: values[int(rng.integers(0, len(values)))] for n in names if rng.random() < 0.6
        }
        if i % 7:
            row["as_of_ts"] = NOW.timestamp() - float(rng.uniform(-3_600, 200 * 86_400))
        if i % 3:
            row.update(lead_status="lead", lifecycle_stage="awareness", fit_points=[None, 12.5, 3][i % 3])
            row.update(consent_email=bool(i % 2), events_total=[None, 4, 4.0][i % 3], company_size=50)
            row.update(last_touch_ts=NOW.timestamp() - 86_400, consumed_content_ids=("b-01",))
        rows.append(row)
    ids = [f"c-{i}" for i in range(len(rows))]
    contents: dict[str, Any] = {"b-01": {"sends": 4, "opens": 1, "open_rate": 0.25}, "b-02": {}}
    many = assemble_many(ids, NOW.timestamp(), rows, contents, ["b-01", "b-02", "b-03"])
    assert many[0].cold_start and not any(many[0].counters_now.values())
    assert any(f.counters_now[f"{names[0]}_now"] > 0 for f in many)
    for cid, row, features in zip(ids, rows, many, strict=True):
        alone = assemble(cid, NOW.timestamp(), row, contents, ["b-01", "b-02", "b-03"])
        assert features == alone
        assert repr(features.counters_now) == repr(alone.counters_now)  # same floats, signs and types
    with pytest.raises(ValueError, match="one per id"):
        assemble_many(ids, NOW.timestamp(), rows[:-1], {}, [])


def test_the_collector_is_paused_per_chunk_and_restored_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a chunk failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def _legacy_row(record: DecisionRecord) -> dict[str, Any]:
    """A row as the log stored it before catalog versions: every eligible block's features inline."""
    return {
        "event_id": record.event_id, "decided_at": record.decided_at, "contact_id": record.contact_id,
        "action": record.action, "content_id": record.content_id, "probability": record.probability,
        "policy_version": record.policy_version,
        "context": json.dumps(dict(record.context), sort_keys=True, default=str),
        "context_features": json.dumps(list(record.context_features)),
        "eligible": json.dumps([[e.content_id, e.probability, list(e.features)] for e in record.eligible]),
        "exclusions": json.dumps([[e.content_id, e.reason] for e in record.exclusions]),
        "wait_until": record.wait_until, "catalog_version": None,
    }  # fmt: skip


def test_batch_and_single_records_round_trip_and_train_as_before(fitted: Champions, tmp_path: Path) -> None:
    """Compact rows (features once per catalog version) read back as the records written, and policy
    training sees the same arrays as from rows in the former inline format."""
    rng = np.random.default_rng(5)
    data = [contact(i, rng) for i in range(120)]
    batch = decide_all(data, fitted).records
    blocks = catalog()
    contexts = [ContactContext.from_profile(d.profile, readiness=0.3) for d in data[:20] if d.profile]
    single = [
        decision_records(
            decide([c], blocks, fitted.policy, channel=Channel.EMAIL, now=NOW, policy_version="igw-test",
                   event_ids=[f"s-{c.contact_id}"], seed=11),
            [c],
            blocks,
        )[0]
        for c in contexts
    ]  # fmt: skip
    records = sorted([*batch, *single], key=lambda r: r.event_id)
    assert sum(r.content_id is not None for r in records) > 50
    rewards = [
        RewardRecord(r.event_id, float(k % 3 == 0), RewardSource.EXPLICIT, NOW + timedelta(hours=1))
        for k, r in enumerate(records)
        if r.content_id is not None
    ]
    with DecisionLog(f"sqlite:///{tmp_path / 'new.db'}") as log:
        assert log.log(batch).stored == len(batch) and log.log(single).stored == len(single)
        log.record_rewards(rewards)
        assert log.decisions() == records
        assert log.get(single[0].event_id) == single[0]
        new_data, _ = decision_log_data(log.decisions(), log.rewards())
        new_frame = log.training_frame()
    with DecisionLog(f"sqlite:///{tmp_path / 'old.db'}") as old:
        with old._tx() as conn:  # noqa: SLF001 - rows exactly as the former format stored them
            conn.execute(decisions_table.insert(), [_legacy_row(r) for r in records])
        old.record_rewards(rewards)
        assert old.decisions() == records
        old_data, _ = decision_log_data(old.decisions(), old.rewards())
        old_frame = old.training_frame()
    memory_data, _ = decision_log_data(records, {r.event_id: r for r in rewards})
    for other in (old_data, memory_data):
        assert new_data.action_ids == other.action_ids and new_data.decided_at == other.decided_at
        for name in ("context", "action_features", "eligible", "logging_dist", "actions", "rewards",
                     "propensities"):  # fmt: skip
            np.testing.assert_array_equal(getattr(new_data, name), getattr(other, name))
    pd.testing.assert_frame_equal(new_frame, old_frame)
