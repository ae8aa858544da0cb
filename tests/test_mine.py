"""`corpora_stats mine`: a LAION-style parquet corpus with known rows → the real `count` → mining by each rule,
with exact per-class, skip, duplicate and multi-class counts, determinism and the seeded per-class cap."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpora_stats.counts_folder import load_counts_folder
from corpora_stats.mine import URL_COLUMNS, mine
from corpora_stats.selection import check_forms, parse_rule, select
from vlm_classdata.errors import UserError
from vlm_classdata.vocabulary import ClassVocabulary

REPO = Path(__file__).resolve().parents[1]
TENCH, TIGER_SHARK, TIGER, HEN = "n01440764", "n01491361", "n02129604", "n01514859"
CRANE_BIRD, CONSTRUCTION_CRANE, SLOTH, GOOSE = "n02012849", "n03126707", "n02457408", "n01855672"
MOUSE, GOLDFISH, AIRLINER, SCHOONER, CHIHUAHUA = "n03793489", "n01443537", "n02690373", "n04147183", "n02085620"
WNIDS = [TENCH, TIGER_SHARK, TIGER, HEN, CRANE_BIRD, CONSTRUCTION_CRANE, SLOTH, GOOSE, MOUSE, GOLDFISH, AIRLINER,
         SCHOONER, CHIHUAHUA]

# (group, number of rows, caption templates, classes by unflagged forms, classes by all forms)
GROUPS = [
    ("tench", 40, ["a tench in the pond {i}", "Tinca tinca caught, photo {i}", "two tenches on a plate {i}"],
     {TENCH}, {TENCH}),
    ("tshark", 12, ["a tiger shark swimming {i}", "TIGER-SHARK close up {i}"], {TIGER_SHARK}, {TIGER_SHARK}),
    ("tiger", 60, ["a tiger in the zoo {i}", "tigers resting {i}"], {TIGER}, {TIGER}),
    ("goose", 20, ["geese flying south {i}", "a goose by the lake {i}"], {GOOSE}, {GOOSE}),
    ("goldfish", 30, ["a goldfish bowl {i}"], {GOLDFISH}, {GOLDFISH}),
    ("airliner", 80, ["an airliner taking off {i}"], {AIRLINER}, {AIRLINER}),
    ("schooner", 2, ["a schooner at sea {i}"], {SCHOONER}, {SCHOONER}),
    ("chihuahua", 25, ["a chihuahua puppy {i}"], {CHIHUAHUA}, {CHIHUAHUA}),
    ("cranebird", 6, ["a crane bird standing {i}"], {CRANE_BIRD}, {CRANE_BIRD}),
    ("ccrane", 3, ["a construction crane on site {i}"], {CONSTRUCTION_CRANE}, {CONSTRUCTION_CRANE}),
    ("sloth", 5, ["a three-toed sloth hanging {i}"], {SLOTH}, {SLOTH}),
    ("cmouse", 4, ["a computer mouse on a desk {i}"], {MOUSE}, {MOUSE}),
    # flagged forms: "mouse" (ambiguous), "hen" (ambiguous: the class has no unflagged form), "crane" (shared)
    ("mouse", 10, ["a mouse next to the keyboard {i}"], set(), {MOUSE}),
    ("hen", 8, ["a hen in the yard {i}"], set(), {HEN}),
    ("crane", 5, ["a crane near the river {i}"], set(), {CRANE_BIRD, CONSTRUCTION_CRANE}),
    # several classes in one caption
    ("tench_goldfish", 3, ["a tench and a goldfish {i}"], {TENCH, GOLDFISH}, {TENCH, GOLDFISH}),
    ("schooner_airliner", 2, ["a schooner under an airliner {i}"], {SCHOONER, AIRLINER}, {SCHOONER, AIRLINER}),
    ("tiger_goose", 2, ["a tiger chasing a goose {i}"], {TIGER, GOOSE}, {TIGER, GOOSE}),
    ("none", 20, ["a quiet landscape at dawn {i}"], set(), set()),
]
# rows that must be skipped (url, caption): the captions name a tiger, so they would match
BAD_ROWS = [(None, "a tiger {i}"), ("", "a tiger {i}"), ("   ", "a tiger {i}"), (None, None)]  # missing_url
BAD_ROWS += [(None, "a tiger {i}")]
BAD_URLS = ["ftp://127.0.0.1/tiger.jpg", "file:///tmp/tiger.jpg", "not a url", "http://", "http://exa mple.com/t.jpg"]
EMPTY = [None, "", "   "]


def url(group: str, i: int) -> str:
    scheme = "https" if i % 3 == 0 else "http"
    return f"{scheme}://127.0.0.1:8000/{group}/{i:03d}.jpg"


def corpus_rows() -> tuple[list[dict], list[dict]]:
    """(shuffled rows, rows appended at the end of the last file: duplicate URLs), each with its truth."""
    rows = []
    for group, n, templates, clean, every in GROUPS:
        for i in range(n):
            rows.append({"URL": url(group, i), "TEXT": templates[i % len(templates)].format(i=i),
                         "clean": clean, "all": every, "skip": None})
    for i, (u, t) in enumerate(BAD_ROWS):
        rows.append({"URL": u, "TEXT": t and t.format(i=i), "clean": {TIGER} if t else set(),
                     "all": {TIGER} if t else set(), "skip": "missing_url"})
    for i, u in enumerate(BAD_URLS):
        rows.append({"URL": u, "TEXT": f"a tiger {i}", "clean": {TIGER}, "all": {TIGER}, "skip": "bad_url"})
    for i, t in enumerate(EMPTY):
        rows.append({"URL": url("empty", i), "TEXT": t, "clean": set(), "all": set(), "skip": "empty_caption"})
    random.Random(0).shuffle(rows)
    dups = [{"URL": url("tench", i), "TEXT": f"another tench photo {i}", "clean": {TENCH}, "all": {TENCH},
             "skip": None} for i in range(3)]
    # the URL of a schooner row, captioned as a sloth: a URL wanted by two classes stays with its first row
    dups.append({"URL": url("schooner", 0), "TEXT": "a three-toed sloth on deck", "clean": {SLOTH}, "all": {SLOTH},
                 "skip": None})
    return rows, dups


def write_corpus(folder: Path) -> list[dict]:
    rows, dups = corpus_rows()
    folder.mkdir(parents=True)
    parts = [rows[0:150], rows[150:300], rows[300:] + dups]
    schema = pa.schema([("URL", pa.string()), ("TEXT", pa.string()), ("similarity", pa.float64())])
    for k, part in enumerate(parts):
        table = pa.table({"URL": [r["URL"] for r in part], "TEXT": [r["TEXT"] for r in part],
                          "similarity": [0.3] * len(part)}, schema=schema)
        pq.write_table(table, folder / f"part-{k}.parquet", row_group_size=64)
    return rows + dups


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "corpora_stats", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus folder, its truth rows, and a counts folder made by the real `count` CLI (two corpora)."""
    tmp = tmp_path_factory.mktemp("mine")
    names = ClassVocabulary.bundled("imagenet1k")
    classes = tmp / "classes.txt"
    classes.write_text("".join(f"{w} {names[w].name}\n" for w in WNIDS))
    corpus = tmp / "laion"
    truth = write_corpus(corpus)
    other = tmp / "other.txt"
    other.write_text("a tench\na goldfish\n")
    counts = tmp / "counts"
    res = cli("count", "--classes", str(classes), "--corpus", f"laion={corpus}", "--corpus", f"other={other}",
              "--out", str(counts), "--quiet")
    assert res.returncode == 0, res.stderr
    return {"tmp": tmp, "corpus": corpus, "truth": truth, "counts": counts, "classes": classes}


