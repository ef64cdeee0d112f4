"""The hard rules of nurturing, applied before any learned choice (DESIGN.md, "Guardrails").

Contact-level rules decide first and replace content with another action: the sales fast lane
(``handoff_to_sales``), then frequency caps and waiting periods (``wait`` until a time). Candidate-level
rules each return the reason a block is excluded, or None; ``apply_guardrails`` runs them in a fixed order
and reports the first reason per candidate. No I/O: everything comes in through the arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

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


# -- contact-level rules ------------------------------------------------------------
def sales_fast_lane(context: ContactContext, config: GuardrailConfig) -> str | None:
    """Why the contact goes to sales now, or None.

    A demo/consultation request, or readiness at or over the threshold for a contact at MQL or later.
    """
    if context.demo_requested:
        return "the contact asked for a demo or consultation"
    if context.lead_status in config.handoff_statuses and context.readiness >= config.readiness_threshold:
        return (
            f"readiness {context.readiness:.2f} reached the threshold {config.readiness_threshold:.2f} "
            f"at status {context.lead_status.value}"
        )
    return None


def contact_wait_until(context: ContactContext, now: datetime, config: GuardrailConfig) -> datetime | None:
    """When the contact may be touched again (waiting period, frequency cap), or None if now."""
    until: datetime | None = None
    last = context.last_touch()
    if last is not None:
        ready_at = last.at + config.wait_for(last.stage)
        if ready_at > now:
            until = ready_at
    recent = sorted(t.at for t in context.touches if now - config.cap_window < t.at <= now)
    if len(recent) >= config.max_touches:
        # The cap frees a slot when the oldest touch that keeps it full leaves the window.
        freed_at = recent[len(recent) - config.max_touches] + config.cap_window
        until = freed_at if until is None else max(until, freed_at)
    return until


# -- candidate-level rules ----------------------------------------------------------
CandidateRule = Callable[[Candidate, ContactContext, "RuleInputs"], Exclusion | None]


class RuleInputs:
    """Per-request values the candidate rules read besides the contact: channel, caller exclusions, config."""

    __slots__ = ("channel", "excluded_ids", "config", "fitting_stages")

    def __init__(
        self, channel: Channel, excluded_ids: Collection[str], config: GuardrailConfig, stage: str
    ) -> None:
        self.channel = channel
        self.excluded_ids = frozenset(excluded_ids)
        self.config = config
        self.fitting_stages = stage_window(stage, config)


def stage_window(stage: str, config: GuardrailConfig) -> frozenset[str]:
    """Stages a block may fit: the contact's current stage, and the next one if configured."""
    stages = {config.taxonomy.ids[config.taxonomy.index(stage)]}
    following = config.taxonomy.next(stage)
    if config.allow_next_stage and following is not None:
        stages.add(following)
    return frozenset(stages)


