"""One decision path for one contact or a whole audience: guardrails first, then the policy, vectorised.

``decide`` runs the hard rules as matrices over all contacts, scores every (contact, candidate)
pair in one matrix product and samples with per-decision uniforms keyed by the event id, so a contact gets
the same answer alone or inside a batch of any size, for the same event id and seed.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np

from features.decision_log import ActionCatalog, DecisionRecord, EligibleAction, ExcludedCandidate
from features.schemas import Channel
from models.context import (
    ActionKind,
    Candidate,
    ContactContext,
    Decision,
    Exclusion,
    GuardrailConfig,
    RankedAlternative,
)
from models.guardrails_batch import CandidateArrays, guardrails_batch
from models.policy.base import ContentPolicy, decision_uniforms
from models.policy.encoding import CatalogPrior, encode_candidates, encode_contexts, metadata_prior


@dataclass(frozen=True)
class PreparedCatalog:
    """Candidates with their guardrail arrays and action features, computed once and reused per request."""

    candidates: tuple[Candidate, ...]
    arrays: CandidateArrays
    action_features: np.ndarray
    prior: CatalogPrior
    config: GuardrailConfig

    @cached_property
    def content_ids(self) -> frozenset[str]:
        """The ids of the candidates (what a request's candidate ids are checked against)."""
        return frozenset(c.content_id for c in self.candidates)

    @cached_property
    def sorted_content_ids(self) -> tuple[str, ...]:
        """The candidates' ids in sorted order: the blocks whose statistics a decision reads."""
        return tuple(sorted(self.content_ids))

    @cached_property
    def action_catalog(self) -> ActionCatalog:
        """The decision log's view of the catalog (ids and action features), built once per catalog."""
        return ActionCatalog(
            tuple(c.content_id for c in self.candidates),
            tuple(tuple(row) for row in self.action_features.tolist()),
        )


def prepare_catalog(
    candidates: Sequence[Candidate], config: GuardrailConfig | None = None
) -> PreparedCatalog:
    """Encode a candidate list once (serving keeps it until the catalog changes)."""
    config = config or GuardrailConfig()
    return PreparedCatalog(
        candidates=tuple(candidates),
        arrays=CandidateArrays.build(candidates, config),
        action_features=encode_candidates(candidates, config.taxonomy),
        prior=CatalogPrior.build(candidates, config.taxonomy),
        config=config,
    )


def decide(
    contexts: Sequence[ContactContext],
    candidates: Sequence[Candidate] | PreparedCatalog,
    policy: ContentPolicy,
    *,
    channel: Channel,
    now: datetime,
    policy_version: str,
    config: GuardrailConfig | None = None,
    excluded_ids: Sequence[Collection[str]] | None = None,
    event_ids: Sequence[str] | None = None,
    n_slots: int = 1,
    seed: int = 0,
) -> list[Decision]:
    """Decide for every contact; one ``Decision`` per context, in order.

    excluded_ids: per contact, the ids the caller excluded (same length as ``contexts``).
    event_ids: per contact, the decision's id (generated when omitted); it keys the sampling randomness.
    """
    if isinstance(candidates, PreparedCatalog):
        if config is not None and config is not candidates.config:
            raise ValueError("`config` must be the one the catalog was prepared with (or omitted)")
        catalog = candidates
    else:
        catalog = prepare_catalog(candidates, config)
    config = catalog.config
    candidate_list = catalog.candidates
    n = len(contexts)
    if excluded_ids is not None and len(excluded_ids) != n:
        raise ValueError(
            f"`excluded_ids` must have {n} entries (one per contact), but got {len(excluded_ids)}"
        )
    if event_ids is not None and len(event_ids) != n:
        raise ValueError(f"`event_ids` must have {n} entries (one per contact), but got {len(event_ids)}")
    ids = list(event_ids) if event_ids is not None else [str(uuid.uuid4()) for _ in range(n)]
    outcomes, eligible = guardrails_batch(
        contexts, catalog.arrays, channel=channel, now=now, config=config, excluded_ids=excluded_ids
    )
    content_rows = [int(i) for i in np.flatnonzero(eligible.any(axis=1))]
    decisions: list[Decision | None] = [None] * n
    if len(content_rows):
        rows_ctx = [contexts[i] for i in content_rows]
        selection = policy.select_action(
            encode_contexts(rows_ctx, config.taxonomy),
            catalog.action_features,
            eligible[content_rows],
            metadata_prior(rows_ctx, catalog.prior),
            n_slots=n_slots,
            uniforms=decision_uniforms([ids[i] for i in content_rows], seed),
        )
        dist = selection.distribution
        for r, i in enumerate(content_rows):
            chosen = [int(j) for j in selection.actions[r]]
            probs = dist.probabilities[r]
            decisions[i] = Decision(
                event_id=ids[i],
                contact_id=contexts[i].contact_id,
                decided_at=now,
                action=ActionKind.CONTENT,
                policy_version=policy_version,
                content_id=candidate_list[chosen[0]].content_id,
                probability=float(selection.probabilities[r]),
                alternatives=tuple(
                    RankedAlternative(candidate_list[j].content_id, float(dist.scores[r, j]))
                    for j in chosen[1:]
                    if j >= 0
                ),
                eligible_probabilities={
                    candidate_list[j].content_id: float(probs[j])
                    for j in map(int, np.flatnonzero(eligible[i]))
                },
                exclusions=outcomes[i].exclusions,
            )
    for i, outcome in enumerate(outcomes):
        if decisions[i] is None:
            decisions[i] = Decision(
                event_id=ids[i],
                contact_id=contexts[i].contact_id,
                decided_at=now,
                action=outcome.action,
                policy_version=policy_version,
                exclusions=outcome.exclusions,
                wait_until=outcome.wait_until,
                reason=outcome.reason,
            )
    return [d for d in decisions if d is not None]


def context_snapshot(context: ContactContext) -> dict[str, object]:
    """What the decision log keeps of the context: ids, codes and numbers, no personal data."""
    return {
        "stage": context.stage,
        "lead_status": context.lead_status.value,
        "is_customer": context.is_customer,
        "readiness": context.readiness,
        "churn_risk": context.churn_risk,
        "demo_requested": context.demo_requested,
        "n_consumed": len(context.consumed_ids),
        "n_touches": len(context.touches),
    }


def decision_records(
    decisions: Sequence[Decision],
    contexts: Sequence[ContactContext],
    candidates: Sequence[Candidate] | PreparedCatalog,
    config: GuardrailConfig | None = None,
    *,
    context_features: np.ndarray | None = None,
) -> list[DecisionRecord]:
    """The decision-log rows of ``decide``'s output: snapshot, encoded context and the eligible set.

    One builder for the single and batch paths. Eligible blocks refer to the catalog's shared feature
    tuples (the log stores them once per catalog version); ``context_features`` (shape (n, d)) are the
    contexts already encoded, encoded here when omitted. Exclusion objects shared across decisions (one per
    guardrail rule, block and stage) are converted once each.
    """
    catalog = candidates if isinstance(candidates, PreparedCatalog) else prepare_catalog(candidates, config)
    if len(decisions) != len(contexts):
        raise ValueError(
            f"`decisions` and `contexts` must have equal length, got {len(decisions)}, {len(contexts)}"
        )
    if context_features is None:
        context_features = (
            encode_contexts(contexts, catalog.config.taxonomy) if contexts else np.zeros((0, 0))
        )
    actions = catalog.action_catalog
    position, features = actions.position, actions.features
    # Guardrail exclusions are shared objects (one per rule, block and stage): each is converted once, then
    # looked up by identity without a Python call per item (~35 per contact). The dict lives for this call
    # only, while every keyed object is alive, so ids cannot be reused.
    converted: dict[int, ExcludedCandidate] = {}
    lookup = converted.__getitem__

    def logged(exclusions: Sequence[Exclusion]) -> tuple[ExcludedCandidate, ...]:
        try:
            return tuple(map(lookup, map(id, exclusions)))
        except KeyError:
            for e in exclusions:
                converted.setdefault(id(e), ExcludedCandidate(e.content_id, str(e.reason)))
            return tuple(map(lookup, map(id, exclusions)))

    make = tuple.__new__  # EligibleAction is a named tuple: skip its Python-level __new__ (tens of millions)
    return [
        DecisionRecord(
            event_id=d.event_id,
            decided_at=d.decided_at,
            contact_id=d.contact_id,
            action=d.action.value,
            policy_version=d.policy_version,
            content_id=d.content_id,
            probability=d.probability,
            context=context_snapshot(ctx),
            context_features=tuple(context_features[i].tolist()),
            eligible=tuple(
                [
                    make(EligibleAction, (cid, p, features[position[cid]]))
                    for cid, p in d.eligible_probabilities.items()
                ]
            ),
            exclusions=logged(d.exclusions),
            wait_until=d.wait_until,
            catalog=actions,
        )
        for i, (d, ctx) in enumerate(zip(decisions, contexts, strict=True))
    ]
