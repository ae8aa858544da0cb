"""Filter rules over verification results: ``ACTION:PASS[.COLUMN][QUANT]``, the models' votes, rules in order.

A rule keeps (``keep``) or drops (``drop``) the samples for which at least ``N`` models (``>=N``), every model
(``=all``) or any model (``=any``, the default, same as ``>=1``) that ran ``PASS`` has the boolean ``COLUMN``
(default ``correct``) true. A model's vote is true only when its sidecar has a row for the sample with ``status == "ok"`` and the column
true; errors and missing rows never count as true (they are counted per rule). Rules apply in order; the report
counts what each rule dropped in sequence and what it would drop alone, so it can go into the dataset card as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

from vlm_classdata.errors import UserError

ACTIONS = ("keep", "drop")
DEFAULT_COLUMN = "correct"
_RULE = re.compile(r"(?P<target>[^<>=!]*)(?P<op>[<>=!]+)?(?P<arg>.*)", re.S)
_PASS = re.compile(r"[A-Za-z0-9_-]+")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_QUANT_HELP = "use >=N, =all or =any"


@dataclass(frozen=True)
class Rule:
    """One parsed rule. ``quant`` is ``">=N"`` (``=any`` becomes ``">=1"``) or ``"all"``; ``min_models`` is
    ``N`` for ``>=N`` and None for ``all``."""

    action: str
    pass_name: str
    column: str
    quant: str
    min_models: int | None

    @property
    def text(self) -> str:
        """The rule in full normalised form, e.g. ``drop:blind.correct>=1`` or ``keep:mcq.correct=all``."""
        quant = "=all" if self.min_models is None else self.quant
        return f"{self.action}:{self.pass_name}.{self.column}{quant}"


def parse_rule(text: str) -> Rule:
    """Parse ``ACTION:PASS[.COLUMN][QUANT]``; a malformed rule is a :class:`UserError`."""
    if not isinstance(text, str):
        raise UserError(f"filter rule {text!r} is not a string")
    raw = text.strip()
    usage = "expected ACTION:PASS[.COLUMN][>=N|=all|=any], e.g. drop:blind or keep:label_check>=2"
    if ":" not in raw:
        raise UserError(f"filter rule {text!r}: {usage}")
    action, rest = raw.split(":", 1)
    if action not in ACTIONS:
        raise UserError(f"filter rule {text!r}: unknown action {action!r} (use keep or drop)")
    m = _RULE.fullmatch(rest)
    target, op, arg = m["target"], m["op"], m["arg"]
    pass_name, _, column = target.partition(".")
    if "." in target and not column:
        raise UserError(f"filter rule {text!r}: empty column name after '.'; {usage}")
    column = column or DEFAULT_COLUMN
    if not _PASS.fullmatch(pass_name):
        raise UserError(f"filter rule {text!r}: bad pass name {pass_name!r}; {usage}")
    if not _COLUMN.fullmatch(column):
        raise UserError(f"filter rule {text!r}: bad column name {column!r}; {usage}")
    if op is None:
        if arg:
            raise UserError(f"filter rule {text!r}: {usage}")
        return Rule(action, pass_name, column, ">=1", 1)
    if op == "=" and arg in ("all", "any"):
        return (Rule(action, pass_name, column, "all", None) if arg == "all"
                else Rule(action, pass_name, column, ">=1", 1))
    if op == ">=":
        if re.fullmatch(r"-[0-9]+", arg) or (_NUMBER.fullmatch(arg) and int(arg) < 1):
            raise UserError(f"filter rule {text!r}: the number of models must be at least 1, got {arg}")
        if _NUMBER.fullmatch(arg):
            n = int(arg)
            return Rule(action, pass_name, column, f">={n}", n)
        raise UserError(f"filter rule {text!r}: {arg!r} after '>=' is not a whole number; {_QUANT_HELP}")
    raise UserError(f"filter rule {text!r}: bad quantifier {op + arg!r}; {_QUANT_HELP}")


def pass_frames(rule: Rule, sidecars: dict[str, dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """The sidecars of the rule's pass, checked against the rule (column exists and is boolean, enough
    models for ``>=N``)."""
    frames = sidecars.get(rule.pass_name)
    if not frames:
        have = ", ".join(sorted(sidecars)) or "none"
        raise UserError(f"filter rule {rule.text}: no sidecar for pass {rule.pass_name!r} "
                        f"(passes with sidecars: {have})")
    for alias, frame in sorted(frames.items()):
        if rule.column not in frame.columns:
            raise UserError(f"filter rule {rule.text}: sidecar {rule.pass_name}.{alias} has no column "
                            f"{rule.column!r}")
        dtype = frame.schema[rule.column]
        if dtype not in (pl.Boolean, pl.Null):  # Null: every row errored, so the column was written all-null
            raise UserError(f"filter rule {rule.text}: column {rule.column!r} of sidecar "
                            f"{rule.pass_name}.{alias} is {dtype}, not boolean")
    if rule.min_models is not None and rule.min_models > len(frames):
        raise UserError(f"filter rule {rule.text}: needs {rule.min_models} models but only {len(frames)} ran "
                        f"pass {rule.pass_name!r} ({', '.join(sorted(frames))})")
    return frames


def votes(rule: Rule, sidecars: dict[str, dict[str, pl.DataFrame]]) -> pl.DataFrame:
    """Per sample id found in the pass's sidecars (sorted): ``n_models`` (models that ran the pass),
    ``n_true`` (ok rows with the column true), ``n_error`` (rows whose status is not ok), ``n_missing``
    (models without a row) and ``match`` (whether the rule's condition holds)."""
    frames = pass_frames(rule, sidecars)
    n_models = len(frames)
    parts = []
    for _alias, frame in sorted(frames.items()):
        ok = (pl.col("status").cast(pl.String) == "ok").fill_null(False)
        is_null = frame.schema[rule.column] == pl.Null
        value = pl.lit(False) if is_null else pl.col(rule.column).fill_null(False)
        parts.append(frame.select(
            pl.col("sample_id"),
            (ok & value).cast(pl.UInt32).alias("is_true"),
            (~ok).cast(pl.UInt32).alias("is_error"),
        ))
    grouped = (pl.concat(parts).group_by("sample_id")
               .agg(pl.col("is_true").sum().alias("n_true"), pl.col("is_error").sum().alias("n_error"),
                    pl.len().alias("n_present")))
    out = grouped.select(
        pl.col("sample_id"),
        pl.lit(n_models, dtype=pl.UInt32).alias("n_models"),
        pl.col("n_true").cast(pl.UInt32),
        pl.col("n_error").cast(pl.UInt32),
        (pl.lit(n_models, dtype=pl.UInt32) - pl.col("n_present").cast(pl.UInt32)).alias("n_missing"),
    ).sort("sample_id")
    return out.with_columns(_match(rule, n_models).alias("match"))


def _match(rule: Rule, n_models: int) -> pl.Expr:
    need = n_models if rule.min_models is None else rule.min_models
    return pl.col("n_true") >= need


@dataclass
class FilterResult:
    """``kept``: sample ids in input order; ``dropped``: sample id → normalised text of the first rule that
    dropped it; ``report``: counts (see :func:`apply_rules`)."""

    kept: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def apply_rules(sample_ids: list[str], rules: list[Rule],
                sidecars: dict[str, dict[str, pl.DataFrame]]) -> FilterResult:
    """Apply the rules in order to ``sample_ids`` (repeated ids count once, first position kept).

    The report holds ``input``, ``kept``, ``dropped`` and per rule ``rule`` (normalised text), ``dropped`` (by
    this rule after the earlier ones), ``dropped_alone`` (by this rule alone over all input), ``models``,
    ``samples_with_errors`` and ``samples_missing`` (input samples with at least one error / missing vote).
    Input ids absent from every sidecar of a pass have only missing votes; a pass whose sidecars share no id
    with a non-empty input is a :class:`UserError` (wrong verify folder or wrong files)."""
    ids = list(dict.fromkeys(str(s) for s in sample_ids))
    base = pl.DataFrame({"sample_id": ids}, schema={"sample_id": pl.String})
    alive = pl.Series("alive", [True] * len(ids), dtype=pl.Boolean)
    first_rule: list[str | None] = [None] * len(ids)
    per_rule = []
    for rule in rules:
        table = votes(rule, sidecars)
        n_models = len(sidecars[rule.pass_name])
        joined = base.join(table, on="sample_id", how="left", maintain_order="left")
        if ids and joined["n_models"].null_count() == len(ids):
            raise UserError(f"filter rule {rule.text}: none of the {len(ids)} input samples has a result in "
                            f"the sidecars of pass {rule.pass_name!r} (wrong verify folder or input files?)")
        joined = joined.with_columns(
            pl.col("n_true").fill_null(0), pl.col("n_error").fill_null(0),
            pl.col("n_missing").fill_null(n_models),
        ).with_columns(_match(rule, n_models).alias("match"))
        match = joined["match"]
        drops = match if rule.action == "drop" else ~match
        now = alive & drops
        text = rule.text
        for i in now.arg_true().to_list():
            first_rule[i] = text
        alive = alive & ~drops
        per_rule.append({
            "rule": rule.text,
            "dropped": int(now.sum()),
            "dropped_alone": int(drops.sum()),
            "models": sorted(sidecars[rule.pass_name]),
            "samples_with_errors": int((joined["n_error"] > 0).sum()),
            "samples_missing": int((joined["n_missing"] > 0).sum()),
        })
    kept = [s for s, keep in zip(ids, alive.to_list(), strict=True) if keep]
    dropped = {s: r for s, r in zip(ids, first_rule, strict=True) if r is not None}
    report = {"input": len(ids), "kept": len(kept), "dropped": len(dropped), "rules": per_rule}
    return FilterResult(kept=kept, dropped=dropped, report=report)
