"""corpora_stats.report on a counts folder written by hand in the design's format, with known accuracies."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from html import escape as html_escape
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from corpora_stats.accuracy import read_accuracy
from corpora_stats.counts_folder import load_counts
from corpora_stats.report import _pick_pair, write_report
from corpora_stats.statistics import binned_accuracy, correlate, under_exposed
from vlm_classdata.errors import UserError
from vlm_classdata.lexicon import Lexicon
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
HAS_LEXICON = importlib.util.find_spec("vlm_classdata.lexicon") is not None
N = 50
VOCAB = ClassVocabulary.bundled("imagenet1k").subset(ClassVocabulary.bundled("imagenet1k").ids[::20][:N])
PRETRAIN = [i * i for i in range(N)]  # distinct, includes 0, spans 0..2401
INSTRUCT = [(i * i) // 9 + (i % 4) for i in range(N)]
FLAGGED = {3, 17, 30}  # classes with a "shared" form: doc_freq_all > doc_freq


def write_counts(root: Path, corpora: dict[str, list[int]] | None = None, policy: str = "separate") -> Path:
    """A counts folder exactly as docs/CORPORA_STATS_DESIGN.md describes it."""
    corpora = corpora or {"instruct": INSTRUCT, "pretrain": PRETRAIN}
    root.mkdir(parents=True, exist_ok=True)
    meta = {"method": "wordnet", "forms_policy": policy, "flags_excluded": ["shared", "ambiguous", "short"],
            "lexicon": {"method": "wordnet", "forms": 2 * N, "by_kind": {"name": N, "plural": N},
                        "by_flag": {"shared": len(FLAGGED)}},
            "corpora": {}, "tool": {"python": "3.x", "vlm-classdata": "0.1.0"}}
    for name, freq in corpora.items():
        extra = [1 if i in FLAGGED else 0 for i in range(N)]
        table = pl.DataFrame({
            "class_id": VOCAB.ids, "class_name": VOCAB.names,
            "doc_freq": freq, "mentions": [2 * f for f in freq],
            "doc_freq_all": [f + e for f, e in zip(freq, extra, strict=True)],
            "mentions_all": [2 * f + e for f, e in zip(freq, extra, strict=True)],
            "doc_freq_clean": freq, "mentions_clean": [2 * f for f in freq],
            "flags": ["shared" if i in FLAGGED else "" for i in range(N)],
        })
        table.write_parquet(root / f"counts_{name}.parquet")
        table.write_csv(root / f"counts_{name}.csv")
        forms = pl.DataFrame({
            "class_id": VOCAB.ids * 2,
            "form": [n.lower() for n in VOCAB.names] + [n.lower() + "s" for n in VOCAB.names],
            "kind": ["name"] * N + ["plural"] * N,
            "flags": ["shared" if i in FLAGGED else "" for i in range(N)] + [""] * N,
            "doc_freq": list(freq) + [0] * N, "mentions": [2 * f for f in freq] + [0] * N,
        })
        forms.write_parquet(root / f"forms_{name}.parquet")
        (root / f"snippets_{name}.jsonl").write_text(json.dumps(
            {"class_id": VOCAB.ids[-1], "form": VOCAB.names[-1].lower(), "doc_index": 0,
             "snippet": f"a photo of a «{VOCAB.names[-1]}»"}) + "\n")
        meta["corpora"][name] = {"path": f"/data/{name}.json", "format": "llava_pretrain", "files": 1,
                                 "documents": 10_000 + len(name), "bytes": 1_234_567,
                                 "skipped": {"empty_text": 3, "bad_json": 1}}
    (root / "count_meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return root


def write_predictions(path: Path) -> Path:
    """Class i (list order) gets 50 predictions, exactly i of them correct, plus bad lines to skip."""
    lines = []
    for i, entry in enumerate(VOCAB):
        label = (entry.name, entry.class_id, i)[i % 3]  # name, id and index labels
        right = [entry.name, entry.name.upper() + ".", "  " + entry.name.replace(" ", "-") + "!"]
        other = VOCAB.by_index((i + 1) % N).name
        for j in range(N):
            key = ("pred", "answer", "prediction", "text")[j % 4]
            lab = ("label", "gt", "target")[j % 3]
            pred = right[j % 3] if j < i else (other if j % 2 else "I do not know")
            lines.append(json.dumps({lab: label, key: pred}))
    lines += ["", "not json", "[1, 2]", json.dumps({"label": "no such class", "pred": "x"}),
              json.dumps({"label": VOCAB.names[0]}), json.dumps({"pred": "tench"})]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_counts(tmp_path_factory.mktemp("counts"))


@pytest.fixture(scope="module")
def predictions(tmp_path_factory) -> Path:
    return write_predictions(tmp_path_factory.mktemp("acc") / "predictions.jsonl")


@pytest.fixture(scope="module")
def report(folder, predictions, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report(folder, out, accuracy=str(predictions), seed=0, top_k=10)


def test_load_counts_reads_tables_in_meta_order_and_falls_back_to_csv(folder, tmp_path):
    tables, meta = load_counts(folder)
    assert list(tables) == ["instruct", "pretrain"] and meta["forms_policy"] == "separate"
    t = tables["pretrain"]
    assert t["class_id"].to_list() == VOCAB.ids and t["doc_freq"].to_list() == PRETRAIN
    assert t["doc_freq_all"][3] == PRETRAIN[3] + 1 and t["flags"][3] == "shared" and t["flags"][0] == ""
    csv_only = write_counts(tmp_path / "csv")
    for p in csv_only.glob("counts_*.parquet"):
        p.unlink()
    tables2, _ = load_counts(csv_only)
    assert tables2["pretrain"].equals(t)  # same values and dtypes from the CSV (empty flags → "")


def test_load_counts_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_counts(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="count_meta.json"):
        load_counts(tmp_path / "empty")
    bad = write_counts(tmp_path / "bad", {"a": PRETRAIN, "b": INSTRUCT})
    pl.read_parquet(bad / "counts_b.parquet").reverse().write_parquet(bad / "counts_b.parquet")
    with pytest.raises(UserError, match="classes differ"):
        load_counts(bad)
    (bad / "counts_b.parquet").unlink()
    (bad / "counts_b.csv").unlink()
    with pytest.raises(UserError, match="no counts_b"):
        load_counts(bad)


def test_load_accuracy_from_predictions(predictions):
    frame, info = read_accuracy(predictions, VOCAB)
    assert frame.columns == ["class_id", "n", "correct", "accuracy"]
    assert frame["class_id"].to_list() == VOCAB.ids
    assert frame["n"].to_list() == [N] * N
    # exact names, upper case + ".", hyphens + "!" all resolve; other class names and free text do not
    assert frame["correct"].to_list() == list(range(N))
    assert np.allclose(frame["accuracy"].to_numpy(), np.arange(N) / N)
    assert info["skipped"] == {"bad_json": 1, "no_label": 1, "no_prediction": 1, "not_an_object": 1,
                               "unknown_class": 1}
    assert info["rows"] == N * N + 5  # the blank line is not a row


def test_load_accuracy_from_csv(tmp_path):
    path = tmp_path / "acc.csv"
    path.write_text("class,accuracy,n\n"
                    f"{VOCAB.names[0]},0.5,10\n{VOCAB.ids[2]},1.0,4\n\"{VOCAB.names[1].upper()}\",0.25,\n"
                    "unknown thing,0.9,3\n")
    frame = read_accuracy(path, VOCAB)[0]
    assert frame["class_id"].to_list() == VOCAB.ids[:3]  # vocabulary order, unknown class skipped
    assert frame["accuracy"].to_list() == [0.5, 0.25, 1.0]
    assert frame["n"].to_list() == [10, None, 4] and frame["correct"].to_list() == [5, None, 4]
    no_n = tmp_path / "acc2.csv"
    no_n.write_text(f"class_id,accuracy\n{VOCAB.ids[5]},0.75\n")
    assert read_accuracy(no_n, VOCAB)[0].row(0) == (VOCAB.ids[5], None, None, 0.75)
    pct = tmp_path / "pct.csv"
    pct.write_text(f"class,accuracy\n{VOCAB.ids[0]},87.5\n")
    with pytest.raises(UserError, match="fraction"):
        read_accuracy(pct, VOCAB)[0]
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("klass,score\na,1\n")
    with pytest.raises(UserError, match="'class' and 'accuracy'"):
        read_accuracy(nocol, VOCAB)[0]
    dup = tmp_path / "dup.csv"
    dup.write_text(f"class,accuracy\n{VOCAB.ids[0]},0.1\n{VOCAB.names[0]},0.2\n")
    with pytest.raises(UserError, match="twice"):
        read_accuracy(dup, VOCAB)[0]
    with pytest.raises(UserError, match="not found"):
        read_accuracy(tmp_path / "none.csv", VOCAB)[0]


def test_correlate_monotone_accuracy_gives_spearman_one():
    freq, acc = np.array(PRETRAIN, float), np.arange(N) / N
    c = correlate(freq, acc, seed=0, n_boot=2000)
    assert c["n_classes"] == N and c["n_boot"] == 2000
    assert c["spearman"]["r"] == pytest.approx(1.0)
    lo, hi = c["spearman"]["ci95"]
    assert 0.9 <= lo <= hi <= 1.0 + 1e-12
    p_lo, p_hi = c["pearson_log1p"]["ci95"]
    assert 0.8 < p_lo <= c["pearson_log1p"]["r"] <= p_hi <= 1.0
    assert c["spearman"]["p"] < 1e-10
    # seeded: same seed → identical intervals; another seed → (slightly) different ones
    assert correlate(freq, acc, seed=0) == c
    assert correlate(freq, acc + np.random.default_rng(5).normal(0, 0.1, N), seed=1)["spearman"]["ci95"] != \
        correlate(freq, acc + np.random.default_rng(5).normal(0, 0.1, N), seed=2)["spearman"]["ci95"]


def test_correlate_random_accuracy_ci_includes_zero_and_degenerate_input():
    acc = np.random.default_rng(123).uniform(0, 1, N)
    c = correlate(np.array(PRETRAIN, float), acc, seed=0)
    for key in ("spearman", "pearson_log1p"):
        lo, hi = c[key]["ci95"]
        assert lo < 0 < hi and abs(c[key]["r"]) < 0.3
    flat = correlate(np.zeros(10), np.linspace(0, 1, 10))
    assert np.isnan(flat["spearman"]["r"]) and np.isnan(flat["pearson_log1p"]["ci95"][0])
    nan_dropped = correlate(np.array([1, 2, 3, np.nan, 5.0]), np.array([0.1, 0.2, 0.3, 0.4, np.nan]))
    assert nan_dropped["n_classes"] == 3
    with pytest.raises(ValueError):
        correlate(np.ones(3), np.ones(4))


def test_binned_accuracy_log_bins():
    freq, acc = np.array(PRETRAIN, float), np.arange(N) / N
    bins = binned_accuracy(freq, acc, "log")
    assert sum(b["n_classes"] for b in bins) == N
    assert [(b["lo"], b["hi"]) for b in bins] == [(0, 1), (1, 10), (10, 100), (100, 1000), (1000, 10000)]
    assert [b["n_classes"] for b in bins] == [1, 3, 6, 22, 18]  # i*i: 0 | 1,4,9 | 16..81 | 100..961 | 1024..2401
    assert bins[0]["mean_accuracy"] == 0.0
    assert bins[1]["mean_accuracy"] == pytest.approx((1 + 2 + 3) / 3 / N)
    means = [b["mean_accuracy"] for b in bins]
    assert means == sorted(means)  # monotone accuracy → monotone bin means


def test_binned_accuracy_int_bins_and_empty_bins_left_out():
    freq = np.array([0, 0, 5, 5, 5, 1000], float)
    acc = np.array([0.0, 0.2, 0.5, 0.5, 0.8, 1.0])
    bins = binned_accuracy(freq, acc, 4)
    assert sum(b["n_classes"] for b in bins) == 6
    assert bins[0] == {"lo": 0, "hi": 1, "n_classes": 2, "mean_accuracy": pytest.approx(0.1),
                       "std_accuracy": pytest.approx(0.1), "sem_accuracy": pytest.approx(0.1)}
    assert all(b["lo"] < b["hi"] for b in bins) and bins[-1]["hi"] > 1000
    assert all(b["n_classes"] > 0 for b in bins)
    with pytest.raises(ValueError):
        binned_accuracy(freq, acc, 0)


def test_under_exposed_k_and_threshold(folder):
    t = load_counts(folder)[0]["instruct"]
    low = under_exposed(t, k=5)
    assert low.height == 5 and low["doc_freq"].to_list() == sorted(low["doc_freq"].to_list())
    assert low["doc_freq"].max() <= t["doc_freq"].sort()[4]
    thr = under_exposed(t, threshold=2)
    assert thr.height == sum(1 for f in INSTRUCT if f <= 2) and thr["doc_freq"].max() <= 2
    assert under_exposed(t, k=1)["class_id"][0] == VOCAB.ids[0]  # tie at 0? first in list order


def test_pick_pair_defaults_and_errors():
    assert _pick_pair(["instruct", "pretrain"], None, None) == ("pretrain", "instruct")  # by name
    assert _pick_pair(["a", "b", "c"], None, None) == ("a", "b")  # else count_meta order
    assert _pick_pair(["a", "b", "c"], None, "a") == ("b", "a")
    assert _pick_pair(["a"], None, None) is None
    with pytest.raises(UserError, match="not a corpus"):
        _pick_pair(["a", "b"], "zzz", None)
    with pytest.raises(UserError, match="same corpus"):
        _pick_pair(["a", "b"], "a", "a")


def test_report_files_plots_and_stated_method(report):
    out, summary = report
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert summary["classes"] == N and summary["accuracy_classes"] == N
    assert summary["spearman[pretrain]"] == pytest.approx(1.0)
    assert summary["pretrain"] == "pretrain" and summary["instruct"] == "instruct"
    # plots: linked from the Markdown, present, valid PNGs; embedded in the HTML as data URIs
    links = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", md)
    assert set(links) == {"plots/freq_extremes_instruct.png", "plots/freq_extremes_pretrain.png",
                          "plots/freq_hist.png", "plots/pretrain_vs_instruct.png", "plots/accuracy_binned.png",
                          "plots/accuracy_scatter.png"}
    for link in links:
        with Image.open(out / link) as im:
            im.verify()
        with Image.open(out / link) as im:
            assert im.format == "PNG" and im.size[0] >= 400 and im.size[1] >= 250
    assert html.count('<img alt="') == len(links) == html.count('src="data:image/png;base64,')
    assert not re.search(r"<script|<link|src=\"(?!data:)", html)  # nothing external, no JS
    # what two runs need to be compared
    for text in ("Counting method: wordnet", "Forms policy: separate", "Flags excluded from the main counts: "
                 "shared, ambiguous, short", "by_kind.plural", "10,008", "1,234,567", "bad_json 1, empty_text 3",
                 "Spearman ρ [95% CI]", "2000 resamples", "default_rng(0)", "all corpora (sum)",
                 "pretrain (all forms)", "Under-exposed classes", "bad_json 1, no_label 1, no_prediction 1"):
        assert text in md and html_escape(text, quote=False) in html, text
    row = next(ln for ln in md.splitlines() if ln.startswith("| pretrain | 50 |"))
    assert "1.000 [1.000, 1.000]" in row
    classes = pl.read_csv(out / "report_classes.csv")
    assert classes["accuracy"].to_list() == pytest.approx(list(np.arange(N) / N))
    assert summary["under_exposed"][0] == VOCAB.ids[0]  # 0 documents in both corpora


def test_report_rerun_is_byte_identical(report, folder, predictions, tmp_path):
    out, _ = report
    again = tmp_path / "again"
    write_report(folder, again, accuracy=str(predictions), seed=0, top_k=10)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    for name in names:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other_seed = tmp_path / "seed1"
    write_report(folder, other_seed, accuracy=str(predictions), seed=1, top_k=10)
    assert (other_seed / "plots/freq_hist.png").read_bytes() == (out / "plots/freq_hist.png").read_bytes()
    assert (other_seed / "report.md").read_text() != (out / "report.md").read_text()  # seed stated


def test_report_with_csv_accuracy_random_and_one_corpus(tmp_path):
    folder = write_counts(tmp_path / "one", {"captions": PRETRAIN}, policy="all")
    acc = np.random.default_rng(123).uniform(0, 1, N)
    path = tmp_path / "acc.csv"
    pl.DataFrame({"class": VOCAB.names, "accuracy": acc}).write_csv(path)
    summary = write_report(folder, tmp_path / "rep", accuracy=str(path), top_k=5)
    lo, hi = (float(x) for x in summary["spearman_ci95[captions]"].strip("[]").split(","))
    assert lo < 0 < hi
    assert "pretrain" not in summary and summary["plots"] == 4  # no pair scatter with one corpus
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Forms policy: all" in md and "(all forms)" not in md and "per-class accuracy given" in md
    without = write_report(folder, tmp_path / "rep", top_k=5)  # same folder, no accuracy this time
    assert without["plots"] == 2 and "accuracy_classes" not in without
    assert sorted(p.name for p in (tmp_path / "rep" / "plots").iterdir()) == [
        "freq_extremes_captions.png", "freq_hist.png"]  # the earlier run's accuracy plots are gone
    with pytest.raises(UserError, match="not a corpus"):
        write_report(folder, tmp_path / "x", pretrain="nope")


def test_plurals_are_correct_as_in_label_check(tmp_path):
    """The one judge's lexicon (the one label_check builds) has the plurals: a plural reply names the class."""
    plurals = {f.class_id: f.text for f in reversed(Lexicon.build(VOCAB).forms) if f.kind == "plural"}
    assert len(plurals) > N // 2
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"label": cid, "pred": text}) + "\n" for cid, text in plurals.items()))
    frame = read_accuracy(path, VOCAB)[0]
    assert frame.height == len(plurals) and frame["correct"].sum() == len(plurals)


