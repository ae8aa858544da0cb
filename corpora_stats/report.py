"""The ``report`` step: a counts folder (+ optional per-class accuracy) → Markdown and self-contained HTML.

Plots are drawn with matplotlib's Agg canvas (``Figure`` + ``FigureCanvasAgg``; pyplot is never imported, so
no display or global backend is needed) under matplotlib's default style, at a fixed dpi and without the
``Software`` PNG tag: the same inputs give byte-identical PNG, Markdown and HTML files.

Correlations: Spearman between document frequency and accuracy, Pearson between log(1 + document frequency)
and accuracy, each with a 95% percentile-bootstrap interval over classes (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vlm_classdata.errors import UserError, read_user_json
from vlm_classdata.vocabulary import BUNDLED, ClassVocabulary

DPI = 100
REQUIRED_COLUMNS = ("class_id", "class_name", "doc_freq", "mentions")
INT_COLUMNS = ("doc_freq", "mentions", "doc_freq_all", "mentions_all", "doc_freq_clean", "mentions_clean")
PRED_KEYS = ("pred", "prediction", "answer", "text")
LABEL_KEYS = ("label", "gt", "target")
CSV_CLASS_COLUMNS = ("class", "class_id", "class_name", "label", "name")
CSV_ACC_COLUMNS = ("accuracy", "acc")
CSV_N_COLUMNS = ("n", "count", "support", "num_samples")
ALL_FLAGS = ("shared", "ambiguous", "short")
SUM_MEASURE = "all corpora (sum)"
PLOT_NAME_RE = re.compile(r"(freq_extremes_[A-Za-z0-9_-]+|freq_hist|pretrain_vs_instruct|accuracy_binned|"
                          r"accuracy_scatter)\.png")

METHOD_TEXT = {
    "wordnet": "WordNet lexicon: the display name, every WordNet lemma of the class's synset, plurals and aliases; "
               "whole-word, case-insensitive, leftmost-longest matching (a longer name wins over a shorter name "
               "inside it: \"tiger shark\" does not count for \"tiger\").",
    "paper": "Paper method (arXiv 2405.18415): display names only, each class counted independently "
             "(overlapping whole-word matches).",
}
POLICY_TEXT = {
    "separate": "separate: the main counts (doc_freq, mentions) use unflagged forms only; the *_all columns "
                "include flagged forms; both are shown.",
    "all": "all: every form is counted, flagged ones included.",
    "exclude-flagged": "exclude-flagged: flagged forms are not counted.",
}
FLAG_TEXT = {"shared": "the form belongs to several classes", "ambiguous": "another sense of the word is more "
             "frequent in WordNet", "short": "very short form, likely to match unrelated words"}


# ----- inputs ---------------------------------------------------------------------------------------------
def load_counts(folder: str | Path) -> tuple[dict[str, pl.DataFrame], dict]:
    """Read a counts folder: ``{corpus name: counts table}`` (in count_meta order) and ``count_meta.json``.

    A folder whose tables are not the ones ``count_meta.json`` lists (an interrupted re-count) is refused."""
    from corpora_stats.count import verify_counts_folder

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"counts folder {str(folder)!r} not found")
    meta_path = root / "count_meta.json"
    if not meta_path.is_file():
        raise UserError(f"{root} has no count_meta.json; run 'python -m corpora_stats count' first")
    meta = read_user_json(meta_path, "count metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("corpora"), dict) or not meta["corpora"]:
        raise UserError(f"{meta_path}: lists no corpora")
    verify_counts_folder(root, meta)
    tables: dict[str, pl.DataFrame] = {}
    ids: list[str] | None = None
    for name in meta["corpora"]:
        parquet, csv = root / f"counts_{name}.parquet", root / f"counts_{name}.csv"
        path = parquet if parquet.is_file() else csv
        if not path.is_file():
            raise UserError(f"{root}: corpus {name!r} has no counts_{name}.parquet or counts_{name}.csv")
        try:
            if path.suffix == ".parquet":
                df = pl.read_parquet(path)
            else:
                df = pl.read_csv(path, schema_overrides={"class_id": pl.Utf8, "class_name": pl.Utf8,
                                                         "flags": pl.Utf8})
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable counts table ({str(exc).splitlines()[0][:160]})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
        df = _tidy_counts(df)
        if ids is None:
            ids = df["class_id"].to_list()
        elif df["class_id"].to_list() != ids:
            raise UserError(f"{path}: classes differ from the other corpora's (not the same class list?)")
        tables[name] = df
    return tables, meta


def _tidy_counts(df: pl.DataFrame) -> pl.DataFrame:
    exprs = [pl.col("class_id").cast(pl.Utf8), pl.col("class_name").cast(pl.Utf8)]
    for col in INT_COLUMNS:
        base = col.split("_")[0] + ("_freq" if col.startswith("doc") else "")
        source = pl.col(col) if col in df.columns else pl.col(base)
        exprs.append(source.fill_null(0).cast(pl.Int64).alias(col))
    exprs.append((pl.col("flags").cast(pl.Utf8) if "flags" in df.columns else pl.lit("")).fill_null("").alias("flags"))
    return df.select(exprs)


def _normalizer():
    try:
        from vlm_classdata.lexicon import normalize

        return normalize
    except ImportError:  # vlm_classdata.lexicon not there yet: the same rule (design doc), kept local
        import regex

        sep = regex.compile(r"[^\p{L}\p{N}]+")
        return lambda text: sep.sub(" ", text.lower()).strip()


def _pred_class(vocab: ClassVocabulary, pred: Any, normalize) -> str | None:
    """Class a prediction names: exact text, then its normalised form (an integer index only as a JSON int)."""
    if isinstance(pred, int) and not isinstance(pred, bool):
        return vocab.resolve_label(pred)[0]
    if not isinstance(pred, str):
        return None
    for text in dict.fromkeys((pred.strip(), normalize(pred))):
        if not text or (re.fullmatch(r"[+-]?\d+", text) and text not in vocab):
            continue  # "3" as generated text is not class index 3
        cid = vocab.resolve_label(text)[0]
        if cid is not None:
            return cid
    return None


def _first_key(row: dict, keys: Sequence[str]) -> tuple[bool, Any]:
    for k in keys:
        if k in row:
            return True, row[k]
    return False, None


def _read_accuracy(path: str | Path, vocab: ClassVocabulary, lexicon: Any = None) -> tuple[pl.DataFrame, dict]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"accuracy file {str(path)!r} not found")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        kind = "table"
    elif suffix in (".jsonl", ".json", ".ndjson"):
        kind = "predictions"
    else:
        with p.open("rb") as fh:
            head = fh.read(4096).lstrip()
        kind = "predictions" if head[:1] in (b"{", b"[") else "table"
    skipped: dict[str, int] = {}
    per_class: dict[str, list] = {}
    if kind == "predictions":
        normalize = _normalizer()
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
                ok = _pred_class(vocab, pred, normalize) == cid
                if not ok and lexicon is not None and isinstance(pred, str):
                    ok = bool(lexicon.matches_label(cid, pred))
                n_c = per_class.setdefault(cid, [0, 0])
                n_c[0] += 1
                n_c[1] += int(ok)
        matching = ("prediction resolves to the label's class (vocabulary names, ids) or equals one of the "
                    "class's lexicon forms after normalize()" if lexicon is not None else
                    "prediction text (as is, then normalised) resolves to the label's class by vocabulary "
                    "id, display name or synonym")
        table = [(cid, n, c, c / n) for cid, (n, c) in per_class.items()]
    else:
        matching = "per-class accuracy given in the file"
        try:
            df = pl.read_csv(p, separator="\t" if suffix == ".tsv" else ",", infer_schema=False)
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise UserError(f"accuracy file {p}: unreadable CSV ({str(exc).splitlines()[0][:160]})") from None
        cols = {c.strip().lower(): c for c in df.columns}
        ccol = next((cols[c] for c in CSV_CLASS_COLUMNS if c in cols), None)
        acol = next((cols[c] for c in CSV_ACC_COLUMNS if c in cols), None)
        ncol = next((cols[c] for c in CSV_N_COLUMNS if c in cols), None)
        if ccol is None or acol is None:
            raise UserError(f"accuracy file {p}: needs columns 'class' and 'accuracy' (has {', '.join(df.columns)})")
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
    if not table:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "empty file"
        raise UserError(f"accuracy file {p}: no row names a class of this class list ({detail})")
    order = {cid: i for i, cid in enumerate(vocab.ids)}
    table.sort(key=lambda r: order[r[0]])
    frame = pl.DataFrame(table, schema={"class_id": pl.Utf8, "n": pl.Int64, "correct": pl.Int64,
                                        "accuracy": pl.Float64}, orient="row")
    info = {"path": str(path), "kind": kind, "rows": rows, "skipped": dict(sorted(skipped.items())),
            "classes": frame.height, "matching": matching}
    return frame, info


def load_accuracy(path: str | Path, vocab: ClassVocabulary, lexicon: Any = None) -> pl.DataFrame:
    """Per-class accuracy (``class_id, n, correct, accuracy``, vocabulary order) from predictions or a CSV.

    Predictions JSONL: one ``{"label": name|id|index, "pred": text}`` per line (label keys ``label``/``gt``/
    ``target``; prediction keys ``pred``/``prediction``/``answer``/``text``). A prediction is correct when it
    resolves to the label's class (``vocab.resolve_label`` on the text, then on its normalised form) or, with
    a lexicon, when ``lexicon.matches_label(class_id, pred)``. Unparseable lines and unknown labels are
    skipped. CSV: columns ``class`` (id or name), ``accuracy`` in [0, 1] and optionally ``n``.
    """
    return _read_accuracy(path, vocab, lexicon)[0]


# ----- statistics ------------------------------------------------------------------------------------------
def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / den
    r[~(den > 1e-12)] = np.nan
    return np.clip(r, -1.0, 1.0)


def correlate(freq: np.ndarray, acc: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict:
    """Spearman(freq, acc) and Pearson(log1p(freq), acc), with 95% percentile-bootstrap CIs over classes.

    Returns ``{"n_classes", "n_boot", "seed", "spearman": {"r", "p", "ci95": [lo, hi], "n_valid_boot"},
    "pearson_log1p": {...}}``; non-finite pairs are dropped; statistics are NaN with fewer than 3 classes
    or constant input. Bootstrap resamples where a statistic is undefined are left out of its interval.
    """
    from scipy import stats

    f = np.asarray(freq, dtype=float).ravel()
    a = np.asarray(acc, dtype=float).ravel()
    if f.shape != a.shape:
        raise ValueError(f"freq and acc differ in length ({f.size} vs {a.size})")
    keep = np.isfinite(f) & np.isfinite(a) & (f >= 0)
    x, a = np.log1p(f[keep]), a[keep]
    n = int(x.size)
    out: dict[str, Any] = {"n_classes": n, "n_boot": int(n_boot), "seed": int(seed)}
    nan = {"r": math.nan, "p": math.nan, "ci95": [math.nan, math.nan], "n_valid_boot": 0}
    if n < 3 or np.ptp(x) == 0 or np.ptp(a) == 0:
        out["spearman"], out["pearson_log1p"] = dict(nan), dict(nan)
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = stats.spearmanr(x, a)
        pr = stats.pearsonr(x, a)
    boot_s, boot_p = [], []
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 4_000_000 // n))
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(m, n))
        xs, ys = x[idx], a[idx]
        boot_p.append(_rowwise_pearson(xs, ys))
        boot_s.append(_rowwise_pearson(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1)))
        done += m
    for key, point, boots in (("spearman", s, boot_s), ("pearson_log1p", pr, boot_p)):
        b = np.concatenate(boots) if boots else np.array([])
        b = b[np.isfinite(b)]
        ci = [float(v) for v in np.percentile(b, [2.5, 97.5])] if b.size else [math.nan, math.nan]
        out[key] = {"r": float(point[0]), "p": float(point[1]), "ci95": ci, "n_valid_boot": int(b.size)}
    return out


def bin_edges(freq: np.ndarray, bins: str | int = "log") -> list[int]:
    """Bin edges for frequencies: ``[0, 1)`` (the zero bin), then decades (``"log"``) or ``bins`` log-spaced bins."""
    f = np.asarray(freq, dtype=float)
    f = f[np.isfinite(f)]
    top = float(f.max()) if f.size else 0.0
    edges = [0, 1]
    if bins == "log":
        while edges[-1] <= top:
            edges.append(edges[-1] * 10)
    elif isinstance(bins, int) and not isinstance(bins, bool) and bins >= 1:
        if top >= 1:
            geo = np.ceil(np.geomspace(1.0, top + 1.0, bins + 1)).astype(np.int64)
            edges = [0, *sorted({int(v) for v in geo} | {1})]
            if edges[-1] <= top:
                edges.append(int(math.floor(top)) + 1)
    else:
        raise ValueError(f"bins must be 'log' or a positive int, got {bins!r}")
    return edges


def binned_accuracy(freq: np.ndarray, acc: np.ndarray, bins: str | int = "log") -> list[dict]:
    """The paper's accuracy-by-frequency plot data: classes binned by frequency, mean accuracy per bin.

    Bins are half-open ``[lo, hi)``: a zero bin ``[0, 1)`` then log-spaced edges (decades for ``"log"``,
    else ``bins`` log-spaced integer edges). Empty bins are left out; ``n_classes`` over bins sums to the
    number of classes with finite frequency and accuracy.
    """
    f = np.asarray(freq, dtype=float).ravel()
    a = np.asarray(acc, dtype=float).ravel()
    if f.shape != a.shape:
        raise ValueError(f"freq and acc differ in length ({f.size} vs {a.size})")
    keep = np.isfinite(f) & np.isfinite(a)
    f, a = f[keep], a[keep]
    edges = bin_edges(f, bins)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (f >= lo) & (f < hi)
        k = int(sel.sum())
        if k:
            vals = a[sel]
            out.append({"lo": lo, "hi": hi, "n_classes": k, "mean_accuracy": float(vals.mean()),
                        "std_accuracy": float(vals.std()), "sem_accuracy": float(vals.std(ddof=1) / math.sqrt(k))
                        if k > 1 else 0.0})
    return out


def under_exposed(counts: pl.DataFrame, k: int | None = 20, threshold: float | None = None,
                  column: str = "doc_freq") -> pl.DataFrame:
    """The least frequent classes of a counts table by ``column``: those with ``column <= threshold`` when a
    threshold is given, else the ``k`` lowest. Ties keep table (vocabulary) order."""
    if column not in counts.columns:
        raise UserError(f"under_exposed: no column {column!r} (have {', '.join(counts.columns)})")
    ordered = counts.with_row_index("_row").sort([column, "_row"]).drop("_row")
    if threshold is not None:
        return ordered.filter(pl.col(column) <= threshold)
    return ordered.head(max(0, int(k if k is not None else 20)))


# ----- plots -----------------------------------------------------------------------------------------------
def _style():
    import matplotlib.style

    return matplotlib.style.context(["default", {
        "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
        "grid.alpha": 0.3, "axes.axisbelow": True, "text.usetex": False, "svg.hashsalt": "corpora_stats"}])


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _label(text: str, width: int = 38) -> str:
    text = text.replace("$", r"\$")
    return text if len(text) <= width else text[: width - 1] + "…"


def _count_label(v: float) -> str:
    """Compact count for axis ticks: 950, 12k, 1.5M."""
    v = int(round(v))
    for div, suf in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return str(v)


def _log1p_axis(ax, top: float, axis: str = "x") -> None:
    ticks = [0] + [10 ** i for i in range(0, max(1, math.ceil(math.log10(top + 1)) + 1)) if 10 ** i <= top * 1.05]
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter([math.log1p(t) for t in ticks], [_count_label(t) for t in ticks])


def plot_extremes(name: str, table: pl.DataFrame, k: int) -> bytes:
    """Two bar charts: the ``k`` most and ``k`` least frequent classes of one corpus (document frequency)."""
    t = table.with_row_index("_row")
    top = t.sort(["doc_freq", "_row"], descending=[True, False]).head(k)
    low = t.sort(["doc_freq", "_row"]).head(k)
    rows = max(len(top), 1)
    zeros = int((table["doc_freq"] == 0).sum())
    low_title = f"{name}: {len(low)} least frequent classes"
    if zeros > len(low):
        low_title += f"\n({zeros:,} classes have 0; the first {len(low)} in list order)"
    with _style():
        from matplotlib.ticker import FuncFormatter, MaxNLocator

        fig, (a1, a2) = _figure(11, max(2.8, 0.26 * rows + 1.3), 1, 2)
        for ax, part, title, color in ((a1, top, f"{name}: {len(top)} most frequent classes", "tab:blue"),
                                       (a2, low, low_title, "tab:orange")):
            vals = part["doc_freq"].to_list()[::-1]
            names = [_label(s) for s in part["class_name"].to_list()[::-1]]
            ypos = list(range(len(vals)))
            ax.barh(ypos, vals, color=color, height=0.7)
            ax.set_yticks(ypos, names)
            right = max(vals) if vals else 0
            ax.set_xlim(0, max(1.0, right * 1.18))
            for y, v in zip(ypos, vals, strict=True):
                ax.text(v + max(1.0, right * 1.18) * 0.01, y, f"{v:,}", va="center", fontsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _count_label(v)))
            ax.set_title(title)
            ax.set_xlabel("documents mentioning the class")
            ax.grid(axis="y", visible=False)
        return _png(fig)


def plot_histogram(tables: dict[str, pl.DataFrame]) -> bytes:
    """Histogram of log(1 + document frequency) over classes, one step curve per corpus."""
    xs = {n: np.log1p(t["doc_freq"].to_numpy().astype(float)) for n, t in tables.items()}
    top = max(float(x.max()) if x.size else 0.0 for x in xs.values())
    edges = np.linspace(0.0, max(top, math.log1p(1)) * 1.0001, 31)
    with _style():
        fig, (ax,) = _figure(7.5, 4)
        for n, x in xs.items():
            zeros = int((x == 0).sum())
            ax.hist(x, bins=edges, histtype="step", linewidth=1.6,
                    label=f"{n} ({zeros} of {x.size} classes never mentioned)")
        _log1p_axis(ax, math.expm1(top))
        ax.set_xlabel("documents mentioning the class (log(1 + n) scale)")
        ax.set_ylabel("number of classes")
        ax.set_title("Class frequency distribution")
        fig.legend(loc="outside lower center", ncols=min(3, len(xs)), fontsize=8, frameon=False)
        return _png(fig)


def plot_pair(pre_name: str, ins_name: str, pre: np.ndarray, ins: np.ndarray, names: list[str],
              rho: float) -> bytes:
    """Log-log scatter (+1) of per-class document frequency in the pretraining vs the instruction corpus."""
    with _style():
        fig, (ax,) = _figure(6.5, 5.5)
        ax.scatter(pre + 1, ins + 1, s=12, alpha=0.6, color="tab:purple", edgecolors="none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for i in _pair_outliers(pre, ins):
            ax.annotate(_label(names[i], 24), (pre[i] + 1, ins[i] + 1), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xlabel(f"{pre_name}: documents + 1 (log)")
        ax.set_ylabel(f"{ins_name}: documents + 1 (log)")
        ax.set_title(f"Pretraining vs instruction frequency ({pre.size} classes, Spearman ρ = {rho:.3f})")
        return _png(fig)


def _pair_outliers(pre: np.ndarray, ins: np.ndarray, per_side: int = 3) -> list[int]:
    """Classes most over- and under-represented in the second corpus relative to the first (log ratio against
    the median log ratio), skipping points too close to one already labelled."""
    lx, ly = np.log10(pre + 1), np.log10(ins + 1)
    resid = (ly - lx) - np.median(ly - lx)
    span = max(float(np.ptp(lx)), float(np.ptp(ly)), 1.0)
    order = np.lexsort((np.arange(pre.size), -resid))
    picked: list[int] = []
    for side in (order, order[::-1]):
        count = 0
        for i in side:
            if count == per_side:
                break
            if any(math.hypot(lx[i] - lx[j], ly[i] - ly[j]) < 0.06 * span for j in picked):
                continue
            picked.append(int(i))
            count += 1
    return picked


def plot_binned(binned: dict[str, list[dict]]) -> bytes:
    """Mean accuracy per frequency bin (the paper's plot), one line per frequency measure, ± s.e.m."""
    keys = sorted({(b["lo"], b["hi"]) for bins in binned.values() for b in bins})
    pos = {k: i for i, k in enumerate(keys)}
    width = 0.6 / max(1, len(binned))
    with _style():
        fig, (ax,) = _figure(7.5, 4.2)
        for j, (label, bins) in enumerate(binned.items()):
            shift = (j - (len(binned) - 1) / 2) * width
            xs = [pos[(b["lo"], b["hi"])] + shift for b in bins]
            ys = [b["mean_accuracy"] for b in bins]
            ax.errorbar(xs, ys, yerr=[b["sem_accuracy"] for b in bins], marker="o", capsize=3, label=label)
            for x, b in zip(xs, bins, strict=True):
                ax.annotate(str(b["n_classes"]), (x, b["mean_accuracy"] + b["sem_accuracy"]), fontsize=6.5,
                            xytext=(0, 3), textcoords="offset points", ha="center")
        ax.set_xticks(range(len(keys)), [_bin_label(lo, hi) for lo, hi in keys],
                      rotation=30 if len(keys) > 6 else 0)
        ax.set_ylim(-0.02, 1.08)
        ax.set_xlabel("documents mentioning the class (bin)")
        ax.set_ylabel("mean per-class accuracy")
        ax.set_title("Accuracy by class frequency (numbers: classes per bin; error bars: s.e.m.)")
        ax.legend(fontsize=8, loc="upper left")
        return _png(fig)


def plot_accuracy_scatter(panels: list[tuple[str, np.ndarray, np.ndarray, dict]]) -> bytes:
    """Per-class accuracy against log(1 + document frequency), one panel per frequency measure."""
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    with _style():
        fig, axes = _figure(4.3 * ncols, 3.8 * nrows, nrows, ncols)
        for ax, (label, freq, acc, corr) in zip(axes, panels, strict=False):
            x = np.log1p(freq)
            ax.scatter(x, acc, s=12, alpha=0.6, edgecolors="none")
            if x.size >= 2 and np.ptp(x) > 0:
                slope, icpt = np.polyfit(x, acc, 1)
                grid = np.array([x.min(), x.max()])
                ax.plot(grid, slope * grid + icpt, color="tab:red", linewidth=1)
            _log1p_axis(ax, float(freq.max()) if freq.size else 1.0)
            s = corr["spearman"]
            ax.set_title(f"{_label(label, 30)}\nSpearman ρ = {s['r']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]")
            ax.set_xlabel("documents mentioning the class (log(1 + n))")
            ax.set_ylabel("accuracy")
            ax.set_ylim(-0.02, 1.05)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        return _png(fig)


def _bin_label(lo: int, hi: int) -> str:
    """``[lo, hi)`` as the integer range it holds: "0", "1–9", "1,000–9,999"."""
    return f"{lo:,}" if hi - lo == 1 else f"{lo:,}–{hi - 1:,}"


# ----- report ----------------------------------------------------------------------------------------------
def _vocab_for(table: pl.DataFrame) -> ClassVocabulary:
    """The counts' classes, with synonyms when they are a bundled list's classes under the same names."""
    ids, names = table["class_id"].to_list(), table["class_name"].to_list()
    for name in BUNDLED:
        try:
            full = ClassVocabulary.bundled(name)
        except (UserError, OSError, ValueError):
            continue
        if all(i in full for i in ids) and all(full[i].name == n for i, n in zip(ids, names, strict=True)):
            return full.subset(ids)
    return ClassVocabulary.from_names(names, ids, dataset="counts")


def _lexicon_for(root: Path, vocab: ClassVocabulary, corpus: str, method: str) -> Any:
    """A Lexicon rebuilt from the forms that were counted (forms_<corpus>.parquet), or None."""
    from corpora_stats.mine import counts_lexicon

    if not (root / f"forms_{corpus}.parquet").is_file():  # not forms.csv: a shared table is not per corpus
        return None
    try:
        return counts_lexicon(root, corpus, vocab, method, strict=False)
    except UserError:
        return None


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _p(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.2g}"


def _ci(d: dict) -> str:
    return f"{_fmt(d['r'])} [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]"


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(d, dict):
        out = []
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, (list, tuple)):
        return [(prefix, ", ".join(str(x) for x in d) or "none")]
    return [(prefix, _fmt(d))]


