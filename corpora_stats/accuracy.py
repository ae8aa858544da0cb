"""Per-class accuracy for the report: from a ``builders.verify`` sidecar, a predictions JSONL (judged here) or a
per-class CSV.

Sidecar (``<pass>.<alias>.parquet`` of ``label_check``, ``mcq`` or ``rank``): each item's ``correct`` as the pass
recorded it, counted per class by :func:`vlm_classdata.verification.per_class.class_accuracy` (the same function
behind the pass summary's ``per_class``, so both give the same numbers); an mcq sidecar's items get their class
from the build's ``mcq`` rows (``build``, default: the folder above the sidecar's ``verify/``). Rows that are not
``ok`` are skipped with their error as the reason; a ``correct_any`` column (multi-label truth) adds
``n_any``/``correct_any``/``accuracy_any``.
Predictions JSONL: one ``{"label": name|id|index, "pred": text}`` per line (label keys ``label``/``gt``/
``target``; prediction keys ``pred``/``prediction``/``answer``/``text``). Whether a prediction is the label is
decided by :class:`PredictionJudge`: the vocabulary's id/index resolution, else the project's one label judge
(:class:`~vlm_classdata.answers.LabelMatcher` over the lexicon ``label_check`` uses). Unparseable lines and
unknown labels are skipped and counted.
CSV/TSV: columns ``class`` (id or name), ``accuracy`` in [0, 1] and optionally ``n``.
Multi-label truth (``multi_labels``, read by :func:`vlm_classdata.verification.multilabels.load_multi_labels`): a
predictions row with an id (``question_id``/``id``/``sample_id``) whose accepted set is non-empty is also judged
against every accepted class (right when it names any); a label_check sidecar is rescored from its replies the same
way and a rank sidecar from its ``top1_class_id``; the per-class table then has ``n_any``/``correct_any``/
``accuracy_any`` beside the single-label columns. An mcq sidecar takes the truth at ``builders.verify run``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from vlm_classdata.answers import LabelMatcher
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon, normalize
from vlm_classdata.verification.items import build_vocabulary, load_build
from vlm_classdata.verification.multilabels import MultiLabels, load_multi_labels
from vlm_classdata.verification.per_class import PER_CLASS_PASSES, class_accuracy
from vlm_classdata.verification.sidecars import load_sidecars
from vlm_classdata.vocabulary import ClassVocabulary

PRED_KEYS = ("pred", "prediction", "answer", "text")
LABEL_KEYS = ("label", "gt", "target")
CSV_CLASS_COLUMNS = ("class", "class_id", "class_name", "label", "name")
CSV_ACC_COLUMNS = ("accuracy", "acc")
CSV_N_COLUMNS = ("n", "count", "support", "num_samples")


class PredictionJudge:
    """Whether a prediction is the label's class.

    A JSON integer is a class index, and a text that is a class id or WordNet id (as given, or normalised)
    names that class: vocabulary resolution of a classifier's output, not a text match. Any other text goes to
    the one label judge, :class:`LabelMatcher`, over the lexicon the ``label_check`` pass uses
    (``Lexicon.build(vocab)``: WordNet lemmas, plurals, aliases), so a reply scores here exactly as in the pass
    (exact form, whole-word mention with no other class named, or a near match) — the open-world protocol of
    arXiv 2405.18415, where a reply is correct when it names the class.
    """

    def __init__(self, vocab: ClassVocabulary) -> None:
        self.vocab = vocab
        self.labels = LabelMatcher(Lexicon.build(vocab))
        self._ids = {e.wnid: e.class_id for e in vocab if e.wnid} | {e.class_id: e.class_id for e in vocab}

    def is_correct(self, class_id: str, pred: Any) -> bool:
        """Whether ``pred`` names class ``class_id`` (see the class docstring)."""
        if isinstance(pred, int) and not isinstance(pred, bool):
            return self.vocab.resolve_label(pred)[0] == class_id
        if not isinstance(pred, str):
            return False
        for text in (pred.strip(), normalize(pred)):
            if text in self._ids:
                return self._ids[text] == class_id
        return self.labels.match(class_id, pred).correct


def _first_key(row: dict, keys: Sequence[str]) -> tuple[bool, Any]:
    for k in keys:
        if k in row:
            return True, row[k]
    return False, None


def _kind_of(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        return "sidecar"
    if suffix in (".csv", ".tsv"):
        return "table"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "predictions"
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return "predictions" if head[:1] in (b"{", b"[") else "table"


ID_KEYS = ("question_id", "id", "sample_id")


def _per_class_rows(per_class: dict[str, list[int]], multi: bool) -> list[tuple]:
    """``(class_id, n, correct, accuracy[, n_any, correct_any, accuracy_any])`` from ``[n, c, n_any, c_any]``."""
    rows = []
    for cid, (n, c, n_any, c_any) in per_class.items():
        row: tuple = (cid, n, c, c / n)
        if multi:
            row += (n_any, c_any, c_any / n_any if n_any else None)
        rows.append(row)
    return rows


def _judge_predictions(p: Path, vocab: ClassVocabulary, judge: PredictionJudge,
                       skipped: dict[str, int], labels: MultiLabels | None = None) -> tuple[int, list[tuple]]:
    """(rows read, per-class rows of :func:`_per_class_rows`) from a predictions JSONL."""
    per_class: dict[str, list[int]] = {}
    rows = 0
    with p.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            rows += 1
            try:
                row = json.loads(line)
            except ValueError:
                skipped["bad_json"] = skipped.get("bad_json", 0) + 1
                continue
            if not isinstance(row, dict):
                skipped["not_an_object"] = skipped.get("not_an_object", 0) + 1
                continue
            _, label = _first_key(row, LABEL_KEYS)
            cid, reason, _ = vocab.resolve_label(label)
            has_pred, pred = _first_key(row, PRED_KEYS)
            if reason is None and not has_pred:
                reason = "no_prediction"
            if reason is not None:
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            n_c = per_class.setdefault(cid, [0, 0, 0, 0])
            n_c[0] += 1
            n_c[1] += int(judge.is_correct(cid, pred))
            if labels is not None:
                _, sid = _first_key(row, ID_KEYS)
                accepted = labels.get(str(sid)) if sid is not None else None
                if accepted:
                    n_c[2] += 1
                    n_c[3] += int(any(judge.is_correct(c, pred) for c in accepted))
    return rows, _per_class_rows(per_class, labels is not None)


def _mcq_classes(sidecar: Path, build: str | Path | None) -> dict[str, str | None]:
    """Sample id → class id of the build's ``mcq`` rows (the items an mcq sidecar answered)."""
    root = Path(build).expanduser() if build is not None else sidecar.resolve().parent.parent
    if not (root / "manifest.json").is_file():
        where = f"--build {build}" if build is not None else f"{root} (the folder above the sidecar's)"
        raise UserError(f"accuracy file {sidecar}: an mcq sidecar takes each item's class from its build's rows, "
                        f"but {where} is no build folder; give --build")
    items = load_build(root, "mcq", vocab=build_vocabulary(root)).items
    return {it.sample_id: it.class_id for it in items}


