"""Whole-process benchmark of class-name counting: every contender is its own process, timed from its start.

    python scripts/bench_corpora.py [--lines 1000000] [--big-lines 10000000] [--naive-sample 5000]
                                    [--repeat 1] [--workdir DIR] [--format txt|parquet]

The corpus is caption-like text built from WordNet 3.0 glosses (8-11 words of a definition or example, seeded)
with an ImageNet class form inserted into ~30% of lines, sometimes Title-cased or hyphenated: ~44.7 MB per
million lines. It is written once into the work folder and reused by later runs with the same parameters.

Rows, each one process started cold (Python start-up, imports, lexicon, reading, matching, writing tables):

1. the paper's notebook loop (:func:`naive_paper_counts`) over the first ``--naive-sample`` lines; its loop time
   is extrapolated linearly to the whole corpus (start-up and reading are not scaled);
2. the polars ceiling: read the file with polars and test every line with ``str.contains_any`` over all lexicon
   forms (a substring test, no word boundaries, no counting per class);
3. ``python -m corpora_stats count --corpus c=FILE --out OUT --quiet`` with the lexicon cache
   (``cache_dir()/"lexicon"``) deleted first: cold, 1 worker;
4. the same with the lexicon cache warm, 1 worker; 5. warm, ``--num-workers 2``; 6. warm, ``--method paper``;
7. warm, 1 and 2 workers on a ``--big-lines`` corpus (0 skips it).

CPU s is user + system time of the process and of every descendant: this process makes itself a child
subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), so descendants orphaned by their parent (a forkserver and its
workers, a resource tracker) are re-parented to it instead of to init; it reaps every one with ``wait4`` and sums
their rusage (a reaped process's rusage already includes the descendants it reaped itself). Peak RSS is the
largest ``ru_maxrss`` of any one process of the tree. Each cell is the run with the median CPU s of ``--repeat``
rounds; rounds alternate the order of the rows (the cold row always first, so the warm rows find a cache).

Under the table: the issue's goals marked PASS/FAIL, and the machine. Exit status 0 when every row ran and
``--method paper`` counts the naive loop's sample as the loop does, whether or not a goal is met; 1 when not;
2 for a bad option.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import importlib.metadata
import inspect
import itertools
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vlm_classdata.atomic import atomic_output, write_json_atomic, write_text_atomic  # noqa: E402
from vlm_classdata.errors import UserError, run_cli  # noqa: E402
from vlm_classdata.lexicon import Lexicon  # noqa: E402
from vlm_classdata.vocabulary import ClassVocabulary  # noqa: E402
from vlm_classdata.wordnet import cache_dir, wordnet  # noqa: E402

CORPUS_VERSION = 1          # bump when the generator changes, so that old corpora are not reused
SEED = 0
CAPTION_WORDS = (8, 11)     # a caption is the first 8-11 words of a gloss: ~44.7 bytes per line
FORM_SHARE = 0.3
PARQUET_ROWS = 100_000      # rows per parquet row group (and per generator batch)
PR_SET_CHILD_SUBREAPER = 36
DRAIN_TIMEOUT_S = 120.0     # how long descendants may outlive the row's process before they are given up

GOAL_LINES = 1_000_000      # the corpus size the goals are stated for
GOAL_MB_PER_CPU_S = 100.0
GOAL_X_NAIVE = 1000.0
GOAL_RSS_MB = 300.0
GOAL_SPEEDUP = 1.8


# ----- the corpus -------------------------------------------------------------------------------------------
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


def wordnet_glosses() -> list[str]:
    """Every WordNet 3.0 synset's definition and examples, in NLTK's ``all_synsets`` order."""
    out: list[str] = []
    for synset in wordnet().all_synsets():
        out.append(synset.definition())
        out.extend(synset.examples())
    return out


def caption_lines(glosses: list[str], forms: list[str], lines: int, seed: int = SEED) -> Iterator[str]:
    """``lines`` caption-like lines (no newline): a gloss's first 8-11 words, ~30% with a class form inserted
    at a random word position, of those ~30% Title-cased and ~10% hyphenated."""
    rng = random.Random(seed)
    for _ in range(lines):
        words = rng.choice(glosses).split()[: rng.randint(*CAPTION_WORDS)]
        if rng.random() < FORM_SHARE:
            form = rng.choice(forms)
            form = form.title() if rng.random() < 0.3 else form
            form = form.replace(" ", "-") if rng.random() < 0.1 else form
            words.insert(rng.randrange(len(words) + 1), form)
        yield " ".join(words).replace("\n", " ")


@dataclass(frozen=True)
class Corpus:
    """A generated corpus file; ``text_bytes`` is its text as UTF-8 with one newline per line (the txt size)."""

    path: Path
    lines: int
    text_bytes: int
    fmt: str

    @property
    def mb(self) -> float:
        return self.text_bytes / 1e6


@dataclass(frozen=True)
class Prepared:
    """What the preparing process made: the corpora and the files the row processes read."""

    corpus: Corpus
    big: Corpus | None
    names_file: Path
    forms_file: Path
    sample_file: Path

    def to_json(self) -> dict:
        def corpus(c: Corpus | None) -> dict | None:
            return None if c is None else {"path": str(c.path), "lines": c.lines, "text_bytes": c.text_bytes,
                                           "fmt": c.fmt}
        return {"corpus": corpus(self.corpus), "big": corpus(self.big), "names_file": str(self.names_file),
                "forms_file": str(self.forms_file), "sample_file": str(self.sample_file)}

    @classmethod
    def from_json(cls, data: dict) -> Prepared:
        def corpus(d: dict | None) -> Corpus | None:
            return None if d is None else Corpus(Path(d["path"]), d["lines"], d["text_bytes"], d["fmt"])
        return cls(corpus(data["corpus"]), corpus(data["big"]), Path(data["names_file"]), Path(data["forms_file"]),
                   Path(data["sample_file"]))


class Material:
    """The inputs of the generator and of the row processes, as files in the work folder, each made once: the
    class names (the naive loop's), the lexicon forms (inserted into captions; the polars ceiling's patterns) and
    WordNet's glosses (what captions are cut from; NLTK takes seconds to list them, so they are kept)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.names_file = workdir / "class_names.txt"
        self.forms_file = workdir / "class_forms.txt"
        self.glosses_file = workdir / "wordnet_glosses.txt"

    def write_lists(self) -> None:
        """The class names and lexicon forms files, unless both are there."""
        if self.names_file.is_file() and self.forms_file.is_file():
            return
        vocab = ClassVocabulary.load("imagenet1k")
        forms = sorted({f.text for f in Lexicon.build(vocab).forms})
        write_text_atomic(self.names_file, "".join(f"{n}\n" for n in vocab.names))
        write_text_atomic(self.forms_file, "".join(f"{f}\n" for f in forms))

    def forms(self) -> list[str]:
        self.write_lists()
        return _read_lines(self.forms_file)

    def glosses(self) -> list[str]:
        if not self.glosses_file.is_file():
            write_text_atomic(self.glosses_file, "".join(" ".join(g.split()) + "\n" for g in wordnet_glosses()))
        return _read_lines(self.glosses_file)


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file written one item per line (split on newline only)."""
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _write_txt(tmp: Path, lines: Iterator[str]) -> int:
    size = 0
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            data = line + "\n"
            size += len(data.encode("utf-8"))
            f.write(data)
    return size


def _write_parquet(tmp: Path, lines: Iterator[str]) -> int:
    import pyarrow as pa  # heavy (~0.3 s): only a parquet corpus needs it, in the preparing process
    import pyarrow.parquet as pq  # see above

    size, batch = 0, []
    with pq.ParquetWriter(tmp, pa.schema([("text", pa.string())])) as writer:
        for line in lines:
            batch.append(line)
            size += len(line.encode("utf-8")) + 1
            if len(batch) == PARQUET_ROWS:
                writer.write_table(pa.table({"text": batch}))
                batch = []
        if batch:
            writer.write_table(pa.table({"text": batch}))
    return size


def prepare_corpus(material: Material, lines: int, fmt: str) -> Corpus:
    """The corpus of ``lines`` lines in ``fmt``: reused when its description file says it was written by this
    generator with the same parameters, else generated (atomically) and described."""
    path = material.workdir / f"captions_v{CORPUS_VERSION}_s{SEED}_{lines}.{fmt}"
    described = path.with_name(path.name + ".json")
    params = {"version": CORPUS_VERSION, "seed": SEED, "lines": lines, "format": fmt}
    if path.is_file() and described.is_file():
        try:
            info = json.loads(described.read_text(encoding="utf-8"))
        except ValueError:
            info = {}
        if info.get("params") == params and isinstance(info.get("text_bytes"), int):
            return Corpus(path, lines, info["text_bytes"], fmt)
    print(f"generating {lines:,} lines → {path}", file=sys.stderr, flush=True)
    generated = caption_lines(material.glosses(), material.forms(), lines)
    with atomic_output(path) as tmp:
        text_bytes = (_write_txt if fmt == "txt" else _write_parquet)(tmp, generated)
    write_json_atomic(described, {"params": params, "text_bytes": text_bytes})
    return Corpus(path, lines, text_bytes, fmt)


def write_sample(corpus: Corpus, lines: int, path: Path) -> Path:
    """The first ``lines`` lines of a corpus as a txt file (the paper-method agreement check)."""
    if corpus.fmt == "txt":
        with open(corpus.path, encoding="utf-8") as f:
            head = "".join(itertools.islice(f, lines))
    else:
        import pyarrow.parquet as pq  # heavy (~0.3 s): only a parquet corpus needs it, in the preparing process

        texts = pq.read_table(corpus.path, columns=["text"]).column("text").slice(0, lines).to_pylist()
        head = "".join(f"{t}\n" for t in texts)
    write_text_atomic(path, head)
    return path


def read_through(path: Path) -> None:
    """Read a file once, so that every row finds it in the page cache (none pays the first disk read)."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