def test_prediction_is_the_label_when_the_reply_names_it(tmp_path):
    """The one label judge (verification's label_check verdict): the reply is or names the class (its name,
    articles aside, a synonym, a plural, inside a sentence), or it is its id or index; another class's id or name,
    and digits as text are not."""
    tench = ClassVocabulary.bundled("imagenet1k")["n01440764"]
    vocab = ClassVocabulary.bundled("imagenet1k").subset([tench.class_id, *VOCAB.ids[1:]])
    replies = {"a tench": True, "The Tench!": True, tench.synonyms[0]: True, tench.class_id.upper(): True, 0: True,
               "It is a tench.": True, VOCAB.ids[1]: False, VOCAB.names[1]: False, "0": False, "tenches": True}
    path = tmp_path / "p.jsonl"
    for reply, correct in replies.items():
        path.write_text(json.dumps({"label": tench.class_id, "pred": reply}) + "\n")
        assert read_accuracy(path, vocab)[0]["correct"].to_list() == [int(correct)], reply


@pytest.mark.skipif(not HAS_LEXICON, reason="corpora_stats.__main__ imports count, which needs vlm_classdata.lexicon")
def test_cli_report_matches_library_bytes(report, folder, predictions, tmp_path):
    out, _ = report
    cli_out = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "corpora_stats", "report", "--counts", str(folder), "--out",
                           str(cli_out), "--accuracy", str(predictions), "--top-k", "10"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"spearman\[pretrain\]: (1\.0|0\.9999)", proc.stdout), proc.stdout
    for name in ("report.md", "report.html", "plots/accuracy_binned.png"):  # same bytes in a fresh process
        assert (cli_out / name).read_bytes() == (out / name).read_bytes(), name
