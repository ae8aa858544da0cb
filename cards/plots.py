"""The card's plots as PNG bytes: rows per class, correct-answer letters, class-name mentions in a corpus.

Drawn with matplotlib's Agg canvas at a fixed size and dpi, without a ``Software`` tag, so the same values give
the same bytes."""

from __future__ import annotations

import io
import math

from cards.markdown import num

FIGSIZE = (7.0, 3.2)
DPI = 100
MAX_LISTED = 30  # classes listed one by one in tables and bar charts


def _figure():
    import matplotlib  # heavy: only the plots need it

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only the plots need it
    from matplotlib.figure import Figure  # heavy: only the plots need it

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _bars_or_hist(ax, labels: list[str], values: list[float], xlabel: str, ylabel: str, log: bool = False) -> None:
    if len(values) <= MAX_LISTED:
        bars = ax.barh(range(len(values)), values, color="#4C72B0")
        ax.bar_label(bars, labels=[num(v) for v in values], fontsize=7, padding=2)
        ax.set_yticks(range(len(values)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        ax.set_xlim(0, max([*values, 1]) * 1.12)
    else:
        data = [math.log10(v + 1) for v in values] if log else values
        ax.hist(data, bins=30, color="#4C72B0")
        ax.set_xlabel(f"log10({xlabel} + 1)" if log else xlabel)
        ax.set_ylabel("classes")


def plot_class_counts(counts: dict[str, int], names: dict[str, str]) -> bytes:
    """PNG: rows per class (a bar per class up to 30 classes, else a histogram of rows per class)."""
    fig = _figure()
    ax = fig.add_subplot()
    ids = sorted(counts, key=lambda c: (-counts[c], c))
    _bars_or_hist(ax, [names.get(c, c) for c in ids], [counts[c] for c in ids], "rows per class", "rows")
    ax.set_title(f"Rows per class ({len(counts)} classes)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def plot_letters(letters: dict[str, int]) -> bytes:
    """PNG: how often each letter is the correct answer."""
    fig = _figure()
    ax = fig.add_subplot()
    keys = list(letters)
    ax.bar(keys, [letters[k] for k in keys], color="#55A868")
    ax.set_xlabel("correct letter")
    ax.set_ylabel("questions")
    ax.set_title("Correct-answer letters", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def plot_class_frequency(corpus: str, rows: list[dict], names: dict[str, str]) -> bytes:
    """PNG: mentions per class in one corpus (bars up to 30 classes, else a histogram of log mentions)."""
    fig = _figure()
    ax = fig.add_subplot()
    ordered = sorted(rows, key=lambda r: (-r["mentions"], r["class_id"]))
    _bars_or_hist(ax, [names.get(r["class_id"], r["class_name"]) for r in ordered],
                  [r["mentions"] for r in ordered], "mentions", "mentions", log=True)
    ax.set_title(f"Class-name mentions in {corpus} ({len(rows)} classes)", fontsize=9)
    fig.tight_layout()
    return _png(fig)
