"""The report's plots, drawn with matplotlib's Agg canvas (``Figure`` + ``FigureCanvasAgg``; pyplot is never
imported, so no display or global backend is needed) under matplotlib's default style, at a fixed dpi and
without the ``Software`` PNG tag: the same inputs give byte-identical PNG files.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

import polars as pl

from corpora_stats.statistics import bin_label

if TYPE_CHECKING:
    import numpy as np

DPI = 100


def _style():
    import matplotlib.style  # heavy: only drawing needs matplotlib

    return matplotlib.style.context(["default", {
        "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
        "grid.alpha": 0.3, "axes.axisbelow": True, "text.usetex": False, "svg.hashsalt": "corpora_stats"}])


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only drawing needs matplotlib
    from matplotlib.figure import Figure  # heavy: only drawing needs matplotlib

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
        from matplotlib.ticker import FuncFormatter, MaxNLocator  # heavy: only drawing needs matplotlib

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
    import numpy as np  # heavy (~0.08 CPU-s): only drawing needs numpy, not 'count' (which imports this)

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
    import numpy as np  # heavy (~0.08 CPU-s): only drawing needs numpy, not 'count' (which imports this)

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
        ax.set_xticks(range(len(keys)), [bin_label(lo, hi) for lo, hi in keys],
                      rotation=30 if len(keys) > 6 else 0)
        ax.set_ylim(-0.02, 1.08)
        ax.set_xlabel("documents mentioning the class (bin)")
        ax.set_ylabel("mean per-class accuracy")
        ax.set_title("Accuracy by class frequency (numbers: classes per bin; error bars: s.e.m.)")
        ax.legend(fontsize=8, loc="upper left")
        return _png(fig)


def plot_accuracy_scatter(panels: list[tuple[str, np.ndarray, np.ndarray, dict]]) -> bytes:
    """Per-class accuracy against log(1 + document frequency), one panel per frequency measure."""
    import numpy as np  # heavy (~0.08 CPU-s): only drawing needs numpy, not 'count' (which imports this)

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