class _Doc:
    """Blocks rendered to both Markdown and HTML."""

    def __init__(self) -> None:
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", headers, [[_fmt(c) for c in r] for r in rows]))

    def img(self, alt: str, name: str, data: bytes) -> None:
        self.blocks.append(("img", alt, name, data))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {x}" for x in b[1]))
            elif b[0] == "table":
                esc = [[c.replace("|", "\\|") for c in r] for r in [b[1], *b[2]]]
                lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in esc[0]) + "|"]
                lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
                out.append("\n".join(lines))
            elif b[0] == "img":
                out.append(f"![{b[1]}](plots/{b[2]})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
               "<style>body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;"
               "margin:2em auto;padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;"
               "margin:.6em 0 1.2em;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;"
               "text-align:left}th{background:#f3f3f3}td:not(:first-child){font-variant-numeric:tabular-nums}"
               "img{max-width:100%;border:1px solid #eee}h1,h2,h3{margin-top:1.4em}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b[1]) + "</ul>")
            elif b[0] == "table":
                head = "".join(f"<th>{e(c)}</th>" for c in b[1])
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b[0] == "img":
                data = base64.b64encode(b[3]).decode("ascii")
                out.append(f'<p><img alt="{e(b[1], quote=True)}" src="data:image/png;base64,{data}"></p>')
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)


