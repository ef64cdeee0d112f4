"""The candidate guardrails for many contacts at once, as boolean matrices (one code path for 1 or 1M).

Each rule of ``models.guardrails.CANDIDATE_RULES`` becomes a (n_contacts, n_candidates) mask; the first rule
that fires gives a pair its exclusion code (0 = eligible), exactly as ``apply_guardrails`` checks them in
order. Contact-level rules (sales fast lane, waiting periods) stay per contact: they are a few comparisons.
The outcomes equal ``apply_guardrails``' contact by contact (tested); reasons and details of excluded pairs
come from the same rule functions, so the two paths cannot drift apart in what they report.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from features.schemas import Channel
from models.context import (
    ActionKind,
    Candidate,
    ContactContext,
    Exclusion,
    ExclusionReason,
    GuardrailConfig,
    GuardrailOutcome,
)
from models.guardrails import CANDIDATE_RULES, RuleInputs, contact_wait_until, no_repeats, sales_fast_lane

RETENTION_CODE = len(CANDIDATE_RULES) + 1
"""Exclusion code of ``retention_first``; codes 1..len(CANDIDATE_RULES) are the candidate rules in order."""


@dataclass(frozen=True)
class CandidateArrays:
    """Per-candidate attributes as arrays, built once per candidate list."""

    candidates: tuple[Candidate, ...]
    active: np.ndarray
    stages: np.ndarray
    customers_only: np.ndarray
    has_alternative: np.ndarray
    retention: np.ndarray
    index: dict[str, int]
    with_prerequisite: tuple[int, ...]
    exclusions: dict[tuple[int, int, str, bool, Channel], Exclusion] = field(
        default_factory=dict, compare=False
    )
    """Exclusions already built per (rule code, candidate, stage, consumed, channel), shared across calls of
    the same config (the arrays are built for one config)."""
    _supports: dict[tuple[int, int, str, bool, Channel], np.ndarray] = field(
        default_factory=dict, compare=False
    )

    @classmethod
    def build(cls, candidates: Sequence[Candidate], config: GuardrailConfig) -> CandidateArrays:
        position = {s: i for i, s in enumerate(config.taxonomy.ids)}
        stages = np.zeros((len(candidates), len(position)), dtype=bool)
        for j, c in enumerate(candidates):
            try:
                stages[j, [position[s] for s in c.stages]] = True
            except KeyError as exc:
                raise ValueError(f"candidate {c.content_id} names unknown stage {exc.args[0]!r}") from None
        return cls(
            candidates=tuple(candidates),
            active=np.array([c.active for c in candidates], dtype=bool),
            stages=stages,
            customers_only=np.array([c.for_customers_only for c in candidates], dtype=bool),
            has_alternative=np.array([c.alternative_id is not None for c in candidates], dtype=bool),
            retention=np.array([c.program in config.retention_programs for c in candidates], dtype=bool),
            index={c.content_id: j for j, c in enumerate(candidates)},
            with_prerequisite=tuple(j for j, c in enumerate(candidates) if c.prerequisite_id is not None),
        )

    def supports(self, channel: Channel) -> np.ndarray:
        """Which candidates are available on ``channel``, shape (n_candidates,) (memoised per channel)."""
        key = (-1, -1, "", False, channel)
        cached = self._supports.get(key)
        if cached is None:
            cached = np.array([channel in c.channels for c in self.candidates], dtype=bool)
            self._supports[key] = cached
        return cached


def _membership(
    contexts: Sequence[ContactContext], sets: Sequence[Collection[str]], index: dict[str, int]
) -> np.ndarray:
    out = np.zeros((len(contexts), len(index)), dtype=bool)
    for i, ids in enumerate(sets):
        cols = [index[c] for c in ids if c in index]
        if cols:
            out[i, cols] = True
    return out


def exclusion_codes(
    contexts: Sequence[ContactContext],
    arrays: CandidateArrays,
    *,
    channel: Channel,
    config: GuardrailConfig,
    excluded_ids: Sequence[Collection[str]] | None = None,
) -> np.ndarray:
    """Exclusion code per (contact, candidate), shape (n_contacts, n_candidates); 0 means eligible."""
    n, k = len(contexts), len(arrays.candidates)
    taxonomy = config.taxonomy
    position = {s: i for i, s in enumerate(taxonomy.ids)}
    unknown = sorted({c.stage for c in contexts} - set(position))
    if unknown:
        raise ValueError(f"contacts are in unknown stages {unknown}; known stages: {', '.join(position)}")
    stage_idx = np.array([position[c.stage] for c in contexts], dtype=np.int64)
    n_stages = len(position)
    window = np.eye(n_stages, dtype=bool)
    if config.allow_next_stage:
        window[np.arange(n_stages - 1), np.arange(1, n_stages)] = True
    is_customer = np.array([c.is_customer for c in contexts], dtype=bool)
    consent = np.array([channel in c.consents for c in contexts], dtype=bool)
    fits = (window[stage_idx].astype(np.int32) @ arrays.stages.T.astype(np.int32)) > 0
    consumed = _membership(contexts, [c.consumed_ids for c in contexts], arrays.index)
    sent = _membership(contexts, [c.sent_ids for c in contexts], arrays.index)
    caller = (
        _membership(contexts, excluded_ids, arrays.index)
        if excluded_ids is not None
        else np.zeros((n, k), bool)
    )
    prereq = np.zeros((n, k), dtype=bool)
    for j in arrays.with_prerequisite:
        needed = arrays.candidates[j].prerequisite_id
        prereq[:, j] = [needed not in c.consumed_ids for c in contexts]
    fires = (
        np.broadcast_to(~arrays.active, (n, k)),
        caller,
        ~arrays.supports(channel)[None, :] | ~consent[:, None],
        arrays.customers_only[None, :] & ~is_customer[:, None],
        ~fits,
        consumed | (sent & arrays.has_alternative[None, :]),
        prereq,
    )
    assert len(fires) == len(CANDIDATE_RULES)
    codes = np.zeros((n, k), dtype=np.int8)
    for code in range(len(fires), 0, -1):
        codes = np.where(fires[code - 1], np.int8(code), codes)
    churn = np.array([c.churn_risk for c in contexts], dtype=float)
    at_risk = is_customer & (churn >= config.churn_threshold)
    eligible = codes == 0
    retention_available = (eligible & arrays.retention[None, :]).any(axis=1)
    drop = (at_risk & retention_available)[:, None] & eligible & ~arrays.retention[None, :]
    codes[drop] = RETENTION_CODE
    return codes


def guardrails_batch(
    contexts: Sequence[ContactContext],
    candidates: Sequence[Candidate] | CandidateArrays,
    *,
    channel: Channel,
    now: datetime,
    config: GuardrailConfig | None = None,
    excluded_ids: Sequence[Collection[str]] | None = None,
) -> tuple[list[GuardrailOutcome], np.ndarray]:
    """Every contact's guardrail outcome (equal to ``apply_guardrails``) and the eligibility mask.

    ``candidates`` may be prebuilt ``CandidateArrays`` (built with the same config) to save work per call.
    Returns the outcomes in contact order and a bool array, shape (n_contacts, n_candidates), True where a
    candidate is eligible for content (all False for handoff, wait and nothing-eligible contacts).
    """
    if now.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware, but got a naive timestamp {now}")
    config = config or GuardrailConfig()
    n = len(contexts)
    if excluded_ids is not None and len(excluded_ids) != n:
        raise ValueError(
            f"`excluded_ids` must have {n} entries (one per contact), but got {len(excluded_ids)}"
        )
    arrays = (
        candidates if isinstance(candidates, CandidateArrays) else CandidateArrays.build(candidates, config)
    )
    outcomes: list[GuardrailOutcome | None] = [None] * n
    open_rows: list[int] = []
    for i, ctx in enumerate(contexts):
        handoff = sales_fast_lane(ctx, config)
        if handoff is not None:
            outcomes[i] = GuardrailOutcome(ActionKind.HANDOFF_TO_SALES, reason=handoff)
            continue
        until = contact_wait_until(ctx, now, config)
        if until is not None:
            outcomes[i] = GuardrailOutcome(
                ActionKind.WAIT, wait_until=until, reason="waiting period or frequency cap for this contact"
            )
            continue
        open_rows.append(i)
    mask = np.zeros((n, len(arrays.candidates)), dtype=bool)
    if open_rows:
        sub = [contexts[i] for i in open_rows]
        sub_excluded = [excluded_ids[i] for i in open_rows] if excluded_ids is not None else None
        codes = exclusion_codes(sub, arrays, channel=channel, config=config, excluded_ids=sub_excluded)
        eligible = codes == 0
        mask[open_rows] = eligible
        # The nonzero entries of all rows at once, as Python ints: per-row numpy calls dominated the loop.
        excluded_at = _row_slices(~eligible)
        eligible_at = _row_slices(eligible)
        excluded_cols = np.flatnonzero(~eligible) % codes.shape[1]
        cols, codes_at = excluded_cols.tolist(), codes[~eligible].tolist()
        eligible_cols = (np.flatnonzero(eligible) % codes.shape[1]).tolist()
        for r, i in enumerate(open_rows):
            start, stop = excluded_at[r], excluded_at[r + 1]
            outcomes[i] = _outcome(
                contexts[i],
                zip(cols[start:stop], codes_at[start:stop], strict=True),
                eligible_cols[eligible_at[r] : eligible_at[r + 1]],
                arrays,
                channel,
                config,
                sub_excluded,
                r,
            )
    return [o for o in outcomes if o is not None], mask


_NO_REPEATS_CODE = 1 + CANDIDATE_RULES.index(no_repeats)


def _row_slices(flags: np.ndarray) -> list[int]:
    """Start offsets of each row's True entries in the row-major list of them (length n_rows + 1)."""
    return [0, *np.cumsum(np.count_nonzero(flags, axis=1)).tolist()]