def expected(truth: list[dict], selected: set[str], forms: str = "clean") -> dict:
    """Per-class candidate rows, multi-class rows and skips, straight from the truth table."""
    matched = dict.fromkeys(selected, 0)
    multi = 0
    skipped = {"bad_url": 0, "empty_caption": 0, "missing_url": 0}
    for r in truth:
        if r["skip"]:
            skipped[r["skip"]] += 1
            continue
        hit = r[forms] & selected
        if len(hit) == 1:
            matched[next(iter(hit))] += 1
        elif len(hit) > 1:
            multi += 1
    return {"matched": matched, "multi": multi, "skipped": skipped}


def doc_freq(truth: list[dict]) -> dict[str, int]:
    out = dict.fromkeys(WNIDS, 0)
    for r in truth:
        if r["TEXT"] and r["TEXT"].strip():
            for c in r["clean"]:
                out[c] += 1
    return out


def by_class(report: dict) -> dict[str, tuple[int, int]]:
    return {c["class_id"]: (c["matched_rows"], c["mined"]) for c in report["classes"]}


def test_count_agrees_with_the_truth_table(world):
    table = pl.read_parquet(world["counts"] / "counts_laion.parquet")
    assert dict(zip(table["class_id"], table["doc_freq"], strict=True)) == doc_freq(world["truth"])