def inactive(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if not c.active:
        return Exclusion(c.content_id, ExclusionReason.INACTIVE, "the block is deactivated")
    return None


def excluded_by_caller(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if c.content_id in inputs.excluded_ids:
        return Exclusion(c.content_id, ExclusionReason.EXCLUDED_BY_CALLER, "the caller excluded this block")
    return None


def channel_consent(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if inputs.channel not in c.channels:
        return Exclusion(
            c.content_id,
            ExclusionReason.CHANNEL_NOT_SUPPORTED,
            f"the block is not available on {inputs.channel.value}",
        )
    if inputs.channel not in ctx.consents:
        return Exclusion(c.content_id, ExclusionReason.NO_CONSENT, f"no opt-in for {inputs.channel.value}")
    return None


def customers_only(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if c.for_customers_only and not ctx.is_customer:
        return Exclusion(
            c.content_id,
            ExclusionReason.CUSTOMERS_ONLY,
            f"program {c.program.value} is for existing customers only",
        )
    return None


def stage_fit(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if not inputs.fitting_stages.intersection(c.stages):
        return Exclusion(
            c.content_id,
            ExclusionReason.STAGE_MISMATCH,
            f"fits {', '.join(c.stages)}, not {', '.join(sorted(inputs.fitting_stages))}",
        )
    return None


def no_repeats(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    """Consumed blocks are never repeated; a block sent but not consumed is not re-sent when it declares an
    alternative, because the reminder loop sends that alternative instead."""
    if c.content_id in ctx.consumed_ids:
        return Exclusion(c.content_id, ExclusionReason.ALREADY_CONSUMED, "the contact already consumed it")
    if c.content_id in ctx.sent_ids and c.alternative_id is not None:
        return Exclusion(
            c.content_id,
            ExclusionReason.REMINDER_USES_ALTERNATIVE,
            f"sent but not consumed: the reminder uses the alternative {c.alternative_id}",
        )
    return None


def prerequisite(c: Candidate, ctx: ContactContext, inputs: RuleInputs) -> Exclusion | None:
    if c.prerequisite_id is not None and c.prerequisite_id not in ctx.consumed_ids:
        return Exclusion(
            c.content_id,
            ExclusionReason.PREREQUISITE_MISSING,
            f"needs {c.prerequisite_id} consumed first",
        )
    return None


CANDIDATE_RULES: tuple[CandidateRule, ...] = (
    inactive,
    excluded_by_caller,
    channel_consent,
    customers_only,
    stage_fit,
    no_repeats,
    prerequisite,
)
"""Candidate rules in the order they are checked; the first that fires is the reported reason."""


def retention_first(
    eligible: Sequence[Candidate], ctx: ContactContext, config: GuardrailConfig
) -> tuple[list[Candidate], list[Exclusion]]:
    """For a customer at churn risk, keep only retention-program content when any is eligible."""
    if not ctx.is_customer or ctx.churn_risk < config.churn_threshold:
        return list(eligible), []
    retention = [c for c in eligible if c.program in config.retention_programs]
    if not retention:
        return list(eligible), []
    detail = f"churn risk {ctx.churn_risk:.2f} >= {config.churn_threshold:.2f}: retention content first"
    reason = ExclusionReason.RETENTION_FIRST
    dropped = [Exclusion(c.content_id, reason, detail) for c in eligible if c not in retention]
    return retention, dropped


def apply_guardrails(
    context: ContactContext,
    candidates: Sequence[Candidate],
    *,
    channel: Channel,
    now: datetime,
    config: GuardrailConfig | None = None,
    excluded_ids: Collection[str] = (),
) -> GuardrailOutcome:
    """Run every hard rule for one contact; the outcome is a handoff, a wait, nothing eligible, or content.

    ``now`` must be timezone-aware (it is compared with touch times).
    """
    if now.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware, but got a naive timestamp {now}")
    config = config or GuardrailConfig()
    handoff = sales_fast_lane(context, config)
    if handoff is not None:
        return GuardrailOutcome(ActionKind.HANDOFF_TO_SALES, reason=handoff)
    until = contact_wait_until(context, now, config)
    if until is not None:
        return GuardrailOutcome(
            ActionKind.WAIT, wait_until=until, reason="waiting period or frequency cap for this contact"
        )
    inputs = RuleInputs(channel, excluded_ids, config, context.stage)
    eligible: list[Candidate] = []
    exclusions: list[Exclusion] = []
    for candidate in candidates:
        for rule in CANDIDATE_RULES:
            exclusion = rule(candidate, context, inputs)
            if exclusion is not None:
                exclusions.append(exclusion)
                break
        else:
            eligible.append(candidate)
    eligible, dropped = retention_first(eligible, context, config)
    exclusions.extend(dropped)
    if not eligible:
        return GuardrailOutcome(
            ActionKind.NOTHING_ELIGIBLE, exclusions=tuple(exclusions), reason="every candidate was excluded"
        )
    return GuardrailOutcome(ActionKind.CONTENT, eligible=tuple(eligible), exclusions=tuple(exclusions))