def _pick_pair(names: list[str], pretrain: str | None, instruct: str | None) -> tuple[str, str] | None:
    for flag, given in (("--pretrain", pretrain), ("--instruct", instruct)):
        if given is not None and given not in names:
            raise UserError(f"{flag} {given!r} is not a corpus of the counts folder (have: {', '.join(names)})")
    if len(names) < 2:
        return None

    def guess(word: str, other: str | None) -> str | None:
        hits = [n for n in names if word in n.lower() and n != other]
        return hits[0] if len(hits) == 1 else None

    pre = pretrain or guess("pretrain", instruct)
    ins = instruct or guess("instruct", pre)
    rest = [n for n in names if n not in (pre, ins)]
    pre = pre or rest.pop(0)
    ins = ins or rest.pop(0)
    if pre == ins:
        raise UserError("--pretrain and --instruct name the same corpus")
    return pre, ins


def write_report(counts_folder: str | Path, out_folder: str | Path, accuracy: str | None = None,
                 pretrain: str | None = None, instruct: str | None = None, seed: int = 0,
                 top_k: int = 20, n_boot: int = 2000) -> dict:
    """Write ``report.md``, ``report.html`` (plots embedded as data URIs), ``plots/*.png`` and
    ``report_classes.csv`` (per-class frequencies and accuracy) into ``out_folder``; return summary numbers.

    ``pretrain``/``instruct`` name the corpora of the scatter plot (default: corpora whose names contain
    "pretrain"/"instruct", else the first two in count_meta order).
    """
    if top_k < 1:
        raise UserError("--top-k must be at least 1")
    root = Path(counts_folder).expanduser()
    tables, meta = load_counts(root)
    names = list(tables)
    first = tables[names[0]]
    vocab = _vocab_for(first)
    out = Path(out_folder).expanduser()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    method = str(meta.get("method", "unknown"))
    policy = str(meta.get("forms_policy", "unknown"))
    flags_excluded = meta.get("flags_excluded")
    if flags_excluded is None:
        flags_excluded = [] if policy in ("all", "unknown") or method == "paper" else list(ALL_FLAGS)
    pair = _pick_pair(names, pretrain, instruct)
    corpus_info = {n: v if isinstance(v := meta["corpora"].get(n), dict) else {} for n in names}

    wide = first.select("class_id", "class_name", "flags")
    for n, t in tables.items():
        wide = wide.with_columns(t["doc_freq"].alias(f"doc_freq[{n}]"), t["mentions"].alias(f"mentions[{n}]"))
        if policy == "separate":
            wide = wide.with_columns(t["doc_freq_all"].alias(f"doc_freq_all[{n}]"))
    measures: dict[str, np.ndarray] = {n: t["doc_freq"].to_numpy().astype(float) for n, t in tables.items()}
    if len(names) > 1:
        total = sum(t["doc_freq"] for t in tables.values())
        wide = wide.with_columns(total.alias("doc_freq[sum]"))
        measures[SUM_MEASURE] = total.to_numpy().astype(float)
    extra = {f"{n} (all forms)": t["doc_freq_all"].to_numpy().astype(float)
             for n, t in tables.items()} if policy == "separate" else {}

    doc = _Doc()
    title = "Class-name frequency report"
    doc.h(1, title)
    doc.p(f"Counts folder: {root}. Classes: {len(vocab):,}. Corpora: {', '.join(names)}. "
          f"Generated by 'python -m corpora_stats report' (seed {seed}, top-k {top_k}).")
    doc.h(2, "Method")
    doc.ul([f"Counting method: {method}. {METHOD_TEXT.get(method, '')}".strip(),
            f"Forms policy: {POLICY_TEXT.get(policy, policy)}",
            "Flags excluded from the main counts: " + (", ".join(flags_excluded) or "none"),
            "Flags: " + "; ".join(f"{k} = {v}" for k, v in FLAG_TEXT.items()),
            "doc_freq = number of documents mentioning the class at least once; mentions = number of matches."])
    lex = meta.get("lexicon")
    if isinstance(lex, dict) and lex:
        doc.h(3, "Lexicon (forms per kind and flag)")
        doc.table(["key", "value"], [[k, v] for k, v in _flatten(lex)])
    doc.h(2, "Corpora")
    rows = []
    for n, t in tables.items():
        info = corpus_info[n]
        skipped = info.get("skipped") or {}
        mentioned = int((t["doc_freq"] > 0).sum())
        rows.append([n, info.get("format", "?"), info.get("documents"), info.get("bytes"),
                     ", ".join(f"{k} {v:,}" for k, v in sorted(skipped.items())) or "none",
                     f"{mentioned:,} / {t.height:,}", int(t["doc_freq"].sum()), int(t["doc_freq_all"].sum()),
                     info.get("path", "?")])
    doc.table(["corpus", "format", "documents", "bytes", "skipped", "classes mentioned", "sum doc_freq",
               "sum doc_freq_all", "path"], rows)
    tool = meta.get("tool")
    if isinstance(tool, dict) and tool:
        doc.p("Counted with: " + ", ".join(f"{k} {v}" for k, v in tool.items()) + ".")

    plots: dict[str, bytes] = {}

    def add_plot(alt: str, name: str, data: bytes) -> None:
        plots[name] = data
        doc.img(alt, name, data)

    doc.h(2, "Most and least frequent classes")
    freq_cols = ["doc_freq", "mentions"] + (["doc_freq_all"] if policy == "separate" else [])
    for n, t in tables.items():
        doc.h(3, n)
        add_plot(f"{n}: most and least frequent classes", f"freq_extremes_{_safe(n)}.png", plot_extremes(n, t, top_k))
        tr = t.with_row_index("_row")
        for label, part in (("most", tr.sort(["doc_freq", "_row"], descending=[True, False]).head(top_k)),
                            ("least", tr.sort(["doc_freq", "_row"]).head(top_k))):
            doc.p(f"{top_k} {label} frequent classes in {n}:")
            doc.table(["class", "class_id", *freq_cols, "flags"],
                      [[r["class_name"], r["class_id"], *[r[c] for c in freq_cols], r["flags"] or "–"]
                       for r in part.iter_rows(named=True)])
    doc.h(2, "Frequency distribution")
    add_plot("histogram of log(1 + document frequency)", "freq_hist.png", plot_histogram(tables))
    summary: dict[str, Any] = {"classes": len(vocab), "corpora": ", ".join(names), "method": method,
                               "forms_policy": policy}
    for n, t in tables.items():
        summary[f"documents[{n}]"] = corpus_info[n].get("documents")
        summary[f"classes_never_mentioned[{n}]"] = int((t["doc_freq"] == 0).sum())
    if pair:
        pre, ins = pair
        pv, iv = measures[pre], measures[ins]
        from scipy import stats

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(stats.spearmanr(pv, iv)[0]) if np.ptp(pv) > 0 and np.ptp(iv) > 0 else math.nan
        doc.h(2, "Pretraining vs instruction data")
        how = "as given" if pretrain and instruct else "chosen by name, else count_meta order"
        doc.p(f"Pretraining corpus: {pre}; instruction corpus: {ins} ({how}). Spearman ρ between their per-class "
              f"document frequencies over {len(pv):,} classes: {_fmt(rho)}.")
        add_plot(f"{pre} vs {ins} document frequency", "pretrain_vs_instruct.png",
                 plot_pair(pre, ins, pv, iv, first["class_name"].to_list(), rho))
        summary["pretrain"], summary["instruct"], summary["spearman_pretrain_instruct"] = pre, ins, rho

    acc_frame = None
    if accuracy is not None:
        lexicon = _lexicon_for(root, vocab, names[0], method)
        acc_frame, acc_info = _read_accuracy(accuracy, vocab, lexicon)
        wide = wide.join(acc_frame, on="class_id", how="left", maintain_order="left")
        have = wide["accuracy"].is_not_null().to_numpy()
        acc = wide["accuracy"].to_numpy().astype(float)
        doc.h(2, "Frequency and accuracy")
        doc.ul([f"Accuracy file: {acc_info['path']} ({acc_info['kind']}, {acc_info['rows']:,} rows)",
                "Skipped rows: " + (", ".join(f"{k} {v:,}" for k, v in acc_info["skipped"].items()) or "none"),
                f"Classes with accuracy: {int(have.sum()):,} of {len(vocab):,}",
                f"Correct when: {acc_info['matching']}",
                f"Mean per-class accuracy: {_fmt(float(acc[have].mean()))}"
                + (f"; overall accuracy: {_fmt(int(acc_frame['correct'].sum()) / int(acc_frame['n'].sum()))}"
                   if acc_frame["n"].null_count() == 0 and acc_frame["correct"].null_count() == 0 else ""),
                f"Correlation: Spearman rank correlation of document frequency with accuracy, and Pearson "
                f"correlation of log(1 + document frequency) with accuracy, over classes with accuracy. 95% "
                f"intervals: percentile bootstrap over classes ({n_boot} resamples with replacement, "
                f"numpy default_rng({seed})); p-values: scipy.stats, two-sided."])
        corr_rows, corrs, binned = [], {}, {}
        for label, f in {**measures, **extra}.items():
            c = correlate(f[have], acc[have], seed=seed, n_boot=n_boot)
            corrs[label] = c
            corr_rows.append([label, c["n_classes"], _ci(c["spearman"]), _p(c["spearman"]["p"]),
                              _ci(c["pearson_log1p"]), _p(c["pearson_log1p"]["p"])])
            if label in measures:
                binned[label] = binned_accuracy(f[have], acc[have], "log")
        doc.h(3, "Correlation")
        doc.table(["frequency", "classes", "Spearman ρ [95% CI]", "p", "Pearson r on log1p [95% CI]", "p"],
                  corr_rows)
        doc.h(3, "Accuracy by frequency bin")
        doc.p("Classes are binned by document frequency: a bin for 0, then decades [1, 10), [10, 100), ...; the "
              "plot shows mean per-class accuracy per bin with the standard error over classes.")
        add_plot("mean accuracy per frequency bin", "accuracy_binned.png", plot_binned(binned))
        keys = sorted({(b["lo"], b["hi"]) for bins in binned.values() for b in bins})
        brow = []
        for lo, hi in keys:
            row: list[Any] = [_bin_label(lo, hi)]
            for bins in binned.values():
                b = next((b for b in bins if (b["lo"], b["hi"]) == (lo, hi)), None)
                row.append(f"{_fmt(b['mean_accuracy'])} ({b['n_classes']})" if b else "–")
            brow.append(row)
        doc.table(["documents", *[f"{k}: mean acc (classes)" for k in binned]], brow)
        add_plot("per-class accuracy vs frequency", "accuracy_scatter.png",
                 plot_accuracy_scatter([(k, measures[k][have], acc[have], corrs[k]) for k in measures]))
        for label, c in corrs.items():
            summary[f"spearman[{label}]"] = c["spearman"]["r"]
            summary[f"spearman_ci95[{label}]"] = f"[{_fmt(c['spearman']['ci95'][0])}, {_fmt(c['spearman']['ci95'][1])}]"
            summary[f"pearson_log1p[{label}]"] = c["pearson_log1p"]["r"]
            summary[f"pearson_log1p_ci95[{label}]"] = (f"[{_fmt(c['pearson_log1p']['ci95'][0])}, "
                                                        f"{_fmt(c['pearson_log1p']['ci95'][1])}]")
        summary["accuracy_classes"] = int(have.sum())
        summary["mean_accuracy"] = float(acc[have].mean())
        summary["correlations"] = corrs
        summary["binned"] = binned

    ue_col = "doc_freq[sum]" if len(names) > 1 else f"doc_freq[{names[0]}]"
    ue = under_exposed(wide, k=top_k, column=ue_col)
    doc.h(2, "Under-exposed classes")
    doc.p(f"The {ue.height} classes with the lowest document frequency "
          f"({'summed over all corpora' if len(names) > 1 else names[0]}); ties in class-list order.")
    cols = [f"doc_freq[{n}]" for n in names] + (["doc_freq[sum]"] if len(names) > 1 else [])
    acc_cols = ["n", "accuracy"] if acc_frame is not None else []
    doc.table(["class", "class_id", *cols, *acc_cols, "flags"],
              [[r["class_name"], r["class_id"], *[r[c] for c in cols], *[r[c] for c in acc_cols],
                r["flags"] or "–"] for r in ue.iter_rows(named=True)])
    summary["under_exposed"] = ue["class_id"].to_list()

    for name, data in plots.items():
        (out / "plots" / name).write_bytes(data)
    for old in (out / "plots").glob("*.png"):  # plots of an earlier run that this run did not draw
        if old.name not in plots and PLOT_NAME_RE.fullmatch(old.name):
            old.unlink()
    wide.write_csv(out / "report_classes.csv")
    (out / "report.md").write_text(doc.markdown(), encoding="utf-8")
    (out / "report.html").write_text(doc.html(title), encoding="utf-8")
    summary["plots"] = len(plots)
    summary["report_md"] = str(out / "report.md")
    summary["report_html"] = str(out / "report.html")
    return summary