def select_classes(counts_dir, rule: str, corpus: str, column: str = "doc_freq", forms: str = "separate") -> list[dict]:
    """The classes ``mine`` would mine (``excluded`` None) or leave out, as mine_urls selects them."""
    check_forms(forms)
    folder = load_counts_folder(counts_dir, corpus)
    return select(folder, parse_rule(rule, folder.vocab), column, forms)


def test_select_rules(world, tmp_path):
    counts = world["counts"]

    def ids(rule: str, **kw) -> tuple[list[str], list[str]]:
        got = select_classes(counts, rule, corpus="laion", **kw)
        return [c["class_id"] for c in got if c["excluded"] is None], [c["class_id"] for c in got if c["excluded"]]

    # doc_freq: hen 0 (no unflagged form), construction crane 3, computer mouse 4, schooner 4 (tie: class order)
    assert ids("least:1") == ([CONSTRUCTION_CRANE], [HEN])
    assert ids("least:2") == ([CONSTRUCTION_CRANE, MOUSE], [HEN])
    assert ids("least:3") == ([CONSTRUCTION_CRANE, MOUSE, SCHOONER], [HEN])
    assert ids("least:3", forms="all") == ([HEN, CONSTRUCTION_CRANE, MOUSE], [])
    assert ids("below:5") == ([CONSTRUCTION_CRANE, MOUSE, SCHOONER], [HEN])
    assert ids("below:3") == ([], [HEN])
    assert ids("below:13", column="doc_freq_all") == ([TIGER_SHARK, CRANE_BIRD, CONSTRUCTION_CRANE, SLOTH,
                                                       SCHOONER], [HEN])
    assert ids(f"classes:{SCHOONER},{TENCH},tiger") == ([TENCH, TIGER, SCHOONER], [])
    listed = tmp_path / "ids.txt"
    listed.write_text(f"# wanted\n{HEN}\n{GOOSE}, {TENCH}  # two on a line\n")
    assert ids(f"classes:@{listed}") == ([TENCH, GOOSE], [HEN])
    first = select_classes(counts, "least:1", corpus="laion")
    assert [(c["class_name"], c["doc_freq"], c["excluded"]) for c in first] == [
        ("hen", 0, "no_usable_form"), ("construction crane", 3, None)]


