"""Numeric encodings of contacts and content blocks for the reward model, and the cold-start prior.

Context vector: journey stage (one-hot), is-customer flag, readiness, churn risk, lead-status position,
then the contact's own feature vector. Action vector: stages (multi-hot), format and program (one-hot),
gated flag. The encodings depend only on the taxonomy and the enums, so a content block unseen in training
still gets a score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.schemas import DEFAULT_TAXONOMY, LEAD_STATUS_ORDER, ContentFormat, Program, StageTaxonomy
from models.context import Candidate, ContactContext

_FORMATS = tuple(ContentFormat)
_PROGRAMS = tuple(Program)


def context_feature_names(taxonomy: StageTaxonomy = DEFAULT_TAXONOMY, n_extra: int = 0) -> list[str]:
    """Column names of ``encode_contexts``' output."""
    return (
        [f"stage={s}" for s in taxonomy.ids]
        + ["is_customer", "readiness", "churn_risk", "funnel_position"]
        + [f"feature_{i}" for i in range(n_extra)]
    )


def action_feature_names(taxonomy: StageTaxonomy = DEFAULT_TAXONOMY) -> list[str]:
    """Column names of ``encode_candidates``' output."""
    return (
        [f"fits={s}" for s in taxonomy.ids]
        + [f"format={f.value}" for f in _FORMATS]
        + [f"program={p.value}" for p in _PROGRAMS]
        + ["gated"]
    )


def encode_contexts(
    contexts: Sequence[ContactContext], taxonomy: StageTaxonomy = DEFAULT_TAXONOMY
) -> np.ndarray:
    """Context features, shape (n_contexts, n_stages + 4 + n_features); equal feature lengths required."""
    n_extra = len(contexts[0].features) if contexts else 0
    lengths = {len(c.features) for c in contexts}
    if len(lengths) > 1:
        raise ValueError(
            f"`features` must have the same length for every contact, but got lengths {sorted(lengths)}"
        )
    n_stages = len(taxonomy.ids)
    out = np.zeros((len(contexts), n_stages + 4 + n_extra))
    funnel = {status: i / (len(LEAD_STATUS_ORDER) - 1) for i, status in enumerate(LEAD_STATUS_ORDER)}
    for row, ctx in enumerate(contexts):
        out[row, taxonomy.index(ctx.stage)] = 1.0
        out[row, n_stages] = float(ctx.is_customer)
        out[row, n_stages + 1] = ctx.readiness
        out[row, n_stages + 2] = ctx.churn_risk
        out[row, n_stages + 3] = funnel.get(ctx.lead_status, 1.0)
        if n_extra:
            out[row, n_stages + 4 :] = ctx.features
    return out


def encode_candidates(
    candidates: Sequence[Candidate], taxonomy: StageTaxonomy = DEFAULT_TAXONOMY
) -> np.ndarray:
    """Action features, shape (n_candidates, n_stages + n_formats + n_programs + 1)."""
    n_stages, n_formats = len(taxonomy.ids), len(_FORMATS)
    out = np.zeros((len(candidates), n_stages + n_formats + len(_PROGRAMS) + 1))
    for row, cand in enumerate(candidates):
        for stage in cand.stages:
            out[row, taxonomy.index(stage)] = 1.0
        out[row, n_stages + _FORMATS.index(cand.format)] = 1.0
        out[row, n_stages + n_formats + _PROGRAMS.index(cand.program)] = 1.0
        out[row, -1] = float(cand.gated)
    return out


def metadata_prior(
    contexts: Sequence[ContactContext],
    candidates: Sequence[Candidate],
    taxonomy: StageTaxonomy = DEFAULT_TAXONOMY,
) -> np.ndarray:
    """Cold-start scores from content metadata and stage fit alone, shape (n_contexts, n_candidates).

    1 for a block made for the contact's current stage, 0.5 for the next stage; plus 0.25 when it names the
    contact's persona (0.1 when it addresses every persona); plus up to 0.1 for specificity (fewer stages).
    """
    prior = np.zeros((len(contexts), len(candidates)))
    specificity = np.array([0.1 / len(c.stages) for c in candidates])
    for row, ctx in enumerate(contexts):
        following = taxonomy.next(ctx.stage)
        for col, cand in enumerate(candidates):
            fit = 1.0 if ctx.stage in cand.stages else 0.5 if following in cand.stages else 0.0
            if not cand.personas:
                persona = 0.1
            else:
                persona = 0.25 if ctx.persona in cand.personas else 0.0
            prior[row, col] = fit + persona
        prior[row] += specificity
    return prior