def _rescore(frame: pl.DataFrame, pass_name: str, labels: MultiLabels, matcher: LabelMatcher,
             p: Path) -> pl.DataFrame:
    """The sidecar with ``correct_any`` recomputed against ``labels``: label_check from its replies (the same
    judge as the pass), rank from its top-1 class; null where the item has no accepted class or no answer."""
    if pass_name not in ("label_check", "rank"):
        raise UserError(f"accuracy file {p}: an {pass_name} sidecar takes multi-label truth when it is made "
                        "(builders.verify run --multi-labels); drop --multi-labels here")
    out = []
    for row in frame.iter_rows(named=True):
        accepted = labels.get(row["sample_id"])
        if not accepted or row["status"] != "ok":
            out.append(None)
        elif pass_name == "label_check":
            out.append(matcher.names_any(accepted, row["reply"] or ""))  # as the label_check pass judges it
        else:
            out.append(row["top1_class_id"] in accepted)
    return frame.with_columns(pl.Series("correct_any", out, dtype=pl.Boolean))


def _read_sidecar(p: Path, vocab: ClassVocabulary, skipped: dict[str, int],
                  build: str | Path | None, labels: MultiLabels | None = None) -> tuple[int, list[tuple], str]:
    """(rows, ``(class_id, n, correct, accuracy[, n_any, correct_any, accuracy_any])`` per class, pass) of a
    ``builders.verify`` sidecar, counted by :func:`class_accuracy`."""
    pass_name, _, alias = p.name[: -len(".parquet")].partition(".")
    frame = load_sidecars(p.parent).get(pass_name, {}).get(alias) if alias else None
    if frame is None:
        raise UserError(f"accuracy file {p}: a parquet accuracy file is a builders.verify sidecar named "
                        "<pass>.<alias>.parquet")
    if pass_name not in PER_CLASS_PASSES or "correct" not in frame.columns:
        raise UserError(f"accuracy file {p}: a {pass_name!r} sidecar has no per-class accuracy (use one of "
                        f"{', '.join(PER_CLASS_PASSES)})")
    classes = None if "class_id" in frame.columns else _mcq_classes(p, build)
    if labels is not None:
        frame = _rescore(frame, pass_name, labels, LabelMatcher(Lexicon.build(vocab)), p)
    result = class_accuracy(frame, classes)
    for reason, n in result.skipped.items():
        skipped[reason] = skipped.get(reason, 0) + n
    known = result.table.filter(pl.col("class_id").is_in(vocab.ids))
    outside = int(result.table.filter(~pl.col("class_id").is_in(vocab.ids))["n"].sum())
    if outside:
        skipped["unknown_class"] = skipped.get("unknown_class", 0) + outside
    return frame.height, known.rows(), pass_name


