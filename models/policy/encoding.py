"""Numeric encodings of contacts and content blocks for the reward model, and the cold-start prior.

Context vector: journey stage (one-hot), is-customer flag, readiness, churn risk, lead-status position,
then the contact's own feature vector. Action vector: stages (multi-hot), format and program (one-hot),
gated flag. The encodings depend only on the taxonomy and the enums, so a content block unseen in training
still gets a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.schemas import DEFAULT_TAXONOMY, LEAD_STATUS_ORDER, ContentFormat, Program, StageTaxonomy
from models.context import Candidate, ContactContext

_FORMATS = tuple(ContentFormat)
_PROGRAMS = tuple(Program)
_FORMAT_POS = {f: i for i, f in enumerate(_FORMATS)}
_PROGRAM_POS = {p: i for i, p in enumerate(_PROGRAMS)}


def _positions(taxonomy: StageTaxonomy) -> dict[str, int]:
    return {s: i for i, s in enumerate(taxonomy.ids)}


def _stage(position: dict[str, int], stage: str) -> int:
    try:
        return position[stage]
    except KeyError:
        raise KeyError(f"unknown stage {stage!r}; known stages: {', '.join(position)}") from None


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
    position = _positions(taxonomy)
    n_stages = len(position)
    out = np.zeros((len(contexts), n_stages + 4 + n_extra))
    funnel = {status: i / (len(LEAD_STATUS_ORDER) - 1) for i, status in enumerate(LEAD_STATUS_ORDER)}
    for row, ctx in enumerate(contexts):
        out[row, _stage(position, ctx.stage)] = 1.0
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
    position = _positions(taxonomy)
    n_stages, n_formats = len(position), len(_FORMATS)
    out = np.zeros((len(candidates), n_stages + n_formats + len(_PROGRAMS) + 1))
    for row, cand in enumerate(candidates):
        for stage in cand.stages:
            out[row, _stage(position, stage)] = 1.0
        out[row, n_stages + _FORMAT_POS[cand.format]] = 1.0
        out[row, n_stages + n_formats + _PROGRAM_POS[cand.program]] = 1.0
        out[row, -1] = float(cand.gated)
    return out


@dataclass(frozen=True)
class CatalogPrior:
    """The candidate side of the cold-start prior, computed once per catalog.

    stage_fit: shape (n_stages, n_candidates), 1 where a block fits a stage; base: shape (n_candidates,),
    the persona-independent part (0.1 for every-persona blocks plus specificity).
    """

    stage_fit: np.ndarray
    base: np.ndarray
    personas: tuple[tuple[str, ...], ...]
    position: dict[str, int]

    @classmethod
    def build(
        cls, candidates: Sequence[Candidate], taxonomy: StageTaxonomy = DEFAULT_TAXONOMY
    ) -> CatalogPrior:
        position = _positions(taxonomy)
        fits = np.zeros((len(position), len(candidates)))
        for j, cand in enumerate(candidates):
            fits[[_stage(position, s) for s in cand.stages], j] = 1.0
        everyone = np.array([0.1 if not c.personas else 0.0 for c in candidates])
        specificity = np.array([0.1 / len(c.stages) for c in candidates])
        return cls(fits, everyone + specificity, tuple(c.personas for c in candidates), position)


def metadata_prior(
    contexts: Sequence[ContactContext],
    candidates: Sequence[Candidate] | CatalogPrior,
    taxonomy: StageTaxonomy = DEFAULT_TAXONOMY,
) -> np.ndarray:
    """Cold-start scores from content metadata and stage fit alone, shape (n_contexts, n_candidates).

    1 for a block made for the contact's current stage, 0.5 for the next stage; plus 0.25 when it names the
    contact's persona (0.1 when it addresses every persona); plus up to 0.1 for specificity (fewer stages).
    """
    cat = candidates if isinstance(candidates, CatalogPrior) else CatalogPrior.build(candidates, taxonomy)
    n_stages = len(cat.position)
    stage_idx = np.array([_stage(cat.position, c.stage) for c in contexts], dtype=np.int64)
    current = cat.stage_fit[stage_idx]
    following = cat.stage_fit[np.minimum(stage_idx + 1, n_stages - 1)] * (stage_idx + 1 < n_stages)[:, None]
    prior = np.where(current > 0, 1.0, 0.5 * following) + cat.base[None, :]
    personas = [c.persona for c in contexts]
    for persona in set(personas) - {None}:
        named = np.array([persona in p for p in cat.personas])
        if named.any():
            rows = np.array([p == persona for p in personas])
            prior[np.ix_(rows, named)] += 0.25
    return np.asarray(prior)
