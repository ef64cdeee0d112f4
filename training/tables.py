"""Bring-your-own-table loader: a CRM export (CSV or Parquet) with a binary label, cleaned for the scorer.

Real exports are messy, and the cleaning lives here rather than in edited files: a trailing comma's empty
unnamed column is dropped, form defaults such as ``Select`` mean missing, numeric columns with blank strings
(Telco's ``TotalCharges``) become numbers with NaN, and the remaining text columns become pandas categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import structlog

log = structlog.get_logger(__name__)

POSITIVE_LABELS = frozenset({"1", "1.0", "yes", "y", "true", "t"})
NEGATIVE_LABELS = frozenset({"0", "0.0", "no", "n", "false", "f"})
DEFAULT_MISSING_TOKENS = ("Select",)


@dataclass(frozen=True)
class LabelledTable:
    """Features, 0/1 label and optional ids of one loaded table, plus what the loader did to it."""

    X: pd.DataFrame
    y: pd.Series
    ids: pd.Series | None
    label: str
    dropped_columns: tuple[str, ...]


def parse_binary_label(values: pd.Series, name: str) -> pd.Series:
    """Map yes/no, true/false, 1/0 (any case) to 1/0; raise naming the column and the unexpected values."""
    text = values.astype(str).str.strip().str.lower()
    unknown = sorted(set(text[~text.isin(POSITIVE_LABELS | NEGATIVE_LABELS)]))
    if unknown:
        raise ValueError(
            f"label `{name}` must be binary (yes/no, true/false, 1/0), but got values {unknown[:5]}"
        )
    parsed = text.isin(POSITIVE_LABELS).astype(int)
    if parsed.nunique() < 2:
        raise ValueError(f"label `{name}` has only one class ({int(parsed.iloc[0])}): nothing to learn")
    return parsed.rename(name)


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV (any line ends) or Parquet by suffix; raise a clear error for anything else."""
    if not path.exists():
        raise FileNotFoundError(f"`--data` file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        try:
            return pd.read_csv(path, low_memory=False)
        except pd.errors.EmptyDataError:
            raise ValueError(f"`--data` file {path} is empty") from None
    raise ValueError(f"`--data` must be a .csv or .parquet file, but got {path.name}")


def _clean_column(values: pd.Series, missing_tokens: Sequence[str]) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(list(missing_tokens)) | (text == ""))
    numeric = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and numeric[text.notna()].notna().all():
        return numeric.astype(float)
    return text.astype(object).where(text.notna(), None).astype("category")


def clean_features(
    frame: pd.DataFrame, missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS
) -> pd.DataFrame:
    """Apply the loader's cleaning to feature columns only (used for prediction-time tables, too)."""
    return pd.DataFrame(
        {col: _clean_column(frame[col], missing_tokens) for col in frame.columns}, index=frame.index
    )


def load_table(
    path: Path | str,
    label: str,
    drop: Sequence[str] = (),
    id_column: str | None = None,
    missing_tokens: Sequence[str] = DEFAULT_MISSING_TOKENS,
) -> LabelledTable:
    """Load ``path`` and split it into cleaned features, the 0/1 label ``label`` and ids from ``id_column``.

    Rows with a missing label are dropped (logged with their count). Columns named in ``drop`` must exist, so
    a typo does not silently keep a leaky column.
    """
    frame = read_table(Path(path))
    if frame.empty:
        raise ValueError(f"table {path} has no rows")
    unnamed_empty = [c for c in frame.columns if str(c).startswith("Unnamed:") and frame[c].isna().all()]
    frame = frame.drop(columns=unnamed_empty)
    if label not in frame.columns:
        raise ValueError(
            f"label column `{label}` is not in the table; columns are {list(frame.columns)[:40]}"
        )
    for option, names in (("--drop", list(drop)), ("--id", [id_column] if id_column else [])):
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"`{option}` names columns not in the table: {missing}")
    unlabelled = frame[label].isna() | (frame[label].astype(str).str.strip() == "")
    if unlabelled.any():
        log.warning("rows_without_label_dropped", label=label, n_rows=int(unlabelled.sum()))
        frame = frame[~unlabelled]
    if frame.empty:
        raise ValueError(f"label column `{label}` is empty in every row")
    y = parse_binary_label(frame[label], label)
    ids = frame[id_column].astype(str) if id_column else None
    feature_cols = [c for c in frame.columns if c not in {label, id_column, *drop}]
    if not feature_cols:
        raise ValueError("no feature columns left after removing the label, `--id` and `--drop` columns")
    X = clean_features(frame[feature_cols], missing_tokens)
    return LabelledTable(
        X=X.reset_index(drop=True),
        y=y.reset_index(drop=True),
        ids=ids.reset_index(drop=True) if ids is not None else None,
        label=label,
        dropped_columns=tuple(unnamed_empty) + tuple(drop),
    )