def _csv_columns(p: Path, df: pl.DataFrame) -> tuple[str, str, str | None]:
    cols = {c.strip().lower(): c for c in df.columns}
    ccol = next((cols[c] for c in CSV_CLASS_COLUMNS if c in cols), None)
    acol = next((cols[c] for c in CSV_ACC_COLUMNS if c in cols), None)
    ncol = next((cols[c] for c in CSV_N_COLUMNS if c in cols), None)
    if ccol is None or acol is None:
        raise UserError(f"accuracy file {p}: needs columns 'class' and 'accuracy' (has {', '.join(df.columns)})")
    return ccol, acol, ncol


def _read_table(p: Path, vocab: ClassVocabulary, skipped: dict[str, int]) -> tuple[int, list[tuple]]:
    """(rows read, ``(class_id, n, correct, accuracy)`` per class) from a per-class accuracy CSV/TSV."""
    try:
        df = pl.read_csv(p, separator="\t" if p.suffix.lower() == ".tsv" else ",", infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise UserError(f"accuracy file {p}: unreadable CSV ({str(exc).splitlines()[0][:160]})") from None
    ccol, acol, ncol = _csv_columns(p, df)
    rows = df.height
    table = []
    seen: set[str] = set()
    for raw_cls, raw_acc, raw_n in zip(df[ccol].to_list(), df[acol].to_list(),
                                       df[ncol].to_list() if ncol else [None] * rows, strict=True):
        cid, reason, _ = vocab.resolve_label(raw_cls)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        try:
            acc = float(raw_acc)
            n = int(float(raw_n)) if raw_n not in (None, "") else None
        except (TypeError, ValueError):
            skipped["bad_accuracy"] = skipped.get("bad_accuracy", 0) + 1
            continue
        if not math.isfinite(acc):
            skipped["bad_accuracy"] = skipped.get("bad_accuracy", 0) + 1
            continue
        if not 0.0 <= acc <= 1.0:
            raise UserError(f"accuracy file {p}: accuracy {raw_acc!r} for {raw_cls!r} is not a fraction in "
                            "[0, 1] (divide percentages by 100)")
        if cid in seen:
            raise UserError(f"accuracy file {p}: class {raw_cls!r} appears twice")
        seen.add(cid)
        table.append((cid, n, None if n is None else round(acc * n), acc))
    return rows, table


def read_accuracy(path: str | Path, vocab: ClassVocabulary, build: str | Path | None = None,
                  multi_labels: str | Path | None = None) -> tuple[pl.DataFrame, dict]:
    """Per-class accuracy (``class_id, n, correct, accuracy``, vocabulary order; a sidecar with multi-label truth
    adds ``n_any, correct_any, accuracy_any``) and what was read: ``{"path", "kind", "rows", "skipped",
    "classes", "matching"}``; ``matching`` says how correctness was decided: ``"judge"`` (predictions judged by
    :class:`PredictionJudge`), ``"sidecar"`` (as the verification pass recorded it, ``pass`` names it) or
    ``"given"`` (a per-class table). ``build``: the build of an mcq sidecar. See the module docstring."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"accuracy file {str(path)!r} not found")
    kind = _kind_of(p)
    labels = load_multi_labels(multi_labels, vocab) if multi_labels is not None else None
    if labels is not None and kind == "table":
        raise UserError(f"accuracy file {p}: a per-class table has no replies to score against multi-label truth")
    skipped: dict[str, int] = {}
    extra: dict[str, Any] = {}
    if kind == "sidecar":
        rows, table, extra["pass"] = _read_sidecar(p, vocab, skipped, build, labels)
        matching = "sidecar"
    elif kind == "predictions":
        rows, table = _judge_predictions(p, vocab, PredictionJudge(vocab), skipped, labels)
        matching = "judge"
    else:
        rows, table = _read_table(p, vocab, skipped)
        matching = "given"
    if not table:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "empty file"
        raise UserError(f"accuracy file {p}: no row names a class of this class list ({detail})")
    order = {cid: i for i, cid in enumerate(vocab.ids)}
    table.sort(key=lambda r: order[r[0]])
    schema = {"class_id": pl.Utf8, "n": pl.Int64, "correct": pl.Int64, "accuracy": pl.Float64}
    if len(table[0]) > len(schema):
        schema.update(n_any=pl.Int64, correct_any=pl.Int64, accuracy_any=pl.Float64)
    frame = pl.DataFrame(table, schema=schema, orient="row")
    info = {"path": str(path), "kind": kind, "rows": rows, "skipped": dict(sorted(skipped.items())),
            "classes": frame.height, "matching": matching, **extra}
    return frame, info
