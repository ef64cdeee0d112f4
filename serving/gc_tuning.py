"""Garbage-collector settings for a serving process: fewer, cheaper collections on the request path.

A decision allocates thousands of short-lived, acyclic objects (feature dicts, exclusions, log rows), so the
default generation-0 threshold (700 allocations) runs the cyclic collector several times per request, and
every full collection re-scans the long-lived objects loaded at start (models, Feast registry, catalog).
``freeze_startup_objects`` moves everything alive after start-up into the permanent generation (never
scanned again); ``GEN0_THRESHOLD`` lets the young generation grow before it is collected. Reference counting
still frees acyclic garbage at once; only the detection of reference cycles runs less often.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def freeze_startup_objects(gen0_threshold: int = GEN0_THRESHOLD) -> tuple[int, int, int]:
    """Collect once, freeze what survives start-up, raise the young generation's threshold; returns the
    thresholds before, for ``thaw``."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, before[1], before[2])
    return before


def thaw(thresholds: tuple[int, int, int]) -> None:
    """Undo ``freeze_startup_objects`` at shutdown: frozen objects become collectable again (an app closed
    inside a longer-lived process, as in tests, must not leave its reference cycles behind)."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)