# ----- measuring a process tree -----------------------------------------------------------------------------
def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


@dataclass
class Run:
    """One measured process: wall time to its exit, CPU and peak RSS of it and all its descendants."""

    wall_s: float
    cpu_s: float
    rss_mb: float
    returncode: int
    stdout: Path
    stderr: Path
    stragglers: int = 0     # descendants still alive DRAIN_TIMEOUT_S after the process exited (not counted)
    report: dict = field(default_factory=dict)  # what the process printed, parsed by its row's check

    def last_error_line(self) -> str:
        lines = [ln for ln in self.stderr.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        return lines[-1][:200] if lines else "no message"


def _cpu(ru: resource.struct_rusage) -> float:
    return ru.ru_utime + ru.ru_stime


def _own_children() -> int:
    """How many children this process has now (Linux ``/proc``; 0 where it cannot tell)."""
    try:
        return sum(len(p.read_text().split()) for p in Path(f"/proc/{os.getpid()}/task").glob("*/children"))
    except OSError:
        return 0


def run_measured(cmd: list[str], logs: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run ``cmd`` to its end; wall time from start to its exit, CPU summed over every process of its tree.

    Call :func:`become_subreaper` first and start no other child meanwhile: every child this process has is
    taken to belong to ``cmd``'s tree. Orphaned descendants are re-parented here and reaped after the process
    exits; ``wait4`` gives each one's rusage including the descendants it reaped itself."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it again
    cpu, rss_kb = _cpu(ru), ru.ru_maxrss
    deadline, stragglers = time.monotonic() + DRAIN_TIMEOUT_S, 0
    while True:
        try:
            pid, _, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            cpu, rss_kb = cpu + _cpu(ru), max(rss_kb, ru.ru_maxrss)
        elif time.monotonic() > deadline:
            stragglers = max(1, _own_children())
            break
        else:
            time.sleep(0.005)
    return Run(wall, cpu, rss_kb / 1024, proc.returncode, stdout, stderr, stragglers)


def clear_lexicon_cache() -> Path:
    """Delete ``cache_dir()/"lexicon"`` (the cache in effect for this environment) and nothing else: a folder is
    removed with its contents, a symbolic link only as a link. Returns the path."""
    target = cache_dir() / "lexicon"
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    return target


# ----- the contenders ----------------------------------------------------------------------------------------
NAIVE_MAIN = '''
import itertools, json, sys, time
corpus, names_file, sample, fmt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open(names_file, encoding="utf-8") as f:
    names = f.read().splitlines()
if fmt == "txt":
    with open(corpus, encoding="utf-8") as f:
        texts = [line.rstrip("\\n") for line in itertools.islice(f, sample)]
else:
    import polars as pl
    texts = pl.read_parquet(corpus, columns=["text"], n_rows=sample)["text"].to_list()
cpu, wall = time.process_time(), time.perf_counter()
counts = naive_paper_counts(texts, names)
print(json.dumps({"lines": len(texts), "loop_cpu_s": time.process_time() - cpu,
                  "loop_wall_s": time.perf_counter() - wall, "counts": counts}))
'''

CEILING_MAIN = '''
import sys
import polars as pl
corpus, forms_file, fmt = sys.argv[1:4]
with open(forms_file, encoding="utf-8") as f:
    forms = f.read().splitlines()
if fmt == "txt":
    frame = pl.read_csv(corpus, has_header=False, separator="\\x1f", quote_char=None, new_columns=["text"],
                        infer_schema=False)
else:
    frame = pl.read_parquet(corpus, columns=["text"])
hits = frame.select(pl.col("text").str.contains_any(forms, ascii_case_insensitive=True).sum()).item()
print(frame.height, hits)
'''


@dataclass
class Contender:
    """One row: how to start its process and how to check what it wrote."""

    key: str
    label: str
    corpus: Corpus
    argv: Callable[[Path], list[str]]          # the command, given its run folder
    check: Callable[[Run, Path], str | None]   # None when the output is right, else why not
    cold: bool = False
    runs: list[Run] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def figures(self, run: Run) -> dict[str, float]:
        """Wall s, CPU s and peak RSS MB of one run; a run that reports its loop time on a sample (the naive
        row) has the loop's share of wall and CPU extrapolated to the whole corpus."""
        wall, cpu = run.wall_s, run.cpu_s
        if "loop_cpu_s" in run.report:
            more = self.corpus.lines / run.report["lines"] - 1
            wall, cpu = wall + run.report["loop_wall_s"] * more, cpu + run.report["loop_cpu_s"] * more
        return {"wall": wall, "cpu": cpu, "rss": run.rss_mb}

    def median(self) -> Run:
        """The run with the median CPU s (the lower one of an even count)."""
        ordered = sorted(self.runs, key=lambda r: self.figures(r)["cpu"])
        return ordered[(len(ordered) - 1) // 2]


def count_argv(corpus: Corpus, *extra: str) -> Callable[[Path], list[str]]:
    return lambda run_dir: [sys.executable, "-m", "corpora_stats", "count", "--corpus", f"c={corpus.path}",
                            "--out", str(run_dir / "out"), "--quiet", *extra]


def check_count(corpus: Corpus) -> Callable[[Run, Path], str | None]:
    def check(run: Run, run_dir: Path) -> str | None:
        out = run_dir / "out"
        if not (out / "counts_c.csv").is_file() and not (out / "counts_c.parquet").is_file():
            return f"no counts_c table in {out}"
        try:
            documents = json.loads((out / "count_meta.json").read_text(encoding="utf-8"))["corpora"]["c"]["documents"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the counts table is there; the meta layout is not this benchmark's business
        return None if documents == corpus.lines else f"counted {documents:,} documents, not {corpus.lines:,}"
    return check


def naive_contender(corpus: Corpus, names_file: Path, sample: int) -> Contender:
    program = inspect.getsource(naive_paper_counts) + NAIVE_MAIN
    argv = [sys.executable, "-c", program, str(corpus.path), str(names_file), str(sample), corpus.fmt]

    def check(run: Run, run_dir: Path) -> str | None:
        try:
            report = json.loads(run.stdout.read_text(encoding="utf-8"))
        except ValueError:
            return "no report on stdout"
        if report.get("lines") != sample:
            return f"read {report.get('lines')} lines, not {sample}"
        run.report = report
        return None

    return Contender("naive", f"naive paper loop ({sample:,} lines, extrapolated)*", corpus, lambda run_dir: argv,
                     check)


def ceiling_contender(corpus: Corpus, forms_file: Path) -> Contender:
    forms = len(_read_lines(forms_file))
    argv = [sys.executable, "-c", CEILING_MAIN, str(corpus.path), str(forms_file), corpus.fmt]

    def check(run: Run, run_dir: Path) -> str | None:
        words = run.stdout.read_text(encoding="utf-8").split()
        if len(words) != 2 or not all(w.isdigit() for w in words):
            return "no 'rows hits' line on stdout"
        if int(words[0]) != corpus.lines:
            return f"read {words[0]} rows, not {corpus.lines:,}"
        run.report = {"hits": int(words[1])}
        return None

    return Contender("ceiling", f"polars read + contains_any ({forms:,} forms, substring only)", corpus,
                     lambda run_dir: argv, check)


def contenders(prepared: Prepared, sample: int) -> list[Contender]:
    """The rows, in table order."""
    corpus, big = prepared.corpus, prepared.big
    rows = [naive_contender(corpus, prepared.names_file, sample), ceiling_contender(corpus, prepared.forms_file),
            Contender("cold", "count, lexicon cold, 1 worker", corpus, count_argv(corpus), check_count(corpus),
                      cold=True),
            Contender("warm1", "count, lexicon warm, 1 worker", corpus, count_argv(corpus), check_count(corpus)),
            Contender("warm2", "count, warm, 2 workers", corpus, count_argv(corpus, "--num-workers", "2"),
                      check_count(corpus)),
            Contender("paper", "count --method paper, warm, 1 worker", corpus, count_argv(corpus, "--method", "paper"),
                      check_count(corpus))]
    if big is not None:
        rows += [Contender("big1", f"count, warm, 1 worker, {big.lines:,} lines", big, count_argv(big),
                           check_count(big)),
                 Contender("big2", f"count, warm, 2 workers, {big.lines:,} lines", big,
                           count_argv(big, "--num-workers", "2"), check_count(big))]
    return rows


# ----- running and reporting ---------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    """This environment with the checkout first on PYTHONPATH (``python -m corpora_stats`` from anywhere)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_row(row: Contender, runs_dir: Path, round_no: int, env: dict[str, str]) -> None:
    """Run one contender once (after deleting the lexicon cache for the cold row) and keep or refuse the run."""
    run_dir = runs_dir / f"{row.key}-{round_no}"
    shutil.rmtree(run_dir, ignore_errors=True)
    if row.cold:
        clear_lexicon_cache()
    run = run_measured(row.argv(run_dir), run_dir, env=env, cwd=runs_dir)
    problem = f"exit {run.returncode}: {run.last_error_line()}" if run.returncode else row.check(run, run_dir)
    if problem:
        row.failures.append(f"{problem} (logs: {run_dir})")
    else:
        row.runs.append(run)
    if run.stragglers:
        print(f"warning: {row.key}: descendants still running {DRAIN_TIMEOUT_S:.0f} s after exit; their CPU is "
              "not counted", file=sys.stderr)


def prime_paper(sample_file: Path, runs_dir: Path, env: dict[str, str]) -> Path | None:
    """Untimed ``--method paper`` count of the sample: warms the paper lexicon after the cold row deleted the
    cache, and gives the paper method's counts to compare with the naive loop's. Returns the out folder."""
    run_dir = runs_dir / "prime-paper"
    shutil.rmtree(run_dir, ignore_errors=True)
    out = run_dir / "out"
    run = run_measured([sys.executable, "-m", "corpora_stats", "count", "--corpus", f"c={sample_file}", "--out",
                        str(out), "--quiet", "--method", "paper"], run_dir, env=env, cwd=runs_dir)
    if run.returncode:
        print(f"warning: priming --method paper failed: {run.last_error_line()}", file=sys.stderr)
        return None
    return out


def paper_agreement(naive: Run, primed: Path | None, names: list[str]) -> str | None:
    """Classes whose ``--method paper`` count of the sampled lines differs from the naive loop's, as a line;
    None when they all agree."""
    counts = naive.report.get("counts")
    if primed is None or counts is None or not (primed / "counts_c.csv").is_file():
        return "not checked (no naive counts or no paper counts of the sample)"
    with open(primed / "counts_c.csv", encoding="utf-8", newline="") as f:
        paper = {row["class_name"]: int(row.get("doc_freq_all") or row["doc_freq"]) for row in csv.DictReader(f)}
    differ = [n for n, c in zip(names, counts, strict=True) if paper.get(n) != c]
    return f"{len(differ):,} classes differ (e.g. {', '.join(differ[:3])})" if differ else None


def machine() -> str:
    """CPU model, cores, RAM, Python, OS, polars, load and the checkout's commit."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), None)
    except OSError:
        cpu = None
    try:
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    except (ValueError, OSError):
        mem = "RAM unknown"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                         text=True, check=False)
    commit = git.stdout.strip() or "unknown"
    return (f"{cpu or platform.processor() or 'CPU unknown'}, {os.cpu_count()} logical cores ({usable} usable), "
            f"{mem}, Python {platform.python_version()}, {platform.platform()}, "
            f"polars {importlib.metadata.version('polars')}, load avg {os.getloadavg()[0]:.2f} at start, "
            f"commit {commit}")


def _fmt_x(value: float) -> str:
    return f"{value:,.0f}×" if value >= 10 else f"{value:.1f}×"


def table(rows: list[Contender]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The Markdown table lines and each row's numbers (for the goals)."""
    naive = rows[0]
    numbers = {row.key: row.figures(row.median()) for row in rows if row.runs}
    naive_cpu_per_mb = numbers["naive"]["cpu"] / naive.corpus.mb if "naive" in numbers else None
    one_worker = {"warm2": "warm1", "big2": "big1"}
    out = ["| contender | wall s | CPU s | MB per CPU-s | × naive per core | peak RSS MB | 2 workers vs 1 (wall) |",
           "|:---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        got = numbers.get(row.key)
        if got is None:
            out.append(f"| {row.label} | failed | | | | | |")
            continue
        got["mb_per_cpu"] = row.corpus.mb / got["cpu"]
        if naive_cpu_per_mb is not None:
            got["x_naive"] = naive_cpu_per_mb * row.corpus.mb / got["cpu"]
        base = numbers.get(one_worker.get(row.key, ""))
        if base is not None:
            got["speedup"] = base["wall"] / got["wall"]
        cells = [row.label, f"{got['wall']:,.2f}", f"{got['cpu']:,.2f}", f"{got['mb_per_cpu']:,.1f}",
                 _fmt_x(got["x_naive"]) if "x_naive" in got else "–", f"{got['rss']:,.0f}",
                 f"{got['speedup']:.2f}×" if "speedup" in got else "–"]
        out.append("| " + " | ".join(cells) + " |")
    return out, numbers


def goal_lines(rows: list[Contender], numbers: dict[str, dict[str, float]], lines: int) -> list[str]:
    """The issue's goals, each with PASS/FAIL computed from the numbers (n/a where a row is missing)."""
    def mark(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    warm = numbers.get("warm1", {})
    note = "" if lines == GOAL_LINES else f" (the goal is stated for {GOAL_LINES:,} lines; this corpus has {lines:,})"
    mb = warm.get("mb_per_cpu")
    x = warm.get("x_naive")
    counts = [(row.label, numbers[row.key]["rss"]) for row in rows
              if row.key in numbers and row.key not in ("naive", "ceiling")]
    worst = max(counts, key=lambda c: c[1]) if counts else None
    speedups = [(row.corpus.lines, numbers[row.key]["speedup"]) for row in rows
                if "speedup" in numbers.get(row.key, {})]
    return [
        f"- {mark(None if mb is None else mb >= GOAL_MB_PER_CPU_S)} ≥ {GOAL_MB_PER_CPU_S:.0f} MB per CPU-second, "
        f"warm lexicon, 1 worker: {'–' if mb is None else f'{mb:,.1f}'}{note}",
        f"- {mark(None if x is None else x >= GOAL_X_NAIVE)} ≥ {GOAL_X_NAIVE:,.0f}× the naive loop per core, same "
        f"row: {'–' if x is None else _fmt_x(x)}",
        f"- {mark(None if worst is None else worst[1] <= GOAL_RSS_MB)} peak RSS ≤ {GOAL_RSS_MB:.0f} MB in every "
        f"count row: " + ("–" if worst is None else f"largest {worst[1]:,.0f} MB ({worst[0]})"),
        f"- {mark(None if not speedups else all(s >= GOAL_SPEEDUP for _, s in speedups))} 2 workers ≥ "
        f"{GOAL_SPEEDUP}× 1 worker on one file (wall): "
        + ("–" if not speedups else "; ".join(f"{s:.2f}× at {n:,} lines" for n, s in speedups)),
    ]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through run_cli, not usage + message
        raise UserError(f"{message} (see --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1_000_000, help="lines of the main corpus (default 1,000,000)")
    p.add_argument("--big-lines", type=int, default=10_000_000,
                   help="lines of the big corpus for the 10M rows; 0 skips them (default 10,000,000)")
    p.add_argument("--naive-sample", type=int, default=5000,
                   help="lines the naive loop really runs on, extrapolated to the corpus (default 5,000)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of all rows; cells show the median (default 1)")
    p.add_argument("--workdir", help="folder for corpora, outputs and logs (default: <tmp>/bench-corpora); "
                                     "corpora there are reused")
    p.add_argument("--format", choices=("txt", "parquet"), default="txt",
                   help="corpus file format; parquet has the same lines in a 'text' column (default txt)")
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)  # the preparing child process
    args = p.parse_args(argv)
    if args.lines < 1:
        raise UserError(f"--lines must be at least 1, got {args.lines}")
    if args.big_lines < 0:
        raise UserError(f"--big-lines must be 0 (skip) or more, got {args.big_lines}")
    if not 1 <= args.naive_sample <= args.lines:
        raise UserError(f"--naive-sample must be between 1 and --lines ({args.lines:,}), got {args.naive_sample}")
    if args.repeat < 1:
        raise UserError(f"--repeat must be at least 1, got {args.repeat}")
    args.workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "bench-corpora").expanduser().resolve()
    if args.workdir.exists() and not args.workdir.is_dir():
        raise UserError(f"--workdir {args.workdir} is not a folder")
    return args


def prepare(args: argparse.Namespace) -> Prepared:
    """Generate (or reuse) the corpora, write the class lists and the naive sample, read the corpora once."""
    args.workdir.mkdir(parents=True, exist_ok=True)
    material = Material(args.workdir)
    corpus = prepare_corpus(material, args.lines, args.format)
    big = prepare_corpus(material, args.big_lines, args.format) if args.big_lines else None
    material.write_lists()
    sample = write_sample(corpus, args.naive_sample, args.workdir / f"{corpus.path.stem}_head{args.naive_sample}.txt")
    for c in (corpus, big):
        if c is not None:
            read_through(c.path)
    return Prepared(corpus, big, material.names_file, material.forms_file, sample)


def prepare_elsewhere(argv: list[str]) -> Prepared | int:
    """:func:`prepare` in a process of its own (this script with ``--prepare``), so that this one never holds
    WordNet: a child's ``ru_maxrss`` starts at the size of the parent it was forked from. Returns the exit status
    of that process when it failed (it has already printed why)."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv, "--prepare"], stdout=subprocess.PIPE,
                          text=True, check=False)
    if done.returncode:
        return done.returncode
    return Prepared.from_json(json.loads(done.stdout.splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Prepare the corpora, run every row ``--repeat`` times, print the table, the goals and the machine."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.prepare:
        print(json.dumps(prepare(args).to_json()))
        return 0
    prepared = prepare_elsewhere(argv)
    if isinstance(prepared, int):
        return prepared
    corpus, big = prepared.corpus, prepared.big
    runs_dir = args.workdir / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir()
    where = machine()
    reaping = become_subreaper()
    env = child_env()
    rows = contenders(prepared, args.naive_sample)
    cold, others = rows[2], [r for r in rows if r.key != "cold"]
    primed = None
    for round_no in range(args.repeat):
        run_row(cold, runs_dir, round_no, env)
        primed = prime_paper(prepared.sample_file, runs_dir, env) or primed
        for row in others if round_no % 2 == 0 else reversed(others):
            run_row(row, runs_dir, round_no, env)
        print(f"round {round_no + 1}/{args.repeat} done", file=sys.stderr, flush=True)

    lines, numbers = table(rows)
    names = _read_lines(prepared.names_file)
    hits = rows[1].median().report.get("hits") if rows[1].runs else None
    print(f"corpus: {corpus.lines:,} lines, {corpus.mb:.1f} MB of UTF-8 text ({corpus.fmt}), "
          f"{corpus.text_bytes / corpus.lines:.1f} bytes per line"
          + (f"; big corpus {big.lines:,} lines, {big.mb:.1f} MB" if big else "")
          + (f"; contains_any matches {hits:,} lines" if hits is not None else ""))
    print()
    print("\n".join(lines))
    print()
    disagreement = None
    if rows[0].runs:
        naive = rows[0].median()
        disagreement = paper_agreement(naive, primed, names)
        print(f"\\* naive loop run on the first {naive.report['lines']:,} lines ({naive.report['loop_cpu_s']:.2f} "
              f"CPU s in the loop) and extrapolated linearly to {corpus.lines:,}; start-up and reading not scaled. "
              f"`--method paper` on those lines vs the naive loop: "
              f"{disagreement or f'agree for all {len(names):,} classes'}.")
    own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Each process is timed from its start to its exit; CPU s = user + sys of it and all its descendants"
          f"{'' if reaping else ' (NOT including orphaned descendants: no child subreaper on this system)'}; "
          f"MB = corpus text bytes / 1e6; × naive per core = naive CPU s for the same MB / the row's CPU s; "
          f"peak RSS = the largest of any one process (floor: this benchmark's own {own_mb:.0f} MB, which a "
          f"child's count starts from); "
          f"{'one run per row' if args.repeat == 1 else f'the run with the median CPU s of {args.repeat}'}.")
    if args.repeat > 1:
        cpus = {r.key: [r.figures(x)["cpu"] for x in r.runs] for r in rows if r.runs}
        spread = "; ".join(f"{key} {min(c):,.2f}–{max(c):,.2f}" for key, c in cpus.items())
        print(f"CPU s range over rounds: {spread}.")
    print()
    print("Goals (issue #17):")
    print("\n".join(goal_lines(rows, numbers, corpus.lines)))
    print()
    print(f"machine: {where}")
    print(f"outputs and logs: {runs_dir}")
    failures = [f"{r.key}: {why}" for r in rows for why in r.failures]
    failures += [f"--method paper vs the naive loop: {disagreement}"] if disagreement else []
    for line in failures:
        print(f"failed run: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