def test_mine_classes_rule_exact_counts_and_contract(world, tmp_path):
    selected = [TENCH, SLOTH, GOLDFISH, SCHOONER]
    out = tmp_path / "mined"
    report = mine(world["counts"], world["corpus"], out, "classes:" + ",".join(selected), corpus="laion",
                  show_progress=False)
    want = expected(world["truth"], set(selected))
    assert want["matched"] == {TENCH: 43, SLOTH: 6, GOLDFISH: 30, SCHOONER: 4}  # the truth table itself
    assert by_class(report) == {TENCH: (43, 40), SLOTH: (6, 5), GOLDFISH: (30, 30), SCHOONER: (4, 4)}
    assert report["multi_class_rows"] == want["multi"] == 3  # "a tench and a goldfish"
    assert report["skipped"] == want["skipped"] == {"bad_url": 5, "empty_caption": 3, "missing_url": 5}
    assert report["duplicate_urls"] == 4  # three tench repeats, and the schooner URL captioned as a sloth
    assert report["rows_scanned"] == len(world["truth"])
    assert report["mined_total"] == 79
    assert [c["rows"] for c in report["corpus_files"]] == [150, 150, len(world["truth"]) - 300]
    assert [c["file"] for c in report["corpus_files"]] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert report["rule"]["kind"] == "classes" and report["forms"] == "unflagged" and report["seed"] == 0
    assert report["counts"] == {"dir": str(world["counts"]), "corpus": "laion", "column": "doc_freq"}
    for key in ("rule", "counts", "seed", "per_class", "forms", "corpus_files", "rows_scanned", "skipped",
                "duplicate_urls", "multi_class_rows", "classes", "mined_total", "command"):
        assert key in report
    assert json.loads((out / "mine_report.json").read_text()) == report
    assert report["command"].startswith("python -m corpora_stats mine --counts ")

    table = pq.read_table(out / "urls.parquet")
    assert table.schema.names == list(URL_COLUMNS)
    assert [str(t) for t in table.schema.types] == ["string"] * 6 + ["int64"]
    df = pl.from_arrow(table)
    assert df.height == 79 and df["url"].n_unique() == 79
    order = {c: i for i, c in enumerate(WNIDS)}
    keys = [(order[c], u) for c, u in zip(df["class_id"], df["url"], strict=True)]
    assert keys == sorted(keys)
    # the tench repeats keep the first row; the shared schooner URL stays with the schooner
    first = df.filter(pl.col("url") == url("tench", 0)).row(0, named=True)
    assert (first["caption"], first["matched_form"], first["class_name"]) == ("a tench in the pond 0", "tench", "tench")
    shared = df.filter(pl.col("url") == url("schooner", 0)).row(0, named=True)
    assert shared["class_id"] == SCHOONER and shared["caption"] == "a schooner at sea 0"
    # every row points back at its corpus row
    files = {f"part-{k}.parquet": pq.read_table(world["corpus"] / f"part-{k}.parquet").to_pylist() for k in range(3)}
    for r in df.iter_rows(named=True):
        source = files[r["corpus"]][r["row"]]
        assert source["URL"] == r["url"] and source["TEXT"] == r["caption"]
    forms = dict(df.group_by("matched_form").len().iter_rows())
    assert forms["tinca tinca"] > 0 and forms["tenches"] > 0 and forms["three toed sloth"] == 5
    vocab = ClassVocabulary.from_json(json.loads((out / "classes.json").read_text()))
    assert vocab.ids == WNIDS and vocab[SLOTH].name == "three-toed sloth"


def test_least_and_below_rules_and_forms_all_changes_the_ambiguous_case(world, tmp_path):
    clean = mine(world["counts"], world["corpus"], tmp_path / "a", "least:3", corpus="laion", show_progress=False)
    assert by_class(clean) == {CONSTRUCTION_CRANE: (3, 3), MOUSE: (4, 4), SCHOONER: (4, 4)}  # "schooner under
    assert clean["multi_class_rows"] == 0  # an airliner" is a schooner row: airliner is not selected
    assert [c["class_id"] for c in clean["excluded_classes"]] == [HEN]
    assert clean["rule"] == {"kind": "least", "spec": "least:3", "n": 3, "column": "doc_freq"}

    below = mine(world["counts"], world["corpus"], tmp_path / "b", "below:5", corpus="laion", forms="all",
                 show_progress=False)
    want = expected(world["truth"], {HEN, CONSTRUCTION_CRANE, MOUSE, SCHOONER}, forms="all")["matched"]
    # "mouse" (ambiguous) and "hen" now count; "crane" (shared) counts for the one selected crane
    assert by_class(below) == {HEN: (8, 8), CONSTRUCTION_CRANE: (8, 8), MOUSE: (14, 14), SCHOONER: (4, 4)}
    assert {c: m for c, (m, _) in by_class(below).items()} == want
    assert below["forms"] == "all" and below["excluded_classes"] == []
    forms = dict(pl.read_parquet(tmp_path / "b" / "urls.parquet").group_by("matched_form").len().iter_rows())
    assert forms["mouse"] == 10 and forms["hen"] == 8 and forms["crane"] == 5

    both = mine(world["counts"], world["corpus"], tmp_path / "c", f"classes:{CRANE_BIRD},{CONSTRUCTION_CRANE}",
                corpus="laion", forms="all", show_progress=False)
    assert both["multi_class_rows"] == 5  # "crane" names both selected cranes: ambiguous label
    assert by_class(both) == {CRANE_BIRD: (6, 6), CONSTRUCTION_CRANE: (3, 3)}


