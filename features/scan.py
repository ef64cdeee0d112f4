"""Running decayed sums over time-ordered rows, streamed from DuckDB to Parquet with a compiled kernel.

DuckDB groups, sorts and windows the events; what it does slowly is dozens of cumulative window sums at once
(each its own segment tree). This scan does them in one pass with the online recurrence of ``features.decay``
(``v = v * exp(-r * dt) + k``, reset at each entity's first row; ``r = 0`` gives a plain cumulative sum) and
running
maxima for last-seen times, carrying its state across record batches so memory stays bounded at any size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class ScanSpec:
    """What to compute from the input columns.

    Attributes:
        sums: output name -> (input column, decay rate per second); rate 0 is a cumulative sum.
        maxes: output name -> input column, running maximum ignoring nulls.
        passthrough: input columns copied as they are.
        integers: sum outputs stored as int64 (counts).
        first_seen: output name of the entity's first ``t`` (empty: not written).
        as_of: output name of the row's own ``t``.
    """

    sums: Mapping[str, tuple[str, float]]
    maxes: Mapping[str, str] = field(default_factory=dict)
    passthrough: tuple[str, ...] = ()
    integers: frozenset[str] = frozenset()
    first_seen: str = ""
    as_of: str = "as_of_ts"


@numba.njit(cache=True)
def _scan_kernel(t, is_first, k, rates, mx, sums, maxima, clock):  # type: ignore[no-untyped-def]
    n, m = k.shape
    p = mx.shape[1]
    out = np.empty((n, m))
    out_max = np.empty((n, p))
    first = np.empty(n)
    prev_t = clock[0]
    first_t = clock[1]
    for i in range(n):
        if is_first[i]:
            for j in range(m):
                sums[j] = 0.0
            for j in range(p):
                maxima[j] = np.nan
            first_t = t[i]
        else:
            dt = t[i] - prev_t
            for j in range(m):
                if rates[j] > 0.0:
                    sums[j] *= math.exp(-rates[j] * dt)
        for j in range(m):
            sums[j] += k[i, j]
            out[i, j] = sums[j]
        for j in range(p):
            v = mx[i, j]
            if not np.isnan(v) and (np.isnan(maxima[j]) or v > maxima[j]):
                maxima[j] = v
            out_max[i, j] = maxima[j]
        first[i] = first_t
        prev_t = t[i]
    clock[0] = prev_t
    clock[1] = first_t
    return out, out_max, first


def _floats(batch: pa.RecordBatch, names: list[str]) -> np.ndarray:
    if not names:
        return np.empty((batch.num_rows, 0))
    cols = [batch.column(n).to_numpy(zero_copy_only=False).astype("float64", copy=False) for n in names]
    return np.ascontiguousarray(np.column_stack(cols))


def scan_to_parquet(
    reader: pa.RecordBatchReader, key: str, spec: ScanSpec, path: Path, sentinel_keys: pa.Array
) -> int:
    """Scan ``reader`` (ordered by ``key`` then ``t``; columns ``key``, ``event_timestamp``, ``t``,
    ``is_first``
    and the spec's inputs) into a Parquet file; then one row per ``sentinel_keys`` entry with a null timestamp
    (see ``features.aggregation.SENTINEL_NOTE``). Returns the number of non-sentinel rows."""
    sum_names = list(spec.sums)
    sum_inputs = [spec.sums[n][0] for n in sum_names]
    rates = np.array([spec.sums[n][1] for n in sum_names], dtype="float64")
    max_names = list(spec.maxes)
    max_inputs = [spec.maxes[n] for n in max_names]
    sums = np.zeros(len(sum_names))
    maxima = np.full(len(max_names), np.nan)
    clock = np.zeros(2)
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
        for batch in itertools.chain(reader, [empty]):
            if batch.num_rows == 0 and writer is not None:
                continue
            t = batch.column("t").to_numpy().astype("float64", copy=False)
            is_first = batch.column("is_first").to_numpy(zero_copy_only=False).astype(np.bool_)
            out, out_max, first = _scan_kernel(
                t,
                is_first,
                _floats(batch, sum_inputs),
                rates,
                _floats(batch, max_inputs),
                sums,
                maxima,
                clock,
            )
            arrays: dict[str, pa.Array] = {
                key: batch.column(key),
                "event_timestamp": batch.column("event_timestamp"),
            }
            arrays[spec.as_of] = pa.array(t)
            if spec.first_seen:
                arrays[spec.first_seen] = pa.array(first)
            for name in spec.passthrough:
                arrays[name] = batch.column(name)
            for j, name in enumerate(sum_names):
                col = out[:, j]
                arrays[name] = pa.array(np.rint(col).astype("int64") if name in spec.integers else col)
            for j, name in enumerate(max_names):
                arrays[name] = pa.array(out_max[:, j], from_pandas=True)  # NaN -> null: never seen
            table = pa.table(arrays)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            rows += batch.num_rows
        assert writer is not None  # the empty batch above always opens it
        schema = writer.schema
        sentinels = pa.table(
            {
                f.name: sentinel_keys.cast(f.type) if f.name == key else pa.nulls(len(sentinel_keys), f.type)
                for f in schema
            },
            schema=schema,
        )
        writer.write_table(sentinels)
    finally:
        if writer is not None:
            writer.close()
    return rows
