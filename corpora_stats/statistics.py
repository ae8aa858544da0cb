"""Statistics of the report: frequency–accuracy correlations with bootstrap intervals, frequency bins, and the
least frequent classes.

Correlations: Spearman between document frequency and accuracy, Pearson between log(1 + document frequency)
and accuracy, each with a 95% percentile-bootstrap interval over classes (``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import polars as pl

from vlm_classdata.errors import UserError

if TYPE_CHECKING:
    import numpy as np


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two per-class measures (NaN when either is constant)."""
    import numpy as np  # heavy (~0.08 CPU-s): only the report needs numpy, not 'count' (which imports this)
    from scipy import stats  # heavy: only the correlations need scipy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(x, y)[0]) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    import numpy as np  # heavy (~0.08 CPU-s): only the report needs numpy, not 'count' (which imports this)

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
    import numpy as np  # heavy (~0.08 CPU-s): only the report needs numpy, not 'count' (which imports this)
    from scipy import stats  # heavy: only the correlations need scipy

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
    import numpy as np  # heavy (~0.08 CPU-s): only the report needs numpy, not 'count' (which imports this)

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
    import numpy as np  # heavy (~0.08 CPU-s): only the report needs numpy, not 'count' (which imports this)

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

def bin_label(lo: int, hi: int) -> str:
    """``[lo, hi)`` as the integer range it holds: "0", "1–9", "1,000–9,999"."""
    return f"{lo:,}" if hi - lo == 1 else f"{lo:,}–{hi - 1:,}"