def test_longest_match_wins_as_in_count(world, tmp_path):
    report = mine(world["counts"], world["corpus"], tmp_path / "t", f"classes:{TIGER}", corpus="laion",
                  show_progress=False)
    assert by_class(report) == {TIGER: (62, 62)}  # no "tiger shark" row; "a tiger chasing a goose" counts
    df = pl.read_parquet(tmp_path / "t" / "urls.parquet")
    assert not df.filter(pl.col("caption").str.to_lowercase().str.contains("shark")).height
    assert set(df["matched_form"]) == {"tiger", "tigers"}


def test_per_class_cap_is_the_seeded_smallest_hashes(world, tmp_path):
    candidates = sorted({r["URL"] for r in world["truth"] if not r["skip"] and r["clean"] == {TIGER}}
                        | {r["URL"] for r in world["truth"] if not r["skip"] and r["clean"] == {TIGER, GOOSE}})
    picked = {}
    for seed in (7, 8):
        report = mine(world["counts"], world["corpus"], tmp_path / f"s{seed}", f"classes:{TIGER}", corpus="laion",
                      per_class=10, seed=seed, show_progress=False)
        assert by_class(report) == {TIGER: (62, 10)}
        got = pl.read_parquet(tmp_path / f"s{seed}" / "urls.parquet")["url"].to_list()
        want = sorted(candidates, key=lambda u: hashlib.sha256(f"{seed}\x1f{u}".encode()).digest())[:10]
        assert got == sorted(want)
        picked[seed] = set(got)
    assert picked[7] != picked[8]


def test_byte_identical_whatever_batch_size_file_order_or_run(world, tmp_path):
    rule = f"classes:{TENCH},{SLOTH},{GOLDFISH},{SCHOONER},{TIGER}"
    parts = [world["corpus"] / f"part-{k}.parquet" for k in range(3)]
    runs = {
        "folder": dict(corpus_paths=world["corpus"]),
        "again": dict(corpus_paths=world["corpus"]),
        "batch7": dict(corpus_paths=world["corpus"], batch_size=7),
        "reversed": dict(corpus_paths=[str(p) for p in reversed(parts)], batch_size=50),
        "glob": dict(corpus_paths=str(world["corpus"] / "part-*.parquet")),
        "named": dict(corpus_paths={"b": parts[2], "a": parts[0], "c": parts[1]}),
    }
    digests, reports = {}, {}
    for name, kw in runs.items():
        reports[name] = mine(world["counts"], out_dir=tmp_path / name, rule=rule, corpus="laion", per_class=25,
                             seed=3, show_progress=False, **kw)
        digests[name] = hashlib.sha256((tmp_path / name / "urls.parquet").read_bytes()).hexdigest()
    assert len(set(digests.values())) == 1, digests
    for r in reports.values():
        assert by_class(r) == by_class(reports["folder"])
        assert r["duplicate_urls"] == reports["folder"]["duplicate_urls"]
    assert by_class(reports["folder"])[TENCH] == (43, 25)


def test_cli_prints_the_table(world, tmp_path):
    out = tmp_path / "cli"
    res = cli("mine", "--counts", str(world["counts"]), "--counts-corpus", "laion", "--select", "least:3",
              "--corpus", f"laion={world['corpus']}", "--out", str(out), "--per-class", "3", "--quiet")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["class", "doc_freq", "matched", "mined"]
    assert lines[1].split() == ["construction", "crane", "3", "3", "3"]
    assert lines[2].split() == ["computer", "mouse", "4", "4", "3"]
    assert "9 URLs mined" in res.stdout and "excluded" in res.stdout and "hen" in lines[-2]
    report = json.loads((out / "mine_report.json").read_text())
    assert report["corpus_files"][0]["name"] == "laion" and report["per_class"] == 3


