"""Benchmark class-name counting: the paper's naive loop vs raw polars contains_any (scan ceiling) vs ours.

    python scripts/bench_corpora.py [--lines 1000000] [--naive-sample 5000] [--workers 1] [--markdown]

The corpus is caption-like text built from WordNet glosses (installed offline) with an ImageNet class form
inserted into ~30% of lines, seeded. All contenders read the same txt file; ours is the full
``count_corpora`` run (reading, normalising, matching, counting, snippets, writing tables).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from corpora_stats.count import CountConfig, count_corpora  # noqa: E402
from corpora_stats.matcher import Matcher  # noqa: E402
from corpora_stats.readers import open_corpus  # noqa: E402
from vlm_classdata.executors import LocalExecutor  # noqa: E402
from vlm_classdata.lexicon import Lexicon  # noqa: E402
from vlm_classdata.vocabulary import ClassVocabulary  # noqa: E402


def make_corpus(path: Path, lines: int, forms: list[str], seed: int = 0) -> None:
    """Write ``lines`` caption-like lines (WordNet gloss fragments, ~30% with a class form)."""
    glosses = [t for _, batch in open_corpus("wordnet:glosses", "wordnet_glosses").batches() for t in batch]
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(lines):
            words = rng.choice(glosses).split()[:12]
            if rng.random() < 0.3:
                form = rng.choice(forms)
                form = form.title() if rng.random() < 0.3 else form
                form = form.replace(" ", "-") if rng.random() < 0.1 else form
                words.insert(rng.randrange(len(words) + 1), form)
            f.write(" ".join(words).replace("\n", " ") + "\n")


def naive_paper_counts(texts: list[str], names: list[str]) -> list[int]:
    """The paper's notebook loop: lower-cased tokens, contiguous token sub-list test per class name."""
    counts = [0] * len(names)
    def tokenize(s: str) -> list[str]:
        return "".join(c if c.isalnum() else " " for c in s.lower()).split()

    name_tokens = [tokenize(n) for n in names]
    for text in texts:
        tokens = tokenize(text)
        for i, nt in enumerate(name_tokens):
            k = len(nt)
            if any(tokens[j:j + k] == nt for j in range(len(tokens) - k + 1)):
                counts[i] += 1
    return counts


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.1f} GiB, Python {platform.python_version()}, "
            f"polars {pl.__version__}, load avg {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--naive-sample", type=int, default=5000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--work", help="folder for the corpus and outputs (default: a temp folder)")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-corpora-"))
    work.mkdir(parents=True, exist_ok=True)
    vocab = ClassVocabulary.bundled("imagenet1k")
    lexicon = Lexicon.build(vocab)
    corpus = work / f"captions_{args.lines}.txt"
    if not corpus.is_file():
        make_corpus(corpus, args.lines, sorted({f.text for f in lexicon.forms}))
    text = corpus.read_text()
    lines = text.splitlines()
    mb = len(text.encode()) / 1e6
    del text
    rows = []

    sample = lines[: args.naive_sample]
    t = time.perf_counter()
    naive = naive_paper_counts(sample, vocab.names)
    naive_rate = len(sample) / (time.perf_counter() - t)
    rows.append(("naive: paper's per-class token loop*", len(lines), len(lines) / naive_rate, 1))

    patterns = sorted({f.text for f in lexicon.forms})
    t = time.perf_counter()
    df = pl.read_csv(corpus, has_header=False, separator="\x1f", quote_char=None, new_columns=["text"])
    hits = df.select(pl.col("text").str.contains_any(patterns, ascii_case_insensitive=True)).sum().item()
    rows.append(("ceiling: polars read + contains_any", len(lines), time.perf_counter() - t, len(os.sched_getaffinity(0))))

    for method in ("wordnet", "paper"):
        t = time.perf_counter()
        meta = count_corpora({"bench": str(corpus)}, vocab, work / f"out_{method}", CountConfig(method=method),
                             LocalExecutor(args.workers), show_progress=False)
        dt = time.perf_counter() - t
        assert meta["corpora"]["bench"]["documents"] == len(lines), meta["corpora"]["bench"]
        rows.append((f"ours: count --method {method} (end to end)", len(lines), dt, len(os.sched_getaffinity(0))))

    m = Matcher(Lexicon.build(vocab, method="paper").forms, vocab.ids, method="paper", snippets=0)
    st = m.new_state()
    m.count_batch(st, sample, 0)
    disagree = sum(1 for a, b in zip(naive, st.class_docs_all.tolist(), strict=True) if a != b)

    naive_s = rows[0][2]
    header = ("contender", "lines", "seconds", "lines/s", "MB/s", "MB/s per vlm_classdata", "× naive")
    table = [(name, f"{n:,}", f"{s:.2f}", f"{n / s:,.0f}", f"{mb / s:.1f}", f"{mb / s / c:.1f}",
              f"{naive_s / s:,.0f}×") for name, n, s, c in rows]
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    print(f"corpus: {len(lines):,} lines, {mb:.1f} MB, mean {mb * 1e6 / len(lines):.0f} bytes/line; "
          f"contains_any hits {hits:,}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"* naive measured on {len(sample):,} lines and extrapolated. paper-method agreement with the naive loop "
          f"on those lines: {'agree' if not disagree else f'{disagree} classes differ'}")
    ours = rows[2]
    per_core = mb / ours[2] / ours[3]
    speedup = naive_s / ours[2] / ours[3]
    print(f"goals: ≥300× naive per core → {speedup:,.0f}× ({'met' if speedup >= 300 else 'NOT met'}); "
          f"≥60 MB/s per core → {per_core:.1f} ({'met' if per_core >= 60 else 'NOT met'})")
    print(f"machine: {machine()}; workers {args.workers}")
    if args.markdown:
        print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for r in table:
            print("| " + " | ".join(r) + " |")
    return 0 if not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
