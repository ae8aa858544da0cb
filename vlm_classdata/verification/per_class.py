"""Per-class accuracy of a verification sidecar: the one computation behind the ``per_class`` field of a pass
summary and the accuracy that ``corpora_stats report --accuracy SIDECAR`` correlates with class frequency.

An item counts for its class (the sidecar's ``class_id`` column, else ``classes``: sample id → class id, the build's
rows) when its ``status`` is ``ok`` and it has a verdict (``correct`` not null). Every other row is skipped with a
reason: its ``error`` (or ``status_<status>``) for a row that is not ok, ``no_class`` without a class,
``no_verdict`` without ``correct``. When the sidecar has a ``correct_any`` column (multi-label truth) that is not
all null, the table gains ``n_any``/``correct_any``/``accuracy_any`` over the items where it is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

PER_CLASS_PASSES = ("label_check", "mcq", "rank")
"""Passes whose ``correct`` is "the model got the item's class": the ones summarised per class."""


@dataclass
class ClassAccuracy:
    """Per-class counts (``table``: ``class_id, n, correct, accuracy`` [+ ``n_any, correct_any,
    accuracy_any``], first-seen class order) and the rows left out (``skipped``: reason → rows)."""

    table: pl.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def multi_label(self) -> bool:
        """Whether the table has the multi-label (``*_any``) columns."""
        return "accuracy_any" in self.table.columns

    def as_dict(self) -> dict[str, dict]:
        """``class_id → {n, correct, accuracy}`` (+ ``n_any, correct_any, accuracy_any``): the summary form."""
        return {row.pop("class_id"): row for row in self.table.iter_rows(named=True)}


def class_accuracy(frame: pl.DataFrame, classes: Mapping[str, str | None] | None = None) -> ClassAccuracy:
    """Per-class accuracy of one sidecar ``frame`` (see the module docstring); ``classes`` gives the class of
    each sample id when the sidecar has no ``class_id`` column (mcq)."""
    if "class_id" in frame.columns:
        cls = pl.col("class_id").cast(pl.String)
    else:
        mapping = dict(classes or {})
        cls = pl.col("sample_id").cast(pl.String).replace_strict(mapping, default=None, return_dtype=pl.String)
    error = pl.col("error").cast(pl.String) if "error" in frame.columns else pl.lit(None, pl.String)
    multi = "correct_any" in frame.columns and frame["correct_any"].null_count() < frame.height
    reason = (pl.when(pl.col("status") != "ok").then(pl.coalesce(error, pl.lit("status_") + pl.col("status")))
              .when(cls.is_null()).then(pl.lit("no_class"))
              .when(pl.col("correct").is_null()).then(pl.lit("no_verdict")))
    tagged = frame.select(cls.alias("class_id"), pl.col("correct").cast(pl.Boolean),
                          (pl.col("correct_any") if multi else pl.lit(None)).cast(pl.Boolean).alias("correct_any"),
                          reason.alias("_skip"))
    skipped = {str(k): int(v) for k, v in tagged.filter(pl.col("_skip").is_not_null())["_skip"]
               .value_counts(sort=True).iter_rows()}
    kept = tagged.filter(pl.col("_skip").is_null())
    aggs = [pl.len().cast(pl.Int64).alias("n"), pl.col("correct").sum().cast(pl.Int64).alias("correct")]
    if multi:
        aggs += [pl.col("correct_any").count().cast(pl.Int64).alias("n_any"),
                 pl.col("correct_any").sum().cast(pl.Int64).alias("correct_any")]
    table = kept.group_by("class_id", maintain_order=True).agg(aggs)
    table = table.with_columns((pl.col("correct") / pl.col("n")).alias("accuracy"))
    cols = ["class_id", "n", "correct", "accuracy"]
    if multi:
        table = table.with_columns(pl.when(pl.col("n_any") > 0).then(pl.col("correct_any") / pl.col("n_any"))
                                   .alias("accuracy_any"))
        cols += ["n_any", "correct_any", "accuracy_any"]
    return ClassAccuracy(table.select(cols), dict(sorted(skipped.items())))