@pytest.mark.parametrize("args,needle", [
    (["--counts", "/nonexistent-counts", "--select", "least:3"], "/nonexistent-counts"),
    (["--counts", "COUNTS", "--counts-corpus", "nope", "--select", "least:3"], "nope"),
    (["--counts", "COUNTS", "--counts-corpus", "laion", "--select", "most:3"], "most:3"),
    (["--counts", "COUNTS", "--counts-corpus", "laion", "--select", "least:x"], "least:x"),
    (["--counts", "COUNTS", "--counts-corpus", "laion", "--select", "classes:n99999999"], "n99999999"),
    (["--counts", "COUNTS", "--select", "least:3"], "--counts-corpus"),
])
def test_user_errors_are_one_line(world, args, needle, tmp_path):
    args = [a.replace("COUNTS", str(world["counts"])) for a in args]
    res = cli("mine", *args, "--corpus", str(world["corpus"]), "--out", str(tmp_path / "o"))
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_api_user_errors(world, tmp_path):
    with pytest.raises(UserError, match="TEXT"):
        bad = tmp_path / "bad.parquet"
        pl.DataFrame({"URL": ["http://a/b.jpg"], "caption": ["a tench"]}).write_parquet(bad)
        mine(world["counts"], bad, tmp_path / "o", "least:3", corpus="laion", show_progress=False)
    with pytest.raises(UserError, match="selects no class"):
        mine(world["counts"], world["corpus"], tmp_path / "o", "below:1", corpus="laion", show_progress=False)
    with pytest.raises(UserError, match="does not exist"):
        mine(world["counts"], tmp_path / "missing", tmp_path / "o", "least:3", corpus="laion", show_progress=False)
    with pytest.raises(UserError, match="per-class"):
        mine(world["counts"], world["corpus"], tmp_path / "o", "least:3", corpus="laion", per_class=0)
    assert not (tmp_path / "o").exists()


def test_binary_columns_undecodable_values_damaged_files_and_no_match(world, tmp_path):
    corpus = tmp_path / "odd"
    corpus.mkdir()
    pq.write_table(pa.table({
        "URL": pa.array([b"http://a/1.jpg", b"http://a/2.jpg", b"\xff\xfe", None, b"HTTPS://a/3.jpg"], pa.binary()),
        "TEXT": pa.array([b"a schooner", b"\xffa schooner", b"a schooner", b"a schooner", b"Schooners!"],
                         pa.binary())}), corpus / "a.parquet")
    good = (world["corpus"] / "part-0.parquet").read_bytes()
    (corpus / "b.parquet").write_bytes(good[:200] + b"\0" * 2000 + good[2200:])  # a damaged data page
    report = mine(world["counts"], corpus, tmp_path / "o", f"classes:{SCHOONER}", corpus="laion",
                  show_progress=False)
    assert report["skipped"]["non_utf8"] == 2 and report["skipped"]["missing_url"] == 1
    assert report["skipped"]["read_error"] == 1
    [damaged] = report["damaged_files"]  # named, with the reason
    assert damaged["file"] == str(corpus / "b.parquet") and damaged["reason"].startswith("damaged parquet: row group 0")
    assert by_class(report) == {SCHOONER: (2, 2)}
    got = pl.read_parquet(tmp_path / "o" / "urls.parquet").select("url", "matched_form").rows()
    assert got == [("HTTPS://a/3.jpg", "schooners"), ("http://a/1.jpg", "schooner")]
    none = mine(world["counts"], corpus / "a.parquet", tmp_path / "n", f"classes:{TENCH}", corpus="laion",
                show_progress=False)
    assert none["mined_total"] == 0 and by_class(none) == {TENCH: (0, 0)}
    empty = pq.read_table(tmp_path / "n" / "urls.parquet")
    assert empty.num_rows == 0 and empty.schema.names == list(URL_COLUMNS)
