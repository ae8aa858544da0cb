"""`python -m corpora_stats count/report/demo` end to end on a constructed corpus with known counts, in
several formats at once; the Ray executor gives the same tables as the local run."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from corpora_stats.count import CountConfig, count_corpora
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
WNIDS = ["n01440764", "n01491361", "n02129604", "n01514859", "n02012849", "n03126707", "n02457408",
         "n01855672", "n03793489"]  # tench, tiger shark, tiger, hen, crane bird, crane, three-toed sloth, goose, mouse

# (text, classes that must be counted in the main (clean) doc_freq)
DOCS = [
    ("A tench in the pond.", {"n01440764"}),
    ("Tinca tinca, also called TENCH", {"n01440764"}),
    ("tenches and a tiger-shark!", {"n01440764", "n01491361"}),
    ("a tiger shark near a tiger", {"n01491361", "n02129604"}),
    ("then again, nothing here", set()),
    ("the hen and the geese", {"n01855672"}),  # "hen": WordNet's commoner sense is another bird → ambiguous
    ("rain in spain", set()),
    ("a crane lifts steel", set()),  # shared form: only in *_all
    ("my mouse is broken", set()),  # ambiguous form: only in *_all
    ("three-toed sloth hanging", {"n02457408"}),
]


def classes_file(tmp: Path) -> Path:
    names = ClassVocabulary.bundled("imagenet1k")
    p = tmp / "classes.txt"
    p.write_text("".join(f"{w} {names[w].name}\n" for w in WNIDS))
    return p


@pytest.fixture()
def corpora(tmp_path):
    texts = [t for t, _ in DOCS]
    txt = tmp_path / "c.txt"
    txt.write_text("\n".join(texts) + "\n")
    jsonl = tmp_path / "c.jsonl.gz"
    with gzip.open(jsonl, "wt") as f:
        for t in texts:
            f.write(json.dumps({"TEXT": t}) + "\n")
        f.write("{broken json\n")
    llava = tmp_path / "pretrain.json"
    llava.write_text(json.dumps([{"id": str(i), "image": f"{i}.jpg", "conversations": [
        {"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": t}]} for i, t in enumerate(texts)]))
    parquet = tmp_path / "c.parquet"
    pl.DataFrame({"caption": texts}).write_parquet(parquet)
    return {"txt": str(txt), "jsonl": str(jsonl), "pretrain": str(llava), "parquet": str(parquet)}


def expected_doc_freq() -> dict[str, int]:
    out = dict.fromkeys(WNIDS, 0)
    for _, classes in DOCS:
        for c in classes:
            out[c] += 1
    return out


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "corpora_stats", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_count_every_format_gives_the_known_counts(corpora, tmp_path):
    out = tmp_path / "freq"
    args = ["count", "--classes", str(classes_file(tmp_path)), "--out", str(out), "--quiet"]
    for name, path in corpora.items():
        args += ["--corpus", f"{name}={path}"]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    meta = json.loads((out / "count_meta.json").read_text())
    want = expected_doc_freq()
    for name in corpora:
        table = pl.read_parquet(out / f"counts_{name}.parquet")
        got = dict(zip(table["class_id"], table["doc_freq"], strict=True))
        assert got == want, name
        all_ = dict(zip(table["class_id"], table["doc_freq_all"], strict=True))
        assert all_["n02012849"] == all_["n03126707"] == 1  # "crane" is shared
        assert all_["n03793489"] == 1 and got["n03793489"] == 0  # "mouse" is ambiguous
        assert all_["n01514859"] == 1 and got["n01514859"] == 0  # so is "hen"
        assert meta["corpora"][name]["documents"] == len(DOCS)
        forms = pl.read_parquet(out / f"forms_{name}.parquet")
        tench = dict(zip(forms.filter(pl.col("class_id") == "n01440764")["form"],
                         forms.filter(pl.col("class_id") == "n01440764")["doc_freq"], strict=True))
        assert tench["tench"] == 2 and tench["tinca tinca"] == 1 and tench["tenches"] == 1
        assert (out / f"counts_{name}.csv").is_file()
        snippets = [json.loads(x) for x in (out / f"snippets_{name}.jsonl").read_text().splitlines()]
        assert any("«tiger-shark»" in s["snippet"] for s in snippets)
    assert meta["corpora"]["jsonl"]["skipped"] == {"malformed_json": 1}


def test_paper_method_counts_display_names_only_and_overlaps(corpora, tmp_path):
    vocab = ClassVocabulary.load(classes_file(tmp_path))
    count_corpora({"txt": corpora["txt"]}, vocab, tmp_path / "p", CountConfig(method="paper"), show_progress=False)
    got = dict(pl.read_parquet(tmp_path / "p" / "counts_txt.parquet").select("class_id", "doc_freq").iter_rows())
    assert got["n01440764"] == 2  # "tench" twice; no synonyms ("Tinca tinca") or plurals ("tenches")
    assert got["n02129604"] == 2  # "tiger" inside "tiger-shark" and "tiger shark" counts in the per-class loop
    assert got["n01855672"] == 0  # "geese" is a plural
    assert got["n01514859"] == 1


def test_ray_run_matches_local_run(corpora, tmp_path):
    pytest.importorskip("ray")
    import ray

    from vlm_classdata.executors import LocalExecutor, RayExecutor

    vocab = ClassVocabulary.load(classes_file(tmp_path))
    folder = tmp_path / "shards"
    folder.mkdir()
    lines = [t for t, _ in DOCS] * 5
    for i in range(4):
        (folder / f"part-{i}.txt").write_text("\n".join(lines[i::4]) + "\n")
    one = folder / "part-0.txt"
    count_corpora({"s": str(folder)}, vocab, tmp_path / "local", executor=LocalExecutor(1), show_progress=False)
    count_corpora({"s": str(one)}, vocab, tmp_path / "local1", executor=LocalExecutor(1), show_progress=False)
    try:
        count_corpora({"s": str(folder)}, vocab, tmp_path / "ray", executor=RayExecutor(2), show_progress=False)
        # one file split into line-aligned byte ranges, counted as Ray tasks
        count_corpora({"s": str(one)}, vocab, tmp_path / "ray1", executor=RayExecutor(2), show_progress=False,
                      split_bytes=64)
    finally:
        ray.shutdown()

    def digest(d: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())
                if p.name != "count_meta.json"}

    assert digest(tmp_path / "ray") == digest(tmp_path / "local")
    assert digest(tmp_path / "ray1") == digest(tmp_path / "local1")
    assert len(json.loads((tmp_path / "ray1" / "count_meta.json").read_text())["corpora"]["s"]["file_list"]) == 1
    table = pl.read_parquet(tmp_path / "local" / "counts_s.parquet")
    assert dict(zip(table["class_id"], table["doc_freq"], strict=True))["n01440764"] == 15


def test_report_renders_with_plots_and_correlation(corpora, tmp_path):
    vocab = ClassVocabulary.load(classes_file(tmp_path))
    count_corpora({"pretrain": corpora["pretrain"], "instruct": corpora["txt"]}, vocab, tmp_path / "f",
                  show_progress=False)
    preds = tmp_path / "preds.jsonl"
    names = {e.class_id: e.name for e in vocab}
    with open(preds, "w") as f:
        for i, w in enumerate(WNIDS):
            for j in range(4):
                f.write(json.dumps({"label": names[w], "pred": names[w] if j < i % 4 + 1 else "goldfish"}) + "\n")
    res = cli("report", "--counts", str(tmp_path / "f"), "--accuracy", str(preds), "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "r" / "report.md").read_text()
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Spearman" in md and "data:image/png;base64," in html
    for png in (tmp_path / "r" / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,needle", [
    (["count", "--corpus", "x=/nonexistent.txt", "--out", "OUT"], "/nonexistent.txt"),
    (["count", "--corpus", "nonsense", "--out", "OUT"], "NAME=VALUE"),
    (["report", "--counts", "/nonexistent-folder"], "/nonexistent-folder"),
])
def test_user_errors_are_one_line(args, needle, tmp_path):
    res = cli(*[a.replace("OUT", str(tmp_path / "o")) for a in args])
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