def _outcome(
    ctx: ContactContext,
    excluded: Iterable[tuple[int, int]],
    eligible_cols: Sequence[int],
    arrays: CandidateArrays,
    channel: Channel,
    config: GuardrailConfig,
    excluded_ids: Sequence[Collection[str]] | None,
    row: int,
) -> GuardrailOutcome:
    """One contact's outcome from its excluded (candidate, code) pairs and eligible candidates.

    Given that a rule fired, its exclusion depends only on the rule, the candidate, the contact's stage and
    (for no-repeats) whether the block was consumed or only sent; each is built once by the rule itself.
    """
    inputs: RuleInputs | None = None
    exclusions: list[Exclusion] = []
    retention_dropped: list[Exclusion] = []
    for j, code in excluded:
        if code == RETENTION_CODE:
            detail = (
                f"churn risk {ctx.churn_risk:.2f} >= {config.churn_threshold:.2f}: retention content first"
            )
            cand_id = arrays.candidates[j].content_id
            retention_dropped.append(Exclusion(cand_id, ExclusionReason.RETENTION_FIRST, detail))
            continue
        consumed = code == _NO_REPEATS_CODE and arrays.candidates[j].content_id in ctx.consumed_ids
        key = (code, j, ctx.stage, consumed, channel)
        exclusion = arrays.exclusions.get(key)
        if exclusion is None:
            if inputs is None:
                inputs = RuleInputs(
                    channel, excluded_ids[row] if excluded_ids is not None else (), config, ctx.stage
                )
            exclusion = CANDIDATE_RULES[code - 1](arrays.candidates[j], ctx, inputs)
            if exclusion is None:  # pragma: no cover - the matrices and the rules disagree: a bug, not input
                raise RuntimeError(
                    f"rule {CANDIDATE_RULES[code - 1].__name__} did not fire for candidate {j}"
                )
            arrays.exclusions[key] = exclusion
        exclusions.append(exclusion)
    exclusions.extend(retention_dropped)
    eligible = tuple(arrays.candidates[j] for j in eligible_cols)
    if not eligible:
        return GuardrailOutcome(
            ActionKind.NOTHING_ELIGIBLE, exclusions=tuple(exclusions), reason="every candidate was excluded"
        )
    return GuardrailOutcome(ActionKind.CONTENT, eligible=eligible, exclusions=tuple(exclusions))
